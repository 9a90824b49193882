//! Which rooms are private, as this server last read it from the store, so
//! that messages from elsewhere in the cluster (Redis or the catch-up) reach
//! only members here.
//!
//! A name joined here while it had no row can be created private on another
//! server, whose `POST /api/rooms` puts out only its own sockets. Before a
//! room's messages from elsewhere are delivered, this server looks the room
//! up here and, if it is private, puts out every local socket that is not a
//! member: no notice between servers is needed, and a lost one cannot leak.
//!
//! Privacy is fixed when a room's row is written (a name with a row can
//! never be created private, and deleting a room keeps its privacy), and a
//! delivered message implies its room has a row. So a *public* entry is true
//! forever and a room with no entry is read from the store. A *private*
//! entry can be short of members added since it was read: when a local
//! socket is not among the cached members, the entry is read again before
//! that socket is put out (a member's join commits its membership before
//! the socket is in the room, so a read after seeing the socket sees it).
//! It can also hold members an owner removed since: the owner's server
//! tells the others over Redis (`room_changed`), and, in case that notice
//! is lost, a private entry is read again once it is [`FRESH`] old.
//! Cost on the hot path: one map lookup per room of a delivery; a private
//! room also walks its local sockets (as the delivery does anyway).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::app::Shared;
use crate::chat::connection::Connection;
use crate::chat::identity::Identity;
use crate::store::StoreError;

/// Rooms remembered; past this the map is emptied and refilled on demand
/// (one store read per room then), so memory stays bounded however many
/// rooms there are.
pub const CAPACITY: usize = 8192;

/// How long a private room's members are trusted without a new read.
pub const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Entry {
    Public,
    /// No row yet (joined, never posted to): public until it has one; read
    /// again when stale, as a private creation's notice may be lost.
    NoRow(std::time::Instant),
    Private(Arc<HashSet<String>>, std::time::Instant),
}

impl Entry {
    fn stale(&self) -> bool {
        match self {
            Entry::Public => false,
            Entry::NoRow(read) | Entry::Private(_, read) => read.elapsed() >= FRESH,
        }
    }
}

/// The per-server cache: room → public, or private with its members.
#[derive(Debug, Default)]
pub struct Privacy {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Privacy {
    fn get(&self, room: &str) -> Option<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Stale entries still serve deliveries: `refresh_stale` reads them
        // again in the background, so the hot path never waits on the store
        // for them.
        entries.get(room).cloned()
    }

    /// After a Redis outage notices may have been lost: every entry that
    /// can change is read again by the next `refresh_stale` rounds.
    pub fn mark_stale(&self) {
        let long_ago = std::time::Instant::now()
            .checked_sub(FRESH)
            .unwrap_or_else(std::time::Instant::now);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for entry in entries.values_mut() {
            match entry {
                Entry::Public => {}
                Entry::NoRow(read) | Entry::Private(_, read) => *read = long_ago,
            }
        }
    }

    /// Reads again (at most `max` of) the private rooms read [`FRESH`] ago
    /// or longer and puts out local sockets that are no longer members, so
    /// a removal whose notice was lost also stops this server's own
    /// deliveries (which do not go through this cache) within seconds.
    pub async fn refresh_stale(&self, state: &Shared, max: usize) {
        let Some(io) = state.io.get() else { return };
        let stale: Vec<String> = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .iter()
                .filter(|(_, e)| e.stale())
                .map(|(room, _)| room.clone())
                .take(max)
                .collect()
        };
        for room in stale {
            // Nobody here: nothing to put out; forget it (read on demand).
            if io.to(room.clone()).sockets().is_empty() {
                self.forget(&room);
                continue;
            }
            let _turn = state.room_locks.exclusive(&room).await;
            self.forget(&room);
            if self.put_out_non_members(state, &room).await.is_err() {
                return; // the store is down: next round
            }
        }
    }

    /// Drops what is known of `room`: its members changed.
    pub fn forget(&self, room: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(room);
    }

    fn put(&self, room: &str, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(room) {
            entries.clear();
        }
        entries.insert(room.to_owned(), entry);
    }

    /// Reads `room` from the store and remembers it.
    async fn load(&self, state: &Shared, room: &str) -> Result<Entry, StoreError> {
        let entry = match state.store.room(room).await? {
            Some(info) if info.private => {
                let members = state.store.room_members(room).await?;
                Entry::Private(
                    Arc::new(members.into_iter().collect()),
                    std::time::Instant::now(),
                )
            }
            // No row yet: public for now, read again once stale.
            None => Entry::NoRow(std::time::Instant::now()),
            Some(_) => Entry::Public,
        };
        self.put(room, entry.clone());
        Ok(entry)
    }

    /// Before messages of `room` from elsewhere are delivered here: if the
    /// room is private, every local socket in it that is not a member
    /// leaves it. An error means the store could not say: the caller must
    /// not deliver (the catch-up retries).
    pub async fn put_out_non_members(&self, state: &Shared, room: &str) -> Result<(), StoreError> {
        let (mut entry, mut fresh) = match self.get(room) {
            Some(entry) => (entry, false),
            None => (self.load(state, room).await?, true),
        };
        let Some(io) = state.io.get() else {
            return Ok(());
        };
        loop {
            let Entry::Private(members, _) = &entry else {
                return Ok(());
            };
            let outsiders: Vec<_> = io
                .to(room.to_owned())
                .sockets()
                .into_iter()
                .filter(|socket| {
                    !socket
                        .extensions
                        .get::<Arc<Connection>>()
                        .is_some_and(|conn| match &conn.identity {
                            Identity::Account(name) => members.contains(name),
                            Identity::Guest(_) => false,
                        })
                })
                .collect();
            if outsiders.is_empty() {
                return Ok(());
            }
            if !fresh {
                // Perhaps members added since the entry was read.
                entry = self.load(state, room).await?;
                fresh = true;
                continue;
            }
            for socket in &outsiders {
                let _ = socket.emit(
                    "room closed",
                    &serde_json::json!({
                        "room": room,
                        "code": "FORBIDDEN",
                        "message": "a private room is for members",
                    }),
                );
                socket.leave(room.to_owned());
            }
            tracing::info!(
                put_out = outsiders.len(),
                "room is private: non-members joined before its creation put out"
            );
            return Ok(());
        }
    }
}
