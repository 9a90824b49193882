//! Several servers, one chat: fan-out of stored messages over Redis.
//!
//! Every server stores into the shared PostgreSQL (which numbers each room),
//! delivers to its own sockets, and publishes the stored message — the
//! envelope, never plaintext — on a Redis channel; the others deliver it to
//! theirs. Redis is only a fast path: each server remembers, per room,
//! which `seq`s its sockets got, and reads whatever it missed from the
//! database and delivers it: every second for the rooms with a gap (a later
//! `seq` came before an earlier one), and for every room in a slow sweep
//! (`--cluster-sweep-secs`, 30 s) and as soon as Redis is back after an
//! outage. So a lost publish, a Redis restart or a partition delays
//! messages but never loses them (a lost publish with nothing after it, up
//! to one sweep), and a message is never delivered twice by the same
//! server. A Redis that hangs, rather than going away, would end no
//! stream: each server publishes a heartbeat every second it is idle, and
//! a subscription silent for `SILENCE` (4 s) is dropped and made again.
//! Idle rooms cost the database nothing between sweeps: reading every
//! joined room every second made 5,000 rooms 2,971 transactions/s.
//!
//! Why not socketioxide's Redis adapter: it broadcasts from the adapter, so
//! a reader whose queue is full cannot be told apart (we disconnect those,
//! so they catch up instead of silently missing a message), and it has no
//! way back to the database after an outage. Messages are already stored
//! and numbered; publishing them is the smaller, safer mechanism.
//!
//! Private rooms: messages from elsewhere reach only members here, whatever
//! sockets joined the name here before it was created private on another
//! server (see [`privacy`]).

mod privacy;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::app::Shared;
use crate::chat::protocol::{LOBBY, TypingOut};
use crate::chat::{rooms, typing};
use crate::store::StoredMessage;

/// What goes over Redis: a stored message, or an ephemeral `typing`. A
/// server that knows only messages skips the others (it cannot parse them).
/// (Two optional fields rather than a flattened enum: serde buffers a
/// flattened payload before parsing it, on every message.)
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<StoredMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typing: Option<TypingOut>,
    /// A room whose members or key epoch an owner changed (removed one,
    /// deleted the room, reset its key): read them again, put out who is no
    /// longer one, and hand those still in it the new epoch's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room_changed: Option<String>,
}

/// What waits in the outbox.
enum Outgoing {
    Message(StoredMessage),
    Typing(TypingOut),
    RoomChanged(String),
}

/// Per room: every `seq` at or below `through` was delivered here, and
/// those in `above` too.
#[derive(Debug, Default)]
struct Delivered {
    through: i64,
    above: BTreeSet<i64>,
}

impl Delivered {
    /// Takes everything up to `latest` as delivered (nobody here to give it
    /// to); what is above stays.
    fn skip_to(&mut self, latest: i64) {
        if latest <= self.through {
            return;
        }
        self.through = latest;
        self.above.retain(|&seq| seq > latest);
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }

    /// Records `seq`; false if it was delivered already.
    fn mark(&mut self, seq: i64) -> bool {
        if seq <= self.through || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
        true
    }
}

/// This server's membership in a cluster.
pub struct Cluster {
    node: String,
    channel: String,
    client: redis::Client,
    outbox: tokio::sync::mpsc::Sender<Outgoing>,
    outbox_rx: Mutex<Option<tokio::sync::mpsc::Receiver<Outgoing>>>,
    up: AtomicBool,
    /// Set on (re)subscribing: the catch-up loop sweeps every room at once,
    /// while the subscriber goes on delivering what Redis brings.
    sweep_now: tokio::sync::Notify,
    delivered: Mutex<HashMap<String, Delivered>>,
    privacy: privacy::Privacy,
    /// Presence on the other servers, per room with sockets here, as last
    /// read (`None`: too many names), and the rooms this server wrote.
    presence: Mutex<PresenceView>,
}

