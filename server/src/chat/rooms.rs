//! Rooms: who may join, the per-room turn that keeps `seq` order from store
//! to broadcast, and the broadcast itself.

use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, RwLock, RwLockWriteGuard};

use super::adapter::ChatSocket;
use super::identity::Identity;
use super::protocol::Failure;
use crate::app::AppState;
use crate::error::Code;
use crate::metrics;
use crate::store::StoredMessage;

/// How many of a room's latest messages a `join` without `since` returns.
pub const RECENT_ON_JOIN: i64 = 50;

/// Whether `identity` may join `room`: public rooms are open to everyone,
/// private ones to their members (never to guests).
///
/// A join writes nothing: a room unknown to the store is public, and stays
/// unrecorded until its first message is stored (a row per joined name
/// would let any guest grow the database without bound, and squat names so
/// they could never become private). A silent name can therefore be created
/// private around sockets already in it; the creation puts them out
/// ([`put_out_non_members`]), and `join` checks access under the room's
/// lock, so no join slips in between. Privacy never changes after creation;
/// an owner may remove members (a new key epoch, see `super::epochs`). In a cluster a socket may have joined the
/// name on another server than the creation's: the store refuses its posts
/// (the append checks membership of private rooms) and deliveries from
/// elsewhere put it out first (`crate::cluster`'s privacy cache).
///
/// Returns the room's current key epoch (0 for a room with no row).
pub async fn check_access(
    state: &AppState,
    identity: &Identity,
    room: &str,
) -> Result<u32, Failure> {
    match state.store.room(room).await.map_err(store_down)? {
        Some(info) if info.private => match identity {
            Identity::Guest(_) => Err(Failure::new(
                Code::Forbidden,
                "a private room is for members",
            )),
            Identity::Account(name) => match state.store.is_member(room, name).await {
                Ok(true) => Ok(info.epoch),
                Ok(false) => Err(Failure::new(
                    Code::Forbidden,
                    "a private room is for members",
                )),
                Err(e) => Err(store_down(e)),
            },
        },
        Some(info) => Ok(info.epoch),
        None => Ok(0),
    }
}

/// The keys a member of `room` gets: every epoch up to `epoch` under every
/// master key that may open envelopes (ids ≥ `min_decrypt`), by epoch then
/// id. A room's current members may read all its history; one removed
/// before `epoch` began has none of the keys from `epoch` on.
pub fn keys_through(
    state: &AppState,
    room: &str,
    epoch: u32,
) -> Result<Vec<super::protocol::KeyOut>, Failure> {
    let mut keys = Vec::new();
    for e in 0..=epoch {
        let at = state
            .sealer
            .room_keys(chatseal_core::Room::at(room, e))
            .map_err(|e| Failure::new(Code::BadRequest, e.to_string()))?;
        keys.extend(at.iter().map(super::protocol::KeyOut::of));
    }
    Ok(keys)
}

/// After `room` moved to key epoch `epoch` (a member removed, a private
/// creation, an owner's reset, here or on another server): records it, and
/// sends every socket of this server still in the room the new epoch's
/// keys, one `room key` `{ room, key: { id, epoch, key } }` per usable
/// master key. Call it after the sockets that must not have them are out.
pub async fn announce_epoch(state: &AppState, room: &str, epoch: u32) {
    state.epochs.learn(room, epoch);
    let Some(io) = state.io.get() else { return };
    // Under the room's lock: a join that read the older epoch is in the
    // room before this sends (so it gets the key), one after reads this one.
    let _turn = state.room_locks.exclusive(room).await;
    let Ok(keys) = state.sealer.room_keys(chatseal_core::Room::at(room, epoch)) else {
        return;
    };
    for rk in &keys {
        let key = super::protocol::RoomKeyEvent {
            room,
            key: super::protocol::KeyOut::of(rk),
        };
        // Fire and forget, like a broadcast: a member whose queue is full
        // gets the key from its next join (the SDK joins again when a
        // message names a key it lacks).
        let _ = io.to(room.to_owned()).emit("room key", &key).await;
    }
    tracing::info!(epoch, "room key epoch announced");
}

