//! `GET /api/rooms/:room/messages?after=&before=&limit=`: a room's stored
//! envelopes for accounts that may read it, paged by `seq`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::accounts::Caller;
use crate::app::AppState;
use crate::chat::identity::Identity;
use crate::chat::rooms;
use crate::error::{ApiError, Code};
use crate::store::StoredMessage;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// Ascending by `seq`. With `after`, the oldest messages after it (walk
/// forward with the last `seq`); without, the newest before `before`.
pub(crate) async fn messages(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(room): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<StoredMessage>>, ApiError> {
    let Query(page) = page?;
    chatseal_core::validate_chat_room(&room)?;
    rooms::check_access(&state, &Identity::Account(caller), &room)
        .await
        .map_err(|f| ApiError::new(f.code, f.message))?;
    let max = i64::from(state.history_limit);
    let limit = page.limit.unwrap_or(max);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("limit is 1 to {max}"),
        ));
    }
    let messages = match page.after {
        Some(after) => {
            state
                .store
                .messages(&room, after, page.before, limit)
                .await?
        }
        None => {
            state
                .store
                .latest_messages(&room, page.before, limit)
                .await?
        }
    };
    Ok(Json(messages))
}
