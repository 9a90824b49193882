//! Where the key-encryption key (KEK) comes from, and how a keyring is
//! wrapped under it at rest (docs/format.md §8, docs/operations.md "Keys").
//!
//! One source at most: a KEK file or variable (standard base64 of 32
//! bytes), a passphrase (argon2id; parameters and salt live in the wrapped
//! file), or a PKCS#11 token that seals a random KEK with a key that never
//! leaves it. With none configured, a keyring in the data dir is wrapped
//! under `<data-dir>/kek`, generated beside it (the dev default).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chatseal_core::{KdfParams, Kek, Keyring, TokenWrap, WrappedKeyring, Zeroizing};

use super::pkcs11::{Pin, TokenConfig};

/// Shortest passphrase a new wrap accepts.
pub const MIN_PASSPHRASE: usize = 12;
/// Longest passphrase or PIN file read.
const MAX_SECRET_FILE: u64 = 4096;

/// The KEK flags, shared by the server and every `keys` command.
#[derive(clap::Args, Clone, Default)]
pub struct KekArgs {
    /// File holding the key-encryption key that wraps the keyring: standard
    /// base64 of 32 bytes, mode 0600. Keep it apart from the data dir.
    #[arg(long, global = true, env = "CHATSEAL_KEK_FILE")]
    pub kek_file: Option<PathBuf>,

    /// The key-encryption key itself (standard base64 of 32 bytes). Prefer
    /// the variable or --kek-file: a flag shows in the process list.
    #[arg(long, global = true, env = "CHATSEAL_KEK", hide_env_values = true)]
    pub kek: Option<String>,

    /// Passphrase the key-encryption key is derived from (argon2id, 64 MiB,
    /// 3 passes; salt and parameters are stored in the wrapped keyring).
    /// Prefer the variable or --kek-passphrase-file.
    #[arg(
        long,
        global = true,
        env = "CHATSEAL_KEK_PASSPHRASE",
        hide_env_values = true
    )]
    pub kek_passphrase: Option<String>,

    /// File holding that passphrase (its first line), mode 0600.
    #[arg(long, global = true, env = "CHATSEAL_KEK_PASSPHRASE_FILE")]
    pub kek_passphrase_file: Option<PathBuf>,

    /// PKCS#11 module (an HSM's shared library) whose token holds the key
    /// that protects the KEK; it never leaves the token.
    #[arg(long, global = true, env = "CHATSEAL_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,

    /// Label of the PKCS#11 token (default: the module's only token).
    #[arg(long, global = true, env = "CHATSEAL_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,

    /// Slot id of the PKCS#11 token, instead of its label.
    #[arg(
        long,
        global = true,
        env = "CHATSEAL_PKCS11_SLOT",
        conflicts_with = "pkcs11_token"
    )]
    pub pkcs11_slot: Option<u64>,

    /// The token's user PIN. Prefer the variable or --pkcs11-pin-file.
    #[arg(
        long,
        global = true,
        env = "CHATSEAL_PKCS11_PIN",
        hide_env_values = true
    )]
    pub pkcs11_pin: Option<String>,

    /// File holding the token's user PIN (its first line), mode 0600.
    #[arg(long, global = true, env = "CHATSEAL_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// Label (CKA_LABEL) of the AES-256 key on the token.
    #[arg(
        long,
        global = true,
        env = "CHATSEAL_PKCS11_KEY_LABEL",
        default_value = "chatseal-kek"
    )]
    pub pkcs11_key_label: String,
}

impl std::fmt::Debug for KekArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: bool| if v { "<set>" } else { "<unset>" };
        f.debug_struct("KekArgs")
            .field("kek_file", &self.kek_file)
            .field("kek", &set(self.kek.is_some()))
            .field("kek_passphrase", &set(self.kek_passphrase.is_some()))
            .field("kek_passphrase_file", &self.kek_passphrase_file)
            .field("pkcs11_module", &self.pkcs11_module)
            .field("pkcs11_token", &self.pkcs11_token)
            .field("pkcs11_slot", &self.pkcs11_slot)
            .field("pkcs11_pin", &set(self.pkcs11_pin.is_some()))
            .field("pkcs11_pin_file", &self.pkcs11_pin_file)
            .field("pkcs11_key_label", &self.pkcs11_key_label)
            .finish()
    }
}

/// A passphrase, given or in a file.
#[derive(Clone)]
pub enum Passphrase {
    Text(Zeroizing<String>),
    File(PathBuf),
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Passphrase::Text(_) => f.write_str("Passphrase(<redacted>)"),
            Passphrase::File(path) => write!(f, "Passphrase(file {})", path.display()),
        }
    }
}

