//! A 32-byte secret that is wiped when dropped and never printed.
//!
//! Master keys and room keys are both 32 bytes. Everything that holds key
//! material holds it in a [`SecretKey`], so the two rules of DESIGN §2 (zeroize
//! on drop, redact in Debug) live in one place instead of being remembered at
//! every call site.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of every key chatseal handles (AES-256).
pub const KEY_LEN: usize = 32;

/// 32 bytes of key material. `Debug` prints `SecretKey(<redacted>)`; the
/// bytes are zeroized on drop. There is deliberately no `Display`, `Serialize`
/// or `PartialEq` (which would not be constant-time).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Takes ownership of `bytes`. The caller's array is a copy; wipe it if it
    /// lives on.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies from a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(array))
    }

    /// 32 fresh bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Self([0u8; KEY_LEN]);
        crate::nonce::fill_from_os(&mut key.0);
        key
    }

    /// The key bytes. Named so that every use stands out in review.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Standard base64 (with padding) of the key, in a buffer that is wiped
    /// on drop.
    pub fn to_base64(&self) -> zeroize::Zeroizing<String> {
        use base64::Engine as _;
        zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = SecretKey::from_bytes([0xAB; KEY_LEN]);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn from_slice_wants_exactly_32_bytes() {
        assert!(SecretKey::from_slice(&[0; 31]).is_none());
        assert!(SecretKey::from_slice(&[0; 33]).is_none());
        assert_eq!(SecretKey::from_slice(&[7; 32]).unwrap().expose(), &[7; 32]);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            SecretKey::generate().expose(),
            SecretKey::generate().expose()
        );
    }
}
