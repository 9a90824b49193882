//! Accounts as operators manage them (`chatseal-server users …`): disabled
//! accounts, sessions revoked by a password reset, and invitations.
//!
//! Kept beside `chat_users` in tables of their own (`chat_user_state`,
//! `chat_invites`), so the schema grows by `CREATE TABLE IF NOT EXISTS`
//! alone and older servers sharing the database keep working.

use super::{Result, Store, Within as _};

/// What a session token is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub disabled: bool,
    /// Tokens issued before this (unix seconds) are refused: the password
    /// was reset (or the account disabled) then.
    pub tokens_after: u64,
}

/// The outcome of [`Store::create_user_invited`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invited {
    Created,
    NameTaken,
    /// No such code, used up or expired.
    BadInvite,
}

impl Store {
    /// An account's state; `None` if there is no such account.
    pub async fn account_state(&self, username: &str) -> Result<Option<AccountState>> {
        Ok(self
            .account_with_state(username)
            .await?
            .map(|(_, state)| state))
    }

    /// Sets a new password hash and revokes every token issued before `now`
    /// (unix seconds); false if there is no such account.
    pub async fn reset_password(&self, username: &str, hash: &str, now: i64) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let found = sqlx::query("UPDATE chat_users SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(&mut *tx)
            .within(self.timeout)
            .await?
            .rows_affected()
            == 1;
        if found {
            self.upsert_state(&mut tx, username, None, now).await?;
        }
        tx.commit().within(self.timeout).await?;
        Ok(found)
    }

    /// Disables (or enables) an account; disabling also revokes its tokens.
    /// False if there is no such account.
    pub async fn set_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM chat_users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .within(self.timeout)
            .await?;
        if found.is_some() {
            self.upsert_state(&mut tx, username, Some(disabled), now)
                .await?;
        }
        tx.commit().within(self.timeout).await?;
        Ok(found.is_some())
    }

    async fn upsert_state(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        username: &str,
        disabled: Option<bool>,
        now: i64,
    ) -> Result<()> {
        // Enabling again revokes nothing: tokens from before stay refused.
        let revoke = disabled != Some(false);
        sqlx::query(
            "INSERT INTO chat_user_state (username, disabled, tokens_after) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO UPDATE SET \
             disabled = CASE WHEN $4 = 1 THEN excluded.disabled ELSE chat_user_state.disabled END, \
             tokens_after = CASE WHEN $5 = 1 THEN excluded.tokens_after \
             ELSE chat_user_state.tokens_after END",
        )
        .bind(username)
        .bind(i64::from(disabled.unwrap_or(false)))
        .bind(if revoke { now } else { 0 })
        .bind(i64::from(disabled.is_some()))
        .bind(i64::from(revoke))
        .execute(&mut **tx)
        .within(self.timeout)
        .await?;
        Ok(())
    }

    /// Records an invitation: the SHA-256 of its code (never the code), how
    /// many accounts it may create, until when (unix ms).
    pub async fn create_invite(
        &self,
        code_hash: &str,
        uses: i64,
        expires: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_invites (code_hash, uses_left, expires, created) VALUES ($1, $2, $3, $4)",
        )
        .bind(code_hash)
        .bind(uses)
        .bind(expires)
        .bind(now)
        .execute(&self.pool)
        .within(self.timeout)
        .await?;
        Ok(())
    }

    /// Creates an account with an invitation, in one transaction: the
    /// invitation is used only if the account is made.
    pub async fn create_user_invited(
        &self,
        username: &str,
        password_hash: &str,
        code_hash: &str,
        now: i64,
    ) -> Result<Invited> {
        let mut tx = self.write_tx().await?;
        let used = sqlx::query(
            "UPDATE chat_invites SET uses_left = uses_left - 1 \
             WHERE code_hash = $1 AND uses_left > 0 AND expires > $2",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .within(self.timeout)
        .await?
        .rows_affected()
            == 1;
        if !used {
            tx.rollback().within(self.timeout).await?;
            return Ok(Invited::BadInvite);
        }
        let created = super::insert_user(&mut *tx, username, password_hash, now)
            .within(self.timeout)
            .await?;
        if !created {
            tx.rollback().within(self.timeout).await?;
            return Ok(Invited::NameTaken);
        }
        tx.commit().within(self.timeout).await?;
        Ok(Invited::Created)
    }
}
