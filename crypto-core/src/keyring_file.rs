//! Keyring persistence: the JSON form, files and environment variables.
//!
//! ```json
//! {"primary": 2, "min_decrypt": 1, "keys": [{"id": 1, "key": "<base64 32 bytes>"}, …]}
//! ```
//!
//! A keyring file must be mode 0600 or stricter: one that group or others can
//! read or write is refused, since a readable master key opens every room and
//! a writable keyring lets another user plant a key. For the same reason the
//! file must belong to the server's user or root, and sit in a directory that
//! belongs to one of them and that no other user may write to (or that has
//! the sticky bit, like /tmp). Files are written
//! atomically (temporary file, fsync, rename), so a crash never leaves half
//! a keyring. Buffers that hold key text are zeroized.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::secret::SecretKey;

/// Largest keyring file or variable accepted (about 10,000 keys).
pub const MAX_KEYRING_JSON: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringJson {
    primary: u32,
    min_decrypt: Option<u32>,
    keys: Vec<KeyJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyJson {
    id: u32,
    key: Base64Key,
}

/// A key as it appears in JSON, decoded straight from the borrowed input
/// without an intermediate `String`.
struct Base64Key(SecretKey);

impl<'de> Deserialize<'de> for Base64Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Base64Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("standard base64 of 32 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Base64Key, E> {
                let bytes = Zeroizing::new(
                    STANDARD
                        .decode(s)
                        .map_err(|_| E::custom("a key is not valid standard base64"))?,
                );
                SecretKey::from_slice(&bytes)
                    .map(Base64Key)
                    .ok_or_else(|| E::custom(format!("a key is {} bytes, not 32", bytes.len())))
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl Keyring {
    /// Parses the JSON form. Unknown fields are refused (a typo such as
    /// `"min_decypt"` must not silently un-retire keys). `min_decrypt`
    /// defaults to the lowest key id.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_KEYRING_JSON {
            return Err(Error::InvalidKeyring("larger than 1 MiB".into()));
        }
        let parsed: KeyringJson = serde_json::from_str(json).map_err(|e| {
            if crate::wrapped::looks_wrapped(json) {
                return Error::InvalidKeyring(
                    "this is a wrapped keyring (docs/format.md §8): open it with its KEK or passphrase"
                        .into(),
                );
            }
            Error::InvalidKeyring(redact_serde(&e))
        })?;
        let lowest = parsed.keys.iter().map(|k| k.id).min().unwrap_or(0);
        let keys = parsed.keys.into_iter().map(|k| (k.id, k.key.0));
        Keyring::from_parts(keys, parsed.primary, parsed.min_decrypt.unwrap_or(lowest))
    }

    /// The JSON form, in a buffer wiped on drop. Written by hand into a
    /// buffer sized up front so no reallocation leaves copies of keys behind.
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(64 + self.keys().len() * 80));
        let _ = write!(
            out,
            "{{\n  \"primary\": {},\n  \"min_decrypt\": {},\n  \"keys\": [",
            self.primary(),
            self.min_decrypt()
        );
        for (i, (id, key)) in self.keys().iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}\n    {{\"id\": {id}, \"key\": \"");
            out.push_str(&key.to_base64());
            out.push_str("\"}");
        }
        out.push_str("\n  ]\n}\n");
        out
    }

    /// Loads a keyring file, refusing one that group or others can access.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_json(&read_private(path.as_ref(), MAX_KEYRING_JSON)?)
    }

    /// Reads a keyring from the environment variable `var`: the JSON form, or
    /// standard base64 of it. `Ok(None)` if the variable is not set.
    pub fn from_env(var: &str) -> Result<Option<Self>> {
        let Some(value) = std::env::var_os(var) else {
            return Ok(None);
        };
        let value = Zeroizing::new(
            value
                .into_string()
                .map_err(|_| Error::InvalidKeyring(format!("${var} is not UTF-8")))?,
        );
        let trimmed = value.trim();
        if trimmed.starts_with('{') {
            return Self::from_json(trimmed).map(Some);
        }
        let decoded = Zeroizing::new(STANDARD.decode(trimmed).map_err(|_| {
            Error::InvalidKeyring(format!("${var} is neither keyring JSON nor base64 of it"))
        })?);
        let json = std::str::from_utf8(&decoded)
            .map_err(|_| Error::InvalidKeyring(format!("${var} decodes to non-UTF-8")))?;
        Self::from_json(json).map(Some)
    }

    /// Writes the keyring to `path` atomically with mode 0600, replacing any
    /// existing file.
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<()> {
        save_private(path.as_ref(), self.to_json().as_bytes())
    }

    /// Loads the keyring at `path`, or, if there is no file there, generates
    /// one, creates its directory (mode 0700) and saves it. Returns whether it
    /// was created, so the caller can say so.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<(Self, bool)> {
        let path = path.as_ref();
        match Self::load_file(path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other.map(|k| (k, false)),
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let keyring = Self::generate();
        // create_new: if another process created it meanwhile, load theirs.
        match write_private(path, keyring.to_json().as_bytes()) {
            Ok(()) => Ok((keyring, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_file(path).map(|k| (k, false))
            }
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Reads a key file (a keyring, wrapped or not) of at most `max` bytes,
/// refusing one that group or others can access or another user could
/// replace. The text is in a buffer wiped on drop.
pub(crate) fn read_private(path: &Path, max: usize) -> Result<Zeroizing<String>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_private(path, &meta)?;
    if meta.len() > max as u64 {
        return Err(Error::InvalidKeyring(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    let mut text = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
    file.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

/// Writes a key file atomically with mode 0600 (temporary file, fsync,
/// rename, fsync of the directory), replacing any existing file.
pub(crate) fn save_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("keyring"),
        std::process::id()
    ));
    let outcome = write_private(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| sync_dir(dir));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    outcome.map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// serde_json's messages can quote input; keep only line and column, and the
/// name of an unknown or missing field when it cannot be key material.
pub(crate) fn redact_serde(e: &serde_json::Error) -> String {
    let detail = e.to_string();
    let what = match e.classify() {
        serde_json::error::Category::Io => "could not be read".to_string(),
        serde_json::error::Category::Syntax => "is not valid JSON".to_string(),
        serde_json::error::Category::Data => match field_named(&detail) {
            Some(("unknown", name)) => format!(
                "has an unknown field `{name}` (a keyring has primary, min_decrypt and keys; a key has id and key)"
            ),
            Some((_, name)) => format!("lacks the field `{name}`"),
            None => "has a mistyped field".to_string(),
        },
        serde_json::error::Category::Eof => "ends early".to_string(),
    };
    // Data errors from our own visitor carry no key material; say which.
    let hint = if detail.contains("not 32") || detail.contains("not valid standard base64") {
        " (a key must be standard base64 of 32 bytes)"
    } else {
        ""
    };
    format!(
        "keyring JSON {what} at line {} column {}{hint}",
        e.line(),
        e.column()
    )
}

/// `("unknown" | "missing", name)` from serde's "unknown field `x`, …" or
/// "missing field `x`". Only short identifier-like names are repeated: a
/// 32-byte key in base64 is 44 characters, so a longer or odd one (a key
/// pasted where a field name goes) is never echoed.
fn field_named(detail: &str) -> Option<(&'static str, &str)> {
    let (kind, rest) = if let Some(rest) = detail.strip_prefix("unknown field `") {
        ("unknown", rest)
    } else {
        ("missing", detail.strip_prefix("missing field `")?)
    };
    let name = &rest[..rest.find('`')?];
    let plain = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plain.then_some((kind, name))
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecureKeyFile {
            path: PathBuf::from(path),
            mode,
        });
    }
    // The directory of the file itself, symbolic links followed: whoever
    // may write there may swap the keyring.
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let real = std::fs::canonicalize(path).map_err(io)?;
    let dir = real.parent().unwrap_or(Path::new("/"));
    let dir_meta = std::fs::metadata(dir).map_err(io)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let place = Place {
        owner: meta.uid(),
        dir_owner: dir_meta.uid(),
        dir_mode: dir_meta.mode() & 0o7777,
    };
    place.check(me).map_err(|why| Error::InsecureKeyPlace {
        path: PathBuf::from(path),
        why: why.replace("{dir}", &dir.display().to_string()),
    })
}

/// Who could replace a keyring file: its owner, its directory's owner, and
/// anyone the directory's mode lets write there.
#[cfg(unix)]
struct Place {
    owner: u32,
    dir_owner: u32,
    dir_mode: u32,
}

#[cfg(unix)]
impl Place {
    /// Refuses a file that a user other than `me` (the server's effective
    /// user) or root owns, or that sits in a directory another user owns or
    /// may write to (group or others, unless the sticky bit keeps them from
    /// renaming or deleting files they do not own).
    fn check(&self, me: u32) -> std::result::Result<(), String> {
        let trusted = |uid: u32| uid == me || uid == 0;
        if !trusted(self.owner) {
            return Err(format!(
                "owned by uid {}, not by this server's user (uid {me}) or root; chown it",
                self.owner
            ));
        }
        if !trusted(self.dir_owner) {
            return Err(format!(
                "its directory {{dir}} is owned by uid {}, not by this server's user (uid {me}) or root",
                self.dir_owner
            ));
        }
        let sticky = self.dir_mode & 0o1000 != 0;
        if self.dir_mode & 0o022 != 0 && !sticky {
            return Err(format!(
                "its directory {{dir}} has mode {:03o}: other users could replace the keyring (chmod go-w it)",
                self.dir_mode & 0o777
            ));
        }
        Ok(())
    }
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatseal-core-{name}-{}-{:x}",
            std::process::id(),
            crate::nonce::fresh()[0..4]
                .iter()
                .fold(0u32, |a, b| a << 8 | u32::from(*b))
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn json_round_trip() {
        let mut kr = Keyring::generate();
        kr.rotate().unwrap();
        let back = Keyring::from_json(&kr.to_json()).unwrap();
        assert_eq!(back.primary(), 2);
        assert_eq!(back.min_decrypt(), 1);
        for id in [1, 2] {
            assert_eq!(back.key(id).unwrap().expose(), kr.key(id).unwrap().expose());
        }
    }

    #[test]
    fn json_is_validated() {
        let k = STANDARD.encode([7u8; 32]);
        let short = STANDARD.encode([7u8; 31]);
        let ok = format!(r#"{{"primary": 3, "keys": [{{"id": 3, "key": "{k}"}}]}}"#);
        assert_eq!(Keyring::from_json(&ok).unwrap().min_decrypt(), 3);
        for bad in [
            "not json".to_string(),
            format!(r#"{{"primary": 1, "keys": [{{"id": 1, "key": "{short}"}}]}}"#),
            r#"{"primary": 1, "keys": [{"id": 1, "key": "@@"}]}"#.to_string(),
            format!(r#"{{"primary": 2, "keys": [{{"id": 1, "key": "{k}"}}]}}"#),
            format!(r#"{{"primary": 1, "min_decypt": 1, "keys": [{{"id": 1, "key": "{k}"}}]}}"#),
            r#"{"primary": 1, "keys": []}"#.to_string(),
        ] {
            let err = Keyring::from_json(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKeyring, "{bad}");
            assert!(!err.to_string().contains(&k), "error quoted key material");
        }
    }

    /// A typo'd field is named, so the operator knows what to fix; a key
    /// pasted where a field name goes is not repeated.
    #[test]
    fn unknown_and_missing_fields_are_named() {
        let k = STANDARD.encode([7u8; 32]);
        let typo =
            format!(r#"{{"primary": 1, "min_decypt": 1, "keys": [{{"id": 1, "key": "{k}"}}]}}"#);
        let err = Keyring::from_json(&typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `min_decypt`"), "{err}");
        let inner = format!(r#"{{"primary": 1, "keys": [{{"id": 1, "kye": "{k}"}}]}}"#);
        let err = Keyring::from_json(&inner).unwrap_err().to_string();
        assert!(err.contains("unknown field `kye`"), "{err}");
        let missing = r#"{"primary": 1}"#;
        let err = Keyring::from_json(missing).unwrap_err().to_string();
        assert!(err.contains("lacks the field `keys`"), "{err}");
        let lower = "abcdefghijklmnopqrstuvwxyz0123456789abcdefgh";
        let pasted = format!(r#"{{"primary": 1, "{lower}": 1, "{k}": 2, "keys": []}}"#);
        let err = Keyring::from_json(&pasted).unwrap_err().to_string();
        assert!(
            !err.contains(lower) && err.contains("mistyped field"),
            "{err}"
        );
    }

    #[test]
    fn files_are_private_and_insecure_ones_refused() {
        let dir = temp_dir("file");
        let path = dir.join("nested/keyring.json");
        let (made, created) = Keyring::load_or_generate(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = Keyring::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(again.primary_key().expose(), made.primary_key().expose());

        for loose in [0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
            let err = Keyring::load_file(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InsecureKeyFile);
            assert!(err.to_string().contains("chmod 600"));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Keyring::load_file(&path).is_ok());

        let mut rotated = again.clone();
        rotated.rotate().unwrap();
        rotated.save_file(&path).unwrap();
        assert_eq!(Keyring::load_file(&path).unwrap().primary(), 2);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            Keyring::load_file(dir.join("missing.json"))
                .unwrap_err()
                .kind(),
            ErrorKind::Io
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        let dir = temp_dir("dir");
        let path = dir.join("keyring.json");
        Keyring::load_or_generate(&path).unwrap();
        for (loose, refused) in [
            (0o777, true),
            (0o770, true),
            (0o757, true),
            (0o1777, false),
            (0o755, false),
            (0o700, false),
        ] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(loose)).unwrap();
            let got = Keyring::load_file(&path);
            if refused {
                let err = got.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InsecureKeyFile, "{loose:o}");
                assert!(err.to_string().contains("chmod go-w"), "{err}");
                assert!(err.to_string().contains(dir.to_str().unwrap()), "{err}");
            } else {
                assert!(got.is_ok(), "{loose:o}: {:?}", got.err());
            }
        }
        // Through a symbolic link, the directory of the real file counts.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let other = temp_dir("link");
        std::os::unix::fs::symlink(&path, other.join("keyring.json")).unwrap();
        assert_eq!(
            Keyring::load_file(other.join("keyring.json"))
                .unwrap_err()
                .kind(),
            ErrorKind::InsecureKeyFile
        );
        std::fs::remove_dir_all(other).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_the_servers_user_or_root_may_own_the_file_and_its_directory() {
        let me = 1000;
        let place = |owner, dir_owner, dir_mode| Place {
            owner,
            dir_owner,
            dir_mode,
        };
        assert!(place(me, me, 0o700).check(me).is_ok());
        assert!(place(0, 0, 0o755).check(me).is_ok());
        assert!(place(me, 0, 0o1777).check(me).is_ok());
        let err = place(1001, me, 0o700).check(me).unwrap_err();
        assert!(err.contains("owned by uid 1001"), "{err}");
        let err = place(me, 1001, 0o700).check(me).unwrap_err();
        assert!(
            err.contains("directory {dir} is owned by uid 1001"),
            "{err}"
        );
        assert!(place(me, me, 0o775).check(me).is_err());
        // Root's own files are root's; another user's are not.
        assert!(place(0, 0, 0o700).check(0).is_ok());
        assert!(place(1000, 0, 0o700).check(0).is_err());
    }

    #[test]
    fn from_env_takes_json_or_base64_json() {
        let kr = Keyring::generate();
        let json = kr.to_json();
        // Each test uses its own variable: tests run in parallel threads.
        // SAFETY: no other thread reads or writes these variable names.
        unsafe {
            std::env::set_var("CHATSEAL_TEST_KR_JSON", json.as_str());
            std::env::set_var("CHATSEAL_TEST_KR_B64", STANDARD.encode(json.as_bytes()));
            std::env::set_var("CHATSEAL_TEST_KR_BAD", "%%%");
        }
        for var in ["CHATSEAL_TEST_KR_JSON", "CHATSEAL_TEST_KR_B64"] {
            let got = Keyring::from_env(var).unwrap().unwrap();
            assert_eq!(got.primary_key().expose(), kr.primary_key().expose());
        }
        assert!(
            Keyring::from_env("CHATSEAL_TEST_KR_UNSET")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            Keyring::from_env("CHATSEAL_TEST_KR_BAD")
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidKeyring
        );
    }
}
