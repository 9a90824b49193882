//! Envelopes already opened on this thread, for the clients it runs.
//!
//! Every member of a room receives the same envelope for a message: with
//! 100 clients in a room the load tool would open each one 100 times, on
//! the same two cores as the server it measures (at 100 clients the tool,
//! not the server, was the one at a full core). Opening is a pure function
//! of (room key, envelope, room, id, sender), so the tool opens a message
//! once per thread, remembers its plaintext with every one of those
//! inputs, and accepts another copy only if all of them are byte for byte
//! the same; any difference (another envelope, sender, room, key id or key
//! under the same id) is opened on its own and fails or succeeds by itself.
//!
//! One per thread, not one shared: in a first version, shared behind
//! sharded locks, the look-up was 6 % of the tool's samples. Bounded: an entry is
//! dropped once the room's other members have had their copy, and the
//! memo keeps two generations of at most [`GENERATION`] entries (a copy
//! arriving later than that is simply opened again).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use crate::envelope::Message;

pub const GENERATION: usize = 4096;

/// The memo: message id (by its hash, computed once per delivery) → what
/// was opened under it.
#[derive(Default)]
pub struct Opened {
    hasher: RandomState,
    current: Generation,
    previous: Generation,
}

type Generation = HashMap<u64, Entry, BuildHasherDefault<Hashed>>;

/// The keys are hashes already.
#[derive(Default)]
struct Hashed(u64);

impl Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    id: Box<str>,
    room: Box<str>,
    sender: Box<str>,
    key_id: u32,
    key: [u8; 32],
    envelope: Box<str>,
    plaintext: Box<[u8]>,
    /// Copies still expected (at most the room's other members).
    left: u64,
}

impl Entry {
    fn is_for(&self, msg: &Message<'_>, key: &[u8; 32]) -> bool {
        *self.envelope == *msg.message
            && *self.id == *msg.id
            && *self.room == *msg.room
            && *self.sender == *msg.sender
            && self.key_id == msg.key_id
            && self.key == *key
    }
}

impl Opened {
    /// The plaintext of a copy of `msg` opened earlier with `key`, copied
    /// into `out`; false if there is none (nothing is written then).
    pub fn recall(&mut self, msg: &Message<'_>, key: &[u8; 32], out: &mut Vec<u8>) -> bool {
        let hash = self.hasher.hash_one(msg.id.as_ref());
        for generation in [&mut self.current, &mut self.previous] {
            let Some(entry) = generation.get_mut(&hash) else {
                continue;
            };
            if !entry.is_for(msg, key) {
                return false;
            }
            out.clear();
            out.extend_from_slice(&entry.plaintext);
            entry.left = entry.left.saturating_sub(1);
            if entry.left == 0 {
                generation.remove(&hash);
            }
            return true;
        }
        false
    }

    /// Remembers that `msg` opened with `key` to `plaintext`, for at most
    /// `copies` more deliveries of it.
    pub fn remember(&mut self, msg: &Message<'_>, key: &[u8; 32], plaintext: &[u8], copies: u64) {
        if copies == 0 {
            return;
        }
        let hash = self.hasher.hash_one(msg.id.as_ref());
        if self.current.contains_key(&hash) || self.previous.contains_key(&hash) {
            return; // another message under the same hash: opened each time
        }
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(
            hash,
            Entry {
                id: msg.id.as_ref().into(),
                room: msg.room.as_ref().into(),
                sender: msg.sender.as_ref().into(),
                key_id: msg.key_id,
                key: *key,
                envelope: msg.message.as_ref().into(),
                plaintext: plaintext.into(),
                left: copies,
            },
        );
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}
