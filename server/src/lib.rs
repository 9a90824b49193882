//! # chatseal-server
//!
//! The chat backend in Rust. The binary (`src/main.rs`) only parses the
//! configuration and calls [`run`]; everything else is here so tests can
//! drive the same code.
//!
//! * [`config`]: flags and environment variables.
//! * [`keys`]: where the keyring comes from (env, file, or a generated dev one).
//! * [`app`]: shared state and the router.
//! * [`service`]: `/encrypt` and `/decrypt`, the tutorial service's API.
//! * [`chat`]: the Socket.IO chat protocol; [`cluster`]: several servers
//!   over PostgreSQL and Redis.
//! * [`store`]: SQLite or PostgreSQL.
//! * [`auth`], [`accounts`], [`history`], [`directory`], [`publish`]:
//!   accounts, tokens, history API, room directory, publish API; [`oidc`]:
//!   tokens of an identity provider.
//! * [`client`]: the browser client's files; [`metrics`]: Prometheus.
//! * [`error`]: the one error type and its JSON form; [`files`]: the data
//!   directory's modes.
//! * [`serve`]: the accept loop (header timeout, connection caps);
//!   [`guards`], [`hashing`], [`login_limit`], [`per_ip`], [`client_key`]: the limits
//!   against floods (docs/operations.md, "Limits").

pub mod accounts;
pub mod app;
pub mod auth;
pub mod chat;
pub mod client;
pub mod client_key;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod error;
pub mod fatal;
pub mod files;
pub mod guards;
pub mod hashing;
pub mod history;
pub mod keys;
pub mod logging;
pub mod login_limit;
pub mod metrics;
pub mod oidc;
pub mod per_ip;
pub mod publish;
pub mod serve;
pub mod service;
pub mod store;
pub mod users;

use std::sync::Arc;

use anyhow::Context as _;
use chatseal_core::Sealer;
use tokio::net::{TcpListener, TcpSocket};

pub use config::Config;

/// Connections the kernel queues before `accept`; tokio's default of 128
/// stalls connect bursts for a second (DESIGN §3).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listener with a large backlog.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Builds the shared state from `config`: the keyring (loaded or created),
/// the store (connected and migrated), the token secret.
pub async fn state(config: &Config) -> anyhow::Result<app::AppState> {
    config.validate()?;
    let (service_token, source) = keys::service_token(config)?;
    let service_auth = service::ServiceAuth::new(service_token, source);
    let (publish_token, source) = keys::publish_token(config)?;
    let publish_auth = service::ServiceAuth::for_routes(
        publish_token,
        source,
        "POST /api/rooms/:room/messages (the publish API)",
    );
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => {
            files::private_dir(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
            let db = config.data_dir.join("chatseal.db");
            files::private_database(&db)
                .with_context(|| format!("cannot create the database {}", db.display()))?;
            format!("sqlite://{}?mode=rwc", db.display())
        }
    };
    let timeout = std::time::Duration::from_millis(config.store_timeout_ms);
    let store = store::Store::connect_with(&url, timeout)
        .await
        .with_context(|| format!("cannot open the database {}", store::display_url(&url)))?;
    let backend = store.backend();
    tracing::info!(?backend, "store ready");
    // The store knows the keys its messages need: a keyring that lacks one,
    // or holds another key under its id, is refused (keys::guard).
    keys::guard::may_generate(config, &store).await?;
    let keyring = keys::load(config)?;
    keys::guard::at_start(&keyring, &keys::guard::source_of(config), &store).await?;
    let secret = keys::jwt_secret(config)?;
    let tokens = auth::Tokens::new(
        &secret,
        std::time::Duration::from_secs(config.token_ttl_secs),
    );
    let mut shared = app::Shared::new(Sealer::new(keyring), store, tokens, service_auth);
    shared.publish_auth = Some(publish_auth);
    shared.limits = app::Limits::from_config(config);
    shared.registration = config.registration;
    shared.allow_guests = config.allow_guests;
    shared.rate_per_sec = config.rate_per_sec;
    shared.rate_burst = config.rate_burst;
    shared.history_limit = config.history_limit.max(1);
    shared.socket_buffer = config.socket_buffer.max(16);
    shared.client_dir = config.client_dir.clone().or_else(client::default_dir);
    shared.guards = guards::Guards::from_config(config);
    if let Some(oidc) = oidc::Oidc::from_args(&config.oidc)? {
        oidc.start().await;
        shared.oidc = Some(oidc);
    }
    if let Some(url) = &config.redis_url {
        let cluster = cluster::Cluster::new(url, &config.redis_channel)?;
        // Every socket is in the lobby from its connect, without a `join`
        // to say where its delivery starts: the lobby's starts here, before
        // the first socket, and stays (see `Cluster::joined`).
        let lobby = chat::protocol::LOBBY;
        let latest = shared
            .store
            .latest_seq(lobby)
            .await
            .context("cannot read the lobby's latest seq from the database")?;
        cluster.joined(lobby, latest);
        shared.cluster = Some(Arc::new(cluster));
        tracing::info!(channel = %config.redis_channel, "cluster mode: fan-out over Redis");
    }
    Ok(Arc::new(shared))
}

