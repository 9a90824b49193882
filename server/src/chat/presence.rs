//! Who is online in a room: a list in the `join` ack, and `presence { room,
//! name, online }` events when a name comes or goes.
//!
//! Presence is derived, never counted: once a second this server looks at
//! who is in each room that has sockets here (plus, in a cluster, the
//! names the other servers wrote to Redis), compares with what it last
//! told the room, and sends the differences. Every way a socket leaves a
//! room (leave, disconnect, eviction, being put out of a private room)
//! therefore shows, with no bookkeeping to get wrong, at most a second
//! later. In a cluster each server writes its names per room to a Redis
//! hash with an expiry; a server that dies stops refreshing, and its names
//! drop out within [`cluster::PRESENCE_TTL`](crate::cluster) seconds.
//!
//! Off for large rooms: above [`MAX_ROOM`] sockets here (or names in all)
//! a room's `join` ack has `presence: null` and no events are sent; a
//! lobby of thousands would otherwise send every join to everyone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::adapter::Io;
use super::connection::Connection;
use crate::app::Shared;

/// Rooms with more sockets (or names) than this have no presence.
pub const MAX_ROOM: usize = 200;
/// How often rooms are compared with what they were told.
pub const TICK: Duration = Duration::from_secs(1);
/// Rooms one tick looks at, at most.
pub const MAX_ROOMS: usize = 5000;

/// What each room was last told: its online names (`None`: too large).
#[derive(Debug, Default)]
pub struct Presence {
    shown: Mutex<HashMap<String, Option<BTreeSet<String>>>>,
}

/// The sender names of this server's sockets in `room`, or `None` when
/// there are more than [`MAX_ROOM`] sockets.
pub fn local_names(io: &Io, room: &str) -> Option<BTreeSet<String>> {
    let sockets = io.to(room.to_owned()).sockets();
    if sockets.len() > MAX_ROOM {
        return None;
    }
    Some(
        sockets
            .iter()
            .filter_map(|s| {
                s.extensions
                    .get::<Arc<Connection>>()
                    .map(|c| c.identity.name().to_owned())
            })
            .collect(),
    )
}

/// Everyone online in `room`: here, and on the other servers as last read.
/// A room the last tick found too large answers `None` at once, without
/// walking its sockets (a lobby of thousands joined by a reconnect storm).
pub fn online(state: &Shared, room: &str) -> Option<BTreeSet<String>> {
    if state.presence.too_large(room) {
        return None;
    }
    let io = state.io.get()?;
    with_remote(state, room, local_names(io, room)?)
}

/// `local` plus the other servers' names for `room`; `None` when too many.
fn with_remote(
    state: &Shared,
    room: &str,
    mut names: BTreeSet<String>,
) -> Option<BTreeSet<String>> {
    if let Some(cluster) = &state.cluster {
        names.extend(cluster.remote_presence(room)?);
    }
    (names.len() <= MAX_ROOM).then_some(names)
}

impl Presence {
    /// Whether the last tick found `room` too large for presence.
    pub fn too_large(&self, room: &str) -> bool {
        let shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        matches!(shown.get(room), Some(None))
    }
}

/// Starts the once-a-second comparison.
pub fn start(state: Weak<Shared>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(state) = state.upgrade() else { return };
            tick(&state).await;
        }
    });
}

async fn tick(state: &Shared) {
    let Some(io) = state.io.get() else { return };
    let rooms = match io.rooms().await {
        Ok(rooms) => rooms,
        Err(_) => return,
    };
    // Each room's sockets are walked once per tick. Past MAX_ROOMS rooms
    // (joins write nothing, so rooms cost a client nothing), the rest have
    // no presence this tick rather than making the tick unbounded.
    let local: Vec<(String, Option<BTreeSet<String>>)> = rooms
        .into_iter()
        .take(MAX_ROOMS)
        .map(|r| {
            let room = r.to_string();
            let names = local_names(io, &room);
            (room, names)
        })
        .collect();
    if let Some(cluster) = &state.cluster {
        cluster.exchange_presence(&local).await;
    }
    let mut changes: Vec<(String, String, bool)> = Vec::new();
    {
        let mut shown = state
            .presence
            .shown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let present: HashSet<&str> = local.iter().map(|(r, _)| r.as_str()).collect();
        shown.retain(|room, _| present.contains(room.as_str()));
        for (room, names) in &local {
            let now = names
                .clone()
                .and_then(|names| with_remote(state, room, names));
            // A room seen for the first time was told nobody yet.
            let before = shown
                .insert(room.clone(), now.clone())
                .unwrap_or_else(|| Some(BTreeSet::new()));
            let (Some(now), Some(before)) = (now, before) else {
                continue; // too large: presence is off
            };
            for name in now.difference(&before) {
                changes.push((room.clone(), name.clone(), true));
            }
            for name in before.difference(&now) {
                changes.push((room.clone(), name.clone(), false));
            }
        }
    }
    for (room, name, online) in changes {
        let event = serde_json::json!({ "room": &room, "name": name, "online": online });
        for socket in io.to(room).sockets() {
            // A full queue misses it, as with `typing`; the next join's
            // list is right again.
            let _ = socket.emit("presence", &event);
        }
    }
}
