//! The keyring: master keys by id, which one seals, which ones may open.
//!
//! * `primary` is the key new envelopes are sealed with.
//! * `min_decrypt` retires keys: envelopes whose key id is below it are
//!   refused even if the key is still present, so an operator can retire a
//!   compromised key without deleting history that may be re-sealed later.
//! * Rotation adds a fresh key and makes it primary; envelopes sealed with
//!   older keys still open by the key id in their header.
//!
//! Invariants, checked on every change: at least one key; `primary` is
//! present and `primary >= min_decrypt`.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::room::derive_room_key;
use crate::secret::SecretKey;

/// Master keys with ids, a primary and a retirement threshold.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<u32, SecretKey>,
    primary: u32,
    min_decrypt: u32,
}

impl Keyring {
    /// A keyring holding one fresh random key with id 1.
    pub fn generate() -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(1, SecretKey::generate());
        Self {
            keys,
            primary: 1,
            min_decrypt: 1,
        }
    }

    /// Builds a keyring from its parts, checking the invariants. Duplicate
    /// ids are an error, not a silent overwrite.
    pub fn from_parts(
        keys: impl IntoIterator<Item = (u32, SecretKey)>,
        primary: u32,
        min_decrypt: u32,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (id, key) in keys {
            if map.insert(id, key).is_some() {
                return Err(Error::InvalidKeyring(format!("key id {id} appears twice")));
            }
        }
        let keyring = Self {
            keys: map,
            primary,
            min_decrypt,
        };
        keyring.check()?;
        Ok(keyring)
    }

    fn check(&self) -> Result<()> {
        if self.keys.is_empty() {
            return Err(Error::InvalidKeyring("it holds no keys".into()));
        }
        if !self.keys.contains_key(&self.primary) {
            return Err(Error::InvalidKeyring(format!(
                "primary key id {} is not in the keyring",
                self.primary
            )));
        }
        if self.primary < self.min_decrypt {
            return Err(Error::InvalidKeyring(format!(
                "primary key id {} is below min_decrypt {}",
                self.primary, self.min_decrypt
            )));
        }
        Ok(())
    }

    /// Id of the key that seals.
    pub fn primary(&self) -> u32 {
        self.primary
    }

    /// Lowest key id that may still open envelopes.
    pub fn min_decrypt(&self) -> u32 {
        self.min_decrypt
    }

    /// All key ids, ascending (retired ones included).
    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// Ids of the keys that may open envelopes, ascending.
    pub fn usable_key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.range(self.min_decrypt..).map(|(id, _)| *id)
    }

    /// The primary key.
    pub fn primary_key(&self) -> &SecretKey {
        &self.keys[&self.primary]
    }

    /// The key with `id`, if it may open envelopes: `RetiredKey` below
    /// `min_decrypt`, `UnknownKey` if absent.
    pub fn key(&self, id: u32) -> Result<&SecretKey> {
        if id < self.min_decrypt {
            return Err(Error::RetiredKey {
                key_id: id,
                min_decrypt: self.min_decrypt,
            });
        }
        self.keys.get(&id).ok_or(Error::UnknownKey(id))
    }

    /// Adds a key under a new id. It does not become primary.
    pub fn add_key(&mut self, id: u32, key: SecretKey) -> Result<()> {
        if self.keys.contains_key(&id) {
            return Err(Error::InvalidKeyring(format!("key id {id} already exists")));
        }
        self.keys.insert(id, key);
        Ok(())
    }

    /// Adds a fresh random key with the next id (one above the highest).
    pub fn add_generated_key(&mut self) -> Result<u32> {
        let highest = *self.keys.keys().next_back().expect("never empty");
        let id = highest
            .checked_add(1)
            .ok_or_else(|| Error::InvalidKeyring("key ids are exhausted".into()))?;
        self.keys.insert(id, SecretKey::generate());
        Ok(id)
    }

    /// Makes `id` the key that seals.
    pub fn promote(&mut self, id: u32) -> Result<()> {
        self.key(id)?;
        self.primary = id;
        Ok(())
    }

    /// Retires every key below `min_decrypt`. The primary cannot be retired:
    /// rotate first.
    pub fn set_min_decrypt(&mut self, min_decrypt: u32) -> Result<()> {
        if min_decrypt > self.primary {
            return Err(Error::InvalidKeyring(format!(
                "min_decrypt {min_decrypt} would retire the primary key {}",
                self.primary
            )));
        }
        self.min_decrypt = min_decrypt;
        Ok(())
    }

    /// Rotation: adds a fresh key and makes it primary. Returns its id.
    pub fn rotate(&mut self) -> Result<u32> {
        let id = self.add_generated_key()?;
        self.primary = id;
        Ok(id)
    }

    /// Derives the key of `room` (a name, or a name at an epoch) under
    /// master key `key_id`.
    pub fn room_key<'r>(
        &self,
        key_id: u32,
        room: impl Into<crate::room::Room<'r>>,
    ) -> Result<SecretKey> {
        derive_room_key(self.key(key_id)?, room)
    }

    pub(crate) fn keys(&self) -> &BTreeMap<u32, SecretKey> {
        &self.keys
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("primary", &self.primary)
            .field("min_decrypt", &self.min_decrypt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn invariants_are_enforced() {
        let kind = |r: Result<Keyring>| r.unwrap_err().kind();
        assert_eq!(
            kind(Keyring::from_parts([], 1, 1)),
            ErrorKind::InvalidKeyring
        );
        assert_eq!(
            kind(Keyring::from_parts([(1, key(1))], 2, 1)),
            ErrorKind::InvalidKeyring
        );
        assert_eq!(
            kind(Keyring::from_parts([(1, key(1))], 1, 2)),
            ErrorKind::InvalidKeyring
        );
        assert_eq!(
            kind(Keyring::from_parts([(1, key(1)), (1, key(2))], 1, 1)),
            ErrorKind::InvalidKeyring
        );
        assert!(Keyring::from_parts([(5, key(1))], 5, 0).is_ok());
    }

    #[test]
    fn rotation_and_retirement() {
        let mut kr = Keyring::generate();
        assert_eq!((kr.primary(), kr.min_decrypt()), (1, 1));
        let old = kr.primary_key().clone();
        assert_eq!(kr.rotate().unwrap(), 2);
        assert_eq!(kr.primary(), 2);
        assert_ne!(kr.primary_key().expose(), old.expose());
        assert_eq!(kr.key(1).unwrap().expose(), old.expose());
        assert!(kr.set_min_decrypt(3).is_err());
        kr.set_min_decrypt(2).unwrap();
        assert_eq!(kr.key(1).unwrap_err().kind(), ErrorKind::RetiredKey);
        assert_eq!(kr.key(9).unwrap_err().kind(), ErrorKind::UnknownKey);
        assert_eq!(kr.usable_key_ids().collect::<Vec<_>>(), vec![2]);
        assert_eq!(kr.key_ids().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(kr.promote(1).unwrap_err().kind(), ErrorKind::RetiredKey);
        assert!(kr.add_key(2, key(3)).is_err());
    }

    #[test]
    fn exhausted_ids_are_an_error_not_a_wrap() {
        let mut kr = Keyring::from_parts([(u32::MAX, key(1))], u32::MAX, 0).unwrap();
        assert_eq!(kr.rotate().unwrap_err().kind(), ErrorKind::InvalidKeyring);
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let kr = Keyring::from_parts([(7, key(0xEE))], 7, 7).unwrap();
        let shown = format!("{kr:?}");
        assert!(shown.contains('7') && !shown.contains("238") && !shown.contains("ee"));
    }
}
