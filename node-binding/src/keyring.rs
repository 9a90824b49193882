//! `Keyring`: master keys with ids, the primary, and `minDecrypt`.

use chatseal_core as core;
use napi::bindgen_prelude::{AsyncTask, Buffer, Either, Either3, Env, Task, Uint8Array};
use napi_derive::napi;

use crate::error::{Result, engine};
use crate::room_arg::RoomArg;

/// A room key for a client: the master key id and the room's key epoch it
/// derives from, and the 32-byte key in base64 (what `join` acks carry as
/// `keys[]`).
#[napi(object)]
pub struct RoomKey {
    pub id: u32,
    pub epoch: u32,
    pub key: String,
}

impl From<core::RoomKey> for RoomKey {
    fn from(rk: core::RoomKey) -> Self {
        // The base64 string becomes a JS string; our copy is wiped on drop.
        RoomKey {
            id: rk.key_id,
            epoch: rk.epoch,
            key: String::from(rk.key.to_base64().as_str()),
        }
    }
}

/// Master keys: 32 random bytes each, with u32 ids; one is primary (used to
/// seal) and ids below `minDecrypt` are retired. Key bytes never appear in
/// `inspect` output or errors; only `toJson()` reveals them, on purpose.
#[napi]
pub struct Keyring {
    pub(crate) inner: core::Keyring,
}

#[napi]
impl Keyring {
    /// A new keyring with one random key (id 1), as a dev server makes on first start.
    #[napi(factory)]
    pub fn generate() -> Self {
        Keyring {
            inner: core::Keyring::generate(),
        }
    }

    /// Parses the keyring JSON format: `{"primary", "min_decrypt", "keys": [{id, key}]}`.
    #[napi(factory)]
    pub fn from_json(json: String) -> Result<Self> {
        let json = core::Zeroizing::new(json);
        Ok(Keyring {
            inner: core::Keyring::from_json(&json).map_err(engine)?,
        })
    }

    /// Loads a keyring file; refused (`INSECURE_KEY_FILE`) if group or others can read it.
    #[napi(factory)]
    pub fn from_file(path: String) -> Result<Self> {
        Ok(Keyring {
            inner: core::Keyring::load_file(path).map_err(engine)?,
        })
    }

    /// Reads a keyring from an environment variable (JSON, or base64 of the
    /// JSON); `null` when the variable is unset.
    #[napi]
    pub fn from_env(name: String) -> Result<Option<Keyring>> {
        let found = core::Keyring::from_env(&name).map_err(engine)?;
        Ok(found.map(|inner| Keyring { inner }))
    }

    /// Loads the file, or generates a keyring and saves it there (mode 0600).
    #[napi(factory)]
    pub fn load_or_generate(path: String) -> Result<Self> {
        let (inner, _created) = core::Keyring::load_or_generate(path).map_err(engine)?;
        Ok(Keyring { inner })
    }

    /// The keyring JSON, key bytes included: handle it as a secret.
    #[napi]
    pub fn to_json(&self) -> String {
        String::from(self.inner.to_json().as_str())
    }

    /// Writes the keyring atomically with mode 0600.
    #[napi]
    pub fn save_file(&self, path: String) -> Result<()> {
        self.inner.save_file(path).map_err(engine)
    }

    /// The id of the key that seals.
    #[napi(getter)]
    pub fn primary(&self) -> u32 {
        self.inner.primary()
    }

    /// Key ids below this are retired: envelopes under them no longer open.
    #[napi(getter)]
    pub fn min_decrypt(&self) -> u32 {
        self.inner.min_decrypt()
    }

    /// Every key id held, ascending.
    #[napi]
    pub fn key_ids(&self) -> Vec<u32> {
        self.inner.key_ids().collect()
    }

    /// Adds a fresh random key and makes it primary; returns its id.
    #[napi]
    pub fn rotate(&mut self) -> Result<u32> {
        self.inner.rotate().map_err(engine)
    }

    /// Retires every key id below `minDecrypt` (never the primary).
    #[napi]
    pub fn set_min_decrypt(&mut self, min_decrypt: u32) -> Result<()> {
        self.inner.set_min_decrypt(min_decrypt).map_err(engine)
    }

    /// The room key of `room` (a name: epoch 0; or `{ room, epoch }`) under
    /// master key `keyId` (the primary if omitted).
    #[napi]
    pub fn room_key(&self, room: RoomArg, key_id: Option<u32>) -> Result<RoomKey> {
        let id = key_id.unwrap_or(self.inner.primary());
        let key = self.inner.room_key(id, room.room()).map_err(engine)?;
        Ok(core::RoomKey {
            key_id: id,
            epoch: room.epoch,
            key,
        }
        .into())
    }
}

