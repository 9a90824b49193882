//! Known-answer tests that need crate internals.
//!
//! * Wycheproof and NIST CAVP AES-GCM cases go through [`Aes256Gcm`], the
//!   exact code the envelope uses.
//! * `tests/vectors/envelope-v1.json` is generated here with fixed nonces
//!   (sealing with a chosen nonce exists only under `cfg(test)`), and the
//!   committed file must equal what the engine produces today: any change to
//!   the format shows up as a diff. `CHATSEAL_WRITE_VECTORS=1` rewrites it.

mod envelope_v1;
mod nist_cavp;
mod wycheproof;

use std::path::PathBuf;

use crate::aead::Aes256Gcm;
use crate::secret::SecretKey;

/// `../shared` beside the repository, or `$CHATSEAL_SHARED`.
fn shared_dir() -> PathBuf {
    std::env::var_os("CHATSEAL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_shared(relative: &str) -> String {
    let path = shared_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set CHATSEAL_SHARED to the shared/ folder",
            path.display()
        )
    })
}

fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// Seals `pt` and returns `ciphertext ‖ tag`.
fn aead_seal(key: &[u8], iv: &[u8], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&SecretKey::from_slice(key).unwrap());
    let mut buf = pt.to_vec();
    let tag = cipher
        .seal_in_place(iv.try_into().unwrap(), aad, &mut buf)
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

/// Opens `ciphertext ‖ tag`.
fn aead_open(key: &[u8], iv: &[u8], aad: &[u8], ct_tag: &[u8]) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new(&SecretKey::from_slice(key).unwrap());
    let mut buf = ct_tag.to_vec();
    cipher
        .open_in_place(iv.try_into().unwrap(), aad, &mut buf)
        .ok()
        .map(|p| p.to_vec())
}
