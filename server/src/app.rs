//! The application state and the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chatseal_core::Sealer;

use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::service::{self, ServiceAuth};

/// Size limits (DESIGN §3), set explicitly rather than left to library
/// defaults, which differ between the Node and Rust stacks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_payload_bytes: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            max_payload_bytes: config.max_payload_bytes,
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub sealer: Sealer,
    pub service_auth: ServiceAuth,
    pub limits: Limits,
}

pub type AppState = Arc<Shared>;

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/encrypt", post(service::encrypt))
        .route("/decrypt", post(service::decrypt))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_payload_bytes))
        .with_state(state)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route")
}
