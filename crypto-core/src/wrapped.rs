//! The wrapped keyring: a keyring sealed under a key-encryption key, so the
//! master keys are never bare at rest (docs/format.md §8).
//!
//! The sealed form is an envelope v1 (the same bytes as a chat message) with
//! its own key and context, so nothing that opens one can be fooled by the
//! other:
//!
//! ```text
//! key      = HKDF-SHA256(KEK, info = "chatseal/v1/keyring-wrap")
//! key id   = the first 4 bytes of the KEK id, big-endian
//! context  = "chatseal keyring v1" ‖ 0x00 ‖ KEK id (8 bytes)
//! sealed   = envelope v1 of the keyring's JSON form
//! ```
//!
//! The file around it is JSON:
//!
//! ```json
//! {"format": "chatseal wrapped keyring", "version": 1,
//!  "kek_id": "<16 hex>", "kdf": {…argon2id, only from a passphrase…},
//!  "sealed": "<base64 envelope>"}
//! ```
//!
//! Opening checks the KEK id first, so a wrong KEK or passphrase is
//! `WRONG_KEK`, distinct from tampering (`BAD_TAG`). Wrapped files are read
//! and written with the same rules as plain keyring files (0600, owner and
//! directory checked, atomic replace).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::aead::Aes256Gcm;
use crate::envelope::{self, HEADER_LEN, Header};
use crate::error::{Error, Result};
use crate::kek::{KEK_ID_LEN, KdfParams, Kek, SALT_LEN, kek_id_hex};
use crate::keyring::Keyring;
use crate::keyring_file::{MAX_KEYRING_JSON, read_private, redact_serde, save_private};
use crate::nonce::NONCE_LEN;

/// The first part of a wrapped keyring's context.
pub const KEYRING_CONTEXT_LABEL: &[u8] = b"chatseal keyring v1";
/// The `format` field of a wrapped keyring file.
pub const WRAPPED_FORMAT: &str = "chatseal wrapped keyring";
/// The `version` field this engine writes and reads.
pub const WRAPPED_VERSION: u32 = 1;
/// Largest wrapped keyring file accepted: a 1 MiB keyring in base64, plus
/// room for the other fields.
pub const MAX_WRAPPED_JSON: usize = MAX_KEYRING_JSON / 3 * 4 + 8192;

/// Whether `json` is a wrapped keyring file (its `format` field says so),
/// so a plain-keyring reader can say what it was given.
pub(crate) fn looks_wrapped(json: &str) -> bool {
    #[derive(Deserialize)]
    struct Format<'a> {
        #[serde(borrow)]
        format: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Format<'_>>(json)
        .is_ok_and(|f| f.format.as_deref() == Some(WRAPPED_FORMAT))
}

/// The associated data's context of a keyring wrapped under `kek_id`.
pub fn keyring_context(kek_id: &[u8; KEK_ID_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEYRING_CONTEXT_LABEL.len() + 1 + KEK_ID_LEN);
    out.extend_from_slice(KEYRING_CONTEXT_LABEL);
    out.push(0);
    out.extend_from_slice(kek_id);
    out
}

fn header_key_id(kek_id: &[u8; KEK_ID_LEN]) -> u32 {
    u32::from_be_bytes(kek_id[..4].try_into().expect("4 bytes"))
}

/// Seals `plaintext` (a keyring's JSON form) as a wrapped keyring.
pub(crate) fn seal_under(kek: &Kek, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let id = kek.id();
    let header = Header {
        key_id: header_key_id(&id),
        nonce: *nonce,
    }
    .to_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + envelope::OVERHEAD);
    out.extend_from_slice(&header);
    out.extend_from_slice(plaintext);
    let mut aad = header.to_vec();
    aad.extend_from_slice(&keyring_context(&id));
    let tag = Aes256Gcm::new(&kek.wrapping_key())
        .seal_in_place(nonce, &aad, &mut out[HEADER_LEN..])
        .expect("a keyring of at most 1 MiB is within AES-GCM's limit");
    out.extend_from_slice(&tag);
    out
}

fn wrong_kek(expected: &[u8; KEK_ID_LEN], got: &[u8; KEK_ID_LEN]) -> Error {
    Error::WrongKek {
        expected: kek_id_hex(expected),
        got: kek_id_hex(got),
    }
}

