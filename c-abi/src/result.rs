//! Result codes: `CHATSEAL_OK` is 0; values are append-only, never reused.

use chatseal_core::ErrorKind;

/// What a chatseal function returned. Values never change meaning; new
/// ones are only added at the end.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum chatseal_result {
    /// Success.
    CHATSEAL_OK = 0,
    /// A required pointer was NULL (or a length was non-zero with a NULL pointer).
    CHATSEAL_NULL_ARGUMENT = 1,
    /// A string argument is not valid UTF-8.
    CHATSEAL_INVALID_UTF8 = 2,
    /// The output buffer is too small; *out_len holds the size needed.
    CHATSEAL_BUFFER_TOO_SMALL = 3,
    /// The envelope is too short or malformed.
    CHATSEAL_MALFORMED = 4,
    /// The envelope text is not canonical standard base64.
    CHATSEAL_BAD_ENCODING = 5,
    /// Unknown envelope version.
    CHATSEAL_UNSUPPORTED_VERSION = 6,
    /// Unknown envelope algorithm.
    CHATSEAL_UNSUPPORTED_ALGORITHM = 7,
    /// The envelope's key id is not in the keyring.
    CHATSEAL_UNKNOWN_KEY = 8,
    /// The envelope's key id is below the keyring's min_decrypt.
    CHATSEAL_RETIRED_KEY = 9,
    /// Authentication failed: wrong key, room or context, or tampering.
    CHATSEAL_BAD_TAG = 10,
    /// The room name breaks the rules (at most 64 characters, no control characters).
    CHATSEAL_INVALID_ROOM = 11,
    /// The keyring is inconsistent or not valid keyring JSON.
    CHATSEAL_INVALID_KEYRING = 12,
    /// The keyring file is accessible by group or others.
    CHATSEAL_INSECURE_KEY_FILE = 13,
    /// Reading or writing a file failed.
    CHATSEAL_IO = 14,
    /// An input is too large.
    CHATSEAL_TOO_LARGE = 15,
    /// An argument is out of range.
    CHATSEAL_INVALID_ARGUMENT = 16,
    /// chatseal panicked (a bug); the call had no effect.
    CHATSEAL_PANIC = 17,
    /// A wrapped keyring is sealed under another key-encryption key (or passphrase).
    CHATSEAL_WRONG_KEK = 18,
}

use chatseal_result::*;

impl chatseal_result {
    /// Every code, in value order.
    pub const ALL: [chatseal_result; 19] = [
        CHATSEAL_OK,
        CHATSEAL_NULL_ARGUMENT,
        CHATSEAL_INVALID_UTF8,
        CHATSEAL_BUFFER_TOO_SMALL,
        CHATSEAL_MALFORMED,
        CHATSEAL_BAD_ENCODING,
        CHATSEAL_UNSUPPORTED_VERSION,
        CHATSEAL_UNSUPPORTED_ALGORITHM,
        CHATSEAL_UNKNOWN_KEY,
        CHATSEAL_RETIRED_KEY,
        CHATSEAL_BAD_TAG,
        CHATSEAL_INVALID_ROOM,
        CHATSEAL_INVALID_KEYRING,
        CHATSEAL_INSECURE_KEY_FILE,
        CHATSEAL_IO,
        CHATSEAL_TOO_LARGE,
        CHATSEAL_INVALID_ARGUMENT,
        CHATSEAL_PANIC,
        CHATSEAL_WRONG_KEK,
    ];

