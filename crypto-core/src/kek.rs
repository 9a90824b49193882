//! Key-encryption keys (KEKs): the key a keyring is wrapped under at rest.
//!
//! A KEK is 32 bytes held apart from the data dir (a file elsewhere, an
//! environment variable, a passphrase, later an HSM), so a copy of the data
//! dir or a backup without it opens nothing. It never seals a message itself:
//! the engine derives from it, with HKDF-SHA256 under labels of its own,
//!
//! * the **KEK id**, 8 bytes that name the KEK (`info = "chatseal/v1/kek-id"`),
//!   written beside a wrapped keyring so a wrong KEK is a clear `WRONG_KEK`
//!   rather than a failed tag or, worse, a silently generated new keyring;
//! * the **wrapping key**, the AES-256-GCM key the keyring is sealed with
//!   (`info = "chatseal/v1/keyring-wrap"`).
//!
//! The labels differ from the room-key label, so even 32 bytes used by
//! mistake both as a master key and as a KEK give unrelated keys.
//!
//! From a passphrase the KEK is argon2id over it with stored [`KdfParams`]
//! (64 MiB, 3 passes, 1 lane by default: above OWASP's minimum of 19 MiB and
//! 2 passes) and a 16-byte random salt. Parameters read from a file are
//! outside input, so they are bounded (at most 1 GiB, 16 passes, 16 lanes)
//! and never weaker than OWASP's minimum.

use std::fmt;
use std::path::Path;

use ring::hkdf;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::keyring_file::{create_private_dir, read_private, sync_dir, write_private};
use crate::secret::{KEY_LEN, SecretKey};

/// Length of a KEK id.
pub const KEK_ID_LEN: usize = 8;
/// The HKDF `info` of the KEK id.
pub const KEK_ID_INFO: &[u8] = b"chatseal/v1/kek-id";
/// The HKDF `info` of the wrapping key.
pub const KEYRING_WRAP_INFO: &[u8] = b"chatseal/v1/keyring-wrap";
/// Length of the argon2id salt.
pub const SALT_LEN: usize = 16;

/// A 32-byte key-encryption key. Wiped on drop; `Debug` shows only its id.
#[derive(Clone)]
pub struct Kek(SecretKey);

impl Kek {
    /// Takes ownership of `bytes`.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretKey::from_bytes(bytes))
    }

    /// Copies from a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        SecretKey::from_slice(bytes).map(Self)
    }

    /// 32 fresh bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(SecretKey::generate())
    }

    /// Standard base64 of 32 bytes, as a KEK file or variable holds it
    /// (surrounding whitespace, such as a trailing newline, is ignored).
    pub fn from_base64(text: &str) -> Result<Self> {
        use base64::Engine as _;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| Error::InvalidKeyring("a KEK is not valid standard base64".into()))?,
        );
        Self::from_slice(&bytes)
            .ok_or_else(|| Error::InvalidKeyring(format!("a KEK is {} bytes, not 32", bytes.len())))
    }

    /// The KEK derived from `passphrase` with `params` (argon2id v1.3).
    pub fn from_passphrase(passphrase: &[u8], params: &KdfParams) -> Result<Self> {
        params.check()?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params.argon2_params()?,
        );
        let mut blocks =
            Zeroizing::new(vec![argon2::Block::default(); argon.params().block_count()]);
        let mut out = [0u8; KEY_LEN];
        let outcome =
            argon.hash_password_into_with_memory(passphrase, &params.salt, &mut out, &mut *blocks);
        let kek = outcome.map(|()| Self::from_bytes(out));
        out.zeroize();
        kek.map_err(|e| Error::InvalidKeyring(format!("argon2id refused the input: {e}")))
    }

    /// The 8-byte id that names this KEK (not secret: a one-way function of
    /// the key, useful to no one without it).
    pub fn id(&self) -> [u8; KEK_ID_LEN] {
        let mut id = [0u8; KEK_ID_LEN];
        hkdf_expand(&self.0, KEK_ID_INFO, &mut id);
        id
    }

    /// The AES-256-GCM key a keyring is sealed with.
    pub(crate) fn wrapping_key(&self) -> SecretKey {
        let mut out = [0u8; KEY_LEN];
        hkdf_expand(&self.0, KEYRING_WRAP_INFO, &mut out);
        let key = SecretKey::from_bytes(out);
        out.zeroize();
        key
    }

    /// The key bytes, to store the KEK (a KEK file holds their base64).
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose()
    }

    /// Reads a KEK file: standard base64 of 32 bytes (a trailing newline is
    /// fine), with the checks of a keyring file (`INSECURE_KEY_FILE` if
    /// group or others may read it or another user may replace it).
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_private(path, MAX_KEK_FILE)?;
        Self::from_base64(&text).map_err(|e| match e {
            Error::InvalidKeyring(why) => {
                Error::InvalidKeyring(format!("{}: {why}", path.display()))
            }
            other => other,
        })
    }

    /// Writes this KEK to a new file (its base64 and a newline, mode 0600;
    /// the directory is made 0700 if missing). Never replaces a file: a KEK
    /// file may be the only copy of the key that opens a keyring. `IO` with
    /// `AlreadyExists` if there is one.
    pub fn create_file(&self, path: impl AsRef<Path>) -> Result<()> {
        use base64::Engine as _;
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(io)?;
        }
        let mut text =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.expose()));
        text.push('\n');
        write_private(path, text.as_bytes()).map_err(io)?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(dir).map_err(io)?;
        }
        Ok(())
    }
}