#[derive(Debug, Default)]
struct PresenceView {
    remote: HashMap<String, Option<BTreeSet<String>>>,
    /// What this server last wrote per room, and when (unix ms).
    written: HashMap<String, (Option<BTreeSet<String>>, i64)>,
    conn: Option<redis::aio::MultiplexedConnection>,
}

/// Rooms per presence pipeline.
const PRESENCE_CHUNK: usize = 500;

/// How long a server's presence entries count without a refresh: a server
/// that dies drops out of every room's presence after this.
pub const PRESENCE_TTL: Duration = Duration::from_secs(10);

/// One server's names in one room, as written to Redis.
#[derive(Serialize, Deserialize)]
struct PresenceEntry {
    /// Unix ms after which it no longer counts.
    until: i64,
    /// `None`: more than the presence limit.
    names: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("channel", &self.channel)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Joins the cluster at `url` on `channel`. Redis need not be up yet.
    pub fn new(url: &str, channel: &str) -> anyhow::Result<Cluster> {
        let (outbox, outbox_rx) = tokio::sync::mpsc::channel(OUTBOX);
        Ok(Cluster {
            node: uuid::Uuid::now_v7().to_string(),
            channel: channel.to_owned(),
            client: redis::Client::open(url)?,
            outbox,
            outbox_rx: Mutex::new(Some(outbox_rx)),
            up: AtomicBool::new(false),
            sweep_now: tokio::sync::Notify::new(),
            delivered: Mutex::new(HashMap::new()),
            privacy: privacy::Privacy::default(),
            presence: Mutex::new(PresenceView::default()),
        })
    }

    /// Whether the subscription to Redis is live.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records that this server delivered `seq` of `room` to its sockets;
    /// false if it had already. A room seen for the first time starts here.
    pub fn mark_delivered(&self, room: &str, seq: i64) -> bool {
        let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered
            .entry(room.to_owned())
            .or_insert_with(|| Delivered {
                through: seq - 1,
                above: BTreeSet::new(),
            })
            .mark(seq)
    }

    /// A member joined `room` here, and got everything up to `latest` with
    /// its `join`. If nobody here was in the room yet, delivery starts after
    /// `latest`; otherwise the room's record stands, so existing members
    /// miss nothing (the new one may then see a message both in `missed`
    /// and live; clients keep one per `seq`).
    ///
    /// The lobby has no `join`: every socket is in it from its connect. Its
    /// record is made when the server starts and kept while nobody is in
    /// it (moved on to the latest `seq` at each sweep then), so a socket
    /// that only ever listens there misses nothing stored after its
    /// connect, through an outage of Redis too, and gets nothing older.
    pub fn joined(&self, room: &str, latest: i64) {
        let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered
            .entry(room.to_owned())
            .or_insert_with(|| Delivered {
                through: latest,
                above: BTreeSet::new(),
            });
    }

    /// Queues a stored message for the other servers. Never waits: when
    /// Redis is slow or gone and the queue is full, the message is left to
    /// their catch-up from the database.
    pub fn publish(&self, message: &StoredMessage) {
        let _ = self.outbox.try_send(Outgoing::Message(message.clone()));
    }

    /// Queues a `typing` for the other servers' sockets; dropped, never
    /// waited for, when the queue is full.
    pub fn publish_typing(&self, out: &TypingOut) {
        // Messages and removals first: typing only while the queue is
        // at most half full, so a typing flood never drops one of them.
        if self.outbox.capacity() > OUTBOX / 2 {
            let _ = self.outbox.try_send(Outgoing::Typing(out.clone()));
        }
    }

    /// The names online in `room` on the other servers, as last read;
    /// `None` when they are too many (presence is off for the room).
    pub fn remote_presence(&self, room: &str) -> Option<BTreeSet<String>> {
        let view = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        match view.remote.get(room) {
            Some(names) => names.clone(),
            None => Some(BTreeSet::new()),
        }
    }

