//! # chatseal-core
//!
//! The engine every part of chatseal uses: a keyring of master keys,
//! per-room keys derived with HKDF-SHA256, and the sealed envelope (version 1,
//! AES-256-GCM) that carries every chat message. The Node addon, the C
//! library and the server are thin layers over [`Sealer`]; `docs/format.md`
//! specifies the bytes so other implementations (browsers, with WebCrypto)
//! can open what this crate seals.
//!
//! ```
//! use chatseal_core::{Keyring, Sealer, chat_context};
//!
//! let sealer = Sealer::new(Keyring::generate());
//! let context = chat_context("lobby", "01J9ZQ", "ann");
//! let envelope = sealer.seal_text("lobby", &context, b"hello")?;
//! let plaintext = sealer.open_text("lobby", &context, &envelope)?;
//! assert_eq!(&plaintext[..], b"hello");
//! # Ok::<(), chatseal_core::Error>(())
//! ```

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod aead;
mod cache;
pub mod check;
pub mod context;
pub mod envelope;
pub mod error;
pub mod kek;
pub mod keyring;
mod keyring_file;
pub mod nonce;
pub mod room;
pub mod sealer;
pub mod secret;
pub mod wrapped;

#[cfg(test)]
mod vectors;

pub use cache::DEFAULT_CAPACITY as DEFAULT_ROOM_CACHE_CAPACITY;
pub use check::key_check_value;
pub use context::chat_context;
pub use envelope::{Header, OVERHEAD, decode_text, encode_text, opened_len, sealed_len};
pub use error::{Error, ErrorKind, Result};
pub use kek::{KdfParams, Kek};
pub use keyring::Keyring;
pub use keyring_file::MAX_KEYRING_JSON;
pub use room::{MAX_ROOM_CHARS, Room, derive_room_key, validate_chat_room, validate_room};
pub use sealer::{
    OpenRequest, RewrapRequest, Rewrapped, RoomKey, SEAL_BUDGET_PER_KEY, SealRequest, SealedBatch,
    Sealer,
};
pub use secret::{KEY_LEN, SecretKey};
pub use wrapped::{StoredKeyring, TokenWrap, WrappedKeyring};
pub use zeroize::Zeroizing;
