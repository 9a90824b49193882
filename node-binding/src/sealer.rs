//! `Sealer`: seals and opens envelopes with room keys, sync and async.
//!
//! Arguments are positional (`plaintext, room, context`) rather than an
//! options object: a per-message call from a chat server is hot, and reading
//! properties off an object costs more than the AES-GCM of a short message.
//!
//! A room is a room name, meaning the room's key epoch 0 (what every call
//! meant before epochs existed), or `{ room, epoch }` (docs/format.md §1).

use std::sync::Arc;

use chatseal_core as core;
use napi::bindgen_prelude::{AsyncTask, Either};
use napi_derive::napi;

use crate::error::{Result, engine};
use crate::keyring::{Keyring, RoomKey};
use crate::tasks::{
    OpenBatchTask, OpenTask, Output, RewrapBatchTask, RewrapTask, SealBatchTask, SealTask,
};
use napi::bindgen_prelude::{BufferSlice, Uint8Array};

use crate::bytes_arg::BytesArg;
use crate::room_arg::{Epoch, RoomArg, room_of};
use crate::values::{SecretBuffer, SecretText, text};

/// One item of `encryptBatch`.
#[napi(object, object_to_js = false)]
pub struct SealItem {
    pub plaintext: Either<String, Uint8Array>,
    pub room: Option<String>,
    /// The room's key epoch (an integer from 0 to 4294967295; 0 if omitted).
    #[napi(ts_type = "number")]
    pub epoch: Option<Epoch>,
    pub context: Option<Either<String, Uint8Array>>,
}

/// One item of `decryptBatch`.
#[napi(object, object_to_js = false)]
pub struct OpenItem {
    pub envelope: String,
    pub room: Option<String>,
    /// The key epoch it was sealed under (an integer from 0 to 4294967295;
    /// 0 if omitted).
    #[napi(ts_type = "number")]
    pub epoch: Option<Epoch>,
    pub context: Option<Either<String, Uint8Array>>,
}

/// The outcome of one `decryptBatch` item: `{ ok: true, message }` or
/// `{ ok: false, error: { code, message } }` (the shape of a protocol ack).
#[napi(object, object_from_js = false)]
pub struct OpenOutcome {
    pub ok: bool,
    #[napi(ts_type = "string")]
    pub message: Option<SecretText>,
    pub error: Option<OpenFailure>,
}

/// Why one batch item did not open.
#[napi(object, object_from_js = false)]
pub struct OpenFailure {
    pub code: String,
    pub message: String,
}

/// The outcome of one `rewrapBatch` item: `{ ok: true, unchanged: false,
/// envelope, keyId }` when it was sealed again under the primary key,
/// `{ ok: true, unchanged: true }` when it already was (keep the stored one),
/// or `{ ok: false, unchanged: false, error: { code, message } }` with the
/// codes of `decrypt`.
#[napi(object, object_from_js = false)]
pub struct RewrapOutcome {
    pub ok: bool,
    pub unchanged: bool,
    /// The new envelope, text form; only when it was resealed.
    pub envelope: Option<String>,
    /// The key id it was resealed under (the primary when the batch ran).
    pub key_id: Option<u32>,
    pub error: Option<OpenFailure>,
}

/// How many envelopes one master key has sealed in this process.
#[napi(object, object_from_js = false)]
pub struct SealCount {
    pub key_id: u32,
    pub count: i64,
}

/// Seals and opens sealed envelopes (format v1) under a keyring.
///
/// Thread-safe inside: the async forms run on libuv's thread pool against
/// the same keyring, and `rotate`/`replaceKeyring` take effect for every
/// call that starts afterwards.
#[napi]
pub struct Sealer {
    inner: Arc<core::Sealer>,
}

/// napi hands strings over as UTF-8; anything else is not base64 either.
fn as_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("\u{fffd}")
}

#[napi]
impl Sealer {
    /// A sealer over a copy of `keyring`.
    #[napi(constructor)]
    pub fn new(keyring: &Keyring) -> Self {
        Sealer {
            inner: Arc::new(core::Sealer::new(keyring.inner.clone())),
        }
    }

    /// The id of the master key that seals now.
    #[napi(getter)]
    pub fn primary_key_id(&self) -> u32 {
        self.inner.primary_key_id()
    }

    /// A copy of the current keyring (to save after `rotate`, say).
    #[napi]
    pub fn keyring(&self) -> Keyring {
        Keyring {
            inner: self.inner.keyring(),
        }
    }

    /// Swaps in another keyring; calls already running finish on the old one.
    #[napi]
    pub fn replace_keyring(&self, keyring: &Keyring) {
        self.inner.replace_keyring(keyring.inner.clone());
    }

    /// Adds a fresh key and makes it primary; returns the new primary id.
    #[napi]
    pub fn rotate(&self) -> Result<u32> {
        Ok(self.inner.rotate().map_err(engine)?.primary())
    }

