//! AES-256-GCM, the only cipher of envelope v1, over `ring`.
//!
//! `ring` carries the same stitched AES-NI/VAES + carry-less-multiply
//! assembly as BoringSSL, which is what lets a pure-Rust caller keep up with
//! OpenSSL. It does not wipe its expanded key schedule on drop, so
//! [`Aes256Gcm`] keeps the `ring` key in a `MaybeUninit` and overwrites it
//! with zeros when dropped. That is sound because `LessSafeKey` owns no heap
//! memory and has no destructor (checked at compile time below), so after
//! we stop using it its bytes are just bytes we own.

use std::mem::MaybeUninit;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::nonce::NONCE_LEN;
use crate::secret::SecretKey;

/// Length of the GCM authentication tag (128 bits).
pub const TAG_LEN: usize = 16;

/// GCM can encrypt at most 2^32 - 2 blocks under one nonce.
pub const MAX_PLAINTEXT_LEN: u64 = ((1u64 << 32) - 2) * 16;

const _: () = assert!(!std::mem::needs_drop::<LessSafeKey>());

/// An AES-256-GCM key ready to seal and open. Wiped on drop; never printed.
pub struct Aes256Gcm {
    key: MaybeUninit<LessSafeKey>,
}

impl Aes256Gcm {
    /// Expands `key` (the AES key schedule and GHASH tables).
    pub fn new(key: &SecretKey) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
            .expect("AES-256-GCM accepts every 32-byte key");
        Self {
            key: MaybeUninit::new(LessSafeKey::new(unbound)),
        }
    }

    fn key(&self) -> &LessSafeKey {
        // SAFETY: initialized in `new`, only uninitialized (zeroed) in `drop`.
        unsafe { self.key.assume_init_ref() }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        if buf.len() as u64 > MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge("AES-GCM seals at most 64 GiB per message"));
        }
        let tag = self
            .key()
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .map_err(|_| Error::TooLarge("AES-GCM refused the input length"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `buf[src..]` (ciphertext ‖ tag) and moves the plaintext to
    /// the front of `buf` in the same pass; returns the plaintext length. On
    /// failure the whole buffer is zeroed.
    pub fn open_within(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        src: usize,
    ) -> Result<usize> {
        if buf.len() < src + TAG_LEN {
            return Err(Error::Malformed("shorter than the authentication tag"));
        }
        let outcome = self.key().open_within(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            buf,
            src..,
        );
        match outcome {
            Ok(plaintext) => Ok(plaintext.len()),
            Err(_) => {
                buf.zeroize();
                Err(Error::BadTag)
            }
        }
    }

    /// Decrypts `ciphertext_and_tag` in place. On success returns the
    /// plaintext prefix; on failure the whole buffer has been zeroed, so no
    /// unauthenticated plaintext survives.
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &'a mut [u8],
    ) -> Result<&'a mut [u8]> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(Error::Malformed("shorter than the authentication tag"));
        }
        let len = ciphertext_and_tag.len() - TAG_LEN;
        let outcome = self.key().open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            ciphertext_and_tag,
        );
        match outcome {
            Ok(_) => Ok(&mut ciphertext_and_tag[..len]),
            Err(_) => {
                ciphertext_and_tag.zeroize();
                Err(Error::BadTag)
            }
        }
    }
}

impl Drop for Aes256Gcm {
    fn drop(&mut self) {
        // SAFETY: `LessSafeKey` needs no drop (asserted above), so it is
        // enough to stop using it; the storage is ours to overwrite, and
        // `MaybeUninit` places no validity requirement on its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                self.key.as_mut_ptr().cast::<u8>(),
                std::mem::size_of::<LessSafeKey>(),
            )
        };
        bytes.zeroize();
    }
}

impl std::fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256Gcm(<redacted>)")
    }
}