impl Keyring {
    /// Seals this keyring under `kek` (a fresh nonce): the binary sealed form.
    pub fn wrap(&self, kek: &Kek) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::nonce::fill_from_os(&mut nonce);
        self.wrap_with_nonce(kek, &nonce)
    }

    /// As [`Keyring::wrap`] with a chosen nonce; only tests and vectors may
    /// choose one.
    pub(crate) fn wrap_with_nonce(&self, kek: &Kek, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        seal_under(kek, nonce, self.to_json().as_bytes())
    }

    /// Opens the binary sealed form. `WRONG_KEK` if the header names
    /// another KEK, the envelope's own codes if it is malformed or altered,
    /// `INVALID_KEYRING` if what it holds is not a keyring.
    pub fn unwrap_sealed(sealed: &[u8], kek: &Kek) -> Result<Self> {
        let header = Header::parse(sealed)?;
        let id = kek.id();
        if header.key_id != header_key_id(&id) {
            let mut expected = [0u8; KEK_ID_LEN];
            expected[..4].copy_from_slice(&header.key_id.to_be_bytes());
            return Err(Error::WrongKek {
                expected: format!("{}…", &kek_id_hex(&expected)[..8]),
                got: kek_id_hex(&id),
            });
        }
        if sealed.len() - envelope::OVERHEAD > MAX_KEYRING_JSON {
            return Err(Error::TooLarge("a wrapped keyring holds at most 1 MiB"));
        }
        let mut aad = sealed[..HEADER_LEN].to_vec();
        aad.extend_from_slice(&keyring_context(&id));
        let mut buf = Zeroizing::new(sealed[HEADER_LEN..].to_vec());
        let plain =
            Aes256Gcm::new(&kek.wrapping_key()).open_in_place(&header.nonce, &aad, &mut buf)?;
        let json = std::str::from_utf8(plain)
            .map_err(|_| Error::InvalidKeyring("the wrapped keyring is not UTF-8".into()))?;
        Keyring::from_json(json)
    }
}

/// A wrapped keyring file: the sealed keyring, the id of its KEK and, when
/// the KEK comes from a passphrase, how to derive it again, or, when a
/// PKCS#11 token holds the key that protects it, the KEK sealed by the
/// token. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyring {
    /// Id of the KEK the keyring is sealed under.
    pub kek_id: [u8; KEK_ID_LEN],
    /// argon2id parameters and salt, if the KEK is from a passphrase.
    pub kdf: Option<KdfParams>,
    /// The KEK sealed by a key on a PKCS#11 token, if one holds it.
    pub token: Option<TokenWrap>,
    /// The binary sealed form.
    pub sealed: Vec<u8>,
}

/// The mechanism a token seals a KEK with.
pub const TOKEN_MECHANISM: &str = "CKM_AES_GCM";
/// Longest token key label a file may name.
pub const MAX_TOKEN_LABEL: usize = 128;
/// The first part of the associated data a token seals a KEK with.
pub const TOKEN_AAD_LABEL: &[u8] = b"chatseal kek v1";

/// A KEK sealed by an AES-256 key that never leaves a PKCS#11 token
/// (docs/format.md §8): AES-256-GCM on the token, 12-byte nonce, 16-byte
/// tag, associated data [`token_aad`]. The engine only carries it; the
/// server asks the token to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenWrap {
    /// `CKA_LABEL` of the token's key.
    pub key_label: String,
    /// The GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The sealed KEK: 32 bytes of ciphertext and the 16-byte tag.
    pub sealed_kek: Vec<u8>,
}

/// Length of [`TokenWrap::sealed_kek`].
pub const TOKEN_SEALED_KEK_LEN: usize = crate::secret::KEY_LEN + 16;

/// The associated data a token seals the KEK named `kek_id` with:
/// `"chatseal kek v1" ‖ 0x00 ‖ kek_id`, so a sealed KEK moved to a file
/// that names another KEK does not open.
pub fn token_aad(kek_id: &[u8; KEK_ID_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOKEN_AAD_LABEL.len() + 1 + KEK_ID_LEN);
    out.extend_from_slice(TOKEN_AAD_LABEL);
    out.push(0);
    out.extend_from_slice(kek_id);
    out
}

