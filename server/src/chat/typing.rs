//! `typing { room, typing? }`: an ephemeral signal to the others in a room.
//!
//! Never stored, never acked after a commit: it is relayed at once to the
//! room's other sockets here and, in a cluster, over Redis to the other
//! servers' (see [`crate::cluster`]). It costs a sender one token of its own
//! rate (2/s, bursts of 5 by default) and the room one small frame per
//! member, so a flood of it is refused `RATE_LIMITED` before it fans out. A
//! reader whose send queue is full simply misses it: unlike a message, a
//! lost typing signal is not worth a disconnect.

use super::adapter::{ChatSocket, Io};
use super::identity::Identity;
use super::protocol::{self, Failure, TypingOut};
use crate::app::AppState;
use crate::error::Code;

/// A connection's `typing` rate: a client sends one when typing starts and
/// one every few seconds while it goes on.
pub const PER_SEC: u32 = 2;
pub const BURST: u32 = 5;

/// Checks a `typing` from `socket` and relays it.
pub fn handle(
    state: &AppState,
    socket: &ChatSocket,
    identity: &Identity,
    admit: impl FnOnce() -> bool,
    data: Result<serde_json::Value, String>,
) -> Result<serde_json::Value, Failure> {
    let req = protocol::parse_typing_request(data)?;
    // Taken after the payload is read, as on the Node server.
    if !admit() {
        return Err(Failure::new(
            Code::RateLimited,
            "too many typing signals: slow down",
        ));
    }
    if !socket.rooms().iter().any(|r| r == req.room.as_str()) {
        return Err(Failure::new(
            Code::Forbidden,
            "join the room before typing in it",
        ));
    }
    // Where presence is off (a lobby of thousands) typing is too: each
    // signal would be a frame to every socket in the room.
    if state.presence.too_large(&req.room) {
        return Err(Failure::new(
            Code::TooLarge,
            format!(
                "typing is off in rooms of more than {} people",
                super::presence::MAX_ROOM
            ),
        ));
    }
    let out = TypingOut {
        room: req.room,
        name: identity.name().to_owned(),
        typing: req.typing,
    };
    if let Some(io) = state.io.get() {
        relay(io, &out, Some(socket));
    }
    if let Some(cluster) = &state.cluster {
        cluster.publish_typing(&out);
    }
    Ok(serde_json::json!({ "ok": true }))
}

/// Sends `typing` to this server's sockets in the room, but `from`.
pub fn relay(io: &Io, out: &TypingOut, from: Option<&ChatSocket>) {
    let Ok(raw) = serde_json::to_string(out).and_then(serde_json::value::RawValue::from_string)
    else {
        return;
    };
    for socket in io.to(out.room.clone()).sockets() {
        if from.is_some_and(|f| f.id == socket.id) {
            continue;
        }
        // A full queue or a closing socket: this signal is dropped for it.
        let _ = socket.emit("typing", &raw);
    }
}
