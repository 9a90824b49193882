//! Known-answer tests that need crate internals.
//!
//! * Wycheproof and NIST CAVP AES-GCM cases (vendored under `tests/vectors/`,
//!   see its README) go through [`Aes256Gcm`], the exact code the envelope uses.
//! * `tests/vectors/envelope-v1.json` is generated here with fixed nonces
//!   (sealing with a chosen nonce exists only under `cfg(test)`), and the
//!   committed file must equal what the engine produces today: any change to
//!   the format shows up as a diff. `CHATSEAL_WRITE_VECTORS=1` rewrites it.

mod envelope_v1;
mod keyring_wrap_v1;
mod nist_cavp;
mod wycheproof;

use std::path::PathBuf;

use crate::aead::Aes256Gcm;
use crate::secret::SecretKey;

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file under `tests/vectors/`, where the vendored known-answer files live
/// (a clone alone runs the tests).
fn read_vector(relative: &str) -> String {
    let path = repo_dir().join("tests/vectors").join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()))
}

/// Every file `tests/vectors/SHA256SUMS` names is there, unchanged (a
/// checkout that rewrote line ends, or a hand edit, fails here), and every
/// vendored file the tests read is named in it.
#[test]
fn vendored_vectors_match_sha256sums() {
    let dir = repo_dir().join("tests/vectors");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut named = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, file) = line.split_once("  ").expect("`<sha256>  <path>` lines");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = ::hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        assert_eq!(got, sum, "{file} differs from its published copy");
        named.push(file);
    }
    for file in [
        "wycheproof/aes_gcm_test.json",
        "nist_cavp/gcmEncryptExtIV256.rsp",
        "nist_cavp/gcmDecrypt256.rsp",
    ] {
        assert!(named.contains(&file), "{file} missing from SHA256SUMS");
    }
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
