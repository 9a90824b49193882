//! The publish API: `POST /api/rooms/:room/messages { message, sender,
//! clientId? }` with the publish token. A backend or a bot posts into a room
//! as a service: the message is sealed, stored, acknowledged after its
//! commit and broadcast exactly like one sent over Socket.IO (the same
//! writer, so the room's order and the dedup by `clientId` hold), with
//! `sender` `#<name>` so every reader can tell a service from a person.
//!
//! The token is its own (`CHATSEAL_PUBLISH_TOKEN` or
//! `<data-dir>/publish-token`), not the `/decrypt` one: posting must not
//! need a decryption oracle. A service may post to private rooms too (it is
//! the operator's backend); its messages there reach members only, as any.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize as _;
use serde_json::Value;

use crate::app::AppState;
use crate::chat::protocol;
use crate::chat::session;
use crate::chat::writer::Unavailable;
use crate::error::{ApiError, Code, JsonBody};
use crate::store::{Appended, SERVICE_MARK};

/// `POST /api/rooms/:room/messages`: 201 `{ ok, id, seq, ts, sender }` once
/// stored (200 with the first message's for a resend of a `clientId`).
pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    match &state.publish_auth {
        Some(auth) => auth.check(&headers)?,
        None => {
            return Err(ApiError::new(
                Code::Unauthorized,
                "the publish API is off on this server",
            ));
        }
    }
    let Value::Object(mut fields) = body else {
        return Err(bad("expected { message, sender, clientId? }"));
    };
    let sender = match fields.remove("sender") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(bad(
                "expected { message, sender, clientId? }: sender is a name",
            ));
        }
    };
    crate::auth::validate_username(&sender).map_err(|e| bad(format!("sender: {e}")))?;
    if fields.contains_key("room") {
        return Err(bad("the room is in the path, not the body"));
    }
    fields.insert("room".to_owned(), Value::String(room));
    let payload = protocol::SendRequest::deserialize(Value::Object(fields));
    let req = protocol::parse_send_request(
        payload.map_err(|e| e.to_string()),
        state.limits.max_message_bytes,
    )
    .map_err(|f| ApiError::new(f.code, f.message))?;
    let writer = state
        .writer
        .get()
        .ok_or_else(|| ApiError::new(Code::Unavailable, "the server is starting"))?;
    let sender = format!("{SERVICE_MARK}{sender}");
    let message = session::seal(&state, req.room, &sender, req.message, req.client_id)
        .map_err(|f| ApiError::new(f.code, f.message))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    writer
        .submit(
            message,
            Box::new(move |outcome: Result<&Appended, Unavailable>| {
                let _ = tx.send(outcome.cloned());
            }),
        )
        .await;
    let unavailable = || {
        ApiError::new(
            Code::Unavailable,
            "the message store is unavailable; retry with the same clientId",
        )
    };
    let (status, stored) = match rx.await.map_err(|_| unavailable())? {
        Ok(Appended::New(m)) => (StatusCode::CREATED, m),
        Ok(Appended::Duplicate(m)) => (StatusCode::OK, m),
        Ok(Appended::Forbidden) => {
            return Err(ApiError::new(
                Code::Forbidden,
                "a private room is for members",
            ));
        }
        // The writer seals again under a new epoch and retries; this is
        // left only if the room's epoch kept changing under it.
        Ok(Appended::StaleEpoch { .. }) | Err(Unavailable) => return Err(unavailable()),
    };
    let body = serde_json::json!({
        "ok": true, "id": stored.id, "seq": stored.seq, "ts": stored.ts, "sender": stored.sender,
    });
    Ok((status, Json(body)).into_response())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::BadRequest, message)
}
