//! The application state and the router.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chatseal_core::Sealer;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Tokens;
use crate::chat::adapter::Io;
use crate::chat::rooms::RoomLocks;
use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::service::{self, ServiceAuth};
use crate::store::Store;
use crate::{accounts, client, directory, history, publish};

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
            max_payload_bytes: config
                .max_payload_bytes
                .max(packet_limit(config.max_message_bytes)),
        }
    }
}

/// The largest packet a message of `max_message` bytes can make: JSON
/// escapes one byte to at most six (`\u0001`), plus the room, `clientId` and
/// framing. The packet limit never goes below it, or a valid message would
/// end the connection without an ack (js/lib/config.js computes the same).
pub const fn packet_limit(max_message: usize) -> usize {
    max_message.saturating_mul(6).saturating_add(4096)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_payload_bytes: packet_limit(64 * 1024),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct Shared {
    pub sealer: Sealer,
    pub store: Store,
    pub tokens: Tokens,
    pub service_auth: ServiceAuth,
    /// The publish API's token (always set by [`crate::state`]); state built
    /// without one (tests, embedders) has the API off: 401 to all.
    pub publish_auth: Option<ServiceAuth>,
    pub limits: Limits,
    pub registration: crate::config::Registration,
    pub allow_guests: bool,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub history_limit: u32,
    pub socket_buffer: usize,
    pub client_dir: Option<PathBuf>,
    pub room_locks: RoomLocks,
    pub metrics: PrometheusHandle,
    /// Set once the Socket.IO layer exists (it needs this state first).
    pub io: OnceLock<Io>,
    /// Where the Socket.IO layer's adapter makes itself known (see
    /// [`crate::chat::adapter`]).
    pub adapters: Arc<crate::chat::adapter::Adapters>,
    /// The message writer, started with the Socket.IO layer.
    pub writer: OnceLock<crate::chat::writer::Writer>,
    /// Set when several servers share the chat (`REDIS_URL`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Limits against floods and slow clients.
    pub guards: crate::guards::Guards,
    /// What each room was last told of who is online.
    pub presence: crate::chat::presence::Presence,
    /// Each room's key epoch, as this server last learnt it.
    pub epochs: crate::chat::epochs::Epochs,
    /// Tokens of an OpenID Connect provider, when one is configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl Shared {
    /// State with the defaults of the command line for everything but the
    /// parts given; tests and embedders adjust the public fields.
    pub fn new(sealer: Sealer, store: Store, tokens: Tokens, service_auth: ServiceAuth) -> Self {
        Shared {
            sealer,
            store,
            tokens,
            service_auth,
            publish_auth: None,
            limits: Limits::default(),
            registration: crate::config::Registration::Open,
            allow_guests: false,
            rate_per_sec: 20,
            rate_burst: 40,
            history_limit: 500,
            socket_buffer: 4096,
            client_dir: None,
            room_locks: RoomLocks::default(),
            metrics: crate::metrics::install(),
            io: OnceLock::new(),
            adapters: Arc::default(),
            writer: OnceLock::new(),
            cluster: None,
            guards: crate::guards::Guards::default(),
            presence: crate::chat::presence::Presence::default(),
            epochs: crate::chat::epochs::Epochs::default(),
            oidc: None,
        }
    }
}

pub type AppState = Arc<Shared>;

/// A server's state on a fresh SQLite file, for unit tests; the file goes
/// with the returned guard.
#[cfg(test)]
pub(crate) async fn test_state(tag: &str) -> (AppState, TestDb) {
    use chatseal_core::{Keyring, Sealer, Zeroizing};
    let path = std::env::temp_dir().join(format!(
        "chatseal-{tag}-{}-{}.db",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = crate::store::Store::connect(&url)
        .await
        .expect("a test store");
    let state = Arc::new(Shared::new(
        Sealer::new(Keyring::generate()),
        store,
        crate::auth::Tokens::new(
            &Zeroizing::new(vec![7u8; 32]),
            std::time::Duration::from_secs(60),
        ),
        crate::service::ServiceAuth::new(Zeroizing::new("s3cret".to_owned()), "the test"),
    ));
    (state, TestDb(path))
}

/// Removes a [`test_state`]'s database files when dropped.
#[cfg(test)]
pub(crate) struct TestDb(std::path::PathBuf);

#[cfg(test)]
impl Drop for TestDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// The HTTP routes, without the Socket.IO layer (see [`crate::chat::layer`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/encrypt", post(service::encrypt))
        .route("/decrypt", post(service::decrypt))
        .route("/api/register", post(accounts::register))
        .route("/api/login", post(accounts::login))
        .route(
            "/api/rooms",
            get(directory::list).post(accounts::create_room),
        )
        .route("/api/rooms/{room}", delete(accounts::delete_room))
        .route(
            "/api/rooms/{room}/members",
            get(directory::members).post(accounts::add_member),
        )
        .route(
            "/api/rooms/{room}/members/{username}",
            delete(accounts::remove_member),
        )
        .route("/api/rooms/{room}/reset-key", post(accounts::reset_key))
        .route(
            "/api/rooms/{room}/messages",
            get(history::messages).post(publish::publish),
        )
        .fallback(client::serve)
        .layer(DefaultBodyLimit::max(state.limits.max_payload_bytes))
        .with_state(state)
}

/// Liveness and readiness: 503 while the store cannot take messages (it
/// does not answer, its disk is full, or appends fail: see
/// [`crate::store::Store::health`]); with Redis down the server still
/// serves its own clients, so that is 200 with `"redis": "unavailable"`.
async fn healthz(State(state): State<AppState>) -> Response {
    let store =
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.health()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health: store unavailable");
                false
            }
            Err(_) => false,
        };
    let mut body = serde_json::json!({
        "status": if store { "ok" } else { "degraded" },
        "store": if store { "ok" } else { "unavailable" },
    });
    if let Some(cluster) = &state.cluster {
        body["redis"] = (if cluster.is_up() { "ok" } else { "unavailable" }).into();
    }
    if let Some(oidc) = &state.oidc {
        // Like Redis: the server serves its own accounts and guests without.
        body["oidc"] = (if oidc.has_keys() { "ok" } else { "unavailable" }).into();
    }
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route")
}
