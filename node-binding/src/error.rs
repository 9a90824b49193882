//! Errors as JavaScript sees them: an `Error` whose `code` is the engine's
//! stable code (`"BAD_TAG"`, `"UNKNOWN_KEY"`, …), so JS callers branch on
//! `err.code` exactly as C callers branch on the result code.

use napi::bindgen_prelude::Error;

/// The `code` of a thrown error. napi-rs puts the status string there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// What every fallible binding returns.
pub type Result<T> = std::result::Result<T, Error<Code>>;

/// An engine error, with its code and its (plaintext-free) message.
pub fn engine(err: chatseal_core::Error) -> Error<Code> {
    Error::new(Code(err.kind().code()), err.to_string())
}

/// An error of the binding's own: the result is not text.
pub fn not_text() -> Error<Code> {
    Error::new(
        Code(chatseal_core::ErrorKind::BadEncoding.code()),
        "the opened plaintext is not UTF-8 text; use decryptBuffer",
    )
}
