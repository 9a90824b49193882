//! The async forms: work that runs on libuv's thread pool.
//!
//! Each task owns copies of its inputs (JS memory may move or be collected
//! while the pool runs), with plaintext in wiped-on-drop buffers.

use std::sync::Arc;

use chatseal_core::{self as core, OpenRequest, RewrapRequest, Rewrapped, SealRequest, Zeroizing};
use napi::bindgen_prelude::{Buffer, Either, Env, Error, JsError, Task, Unknown};

use crate::error::{Code, Result, engine};
use crate::room_arg::{Epoch, RoomArg};
use crate::sealer::{OpenFailure, OpenItem, OpenOutcome, RewrapOutcome, SealItem};
use crate::values::{Bytes, SecretBuffer, SecretText, as_slice, secret_bytes, text};

/// What an async call resolves to: the text form or raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Binary,
}

/// A rejection that carries our `code`: `Task` errors are fixed to napi's
/// own statuses, so the JS error object is built here and rejected as is.
pub(crate) fn rejection(env: &Env, err: Error<Code>) -> Error {
    // SAFETY: `env` is the live environment `resolve` runs in; the value is
    // a fresh error object that napi-rs references until it is thrown.
    unsafe {
        let value = JsError::from(err).into_value(env.raw());
        Error::from(Unknown::from_raw_unchecked(env.raw(), value))
    }
}

fn engine_ref(err: &core::Error) -> Error<Code> {
    Error::new(Code(err.kind().code()), err.to_string())
}

fn owned(context: &Option<Bytes>) -> Vec<u8> {
    as_slice(context).to_vec()
}

/// One seal, off the JS thread.
pub struct SealTask {
    sealer: Arc<core::Sealer>,
    room: RoomArg,
    context: Vec<u8>,
    plaintext: Zeroizing<Vec<u8>>,
    output: Output,
}

impl SealTask {
    pub fn new(
        sealer: &Arc<core::Sealer>,
        plaintext: Bytes,
        room: Option<RoomArg>,
        context: Option<Bytes>,
        output: Output,
    ) -> Self {
        SealTask {
            sealer: Arc::clone(sealer),
            room: room.unwrap_or_default(),
            context: owned(&context),
            plaintext: secret_bytes(plaintext),
            output,
        }
    }
}

impl Task for SealTask {
    type Output = Result<Vec<u8>>;
    type JsValue = Either<String, Buffer>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self
            .sealer
            .seal(self.room.room(), &self.context, &self.plaintext)
            .map_err(engine))
    }

    fn resolve(&mut self, env: Env, sealed: Self::Output) -> napi::Result<Self::JsValue> {
        let sealed = sealed.map_err(|e| rejection(&env, e))?;
        Ok(match self.output {
            Output::Text => Either::A(core::encode_text(&sealed)),
            Output::Binary => Either::B(sealed.into()),
        })
    }
}

/// One open, off the JS thread.
pub struct OpenTask {
    sealer: Arc<core::Sealer>,
    room: RoomArg,
    context: Vec<u8>,
    envelope: Either<String, Vec<u8>>,
    output: Output,
}

impl OpenTask {
    pub fn new(
        sealer: &Arc<core::Sealer>,
        envelope: Bytes,
        room: Option<RoomArg>,
        context: Option<Bytes>,
        output: Output,
    ) -> Self {
        let envelope = match envelope {
            Either::A(text) => Either::A(text),
            Either::B(binary) => Either::B(binary.to_vec()),
        };
        OpenTask {
            sealer: Arc::clone(sealer),
            room: room.unwrap_or_default(),
            context: owned(&context),
            envelope,
            output,
        }
    }
}

impl Task for OpenTask {
    type Output = Result<Zeroizing<Vec<u8>>>;
    type JsValue = Either<SecretText, SecretBuffer>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.open())
    }

    fn resolve(&mut self, env: Env, opened: Self::Output) -> napi::Result<Self::JsValue> {
        let opened = opened.map_err(|e| rejection(&env, e))?;
        Ok(match self.output {
            Output::Text => Either::A(SecretText(opened)),
            Output::Binary => Either::B(SecretBuffer(opened)),
        })
    }
}

