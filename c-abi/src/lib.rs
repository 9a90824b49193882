//! # chatseal-ffi
//!
//! The chatseal engine as a C library (`libchatseal.so`, `libchatseal.a`,
//! `include/chatseal.h`), in the conventions of rustls-ffi: opaque handles,
//! result codes, `_free` that accepts NULL, caller-owned output buffers with
//! a size query, and no panic ever crossing into C. See the header's preamble
//! for the rules, and `include/chatseal.hpp` for the C++17 wrapper.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // documented per function in the header

mod guard;
mod result;
mod wrapped;

use std::ffi::c_char;

use chatseal_core::{Keyring, Rewrapped, Room, Sealer, Zeroizing};

use guard::{bytes, c_str, guard, handle, handle_mut, out_buffer, text, write_out};
pub use result::chatseal_result;
use result::chatseal_result::*;

/// A keyring of master keys. Opaque.
pub struct chatseal_keyring {
    inner: Keyring,
}

/// Seals and opens envelopes; safe to share between threads. Opaque.
pub struct chatseal_sealer {
    inner: Sealer,
}

impl std::fmt::Debug for chatseal_keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::fmt::Debug for chatseal_sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

// The thread-safety promises of the header, checked by the compiler.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<chatseal_sealer>();
    send_sync::<chatseal_keyring>();
};

/// Length in bytes of a key (master or room key).
pub const CHATSEAL_KEY_LEN: usize = 32;
/// Bytes an envelope adds to its plaintext.
pub const CHATSEAL_OVERHEAD: usize = 34;
const _: () = assert!(CHATSEAL_OVERHEAD == chatseal_core::OVERHEAD);

/// The arguments every seal/open call shares.
///
/// # Safety
/// As `guard::handle`, `guard::text` and `guard::bytes`.
unsafe fn call_inputs<'a>(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
) -> Result<(&'a chatseal_sealer, &'a str, &'a [u8]), chatseal_result> {
    // SAFETY: forwarded to the caller.
    unsafe {
        Ok((
            handle(sealer)?,
            text(room.cast(), room_len)?,
            bytes(context, context_len)?,
        ))
    }
}

fn core_err(e: chatseal_core::Error) -> chatseal_result {
    chatseal_result::from(&e)
}

/// The library version, e.g. "0.1.0". Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn chatseal_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => panic!("version contains NUL"),
    };
    VERSION.as_ptr()
}

/// The stable name of a result code ("BAD_TAG", …), or "UNKNOWN" for a
/// value this version does not know. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn chatseal_result_name(result: u32) -> *const c_char {
    match chatseal_result::ALL.get(result as usize) {
        Some(r) => r.name().as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    }
}

/// A sentence describing a result code. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn chatseal_result_message(result: u32) -> *const c_char {
    match chatseal_result::ALL.get(result as usize) {
        Some(r) => r.message().as_ptr(),
        None => c"unknown result code".as_ptr(),
    }
}

/// The envelope length for a plaintext of `plaintext_len` bytes
/// (plaintext_len + 34), or 0 if that overflows.
#[unsafe(no_mangle)]
pub extern "C" fn chatseal_sealed_len(plaintext_len: usize) -> usize {
    chatseal_core::sealed_len(plaintext_len).unwrap_or(0)
}

fn new_keyring(out: *mut *mut chatseal_keyring, keyring: Keyring) -> Result<(), chatseal_result> {
    let boxed = Box::into_raw(Box::new(chatseal_keyring { inner: keyring }));
    // SAFETY: `out` was checked non-null by the caller of this helper.
    unsafe { out.write(boxed) };
    Ok(())
}

/// A new keyring with one random key (id 1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_generate(
    out: *mut *mut chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        new_keyring(out, Keyring::generate())
    })
}

/// Parses the keyring JSON form (`json`, `json_len` bytes, UTF-8, need not
/// be NUL-terminated).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_from_json(
    json: *const c_char,
    json_len: usize,
    out: *mut *mut chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        // SAFETY: caller's promise on (json, json_len).
        let json = unsafe { text(json.cast(), json_len) }?;
        new_keyring(out, Keyring::from_json(json).map_err(core_err)?)
    })
}

/// Loads a keyring file (NUL-terminated path). A file accessible by group
/// or others is refused with CHATSEAL_INSECURE_KEY_FILE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_load_file(
    path: *const c_char,
    out: *mut *mut chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        // SAFETY: caller's promise on `path`.
        let path = unsafe { c_str(path) }?;
        new_keyring(out, Keyring::load_file(path).map_err(core_err)?)
    })
}

/// Writes the keyring to a file atomically, mode 0600.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_save_file(
    keyring: *const chatseal_keyring,
    path: *const c_char,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises.
        let (keyring, path) = unsafe { (handle(keyring)?, c_str(path)?) };
        keyring.inner.save_file(path).map_err(core_err)
    })
}

