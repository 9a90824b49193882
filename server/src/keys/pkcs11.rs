//! A KEK protected by a PKCS#11 token (an HSM; SoftHSM2 in the tests).
//!
//! The token holds an AES-256 key (`CKA_LABEL` = `--pkcs11-key-label`,
//! sensitive, never extractable) that never leaves it. The keyring is
//! wrapped as always (docs/format.md §8) under a random 32-byte KEK, and
//! that KEK is sealed **by the token** with AES-256-GCM (`CKM_AES_GCM`,
//! 12-byte nonce, 128-bit tag, associated data `"chatseal kek v1" ‖ 0 ‖
//! kek_id`); the sealed KEK is stored in the file's `token` field. Opening
//! asks the token to open it; without the token (and its PIN) the file
//! opens nothing.
//!
//! Each operation loads the module, logs in, does its one call and
//! finalizes, under a process-wide lock (a module is initialized once per
//! process at a time).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use chatseal_core::wrapped::{TOKEN_SEALED_KEK_LEN, TokenWrap, token_aad};
use chatseal_core::{Kek, Zeroizing};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// Where the token's PIN comes from.
#[derive(Clone)]
pub enum Pin {
    /// `CHATSEAL_PKCS11_PIN`.
    Text(Zeroizing<String>),
    /// `--pkcs11-pin-file`: the PIN on its first line, mode 0600.
    File(PathBuf),
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pin::Text(_) => f.write_str("Pin(<redacted>)"),
            Pin::File(path) => write!(f, "Pin(file {})", path.display()),
        }
    }
}

/// A token and the key on it that protects the KEK.
#[derive(Clone)]
pub struct TokenConfig {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label, or
    pub token: Option<String>,
    /// its slot id.
    pub slot: Option<u64>,
    pub pin: Pin,
    /// `CKA_LABEL` of the AES key.
    pub key_label: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("slot", &self.slot)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// One module initialized at a time in this process.
static TOKEN_LOCK: Mutex<()> = Mutex::new(());

impl TokenConfig {
    /// How messages name it.
    pub fn describe(&self) -> String {
        let token = match (&self.token, self.slot) {
            (Some(label), _) => format!("token {label:?}"),
            (None, Some(slot)) => format!("slot {slot}"),
            (None, None) => "the only token".to_owned(),
        };
        format!(
            "PKCS#11 key {:?} on {token} ({})",
            self.key_label,
            self.module.display()
        )
    }

    /// Seals `kek` with the token's key; with `create`, generates that key
    /// on the token first if there is none (returns whether it did).
    pub fn seal_kek(&self, kek: &Kek, create: bool) -> anyhow::Result<(TokenWrap, bool)> {
        self.with_session(|session| {
            let (key, created) = match self.find_key(session)? {
                Some(key) => (key, false),
                None if create => (self.generate_key(session)?, true),
                None => return Err(self.no_key()),
            };
            let mut nonce = [0u8; 12];
            {
                use rand_core::{OsRng, TryRngCore as _};
                OsRng.try_fill_bytes(&mut nonce)?;
            }
            let aad = token_aad(&kek.id());
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, &aad, 128.into())?;
            let sealed = session
                .encrypt(&Mechanism::AesGcm(params), key, kek.expose())
                .map_err(|e| {
                    anyhow::anyhow!("{}: AES-GCM encryption refused: {e}", self.describe())
                })?;
            anyhow::ensure!(
                sealed.len() == TOKEN_SEALED_KEK_LEN,
                "{}: AES-GCM gave {} bytes, not {TOKEN_SEALED_KEK_LEN}",
                self.describe(),
                sealed.len()
            );
            Ok((
                TokenWrap {
                    key_label: self.key_label.clone(),
                    nonce,
                    sealed_kek: sealed,
                },
                created,
            ))
        })
    }

