//! What each event does, once its turn has come (see [`super::connection`]).

use chatseal_core::{Header, Room, chat_context};
use governor::DefaultDirectRateLimiter;
use serde::Serialize;

use super::adapter::ChatSocket;
use super::connection::{Job, Request};
use super::expiry::Expiry;
use super::identity::{self, Identity};
use super::protocol::{self, Failure, JoinAck, SendAck};
use super::rooms;
use super::writer::{Reply, Unavailable, Writer};
use crate::app::AppState;
use crate::error::Code;
use crate::metrics;
use crate::store::{Appended, OwnedMessage};

/// Handles one event and sends its ack (if the client asked for one). A
/// `chat message` is handed to the writer and acked when its batch commits,
/// so the connection goes on to its next event meanwhile.
pub async fn handle(
    state: &AppState,
    socket: &ChatSocket,
    identity: &Identity,
    limiter: &DefaultDirectRateLimiter,
    expiry: &Expiry,
    job: Job,
) {
    let outcome = match job.request {
        Request::Refresh(data) => {
            let admit = || connection(socket).is_none_or(|conn| conn.admit_refresh());
            refresh(state, identity, expiry, admit, data).await
        }
        Request::Join(data) => join(state, socket, identity, data).await.map(ack_value),
        Request::Leave(data) => leave(socket, data).map(ack_value),
        Request::Typing(data) => {
            let admit = || connection(socket).is_none_or(|conn| conn.admit_typing());
            super::typing::handle(state, socket, identity, admit, data)
        }
        Request::Send(data) => match send(state, socket, identity, limiter, data).await {
            Ok((writer, message)) => {
                let (ack, busy) = (job.ack, job.busy);
                let (socket, room) = (socket.clone(), message.room.clone());
                // Called by the writer once the message is stored (or refused),
                // before it is broadcast: ack, then broadcast. The ack of a
                // stored message is written straight from its fields.
                let reply: Reply = Box::new(move |outcome| {
                    let _ = match outcome {
                        Ok(Appended::New(m) | Appended::Duplicate(m)) => ack.send(&SendAck {
                            ok: true,
                            id: &m.id,
                            seq: m.seq,
                            ts: m.ts,
                        }),
                        Ok(Appended::Forbidden) => {
                            // The room became private around this socket
                            // (created on another server): out of it, so it
                            // receives nothing more either.
                            socket.leave(room);
                            ack.send(&refused(Failure::new(
                                Code::Forbidden,
                                "a private room is for members",
                            )))
                        }
                        // Left only if the room's key epoch kept changing
                        // while the writer sealed again (see writer.rs).
                        Ok(Appended::StaleEpoch { .. }) | Err(Unavailable) => {
                            ack.send(&refused(unavailable()))
                        }
                    };
                    drop(busy);
                });
                writer.submit(message, reply).await;
                return;
            }
            Err(failure) => Err(failure),
        },
    };
    let ack = match outcome {
        Ok(ack) => ack,
        Err(failure) => refused(failure),
    };
    // A client that sent no ack id gets nothing; a gone socket is not an error.
    let _ = job.ack.send(&ack);
}

/// The socket's connection (set at the handshake).
fn connection(socket: &ChatSocket) -> Option<std::sync::Arc<super::connection::Connection>> {
    socket
        .extensions
        .get::<std::sync::Arc<super::connection::Connection>>()
}

fn refused(failure: Failure) -> serde_json::Value {
    metrics::refused(failure.code);
    tracing::debug!(code = failure.code.as_str(), "refused");
    failure.to_ack()
}

fn ack_value<T: Serialize>(ack: T) -> serde_json::Value {
    serde_json::to_value(ack)
        .unwrap_or_else(|_| Failure::new(Code::Internal, "could not encode the ack").to_ack())
}

