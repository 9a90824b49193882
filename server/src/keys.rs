//! Where the server's keyring comes from, and how it is kept at rest.
//!
//! In order: the environment variable (production), an explicit file
//! (production), or `<data-dir>/keyring.json`, generated on first start so the
//! quick start needs no set-up. Either may be a wrapped keyring
//! (docs/format.md §8), opened with the configured key-encryption key
//! ([`kek`]); the generated one always is, under `<data-dir>/kek` unless a
//! KEK is configured. A plain keyring still loads, with a warning. A
//! generated keyring is announced in the log, because a keyring nobody
//! backs up is history nobody can read.

pub mod cli;
pub mod guard;
pub mod kek;
pub mod kek_cli;
pub mod pkcs11;
pub mod rewrap;
pub mod rotate;
pub mod watch;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chatseal_core::{Kek, Keyring, StoredKeyring, Zeroizing};

use crate::config::Config;
use kek::{KekSource, Wrapping};

/// File name of the development KEK in the data dir.
pub const DEV_KEK_FILE: &str = "kek";

/// Where the keyring is kept.
#[derive(Debug, Clone)]
pub enum Place {
    /// The environment variable (its name).
    Env(String),
    /// A file: `--keyring-file`, or `<data-dir>/keyring.json` (`dev`).
    File { path: PathBuf, dev: bool },
}

impl Place {
    /// Where `config` says the keyring is.
    pub fn of(config: &Config) -> Place {
        if std::env::var_os(&config.keyring_env).is_some() {
            return Place::Env(config.keyring_env.clone());
        }
        match &config.keyring_file {
            Some(path) => Place::File {
                path: path.clone(),
                dev: false,
            },
            None => Place::File {
                path: config.data_dir.join("keyring.json"),
                dev: true,
            },
        }
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            Place::Env(var) => format!("${var}"),
            Place::File { path, .. } => path.display().to_string(),
        }
    }
}

/// A keyring as read, and how to write it back: `wrapping` is `None` for a
/// plain keyring.
#[derive(Debug)]
pub struct Stored {
    pub keyring: Keyring,
    pub wrapping: Option<Wrapping>,
    /// The KEK's source, for messages; `None` for a plain keyring.
    pub kek: Option<String>,
}

/// The KEK for the keyring at `place`: the configured one, or for the
/// data-dir keyring the development KEK file beside it, if there is one.
pub fn kek_source(config: &Config, place: &Place) -> anyhow::Result<Option<KekSource>> {
    if let Some(source) = config.kek.source()? {
        return Ok(Some(source));
    }
    if let Place::File { dev: true, .. } = place {
        let path = config.data_dir.join(DEV_KEK_FILE);
        if path.exists() {
            return Ok(Some(KekSource::File { path, dev: true }));
        }
    }
    Ok(None)
}

/// The keyring at `place` as stored (plain or wrapped), `None` if the file
/// does not exist.
pub fn read_stored(place: &Place) -> anyhow::Result<Option<StoredKeyring>> {
    match place {
        Place::Env(var) => Ok(StoredKeyring::from_env(var)?),
        Place::File { path, .. } => match StoredKeyring::load_file(path) {
            Ok(stored) => Ok(Some(stored)),
            Err(chatseal_core::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("keyring file {}", path.display())))
            }
        },
    }
}

/// Opens what [`read_stored`] found. A wrapped keyring needs its KEK; a
/// plain one is refused while a KEK is configured (its keys would stay
/// bare: `keys wrap` wraps it).
pub fn open_stored(
    config: &Config,
    place: &Place,
    stored: StoredKeyring,
) -> anyhow::Result<Stored> {
    let what = place.describe();
    match stored {
        StoredKeyring::Plain(keyring) => {
            if let Some(source) = config.kek.source()? {
                anyhow::bail!(
                    "{what} is a plain keyring, but a key-encryption key is configured ({}): \
                    wrap it with `chatseal-server keys wrap` (same flags and environment), or \
                    unset the KEK settings to use it plain",
                    source.describe()
                );
            }
            Ok(Stored {
                keyring,
                wrapping: None,
                kek: None,
            })
        }
        StoredKeyring::Wrapped(wrapped) => {
            let source = kek_source(config, place)?.ok_or_else(|| kek::missing(&wrapped, &what))?;
            let (keyring, wrapping) = source.open(&wrapped, &what)?;
            Ok(Stored {
                keyring,
                wrapping: Some(wrapping),
                kek: Some(source.describe()),
            })
        }
    }
}

