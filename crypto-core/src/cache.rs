//! A bounded cache of ready room ciphers.
//!
//! Deriving a room key (two HMAC-SHA256 computations) and expanding it into
//! an AES-GCM key schedule costs more than sealing a short message, so the
//! sealer keeps the most recently used `(key id, room, epoch)` ciphers. The cache is
//! bounded (a chat server may see millions of rooms over its life) and
//! concurrent. Evicted entries wipe themselves when the last user drops them.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::Equivalent;
use quick_cache::sync::Cache;

use crate::aead::Aes256Gcm;
use crate::room::Room;
use crate::secret::SecretKey;

/// Default number of `(key id, room)` entries kept.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A room key and its expanded cipher.
#[derive(Debug)]
pub struct RoomCipher {
    pub(crate) key: SecretKey,
    pub(crate) aead: Aes256Gcm,
}

impl RoomCipher {
    pub(crate) fn new(key: SecretKey) -> Self {
        let aead = Aes256Gcm::new(&key);
        Self { key, aead }
    }
}

#[derive(PartialEq, Eq)]
struct Owned {
    key_id: u32,
    epoch: u32,
    room: Box<str>,
}

struct Borrowed<'a> {
    key_id: u32,
    epoch: u32,
    room: &'a str,
}

// Both forms must hash identically for borrowed look-ups to find owned keys.
impl Hash for Owned {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_id.hash(state);
        self.epoch.hash(state);
        self.room.as_ref().hash(state);
    }
}

impl Hash for Borrowed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_id.hash(state);
        self.epoch.hash(state);
        self.room.hash(state);
    }
}

impl Equivalent<Owned> for Borrowed<'_> {
    fn equivalent(&self, key: &Owned) -> bool {
        self.key_id == key.key_id && self.epoch == key.epoch && self.room == &*key.room
    }
}

/// Bounded, concurrent map from `(key id, room)` to its cipher.
pub(crate) struct RoomCache {
    entries: Cache<Owned, Arc<RoomCipher>>,
}

impl RoomCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Cache::new(capacity.max(1)),
        }
    }

    /// The cipher for `(key_id, room, epoch)`, made by `make` on a miss.
    /// Looks up without allocating; allocates the owned key only on insertion.
    pub(crate) fn get_or_make<E>(
        &self,
        key_id: u32,
        room: Room<'_>,
        make: impl FnOnce() -> Result<RoomCipher, E>,
    ) -> Result<Arc<RoomCipher>, E> {
        let borrowed = Borrowed {
            key_id,
            epoch: room.epoch,
            room: room.name,
        };
        if let Some(hit) = self.entries.get(&borrowed) {
            return Ok(hit);
        }
        let made = Arc::new(make()?);
        self.entries.insert(
            Owned {
                key_id,
                epoch: room.epoch,
                room: room.name.into(),
            },
            Arc::clone(&made),
        );
        Ok(made)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
