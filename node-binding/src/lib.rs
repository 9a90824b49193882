//! chatseal's engine as a native Node.js addon.
//!
//! A thin layer over `chatseal-core`: the npm package `chatseal` (in `../js`)
//! loads the `.node` file this crate builds. Everything that decides bytes —
//! envelopes, room keys, contexts — lives in the core, so Node, C and the
//! Rust server cannot disagree.

// The exported types hold keys and plaintext and exist only to cross into
// JavaScript; none gets a Debug impl, so none can be printed by accident.
#![allow(missing_debug_implementations)]

mod bytes_arg;
mod error;
mod keyring;
mod room_arg;
mod sealer;
mod tasks;
mod values;

use napi_derive::napi;

pub use keyring::{Keyring, RoomKey, generate_kek, kek_id};
pub use sealer::Sealer;

/// The context of a chat message (DESIGN §2): `room ‖ 0 ‖ id ‖ 0 ‖ sender`.
#[napi]
pub fn chat_context(
    room: String,
    message_id: String,
    sender: String,
) -> napi::bindgen_prelude::Buffer {
    chatseal_core::chat_context(&room, &message_id, &sender).into()
}

/// Checks a chat room name as every chatseal server does: 1–64 characters,
/// no control characters. Throws `INVALID_ROOM` otherwise.
#[napi]
pub fn validate_chat_room(room: String) -> error::Result<()> {
    chatseal_core::validate_chat_room(&room).map_err(error::engine)
}

/// Every `code` an engine error can carry.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    chatseal_core::ErrorKind::ALL
        .iter()
        .map(|k| k.code())
        .collect()
}

/// The engine's version.
#[napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
