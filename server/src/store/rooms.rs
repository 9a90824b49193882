//! Owners' changes to a room: removing a member, deleting the room.

use super::{Result, Store, Within as _};

impl Store {
    /// Removes `username` from `room`'s members; false if it was not one.
    pub async fn remove_member(&self, room: &str, username: &str) -> Result<bool> {
        let removed = sqlx::query("DELETE FROM chat_members WHERE room = $1 AND username = $2")
            .bind(room)
            .bind(username)
            .execute(&self.pool)
            .within(self.timeout)
            .await?
            .rows_affected();
        Ok(removed == 1)
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
