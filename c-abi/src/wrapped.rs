//! Wrapped keyrings (docs/format.md §8): a keyring sealed under a
//! key-encryption key (32 bytes) or a passphrase, as the JSON file text.

use std::ffi::c_char;

use chatseal_core::{KdfParams, Kek, Keyring, WrappedKeyring};

use crate::guard::{FfiResult, bytes, guard, handle, out_buffer, text};
use crate::result::chatseal_result::{self, *};
use crate::{chatseal_keyring, core_err, new_keyring};

/// The KEK from (kek, kek_len): exactly 32 bytes.
///
/// # Safety
/// As `guard::bytes`.
unsafe fn kek_arg(kek: *const u8, kek_len: usize) -> FfiResult<Kek> {
    // SAFETY: forwarded to the caller.
    let raw = unsafe { bytes(kek, kek_len) }?;
    Kek::from_slice(raw).ok_or(CHATSEAL_INVALID_ARGUMENT)
}

/// Length of the file text (without the NUL) for `keyring`: it depends only
/// on the keyring's JSON length and on whether there are kdf parameters, so
/// a size query needs neither a seal nor an argon2id run.
fn file_len(keyring: &Keyring, with_kdf: bool) -> usize {
    let template = WrappedKeyring {
        kek_id: [0; 8],
        kdf: with_kdf.then(KdfParams::generate),
        token: None,
        sealed: vec![0; keyring.to_json().len() + chatseal_core::OVERHEAD],
    };
    template.to_json().len()
}

/// Writes the file text made by `make` into the caller's buffer, under the
/// size-query convention; `make` runs only when the buffer is large enough.
///
/// # Safety
/// As `guard::out_buffer`.
unsafe fn write_file(
    needed: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
    inputs: &[&[u8]],
    make: impl FnOnce() -> FfiResult<String>,
) -> FfiResult<()> {
    // SAFETY: forwarded to the caller.
    if let Some(buf) = unsafe { out_buffer(out.cast(), out_cap, out_len, needed + 1, inputs) }? {
        let json = make()?;
        if json.len() != needed {
            return Err(CHATSEAL_PANIC);
        }
        buf[..needed].copy_from_slice(json.as_bytes());
        buf[needed] = 0;
        // SAFETY: out_len checked non-null by out_buffer.
        unsafe { out_len.write(needed + 1) };
    }
    Ok(())
}

/// Wraps `keyring` under the key-encryption key `kek` (`kek_len` must be
/// 32, else CHATSEAL_INVALID_ARGUMENT) into the wrapped keyring file text,
/// NUL-terminated, in `out` (size query with out = NULL; *out_len is the
/// length including the NUL). The text holds no secret.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_wrap(
    keyring: *const chatseal_keyring,
    kek: *const u8,
    kek_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises.
        let (keyring, kek, raw) = unsafe {
            (
                handle(keyring)?,
                kek_arg(kek, kek_len)?,
                bytes(kek, kek_len)?,
            )
        };
        let needed = file_len(&keyring.inner, false);
        // SAFETY: caller's promises on out/out_cap/out_len.
        unsafe {
            write_file(needed, out, out_cap, out_len, &[raw], || {
                Ok(WrappedKeyring::seal(&keyring.inner, &kek, None).to_json())
            })
        }
    })
}

/// As chatseal_keyring_wrap, under a KEK derived from the passphrase
/// (`passphrase_len` bytes, any bytes) with argon2id at the default
/// parameters (64 MiB, 3 passes) and a fresh salt, stored in the file. The
/// size query does not run argon2id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_wrap_passphrase(
    keyring: *const chatseal_keyring,
    passphrase: *const u8,
    passphrase_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises.
        let (keyring, passphrase) =
            unsafe { (handle(keyring)?, bytes(passphrase, passphrase_len)?) };
        let needed = file_len(&keyring.inner, true);
        // SAFETY: caller's promises on out/out_cap/out_len.
        unsafe {
            write_file(needed, out, out_cap, out_len, &[passphrase], || {
                WrappedKeyring::seal_with_passphrase(&keyring.inner, passphrase)
                    .map(|w| w.to_json())
                    .map_err(core_err)
            })
        }
    })
}

/// Opens a wrapped keyring file text (`wrapped`, `wrapped_len` bytes, need
/// not be NUL-terminated) with the 32-byte `kek` into a new keyring.
/// CHATSEAL_WRONG_KEK if it is wrapped under another KEK; the other codes
/// as docs/format.md §8 lists them. *out is written only on success.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_unwrap(
    wrapped: *const c_char,
    wrapped_len: usize,
    kek: *const u8,
    kek_len: usize,
    out: *mut *mut chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        // SAFETY: caller's promises.
        let (json, kek) = unsafe { (text(wrapped.cast(), wrapped_len)?, kek_arg(kek, kek_len)?) };
        let file = WrappedKeyring::from_json(json).map_err(core_err)?;
        new_keyring(out, file.open(&kek).map_err(core_err)?)
    })
}

/// As chatseal_keyring_unwrap, deriving the KEK from the passphrase with
/// the file's argon2id parameters (bounded: at most 1 GiB, 16 passes).
/// CHATSEAL_WRONG_KEK for a wrong passphrase; CHATSEAL_INVALID_KEYRING if
/// the file has no passphrase parameters.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_unwrap_passphrase(
    wrapped: *const c_char,
    wrapped_len: usize,
    passphrase: *const u8,
    passphrase_len: usize,
    out: *mut *mut chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        // SAFETY: caller's promises.
        let (json, passphrase) = unsafe {
            (
                text(wrapped.cast(), wrapped_len)?,
                bytes(passphrase, passphrase_len)?,
            )
        };
        let file = WrappedKeyring::from_json(json).map_err(core_err)?;
        new_keyring(
            out,
            file.open_with_passphrase(passphrase).map_err(core_err)?,
        )
    })
}