/// Where the KEK comes from.
#[derive(Clone)]
pub enum KekSource {
    /// `--kek-file`, or `<data-dir>/kek` (the dev default: `dev` is true).
    File {
        path: PathBuf,
        dev: bool,
    },
    /// `CHATSEAL_KEK`.
    Env(Zeroizing<String>),
    Passphrase(Passphrase),
    Token(TokenConfig),
}

impl std::fmt::Debug for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KekArgs {
    /// The configured source, if any; more than one is refused.
    pub fn source(&self) -> anyhow::Result<Option<KekSource>> {
        let mut found = Vec::new();
        if let Some(path) = &self.kek_file {
            found.push(KekSource::File {
                path: path.clone(),
                dev: false,
            });
        }
        if let Some(text) = &self.kek {
            found.push(KekSource::Env(Zeroizing::new(text.clone())));
        }
        match (&self.kek_passphrase, &self.kek_passphrase_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "CHATSEAL_KEK_PASSPHRASE and --kek-passphrase-file are both set: keep one"
            ),
            (Some(text), None) => found.push(KekSource::Passphrase(Passphrase::Text(
                Zeroizing::new(text.clone()),
            ))),
            (None, Some(path)) => found.push(KekSource::Passphrase(Passphrase::File(path.clone()))),
            (None, None) => {}
        }
        if let Some(module) = &self.pkcs11_module {
            let pin = match (&self.pkcs11_pin, &self.pkcs11_pin_file) {
                (Some(_), Some(_)) => anyhow::bail!(
                    "CHATSEAL_PKCS11_PIN and --pkcs11-pin-file are both set: keep one"
                ),
                (Some(pin), None) => Pin::Text(Zeroizing::new(pin.clone())),
                (None, Some(path)) => Pin::File(path.clone()),
                (None, None) => anyhow::bail!(
                    "--pkcs11-module needs the token's PIN: CHATSEAL_PKCS11_PIN or --pkcs11-pin-file"
                ),
            };
            anyhow::ensure!(
                !self.pkcs11_key_label.is_empty()
                    && self.pkcs11_key_label.len() <= chatseal_core::wrapped::MAX_TOKEN_LABEL
                    && !self.pkcs11_key_label.chars().any(char::is_control),
                "--pkcs11-key-label must be 1 to {} bytes without control characters",
                chatseal_core::wrapped::MAX_TOKEN_LABEL
            );
            found.push(KekSource::Token(TokenConfig {
                module: module.clone(),
                token: self.pkcs11_token.clone(),
                slot: self.pkcs11_slot,
                pin,
                key_label: self.pkcs11_key_label.clone(),
            }));
        } else if self.pkcs11_pin.is_some()
            || self.pkcs11_pin_file.is_some()
            || self.pkcs11_token.is_some()
            || self.pkcs11_slot.is_some()
        {
            anyhow::bail!(
                "PKCS#11 settings are given without --pkcs11-module / CHATSEAL_PKCS11_MODULE"
            );
        }
        anyhow::ensure!(
            found.len() <= 1,
            "more than one key-encryption key is configured ({}): keep one",
            found
                .iter()
                .map(KekSource::describe)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(found.pop())
    }

    /// Checks what can be checked without reading a secret.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(KekSource::Token(token)) = self.source()? {
            super::pkcs11::check_module(&token.module)?;
        }
        Ok(())
    }
}

impl KekSource {
    /// How messages and logs name it (never its value).
    pub fn describe(&self) -> String {
        match self {
            KekSource::File { path, dev: false } => format!("KEK file {}", path.display()),
            KekSource::File { path, dev: true } => {
                format!("the development KEK file {}", path.display())
            }
            KekSource::Env(_) => "$CHATSEAL_KEK".to_owned(),
            KekSource::Passphrase(Passphrase::Text(_)) => {
                "the passphrase in $CHATSEAL_KEK_PASSPHRASE".to_owned()
            }
            KekSource::Passphrase(Passphrase::File(path)) => {
                format!("the passphrase in {}", path.display())
            }
            KekSource::Token(token) => token.describe(),
        }
    }

    fn raw_kek(&self) -> anyhow::Result<Kek> {
        match self {
            KekSource::File { path, .. } => Kek::load_file(path)
                .with_context(|| format!("cannot read the KEK file {}", path.display())),
            KekSource::Env(text) => Kek::from_base64(text).context("CHATSEAL_KEK"),
            _ => unreachable!("raw_kek of a derived source"),
        }
    }

