//! `RoomArg`: the room a call works in, as a room name (key epoch 0, the
//! only form before epochs existed) or `{ room, epoch }`; and `Epoch`, a key
//! epoch read from JavaScript with its range checked.
//!
//! napi-rs reads a `u32` with `napi_get_value_uint32`, which wraps: `-1`
//! becomes 4294967295 and `1.5` becomes 1. An epoch chosen by accident seals
//! under a key that members who should not read the message may hold, so an
//! epoch that is not exactly an integer in `0..=4294967295` is refused with
//! `InvalidArg` (a `TypeError`, `ERR_INVALID_ARG_TYPE`, from the package).

use std::ptr;

use chatseal_core::Room;
use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{Error, Result, Status, ValueType, sys};

use crate::values::napi_ok;

/// A room name and its key epoch, owned (the async forms keep it past the call).
#[derive(Clone, Default)]
pub struct RoomArg {
    pub name: String,
    pub epoch: u32,
}

impl RoomArg {
    /// The engine's view of it.
    pub fn room(&self) -> Room<'_> {
        Room::at(&self.name, self.epoch)
    }
}

/// The room of an optional argument, borrowed: `""` at epoch 0 if omitted.
pub fn room_of(room: &Option<RoomArg>) -> Room<'_> {
    match room {
        Some(r) => r.room(),
        None => Room::at("", 0),
    }
}

fn invalid(message: &str) -> Error {
    Error::new(Status::InvalidArg, message.to_owned())
}

/// The `typeof` of a value.
///
/// # Safety
/// `env` and `value` are live handles of the current call.
unsafe fn type_of(env: sys::napi_env, value: sys::napi_value) -> Result<sys::napi_valuetype> {
    let mut kind = 0;
    // SAFETY: the caller's promise; the out-pointer is a local.
    napi_ok(unsafe { sys::napi_typeof(env, value, &mut kind) }, "typeof")?;
    Ok(kind)
}

/// A named property of an object (`undefined` when it has none).
///
/// # Safety
/// `env` and `object` are live handles of the current call; `object` is an object.
unsafe fn property(
    env: sys::napi_env,
    object: sys::napi_value,
    name: &std::ffi::CStr,
) -> Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: the caller's promise; `name` is NUL-terminated; the
    // out-pointer is a local.
    napi_ok(
        unsafe { sys::napi_get_named_property(env, object, name.as_ptr(), &mut value) },
        "property",
    )?;
    Ok(value)
}

impl TypeName for RoomArg {
    fn type_name() -> &'static str {
        "string | { room: string, epoch: number }"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for RoomArg {}

impl FromNapiValue for RoomArg {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY (all calls): `env` and `value` are the live handles napi
        // passed to this call.
        let kind = unsafe { type_of(env, value) }?;
        if kind == sys::ValueType::napi_string {
            return Ok(RoomArg {
                name: unsafe { String::from_napi_value(env, value) }?,
                epoch: 0,
            });
        }
        if kind != sys::ValueType::napi_object {
            return Err(invalid(
                "a room is a room name (string) or { room: string, epoch: number }",
            ));
        }
        let name = unsafe { property(env, value, c"room") }?;
        if unsafe { type_of(env, name) }? != sys::ValueType::napi_string {
            return Err(invalid("{ room, epoch }: room must be a string"));
        }
        let epoch = unsafe { property(env, value, c"epoch") }?;
        Ok(RoomArg {
            name: unsafe { String::from_napi_value(env, name) }?,
            epoch: unsafe { Epoch::from_napi_value(env, epoch) }?.0,
        })
    }
}

/// A room key epoch: a JavaScript number that is an integer from 0 to
/// 4294967295 (so not NaN, not 1.5, not -1, not `"1"`).
#[derive(Clone, Copy, Default)]
pub struct Epoch(pub u32);

impl Epoch {
    /// The epoch of an optional batch item field: 0 when omitted.
    pub fn or_zero(epoch: Option<Epoch>) -> u32 {
        epoch.map_or(0, |e| e.0)
    }
}

const EPOCH_RANGE: &str = "epoch must be an integer from 0 to 4294967295";

impl TypeName for Epoch {
    fn type_name() -> &'static str {
        "number"
    }
    fn value_type() -> ValueType {
        ValueType::Number
    }
}

impl ValidateNapiValue for Epoch {}

impl FromNapiValue for Epoch {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY (both calls): the live handles napi passed to this call.
        if unsafe { type_of(env, value) }? != sys::ValueType::napi_number {
            return Err(invalid(EPOCH_RANGE));
        }
        let mut number = 0f64;
        napi_ok(
            unsafe { sys::napi_get_value_double(env, value, &mut number) },
            "number",
        )?;
        // NaN fails both comparisons; ±Infinity fails one.
        if number.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&number) {
            Ok(Epoch(number as u32))
        } else {
            Err(invalid(EPOCH_RANGE))
        }
    }
}

/// `{ room, epoch }`: a room at a key epoch (epoch 0 is the room's first
/// key, the one a bare room name means).
#[napi_derive::napi(object, object_to_js = false)]
#[allow(dead_code)]
pub struct RoomAt {
    pub room: String,
    /// An integer from 0 to 4294967295.
    pub epoch: u32,
}

/// The TypeScript name the generated `.d.ts` gives room parameters: a room
/// name (key epoch 0) or `{ room, epoch }`.
#[napi_derive::napi(js_name = "RoomArg")]
#[allow(dead_code)]
pub type RoomArgTs = napi::bindgen_prelude::Either<String, RoomAt>;