    /// The stable name, shared with the engine's error codes where one exists.
    pub const fn name(self) -> &'static std::ffi::CStr {
        match self {
            CHATSEAL_OK => c"OK",
            CHATSEAL_NULL_ARGUMENT => c"NULL_ARGUMENT",
            CHATSEAL_INVALID_UTF8 => c"INVALID_UTF8",
            CHATSEAL_BUFFER_TOO_SMALL => c"BUFFER_TOO_SMALL",
            CHATSEAL_MALFORMED => c"MALFORMED",
            CHATSEAL_BAD_ENCODING => c"BAD_ENCODING",
            CHATSEAL_UNSUPPORTED_VERSION => c"UNSUPPORTED_VERSION",
            CHATSEAL_UNSUPPORTED_ALGORITHM => c"UNSUPPORTED_ALGORITHM",
            CHATSEAL_UNKNOWN_KEY => c"UNKNOWN_KEY",
            CHATSEAL_RETIRED_KEY => c"RETIRED_KEY",
            CHATSEAL_BAD_TAG => c"BAD_TAG",
            CHATSEAL_INVALID_ROOM => c"INVALID_ROOM",
            CHATSEAL_INVALID_KEYRING => c"INVALID_KEYRING",
            CHATSEAL_INSECURE_KEY_FILE => c"INSECURE_KEY_FILE",
            CHATSEAL_IO => c"IO",
            CHATSEAL_TOO_LARGE => c"TOO_LARGE",
            CHATSEAL_INVALID_ARGUMENT => c"INVALID_ARGUMENT",
            CHATSEAL_PANIC => c"PANIC",
            CHATSEAL_WRONG_KEK => c"WRONG_KEK",
        }
    }

    /// A sentence for humans.
    pub const fn message(self) -> &'static std::ffi::CStr {
        match self {
            CHATSEAL_OK => c"success",
            CHATSEAL_NULL_ARGUMENT => c"a required pointer argument was NULL",
            CHATSEAL_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            CHATSEAL_BUFFER_TOO_SMALL => {
                c"the output buffer is too small; *out_len holds the size needed"
            }
            CHATSEAL_MALFORMED => c"the envelope is too short or malformed",
            CHATSEAL_BAD_ENCODING => c"the envelope text is not canonical standard base64",
            CHATSEAL_UNSUPPORTED_VERSION => c"unsupported envelope version",
            CHATSEAL_UNSUPPORTED_ALGORITHM => c"unsupported envelope algorithm",
            CHATSEAL_UNKNOWN_KEY => c"the envelope's key id is not in the keyring",
            CHATSEAL_RETIRED_KEY => c"the envelope's key id is retired (below min_decrypt)",
            CHATSEAL_BAD_TAG => {
                c"authentication failed: wrong key, room or context, or the envelope was altered"
            }
            CHATSEAL_INVALID_ROOM => {
                c"invalid room name (at most 64 characters, no control characters)"
            }
            CHATSEAL_INVALID_KEYRING => c"invalid keyring",
            CHATSEAL_INSECURE_KEY_FILE => {
                c"the keyring file is accessible by group or others (chmod 600)"
            }
            CHATSEAL_IO => c"reading or writing a file failed",
            CHATSEAL_TOO_LARGE => c"an input is too large",
            CHATSEAL_INVALID_ARGUMENT => c"an argument is out of range",
            CHATSEAL_PANIC => c"internal error (panic); the call had no effect",
            CHATSEAL_WRONG_KEK => {
                c"the keyring is wrapped under another key-encryption key or passphrase"
            }
        }
    }
}

impl From<&chatseal_core::Error> for chatseal_result {
    fn from(e: &chatseal_core::Error) -> Self {
        Self::from_kind(e.kind())
    }
}

impl chatseal_result {
    /// The code of an engine error kind.
    pub const fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Malformed => CHATSEAL_MALFORMED,
            ErrorKind::BadEncoding => CHATSEAL_BAD_ENCODING,
            ErrorKind::UnsupportedVersion => CHATSEAL_UNSUPPORTED_VERSION,
            ErrorKind::UnsupportedAlgorithm => CHATSEAL_UNSUPPORTED_ALGORITHM,
            ErrorKind::UnknownKey => CHATSEAL_UNKNOWN_KEY,
            ErrorKind::RetiredKey => CHATSEAL_RETIRED_KEY,
            ErrorKind::BadTag => CHATSEAL_BAD_TAG,
            ErrorKind::InvalidRoom => CHATSEAL_INVALID_ROOM,
            ErrorKind::InvalidKeyring => CHATSEAL_INVALID_KEYRING,
            ErrorKind::InsecureKeyFile => CHATSEAL_INSECURE_KEY_FILE,
            ErrorKind::Io => CHATSEAL_IO,
            ErrorKind::TooLarge => CHATSEAL_TOO_LARGE,
            ErrorKind::BufferTooSmall => CHATSEAL_BUFFER_TOO_SMALL,
            ErrorKind::WrongKek => CHATSEAL_WRONG_KEK,
            _ => CHATSEAL_INVALID_ARGUMENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_dense_and_names_match_engine_codes() {
        for (i, r) in chatseal_result::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        // Every engine error kind has a C code of the same name, so a C log
        // line and a Node `err.code` say the same thing.
        for kind in ErrorKind::ALL {
            assert_eq!(
                chatseal_result::from_kind(kind).name().to_str().unwrap(),
                kind.code()
            );
        }
    }
}