    fn passphrase(&self) -> anyhow::Result<Zeroizing<String>> {
        let KekSource::Passphrase(p) = self else {
            unreachable!("passphrase of another source")
        };
        let text = match p {
            Passphrase::Text(text) => text.clone(),
            Passphrase::File(path) => read_secret_line(path, "passphrase")?,
        };
        anyhow::ensure!(!text.is_empty(), "{} is empty", self.describe());
        Ok(text)
    }

    /// Opens `wrapped`. Every refusal says which KEK the file needs and how
    /// to give it; a wrong KEK is never a reason to make a new keyring.
    pub fn open(
        &self,
        wrapped: &WrappedKeyring,
        what: &str,
    ) -> anyhow::Result<(Keyring, Wrapping)> {
        let needs = needs(wrapped);
        let kek = match (self, &wrapped.kdf, &wrapped.token) {
            (KekSource::Passphrase(_), Some(params), None) => {
                Kek::from_passphrase(self.passphrase()?.as_bytes(), params)?
            }
            (KekSource::Token(token), None, Some(wrap)) => token.open_kek(wrap, &wrapped.kek_id)?,
            (KekSource::File { .. } | KekSource::Env(_), None, None) => self.raw_kek()?,
            _ => anyhow::bail!(
                "{what} is wrapped under {needs}, but the configured key-encryption key is {}. \
                 {}",
                self.describe(),
                how_to_give(wrapped)
            ),
        };
        let keyring = wrapped.open(&kek).map_err(|e| match e.kind() {
            chatseal_core::ErrorKind::WrongKek => anyhow::anyhow!(
                "{what} is wrapped under KEK {}, and {} is KEK {}: wrong key-encryption key. \
                 Give the one it was wrapped under ({}); the server never makes a new keyring \
                 in its place",
                hex(&wrapped.kek_id),
                self.describe(),
                hex(&kek.id()),
                how_to_give(wrapped)
            ),
            _ => anyhow::Error::new(e).context(format!("{what} does not open")),
        })?;
        Ok((
            keyring,
            Wrapping {
                kek,
                kdf: wrapped.kdf.clone(),
                token: wrapped.token.clone(),
            },
        ))
    }

    /// A new wrapping under this source: the KEK from the file or variable,
    /// from the passphrase with fresh parameters and salt, or a fresh KEK
    /// sealed by the token (whose key is created if `create_token_key`).
    pub fn new_wrapping(&self, create_token_key: bool) -> anyhow::Result<Wrapping> {
        match self {
            KekSource::File { .. } | KekSource::Env(_) => Ok(Wrapping {
                kek: self.raw_kek()?,
                kdf: None,
                token: None,
            }),
            KekSource::Passphrase(_) => {
                let passphrase = self.passphrase()?;
                anyhow::ensure!(
                    passphrase.chars().count() >= MIN_PASSPHRASE,
                    "{} has {} characters; a new wrap wants {MIN_PASSPHRASE} or more",
                    self.describe(),
                    passphrase.chars().count()
                );
                let params = KdfParams::generate();
                Ok(Wrapping {
                    kek: Kek::from_passphrase(passphrase.as_bytes(), &params)?,
                    kdf: Some(params),
                    token: None,
                })
            }
            KekSource::Token(token) => {
                let kek = Kek::generate();
                let (wrap, _created) = token.seal_kek(&kek, create_token_key)?;
                Ok(Wrapping {
                    kek,
                    kdf: None,
                    token: Some(wrap),
                })
            }
        }
    }
}

/// How a wrapped keyring is written back: the KEK it was opened with (or a
/// new one) and what the file stores beside the sealed keyring. Rewriting
/// with it (a rotation) keeps the same KEK, salt and token seal.
#[derive(Clone)]
pub struct Wrapping {
    kek: Kek,
    kdf: Option<KdfParams>,
    token: Option<TokenWrap>,
}

impl std::fmt::Debug for Wrapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wrapping(KEK {})", hex(&self.kek.id()))
    }
}

impl Wrapping {
    /// `keyring` sealed under this KEK, fresh nonce.
    pub fn seal(&self, keyring: &Keyring) -> WrappedKeyring {
        let mut out = WrappedKeyring::seal(keyring, &self.kek, self.kdf.clone());
        out.token = self.token.clone();
        out
    }

    /// The KEK's id, as files and messages show it.
    pub fn kek_id(&self) -> String {
        hex(&self.kek.id())
    }
}