/// The keyring's JSON form, NUL-terminated, into `out` (size query with
/// out = NULL; *out_len is the length including the NUL). It contains the
/// master keys: wipe the buffer after use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_to_json(
    keyring: *const chatseal_keyring,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promise.
        let keyring = unsafe { handle(keyring) }?;
        let json = keyring.inner.to_json();
        let needed = json.len() + 1;
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe { out_buffer(out.cast(), out_cap, out_len, needed, &[]) }? {
            buf[..json.len()].copy_from_slice(json.as_bytes());
            buf[json.len()] = 0;
            // SAFETY: out_len checked non-null by out_buffer.
            unsafe { out_len.write(needed) };
        }
        Ok(())
    })
}

/// Adds a fresh key and makes it primary; its id goes to *new_key_id.
/// Needs exclusive use of the keyring.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_rotate(
    keyring: *mut chatseal_keyring,
    new_key_id: *mut u32,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promise of exclusive use.
        let keyring = unsafe { handle_mut(keyring) }?;
        if new_key_id.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        let id = keyring.inner.rotate().map_err(core_err)?;
        // SAFETY: checked non-null.
        unsafe { write_out(new_key_id, id) }
    })
}

/// The primary key id, or CHATSEAL_NULL_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_primary(
    keyring: *const chatseal_keyring,
    key_id: *mut u32,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promise.
        let keyring = unsafe { handle(keyring) }?;
        // SAFETY: caller's promise.
        unsafe { write_out(key_id, keyring.inner.primary()) }
    })
}

/// Derives the 32-byte key of `room` under master key `key_id` into `out`
/// (32 writable bytes). This is what a room member receives; wipe it after use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_room_key(
    keyring: *const chatseal_keyring,
    key_id: u32,
    room: *const c_char,
    room_len: usize,
    out: *mut u8,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe { chatseal_keyring_room_key_epoch(keyring, key_id, room, room_len, 0, out) }
}

/// The key of `room` at key epoch `epoch` (docs/format.md §1) under master
/// key `key_id`, into `out` (32 writable bytes); chatseal_keyring_room_key
/// is epoch 0. What a member of the room at that epoch receives; wipe it
/// after use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_room_key_epoch(
    keyring: *const chatseal_keyring,
    key_id: u32,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    out: *mut u8,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises.
        let (keyring, room) = unsafe { (handle(keyring)?, text(room.cast(), room_len)?) };
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        guard::disjoint(out, CHATSEAL_KEY_LEN, &[room.as_bytes()])?;
        let key = keyring
            .inner
            .room_key(key_id, Room::at(room, epoch))
            .map_err(core_err)?;
        // SAFETY: `out` is non-null and has 32 writable bytes by contract.
        unsafe { std::ptr::copy_nonoverlapping(key.expose().as_ptr(), out, CHATSEAL_KEY_LEN) };
        Ok(())
    })
}

/// Frees a keyring (wiping its keys). NULL is fine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_keyring_free(keyring: *mut chatseal_keyring) {
    let _ = guard(|| {
        if !keyring.is_null() {
            // SAFETY: made by Box::into_raw in this library; freed once.
            drop(unsafe { Box::from_raw(keyring) });
        }
        Ok(())
    });
}

/// A sealer over a copy of `keyring` (the keyring may be freed afterwards).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_sealer_new(
    keyring: *const chatseal_keyring,
    out: *mut *mut chatseal_sealer,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promise.
        let keyring = unsafe { handle(keyring) }?;
        if out.is_null() {
            return Err(CHATSEAL_NULL_ARGUMENT);
        }
        let sealer = Box::new(chatseal_sealer {
            inner: Sealer::new(keyring.inner.clone()),
        });
        // SAFETY: checked non-null.
        unsafe { out.write(Box::into_raw(sealer)) };
        Ok(())
    })
}

/// Replaces the sealer's keyring with a copy of `keyring` (after a rotation
/// or reload). Safe while other threads seal and open.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_sealer_set_keyring(
    sealer: *const chatseal_sealer,
    keyring: *const chatseal_keyring,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises.
        let (sealer, keyring) = unsafe { (handle(sealer)?, handle(keyring)?) };
        sealer.inner.replace_keyring(keyring.inner.clone());
        Ok(())
    })
}

/// Frees a sealer. NULL is fine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_sealer_free(sealer: *mut chatseal_sealer) {
    let _ = guard(|| {
        if !sealer.is_null() {
            // SAFETY: made by Box::into_raw in this library; freed once.
            drop(unsafe { Box::from_raw(sealer) });
        }
        Ok(())
    });
}