    /// Writes this server's names per room to Redis (only those that
    /// changed, and each again every third of [`PRESENCE_TTL`]; the rooms it
    /// has left are removed), and reads the other servers' for the same
    /// rooms, in pipelines of [`PRESENCE_CHUNK`] rooms. A chunk that fails
    /// keeps its rooms' previous view (their entries carry their own expiry),
    /// so one slow round trip does not flap every room's presence.
    pub async fn exchange_presence(&self, local: &[(String, Option<BTreeSet<String>>)]) {
        let (conn, mut written) = {
            let mut view = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            (view.conn.take(), std::mem::take(&mut view.written))
        };
        let mut conn = match conn {
            Some(c) => Some(c),
            None => tokio::time::timeout(
                Duration::from_secs(1),
                self.client.get_multiplexed_async_connection(),
            )
            .await
            .ok()
            .and_then(Result::ok),
        };
        let now = crate::auth::unix_now().as_millis() as i64;
        let until = now + PRESENCE_TTL.as_millis() as i64;
        let refresh = (PRESENCE_TTL / 3).as_millis() as i64;
        let key = |room: &str| format!("{}:presence:{room}", self.channel);
        let present: std::collections::HashSet<&str> =
            local.iter().map(|(r, _)| r.as_str()).collect();
        let gone: Vec<String> = written
            .keys()
            .filter(|r| !present.contains(r.as_str()))
            .cloned()
            .collect();
        let mut remote: HashMap<String, Option<BTreeSet<String>>> = HashMap::new();
        let mut failed: Vec<&str> = Vec::new();
        for (n, chunk) in local.chunks(PRESENCE_CHUNK).enumerate() {
            let Some(c) = conn.as_mut() else {
                failed.extend(chunk.iter().map(|(r, _)| r.as_str()));
                continue;
            };
            let mut pipe = redis::pipe();
            if n == 0 {
                for room in &gone {
                    pipe.cmd("HDEL").arg(key(room)).arg(&self.node).ignore();
                }
            }
            let mut wrote = Vec::new();
            for (room, names) in chunk.iter() {
                let due = match written.get(room) {
                    Some((last, at)) => last != names || now - at >= refresh,
                    None => true,
                };
                if due {
                    let entry = PresenceEntry {
                        until,
                        names: names.clone(),
                    };
                    if let Ok(value) = serde_json::to_string(&entry) {
                        pipe.cmd("HSET")
                            .arg(key(room))
                            .arg(&self.node)
                            .arg(value)
                            .ignore();
                        pipe.cmd("PEXPIRE")
                            .arg(key(room))
                            .arg(2 * PRESENCE_TTL.as_millis() as u64)
                            .ignore();
                        wrote.push((room.clone(), names.clone()));
                    }
                }
                pipe.cmd("HGETALL").arg(key(room));
            }
            let read = tokio::time::timeout(
                Duration::from_secs(1),
                pipe.query_async::<Vec<HashMap<String, String>>>(c),
            )
            .await;
            let Ok(Ok(all)) = read else {
                conn = None;
                failed.extend(chunk.iter().map(|(r, _)| r.as_str()));
                continue;
            };
            for (room, names) in wrote {
                written.insert(room, (names, now));
            }
            for ((room, _), fields) in chunk.iter().zip(all) {
                remote.insert(room.clone(), self.others(&fields, now));
            }
        }
        let mut view = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        for room in failed {
            if let Some(before) = view.remote.get(room) {
                remote.insert(room.to_owned(), before.clone());
            }
        }
        view.remote = remote;
        if conn.is_some() {
            for room in &gone {
                written.remove(room);
            }
        }
        view.written = written;
        view.conn = conn;
    }