/// A key-encryption key argument: standard base64 of 32 bytes (as a KEK
/// file or `CHATSEAL_KEK` holds it) or the 32 bytes themselves.
#[napi]
pub type KekArg = Either<String, Uint8Array>;

/// The engine's KEK from a JS argument; `INVALID_KEYRING` unless it is 32
/// bytes (or base64 of 32 bytes).
pub fn kek_of(kek: &KekArg) -> Result<core::Kek> {
    match kek {
        Either::A(text) => core::Kek::from_base64(text).map_err(engine),
        Either::B(bytes) => kek_from_bytes(bytes),
    }
}

fn kek_from_bytes(bytes: &[u8]) -> Result<core::Kek> {
    core::Kek::from_slice(bytes).ok_or_else(|| {
        engine(core::Error::InvalidKeyring(format!(
            "a KEK is {} bytes, not 32",
            bytes.len()
        )))
    })
}

/// A passphrase argument (a string is taken as UTF-8), copied into memory
/// wiped on drop.
pub fn passphrase_of(passphrase: &Either<String, Uint8Array>) -> core::Zeroizing<Vec<u8>> {
    core::Zeroizing::new(match passphrase {
        Either::A(text) => text.as_bytes().to_vec(),
        Either::B(bytes) => bytes.to_vec(),
    })
}

/// The wrapped keyring file text (docs/format.md §8) of `keyring` under
/// `kek`, or under a KEK from `passphrase` (argon2id, fresh salt).
pub fn wrap_text(keyring: &core::Keyring, under: &Under) -> Result<String> {
    let wrapped = match under {
        Under::Kek(kek) => core::WrappedKeyring::seal(keyring, kek, None),
        Under::Passphrase(p) => {
            core::WrappedKeyring::seal_with_passphrase(keyring, p).map_err(engine)?
        }
    };
    Ok(wrapped.to_json())
}

/// Opens wrapped keyring file text.
pub fn unwrap_text(wrapped: &str, under: &Under) -> Result<core::Keyring> {
    let file = core::WrappedKeyring::from_json(wrapped).map_err(engine)?;
    match under {
        Under::Kek(kek) => file.open(kek),
        Under::Passphrase(p) => file.open_with_passphrase(p),
    }
    .map_err(engine)
}

/// What a keyring is wrapped under: a KEK, or a passphrase to derive it.
pub enum Under {
    Kek(core::Kek),
    Passphrase(core::Zeroizing<Vec<u8>>),
}

/// 32 fresh random bytes from the operating system: a new key-encryption
/// key (store it apart from the wrapped keyring, e.g. base64 in a 0600 file).
#[napi]
pub fn generate_kek() -> Buffer {
    let kek = core::Kek::generate();
    kek.expose().to_vec().into()
}

/// The id that names a KEK (16 hex digits, not secret): what a wrapped
/// keyring file's `kek_id` holds.
#[napi]
pub fn kek_id(kek: KekArg) -> Result<String> {
    Ok(core::kek::kek_id_hex(&kek_of(&kek)?.id()))
}

#[napi]
impl Keyring {
    /// This keyring wrapped under the key-encryption key `kek` (32 bytes,
    /// or their standard base64): the wrapped keyring file text
    /// (docs/format.md §8), which holds no key in the clear.
    #[napi]
    pub fn wrap(&self, kek: KekArg) -> Result<String> {
        wrap_text(&self.inner, &Under::Kek(kek_of(&kek)?))
    }