/// Largest KEK file read (base64 of 32 bytes is 44 characters; room for
/// whitespace around it).
pub const MAX_KEK_FILE: usize = 1024;

/// The id as lowercase hex, as files and errors show it.
pub fn kek_id_hex(id: &[u8; KEK_ID_LEN]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(id {}, <redacted>)", kek_id_hex(&self.id()))
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 with an empty salt, as room keys are derived.
fn hkdf_expand(ikm: &SecretKey, info: &[u8], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(ikm.expose());
    prk.expand(&[info], Len(out.len()))
        .expect("at most 32 bytes is within HKDF-SHA256's output limit")
        .fill(out)
        .expect("length matches");
}

/// argon2id parameters and salt, stored in a wrapped keyring file made from
/// a passphrase so the same KEK can be derived again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// Random salt.
    pub salt: [u8; SALT_LEN],
}

impl KdfParams {
    /// Default memory: 64 MiB.
    pub const DEFAULT_M_COST: u32 = 64 * 1024;
    /// Default passes.
    pub const DEFAULT_T_COST: u32 = 3;
    /// Default lanes.
    pub const DEFAULT_P_COST: u32 = 1;
    /// OWASP's minimum memory for argon2id (19 MiB, with 2 passes).
    pub const MIN_M_COST: u32 = 19 * 1024;
    /// OWASP's minimum passes at that memory.
    pub const MIN_T_COST: u32 = 2;
    /// Most memory a file may ask for (1 GiB), so a crafted file cannot
    /// exhaust memory.
    pub const MAX_M_COST: u32 = 1024 * 1024;
    /// Most passes a file may ask for.
    pub const MAX_T_COST: u32 = 16;
    /// Most lanes a file may ask for.
    pub const MAX_P_COST: u32 = 16;

    /// The default parameters with a fresh random salt.
    pub fn generate() -> Self {
        let mut salt = [0u8; SALT_LEN];
        crate::nonce::fill_from_os(&mut salt);
        Self {
            m_cost: Self::DEFAULT_M_COST,
            t_cost: Self::DEFAULT_T_COST,
            p_cost: Self::DEFAULT_P_COST,
            salt,
        }
    }