    /// The other servers' names in one room's hash, dropping expired ones.
    fn others(&self, fields: &HashMap<String, String>, now: i64) -> Option<BTreeSet<String>> {
        let mut names = Some(BTreeSet::new());
        for (node, value) in fields {
            if *node == self.node {
                continue;
            }
            let Ok(entry) = serde_json::from_str::<PresenceEntry>(value) else {
                continue;
            };
            if entry.until < now {
                continue; // a server that stopped refreshing
            }
            names = match (names, entry.names) {
                (Some(mut all), Some(theirs)) => {
                    all.extend(theirs);
                    Some(all)
                }
                _ => None,
            };
        }
        names
    }

    /// Tells the other servers `room` lost members. A lost notice is
    /// covered by the privacy cache's expiry (see [`privacy`]).
    pub fn publish_room_changed(&self, room: &str) {
        self.privacy.forget(room);
        let _ = self.outbox.try_send(Outgoing::RoomChanged(room.to_owned()));
    }
}

/// Messages waiting to be published.
const OUTBOX: usize = 65536;

/// How often a server says it is alive on the channel when it has nothing
/// else to publish; its own subscription hearing nothing for
/// [`SILENCE`] means the link to Redis is stuck.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Nothing at all on the subscription for this long, not even this
/// server's own heartbeat: the link is taken for dead (a Redis that hangs,
/// or a connection a middlebox keeps open without forwarding), and the
/// server subscribes again and catches up from the database.
const SILENCE: Duration = Duration::from_secs(4);

/// The longest wait to connect to Redis or to subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes queued messages, pipelining whatever has piled up, and a
/// heartbeat when there is nothing to publish for [`HEARTBEAT`]. Ends
/// with the cluster (it holds the outbox's sender).
async fn publish_loop(cluster: Weak<Cluster>, mut rx: tokio::sync::mpsc::Receiver<Outgoing>) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut batch = Vec::new();
    loop {
        // A timeout is a heartbeat: an empty batch (`recv_many` loses
        // nothing when cancelled).
        if let Ok(0) = tokio::time::timeout(HEARTBEAT, rx.recv_many(&mut batch, 512)).await {
            return;
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let mut pipe = redis::pipe();
        // The heartbeat is an envelope with nothing in it.
        let beat = batch.is_empty().then_some(None);
        for item in batch.drain(..).map(Some).chain(beat) {
            let mut envelope = Envelope {
                node: cluster.node.clone(),
                message: None,
                typing: None,
                room_changed: None,
            };
            match item {
                Some(Outgoing::Message(m)) => envelope.message = Some(m),
                Some(Outgoing::Typing(t)) => envelope.typing = Some(t),
                Some(Outgoing::RoomChanged(r)) => envelope.room_changed = Some(r),
                None => {}
            }
            if let Ok(payload) = serde_json::to_string(&envelope) {
                pipe.cmd("PUBLISH")
                    .arg(&cluster.channel)
                    .arg(payload)
                    .ignore();
            }
        }
        // A connection broken while idle shows only when used: the first
        // try on it fails, and the batch goes once more on a new one, so a
        // Redis that came back does not cost the first message after it
        // its fast path. Only then: a batch that timed out may still have
        // run (a `typing` would come twice), and a slow Redis is not helped
        // by twice the load. Otherwise it is left to the others' catch-up.
        for _ in 0..2 {
            if conn.is_none() {
                conn = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    cluster.client.get_multiplexed_async_connection(),
                )
                .await
                .ok()
                .and_then(Result::ok);
            }
            let Some(c) = conn.as_mut() else { break };
            let sent =
                tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<()>(c)).await;
            match sent {
                Ok(Ok(())) => break,
                // Broken: once more, on a new connection.
                Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => conn = None,
                // Refused or timed out: not again.
                _ => {
                    conn = None;
                    break;
                }
            }
        }
    }
}

/// Starts the publisher, the subscriber and the catch-up loop.
pub fn start(state: &Arc<Shared>) {
    let Some(cluster) = state.cluster.clone() else {
        return;
    };
    if let Some(rx) = cluster
        .outbox_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        tokio::spawn(publish_loop(Arc::downgrade(&cluster), rx));
    }
    let weak = Arc::downgrade(state);
    tokio::spawn(subscribe_loop(weak.clone()));
    tokio::spawn(catch_up_loop(weak));
}