impl OpenTask {
    fn open(&self) -> Result<Zeroizing<Vec<u8>>> {
        let opened = match &self.envelope {
            Either::A(text) => self.sealer.open_text(self.room.room(), &self.context, text),
            Either::B(binary) => self.sealer.open(self.room.room(), &self.context, binary),
        };
        let opened = opened.map_err(engine)?;
        if self.output == Output::Text && std::str::from_utf8(&opened).is_err() {
            return Err(crate::error::not_text());
        }
        Ok(opened)
    }
}

struct OwnedSeal {
    room: RoomArg,
    context: Vec<u8>,
    plaintext: Zeroizing<Vec<u8>>,
}

/// Many seals in one call (sync or on the pool).
pub struct SealBatchTask {
    sealer: Arc<core::Sealer>,
    items: Vec<OwnedSeal>,
}

impl SealBatchTask {
    pub fn new(sealer: &Arc<core::Sealer>, items: Vec<SealItem>) -> Self {
        let items = items
            .into_iter()
            .map(|it| OwnedSeal {
                room: RoomArg {
                    name: it.room.unwrap_or_default(),
                    epoch: Epoch::or_zero(it.epoch),
                },
                context: owned(&it.context),
                plaintext: secret_bytes(it.plaintext),
            })
            .collect();
        SealBatchTask {
            sealer: Arc::clone(sealer),
            items,
        }
    }

    pub fn run(&self) -> Result<Vec<String>> {
        let requests: Vec<SealRequest<'_>> = self
            .items
            .iter()
            .map(|it| SealRequest {
                room: &it.room.name,
                epoch: it.room.epoch,
                context: &it.context,
                plaintext: &it.plaintext,
            })
            .collect();
        // Packed: one buffer for the batch's envelopes, which only live
        // until their text form is made.
        let sealed = self.sealer.seal_batch_packed(&requests).map_err(engine)?;
        Ok(sealed.iter().map(core::encode_text).collect())
    }
}

impl Task for SealBatchTask {
    type Output = Result<Vec<String>>;
    type JsValue = Vec<String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, env: Env, sealed: Self::Output) -> napi::Result<Vec<String>> {
        sealed.map_err(|e| rejection(&env, e))
    }
}

struct OwnedOpen {
    room: RoomArg,
    context: Vec<u8>,
    envelope: String,
}

/// Many opens in one call; each item has its own outcome.
pub struct OpenBatchTask {
    sealer: Arc<core::Sealer>,
    items: Vec<OwnedOpen>,
}

impl OpenBatchTask {
    pub fn new(sealer: &Arc<core::Sealer>, items: Vec<OpenItem>) -> Self {
        let items = items
            .into_iter()
            .map(|it| OwnedOpen {
                room: RoomArg {
                    name: it.room.unwrap_or_default(),
                    epoch: Epoch::or_zero(it.epoch),
                },
                context: owned(&it.context),
                envelope: it.envelope,
            })
            .collect();
        OpenBatchTask {
            sealer: Arc::clone(sealer),
            items,
        }
    }

    pub fn run(&self) -> Vec<Result<SecretText>> {
        let decoded: Vec<core::Result<Vec<u8>>> = self
            .items
            .iter()
            .map(|it| core::decode_text(&it.envelope))
            .collect();
        let mut outcomes: Vec<Option<Result<SecretText>>> = Vec::with_capacity(self.items.len());
        let mut requests = Vec::new();
        for (item, envelope) in self.items.iter().zip(&decoded) {
            match envelope {
                Ok(envelope) => {
                    requests.push(OpenRequest {
                        room: &item.room.name,
                        epoch: item.room.epoch,
                        context: &item.context,
                        envelope,
                    });
                    outcomes.push(None);
                }
                Err(err) => outcomes.push(Some(Err(engine_ref(err)))),
            }
        }
        let mut opened = self.sealer.open_batch(&requests).into_iter();
        outcomes
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| match opened.next() {
                    Some(result) => result.map_err(engine).and_then(text),
                    None => Err(Error::new(Code("INTERNAL"), "batch bookkeeping")),
                })
            })
            .collect()
    }
}

impl Task for OpenBatchTask {
    type Output = Vec<Result<SecretText>>;
    type JsValue = Vec<OpenOutcome>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, _env: Env, outcomes: Self::Output) -> napi::Result<Vec<OpenOutcome>> {
        Ok(outcomes.into_iter().map(OpenOutcome::from).collect())
    }
}

