//! Key check values: a one-way fingerprint of a master key, so a store can
//! remember which key sealed its messages without holding the key.
//!
//! `kcv = hex(HMAC-SHA256(key = master key, message = "chatseal key check
//! value v1")[0..16])` (docs/format.md §1). HMAC is a PRF, so the value says
//! nothing about the key beyond "this is the same key"; 128 bits make an
//! accidental match between two random keys impossible in practice. The
//! label keeps the value apart from every other use of the key (room keys
//! are HKDF with other labels).

use ring::hmac;

use crate::keyring::Keyring;
use crate::secret::SecretKey;

/// The fixed message the check value is the HMAC of.
pub const CHECK_VALUE_LABEL: &[u8] = b"chatseal key check value v1";

/// Bytes of the HMAC kept (shown as twice as many hex digits).
pub const CHECK_VALUE_LEN: usize = 16;

/// The check value of `key`, lowercase hex.
pub fn key_check_value(key: &SecretKey) -> String {
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.expose()),
        CHECK_VALUE_LABEL,
    );
    let mut out = String::with_capacity(2 * CHECK_VALUE_LEN);
    for b in &mac.as_ref()[..CHECK_VALUE_LEN] {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

impl Keyring {
    /// The check value of key `id`, retired or not; `None` if absent.
    pub fn check_value(&self, id: u32) -> Option<String> {
        self.keys().get(&id).map(key_check_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers computed independently (Python's hmac module).
    #[test]
    fn known_answers() {
        for (b, kcv) in [
            (0x00, "70ccffb5860b6bad4eab31bad2ac2331"),
            (0x01, "ee44ec14a06614021573861686561621"),
            (0xee, "27298856468773dd553984702abe8ead"),
        ] {
            assert_eq!(key_check_value(&SecretKey::from_bytes([b; 32])), kcv);
        }
    }

    #[test]
    fn keyring_check_values_by_id() {
        let kr = Keyring::from_parts(
            [
                (1, SecretKey::from_bytes([1; 32])),
                (2, SecretKey::from_bytes([0; 32])),
            ],
            2,
            2,
        )
        .unwrap();
        // Retired keys keep their check value: the store still names them.
        assert_eq!(
            kr.check_value(1).as_deref(),
            Some("ee44ec14a06614021573861686561621")
        );
        assert_eq!(kr.check_value(3), None);
    }
}