/// Reads and opens the keyring `config` names; `None` if its file does not
/// exist. Never generates one.
pub fn read(config: &Config) -> anyhow::Result<Option<Stored>> {
    let place = Place::of(config);
    read_stored(&place)?
        .map(|stored| open_stored(config, &place, stored))
        .transpose()
}

/// Writes `keyring` to `path` as `wrapping` says (plain when `None`),
/// atomically with mode 0600.
pub fn write(path: &Path, keyring: &Keyring, wrapping: Option<&Wrapping>) -> anyhow::Result<()> {
    match wrapping {
        Some(w) => w.seal(keyring).save_file(path)?,
        None => keyring.save_file(path)?,
    }
    Ok(())
}

/// A keyring file that commands and rotations rewrite in place, as it is
/// kept (wrapped under the same KEK, or plain).
#[derive(Debug, Clone)]
pub struct KeyringFile {
    pub path: PathBuf,
    config: Config,
}

impl KeyringFile {
    /// The file `config` names; `None` when the environment variable holds
    /// the keyring (no command can change it).
    pub fn of(config: &Config) -> Option<KeyringFile> {
        match Place::of(config) {
            Place::Env(_) => None,
            Place::File { path, .. } => Some(KeyringFile {
                path,
                config: config.clone(),
            }),
        }
    }

    /// Reads and opens it (it must exist).
    pub fn load(&self) -> anyhow::Result<Stored> {
        let place = Place::of(&self.config);
        let stored = read_stored(&place)?
            .ok_or_else(|| anyhow::anyhow!("no keyring file at {}", self.path.display()))?;
        open_stored(&self.config, &place, stored)
    }

    /// Rewrites it with `keyring`, kept as `wrapping` says.
    pub fn save(&self, keyring: &Keyring, wrapping: Option<&Wrapping>) -> anyhow::Result<()> {
        write(&self.path, keyring, wrapping)
    }
}

/// Loads the keyring that `config` names, or creates the development one:
/// wrapped under the configured KEK, or under `<data-dir>/kek`, made now.
pub fn load(config: &Config) -> anyhow::Result<Keyring> {
    let place = Place::of(config);
    if let Some(stored) = read(config)? {
        let what = place.describe();
        match &stored.kek {
            Some(kek) => tracing::info!(
                source = %what,
                primary = stored.keyring.primary(),
                kek = %kek,
                kek_id = %stored.wrapping.as_ref().map(Wrapping::kek_id).unwrap_or_default(),
                "keyring loaded (wrapped)"
            ),
            None => {
                tracing::warn!(
                    source = %what,
                    "the keyring is plain JSON: whoever copies it reads every message. Wrap it \
                    under a key-encryption key kept elsewhere with `chatseal-server keys wrap`"
                );
                tracing::info!(source = %what, primary = stored.keyring.primary(), "keyring loaded (plain)");
            }
        }
        return Ok(stored.keyring);
    }
    let Place::File { path, dev: true } = place else {
        let Place::File { path, .. } = place else {
            unreachable!("a set variable always reads as a keyring or an error")
        };
        anyhow::bail!(
            "keyring file {}: it does not exist (give the file the servers share, or leave \
            --keyring-file unset for a development keyring in the data dir)",
            path.display()
        );
    };
    let (source, kek_created) = match config.kek.source()? {
        Some(source) => (source, false),
        None => dev_kek(&config.data_dir)?,
    };
    let wrapping = source.new_wrapping(true)?;
    let keyring = Keyring::generate();
    if !create_new(&path, &keyring, Some(&wrapping))? {
        // Another process made it meanwhile: use theirs.
        return read(config)?
            .map(|s| s.keyring)
            .ok_or_else(|| anyhow::anyhow!("{} vanished", path.display()));
    }
    tracing::info!(
        path = %path.display(),
        kek = %source.describe(),
        kek_id = %wrapping.kek_id(),
        kek_created,
        "created a new development keyring, wrapped under the key-encryption key; back both up, \
        apart (a data dir backup without the KEK opens nothing), or set \
        CHATSEAL_KEYRING_FILE / CHATSEAL_KEYRING and a KEK in production"
    );
    Ok(keyring)
}

