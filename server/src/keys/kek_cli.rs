//! `keys wrap | unwrap | rekey-kek`: how the keyring is kept at rest,
//! changed in place (atomically, mode 0600) or written to a new file.
//! They take the server's flags and environment, KEK settings included, and
//! hold the store's rotation lease when there is a store, so no rotation
//! rewrites the file between their read and their write.

// A command's output is what it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use chatseal_core::{Kek, StoredKeyring, WrappedKeyring};

use super::kek::{KekArgs, KekSource, Wrapping, hex};
use super::{Place, read_stored};
use crate::config::Config;
use crate::store::Store;

/// The new KEK of `keys rekey-kek`: one of these, as the `--kek-*` and
/// `--pkcs11-*` settings give the current one.
#[derive(Debug, Clone, clap::Args)]
pub struct NewKek {
    /// A KEK file (standard base64 of 32 bytes); generated (0600) if it
    /// does not exist.
    #[arg(long)]
    pub new_kek_file: Option<PathBuf>,
    /// A KEK (standard base64 of 32 bytes).
    #[arg(long, env = "CHATSEAL_NEW_KEK", hide_env_values = true)]
    pub new_kek: Option<String>,
    /// A passphrase (argon2id, fresh salt).
    #[arg(long, env = "CHATSEAL_NEW_KEK_PASSPHRASE", hide_env_values = true)]
    pub new_kek_passphrase: Option<String>,
    /// A file holding the passphrase (its first line), mode 0600.
    #[arg(long, env = "CHATSEAL_NEW_KEK_PASSPHRASE_FILE")]
    pub new_kek_passphrase_file: Option<PathBuf>,
    /// A PKCS#11 module; with a current token, that token's module.
    #[arg(long)]
    pub new_pkcs11_module: Option<PathBuf>,
    /// The new token's label (default: the current token's, or the only one).
    #[arg(long)]
    pub new_pkcs11_token: Option<String>,
    /// The new token's PIN.
    #[arg(long, env = "CHATSEAL_NEW_PKCS11_PIN", hide_env_values = true)]
    pub new_pkcs11_pin: Option<String>,
    /// A file holding the new token's PIN.
    #[arg(long)]
    pub new_pkcs11_pin_file: Option<PathBuf>,
    /// The label of the AES key on the (new) token; created if missing.
    #[arg(long)]
    pub new_pkcs11_key_label: Option<String>,
}

impl NewKek {
    /// The new source: settings of its own, PKCS#11 ones completed from
    /// the current token's.
    fn source(&self, current: &KekArgs) -> anyhow::Result<KekSource> {
        let pkcs11 = self.new_pkcs11_module.is_some()
            || self.new_pkcs11_token.is_some()
            || self.new_pkcs11_pin.is_some()
            || self.new_pkcs11_pin_file.is_some()
            || self.new_pkcs11_key_label.is_some();
        let same_token = pkcs11 && self.new_pkcs11_module.is_none();
        let pick = |new: &Option<String>, old: &Option<String>| {
            new.clone()
                .or_else(|| same_token.then(|| old.clone()).flatten())
        };
        let args = KekArgs {
            kek_file: self.new_kek_file.clone(),
            kek: self.new_kek.clone(),
            kek_passphrase: self.new_kek_passphrase.clone(),
            kek_passphrase_file: self.new_kek_passphrase_file.clone(),
            pkcs11_module: self
                .new_pkcs11_module
                .clone()
                .or_else(|| pkcs11.then(|| current.pkcs11_module.clone()).flatten()),
            pkcs11_token: pick(&self.new_pkcs11_token, &current.pkcs11_token),
            pkcs11_slot: same_token.then_some(current.pkcs11_slot).flatten(),
            pkcs11_pin: pick(&self.new_pkcs11_pin, &current.pkcs11_pin),
            pkcs11_pin_file: self.new_pkcs11_pin_file.clone().or_else(|| {
                (same_token && self.new_pkcs11_pin.is_none())
                    .then(|| current.pkcs11_pin_file.clone())
                    .flatten()
            }),
            pkcs11_key_label: self
                .new_pkcs11_key_label
                .clone()
                .unwrap_or_else(|| current.pkcs11_key_label.clone()),
        };
        if pkcs11 && args.pkcs11_module.is_none() {
            anyhow::bail!("--new-pkcs11-* needs --new-pkcs11-module (or a current PKCS#11 token)");
        }
        args.validate()?;
        args.source()?.ok_or_else(|| {
            anyhow::anyhow!(
                "name the new key-encryption key: --new-kek-file, CHATSEAL_NEW_KEK, \
                 --new-kek-passphrase-file / CHATSEAL_NEW_KEK_PASSPHRASE or --new-pkcs11-*"
            )
        })
    }
}