    /// Refuses parameters weaker than OWASP's minimum or beyond the bounds.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidKeyring(format!("argon2id {what}")));
        if !(Self::MIN_M_COST..=Self::MAX_M_COST).contains(&self.m_cost) {
            return bad(format!(
                "memory {} KiB is outside {}..={} KiB",
                self.m_cost,
                Self::MIN_M_COST,
                Self::MAX_M_COST
            ));
        }
        if !(Self::MIN_T_COST..=Self::MAX_T_COST).contains(&self.t_cost) {
            return bad(format!(
                "passes {} are outside {}..={}",
                self.t_cost,
                Self::MIN_T_COST,
                Self::MAX_T_COST
            ));
        }
        if !(1..=Self::MAX_P_COST).contains(&self.p_cost) {
            return bad(format!(
                "lanes {} are outside 1..={}",
                self.p_cost,
                Self::MAX_P_COST
            ));
        }
        Ok(())
    }

    fn argon2_params(&self) -> Result<argon2::Params> {
        argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| Error::InvalidKeyring(format!("argon2id parameters: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn weakest_allowed(salt: u8) -> KdfParams {
        KdfParams {
            m_cost: KdfParams::MIN_M_COST,
            t_cost: KdfParams::MIN_T_COST,
            p_cost: 1,
            salt: [salt; SALT_LEN],
        }
    }

    #[test]
    fn id_and_wrapping_key_are_hkdf_under_their_own_labels() {
        use ring::hmac;
        let kek = Kek::from_bytes([7; 32]);
        // HKDF with an empty salt: PRK = HMAC(0^32, ikm), OKM = HMAC(PRK, info ‖ 1).
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]), &[7; 32]);
        let okm = |info: &[u8]| {
            let mut m = info.to_vec();
            m.push(1);
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &m)
        };
        assert_eq!(kek.id(), okm(b"chatseal/v1/kek-id").as_ref()[..8]);
        assert_eq!(
            kek.wrapping_key().expose(),
            okm(b"chatseal/v1/keyring-wrap").as_ref()
        );
        // Not the room key of any room under the same 32 bytes.
        let as_master = crate::room::derive_room_key(&SecretKey::from_bytes([7; 32]), "");
        assert_ne!(as_master.unwrap().expose(), kek.wrapping_key().expose());
    }

    #[test]
    fn debug_shows_the_id_never_the_key() {
        let kek = Kek::from_bytes([0xAB; 32]);
        let shown = format!("{kek:?}");
        assert!(shown.contains(&kek_id_hex(&kek.id())), "{shown}");
        assert!(!shown.contains("abab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn base64_kek_wants_32_bytes() {
        let ok = Kek::from_base64(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
        assert_eq!(ok.expose(), &[0; 32]);
        for bad in ["AAAA", "not base64!", ""] {
            assert_eq!(
                Kek::from_base64(bad).unwrap_err().kind(),
                ErrorKind::InvalidKeyring
            );
        }
    }

    #[test]
    fn kek_files_are_private_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "chatseal-core-kek-{}-{:x}",
            std::process::id(),
            u32::from_be_bytes(crate::nonce::fresh()[..4].try_into().unwrap())
        ));
        let path = dir.join("sub").join("kek");
        let kek = Kek::generate();
        kek.create_file(&path).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(Kek::load_file(&path).unwrap().id(), kek.id());
        let err = Kek::generate().create_file(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(Kek::load_file(&path).unwrap().id(), kek.id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            Kek::load_file(&path).unwrap_err().kind(),
            ErrorKind::InsecureKeyFile
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = Kek::load_file(&path).unwrap_err();
        assert!(err.to_string().contains("not 32"), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn passphrase_gives_the_same_kek_for_the_same_salt_only() {
        let a = Kek::from_passphrase(b"correct horse", &weakest_allowed(1)).unwrap();
        let again = Kek::from_passphrase(b"correct horse", &weakest_allowed(1)).unwrap();
        let other_salt = Kek::from_passphrase(b"correct horse", &weakest_allowed(2)).unwrap();
        let other_pass = Kek::from_passphrase(b"correct horsf", &weakest_allowed(1)).unwrap();
        assert_eq!(a.id(), again.id());
        assert_ne!(a.id(), other_salt.id());
        assert_ne!(a.id(), other_pass.id());
    }

    #[test]
    fn parameters_from_a_file_are_bounded() {
        assert!(KdfParams::generate().check().is_ok());
        for bad in [
            KdfParams {
                m_cost: KdfParams::MIN_M_COST - 1,
                ..weakest_allowed(0)
            },
            KdfParams {
                m_cost: KdfParams::MAX_M_COST + 1,
                ..weakest_allowed(0)
            },
            KdfParams {
                t_cost: 1,
                ..weakest_allowed(0)
            },
            KdfParams {
                t_cost: 17,
                ..weakest_allowed(0)
            },
            KdfParams {
                p_cost: 0,
                ..weakest_allowed(0)
            },
            KdfParams {
                p_cost: 17,
                ..weakest_allowed(0)
            },
        ] {
            let err = Kek::from_passphrase(b"x", &bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKeyring, "{bad:?}");
        }
    }
}
