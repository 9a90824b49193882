//! A `join`'s `missed`, paged by size as well as count.
//!
//! 500 messages of 64 KiB made a 43.8 MB ack for a 40-byte `join`. Here an
//! ack holds at most `max_bytes` of messages (and always at least one, so a
//! client can always make progress), read from the store in pages of
//! [`PAGE`] so that no more than a page is in memory beyond the ack. A
//! client whose `missed` ends below `latestSeq` joins again with the last
//! `seq` it got.

use crate::app::AppState;
use crate::store::{Result, StoredMessage};

/// Messages read from the store at a time.
pub const PAGE: i64 = 50;

/// What one message adds to an ack: its envelope and fields, JSON-framed.
pub fn size(m: &StoredMessage) -> usize {
    m.message.len() + m.id.len() + m.room.len() + m.sender.len() + 96
}

/// The oldest messages after `since`: at most `limit`, at most `max_bytes`.
pub async fn after(
    state: &AppState,
    room: &str,
    since: i64,
    limit: i64,
    max_bytes: usize,
) -> Result<Vec<StoredMessage>> {
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut cursor = since;
    while (out.len() as i64) < limit {
        let want = PAGE.min(limit - out.len() as i64);
        let page = state.store.messages(room, cursor, None, want).await?;
        let full = page.len() as i64 == want;
        for m in page {
            bytes += size(&m);
            if bytes > max_bytes && !out.is_empty() {
                return Ok(out);
            }
            cursor = m.seq;
            out.push(m);
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// The newest `limit` messages, as many of them as fit in `max_bytes`,
/// oldest first.
pub async fn latest(
    state: &AppState,
    room: &str,
    limit: i64,
    max_bytes: usize,
) -> Result<Vec<StoredMessage>> {
    let mut newest_first = Vec::new();
    let mut bytes = 0;
    let mut before = None;
    'pages: while (newest_first.len() as i64) < limit {
        let want = PAGE.min(limit - newest_first.len() as i64);
        let page = state.store.latest_messages(room, before, want).await?;
        let full = page.len() as i64 == want;
        for m in page.into_iter().rev() {
            bytes += size(&m);
            if bytes > max_bytes && !newest_first.is_empty() {
                break 'pages;
            }
            before = Some(m.seq);
            newest_first.push(m);
        }
        if !full {
            break;
        }
    }
    newest_first.reverse();
    Ok(newest_first)
}