/// The whole service: HTTP routes with the Socket.IO layer in front.
pub fn service(state: &app::AppState) -> axum::Router {
    let router = app::router(Arc::clone(state))
        .layer(chat::layer(state))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.guards.sessions),
            chat::sessions::admit,
        ))
        .layer(axum::middleware::from_fn(chat::detach::detach));
    cluster::start(state);
    router
}

/// Runs the server until SIGINT or SIGTERM. Events already received are
/// handled and acknowledged before sockets close.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let state = state(&config).await?;
    tracing::info!("{}", state.service_auth.describe());
    if let Some(publish) = &state.publish_auth {
        tracing::info!("{}", publish.describe());
    }
    if state.allow_guests {
        tracing::info!("guests may connect without an account");
    }
    match &state.client_dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "browser client served at /"),
        None => {
            tracing::info!("no browser client built (npm run build:client in js/); / answers 404")
        }
    }
    let listener =
        bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    spawn_reloader(Arc::clone(&state), config.clone());
    let watch = keys::watch::spawn(&state, &config);
    let app = service(&state);
    let drain = Arc::clone(&state);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = Arc::clone(&stopping);
    let serve = serve::serve(listener, app, state.guards.conn, async move {
        shutdown_signal().await;
        signalled.notify_one();
        chat::drain(&drain, std::time::Duration::from_secs(5)).await;
    });
    // A connection that will not close must not keep the process alive:
    // 10 s after the signal, it exits regardless.
    tokio::select! {
        served = serve => served?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        } => tracing::warn!("connections still open 10 s after the signal; exiting anyway"),
    }
    tracing::info!("connections closed; closing the store");
    watch.stop().await;
    if tokio::time::timeout(std::time::Duration::from_secs(5), state.store.close())
        .await
        .is_err()
    {
        tracing::warn!("the store did not close within 5 s");
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: reads the keyring again (a rotation by the operator), seals with
/// its primary from then on, and sends members the new room keys. Envelopes
/// under older keys keep opening while their keys are in the keyring. A
/// keyring that would lose a message is refused (keys::watch::install).
fn spawn_reloader(state: app::AppState, config: Config) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("no SIGHUP handler: keyring reload disabled");
            return;
        };
        let mut pending = None;
        while hup.recv().await.is_some() {
            let source = keys::guard::source_of(&config);
            let reloaded =
                match keys::reload_blocking(&config, keys::RELOAD_TIMEOUT, &mut pending).await {
                    Ok(keyring) => keys::watch::install(&state, keyring, &source, "SIGHUP").await,
                    Err(e) => Err(e),
                };
            if let Err(e) = reloaded {
                tracing::error!(error = %e, "keyring reload failed; keeping the current one")
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (state, config);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing requests in flight");
}