/// `<data-dir>/kek`: loaded if it is there, else generated (0600).
fn dev_kek(data_dir: &Path) -> anyhow::Result<(KekSource, bool)> {
    let path = data_dir.join(DEV_KEK_FILE);
    crate::files::private_dir(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let created = match Kek::generate().create_file(&path) {
        Ok(()) => true,
        Err(chatseal_core::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            false
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot create the development KEK")),
    };
    Ok((KekSource::File { path, dev: true }, created))
}

/// Writes a new keyring file, never replacing one: `false` if `path`
/// exists (the file appears whole or not at all).
pub fn create_new(
    path: &Path,
    keyring: &Keyring,
    wrapping: Option<&Wrapping>,
) -> anyhow::Result<bool> {
    let tmp = path.with_file_name(format!(
        ".{}.new-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("keyring"),
        std::process::id()
    ));
    write(&tmp, keyring, wrapping)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot create {}", path.display()))),
    }
}

/// Reads the keyring again from where [`load`] found it, for a rotation
/// without a restart (SIGHUP). Never generates one.
pub fn reload(config: &Config) -> anyhow::Result<Keyring> {
    read(config)?
        .map(|s| s.keyring)
        .ok_or_else(|| anyhow::anyhow!("no keyring at {}", Place::of(config).describe()))
}

/// Longest a SIGHUP reload waits for the keyring file: a file that never
/// answers (a FIFO, a hung network mount) fails the reload, not the server.
pub const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// [`reload`] on a blocking thread, never on the runtime's, given up after
/// `timeout`. A read that hangs keeps its thread until the file answers;
/// `pending` holds it, and no second read starts while it is stuck.
pub async fn reload_blocking(
    config: &Config,
    timeout: std::time::Duration,
    pending: &mut Option<tokio::task::JoinHandle<anyhow::Result<Keyring>>>,
) -> anyhow::Result<Keyring> {
    if pending.as_ref().is_some_and(|read| !read.is_finished()) {
        anyhow::bail!("the previous keyring read has not returned yet (a FIFO, a hung mount?)");
    }
    let config = config.clone();
    let read = pending.insert(tokio::task::spawn_blocking(move || reload(&config)));
    match tokio::time::timeout(timeout, read).await {
        Ok(joined) => {
            *pending = None;
            joined?
        }
        Err(_) => anyhow::bail!(
            "the keyring file did not answer within {} s (a FIFO, a hung mount?)",
            timeout.as_secs_f32()
        ),
    }
}

/// The secret that signs session tokens: `CHATSEAL_JWT_SECRET`, or
/// `<data-dir>/jwt-secret`, made on first start with mode 0600. Both hold
/// the same thing, standard base64 of 32 bytes or more, so the file's
/// content copied into the variable of a second server signs the same
/// tokens; anything else is refused at start rather than read differently.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = &config.jwt_secret {
        return decode_jwt_secret(secret, "CHATSEAL_JWT_SECRET");
    }
    let path = config.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(&path)?;
            decode_jwt_secret(&text, &path.display().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand_core::{OsRng, TryRngCore as _};
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            OsRng.try_fill_bytes(&mut secret)?;
            write_private(&path, &Zeroizing::new(b64.encode(&*secret)))?;
            tracing::info!(path = %path.display(), "created a token-signing secret");
            Ok(secret)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

/// The bearer token `/encrypt` and `/decrypt` require, and where it comes
/// from: `CHATSEAL_SERVICE_TOKEN`, or `<data-dir>/service-token`, made on
/// first start with mode 0600 (32 random bytes, base64url). There is always
/// one: the listen address says nothing about who is calling (a reverse
/// proxy on the same host is a loopback client).
pub fn service_token(config: &Config) -> anyhow::Result<(Zeroizing<String>, String)> {
    bearer_token(
        config,
        config.service_token.as_deref(),
        "CHATSEAL_SERVICE_TOKEN",
        "service-token",
        "a service token for /encrypt and /decrypt",
    )
}

/// The bearer token the publish API (`POST /api/rooms/:room/messages`)
/// requires: `CHATSEAL_PUBLISH_TOKEN`, or `<data-dir>/publish-token`, made
/// like the service token. A separate token: a bot that may post should
/// not hold a decryption oracle, nor a `/decrypt` caller post as a service.
pub fn publish_token(config: &Config) -> anyhow::Result<(Zeroizing<String>, String)> {
    bearer_token(
        config,
        config.publish_token.as_deref(),
        "CHATSEAL_PUBLISH_TOKEN",
        "publish-token",
        "a publish token for POST /api/rooms/:room/messages",
    )
}

/// A bearer token from `given` (the variable `env`), else from
/// `<data-dir>/<file>`, made on first start.
fn bearer_token(
    config: &Config,
    given: Option<&str>,
    env: &str,
    file: &str,
    what: &str,
) -> anyhow::Result<(Zeroizing<String>, String)> {
    use base64::Engine as _;
    if let Some(token) = given {
        anyhow::ensure!(
            !token.trim().is_empty(),
            "{env} is empty; unset it to use <data-dir>/{file}"
        );
        return Ok((Zeroizing::new(token.trim().to_owned()), env.to_owned()));
    }
    let path = config.data_dir.join(file);
    let source = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(&path)?;
            anyhow::ensure!(!text.trim().is_empty(), "{source} is empty");
            Ok((Zeroizing::new(text.trim().to_owned()), source))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand_core::{OsRng, TryRngCore as _};
            let mut bytes = Zeroizing::new([0u8; 32]);
            OsRng.try_fill_bytes(&mut *bytes)?;
            let token =
                Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes));
            write_private(&path, &token)?;
            tracing::info!(path = %source, "created {what}");
            Ok((token, source))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {source}"))),
    }
}