/// After `room` was just created private with `owner` as its only member:
/// every socket of this server in it but the owner's leaves it, so no one
/// who joined the name while it was public and silent keeps receiving its
/// messages or posting to it (`chat message` answers `FORBIDDEN` to a
/// socket not in the room; a new `join` is refused). Taken under the
/// room's lock, which `join` holds from its access check until the socket
/// is in: a join that read the room as public is in before this runs, one
/// after it reads the room as private.
///
/// In a cluster this puts out only this server's sockets; the others are
/// put out by their server before it delivers the room's next message, or
/// when the store refuses their first post (docs/protocol.md, `join`).
pub async fn put_out_non_members(state: &AppState, room: &str, owner: &str) {
    let Some(io) = state.io.get() else { return };
    let _turn = state.room_locks.exclusive(room).await;
    let mut put_out = 0usize;
    for socket in io.to(room.to_owned()).sockets() {
        let is_owner = socket
            .extensions
            .get::<Arc<super::connection::Connection>>()
            .is_some_and(|conn| matches!(&conn.identity, Identity::Account(n) if n == owner));
        if !is_owner {
            socket.leave(room.to_owned());
            put_out += 1;
        }
    }
    if put_out > 0 {
        tracing::info!(put_out, "room created private: earlier joiners put out");
    }
    // The other servers put out theirs now, not at the room's next message
    // from elsewhere (their own deliveries, presence and typing would reach
    // those sockets meanwhile).
    if let Some(cluster) = &state.cluster {
        cluster.publish_room_changed(room);
    }
}

/// After an owner removed `username` from `room` (or deleted the room:
/// `username` None puts out everyone): this server's sockets of the account
/// leave the room at once, under the room's lock, so nothing the room
/// stores from now on reaches them. Other servers are told over Redis and
/// read the room's members again (see `crate::cluster`).
pub async fn put_out(state: &AppState, room: &str, username: Option<&str>) -> usize {
    let Some(io) = state.io.get() else { return 0 };
    let _turn = state.room_locks.exclusive(room).await;
    let mut put_out = 0usize;
    for socket in io.to(room.to_owned()).sockets() {
        let theirs = username.is_none_or(|name| {
            socket
                .extensions
                .get::<Arc<super::connection::Connection>>()
                .is_some_and(|conn| matches!(&conn.identity, Identity::Account(n) if n == name))
        });
        if theirs {
            // Told first, so the client drops the room instead of waiting
            // on it (its next post would be refused FORBIDDEN anyway).
            let _ = socket.emit(
                "room closed",
                &serde_json::json!({
                    "room": room,
                    "code": "FORBIDDEN",
                    "message": if username.is_some() {
                        "you were removed from this room"
                    } else {
                        "this room was deleted"
                    },
                }),
            );
            socket.leave(room.to_owned());
            put_out += 1;
        }
    }
    if let Some(cluster) = &state.cluster {
        cluster.publish_room_changed(room);
    }
    put_out
}

fn store_down(e: crate::store::StoreError) -> Failure {
    tracing::warn!(error = %e, "store unavailable");
    Failure::new(Code::Unavailable, "the store is unavailable; try again")
}

/// The per-room turn between the writer and `join`, on a fixed set of
/// stripes that rooms hash onto (memory stays bounded however many rooms
/// there are; two rooms rarely share one).
///
/// The writer holds a room's stripe *shared* from before a batch is stored
/// until it is broadcast, and several batches may be in that pipeline at
/// once (their order is the writer's). A `join` takes the stripe
/// *exclusively*: it waits until every batch already stored is broadcast,
/// and batches after it wait for the join's catch-up read, so no message
/// falls between the catch-up and the live stream, and none is in both.
#[derive(Debug)]
pub struct RoomLocks {
    stripes: Vec<Arc<RwLock<()>>>,
}

/// The writer's share of the stripes of one batch's rooms.
pub type Turns = Vec<OwnedRwLockReadGuard<()>>;

impl Default for RoomLocks {
    fn default() -> Self {
        RoomLocks {
            stripes: (0..256).map(|_| Arc::new(RwLock::new(()))).collect(),
        }
    }
}

impl RoomLocks {
    fn stripe(&self, room: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room.hash(&mut h);
        (h.finish() as usize) % self.stripes.len()
    }

    /// For a `join`: no batch of this room is between store and broadcast
    /// while the guard lives.
    pub async fn exclusive(&self, room: &str) -> RwLockWriteGuard<'_, ()> {
        self.stripes[self.stripe(room)].write().await
    }

    /// For the writer: shares the stripes of several rooms, in stripe order
    /// (a queued `join` blocks later shares, so the order keeps two batches
    /// from waiting on each other in a cycle).
    pub async fn share_all<'r>(&self, rooms: impl Iterator<Item = &'r str>) -> Turns {
        let mut stripes: Vec<usize> = rooms.map(|r| self.stripe(r)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(Arc::clone(&self.stripes[i]).read_owned().await);
        }
        guards
    }
}