/// Seals `plaintext` for `room` (UTF-8) with `context` as associated data
/// into the binary envelope `out`. Size: chatseal_sealed_len(plaintext_len).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_seal(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_seal_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            plaintext,
            plaintext_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_seal for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_seal is epoch 0. The same sizes and result codes; an
/// envelope opened at another epoch than it was sealed at fails
/// CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_seal_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let plaintext = unsafe { bytes(plaintext, plaintext_len) }?;
        let needed = chatseal_core::sealed_len(plaintext.len()).ok_or(CHATSEAL_TOO_LARGE)?;
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe {
            out_buffer(
                out,
                out_cap,
                out_len,
                needed,
                &[room.as_bytes(), context, plaintext],
            )
        }? {
            let n = sealer
                .inner
                .seal_into(Room::at(room, epoch), context, plaintext, buf)
                .map_err(core_err)?;
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(n) };
        }
        Ok(())
    })
}

/// Opens a binary envelope into `out`. Size: envelope_len - 34 (a size
/// query on an envelope shorter than 34 bytes gives CHATSEAL_MALFORMED).
/// `out` is written only if the envelope authenticates.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_open(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    envelope: *const u8,
    envelope_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_open_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            envelope,
            envelope_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_open for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_open is epoch 0. The same sizes and result codes; an
/// envelope opened at another epoch than it was sealed at fails
/// CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_open_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    envelope: *const u8,
    envelope_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let envelope = unsafe { bytes(envelope, envelope_len) }?;
        chatseal_core::Header::parse(envelope).map_err(core_err)?;
        let needed = envelope.len() - CHATSEAL_OVERHEAD;
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe {
            out_buffer(
                out,
                out_cap,
                out_len,
                needed,
                &[room.as_bytes(), context, envelope],
            )
        }? {
            let n = sealer
                .inner
                .open_into(Room::at(room, epoch), context, envelope, buf)
                .map_err(core_err)?;
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(n) };
        }
        Ok(())
    })
}

/// Seals into the text form (standard base64), NUL-terminated. *out_len is
/// the text length including the NUL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_seal_text(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_seal_text_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            plaintext,
            plaintext_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_seal_text for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_seal_text is epoch 0. The same sizes and result codes; an
/// envelope opened at another epoch than it was sealed at fails
/// CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_seal_text_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let plaintext = unsafe { bytes(plaintext, plaintext_len) }?;
        let binary = chatseal_core::sealed_len(plaintext.len()).ok_or(CHATSEAL_TOO_LARGE)?;
        let needed = binary
            .div_ceil(3)
            .checked_mul(4)
            .and_then(|n| n.checked_add(1))
            .ok_or(CHATSEAL_TOO_LARGE)?;
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe {
            out_buffer(
                out.cast(),
                out_cap,
                out_len,
                needed,
                &[room.as_bytes(), context, plaintext],
            )
        }? {
            let text = sealer
                .inner
                .seal_text(Room::at(room, epoch), context, plaintext)
                .map_err(core_err)?;
            debug_assert_eq!(text.len() + 1, needed);
            buf[..text.len()].copy_from_slice(text.as_bytes());
            buf[text.len()] = 0;
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(needed) };
        }
        Ok(())
    })
}

/// Opens the text form (`text`, `text_len` bytes, need not be
/// NUL-terminated) into `out`. The size query gives an upper bound
/// (exact for canonical text); *out_len is the exact length on success.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_open_text(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    text_in: *const c_char,
    text_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_open_text_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            text_in,
            text_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_open_text for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_open_text is epoch 0. The same sizes and result codes; an
/// envelope opened at another epoch than it was sealed at fails
/// CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_open_text_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    text_in: *const c_char,
    text_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let envelope_text =
            unsafe { text(text_in.cast(), text_len).map_err(|_| CHATSEAL_BAD_ENCODING) }?;
        let envelope = Zeroizing::new(chatseal_core::decode_text(envelope_text).map_err(core_err)?);
        chatseal_core::Header::parse(&envelope).map_err(core_err)?;
        let needed = envelope.len() - CHATSEAL_OVERHEAD;
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe {
            out_buffer(
                out,
                out_cap,
                out_len,
                needed,
                &[room.as_bytes(), context, envelope_text.as_bytes()],
            )
        }? {
            let n = sealer
                .inner
                .open_into(Room::at(room, epoch), context, &envelope, buf)
                .map_err(core_err)?;
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(n) };
        }
        Ok(())
    })
}

