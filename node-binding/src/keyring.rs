//! `Keyring`: master keys with ids, the primary, and `minDecrypt`.

use chatseal_core as core;
use napi_derive::napi;

use crate::error::{Result, engine};

/// A room key for a client: the master key id it derives from, and the
/// 32-byte key in base64 (what `join` acks carry as `keys[]`).
#[napi(object)]
pub struct RoomKey {
    pub id: u32,
    pub key: String,
}

impl From<core::RoomKey> for RoomKey {
    fn from(rk: core::RoomKey) -> Self {
        // The base64 string becomes a JS string; our copy is wiped on drop.
        RoomKey {
            id: rk.key_id,
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

    /// The room key of `room` under master key `keyId` (the primary if omitted).
    #[napi]
    pub fn room_key(&self, room: String, key_id: Option<u32>) -> Result<RoomKey> {
        let id = key_id.unwrap_or(self.inner.primary());
        let key = self.inner.room_key(id, &room).map_err(engine)?;
        Ok(core::RoomKey { key_id: id, key }.into())
    }
}