async fn join(
    state: &AppState,
    socket: &ChatSocket,
    identity: &Identity,
    data: Result<serde_json::Value, String>,
) -> Result<JoinAck, Failure> {
    let req = protocol::parse_room_request(data)?;
    let conn = connection(socket);
    if let Some(conn) = &conn {
        conn.admit_join(req.since.is_some())?;
    }
    let max_rooms = state.guards.max_rooms_per_socket;
    let rooms_now = socket.rooms();
    if rooms_now.len() >= max_rooms && !rooms_now.iter().any(|r| r == req.room.as_str()) {
        return Err(Failure::new(
            Code::TooLarge,
            format!("a connection may be in {max_rooms} rooms at most: leave one first"),
        ));
    }
    // Access is checked, and the socket joined and caught up, under the
    // room's lock: no message falls between the catch-up and the live
    // stream, none comes in both, and a private creation of this name
    // (which puts earlier joiners out under the same lock) cannot fall
    // between the check and the join.
    let turn = state.room_locks.exclusive(&req.room).await;
    let epoch = rooms::check_access(state, identity, &req.room).await?;
    // Checked before the socket is in the room: a bad name costs nothing.
    rooms::keys_through(state, &req.room, 0)?;
    socket.join(req.room.clone());
    // Evicted while this join waited for the room: `evict` sets the flag
    // before it takes the socket out of every room, so either that already
    // took this room out too, or the flag shows here.
    if conn.as_ref().is_some_and(|c| c.is_evicted()) {
        socket.leave(req.room.clone());
        return Err(super::connection::evicted());
    }
    let limit = i64::from(state.history_limit);
    let max_bytes = state.guards.max_ack_bytes;
    let read = async {
        let missed = match req.since {
            Some(since) => {
                super::catch_up::after(state, &req.room, since, limit, max_bytes).await?
            }
            None => {
                let recent = rooms::RECENT_ON_JOIN.min(limit);
                super::catch_up::latest(state, &req.room, recent, max_bytes).await?
            }
        };
        let latest_seq = state.store.latest_seq(&req.room).await?;
        Ok::<_, crate::store::StoreError>((missed, latest_seq))
    };
    let (missed, latest_seq) = read.await.map_err(|e| {
        socket.leave(req.room.clone());
        tracing::warn!(error = %e, "store unavailable");
        unavailable()
    })?;
    if let Some(cluster) = &state.cluster {
        cluster.joined(&req.room, latest_seq);
    }
    // The keys cover every message the ack carries: another server of a
    // cluster may have stored one under an epoch begun after the access
    // check read the room (this server's writer waits for the room's lock,
    // but theirs does not).
    let epoch = missed.iter().map(|m| m.epoch).fold(epoch, u32::max);
    state.epochs.learn(&req.room, epoch);
    let keys = rooms::keys_through(state, &req.room, epoch)?;
    // Outside the room's turn: walking its sockets need not hold up the
    // room's broadcasts.
    drop(turn);
    let presence = super::presence::online(state, &req.room).map(|n| n.into_iter().collect());
    Ok(JoinAck {
        ok: true,
        room: req.room,
        epoch,
        keys,
        missed,
        latest_seq,
        history_id: state.store.history_id().to_owned(),
        presence,
    })
}

/// `refresh { token }`: a newer token for the same account moves the end of
/// the session to its `exp`.
async fn refresh(
    state: &AppState,
    identity: &Identity,
    expiry: &Expiry,
    admit: impl FnOnce() -> bool,
    data: Result<serde_json::Value, String>,
) -> Result<serde_json::Value, Failure> {
    let Identity::Account(name) = identity else {
        return Err(Failure::new(
            Code::Unauthorized,
            "a guest has no session token to refresh",
        ));
    };
    let token = protocol::parse_refresh_request(data)?;
    // Taken after the payload is read: a malformed one costs nothing.
    if !admit() {
        return Err(Failure::new(
            Code::RateLimited,
            "too many refreshes: slow down",
        ));
    }
    let verified = identity::account_of(state, &token)
        .await
        .map_err(|r| Failure::new(r.code, r.message))?;
    if verified.username != *name {
        return Err(Failure::new(
            Code::Unauthorized,
            "that token is for another account",
        ));
    }
    let expires_at = expiry.extend(verified.expires_at);
    Ok(serde_json::json!({ "ok": true, "expiresAt": expires_at }))
}

fn leave(
    socket: &ChatSocket,
    data: Result<serde_json::Value, String>,
) -> Result<serde_json::Value, Failure> {
    let req = protocol::parse_room_request(data)?;
    socket.leave(req.room);
    Ok(serde_json::json!({ "ok": true }))
}

/// Checks and seals a message, ready for the writer.
async fn send<'s>(
    state: &'s AppState,
    socket: &ChatSocket,
    identity: &Identity,
    limiter: &DefaultDirectRateLimiter,
    data: Result<protocol::SendRequest, String>,
) -> Result<(&'s Writer, OwnedMessage), Failure> {
    let req = protocol::parse_send_request(data, state.limits.max_message_bytes)?;
    if limiter.check().is_err() {
        return Err(Failure::new(
            Code::RateLimited,
            "too many messages: slow down",
        ));
    }
    if !socket.rooms().iter().any(|r| r == req.room.as_str()) {
        // Out of every room because it fell behind, not because it never
        // joined: the answer that makes a client reconnect, not give up.
        if connection(socket).is_some_and(|c| c.is_evicted()) {
            return Err(super::connection::evicted());
        }
        return Err(Failure::new(
            Code::Forbidden,
            "join the room before sending to it",
        ));
    }
    let writer = state
        .writer
        .get()
        .ok_or_else(|| Failure::new(Code::Unavailable, "the server is starting"))?;
    let message = seal(state, req.room, identity.name(), req.message, req.client_id)?;
    Ok((writer, message))
}

