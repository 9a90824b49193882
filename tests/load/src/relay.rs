//! `chatseal-relay`: a plain socketioxide relay of chatseal's chat events,
//! the ceiling the Rust server is measured against (issue 18): the same
//! axum + socketioxide versions as `chatseal-server`, the same events and
//! ack shapes (docs/protocol.md), and nothing else — no sealing, no store,
//! no limits, no presence. `join { room }` puts the socket in the room and
//! acks like a server whose rooms have no keys (so `chatseal-load` takes
//! deliveries as plaintext, as with the Node server's `CHATSEAL_PLAIN`);
//! `chat message { room?, message, clientId? }` is acked `{ ok, id, seq,
//! ts }` and then broadcast to the room, the sender included, with one
//! socketioxide broadcast (`within(room).emit`).
//!
//! A benchmark tool, not a server: it binds where it is told (loopback in
//! `scripts/bench.sh`), trusts every guest, keeps a room's seq counter and
//! nothing more. What socketioxide drops when a reader's queue is full is
//! counted and printed on stderr each second it grows, since a broadcast
//! gives no other sign of it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler as _;

#[derive(Debug, clap::Parser)]
#[command(
    name = "chatseal-relay",
    about = "A plain socketioxide relay of chatseal's chat events (benchmark ceiling)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: std::net::SocketAddr,
    /// Packets a socket may have queued (chatseal-server's --socket-buffer
    /// default, so both queue alike).
    #[arg(long, default_value_t = 4096)]
    socket_buffer: usize,
}

/// Longest room name and message accepted (the servers' limits are of the
/// same order; the relay only needs to bound what it keeps).
const MAX_ROOM: usize = 128;
const MAX_MESSAGE: usize = 64 * 1024;
/// Rooms the relay keeps a counter for; beyond it a join is refused.
const MAX_ROOMS: usize = 100_000;

#[derive(Debug, Default)]
struct Relay {
    /// Each room's last seq.
    seqs: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    /// Deliveries socketioxide refused (a reader's queue was full).
    dropped: AtomicU64,
}

type Shared = Arc<Relay>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let relay: Shared = Arc::default();
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(args.socket_buffer)
        .with_state(Arc::clone(&relay))
        .build_layer();
    io.ns("/", on_connect.with(setup));
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("chatseal-relay listening on {}", listener.local_addr()?);
    tokio::spawn(report_drops(relay));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn report_drops(relay: Shared) {
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = relay.dropped.load(Ordering::Relaxed);
        if now != seen {
            eprintln!("chatseal-relay: {now} deliveries dropped (a reader's queue was full)");
            seen = now;
        }
    }
}

async fn on_connect(_socket: SocketRef) {}

/// Registers the handlers before the connect packet goes out (a connect
/// handler runs after it, and an event sent at once would find none).
async fn setup(socket: SocketRef, TryData(auth): TryData<Value>) -> Result<(), std::io::Error> {
    let name = auth
        .ok()
        .and_then(|a| a.get("name")?.as_str().map(str::to_owned))
        .filter(|n| (1..=32).contains(&n.len()))
        .unwrap_or_else(|| "guest".to_owned());
    let sender: Arc<str> = format!("~{name}").into();
    let rooms: Arc<Mutex<HashSet<String>>> = Arc::default();
    rooms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert("lobby".into());
    socket.join("lobby");
    let joined = Arc::clone(&rooms);
    socket.on(
        "join",
        move |s: SocketRef,
              TryData(data): TryData<Value>,
              ack: AckSender,
              State(relay): State<Shared>| {
            let joined = Arc::clone(&joined);
            async move {
                let room = data
                    .ok()
                    .and_then(|d| d.get("room")?.as_str().map(str::to_owned));
                let Some(room) = room.filter(|r| !r.is_empty() && r.len() <= MAX_ROOM) else {
                    return refuse(
                        ack,
                        "BAD_REQUEST",
                        "room must be a string of 1 to 128 bytes",
                    );
                };
                let latest = {
                    let mut seqs = relay.seqs.lock().unwrap_or_else(|p| p.into_inner());
                    if !seqs.contains_key(&room) && seqs.len() >= MAX_ROOMS {
                        return refuse(ack, "TOO_LARGE", "too many rooms");
                    }
                    *seqs.entry(room.clone()).or_default()
                };
                joined
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(room.clone());
                s.join(room.clone());
                let _ = ack.send(&json!({
                    "ok": true, "room": room, "latestSeq": latest, "historyId": "relay",
                    "presence": null, "epoch": 0, "keys": [], "missed": [],
                }));
            }
        },
    );
    socket.on(
        "chat message",
        move |s: SocketRef,
              TryData(data): TryData<Value>,
              ack: AckSender,
              State(relay): State<Shared>| {
            let (rooms, sender) = (Arc::clone(&rooms), Arc::clone(&sender));
            async move {
                let (room, message) = match data {
                    Ok(Value::String(m)) => ("lobby".to_owned(), m),
                    Ok(Value::Object(mut o)) => match (o.remove("room"), o.remove("message")) {
                        (None, Some(Value::String(m))) => ("lobby".to_owned(), m),
                        (Some(Value::String(r)), Some(Value::String(m))) => (r, m),
                        _ => return refuse(ack, "BAD_REQUEST", "invalid chat message"),
                    },
                    _ => return refuse(ack, "BAD_REQUEST", "invalid chat message"),
                };
                if message.len() > MAX_MESSAGE {
                    return refuse(ack, "TOO_LARGE", "message too long");
                }
                if !rooms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&room)
                {
                    return refuse(ack, "FORBIDDEN", "join the room before sending to it");
                }
                let seq = {
                    let mut seqs = relay.seqs.lock().unwrap_or_else(|p| p.into_inner());
                    let seq = seqs.entry(room.clone()).or_default();
                    *seq += 1;
                    *seq
                };
                let id = format!("{:016x}", relay.next_id.fetch_add(1, Ordering::Relaxed));
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                // The ack first, as both servers do: the sender knows the id
                // before its own copy arrives.
                let _ = ack.send(&json!({ "ok": true, "id": id, "seq": seq, "ts": ts }));
                let msg = json!({
                    "id": id, "room": room, "seq": seq, "sender": &*sender, "ts": ts,
                    "keyId": 0, "epoch": 0, "message": message,
                });
                if let Err(socketioxide::BroadcastError::Socket(failed)) =
                    s.within(room).emit("chat message", &msg).await
                {
                    relay
                        .dropped
                        .fetch_add(failed.len() as u64, Ordering::Relaxed);
                }
            }
        },
    );
    Ok(())
}

fn refuse(ack: AckSender, code: &str, message: &str) {
    let _ = ack.send(&json!({ "ok": false, "error": { "code": code, "message": message } }));
}
