//! Owners' changes to a room: removing a member, a new key epoch,
//! deleting the room.

use super::{Result, Store, Within as _};

/// The most key epochs a room may have. Every join hands out the keys of
/// all of a room's epochs (its members may read all its history), so their
/// number is bounded like every other size a client is sent: at 1,000 and
/// two master keys a join ack carries about 140 KB of keys.
pub const MAX_EPOCH: u32 = 1000;

/// What [`Store::remove_member`] and [`Store::new_epoch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochChange {
    /// Done; the room is now at this epoch.
    Now(u32),
    /// `remove_member`: the account was not a member (nothing changed).
    NotMember,
    /// The room has no row (nothing changed).
    NoRoom,
    /// The room is at [`MAX_EPOCH`] (nothing changed).
    Exhausted,
}

impl Store {
    /// Removes `username` from `room`'s members and starts the room's next
    /// key epoch, in one transaction: from its commit on, the store takes
    /// only messages sealed under the new epoch (see `append_batch`), whose
    /// key the removed account was never given.
    pub async fn remove_member(&self, room: &str, username: &str) -> Result<EpochChange> {
        let mut tx = self.write_tx().await?;
        let removed = sqlx::query("DELETE FROM chat_members WHERE room = $1 AND username = $2")
            .bind(room)
            .bind(username)
            .execute(&mut *tx)
            .within(self.timeout)
            .await?
            .rows_affected();
        if removed != 1 {
            return Ok(EpochChange::NotMember);
        }
        let change = next_epoch(&mut tx, room).await?;
        if let EpochChange::Now(_) = change {
            tx.commit().within(self.timeout).await?;
        }
        Ok(change)
    }

    /// Starts `room`'s next key epoch (an owner's reset).
    pub async fn new_epoch(&self, room: &str) -> Result<EpochChange> {
        let mut tx = self.write_tx().await?;
        let change = next_epoch(&mut tx, room).await?;
        if let EpochChange::Now(_) = change {
            tx.commit().within(self.timeout).await?;
        }
        Ok(change)
    }

    /// The room's current key epoch (0 for a room with no row).
    pub async fn room_epoch(&self, room: &str) -> Result<u32> {
        let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM chat_rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(epoch.and_then(|e| u32::try_from(e).ok()).unwrap_or(0))
    }

    /// Deletes a room's messages and members, in one transaction; returns
    /// how many messages were deleted. The row stays, ownerless, with its
    /// counter and its privacy: seqs never repeat under one `historyId`, a
    /// deleted private room has no members (no one may join it again), and
    /// a used name can never be made private (its old readers hold its key).
    pub async fn delete_room(&self, room: &str) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let messages = sqlx::query("DELETE FROM chat_messages WHERE room = $1")
            .bind(room)
            .execute(&mut *tx)
            .within(self.timeout)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM chat_members WHERE room = $1")
            .bind(room)
            .execute(&mut *tx)
            .within(self.timeout)
            .await?;
        sqlx::query("UPDATE chat_rooms SET owner = NULL WHERE name = $1")
            .bind(room)
            .execute(&mut *tx)
            .within(self.timeout)
            .await?;
        tx.commit().within(self.timeout).await?;
        Ok(messages)
    }
}

/// Moves `room` to its next epoch within `tx`; the caller commits on `Now`.
async fn next_epoch(tx: &mut sqlx::Transaction<'_, sqlx::Any>, room: &str) -> Result<EpochChange> {
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE chat_rooms SET epoch = epoch + 1 WHERE name = $1 AND epoch < $2 RETURNING epoch",
    )
    .bind(room)
    .bind(i64::from(MAX_EPOCH))
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(epoch) = epoch {
        return Ok(EpochChange::Now(u32::try_from(epoch).unwrap_or(MAX_EPOCH)));
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM chat_rooms WHERE name = $1")
        .bind(room)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if exists.is_some() {
        EpochChange::Exhausted
    } else {
        EpochChange::NoRoom
    })
}