/// Creates `path` (and its directory) holding `text`, mode 0600; fails if
/// it exists.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Checks a configured `CHATSEAL_JWT_SECRET` without touching anything
/// ([`crate::config::Config::validate`]).
pub fn check_jwt_secret(text: &str) -> anyhow::Result<()> {
    decode_jwt_secret(text, "CHATSEAL_JWT_SECRET").map(drop)
}

fn decode_jwt_secret(text: &str, source: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let secret = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                anyhow::anyhow!(
                    "{source} is not standard base64: it holds base64 of 32+ random bytes \
                     (`openssl rand -base64 32`, or the content of a server's data/jwt-secret)"
                )
            })?,
    );
    anyhow::ensure!(
        secret.len() >= 32,
        "{source} decodes to {} bytes; it needs 32 or more",
        secret.len()
    );
    Ok(secret)
}

fn check_private(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} is readable by group or others (mode {:o}); chmod 600 it",
        path.display(),
        mode & 0o777
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// A fresh directory of its own under the system's temp dir.
    fn tempdir(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatseal-keys-{label}-{}-{}",
            std::process::id(),
            crate::auth::unix_now().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &std::path::Path, secret: Option<&str>) -> Config {
        let mut config =
            Config::parse_from(["chatseal-server", "--data-dir", dir.to_str().unwrap()]);
        config.jwt_secret = secret.map(str::to_owned);
        config
    }

    #[test]
    fn the_generated_file_and_the_variable_read_alike() {
        let dir = tempdir("file");
        let generated = jwt_secret(&config(&dir, None)).unwrap();
        let text = std::fs::read_to_string(dir.join("jwt-secret")).unwrap();
        // A second server given the file's content signs the same tokens.
        let other = tempdir("env");
        let from_env = jwt_secret(&config(&other, Some(&text))).unwrap();
        assert_eq!(*generated, *from_env);
        assert_eq!(generated.len(), 32);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other);
    }

    #[test]
    fn a_secret_that_is_not_base64_of_32_bytes_is_refused() {
        let dir = tempdir("bad");
        for bad in ["conformance-suite-secret-0123456789abcdef!", "c2hvcnQ=", ""] {
            let err = jwt_secret(&config(&dir, Some(bad))).unwrap_err();
            assert!(err.to_string().starts_with("CHATSEAL_JWT_SECRET"), "{err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