/// A KEK file a command was told to use but that does not exist yet is
/// generated (0600); said on stderr. A server never does this at start.
fn ensure_kek_file(source: &KekSource) -> anyhow::Result<()> {
    if let KekSource::File { path, .. } = source
        && !path.exists()
    {
        Kek::generate().create_file(path)?;
        eprintln!(
            "generated a new key-encryption key in {} (mode 0600): keep it apart from the data \
             dir and its backups, and back it up on its own",
            path.display()
        );
    }
    Ok(())
}

/// The store, if the servers have one (for the lease); a keyring prepared
/// before any server ran has none.
async fn maybe_store(config: &Config) -> anyhow::Result<Option<Store>> {
    if config.database_url.is_none() && !config.data_dir.join("chatseal.db").is_file() {
        return Ok(None);
    }
    Ok(Some(super::cli::connect(config).await?))
}

/// Runs `f` under the store's rotation lease, if there is a store.
async fn leased(
    config: &Config,
    f: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(store) = maybe_store(config).await? else {
        return f().await;
    };
    let holder = format!("keys-command-{}", uuid::Uuid::now_v7());
    let outcome = super::rotate::with_lease(&store, &holder, f).await;
    store.close().await;
    match outcome? {
        Some(()) => Ok(()),
        None => anyhow::bail!("a rotation or retirement is running; try again shortly"),
    }
}

/// Where the command writes: `--out` (a new file) or the keyring file.
fn target(place: &Place, out: Option<&Path>) -> anyhow::Result<(PathBuf, bool)> {
    match (out, place) {
        (Some(out), _) => {
            anyhow::ensure!(
                !out.exists(),
                "{} exists; a keyring is never overwritten by --out (it may be the only copy)",
                out.display()
            );
            Ok((out.to_owned(), true))
        }
        (None, Place::File { path, .. }) => Ok((path.clone(), false)),
        (None, Place::Env(var)) => anyhow::bail!(
            "the keyring comes from ${var}, which no command can change: write the result to a \
             file with --out"
        ),
    }
}

fn write(
    path: &Path,
    new_file: bool,
    keyring: &chatseal_core::Keyring,
    wrapping: Option<&Wrapping>,
) -> anyhow::Result<()> {
    if new_file {
        anyhow::ensure!(
            super::create_new(path, keyring, wrapping)?,
            "{} appeared meanwhile; nothing written",
            path.display()
        );
        Ok(())
    } else {
        super::write(path, keyring, wrapping)
    }
}

