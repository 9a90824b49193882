//! Sealed envelope, version 1: the one format everywhere (DESIGN §1).
//!
//! ```text
//! 0      version   = 0x01
//! 1      algorithm = 0x01  (AES-256-GCM, 96-bit nonce, 128-bit tag)
//! 2..6   key id, u32 big-endian
//! 6..18  nonce, 12 bytes
//! 18..   ciphertext ‖ 16-byte tag
//! ```
//!
//! The 18 header bytes are the first part of the associated data, so none of
//! them can be changed without the tag failing. The text form is standard
//! base64 with padding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::aead::TAG_LEN;
use crate::error::{Error, Result};
use crate::nonce::NONCE_LEN;

/// The version byte of this format.
pub const VERSION: u8 = 0x01;
/// The algorithm byte for AES-256-GCM with a 96-bit nonce and 128-bit tag.
pub const ALGORITHM_AES_256_GCM: u8 = 0x01;
/// Length of the header (version, algorithm, key id, nonce).
pub const HEADER_LEN: usize = 2 + 4 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext (header and tag).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Length of the binary envelope for a plaintext of `plaintext_len` bytes.
pub const fn sealed_len(plaintext_len: usize) -> Option<usize> {
    plaintext_len.checked_add(OVERHEAD)
}

/// Length of the plaintext inside a binary envelope of `envelope_len` bytes,
/// or `None` if no valid envelope is that short.
pub const fn opened_len(envelope_len: usize) -> Option<usize> {
    envelope_len.checked_sub(OVERHEAD)
}

/// The fields of a header that vary (version and algorithm are fixed in v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Id of the master key in the keyring.
    pub key_id: u32,
    /// The per-seal random nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Header {
    /// The 18 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = VERSION;
        out[1] = ALGORITHM_AES_256_GCM;
        out[2..6].copy_from_slice(&self.key_id.to_be_bytes());
        out[6..].copy_from_slice(&self.nonce);
        out
    }

    /// Reads and checks the header of a binary envelope. Checks run in
    /// byte order, so the error names the first thing that is wrong; an
    /// envelope too short to hold a header and a tag is `Malformed`.
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        match envelope.first() {
            None => return Err(Error::Malformed("empty envelope")),
            Some(&VERSION) => {}
            Some(&other) => return Err(Error::UnsupportedVersion(other)),
        }
        match envelope.get(1) {
            None => return Err(Error::Malformed("truncated header")),
            Some(&ALGORITHM_AES_256_GCM) => {}
            Some(&other) => return Err(Error::UnsupportedAlgorithm(other)),
        }
        if envelope.len() < OVERHEAD {
            return Err(Error::Malformed("shorter than a header and a tag"));
        }
        let key_id = u32::from_be_bytes(envelope[2..6].try_into().expect("4 bytes"));
        let nonce = envelope[6..HEADER_LEN].try_into().expect("12 bytes");
        Ok(Self { key_id, nonce })
    }
}

/// The text form of a binary envelope: standard base64 with padding.
pub fn encode_text(envelope: &[u8]) -> String {
    STANDARD.encode(envelope)
}

/// Decodes the text form. Only canonical standard base64 with padding is
/// accepted (no URL alphabet, no whitespace, no stray bits), so each
/// envelope has exactly one text form.
pub fn decode_text(text: &str) -> Result<Vec<u8>> {
    STANDARD.decode(text).map_err(|_| Error::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn kind(bytes: &[u8]) -> ErrorKind {
        Header::parse(bytes).unwrap_err().kind()
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            key_id: 0x0102_0304,
            nonce: [9; NONCE_LEN],
        };
        let mut env = h.to_bytes().to_vec();
        assert_eq!(&env[..6], &[1, 1, 1, 2, 3, 4]);
        env.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(Header::parse(&env).unwrap(), h);
    }

    #[test]
    fn parse_names_the_first_problem() {
        assert_eq!(kind(&[]), ErrorKind::Malformed);
        assert_eq!(kind(&[2]), ErrorKind::UnsupportedVersion);
        assert_eq!(kind(&[1]), ErrorKind::Malformed);
        assert_eq!(kind(&[1, 2, 0, 0]), ErrorKind::UnsupportedAlgorithm);
        assert_eq!(kind(&[1, 1, 0, 0, 0, 1]), ErrorKind::Malformed);
        assert_eq!(kind(&[1; OVERHEAD - 1]), ErrorKind::Malformed);
    }

    #[test]
    fn text_form_is_strict_standard_base64() {
        assert_eq!(decode_text("AQE=").unwrap(), vec![1, 1]);
        for bad in ["AQE", "AQ E=", "AQF=", "-_8=", "AQE=\n", "!!!!"] {
            assert!(
                matches!(decode_text(bad), Err(Error::BadEncoding)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(sealed_len(0), Some(34));
        assert_eq!(opened_len(34), Some(0));
        assert_eq!(opened_len(33), None);
        assert_eq!(sealed_len(usize::MAX), None);
    }
}