    /// `wrap` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn wrap_async(&self, kek: KekArg) -> Result<AsyncTask<WrapTask>> {
        Ok(AsyncTask::new(WrapTask {
            keyring: self.inner.clone(),
            under: Under::Kek(kek_of(&kek)?),
        }))
    }

    /// This keyring wrapped under a KEK derived from `passphrase`
    /// (argon2id, 64 MiB, 3 passes, fresh salt; parameters and salt are
    /// stored in the file). Slow on purpose: prefer `wrapPassphraseAsync`.
    #[napi]
    pub fn wrap_passphrase(&self, passphrase: Either<String, Uint8Array>) -> Result<String> {
        wrap_text(&self.inner, &Under::Passphrase(passphrase_of(&passphrase)))
    }

    /// `wrapPassphrase` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn wrap_passphrase_async(
        &self,
        passphrase: Either<String, Uint8Array>,
    ) -> AsyncTask<WrapTask> {
        AsyncTask::new(WrapTask {
            keyring: self.inner.clone(),
            under: Under::Passphrase(passphrase_of(&passphrase)),
        })
    }

    /// Opens wrapped keyring file text with its KEK. Throws `WRONG_KEK` if it
    /// is wrapped under another KEK, `BAD_TAG` if it was altered,
    /// `INVALID_KEYRING` if it is not a wrapped keyring.
    #[napi(factory)]
    pub fn unwrap(wrapped: String, kek: KekArg) -> Result<Keyring> {
        let inner = unwrap_text(&wrapped, &Under::Kek(kek_of(&kek)?))?;
        Ok(Keyring { inner })
    }

    /// `unwrap` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Keyring>")]
    pub fn unwrap_async(wrapped: String, kek: KekArg) -> Result<AsyncTask<UnwrapTask>> {
        Ok(AsyncTask::new(UnwrapTask {
            wrapped,
            under: Under::Kek(kek_of(&kek)?),
        }))
    }

    /// Opens wrapped keyring file text made with `wrapPassphrase`, deriving
    /// the KEK with the parameters stored in it. `WRONG_KEK` for a wrong
    /// passphrase. Slow on purpose: prefer `unwrapPassphraseAsync`.
    #[napi(factory)]
    pub fn unwrap_passphrase(
        wrapped: String,
        passphrase: Either<String, Uint8Array>,
    ) -> Result<Keyring> {
        let inner = unwrap_text(&wrapped, &Under::Passphrase(passphrase_of(&passphrase)))?;
        Ok(Keyring { inner })
    }

    /// `unwrapPassphrase` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<Keyring>")]
    pub fn unwrap_passphrase_async(
        wrapped: String,
        passphrase: Either<String, Uint8Array>,
    ) -> AsyncTask<UnwrapTask> {
        AsyncTask::new(UnwrapTask {
            wrapped,
            under: Under::Passphrase(passphrase_of(&passphrase)),
        })
    }

    /// Loads a wrapped keyring file (checked as a keyring file: 0600, owner,
    /// directory) and opens it with `kek`, or with the passphrase when
    /// `kek` is `{ passphrase }`.
    #[napi(
        factory,
        ts_args_type = "path: string, kek: string | Uint8Array | { passphrase: string | Uint8Array }"
    )]
    pub fn from_wrapped_file(path: String, kek: KekOrPassphrase) -> Result<Keyring> {
        let under = under_of(&kek)?;
        let inner = open_file(&path, &under)?;
        Ok(Keyring { inner })
    }

    /// Writes this keyring wrapped under `kek` (or `{ passphrase }`) to
    /// `path`, atomically with mode 0600.
    #[napi(
        ts_args_type = "path: string, kek: string | Uint8Array | { passphrase: string | Uint8Array }"
    )]
    pub fn save_wrapped_file(&self, path: String, kek: KekOrPassphrase) -> Result<()> {
        let under = under_of(&kek)?;
        let wrapped = match &under {
            Under::Kek(kek) => core::WrappedKeyring::seal(&self.inner, kek, None),
            Under::Passphrase(p) => {
                core::WrappedKeyring::seal_with_passphrase(&self.inner, p).map_err(engine)?
            }
        };
        wrapped.save_file(path).map_err(engine)
    }
}

/// `{ passphrase }`: what `fromWrappedFile` and `saveWrappedFile` take
/// instead of a KEK.
#[napi(object, object_to_js = false)]
pub struct PassphraseArg {
    pub passphrase: Either<String, Uint8Array>,
}

/// A KEK or `{ passphrase }`.
pub type KekOrPassphrase = Either3<String, Uint8Array, PassphraseArg>;

fn under_of(arg: &KekOrPassphrase) -> Result<Under> {
    Ok(match arg {
        Either3::A(text) => Under::Kek(core::Kek::from_base64(text).map_err(engine)?),
        Either3::B(bytes) => Under::Kek(kek_from_bytes(bytes)?),
        Either3::C(p) => Under::Passphrase(passphrase_of(&p.passphrase)),
    })
}

fn open_file(path: &str, under: &Under) -> Result<core::Keyring> {
    let file = core::WrappedKeyring::load_file(path).map_err(engine)?;
    match under {
        Under::Kek(kek) => file.open(kek),
        Under::Passphrase(p) => file.open_with_passphrase(p),
    }
    .map_err(engine)
}

/// A wrap on the pool (argon2id for a passphrase is the slow part).
pub struct WrapTask {
    keyring: core::Keyring,
    under: Under,
}

impl Task for WrapTask {
    type Output = Result<String>;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(wrap_text(&self.keyring, &self.under))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> napi::Result<String> {
        out.map_err(|e| crate::tasks::rejection(&env, e))
    }
}

/// An unwrap on the pool.
pub struct UnwrapTask {
    wrapped: String,
    under: Under,
}

impl Task for UnwrapTask {
    type Output = Result<core::Keyring>;
    type JsValue = Keyring;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(unwrap_text(&self.wrapped, &self.under))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> napi::Result<Keyring> {
        let inner = out.map_err(|e| crate::tasks::rejection(&env, e))?;
        Ok(Keyring { inner })
    }
}