/// Sends messages just stored here (one batch, in `seq` order) to every
/// socket in their rooms, here and, in a cluster, on the other servers.
pub fn broadcast(state: &AppState, batch: &[&StoredMessage]) {
    match &state.cluster {
        Some(cluster) => {
            crate::cluster::deliver_new(state, cluster, batch);
            for message in batch {
                cluster.publish(message);
            }
        }
        None => deliver_local(state, batch),
    }
}

/// Sends `messages` to this server's sockets in their rooms, each room's in
/// the order given. Each message is encoded once; each room's sockets are
/// looked up once and get all of that room's messages back to back (so a
/// socket's writer sends them in one write), see [`ChatAdapter::deliver`].
/// A reader whose send queue is full is disconnected rather than silently
/// skipped, and catches up with `join { since }` when it reconnects.
///
/// [`ChatAdapter::deliver`]: super::adapter::ChatAdapter::deliver
pub fn deliver_local(state: &AppState, messages: &[&StoredMessage]) {
    let Some(io) = state.io.get() else { return };
    // Registered with the namespace, before `io` is set.
    let Some(adapter) = state.adapters.default_ns() else {
        tracing::error!("no adapter for the default namespace: messages not broadcast");
        return;
    };
    let mut rooms: Vec<(&str, Vec<&StoredMessage>)> = Vec::new();
    for &message in messages {
        match rooms.iter_mut().find(|(room, _)| *room == message.room) {
            Some((_, same)) => same.push(message),
            None => rooms.push((&message.room, vec![message])),
        }
    }
    for (room, same) in &rooms {
        let queued = adapter.deliver(room, same, |sid| {
            // `of`, not `get_socket`: that one panics once the namespace
            // is gone (a server closing).
            if let Some(socket) = io.of("/").and_then(|ns| ns.get_socket(sid)) {
                evict(&socket);
            }
        });
        metrics::delivered(queued);
    }
}

/// A reader whose send queue is full: out of every room at once (so nothing
/// more is queued for it), its connection closed, counted and logged once.
/// A session opened as a WebSocket (the browser client's and the load
/// tool's way) has its TCP connection ended through its [`Disconnect`]; a
/// polling or upgraded session (whose handshake connection may since carry
/// other requests, through a proxy) gets the disconnect packet as soon as
/// its queue has room, or ends at its ping timeout. Either way the client
/// reconnects and catches up with `join { since }`. Never logs the socket
/// id: it is a bearer credential.
///
/// [`Disconnect`]: crate::serve::Disconnect
pub fn evict(socket: &ChatSocket) {
    let first = socket
        .extensions
        .get::<Arc<super::connection::Connection>>()
        .is_none_or(|conn| conn.evict());
    if !first {
        return;
    }
    metrics::slow_reader();
    tracing::warn!("reader too slow: disconnecting it (it catches up with since)");
    socket.leave_all();
    let parts = socket.req_parts();
    let opened_as_websocket = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "transport=websocket"));
    if opened_as_websocket && let Some(off) = parts.extensions.get::<crate::serve::Disconnect>() {
        off.now();
    }
    let socket = socket.clone();
    tokio::spawn(async move {
        // Polling: the disconnect packet fits once the client reads.
        for _ in 0..600 {
            if !socket.connected() || socket.clone().disconnect().is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}

/// After a rotation: sends every room that has members here its keys under
/// the new primary master key, as `room key` `{ room, key: { id, epoch, key } }`
/// (one per epoch of the room: `keys rewrap` moves old epochs' messages to it),
/// so members can open what is sealed from now on without joining again.
pub async fn announce_primary(state: &AppState) {
    announce_keys(state, &[state.sealer.primary_key_id()]).await;
}

/// Sends every room that has members here its keys under the master keys
/// `ids` (keys just added to the keyring), one `room key` each. A rotation
/// announces its new key when the key is added, before any server seals
/// with it, so no member is handed a message it has no key for.
pub async fn announce_keys(state: &AppState, ids: &[u32]) {
    let Some(io) = state.io.get() else { return };
    if ids.is_empty() {
        return;
    }
    let rooms = match io.rooms().await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(error = %e, "could not list rooms to announce the new key");
            return;
        }
    };
    let mut announced = 0usize;
    for room in rooms {
        let epoch = state.epochs.get(&room);
        for &id in ids {
            for e in 0..=epoch {
                let Ok(rk) = state.sealer.room_key(chatseal_core::Room::at(&room, e), id) else {
                    continue; // not a chat room name
                };
                let key = super::protocol::RoomKeyEvent {
                    room: &room,
                    key: super::protocol::KeyOut::of(&rk),
                };
                if io.to(room.clone()).emit("room key", &key).await.is_ok() {
                    announced += 1;
                }
            }
        }
    }
    tracing::info!(?ids, rooms = announced, "new keys announced");
}
