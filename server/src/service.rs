//! `/encrypt` and `/decrypt`: the tutorial microservice's API, kept as a
//! drop-in, sealing with real envelopes (DESIGN §2: room `""` unless one is
//! given, the caller's `context` string as context).
//!
//! These endpoints are a decryption oracle for anyone who can reach them, so
//! they always need the service token (`Authorization: Bearer …`): the
//! listen address says nothing about who calls (a reverse proxy on the same
//! host is a loopback client). See [`crate::keys::service_token`].

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chatseal_core::{Room, Zeroizing};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{ApiError, Code, JsonBody};

/// The service token `/encrypt` and `/decrypt` require, and where it was
/// read from (for the start-up log; never the token itself).
/// (The publish API's token is one too, with its own routes.)
#[derive(Clone)]
pub struct ServiceAuth {
    token: Zeroizing<String>,
    source: String,
    routes: &'static str,
}

impl ServiceAuth {
    /// `token` must not be empty (an empty bearer would match an empty header).
    pub fn new(token: Zeroizing<String>, source: impl Into<String>) -> Self {
        Self::for_routes(token, source, "/encrypt and /decrypt")
    }

    /// A token for other `routes` (named in the start-up log).
    pub fn for_routes(
        token: Zeroizing<String>,
        source: impl Into<String>,
        routes: &'static str,
    ) -> Self {
        assert!(!token.is_empty(), "the service token is empty");
        ServiceAuth {
            token,
            source: source.into(),
            routes,
        }
    }

    /// One sentence for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "{} require the service token (Authorization: Bearer …) from {}",
            self.routes, self.source
        )
    }

    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq::constant_time_eq(given.as_bytes(), self.token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Unauthorized,
                "missing or wrong service token",
            ))
        }
    }
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuth")
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .field("routes", &self.routes)
            .finish()
    }
}

#[derive(Deserialize)]
pub(crate) struct EncryptRequest {
    message: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    context: String,
    /// The room's key epoch (docs/format.md §1); 0 when absent.
    #[serde(default)]
    epoch: u32,
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
    /// The room's key epoch (docs/format.md §1); 0 when absent.
    #[serde(default)]
    epoch: u32,
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
    let encrypted = state.sealer.seal_text(
        Room::at(&req.room, req.epoch),
        req.context.as_bytes(),
        req.message.as_bytes(),
    )?;
    drop(Zeroizing::new(req.message)); // wipe the plaintext copy
    Ok(Json(EncryptResponse { encrypted }).into_response())
}

pub(crate) async fn decrypt(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<DecryptRequest>,
) -> Result<Response, ApiError> {
    state.service_auth.check(&headers)?;
    let plaintext = state.sealer.open_text(
        Room::at(&req.room, req.epoch),
        req.context.as_bytes(),
        &req.encrypted,
    )?;
    let message = std::str::from_utf8(&plaintext)
        .map_err(|_| ApiError::new(Code::BadRequest, "the plaintext is not UTF-8 text"))?;
    // Serialized into the response body here; `plaintext` is wiped on drop.
    Ok(Json(DecryptResponse { message }).into_response())
}
