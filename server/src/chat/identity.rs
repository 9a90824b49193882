//! Who a socket speaks for, settled once in the handshake.
//!
//! `auth` is `{ token }` (an account's JWT) or, where the operator allows
//! guests, `{ name }` — or nothing, as the tutorial's client connects, which
//! makes an anonymous guest. A refusal becomes the `connect_error` message
//! `"<CODE>: <why>"`, the one place both servers put the code.

use serde_json::Value;

use crate::app::Shared;
use crate::auth::{self, TokenError};
use crate::error::Code;

/// Marks a guest's sender name: `~` is no account name's character, so a
/// guest `dave` (sender `~dave`) and the account `dave` never collide, in
/// `Message.sender`, in the envelope's context or in dedup.
pub const GUEST_MARK: char = '~';

/// Who a socket speaks for. The string is the sender name other clients
/// see: the account's name, or `~` and the guest's chosen name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Account(String),
    Guest(String),
}

impl Identity {
    /// A guest that chose `name` (already checked against the name rules).
    pub fn guest(name: &str) -> Identity {
        Identity::Guest(format!("{GUEST_MARK}{name}"))
    }

    /// The sender name: what `Message.sender` and the context carry.
    pub fn name(&self) -> &str {
        match self {
            Identity::Account(n) | Identity::Guest(n) => n,
        }
    }

    pub fn is_guest(&self) -> bool {
        matches!(self, Identity::Guest(_))
    }
}

/// A refused handshake. Its text is what the client reads in `connect_error`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Refused {
    pub code: Code,
    pub message: String,
}

fn refuse(code: Code, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

/// Settles the identity of a connecting client from its `auth` payload,
/// and when its session ends (a token's `exp`; `None` for guests).
pub async fn authenticate(
    state: &Shared,
    auth: Option<Value>,
) -> Result<(Identity, Option<u64>), Refused> {
    let auth = match auth {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(refuse(Code::BadRequest, "auth must be an object")),
    };
    if let Some(token) = auth.get("token") {
        let token = token
            .as_str()
            .ok_or_else(|| refuse(Code::BadRequest, "auth.token must be a string"))?;
        return account_of(state, token)
            .await
            .map(|v| (Identity::Account(v.username), Some(v.expires_at)));
    }
    if !state.allow_guests {
        return Err(refuse(
            Code::Unauthorized,
            "this server needs a token: log in at /api/login",
        ));
    }
    let name = match auth.get("name") {
        None => format!("guest-{:06x}", rand_suffix()),
        Some(Value::String(name)) => {
            auth::validate_username(name).map_err(|m| refuse(Code::BadRequest, m))?;
            name.clone()
        }
        Some(_) => return Err(refuse(Code::BadRequest, "auth.name must be a string")),
    };
    // Guests are marked apart, so names cannot collide; still, a guest may
    // not choose an account's name in any case, which would look like it.
    match state.store.account_name_taken(&name).await {
        Ok(false) => Ok((Identity::guest(&name), None)),
        Ok(true) => Err(refuse(
            Code::Forbidden,
            "that name belongs to an account: log in instead",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "handshake: store unavailable");
            Err(refuse(Code::Unavailable, "try again shortly"))
        }
    }
}

/// The account a token speaks for: a valid signature, a `sub` within the
/// name rules (checked by [`auth::Tokens::verify`]) and an account that
/// exists. Used by the handshake, `refresh` and the HTTP API. A token of
/// the configured identity provider is the provider's to check
/// ([`crate::oidc`]).
pub async fn account_of(state: &Shared, token: &str) -> Result<auth::Verified, Refused> {
    if let Some(oidc) = state.oidc.as_ref().filter(|o| o.owns(token)) {
        return oidc
            .account_of(&state.store, token)
            .await
            .map_err(|(code, message)| refuse(code, message));
    }
    let verified = state.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired | TokenError::Invalid => refuse(Code::Unauthorized, e.to_string()),
    })?;
    match state.store.account_state(&verified.username).await {
        Ok(None) => Err(refuse(Code::Unauthorized, "no such account")),
        Ok(Some(s)) if s.disabled => Err(refuse(Code::Unauthorized, "this account is disabled")),
        // A password reset (or a disable) revokes what was issued up to its
        // second: `iat` has whole seconds, so a token of that same second
        // may be from before it. A token without `iat` cannot show it is newer.
        Ok(Some(s)) if s.tokens_after > 0 && verified.issued_at.unwrap_or(0) <= s.tokens_after => {
            Err(refuse(
                Code::Unauthorized,
                "this session was revoked (password reset): log in again",
            ))
        }
        Ok(Some(_)) => Ok(verified),
        Err(e) => {
            tracing::warn!(error = %e, "token check: store unavailable");
            Err(refuse(Code::Unavailable, "try again shortly"))
        }
    }
}

fn rand_suffix() -> u32 {
    use rand_core::{OsRng, TryRngCore as _};
    OsRng.try_next_u32().unwrap_or_default() & 0xff_ffff
}