/// Seals `text` as a new message of `sender` in `room` (its id and
/// timestamp made here), ready for the writer. The plaintext is wiped once
/// sealed.
pub(crate) fn seal(
    state: &AppState,
    room: String,
    sender: &str,
    text: String,
    client_id: Option<String>,
) -> Result<OwnedMessage, Failure> {
    let plaintext = chatseal_core::Zeroizing::new(text.into_bytes());
    let id = uuid::Uuid::now_v7().to_string();
    let ts = crate::auth::unix_now().as_millis() as i64;
    let context = chat_context(&room, &id, sender);
    // The epoch this server knows; the store refuses an older one and the
    // writer then seals again (see `super::epochs`).
    let epoch = state.epochs.get(&room);
    let sealed = state
        .sealer
        .seal(Room::at(&room, epoch), &context, &plaintext)
        .map_err(|e| Failure::new(Code::BadRequest, e.to_string()))?;
    drop(plaintext);
    metrics::sealed();
    let key_id = Header::parse(&sealed)
        .map_err(|_| Failure::new(Code::Internal, "sealed envelope"))?
        .key_id;
    Ok(OwnedMessage {
        id,
        room,
        sender: sender.to_owned(),
        ts,
        key_id,
        epoch,
        envelope: chatseal_core::encode_text(&sealed),
        client_id,
    })
}

fn unavailable() -> Failure {
    Failure::new(
        Code::Unavailable,
        "the message store is unavailable; retry with the same clientId",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::chat::connection::test_socket;

    fn room(name: &str) -> Result<serde_json::Value, String> {
        Ok(serde_json::json!({ "room": name }))
    }

    /// A reader evicted for a full queue is out of every room and being
    /// closed. If a `join` put it back, it would stay connected and, its
    /// queue still full, get only parts of later batches: skipped silently.
    /// A send gets the same answer, not "join first": the client should
    /// reconnect, not give up.
    #[tokio::test]
    async fn an_evicted_connection_cannot_join_again() {
        let (state, _db) = crate::app::test_state("evicted-join").await;
        let (socket, conn, _open) = test_socket(&state).await;
        let identity = conn.identity.clone();

        assert!(join(&state, &socket, &identity, room("r")).await.is_ok());
        rooms::evict(&socket);
        assert!(socket.rooms().is_empty(), "evicted: out of every room");
        for data in [
            room("r"),
            room("s"),
            Ok(serde_json::json!({ "room": "r", "since": 0 })),
        ] {
            let refused = join(&state, &socket, &identity, data).await.unwrap_err();
            assert_eq!(refused.code, crate::error::Code::Unavailable);
        }
        assert!(socket.rooms().is_empty(), "{:?}", socket.rooms());
        let limiter = crate::chat::connection::rate_limiter(0, 0);
        let message = Ok(protocol::SendRequest {
            message: "hi".into(),
            room: "r".into(),
            client_id: None,
        });
        let refused = send(&state, &socket, &identity, &limiter, message)
            .await
            .err();
        assert_eq!(
            refused.map(|f| f.code),
            Some(crate::error::Code::Unavailable)
        );
    }

    /// A join admitted before the eviction, then waiting for its room's
    /// lock while the eviction takes the socket out of every room, must not
    /// put it back once it gets the lock.
    #[tokio::test]
    async fn a_join_waiting_for_its_room_through_an_eviction_stays_out() {
        let (state, _db) = crate::app::test_state("evicted-waiting-join").await;
        let (socket, conn, _open) = test_socket(&state).await;
        let turn = state.room_locks.exclusive("r").await;
        let waiting = tokio::spawn({
            let (state, socket, identity) =
                (Arc::clone(&state), socket.clone(), conn.identity.clone());
            async move {
                join(&state, &socket, &identity, room("r"))
                    .await
                    .map(|_| ())
            }
        });
        // The join is past its admission and waits for the room.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        rooms::evict(&socket);
        drop(turn);
        let refused = waiting.await.unwrap().unwrap_err();
        assert_eq!(refused.code, crate::error::Code::Unavailable);
        assert!(socket.rooms().is_empty(), "{:?}", socket.rooms());
    }
}