/// One rewrap, off the JS thread. The envelope is not secret; the plaintext
/// exists only inside the engine.
pub struct RewrapTask {
    sealer: Arc<core::Sealer>,
    room: RoomArg,
    context: Vec<u8>,
    envelope: Either<String, Vec<u8>>,
    output: Output,
}

impl RewrapTask {
    pub fn new(
        sealer: &Arc<core::Sealer>,
        envelope: Bytes,
        room: Option<RoomArg>,
        context: Option<Bytes>,
        output: Output,
    ) -> Self {
        let envelope = match envelope {
            Either::A(text) => Either::A(text),
            Either::B(binary) => Either::B(binary.to_vec()),
        };
        RewrapTask {
            sealer: Arc::clone(sealer),
            room: room.unwrap_or_default(),
            context: owned(&context),
            envelope,
            output,
        }
    }
}

impl Task for RewrapTask {
    type Output = Result<Option<Vec<u8>>>;
    type JsValue = Option<Either<String, Buffer>>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let rewrapped = match &self.envelope {
            Either::A(text) => core::decode_text(text)
                .and_then(|binary| self.sealer.rewrap(self.room.room(), &self.context, &binary)),
            Either::B(binary) => self.sealer.rewrap(self.room.room(), &self.context, binary),
        };
        Ok(rewrapped.map(Rewrapped::into_envelope).map_err(engine))
    }

    fn resolve(&mut self, env: Env, rewrapped: Self::Output) -> napi::Result<Self::JsValue> {
        let rewrapped = rewrapped.map_err(|e| rejection(&env, e))?;
        Ok(rewrapped.map(|sealed| match self.output {
            Output::Text => Either::A(core::encode_text(&sealed)),
            Output::Binary => Either::B(sealed.into()),
        }))
    }
}

/// Many rewraps in one call under one keyring snapshot; each item has its
/// own outcome.
pub struct RewrapBatchTask {
    sealer: Arc<core::Sealer>,
    items: Vec<OwnedOpen>,
}

impl RewrapBatchTask {
    pub fn new(sealer: &Arc<core::Sealer>, items: Vec<OpenItem>) -> Self {
        RewrapBatchTask {
            sealer: Arc::clone(sealer),
            items: OpenBatchTask::new(sealer, items).items,
        }
    }

    pub fn run(&self) -> Vec<RewrapOutcome> {
        let decoded: Vec<core::Result<Vec<u8>>> = self
            .items
            .iter()
            .map(|it| core::decode_text(&it.envelope))
            .collect();
        let requests: Vec<RewrapRequest<'_>> = self
            .items
            .iter()
            .zip(&decoded)
            .filter_map(|(item, envelope)| {
                envelope.as_ref().ok().map(|envelope| RewrapRequest {
                    room: &item.room.name,
                    epoch: item.room.epoch,
                    context: &item.context,
                    envelope,
                })
            })
            .collect();
        let mut rewrapped = self.sealer.rewrap_batch(&requests).into_iter();
        decoded
            .iter()
            .map(|envelope| match envelope {
                Err(err) => failure(err),
                Ok(_) => match rewrapped.next() {
                    Some(Ok(Rewrapped::Unchanged)) => RewrapOutcome {
                        ok: true,
                        unchanged: true,
                        envelope: None,
                        key_id: None,
                        error: None,
                    },
                    Some(Ok(Rewrapped::Resealed { key_id, envelope })) => RewrapOutcome {
                        ok: true,
                        unchanged: false,
                        envelope: Some(core::encode_text(&envelope)),
                        key_id: Some(key_id),
                        error: None,
                    },
                    Some(Err(err)) => failure(&err),
                    None => RewrapOutcome {
                        error: Some(OpenFailure {
                            code: "INTERNAL".to_owned(),
                            message: "batch bookkeeping".to_owned(),
                        }),
                        ..failure(&core::Error::BadTag)
                    },
                },
            })
            .collect()
    }
}

fn failure(err: &core::Error) -> RewrapOutcome {
    RewrapOutcome {
        ok: false,
        unchanged: false,
        envelope: None,
        key_id: None,
        error: Some(OpenFailure {
            code: err.kind().code().to_owned(),
            message: err.to_string(),
        }),
    }
}

impl Task for RewrapBatchTask {
    type Output = Vec<RewrapOutcome>;
    type JsValue = Vec<RewrapOutcome>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, _env: Env, outcomes: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(outcomes)
    }
}