/// Re-seals a binary envelope under the sealer's current primary key, with
/// the same room and context, without the plaintext leaving the library
/// (it exists only in a buffer wiped before returning). For `keys rewrap`
/// before a key is retired.
///
/// Result codes are exactly those of chatseal_open for the same arguments.
/// Size: the new envelope is exactly as long as the old one, so out_cap =
/// envelope_len always suffices (a size query on an envelope shorter than
/// 34 bytes gives CHATSEAL_MALFORMED). On success *out_len is the length of
/// the new envelope in `out`, or 0 when the envelope (authenticated) is
/// already under the primary key: nothing was sealed or written, keep it.
/// No envelope is shorter than 34 bytes, so 0 is never a length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_rewrap(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    envelope: *const u8,
    envelope_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_rewrap_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            envelope,
            envelope_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_rewrap for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_rewrap is epoch 0. The envelope is opened and sealed again at
/// that epoch (a rewrap moves the master key, never the epoch). The same
/// sizes and result codes; an envelope opened at another epoch than it was
/// sealed at fails CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_rewrap_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    envelope: *const u8,
    envelope_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let envelope = unsafe { bytes(envelope, envelope_len) }?;
        chatseal_core::Header::parse(envelope).map_err(core_err)?;
        let needed = envelope.len();
        let inputs = [room.as_bytes(), context, envelope];
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe { out_buffer(out, out_cap, out_len, needed, &inputs) }? {
            let written = match sealer
                .inner
                .rewrap(Room::at(room, epoch), context, envelope)
            {
                Ok(Rewrapped::Unchanged) => 0,
                Ok(Rewrapped::Resealed { envelope, .. }) => {
                    buf[..envelope.len()].copy_from_slice(&envelope);
                    envelope.len()
                }
                Err(e) => return Err(core_err(e)),
            };
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(written) };
        }
        Ok(())
    })
}

/// chatseal_rewrap for the text form (`text_in`, `text_len` bytes, need not
/// be NUL-terminated), as a store keeps envelopes; the new envelope is
/// written NUL-terminated. Result codes are those of chatseal_open_text.
/// Size query: the exact size for canonical text (its length plus the NUL).
/// On success *out_len is the new text's length including the NUL, or 0
/// when the envelope is already under the primary key (nothing written).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_rewrap_text(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    context: *const u8,
    context_len: usize,
    text_in: *const c_char,
    text_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    // SAFETY: the same arguments, under the same promises.
    unsafe {
        chatseal_rewrap_text_epoch(
            sealer,
            room,
            room_len,
            0,
            context,
            context_len,
            text_in,
            text_len,
            out,
            out_cap,
            out_len,
        )
    }
}

/// chatseal_rewrap_text for `room` at key epoch `epoch` (docs/format.md §1);
/// chatseal_rewrap_text is epoch 0. The envelope is opened and sealed again at
/// that epoch (a rewrap moves the master key, never the epoch). The same
/// sizes and result codes; an envelope opened at another epoch than it was
/// sealed at fails CHATSEAL_BAD_TAG.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn chatseal_rewrap_text_epoch(
    sealer: *const chatseal_sealer,
    room: *const c_char,
    room_len: usize,
    epoch: u32,
    context: *const u8,
    context_len: usize,
    text_in: *const c_char,
    text_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> chatseal_result {
    guard(|| {
        // SAFETY: caller's promises on every (pointer, length) pair.
        let (sealer, room, context) =
            unsafe { call_inputs(sealer, room, room_len, context, context_len) }?;
        // SAFETY: caller's promise on the data pair.
        let envelope_text =
            unsafe { text(text_in.cast(), text_len).map_err(|_| CHATSEAL_BAD_ENCODING) }?;
        let envelope = chatseal_core::decode_text(envelope_text).map_err(core_err)?;
        chatseal_core::Header::parse(&envelope).map_err(core_err)?;
        let needed = envelope
            .len()
            .div_ceil(3)
            .checked_mul(4)
            .and_then(|n| n.checked_add(1))
            .ok_or(CHATSEAL_TOO_LARGE)?;
        let inputs = [room.as_bytes(), context, envelope_text.as_bytes()];
        // SAFETY: caller's promises on out/out_cap/out_len.
        if let Some(buf) = unsafe { out_buffer(out.cast(), out_cap, out_len, needed, &inputs) }? {
            let written = match sealer
                .inner
                .rewrap(Room::at(room, epoch), context, &envelope)
            {
                Ok(Rewrapped::Unchanged) => 0,
                Ok(Rewrapped::Resealed { envelope, .. }) => {
                    let text = chatseal_core::encode_text(&envelope);
                    debug_assert_eq!(text.len() + 1, needed);
                    buf[..text.len()].copy_from_slice(text.as_bytes());
                    buf[text.len()] = 0;
                    text.len() + 1
                }
                Err(e) => return Err(core_err(e)),
            };
            // SAFETY: checked by out_buffer.
            unsafe { out_len.write(written) };
        }
        Ok(())
    })
}
