//! Accounts over HTTP: register, log in (JWT), create rooms, invite members.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::app::AppState;
use crate::auth;
use crate::error::{ApiError, Code, JsonBody};
use crate::login_limit::RetryAfter;
use crate::serve::ClientIp;
use crate::store::{EpochChange, MAX_EPOCH, StoreError};

/// The account an `Authorization: Bearer <JWT>` header speaks for.
#[derive(Debug)]
pub struct Caller(pub String);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    Code::Unauthorized,
                    "log in and send Authorization: Bearer <token>",
                )
            })?;
        crate::chat::identity::account_of(state, token)
            .await
            .map(|v| Caller(v.username))
            .map_err(|r| ApiError::new(r.code, r.message))
    }
}

/// `Option<Caller>`: no `Authorization` header is `None`; a header that is
/// not a valid account token is refused as for [`Caller`].
impl axum::extract::OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(None);
        }
        <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store unavailable");
        ApiError::new(Code::Unavailable, "the store is unavailable; try again")
    }
}

/// `POST /api/register`: credentials, and an invitation code where
/// `--registration invite` asks for one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registration {
    username: String,
    password: Zeroizing<String>,
    #[serde(default)]
    invite: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("invite", &self.invite.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl From<crate::hashing::Busy> for ApiError {
    fn from(e: crate::hashing::Busy) -> Self {
        ApiError::new(Code::Unavailable, e.to_string()).retry_after(1)
    }
}

/// The login throttle (docs/operations.md, "Limits"): 429 with
/// `Retry-After` before any password is hashed.
fn throttle(state: &AppState, ip: ClientIp, account: Option<&str>) -> Result<(), ApiError> {
    state
        .guards
        .login
        .check(ip.0, account)
        .map_err(|RetryAfter(secs)| {
            ApiError::new(Code::RateLimited, "too many login attempts; retry later")
                .retry_after(secs)
        })
}

/// `POST /api/register {username, password}` → 201.
pub(crate) async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(creds): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    throttle(&state, ip, None)?;
    let invite = match (state.registration, creds.invite) {
        (crate::config::Registration::Closed, _) => {
            return Err(ApiError::new(
                Code::Forbidden,
                "registration is closed: an operator creates accounts (chatseal-server users add)",
            ));
        }
        (crate::config::Registration::Invite, None) => {
            return Err(ApiError::new(
                Code::Forbidden,
                "registration needs an invitation: send { username, password, invite }",
            ));
        }
        (crate::config::Registration::Invite, Some(code)) => Some(crate::users::code_hash(&code)),
        (crate::config::Registration::Open, _) => None,
    };
    auth::validate_username(&creds.username).map_err(|m| ApiError::new(Code::BadRequest, m))?;
    if let Some(oidc) = &state.oidc {
        oidc.may_register(&creds.username)
            .map_err(|m| ApiError::new(Code::BadRequest, m))?;
    }
    auth::validate_password(&creds.password).map_err(|m| ApiError::new(Code::BadRequest, m))?;
    let hash = state.guards.hasher.hash(creds.password).await?;
    let now = auth::unix_now().as_millis() as i64;
    match invite {
        None => {
            if !state.store.create_user(&creds.username, &hash, now).await? {
                return Err(ApiError::new(Code::BadRequest, "that username is taken"));
            }
        }
        Some(code_hash) => {
            use crate::store::Invited;
            match state
                .store
                .create_user_invited(&creds.username, &hash, &code_hash, now)
                .await?
            {
                Invited::Created => {}
                Invited::NameTaken => {
                    return Err(ApiError::new(Code::BadRequest, "that username is taken"));
                }
                Invited::BadInvite => {
                    return Err(ApiError::new(
                        Code::Forbidden,
                        "that invitation is unknown, used up or expired",
                    ));
                }
            }
        }
    }
    tracing::info!(user = %creds.username, "account registered");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "username": creds.username })),
    )
        .into_response())
}

