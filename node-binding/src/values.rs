//! Conversions at the JS boundary that keep plaintext out of freed memory.
//!
//! Plaintext crosses into V8 by one copy straight from a [`Zeroizing`] buffer,
//! which is wiped when it drops; the copy V8 owns is the caller's to keep.

use std::ptr;

use chatseal_core::Zeroizing;
use napi::bindgen_prelude::{Either, ToNapiValue, TypeName, Uint8Array};
use napi::sys;
use napi::{Status, ValueType};

/// A string (taken as UTF-8) or a Buffer/Uint8Array that outlives the call:
/// what the async and batch forms take (they copy it).
pub type Bytes = Either<String, Uint8Array>;

/// Copies a JS string or buffer argument into memory that is wiped on drop.
pub fn secret_bytes(input: Bytes) -> Zeroizing<Vec<u8>> {
    match input {
        Either::A(text) => Zeroizing::new(text.into_bytes()),
        Either::B(buf) => Zeroizing::new(buf.to_vec()),
    }
}

/// Borrows a JS string or buffer argument that is not secret (contexts).
pub fn as_slice(input: &Option<Bytes>) -> &[u8] {
    match input {
        None => &[],
        Some(Either::A(text)) => text.as_bytes(),
        Some(Either::B(buf)) => buf,
    }
}

/// Opened UTF-8 text, handed to V8 as a string; our copy is wiped.
pub struct SecretText(pub Zeroizing<Vec<u8>>);

impl TypeName for SecretText {
    fn type_name() -> &'static str {
        "String"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ToNapiValue for SecretText {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: `val.0` is valid UTF-8 (checked by the caller) for its whole
        // length; V8 copies it before this returns.
        let status = unsafe {
            sys::napi_create_string_utf8(env, val.0.as_ptr().cast(), val.0.len() as isize, &mut out)
        };
        check(status, out)
    }
}

/// Opened bytes, handed to V8 as a Buffer it owns; our copy is wiped.
pub struct SecretBuffer(pub Zeroizing<Vec<u8>>);

impl TypeName for SecretBuffer {
    fn type_name() -> &'static str {
        "Buffer"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for SecretBuffer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: the source is valid for `len` bytes; Node copies them into a
        // Buffer it allocates and owns.
        let status = unsafe {
            sys::napi_create_buffer_copy(
                env,
                val.0.len(),
                val.0.as_ptr().cast(),
                &mut data,
                &mut out,
            )
        };
        check(status, out)
    }
}

fn check(status: sys::napi_status, out: sys::napi_value) -> napi::Result<sys::napi_value> {
    napi_ok(status, "could not hand the result to JavaScript").map(|()| out)
}

/// A napi status as a result; `what` names the call that failed.
pub fn napi_ok(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::from(status), what.to_owned()))
    }
}

/// Opened bytes as text, or `BAD_ENCODING` if they are not UTF-8.
pub fn text(opened: Zeroizing<Vec<u8>>) -> crate::error::Result<SecretText> {
    match std::str::from_utf8(&opened) {
        Ok(_) => Ok(SecretText(opened)),
        Err(_) => Err(crate::error::not_text()),
    }
}
