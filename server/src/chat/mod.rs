//! The Socket.IO chat protocol of DESIGN §3 on socketioxide.
//!
//! * [`detach`]: copies a Socket.IO request's head out of hyper's read buffer.
//! * [`identity`]: the handshake (`auth` → account, guest, or `connect_error`).
//! * [`connection`]: a connection's events, handled one at a time in order.
//! * [`expiry`]: an account's session ends at its token's `exp` unless refreshed.
//! * [`session`]: `join`, `leave` and `chat message`; [`typing`]: `typing`.
//! * [`writer`]: stores messages in batches, then broadcasts them in order.
//! * [`rooms`]: access rules, per-room order, broadcast.
//! * [`adapter`]: socketioxide's local adapter, plus a room's messages
//!   serialized once and sent socket by socket.
//! * [`epochs`]: each room's key epoch, as this server last learnt it.
//! * [`presence`]: who is online in a room.
//! * [`protocol`]: payloads and their validation.

pub mod adapter;
pub mod catch_up;
pub mod connection;
pub mod detach;
pub mod epochs;
pub mod expiry;
pub mod identity;
pub mod presence;
pub mod protocol;
pub mod rooms;
pub mod session;
pub mod sessions;
pub mod typing;
pub mod writer;

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{Event, State, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::layer::SocketIoLayer;

use self::adapter::{Ack, ChatSocket};
use self::connection::{Connection, Job, Request, Ticket};
use self::identity::Refused;
use self::protocol::{Failure, LOBBY, SendRequest};
use crate::app::AppState;
use crate::error::Code;
use crate::metrics;

/// Where Socket.IO is served (socketioxide's default, as Node's).
pub const PATH: &str = "/socket.io";

/// Builds the Socket.IO layer with the limits of DESIGN §3 set explicitly
/// (socketioxide's defaults differ from Node's) and registers the handlers.
pub fn layer(state: &AppState) -> SocketIoLayer<adapter::ChatAdapter> {
    let (layer, io) = socketioxide::SocketIo::builder()
        .max_buffer_size(state.socket_buffer)
        .max_payload(state.limits.max_payload_bytes as u64)
        // engineioxide applies max_payload to polling only; a WebSocket
        // message could be up to 64 MiB, read whole before any check.
        .ws_max_message_size(state.limits.max_payload_bytes)
        .ws_max_frame_size(state.limits.max_payload_bytes)
        // Each idle WebSocket keeps its read buffer: 1 KiB instead of 4
        // (a chat message is ~300 bytes; larger frames take more reads).
        .ws_read_buffer_size(1024)
        // A session that has not connected by then is closed (and its
        // pending slot given back, see [`sessions`]).
        .connect_timeout(state.guards.connect_timeout)
        .with_state(Arc::clone(state))
        .with_adapter::<adapter::ChatAdapter>(Arc::clone(&state.adapters))
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    let _ = state.io.set(io);
    state
        .writer
        .get_or_init(|| writer::Writer::start(Arc::downgrade(state), state.store.appends_block()));
    presence::start(Arc::downgrade(state));
    layer
}

async fn authenticate(
    socket: ChatSocket,
    TryData(auth): TryData<Value>,
    State(state): State<AppState>,
) -> Result<(), Refused> {
    let (identity, exp) = identity::authenticate(&state, auth.ok())
        .await
        .inspect_err(|r| {
            metrics::refused(r.code);
            tracing::debug!(code = r.code.as_str(), "handshake refused");
        })?;
    sessions::connected(&socket.req_parts().extensions);
    let expiry = Arc::new(expiry::Expiry::new(exp));
    let conn = Connection::new(Arc::clone(&state), identity, Arc::clone(&expiry));
    socket.extensions.insert(conn);
    if exp.is_some() {
        tokio::spawn(expiry::watch(socket.clone(), expiry));
    }
    // Everything a client may rely on as soon as it is connected is set up
    // here, before socketioxide sends the connect packet: the connect
    // handler runs as its own task *after* that packet, so an event the
    // client sends at once could otherwise find no handler and be dropped.
    socket.join(LOBBY);
    socket.on("join", on_join);
    socket.on("leave", on_leave);
    socket.on("chat message", on_send);
    socket.on("refresh", on_refresh);
    socket.on("typing", on_typing);
    socket.on_fallback(on_unknown);
    socket.on_disconnect(on_disconnect);
    Ok(())
}

async fn on_connect(_socket: ChatSocket) {
    metrics::connected();
}

fn job<T>(
    request: fn(Result<T, String>) -> Request,
    data: Result<T, impl ToString>,
    ack: Ack,
) -> Job {
    Job {
        request: request(data.map_err(|e| e.to_string())),
        ack,
        busy: connection::Busy::start(),
    }
}

// The ticket is the last argument: it is taken only once the other
// extractors (which cannot fail) have run, so tickets have no gaps.
async fn on_join(TryData(data): TryData<Value>, ack: Ack, t: Ticket) {
    t.enqueue(job(Request::Join, data, ack));
}

async fn on_leave(TryData(data): TryData<Value>, ack: Ack, t: Ticket) {
    t.enqueue(job(Request::Leave, data, ack));
}

async fn on_send(TryData(data): TryData<SendRequest>, ack: Ack, t: Ticket) {
    t.enqueue(job(Request::Send, data, ack));
}

async fn on_refresh(TryData(data): TryData<Value>, ack: Ack, t: Ticket) {
    t.enqueue(job(Request::Refresh, data, ack));
}

async fn on_typing(TryData(data): TryData<Value>, ack: Ack, t: Ticket) {
    t.enqueue(job(Request::Typing, data, ack));
}

async fn on_unknown(Event(event): Event, ack: Ack) {
    let failure = Failure::new(Code::BadRequest, format!("unknown event {event:?}"));
    let _ = ack.send(&failure.to_ack());
}

async fn on_disconnect(socket: ChatSocket) {
    if let Some(conn) = socket.extensions.get::<Arc<Connection>>() {
        conn.close();
    }
    metrics::disconnected();
}

/// On shutdown: keeps serving the sockets it has until no event has been
/// waiting for 100 ms (so what clients already sent is read, handled and
/// acknowledged), at most `limit`, then closes every socket.
pub async fn drain(state: &AppState, limit: std::time::Duration) {
    use tokio::time::{Duration, Instant, sleep};
    let deadline = Instant::now() + limit;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if connection::busy() > 0 {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(100) {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(
        waiting = connection::busy(),
        "events handled; closing sockets"
    );
    if let Some(io) = state.io.get() {
        io.close().await;
    }
}