/// What a wrapped file needs, for messages.
fn needs(wrapped: &WrappedKeyring) -> String {
    let id = hex(&wrapped.kek_id);
    match (&wrapped.kdf, &wrapped.token) {
        (Some(_), _) => format!("a passphrase (KEK {id}, argon2id)"),
        (_, Some(t)) => format!(
            "a KEK sealed by the PKCS#11 key {:?} (KEK {id})",
            t.key_label
        ),
        _ => format!("KEK {id}"),
    }
}

fn how_to_give(wrapped: &WrappedKeyring) -> &'static str {
    match (&wrapped.kdf, &wrapped.token) {
        (Some(_), _) => "set CHATSEAL_KEK_PASSPHRASE or --kek-passphrase-file",
        (_, Some(_)) => {
            "set --pkcs11-module, --pkcs11-token, --pkcs11-pin-file and --pkcs11-key-label \
             (or their CHATSEAL_PKCS11_* variables)"
        }
        _ => "set --kek-file / CHATSEAL_KEK_FILE or CHATSEAL_KEK",
    }
}

/// Says which KEK a wrapped keyring needs, for a start without one.
pub fn missing(wrapped: &WrappedKeyring, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} is a wrapped keyring under {}, and no key-encryption key is configured: {}. \
         The server never makes a new keyring in its place",
        needs(wrapped),
        how_to_give(wrapped)
    )
}

/// Lowercase hex of a KEK id.
pub fn hex(id: &[u8; 8]) -> String {
    chatseal_core::kek::kek_id_hex(id)
}

/// The first line of a small secret file (a passphrase or a PIN), refusing
/// one that group or others can read.
pub fn read_secret_line(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let meta = file.metadata()?;
    let mode = meta.permissions().mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "the {what} file {} is readable by group or others (mode {mode:o}); chmod 600 it",
        path.display()
    );
    anyhow::ensure!(
        meta.len() <= MAX_SECRET_FILE,
        "the {what} file {} is larger than {MAX_SECRET_FILE} bytes",
        path.display()
    );
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .with_context(|| format!("the {what} file {} is not UTF-8 text", path.display()))?;
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    Ok(Zeroizing::new(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        kek: KekArgs,
    }

    fn args(list: &[&str]) -> KekArgs {
        let mut all = vec!["x"];
        all.extend_from_slice(list);
        Cli::parse_from(all).kek
    }

    #[test]
    fn one_source_at_most_and_pkcs11_needs_a_pin() {
        assert!(args(&[]).source().unwrap().is_none());
        let both = args(&["--kek-file", "/k", "--kek-passphrase", "a long passphrase"]);
        let err = both.source().unwrap_err().to_string();
        assert!(err.contains("more than one"), "{err}");
        assert!(!err.contains("a long passphrase"), "{err}");
        let err = args(&["--pkcs11-module", "/m.so"]).source().unwrap_err();
        assert!(err.to_string().contains("PIN"), "{err}");
        let err = args(&["--pkcs11-pin", "1234"]).source().unwrap_err();
        assert!(err.to_string().contains("--pkcs11-module"), "{err}");
        let shown = format!("{:?}", args(&["--kek", "c2VjcmV0", "--pkcs11-pin", "9876"]));
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("9876"),
            "{shown}"
        );
    }

    #[test]
    fn a_wrong_kek_or_the_wrong_kind_is_named_never_opened() {
        let dir = std::env::temp_dir().join(format!("chatseal-kek-unit-{}", uuid::Uuid::now_v7()));
        let (right, wrong) = (dir.join("right"), dir.join("wrong"));
        Kek::generate().create_file(&right).unwrap();
        Kek::generate().create_file(&wrong).unwrap();
        let source = |path: &Path| KekSource::File {
            path: path.to_owned(),
            dev: false,
        };
        let keyring = Keyring::generate();
        let wrapping = source(&right).new_wrapping(false).unwrap();
        let wrapped = wrapping.seal(&keyring);
        let (opened, again) = source(&right).open(&wrapped, "the file").unwrap();
        assert_eq!(opened.check_value(1), keyring.check_value(1));
        assert_eq!(again.kek_id(), wrapping.kek_id());
        let err = source(&wrong)
            .open(&wrapped, "the file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong key-encryption key"), "{err}");
        assert!(err.contains(&wrapping.kek_id()), "{err}");
        assert!(err.contains("never makes a new keyring"), "{err}");
        let pass =
            KekSource::Passphrase(Passphrase::Text(Zeroizing::new("a long passphrase".into())));
        let err = pass.open(&wrapped, "the file").unwrap_err().to_string();
        assert!(err.contains("--kek-file"), "{err}");
        let short = KekSource::Passphrase(Passphrase::Text(Zeroizing::new("short".into())));
        assert!(short.new_wrapping(false).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