    /// Seals done per master key id since this sealer was made.
    #[napi]
    pub fn seal_counts(&self) -> Vec<SealCount> {
        let counts = self.inner.seal_counts().into_iter();
        counts
            .map(|(key_id, n)| SealCount {
                key_id,
                count: i64::try_from(n).unwrap_or(i64::MAX),
            })
            .collect()
    }

    /// The room key of `room` (a name: epoch 0; or `{ room, epoch }`)
    /// under master key `keyId`.
    #[napi]
    pub fn room_key(&self, room: RoomArg, key_id: u32) -> Result<RoomKey> {
        Ok(self
            .inner
            .room_key(room.room(), key_id)
            .map_err(engine)?
            .into())
    }

    /// The room keys a member of `room` (a name: epoch 0; or `{ room,
    /// epoch }`) needs at that epoch: one per usable master key.
    #[napi]
    pub fn room_keys(&self, room: RoomArg) -> Result<Vec<RoomKey>> {
        let keys = self.inner.room_keys(room.room()).map_err(engine)?;
        Ok(keys.into_iter().map(RoomKey::from).collect())
    }

    /// Seals `plaintext` for `room` (a name, at key epoch 0, or `{ room,
    /// epoch }`; default `""` at epoch 0) bound to `context`; returns the
    /// envelope's text form (base64).
    #[napi]
    pub fn encrypt(
        &self,
        plaintext: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<String> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        self.inner
            .seal_text(room, context, &plaintext)
            .map_err(engine)
    }

    /// As `encrypt`, returning the binary envelope.
    #[napi]
    // The npm package (chatseal.js) puts a pooled form in front of this and
    // of `decrypt_buffer` that calls the `_into` forms instead; these define
    // the types and serve callers of the bare loader (index.js).
    pub fn encrypt_buffer(
        &self,
        plaintext: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<napi::bindgen_prelude::Buffer> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let sealed = self.inner.seal(room, context, &plaintext).map_err(engine)?;
        Ok(sealed.into())
    }

