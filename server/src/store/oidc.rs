//! What a token of an identity provider is checked against (`crate::oidc`).

use sqlx::Row as _;

use super::{AccountState, Result, Store, Within as _};

impl Store {
    /// An account's password column (for a provider's user, `oidc:` and its
    /// issuer) and its state, disabled or not: one read per token check.
    pub async fn account_with_state(
        &self,
        username: &str,
    ) -> Result<Option<(String, AccountState)>> {
        let row = sqlx::query(
            "SELECT u.password_hash AS hash, COALESCE(s.disabled, 0) AS disabled, \
             COALESCE(s.tokens_after, 0) AS after \
             FROM chat_users u LEFT JOIN chat_user_state s ON s.username = u.username \
             WHERE u.username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .within(self.timeout)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get::<String, _>("hash")?,
                AccountState {
                    disabled: r.try_get::<i64, _>("disabled")? != 0,
                    tokens_after: u64::try_from(r.try_get::<i64, _>("after")?).unwrap_or(0),
                },
            ))
        })
        .transpose()
    }
}
