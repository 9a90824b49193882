//! Each room's key epoch, as this server last learnt it: what it seals a
//! room's new messages under (docs/format.md §1, docs/protocol.md).
//!
//! Only a hint: the store is the authority. It refuses a batch's messages
//! sealed under an older epoch than the room's (`Appended::StaleEpoch`), and
//! the writer seals them again under the epoch it names and records it here.
//! So a stale or missing entry costs one more round to the store, never a
//! message stored under a key a removed member holds. That is also why the
//! map may forget: rooms at epoch 0 (nearly all) are never in it, and past
//! [`CAPACITY`] rooms it is emptied and refills from joins and refusals.

use std::collections::HashMap;
use std::sync::Mutex;

/// Rooms remembered at most.
pub const CAPACITY: usize = 65_536;

/// Room → its key epoch, for rooms past epoch 0.
#[derive(Debug, Default)]
pub struct Epochs {
    rooms: Mutex<HashMap<String, u32>>,
}

impl Epochs {
    /// The epoch to seal `room`'s next message under (0 if unknown).
    pub fn get(&self, room: &str) -> u32 {
        self.lock().get(room).copied().unwrap_or(0)
    }

    /// Records that `room` is at `epoch` (or later); returns whether that is
    /// newer than what was known. Epochs only grow, so an older report (a
    /// join that read the room before a change) never moves one back.
    pub fn learn(&self, room: &str, epoch: u32) -> bool {
        let mut rooms = self.lock();
        let known = rooms.get(room).copied().unwrap_or(0);
        if epoch <= known {
            return false;
        }
        if rooms.len() >= CAPACITY {
            rooms.clear();
        }
        rooms.insert(room.to_owned(), epoch);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_only_grow_and_unknown_rooms_are_at_zero() {
        let e = Epochs::default();
        assert_eq!(e.get("a"), 0);
        assert!(!e.learn("a", 0));
        assert!(e.learn("a", 2));
        assert!(!e.learn("a", 1));
        assert_eq!(e.get("a"), 2);
        assert!(e.learn("a", 3));
        assert_eq!(e.get("a"), 3);
        assert_eq!(e.get("b"), 0);
    }

    #[test]
    fn the_map_is_bounded() {
        let e = Epochs::default();
        for i in 0..CAPACITY + 10 {
            e.learn(&format!("r{i}"), 1);
        }
        assert!(e.lock().len() <= CAPACITY);
    }
}