async fn subscribe_loop(state: Weak<Shared>) {
    loop {
        let Some(cluster) = state.upgrade().and_then(|s| s.cluster.clone()) else {
            return;
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, cluster.client.get_async_pubsub())
            .await
            .map_err(|_| "timed out connecting".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match connected {
            Ok(mut pubsub) => {
                let subscribed =
                    tokio::time::timeout(CONNECT_TIMEOUT, pubsub.subscribe(&cluster.channel)).await;
                if matches!(subscribed, Ok(Ok(()))) {
                    cluster.up.store(true, Ordering::Relaxed);
                    tracing::info!(channel = %cluster.channel, "cluster: subscribed");
                    // Notices of removed members may have been missed.
                    cluster.privacy.mark_stale();
                    // Back (or first) on Redis: what was missed meanwhile
                    // is read by the catch-up loop, at once, while this one
                    // delivers what comes now (each `seq` is delivered once
                    // whichever way it comes first).
                    cluster.sweep_now.notify_one();
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let msg = match tokio::time::timeout(SILENCE, messages.next()).await {
                            Ok(Some(msg)) => msg,
                            Ok(None) => break,
                            Err(_) => {
                                tracing::warn!(
                                    "cluster: nothing from Redis, not even this server's heartbeat: subscribing again"
                                );
                                break;
                            }
                        };
                        let Some(s) = state.upgrade() else { return };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        let Ok(env) = serde_json::from_str::<Envelope>(&payload) else {
                            continue;
                        };
                        if env.node == cluster.node {
                            continue;
                        }
                        if let Some(m) = &env.message {
                            deliver_remote(&s, &cluster, &[m]).await;
                        }
                        if let Some(room) = &env.room_changed {
                            // Under the room's lock: a join here that read
                            // the old members is in before this looks, or
                            // reads the new ones.
                            {
                                let _turn = s.room_locks.exclusive(room).await;
                                cluster.privacy.forget(room);
                                if let Err(e) = cluster.privacy.put_out_non_members(&s, room).await
                                {
                                    tracing::warn!(error = %e, "store unavailable: members read later");
                                }
                            }
                            // A removal or a reset also started a key epoch:
                            // those still in the room here get its keys. Always
                            // (a repeat is harmless): this server may know the
                            // epoch already, from a post the store sent back,
                            // but only here, after the put-out, may it hand out
                            // the key.
                            match s.store.room_epoch(room).await {
                                Ok(0) => {}
                                Ok(epoch) => {
                                    crate::chat::rooms::announce_epoch(&s, room, epoch).await;
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "store unavailable: the room's epoch is read at its next join");
                                }
                            }
                        }
                        if let Some(t) = &env.typing {
                            // As for messages: in a private room, only members.
                            let checked = cluster.privacy.put_out_non_members(&s, &t.room).await;
                            if let (Ok(()), Some(io)) = (checked, s.io.get()) {
                                typing::relay(io, t, None);
                            }
                        }
                    }
                    cluster.up.store(false, Ordering::Relaxed);
                    tracing::warn!("cluster: lost Redis; serving local clients, will catch up");
                } else if cluster.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!("cluster: could not subscribe on Redis; trying again");
                }
            }
            Err(e) => {
                if cluster.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cluster: Redis unreachable");
                }
            }
        }
        drop(cluster);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Delivers to this server's sockets those of `messages` it has not
/// delivered yet (stored here, received over Redis, or read back from the
/// database), in one pass per room.
pub fn deliver_new(state: &Arc<Shared>, cluster: &Cluster, messages: &[&StoredMessage]) {
    let fresh: Vec<&StoredMessage> = messages
        .iter()
        .copied()
        .filter(|m| cluster.mark_delivered(&m.room, m.seq))
        .collect();
    rooms::deliver_local(state, &fresh);
}

