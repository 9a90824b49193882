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
//! * [`error`]: the one error type and its JSON form.

pub mod app;
pub mod config;
pub mod error;
pub mod keys;
pub mod logging;
pub mod service;

use std::sync::Arc;

use axum::serve::ListenerExt as _;
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

/// Builds the shared state from `config` (loading or creating the keyring).
pub fn state(config: &Config) -> anyhow::Result<app::AppState> {
    let keyring = keys::load(config)?;
    let service_auth = service::ServiceAuth::new(
        config.service_token.clone(),
        config.listen.ip().is_loopback(),
    );
    Ok(Arc::new(app::Shared {
        sealer: Sealer::new(keyring),
        service_auth,
        limits: app::Limits::from_config(config),
    }))
}

/// Runs the server until SIGINT or SIGTERM; requests in flight finish.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let state = state(&config)?;
    tracing::info!("{}", state.service_auth.describe());
    let listener = bind(config.listen)?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Without it small Socket.IO frames wait ~40 ms for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!(%addr, "listening");
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
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