    /// Seals into `out` (at least `plaintext` bytes + 34), returning the
    /// envelope's length. For callers that reuse or pool their buffers.
    #[napi]
    pub fn encrypt_into(
        &self,
        plaintext: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
        mut out: BufferSlice<'_>,
    ) -> Result<u32> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let len = self
            .inner
            .seal_into(room, context, &plaintext, &mut out)
            .map_err(engine)?;
        Ok(len as u32)
    }

    /// Opens a text-form envelope to a UTF-8 string.
    #[napi(ts_return_type = "string")]
    pub fn decrypt(
        &self,
        envelope: String,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<SecretText> {
        let opened = self
            .inner
            .open_text(
                room_of(&room),
                context.as_deref().unwrap_or_default(),
                &envelope,
            )
            .map_err(engine)?;
        text(opened)
    }

    /// Opens an envelope (text form or binary) to its bytes.
    #[napi(ts_return_type = "Buffer")]
    pub fn decrypt_buffer(
        &self,
        envelope: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<SecretBuffer> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let opened = match &envelope {
            BytesArg::Text(text) => self.inner.open_text(room, context, as_text(text)),
            BytesArg::Bytes(binary) => self.inner.open(room, context, binary),
        };
        Ok(SecretBuffer(opened.map_err(engine)?))
    }

    /// Opens an envelope (text form or binary) into `out`, which must hold
    /// the envelope's binary length; returns the plaintext's length (it
    /// starts at `out[0]`). On failure `out` never holds plaintext.
    #[napi]
    pub fn decrypt_into(
        &self,
        envelope: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
        mut out: BufferSlice<'_>,
    ) -> Result<u32> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let decoded;
        let binary: &[u8] = match &envelope {
            BytesArg::Text(text) => {
                decoded = core::decode_text(as_text(text)).map_err(engine)?;
                &decoded
            }
            BytesArg::Bytes(binary) => binary,
        };
        let work = out.get_mut(..binary.len()).ok_or_else(|| {
            engine(core::Error::BufferTooSmall {
                needed: binary.len(),
            })
        })?;
        work.copy_from_slice(binary);
        let len = self
            .inner
            .open_in_place(room, context, work)
            .map_err(engine)?;
        Ok(len as u32)
    }

    /// Opens the binary envelope that fills `buffer` in place: the plaintext
    /// is written to its front and its length returned. For a caller that
    /// owns the envelope's bytes (it just decoded them): no second buffer,
    /// no copy. On failure `buffer` never holds plaintext (a failed tag
    /// zeroes it; a malformed header leaves it as it was).
    #[napi]
    pub fn decrypt_in_place(
        &self,
        mut buffer: BufferSlice<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<u32> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let len = self
            .inner
            .open_in_place(room, context, &mut buffer)
            .map_err(engine)?;
        Ok(len as u32)
    }

    /// Seals a text-form envelope again under the current primary key, with
    /// the same room and context, without the plaintext ever reaching
    /// JavaScript. Returns the new envelope (text form), or `null` when the
    /// envelope (checked authentic) is already under the primary key: keep
    /// it. Throws with the codes of `decrypt` (`BAD_TAG`, `UNKNOWN_KEY`, …).
    #[napi(ts_return_type = "string | null")]
    pub fn rewrap(
        &self,
        envelope: String,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<Option<String>> {
        let rewrapped = self
            .inner
            .rewrap_text(
                room_of(&room),
                context.as_deref().unwrap_or_default(),
                &envelope,
            )
            .map_err(engine)?;
        Ok(rewrapped.into_envelope())
    }

    /// As `rewrap` for an envelope in text form or binary, returning the new
    /// binary envelope, or `null` when it is already under the primary key.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn rewrap_buffer(
        &self,
        envelope: BytesArg<'_>,
        room: Option<RoomArg>,
        context: Option<BytesArg<'_>>,
    ) -> Result<Option<napi::bindgen_prelude::Buffer>> {
        let (room, context) = (room_of(&room), context.as_deref().unwrap_or_default());
        let rewrapped = match &envelope {
            BytesArg::Text(text) => {
                let binary = core::decode_text(as_text(text)).map_err(engine)?;
                self.inner.rewrap(room, context, &binary)
            }
            BytesArg::Bytes(binary) => self.inner.rewrap(room, context, binary),
        };
        Ok(rewrapped.map_err(engine)?.into_envelope().map(Into::into))
    }

    /// `rewrap` on the libuv thread pool (text form or binary in, text out).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn rewrap_async(
        &self,
        envelope: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<RewrapTask> {
        AsyncTask::new(RewrapTask::new(
            &self.inner,
            envelope,
            room,
            context,
            Output::Text,
        ))
    }

    /// `rewrapBuffer` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn rewrap_buffer_async(
        &self,
        envelope: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<RewrapTask> {
        AsyncTask::new(RewrapTask::new(
            &self.inner,
            envelope,
            room,
            context,
            Output::Binary,
        ))
    }

    /// Rewraps many text-form envelopes under one keyring snapshot (every
    /// resealed one gets the same primary key id); each item reports its
    /// own outcome, as in `decryptBatch`.
    #[napi]
    pub fn rewrap_batch(&self, items: Vec<OpenItem>) -> Vec<RewrapOutcome> {
        RewrapBatchTask::new(&self.inner, items).run()
    }

    /// `rewrapBatch` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Array<RewrapOutcome>>")]
    pub fn rewrap_batch_async(&self, items: Vec<OpenItem>) -> AsyncTask<RewrapBatchTask> {
        AsyncTask::new(RewrapBatchTask::new(&self.inner, items))
    }

    /// `encrypt` on the libuv thread pool: for large payloads.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn encrypt_async(
        &self,
        plaintext: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<SealTask> {
        AsyncTask::new(SealTask::new(
            &self.inner,
            plaintext,
            room,
            context,
            Output::Text,
        ))
    }

    /// `encryptBuffer` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn encrypt_buffer_async(
        &self,
        plaintext: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<SealTask> {
        AsyncTask::new(SealTask::new(
            &self.inner,
            plaintext,
            room,
            context,
            Output::Binary,
        ))
    }

    /// `decrypt` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn decrypt_async(
        &self,
        envelope: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask::new(
            &self.inner,
            envelope,
            room,
            context,
            Output::Text,
        ))
    }

    /// `decryptBuffer` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn decrypt_buffer_async(
        &self,
        envelope: Either<String, Uint8Array>,
        room: Option<RoomArg>,
        context: Option<Either<String, Uint8Array>>,
    ) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask::new(
            &self.inner,
            envelope,
            room,
            context,
            Output::Binary,
        ))
    }

    /// Seals many plaintexts in one call; all or nothing (the first error throws).
    #[napi]
    pub fn encrypt_batch(&self, items: Vec<SealItem>) -> Result<Vec<String>> {
        SealBatchTask::new(&self.inner, items).run()
    }

    /// Opens many text-form envelopes in one call; each item reports its own outcome.
    #[napi]
    pub fn decrypt_batch(&self, items: Vec<OpenItem>) -> Vec<OpenOutcome> {
        OpenBatchTask::new(&self.inner, items)
            .run()
            .into_iter()
            .map(OpenOutcome::from)
            .collect()
    }

    /// `encryptBatch` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Array<string>>")]
    pub fn encrypt_batch_async(&self, items: Vec<SealItem>) -> AsyncTask<SealBatchTask> {
        AsyncTask::new(SealBatchTask::new(&self.inner, items))
    }

    /// `decryptBatch` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Array<OpenOutcome>>")]
    pub fn decrypt_batch_async(&self, items: Vec<OpenItem>) -> AsyncTask<OpenBatchTask> {
        AsyncTask::new(OpenBatchTask::new(&self.inner, items))
    }
}

impl From<Result<SecretText>> for OpenOutcome {
    fn from(result: Result<SecretText>) -> Self {
        match result {
            Ok(message) => OpenOutcome {
                ok: true,
                message: Some(message),
                error: None,
            },
            Err(err) => OpenOutcome {
                ok: false,
                message: None,
                error: Some(OpenFailure {
                    code: err.status.0.to_owned(),
                    message: err.reason.clone(),
                }),
            },
        }
    }
}