/// [`deliver_new`] for messages stored elsewhere in the cluster (received
/// over Redis or read back by the catch-up): first, in a room that is
/// private, this server's sockets that are not members leave it. A room
/// whose privacy the store cannot tell now is not delivered (nor marked):
/// the catch-up delivers it later. False when some room was held back so.
async fn deliver_remote(
    state: &Arc<Shared>,
    cluster: &Cluster,
    messages: &[&StoredMessage],
) -> bool {
    let mut rooms: Vec<&str> = Vec::new();
    for m in messages {
        if !rooms.contains(&m.room.as_str()) {
            rooms.push(&m.room);
        }
    }
    let mut unknown: Vec<&str> = Vec::new();
    for room in rooms {
        if let Err(e) = cluster.privacy.put_out_non_members(state, room).await {
            tracing::warn!(error = %e, "store unavailable: delivery of a room deferred");
            unknown.push(room);
        }
    }
    if unknown.is_empty() {
        deliver_new(state, cluster, messages);
        true
    } else {
        let known: Vec<&StoredMessage> = messages
            .iter()
            .copied()
            .filter(|m| !unknown.contains(&m.room.as_str()))
            .collect();
        deliver_new(state, cluster, &known);
        false
    }
}

/// Every second, the rooms with a gap; every sweep, every room with
/// members here: deliver from the database what this server has not.
async fn catch_up_loop(state: Weak<Shared>) {
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        let Some(cluster) = state.upgrade().and_then(|s| s.cluster.clone()) else {
            return;
        };
        let now = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = cluster.sweep_now.notified() => true,
        };
        let Some(s) = state.upgrade() else { return };
        cluster.privacy.refresh_stale(&s, 200).await;
        if now || last_sweep.elapsed() >= s.guards.cluster_sweep {
            last_sweep = tokio::time::Instant::now();
            catch_up(&s, &cluster).await;
        } else {
            catch_up_gaps(&s, &cluster).await;
        }
    }
}

/// Rooms where a later `seq` arrived before an earlier one.
async fn catch_up_gaps(state: &Arc<Shared>, cluster: &Cluster) {
    let lobby_gap = {
        let delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered.get(LOBBY).is_some_and(|d| !d.above.is_empty())
    };
    if lobby_gap && skip_empty_lobby(state, cluster).await.is_err() {
        return; // the database is down: try again next round
    }
    let gaps: Vec<(String, i64)> = {
        let delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered
            .iter()
            .filter(|(_, d)| !d.above.is_empty())
            .map(|(room, d)| (room.clone(), d.through))
            .collect()
    };
    for (room, through) in gaps {
        if catch_up_room(state, cluster, &room, through).await.is_err() {
            return; // the database is down: try again next round
        }
    }
}

/// Every room with members here.
async fn catch_up(state: &Arc<Shared>, cluster: &Cluster) {
    let Some(io) = state.io.get() else { return };
    let rooms: Vec<String> = match io.rooms().await {
        Ok(rooms) => rooms.into_iter().map(|r| r.to_string()).collect(),
        Err(_) => return,
    };
    // Forget rooms nobody here is in (never the lobby: see `Cluster::joined`).
    {
        let mut delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered.retain(|room, _| room == LOBBY || rooms.iter().any(|r| r == room));
    }
    if skip_empty_lobby(state, cluster).await.is_err() {
        return; // the database is down: try again next round
    }
    for room in rooms {
        let known = {
            let delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
            delivered.get(&room).map(|d| d.through)
        };
        // Members here but no record: a `join` still on its way, which
        // makes the record from what it read. Starting it here, later,
        // would skip what came in between.
        let Some(through) = known else { continue };
        if catch_up_room(state, cluster, &room, through).await.is_err() {
            return; // the database is down: try again next round
        }
    }
}

