//! The one error type of the engine.
//!
//! Every way an operation can fail has its own [`ErrorKind`] with a stable
//! code (`"BAD_TAG"`, `"UNKNOWN_KEY"`, …) that the Node addon exposes as
//! `err.code` and the C ABI maps to a result code, so a log line in any
//! language names the same thing. No variant carries plaintext or key bytes:
//! only ids, lengths and fixed descriptions.

use std::path::PathBuf;

/// What went wrong, in a form that is stable across releases and languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The envelope is too short or its structure is wrong.
    Malformed,
    /// The text form is not valid standard base64.
    BadEncoding,
    /// The envelope's version byte is not one this engine knows.
    UnsupportedVersion,
    /// The envelope's algorithm byte is not one this engine knows.
    UnsupportedAlgorithm,
    /// The envelope names a key id the keyring does not hold.
    UnknownKey,
    /// The envelope names a key id below the keyring's `min_decrypt`.
    RetiredKey,
    /// Authentication failed: wrong key, room or context, or tampering.
    BadTag,
    /// A room name breaks the naming rules (DESIGN §2).
    InvalidRoom,
    /// The keyring's contents are inconsistent or unparsable.
    InvalidKeyring,
    /// The keyring file's permissions let other users read it, or its
    /// owner or directory let another user replace it.
    InsecureKeyFile,
    /// Reading or writing a keyring file failed.
    Io,
    /// An input is larger than AES-GCM or the engine allows.
    TooLarge,
    /// A caller-provided output buffer is too small.
    BufferTooSmall,
    /// A wrapped keyring was sealed under another key-encryption key (or,
    /// for a passphrase, another passphrase).
    WrongKek,
}

impl ErrorKind {
    /// The stable code, as the Node addon's `err.code` and in docs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "MALFORMED",
            Self::BadEncoding => "BAD_ENCODING",
            Self::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Self::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            Self::UnknownKey => "UNKNOWN_KEY",
            Self::RetiredKey => "RETIRED_KEY",
            Self::BadTag => "BAD_TAG",
            Self::InvalidRoom => "INVALID_ROOM",
            Self::InvalidKeyring => "INVALID_KEYRING",
            Self::InsecureKeyFile => "INSECURE_KEY_FILE",
            Self::Io => "IO",
            Self::TooLarge => "TOO_LARGE",
            Self::BufferTooSmall => "BUFFER_TOO_SMALL",
            Self::WrongKek => "WRONG_KEK",
        }
    }

    /// Every kind, in code order (for bindings that publish the list).
    pub const ALL: [ErrorKind; 14] = [
        Self::Malformed,
        Self::BadEncoding,
        Self::UnsupportedVersion,
        Self::UnsupportedAlgorithm,
        Self::UnknownKey,
        Self::RetiredKey,
        Self::BadTag,
        Self::InvalidRoom,
        Self::InvalidKeyring,
        Self::InsecureKeyFile,
        Self::Io,
        Self::TooLarge,
        Self::BufferTooSmall,
        Self::WrongKek,
    ];
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An engine error. `Display` gives a sentence for logs; [`Error::kind`]
/// gives the stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    #[error("envelope text is not valid standard base64")]
    BadEncoding,
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported envelope algorithm {0}")]
    UnsupportedAlgorithm(u8),
    #[error("no key with id {0} in the keyring")]
    UnknownKey(u32),
    #[error("key id {key_id} is retired (min_decrypt is {min_decrypt})")]
    RetiredKey { key_id: u32, min_decrypt: u32 },
    #[error("authentication failed: wrong key, room or context, or the envelope was altered")]
    BadTag,
    #[error("invalid room name: {0}")]
    InvalidRoom(&'static str),
    #[error("invalid keyring: {0}")]
    InvalidKeyring(String),
    #[error(
        "keyring file {path} has mode {mode:03o}; it must not be accessible by group or others (chmod 600)"
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// The file's owner, or its directory, lets another user replace it.
    #[error("keyring file {path}: {why}")]
    InsecureKeyPlace { path: PathBuf, why: String },
    #[error("keyring file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("input too large: {0}")]
    TooLarge(&'static str),
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    /// The ids are fingerprints of the keys (docs/format.md §8), not the keys.
    #[error(
        "wrong key-encryption key: the keyring is wrapped under KEK {expected}, this one is {got}"
    )]
    WrongKek { expected: String, got: String },
}

impl Error {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed(_) => ErrorKind::Malformed,
            Self::BadEncoding => ErrorKind::BadEncoding,
            Self::UnsupportedVersion(_) => ErrorKind::UnsupportedVersion,
            Self::UnsupportedAlgorithm(_) => ErrorKind::UnsupportedAlgorithm,
            Self::UnknownKey(_) => ErrorKind::UnknownKey,
            Self::RetiredKey { .. } => ErrorKind::RetiredKey,
            Self::BadTag => ErrorKind::BadTag,
            Self::InvalidRoom(_) => ErrorKind::InvalidRoom,
            Self::InvalidKeyring(_) => ErrorKind::InvalidKeyring,
            Self::InsecureKeyFile { .. } | Self::InsecureKeyPlace { .. } => {
                ErrorKind::InsecureKeyFile
            }
            Self::Io { .. } => ErrorKind::Io,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Self::WrongKek { .. } => ErrorKind::WrongKek,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_upper_snake_case() {
        let codes: HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for code in codes {
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}"
            );
        }
    }
}