/// `keys wrap [--out FILE]`.
pub async fn wrap(config: &Config, out: Option<PathBuf>) -> anyhow::Result<()> {
    let place = Place::of(config);
    let (path, new_file) = target(&place, out.as_deref())?;
    leased(config, async || {
        let keyring = match read_stored(&place)? {
            None => anyhow::bail!("no keyring at {}", place.describe()),
            Some(StoredKeyring::Wrapped(w)) => anyhow::bail!(
                "{} is wrapped already (KEK {}): `keys rekey-kek` puts it under another KEK",
                place.describe(),
                hex(&w.kek_id)
            ),
            Some(StoredKeyring::Plain(k)) => k,
        };
        let source = match config.kek.source()? {
            Some(source) => source,
            None if matches!(place, Place::File { dev: true, .. }) && !new_file => {
                KekSource::File {
                    path: config.data_dir.join(super::DEV_KEK_FILE),
                    dev: true,
                }
            }
            None => anyhow::bail!(
                "name the key-encryption key to wrap under: --kek-file PATH (generated if it \
                 does not exist), CHATSEAL_KEK, CHATSEAL_KEK_PASSPHRASE(_FILE) or --pkcs11-*"
            ),
        };
        ensure_kek_file(&source)?;
        let wrapping = source.new_wrapping(true)?;
        write(&path, new_file, &keyring, Some(&wrapping))?;
        println!(
            "{} holds the keyring wrapped under {} (KEK {}), mode 0600",
            path.display(),
            source.describe(),
            wrapping.kek_id()
        );
        if !new_file {
            eprintln!(
                "note: copies and backups of the plain keyring still hold its keys bare: delete \
                 them. Servers reading {} need this KEK from their next reload on",
                path.display()
            );
        }
        Ok(())
    })
    .await
}

/// Opens the wrapped keyring at `place` with the configured KEK.
fn open_wrapped(
    config: &Config,
    place: &Place,
) -> anyhow::Result<(WrappedKeyring, chatseal_core::Keyring, KekSource)> {
    let wrapped = match read_stored(place)? {
        None => anyhow::bail!("no keyring at {}", place.describe()),
        Some(StoredKeyring::Plain(_)) => anyhow::bail!(
            "{} is a plain keyring already (not wrapped)",
            place.describe()
        ),
        Some(StoredKeyring::Wrapped(w)) => w,
    };
    let source = super::kek_source(config, place)?
        .ok_or_else(|| super::kek::missing(&wrapped, &place.describe()))?;
    let (keyring, _) = source.open(&wrapped, &place.describe())?;
    Ok((wrapped, keyring, source))
}

/// `keys unwrap [--out FILE]`.
pub async fn unwrap(config: &Config, out: Option<PathBuf>) -> anyhow::Result<()> {
    let place = Place::of(config);
    let (path, new_file) = target(&place, out.as_deref())?;
    leased(config, async || {
        let (_, keyring, _) = open_wrapped(config, &place)?;
        write(&path, new_file, &keyring, None)?;
        eprintln!(
            "WARNING: {} holds the keyring as plain JSON (mode 0600): its keys are bare at rest, \
             and whoever copies it reads every message",
            path.display()
        );
        if !new_file && config.kek.source()?.is_some() {
            eprintln!(
                "note: servers refuse a plain keyring while a KEK is configured: unset the KEK \
                 settings before they reload it"
            );
        }
        Ok(())
    })
    .await
}

/// `keys rekey-kek --new-… [--out FILE]`.
pub async fn rekey(config: &Config, new: &NewKek, out: Option<PathBuf>) -> anyhow::Result<()> {
    let place = Place::of(config);
    let (path, new_file) = target(&place, out.as_deref())?;
    let next = new.source(&config.kek)?;
    leased(config, async || {
        let (wrapped, keyring, current) = open_wrapped(config, &place)?;
        ensure_kek_file(&next)?;
        let wrapping = next.new_wrapping(true)?;
        write(&path, new_file, &keyring, Some(&wrapping))?;
        println!(
            "{} holds the keyring wrapped under {} (KEK {}, was {} from {})",
            path.display(),
            next.describe(),
            wrapping.kek_id(),
            hex(&wrapped.kek_id),
            current.describe()
        );
        eprintln!(
            "note: start and reload every server with the new KEK settings. The old KEK opens \
             only older copies and backups of the keyring now: keep it as long as you keep those"
        );
        Ok(())
    })
    .await
}