/// A keyring as stored: plain JSON, or wrapped. What a server reads from a
/// keyring file or variable before it knows which one it was given.
#[derive(Debug, Clone)]
pub enum StoredKeyring {
    /// The plain JSON form (§1): the keys are bare.
    Plain(Keyring),
    /// A wrapped keyring file (§8).
    Wrapped(WrappedKeyring),
}

impl StoredKeyring {
    /// Parses either form, told apart by the wrapped form's `format` field.
    pub fn from_json(json: &str) -> Result<Self> {
        if looks_wrapped(json) {
            WrappedKeyring::from_json(json).map(Self::Wrapped)
        } else {
            Keyring::from_json(json).map(Self::Plain)
        }
    }

    /// Loads a keyring file of either form, with the checks of a keyring
    /// file.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_json(&read_private(path.as_ref(), MAX_WRAPPED_JSON)?)
    }

    /// Reads either form from the environment variable `var`: JSON, or
    /// standard base64 of it. `Ok(None)` if it is not set.
    pub fn from_env(var: &str) -> Result<Option<Self>> {
        let Some(value) = std::env::var_os(var) else {
            return Ok(None);
        };
        let value = Zeroizing::new(
            value
                .into_string()
                .map_err(|_| Error::InvalidKeyring(format!("${var} is not UTF-8")))?,
        );
        let trimmed = value.trim();
        if trimmed.len() > MAX_WRAPPED_JSON / 3 * 4 + 4 {
            return Err(Error::InvalidKeyring(format!("${var} is too long")));
        }
        if trimmed.starts_with('{') {
            return Self::from_json(trimmed).map(Some);
        }
        let decoded = Zeroizing::new(STANDARD.decode(trimmed).map_err(|_| {
            Error::InvalidKeyring(format!("${var} is neither keyring JSON nor base64 of it"))
        })?);
        let json = std::str::from_utf8(&decoded)
            .map_err(|_| Error::InvalidKeyring(format!("${var} decodes to non-UTF-8")))?;
        Self::from_json(json).map(Some)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrappedJson {
    format: String,
    version: u32,
    kek_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<TokenJson>,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenJson {
    mechanism: String,
    key_label: String,
    nonce: String,
    sealed_kek: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    algorithm: String,
    version: u32,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

const ARGON2ID: &str = "argon2id";
const ARGON2_VERSION: u32 = 0x13;

impl WrappedKeyring {
    /// Wraps `keyring` under `kek`. `kdf` is stored as given: pass the
    /// parameters the KEK was derived with, or `None` for a raw KEK.
    pub fn seal(keyring: &Keyring, kek: &Kek, kdf: Option<KdfParams>) -> Self {
        Self {
            kek_id: kek.id(),
            kdf,
            token: None,
            sealed: keyring.wrap(kek),
        }
    }

    /// Wraps `keyring` under a KEK derived from `passphrase` with fresh
    /// default parameters and salt.
    pub fn seal_with_passphrase(keyring: &Keyring, passphrase: &[u8]) -> Result<Self> {
        let params = KdfParams::generate();
        let kek = Kek::from_passphrase(passphrase, &params)?;
        Ok(Self::seal(keyring, &kek, Some(params)))
    }

    /// Opens with `kek`: `WRONG_KEK` if the file names another KEK. For a
    /// file with a `token`, `kek` is the KEK the token opened.
    pub fn open(&self, kek: &Kek) -> Result<Keyring> {
        let id = kek.id();
        if id != self.kek_id {
            return Err(wrong_kek(&self.kek_id, &id));
        }
        Keyring::unwrap_sealed(&self.sealed, kek)
    }

    /// Derives the KEK from `passphrase` with the stored parameters, then
    /// opens. `WRONG_KEK` for a wrong passphrase.
    pub fn open_with_passphrase(&self, passphrase: &[u8]) -> Result<Keyring> {
        let params = self.kdf.as_ref().ok_or_else(|| {
            Error::InvalidKeyring(
                "this keyring is wrapped under a KEK, not a passphrase (it has no kdf)".into(),
            )
        })?;
        self.open(&Kek::from_passphrase(passphrase, params)?)
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        let doc = WrappedJson {
            format: WRAPPED_FORMAT.into(),
            version: WRAPPED_VERSION,
            kek_id: kek_id_hex(&self.kek_id),
            kdf: self.kdf.as_ref().map(|k| KdfJson {
                algorithm: ARGON2ID.into(),
                version: ARGON2_VERSION,
                m_cost: k.m_cost,
                t_cost: k.t_cost,
                p_cost: k.p_cost,
                salt: STANDARD.encode(k.salt),
            }),
            token: self.token.as_ref().map(|t| TokenJson {
                mechanism: TOKEN_MECHANISM.into(),
                key_label: t.key_label.clone(),
                nonce: STANDARD.encode(t.nonce),
                sealed_kek: STANDARD.encode(&t.sealed_kek),
            }),
            sealed: envelope::encode_text(&self.sealed),
        };
        let mut out = serde_json::to_string_pretty(&doc).expect("plain data serializes");
        out.push('\n');
        out
    }

    /// Parses the file's JSON text, checking every field (a plain keyring
    /// is refused here, and a wrapped one by [`Keyring::from_json`]).
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_WRAPPED_JSON {
            return Err(Error::InvalidKeyring(format!(
                "a wrapped keyring file is at most {MAX_WRAPPED_JSON} bytes"
            )));
        }
        let doc: WrappedJson = serde_json::from_str(json)
            .map_err(|e| Error::InvalidKeyring(format!("wrapped {}", redact_serde(&e))))?;
        if doc.format != WRAPPED_FORMAT {
            return Err(Error::InvalidKeyring(format!(
                "the format field is not {WRAPPED_FORMAT:?}"
            )));
        }
        if doc.version != WRAPPED_VERSION {
            return Err(Error::UnsupportedVersion(
                u8::try_from(doc.version).unwrap_or(u8::MAX),
            ));
        }
        let kek_id = parse_kek_id(&doc.kek_id)?;
        let kdf = doc.kdf.map(parse_kdf).transpose()?;
        let token = doc.token.map(parse_token).transpose()?;
        if kdf.is_some() && token.is_some() {
            return Err(Error::InvalidKeyring(
                "a wrapped keyring has a kdf or a token, not both".into(),
            ));
        }
        let sealed = envelope::decode_text(&doc.sealed)?;
        Ok(Self {
            kek_id,
            kdf,
            token,
            sealed,
        })
    }

    /// Loads a wrapped keyring file, with the checks of a plain keyring
    /// file (`INSECURE_KEY_FILE` if others may read or replace it).
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_json(&read_private(path.as_ref(), MAX_WRAPPED_JSON)?)
    }

    /// Writes the file atomically with mode 0600.
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<()> {
        save_private(path.as_ref(), self.to_json().as_bytes())
    }
}

fn parse_kek_id(text: &str) -> Result<[u8; KEK_ID_LEN]> {
    let bad = || Error::InvalidKeyring("kek_id is not 16 lowercase hex digits".into());
    if text.len() != 2 * KEK_ID_LEN
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut id = [0u8; KEK_ID_LEN];
    for (i, out) in id.iter_mut().enumerate() {
        *out = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(id)
}

fn parse_token(t: TokenJson) -> Result<TokenWrap> {
    let bad = |what: &str| Err(Error::InvalidKeyring(format!("token {what}")));
    if t.mechanism != TOKEN_MECHANISM {
        return bad(&format!("mechanism must be {TOKEN_MECHANISM}"));
    }
    if t.key_label.is_empty()
        || t.key_label.len() > MAX_TOKEN_LABEL
        || t.key_label.chars().any(char::is_control)
    {
        return bad(&format!(
            "key_label must be 1 to {MAX_TOKEN_LABEL} bytes without control characters"
        ));
    }
    let Some(nonce) = STANDARD
        .decode(&t.nonce)
        .ok()
        .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
    else {
        return bad("nonce is not base64 of 12 bytes");
    };
    let sealed_kek = match STANDARD.decode(&t.sealed_kek) {
        Ok(v) if v.len() == TOKEN_SEALED_KEK_LEN => v,
        _ => return bad("sealed_kek is not base64 of 48 bytes"),
    };
    Ok(TokenWrap {
        key_label: t.key_label,
        nonce,
        sealed_kek,
    })
}

fn parse_kdf(k: KdfJson) -> Result<KdfParams> {
    if k.algorithm != ARGON2ID || k.version != ARGON2_VERSION {
        return Err(Error::InvalidKeyring(format!(
            "kdf must be argon2id version 19, not {:?} version {}",
            k.algorithm.chars().take(16).collect::<String>(),
            k.version
        )));
    }
    let salt = STANDARD
        .decode(&k.salt)
        .ok()
        .and_then(|s| <[u8; SALT_LEN]>::try_from(s).ok())
        .ok_or_else(|| Error::InvalidKeyring("kdf salt is not base64 of 16 bytes".into()))?;
    let params = KdfParams {
        m_cost: k.m_cost,
        t_cost: k.t_cost,
        p_cost: k.p_cost,
        salt,
    };
    params.check()?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::os::unix::fs::PermissionsExt;

    fn cheap_params() -> KdfParams {
        KdfParams {
            m_cost: KdfParams::MIN_M_COST,
            t_cost: KdfParams::MIN_T_COST,
            p_cost: 1,
            salt: [3; SALT_LEN],
        }
    }

    fn same(a: &Keyring, b: &Keyring) -> bool {
        a.primary() == b.primary()
            && a.min_decrypt() == b.min_decrypt()
            && a.key_ids().eq(b.key_ids())
            && a.key_ids()
                .all(|id| a.keys()[&id].expose() == b.keys()[&id].expose())
    }

    #[test]
    fn round_trip_and_a_wrong_kek_is_named() {
        let mut kr = Keyring::generate();
        kr.rotate().unwrap();
        let kek = Kek::generate();
        let sealed = kr.wrap(&kek);
        assert!(same(&Keyring::unwrap_sealed(&sealed, &kek).unwrap(), &kr));
        // Nothing of the keys shows in the sealed bytes.
        let b64 = kr.primary_key().to_base64();
        assert!(!String::from_utf8_lossy(&sealed).contains(b64.as_str()));

        let other = Kek::generate();
        let err = Keyring::unwrap_sealed(&sealed, &other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongKek);
        let file = WrappedKeyring::seal(&kr, &kek, None);
        let err = file.open(&other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongKek);
        assert!(err.to_string().contains(&kek_id_hex(&kek.id())), "{err}");
        assert!(same(&file.open(&kek).unwrap(), &kr));
    }

    #[test]
    fn tampering_is_bad_tag_not_a_new_keyring() {
        let kr = Keyring::generate();
        let kek = Kek::generate();
        let sealed = kr.wrap(&kek);
        for at in [6, HEADER_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            let err = Keyring::unwrap_sealed(&bad, &kek).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadTag, "byte {at}");
        }
    }

    /// A chat envelope and a wrapped keyring share the byte format, but each
    /// opens only as what it is: the keys and the context differ.
    #[test]
    fn a_wrapped_keyring_is_not_a_chat_message() {
        let kek = Kek::from_bytes([9; 32]);
        let sealed = Keyring::generate().wrap(&kek);
        // A sealer whose master key is the KEK's bytes, under the same key id.
        let id = header_key_id(&kek.id());
        let sealer = crate::Sealer::new(
            Keyring::from_parts([(id, crate::SecretKey::from_bytes([9; 32]))], id, id).unwrap(),
        );
        for room in ["", "lobby"] {
            let err = sealer
                .open(room, &keyring_context(&kek.id()), &sealed)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadTag);
        }
    }

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let kr = Keyring::generate();
        let params = cheap_params();
        let kek = Kek::from_passphrase(b"hunter2 but longer", &params).unwrap();
        let file = WrappedKeyring::seal(&kr, &kek, Some(params));
        let back = WrappedKeyring::from_json(&file.to_json()).unwrap();
        assert_eq!(back, file);
        assert!(same(
            &back.open_with_passphrase(b"hunter2 but longer").unwrap(),
            &kr
        ));
        let err = back
            .open_with_passphrase(b"hunter3 but longer")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongKek);
        let raw = WrappedKeyring::seal(&kr, &Kek::generate(), None);
        assert_eq!(
            raw.open_with_passphrase(b"x").unwrap_err().kind(),
            ErrorKind::InvalidKeyring
        );
    }

    #[test]
    fn a_token_sealed_kek_round_trips_and_is_checked() {
        let kr = Keyring::generate();
        let kek = Kek::generate();
        let mut file = WrappedKeyring::seal(&kr, &kek, None);
        file.token = Some(TokenWrap {
            key_label: "chatseal-kek".into(),
            nonce: [5; NONCE_LEN],
            sealed_kek: vec![7; TOKEN_SEALED_KEK_LEN],
        });
        let json = file.to_json();
        assert!(json.contains("\"mechanism\": \"CKM_AES_GCM\""), "{json}");
        let back = WrappedKeyring::from_json(&json).unwrap();
        assert_eq!(back, file);
        assert!(same(&back.open(&kek).unwrap(), &kr));
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut d = doc.clone();
            d["token"][field] = value;
            WrappedKeyring::from_json(&d.to_string())
                .unwrap_err()
                .kind()
        };
        assert_eq!(
            with("mechanism", "CKM_AES_KEY_WRAP".into()),
            ErrorKind::InvalidKeyring
        );
        assert_eq!(with("key_label", "".into()), ErrorKind::InvalidKeyring);
        assert_eq!(with("key_label", "a\nb".into()), ErrorKind::InvalidKeyring);
        assert_eq!(with("nonce", "AAAA".into()), ErrorKind::InvalidKeyring);
        assert_eq!(with("sealed_kek", "AAAA".into()), ErrorKind::InvalidKeyring);
        assert_eq!(with("extra", "x".into()), ErrorKind::InvalidKeyring);
        let mut both = doc.clone();
        both["kdf"] = serde_json::json!({"algorithm": "argon2id", "version": 19,
            "m_cost": 19456, "t_cost": 2, "p_cost": 1, "salt": STANDARD.encode([1u8; 16])});
        assert_eq!(
            WrappedKeyring::from_json(&both.to_string())
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidKeyring
        );
        assert_eq!(
            token_aad(&[1; 8]),
            b"chatseal kek v1\0\x01\x01\x01\x01\x01\x01\x01\x01"
        );
    }

    #[test]
    fn stored_keyrings_of_either_form_are_told_apart() {
        let kr = Keyring::generate();
        let kek = Kek::generate();
        let wrapped = WrappedKeyring::seal(&kr, &kek, None);
        match StoredKeyring::from_json(&wrapped.to_json()).unwrap() {
            StoredKeyring::Wrapped(w) => assert_eq!(w, wrapped),
            StoredKeyring::Plain(_) => panic!("read a wrapped keyring as plain"),
        }
        match StoredKeyring::from_json(&kr.to_json()).unwrap() {
            StoredKeyring::Plain(p) => assert!(same(&p, &kr)),
            StoredKeyring::Wrapped(_) => panic!("read a plain keyring as wrapped"),
        }
        assert!(StoredKeyring::from_json("{}").is_err());
    }

    #[test]
    fn plain_and_wrapped_json_are_never_confused() {
        let kr = Keyring::generate();
        let wrapped = WrappedKeyring::seal(&kr, &Kek::generate(), None).to_json();
        let err = Keyring::from_json(&wrapped).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKeyring);
        assert!(
            err.to_string().contains("this is a wrapped keyring"),
            "{err}"
        );
        assert_eq!(
            WrappedKeyring::from_json(&kr.to_json()).unwrap_err().kind(),
            ErrorKind::InvalidKeyring
        );
    }

    #[test]
    fn files_are_private_and_insecure_ones_refused() {
        let dir = std::env::temp_dir().join(format!(
            "chatseal-core-wrapped-{}-{:x}",
            std::process::id(),
            u32::from_be_bytes(crate::nonce::fresh()[..4].try_into().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("keyring.wrapped.json");
        let kr = Keyring::generate();
        let kek = Kek::generate();
        WrappedKeyring::seal(&kr, &kek, None)
            .save_file(&path)
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = WrappedKeyring::load_file(&path).unwrap();
        assert!(same(&loaded.open(&kek).unwrap(), &kr));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            WrappedKeyring::load_file(&path).unwrap_err().kind(),
            ErrorKind::InsecureKeyFile
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            WrappedKeyring::load_file(&path).unwrap_err().kind(),
            ErrorKind::InsecureKeyFile
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
