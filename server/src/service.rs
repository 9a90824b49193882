//! `/encrypt` and `/decrypt`: the tutorial microservice's API, kept as a
//! drop-in, sealing with real envelopes (DESIGN §2: room `""` unless one is
//! given, the caller's `context` string as context).
//!
//! These endpoints are a decryption oracle for anyone who can reach them, so
//! they need a service token unless the server listens only on loopback.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chatseal_core::Zeroizing;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{ApiError, Code, JsonBody};

/// Who may call the service endpoints.
#[derive(Clone)]
pub enum ServiceAuth {
    /// Loopback-only listener and no token configured: anyone local.
    Loopback,
    /// `Authorization: Bearer <token>` required.
    Token(String),
    /// Listening beyond loopback without a token: refused.
    Disabled,
}

impl ServiceAuth {
    pub fn new(token: Option<String>, loopback_only: bool) -> Self {
        match token.filter(|t| !t.is_empty()) {
            Some(token) => Self::Token(token),
            None if loopback_only => Self::Loopback,
            None => Self::Disabled,
        }
    }

    /// One sentence for the start-up log.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Loopback => {
                "/encrypt and /decrypt are open to loopback clients (no service token set)"
            }
            Self::Token(_) => "/encrypt and /decrypt require the service token",
            Self::Disabled => {
                "/encrypt and /decrypt are disabled: listening beyond loopback without CHATSEAL_SERVICE_TOKEN"
            }
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            Self::Loopback => Ok(()),
            Self::Disabled => Err(ApiError::new(
                Code::Unauthorized,
                "service endpoints need CHATSEAL_SERVICE_TOKEN when not loopback-only",
            )),
            Self::Token(expected) => {
                let given = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                if constant_time_eq::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        Code::Unauthorized,
                        "missing or wrong service token",
                    ))
                }
            }
        }
    }
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "Loopback",
            Self::Token(_) => "Token(<redacted>)",
            Self::Disabled => "Disabled",
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct EncryptRequest {
    message: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    context: String,
}

#[derive(Serialize)]
struct EncryptResponse {
    encrypted: String,
}

#[derive(Deserialize)]
pub(crate) struct DecryptRequest {
    encrypted: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    context: String,
}

#[derive(Serialize)]
struct DecryptResponse<'a> {
    message: &'a str,
}

pub(crate) async fn encrypt(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<EncryptRequest>,
) -> Result<Response, ApiError> {
    state.service_auth.check(&headers)?;
    if req.message.len() > state.limits.max_message_bytes {
        return Err(ApiError::new(
            Code::TooLarge,
            format!(
                "message is larger than {} bytes",
                state.limits.max_message_bytes
            ),
        ));
    }
    let encrypted =
        state
            .sealer
            .seal_text(&req.room, req.context.as_bytes(), req.message.as_bytes())?;
    drop(Zeroizing::new(req.message)); // wipe the plaintext copy
    Ok(Json(EncryptResponse { encrypted }).into_response())
}

pub(crate) async fn decrypt(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<DecryptRequest>,
) -> Result<Response, ApiError> {
    state.service_auth.check(&headers)?;
    let plaintext = state
        .sealer
        .open_text(&req.room, req.context.as_bytes(), &req.encrypted)?;
    let message = std::str::from_utf8(&plaintext)
        .map_err(|_| ApiError::new(Code::BadRequest, "the plaintext is not UTF-8 text"))?;
    // Serialized into the response body here; `plaintext` is wiped on drop.
    Ok(Json(DecryptResponse { message }).into_response())
}