/// `POST /api/login {username, password}` → `{token, expiresAt}`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(creds): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    throttle(&state, ip, Some(&creds.username))?;
    let stored = if auth::validate_username(&creds.username).is_ok() {
        state.store.password_hash(&creds.username).await?
    } else {
        None
    };
    let ok = state.guards.hasher.verify(creds.password, stored).await?;
    if !ok {
        state.guards.login.failed(&creds.username);
        return Err(ApiError::new(
            Code::Unauthorized,
            "wrong username or password",
        ));
    }
    let (token, expires_at) = state.tokens.issue(&creds.username);
    Ok(Json(serde_json::json!({ "token": token, "expiresAt": expires_at })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRoom {
    name: String,
    #[serde(default)]
    private: bool,
}

/// `POST /api/rooms {name, private?}` → 201; the caller owns the room.
pub(crate) async fn create_room(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(room): JsonBody<NewRoom>,
) -> Result<Response, ApiError> {
    chatseal_core::validate_chat_room(&room.name)?;
    if room.name == crate::chat::protocol::LOBBY {
        // Every socket is in the lobby from connect on: it has no owner.
        return Err(ApiError::new(
            Code::Forbidden,
            "lobby is reserved: every client is in it",
        ));
    }
    if !state
        .store
        .create_room(&room.name, &caller, room.private)
        .await?
    {
        // Someone has posted to it (or created it): it is theirs, or
        // nobody's (a room made by its first message has no owner), and
        // claiming it would take it from its readers.
        let message = if room.private {
            "that room name has been used: it cannot become private; choose a new name"
        } else {
            "that room exists already"
        };
        return Err(ApiError::new(Code::Conflict, message));
    }
    if room.private {
        // A silent name may have sockets in it (joins write nothing), and
        // they were given its epoch-0 key: out they go, and the room seals
        // under epoch 1 (`Store::create_room`), which only members get.
        crate::chat::rooms::put_out_non_members(&state, &room.name, &caller).await;
        crate::chat::rooms::announce_epoch(&state, &room.name, 1).await;
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "name": room.name, "private": room.private, "owner": caller })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invite {
    username: String,
}

/// `POST /api/rooms/:room/members {username}`: the owner invites.
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(room): Path<String>,
    JsonBody(invite): JsonBody<Invite>,
) -> Result<Response, ApiError> {
    let info = state
        .store
        .room(&room)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such room"))?;
    if info.owner.as_deref() != Some(caller.as_str()) {
        return Err(ApiError::new(
            Code::Forbidden,
            "only the room's owner invites",
        ));
    }
    if state.store.password_hash(&invite.username).await?.is_none() {
        return Err(ApiError::new(Code::NotFound, "no such user"));
    }
    state.store.add_member(&room, &invite.username).await?;
    Ok(Json(serde_json::json!({ "ok": true })).into_response())
}

/// The room, if `caller` owns it: 404 without a row, 403 for others.
async fn owned_room(
    state: &AppState,
    caller: &str,
    room: &str,
) -> Result<crate::store::RoomInfo, ApiError> {
    chatseal_core::validate_chat_room(room)?;
    let info = state
        .store
        .room(room)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such room"))?;
    if info.owner.as_deref() != Some(caller) {
        return Err(ApiError::new(
            Code::Forbidden,
            "only the room's owner may do that",
        ));
    }
    Ok(info)
}

/// `DELETE /api/rooms/:room/members/:username`: the owner removes a member.
/// Its sockets leave the room at once (on every server of a cluster within
/// seconds); it can no longer join, read the history or post. The room
/// starts a new key epoch in the same transaction: what the member already
/// received it keeps, but nothing sealed from now on opens with the keys it
/// holds, even read straight from the database. The members still in get
/// the new key as `room key` (other servers' members when the notice
/// reaches their server, or at their next join).
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((room, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let info = owned_room(&state, &caller, &room).await?;
    if !info.private {
        return Err(ApiError::new(
            Code::BadRequest,
            "a public room has no members to remove: anyone may join it",
        ));
    }
    if username == caller {
        return Err(ApiError::new(
            Code::BadRequest,
            "the owner stays a member (delete the room instead)",
        ));
    }
    let epoch = match state.store.remove_member(&room, &username).await? {
        EpochChange::Now(epoch) => epoch,
        EpochChange::NotMember => {
            return Err(ApiError::new(Code::NotFound, "not a member of that room"));
        }
        EpochChange::NoRoom => return Err(ApiError::new(Code::NotFound, "no such room")),
        EpochChange::Exhausted => return Err(epochs_exhausted()),
    };
    let put_out = crate::chat::rooms::put_out(&state, &room, Some(&username)).await;
    crate::chat::rooms::announce_epoch(&state, &room, epoch).await;
    tracing::info!(put_out, epoch, "member removed from a room");
    Ok(Json(serde_json::json!({ "ok": true, "epoch": epoch })).into_response())
}

/// `POST /api/rooms/:room/reset-key`: the owner starts the room's next key
/// epoch without changing its members (say, after a member's device was
/// lost): messages from now on are sealed under a key only those in the
/// room now are given. Answers `{ room, epoch }`.
pub(crate) async fn reset_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    owned_room(&state, &caller, &room).await?;
    let epoch = match state.store.new_epoch(&room).await? {
        EpochChange::Now(epoch) => epoch,
        EpochChange::NotMember | EpochChange::NoRoom => {
            return Err(ApiError::new(Code::NotFound, "no such room"));
        }
        EpochChange::Exhausted => return Err(epochs_exhausted()),
    };
    crate::chat::rooms::announce_epoch(&state, &room, epoch).await;
    if let Some(cluster) = &state.cluster {
        cluster.publish_room_changed(&room);
    }
    tracing::info!(epoch, "room key reset by its owner");
    Ok(Json(serde_json::json!({ "room": room, "epoch": epoch })).into_response())
}

fn epochs_exhausted() -> ApiError {
    ApiError::new(
        Code::Conflict,
        format!(
            "the room has had {MAX_EPOCH} key epochs, the most a room may have; \
             move its members to a new room"
        ),
    )
}

/// `DELETE /api/rooms/:room`: the owner deletes the room **and its whole
/// history**, for good. The name stays used: a deleted private room has no
/// members (every socket is put out and no one may join it again); a
/// deleted public room goes on empty, numbered on from where it was.
pub(crate) async fn delete_room(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    let info = owned_room(&state, &caller, &room).await?;
    let deleted = state.store.delete_room(&room).await?;
    // A deleted private room is closed to all; a public one goes on, empty
    // (its readers stay, on every server alike).
    let put_out = if info.private {
        crate::chat::rooms::put_out(&state, &room, None).await
    } else {
        0
    };
    tracing::info!(deleted, put_out, "room deleted with its history");
    Ok(Json(serde_json::json!({ "ok": true, "deletedMessages": deleted })).into_response())
}