/// With nobody in the lobby here, its record moves on to the lobby's
/// latest `seq`: there is nobody to give older messages to, and the next
/// socket to connect must not get them (nor a flood of them, which would
/// disconnect it). The `seq` is read before looking for sockets: one that
/// connects after the look expects only messages stored after its connect,
/// which are above it.
async fn skip_empty_lobby(
    state: &Arc<Shared>,
    cluster: &Cluster,
) -> Result<(), crate::store::StoreError> {
    let latest = state.store.latest_seq(LOBBY).await?;
    let Some(adapter) = state.adapters.default_ns() else {
        return Ok(());
    };
    if adapter.has_sockets(LOBBY) {
        return Ok(());
    }
    let mut delivered = cluster.delivered.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(record) = delivered.get_mut(LOBBY) {
        record.skip_to(latest);
    }
    Ok(())
}

/// Pages a room catches up at most in one round: a backlog longer than this
/// (a long outage of Redis) goes on at the next sweep.
const CATCH_UP_PAGES: usize = 200;

/// Delivers what this server has not of `room`, after `through`, page by
/// page until a page comes back short (or [`CATCH_UP_PAGES`], or a page
/// is held back because the room's privacy cannot be read now): after an
/// outage, a backlog longer than a page reaches readers at once, not a
/// page per sweep. A reader whose queue fills (a backlog over its socket
/// buffer) is disconnected on the way and catches up by itself.
async fn catch_up_room(
    state: &Arc<Shared>,
    cluster: &Cluster,
    room: &str,
    mut through: i64,
) -> Result<(), crate::store::StoreError> {
    let page = i64::from(state.history_limit);
    for _ in 0..CATCH_UP_PAGES {
        let missed = state.store.messages(room, through, None, page).await?;
        let Some(last) = missed.last() else {
            return Ok(());
        };
        through = last.seq;
        let all = deliver_remote(state, cluster, &missed.iter().collect::<Vec<_>>()).await;
        if !all || (missed.len() as i64) < page {
            return Ok(());
        }
    }
    tracing::warn!(
        pages = CATCH_UP_PAGES,
        "cluster: a room's backlog is longer than one round reads; the rest at the next sweep"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_seqs_are_remembered_once_and_in_any_order() {
        let mut d = Delivered::default();
        assert!(d.mark(1));
        assert!(d.mark(3)); // out of order: remembered above the gap
        assert_eq!((d.through, d.above.len()), (1, 1));
        assert!(!d.mark(3));
        assert!(d.mark(2)); // the gap closes: everything up to 3 is in
        assert_eq!((d.through, d.above.len()), (3, 0));
        assert!(!d.mark(1));
        assert!(!d.mark(2));
    }

    #[test]
    fn skipping_takes_everything_up_to_the_latest_as_delivered() {
        let mut d = Delivered::default();
        assert!(d.mark(1));
        assert!(d.mark(4));
        assert!(d.mark(7));
        d.skip_to(5); // 2, 3 and 5 were for nobody here
        assert_eq!((d.through, d.above.len()), (5, 1));
        assert!(!d.mark(3));
        assert!(d.mark(6)); // closes the gap to 7
        assert_eq!((d.through, d.above.len()), (7, 0));
        d.skip_to(2); // never backwards
        assert_eq!(d.through, 7);
    }

    #[test]
    fn a_room_starts_where_it_is_first_seen() {
        let c = Cluster::new("redis://127.0.0.1:1", "test").unwrap();
        // First seen through a join that caught up to 10: 11 is new.
        c.joined("r", 10);
        assert!(!c.mark_delivered("r", 10));
        assert!(c.mark_delivered("r", 11));
        // A later join does not move the record: members here miss nothing.
        c.joined("r", 20);
        assert!(c.mark_delivered("r", 12));
        // First seen by a delivery: from that message on.
        assert!(c.mark_delivered("s", 5));
        assert!(!c.mark_delivered("s", 5));
        assert!(!c.mark_delivered("s", 4));
    }
}
