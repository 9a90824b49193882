//! `BytesArg`: a string or a Uint8Array/Buffer argument, read with one type
//! check. napi-rs's `Either<String, Uint8ArraySlice>` tries `String` first
//! and builds an error message when that fails, which cost a Buffer
//! argument ~200 ns — as much as sealing the message.

use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{Error, Result, Status, ValueType, sys};

use crate::values::napi_ok;

/// The bytes of an argument: a string's UTF-8 (copied out of V8, so owned
/// here and wiped on drop) or a typed array's memory (borrowed for the call).
pub enum BytesArg<'a> {
    Text(chatseal_core::Zeroizing<Vec<u8>>),
    Bytes(&'a [u8]),
}

impl std::ops::Deref for BytesArg<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            BytesArg::Text(v) => v,
            BytesArg::Bytes(b) => b,
        }
    }
}

impl TypeName for BytesArg<'_> {
    fn type_name() -> &'static str {
        "string | Uint8Array"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for BytesArg<'_> {}

impl FromNapiValue for BytesArg<'_> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut kind = 0;
        // SAFETY (all calls): `env` and `value` are the live handles napi
        // passed to this call; out-pointers point at locals.
        napi_ok(unsafe { sys::napi_typeof(env, value, &mut kind) }, "typeof")?;
        if kind == sys::ValueType::napi_string {
            let mut len = 0;
            napi_ok(
                unsafe {
                    sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len)
                },
                "string length",
            )?;
            let mut buf = chatseal_core::Zeroizing::new(vec![0u8; len + 1]);
            let mut written = 0;
            napi_ok(
                unsafe {
                    sys::napi_get_value_string_utf8(
                        env,
                        value,
                        buf.as_mut_ptr().cast(),
                        len + 1,
                        &mut written,
                    )
                },
                "string contents",
            )?;
            buf.truncate(written);
            return Ok(BytesArg::Text(buf));
        }
        let mut is_typed = false;
        napi_ok(
            unsafe { sys::napi_is_typedarray(env, value, &mut is_typed) },
            "is typed array",
        )?;
        if kind == sys::ValueType::napi_object && is_typed {
            let (mut ty, mut len, mut data) = (0, 0usize, ptr::null_mut());
            let (mut buffer, mut offset) = (ptr::null_mut(), 0usize);
            napi_ok(
                unsafe {
                    sys::napi_get_typedarray_info(
                        env,
                        value,
                        &mut ty,
                        &mut len,
                        &mut data,
                        &mut buffer,
                        &mut offset,
                    )
                },
                "typed array info",
            )?;
            if ty == sys::TypedarrayType::uint8_array {
                let bytes = if len == 0 || data.is_null() {
                    &[][..]
                } else {
                    // SAFETY: V8 keeps the array's memory alive and unmoved
                    // for the length of this synchronous call, which is as
                    // long as the borrow lives (the macro never lets it out).
                    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
                };
                return Ok(BytesArg::Bytes(bytes));
            }
        }
        Err(Error::new(
            Status::InvalidArg,
            "expected a string, a Buffer or a Uint8Array".to_owned(),
        ))
    }
}

/// The TypeScript name the generated `.d.ts` gives BytesArg parameters:
/// a string (taken as UTF-8), a Buffer or a Uint8Array.
#[napi_derive::napi(js_name = "BytesArg")]
#[allow(dead_code)]
pub type BytesArgTs = napi::bindgen_prelude::Either<String, napi::bindgen_prelude::Uint8Array>;