    /// Asks the token to open the KEK sealed in `wrap`, which a file names
    /// `kek_id`. A wrong key (another token, another label) fails the tag.
    pub fn open_kek(&self, wrap: &TokenWrap, kek_id: &[u8; 8]) -> anyhow::Result<Kek> {
        anyhow::ensure!(
            wrap.key_label == self.key_label,
            "the keyring's KEK is sealed by the PKCS#11 key {:?}, not {:?}: set \
             --pkcs11-key-label / CHATSEAL_PKCS11_KEY_LABEL to {:?}",
            wrap.key_label,
            self.key_label,
            wrap.key_label
        );
        self.with_session(|session| {
            let key = self.find_key(session)?.ok_or_else(|| self.no_key())?;
            let aad = token_aad(kek_id);
            let mut iv = wrap.nonce;
            let params = GcmParams::new(&mut iv, &aad, 128.into())?;
            let opened = Zeroizing::new(
                session
                    .decrypt(&Mechanism::AesGcm(params), key, &wrap.sealed_kek)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{} does not open the keyring's KEK ({e}): this is not the token \
                             key it was sealed with",
                            self.describe()
                        )
                    })?,
            );
            Kek::from_slice(&opened)
                .ok_or_else(|| anyhow::anyhow!("the token opened a KEK of {} bytes", opened.len()))
        })
    }

    fn no_key(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "no AES key labelled {:?} on {}: `chatseal-server keys wrap` or `keys rekey-kek` with \
             these settings creates one, or name the right one with --pkcs11-key-label",
            self.key_label,
            self.describe()
        )
    }

    fn find_key(&self, session: &Session) -> anyhow::Result<Option<ObjectHandle>> {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
        ])?;
        anyhow::ensure!(
            found.len() <= 1,
            "{} AES keys are labelled {:?} on the token; give the KEK's key a label of its own",
            found.len(),
            self.key_label
        );
        Ok(found.first().copied())
    }

    fn generate_key(&self, session: &Session) -> anyhow::Result<ObjectHandle> {
        let key = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(self.key_label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .with_context(|| format!("cannot create an AES key on {}", self.describe()))?;
        tracing::info!(key = %self.describe(), "created the KEK's AES-256 key on the token (sensitive, not extractable)");
        Ok(key)
    }

    /// Loads the module, opens a logged-in session on the token, runs `f`,
    /// and finalizes the module whatever happened.
    fn with_session<T>(&self, f: impl FnOnce(&Session) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let _one = TOKEN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = Pkcs11::new(&self.module)
            .with_context(|| format!("cannot load the PKCS#11 module {}", self.module.display()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .with_context(|| {
                format!(
                    "the PKCS#11 module {} does not initialize",
                    self.module.display()
                )
            })?;
        let outcome = (|| {
            let slot = self.slot(&ctx)?;
            let session = ctx
                .open_rw_session(slot)
                .with_context(|| format!("cannot open a session on {}", self.describe()))?;
            let pin = self.read_pin()?;
            session
                .login(UserType::User, Some(&pin))
                .with_context(|| format!("{}: login refused (wrong PIN?)", self.describe()))?;
            let out = f(&session);
            let _ = session.logout();
            out
        })();
        let _ = ctx.finalize();
        outcome
    }

    fn slot(&self, ctx: &Pkcs11) -> anyhow::Result<Slot> {
        let slots = ctx.get_slots_with_initialized_token()?;
        if let Some(id) = self.slot {
            return slots.into_iter().find(|s| s.id() == id).ok_or_else(|| {
                anyhow::anyhow!(
                    "no initialized token in slot {id} of {}",
                    self.module.display()
                )
            });
        }
        let mut seen = Vec::new();
        for slot in slots {
            let label = ctx.get_token_info(slot)?.label().trim_end().to_owned();
            if self.token.as_deref() == Some(label.as_str()) {
                return Ok(slot);
            }
            seen.push((slot, label));
        }
        let module = self.module.display();
        match (&self.token, seen.as_slice()) {
            (None, [(slot, _)]) => Ok(*slot),
            (None, []) => anyhow::bail!("{module} has no initialized token"),
            (None, _) => anyhow::bail!(
                "{module} has several tokens: choose one with --pkcs11-token (label) or --pkcs11-slot"
            ),
            (Some(want), _) => anyhow::bail!(
                "no token labelled {want:?} in {module} (tokens: {})",
                seen.iter()
                    .map(|(_, l)| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn read_pin(&self) -> anyhow::Result<AuthPin> {
        let text = match &self.pin {
            Pin::Text(pin) => pin.clone(),
            Pin::File(path) => super::kek::read_secret_line(path, "PIN")?,
        };
        anyhow::ensure!(!text.is_empty(), "the PKCS#11 PIN is empty");
        Ok(AuthPin::from(text.as_str()))
    }
}

/// Whether `path` looks like a module that exists (checked at start so a
/// typo is named before the token is asked anything).
pub fn check_module(path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.is_file(),
        "the PKCS#11 module {} does not exist (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)",
        path.display()
    );
    Ok(())
}
