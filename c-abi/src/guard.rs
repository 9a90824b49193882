//! The boundary rules every entry point follows.
//!
//! * No panic unwinds into C: [`guard`] runs the body under `catch_unwind`
//!   and turns a panic into `CHATSEAL_PANIC`.
//! * No pointer is trusted beyond what C can promise: NULL is checked
//!   everywhere, `(NULL, 0)` is an empty input, lengths above `isize::MAX`
//!   are refused before a slice is formed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::chatseal_result::{self, *};

pub(crate) type FfiResult<T> = Result<T, chatseal_result>;

/// Runs `body`, mapping both errors and panics to a result code.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult<()>) -> chatseal_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CHATSEAL_OK,
        Ok(Err(code)) => code,
        Err(_) => CHATSEAL_PANIC,
    }
}

/// A byte input. `(NULL, 0)` and `(p, 0)` are empty.
///
/// # Safety
/// If `len > 0`, `ptr` must point to `len` readable bytes.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(CHATSEAL_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize {
        return Err(CHATSEAL_INVALID_ARGUMENT);
    }
    // SAFETY: non-null, length in range, readability is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A UTF-8 string input given as (pointer, length); not NUL-terminated.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(ptr: *const u8, len: usize) -> FfiResult<&'a str> {
    // SAFETY: forwarded.
    let b = unsafe { bytes(ptr, len) }?;
    std::str::from_utf8(b).map_err(|_| CHATSEAL_INVALID_UTF8)
}

/// A NUL-terminated UTF-8 string (paths).
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn c_str<'a>(ptr: *const std::ffi::c_char) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(CHATSEAL_NULL_ARGUMENT);
    }
    // SAFETY: non-null and NUL-terminated by the caller's promise.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| CHATSEAL_INVALID_UTF8)
}

/// A shared reference to a handle.
///
/// # Safety
/// `ptr` must be NULL or a live handle of this type.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T) -> FfiResult<&'a T> {
    // SAFETY: the caller's promise.
    unsafe { ptr.as_ref() }.ok_or(CHATSEAL_NULL_ARGUMENT)
}

/// An exclusive reference to a handle.
///
/// # Safety
/// `ptr` must be NULL or a live handle not used by anything else meanwhile.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T) -> FfiResult<&'a mut T> {
    // SAFETY: the caller's promise.
    unsafe { ptr.as_mut() }.ok_or(CHATSEAL_NULL_ARGUMENT)
}

/// Writes a value to a non-NULL out pointer.
///
/// # Safety
/// `ptr` must be NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T) -> FfiResult<()> {
    if ptr.is_null() {
        return Err(CHATSEAL_NULL_ARGUMENT);
    }
    // SAFETY: non-null; validity is the caller's promise.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Whether two byte ranges share a byte. Empty ranges share none.
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    a_len > 0 && b_len > 0 && a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// `CHATSEAL_INVALID_ARGUMENT` if the `len` bytes at `out` share a byte with
/// any of `inputs`. Writing output over an input (`out == plaintext`) would
/// corrupt the message while reporting success, and would alias a `&mut`
/// with a `&` in Rust, so it is refused before any slice over `out` exists.
pub(crate) fn disjoint(out: *const u8, len: usize, inputs: &[&[u8]]) -> FfiResult<()> {
    if inputs
        .iter()
        .any(|input| overlaps(out, len, input.as_ptr(), input.len()))
    {
        return Err(CHATSEAL_INVALID_ARGUMENT);
    }
    Ok(())
}

/// The caller's output buffer, under the size-query convention: `out` NULL
/// means "tell me the size". Returns `None` for a size query (after writing
/// `needed` to `out_len`), or the buffer when it is large enough. `out`
/// (all `cap` bytes) and `out_len` must not overlap each other or any of
/// `inputs`: `CHATSEAL_INVALID_ARGUMENT`, nothing written.
///
/// # Safety
/// `out_len` must be valid for writes; `out`, if not NULL, for `cap` bytes.
pub(crate) unsafe fn out_buffer<'a>(
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    needed: usize,
    inputs: &[&[u8]],
) -> FfiResult<Option<&'a mut [u8]>> {
    if out_len.is_null() {
        return Err(CHATSEAL_NULL_ARGUMENT);
    }
    disjoint(out_len.cast(), size_of::<usize>(), inputs)?;
    if out.is_null() {
        // SAFETY: checked non-null above.
        unsafe { out_len.write(needed) };
        return Ok(None);
    }
    if cap > isize::MAX as usize {
        return Err(CHATSEAL_INVALID_ARGUMENT);
    }
    disjoint(out, cap, inputs)?;
    if overlaps(out, cap, out_len.cast(), size_of::<usize>()) {
        return Err(CHATSEAL_INVALID_ARGUMENT);
    }
    if cap < needed {
        // SAFETY: as above.
        unsafe { out_len.write(needed) };
        return Err(CHATSEAL_BUFFER_TOO_SMALL);
    }
    // SAFETY: non-null, `cap` writable bytes by the caller's promise, and
    // no input or `out_len` lies within them (checked above).
    Ok(Some(unsafe { std::slice::from_raw_parts_mut(out, cap) }))
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn overlap_is_any_shared_byte() {
        let p = 1000 as *const u8;
        let at = |n: usize| (1000 + n) as *const u8;
        assert!(overlaps(p, 10, p, 10));
        assert!(overlaps(p, 10, at(9), 1));
        assert!(!overlaps(p, 10, at(10), 5));
        assert!(overlaps(at(5), 10, p, 6));
        assert!(!overlaps(at(5), 10, p, 5));
        assert!(!overlaps(p, 0, p, 10));
        assert!(!overlaps(p, 10, p, 0));
    }
}
