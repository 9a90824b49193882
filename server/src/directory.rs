//! The room directory: `GET /api/rooms` (public rooms, and the caller's
//! private ones) and `GET /api/rooms/:room/members`, both paged by name.
//!
//! Paging is by name (`?after=<last name>&limit=`), so a page costs one
//! index range read however many rooms there are, and a listing stays
//! correct while rooms are created.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::accounts::Caller;
use crate::app::AppState;
use crate::chat::identity::Identity;
use crate::chat::rooms;
use crate::error::{ApiError, Code};

/// The default page, and the most one request may ask for.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
/// `after` is a room or account name: longer ones are never names.
const MAX_AFTER_BYTES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

impl Page {
    fn checked(self) -> Result<(String, i64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("limit is 1 to {MAX_LIMIT}"),
            ));
        }
        let after = self.after.unwrap_or_default();
        if after.len() > MAX_AFTER_BYTES {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("after is at most {MAX_AFTER_BYTES} bytes"),
            ));
        }
        Ok((after, limit))
    }
}

/// `{ items, next }`: `next` is the `after` of the following page, `null`
/// on the last one.
fn paged<T: serde::Serialize>(
    key: &str,
    items: Vec<T>,
    limit: i64,
    last: impl Fn(&T) -> String,
) -> Json<serde_json::Value> {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(&last))
        .flatten();
    Json(serde_json::json!({ key: items, "next": next }))
}

/// `GET /api/rooms?after=&limit=`: without a token, the public rooms (what
/// any guest may join anyway); with an account's token, its private rooms
/// too. A bad token is refused, never read as "no token".
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Option<Caller>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(page) = page?;
    let (after, limit) = page.checked()?;
    let viewer = caller.as_ref().map(|c| c.0.as_str());
    let rooms = state.store.list_rooms(viewer, &after, limit).await?;
    Ok(paged("rooms", rooms, limit, |r| r.name.clone()))
}

/// `GET /api/rooms/:room/members?after=&limit=`: an account reads the
/// members of a room it may read (a private room: its members only).
pub(crate) async fn members(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(room): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(page) = page?;
    let (after, limit) = page.checked()?;
    chatseal_core::validate_chat_room(&room)?;
    let info = state
        .store
        .room(&room)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such room"))?;
    rooms::check_access(&state, &Identity::Account(caller), &room)
        .await
        .map_err(|f| ApiError::new(f.code, f.message))?;
    let members = state.store.members_page(&room, &after, limit).await?;
    let Json(mut body) = paged("members", members, limit, String::clone);
    body["room"] = info.name.into();
    body["owner"] = info.owner.into();
    body["private"] = info.private.into();
    Ok(Json(body))
}
