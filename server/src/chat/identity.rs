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

/// The sender name other clients see, and whether it is an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Account(String),
    Guest(String),
}

impl Identity {
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

/// Settles the identity of a connecting client from its `auth` payload.
pub async fn authenticate(state: &Shared, auth: Option<Value>) -> Result<Identity, Refused> {
    let auth = match auth {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(refuse(Code::BadRequest, "auth must be an object")),
    };
    if let Some(token) = auth.get("token") {
        let token = token
            .as_str()
            .ok_or_else(|| refuse(Code::BadRequest, "auth.token must be a string"))?;
        return match state.tokens.verify(token) {
            Ok(name) => Ok(Identity::Account(name)),
            Err(e @ (TokenError::Expired | TokenError::Invalid)) => {
                Err(refuse(Code::Unauthorized, e.to_string()))
            }
        };
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
    // A guest may not speak under an account's name.
    match state.store.password_hash(&name).await {
        Ok(None) => Ok(Identity::Guest(name)),
        Ok(Some(_)) => Err(refuse(
            Code::Forbidden,
            "that name belongs to an account: log in instead",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "handshake: store unavailable");
            Err(refuse(Code::Unavailable, "try again shortly"))
        }
    }
}

fn rand_suffix() -> u32 {
    use rand_core::{OsRng, TryRngCore as _};
    OsRng.try_next_u32().unwrap_or_default() & 0xff_ffff
}
