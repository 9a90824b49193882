//! Structured logs with `tracing`. Handlers log ids, sizes and error codes,
//! never keys or plaintext.
//!
//! The libraries below the chat log whole frames and packets at debug and
//! trace (tungstenite and engineioxide: tokens, room keys, envelopes;
//! socketioxide and engineioxide: the session id, a bearer credential).
//! Every filter the server builds caps them ([`CAPPED`]), so no `RUST_LOG`
//! setting prints those.
//!
//! Text for people (coloured only on a terminal, and never with `NO_COLOR`),
//! or one JSON object a line for log pipelines (`--log-format json`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Crates whose debug/trace output carries secrets, and the most they may log.
pub const CAPPED: &[(&str, LevelFilter)] = &[
    ("tungstenite", LevelFilter::INFO),
    ("tokio_tungstenite", LevelFilter::INFO),
    ("engineioxide", LevelFilter::INFO),
    ("engineioxide_core", LevelFilter::INFO),
    ("socketioxide", LevelFilter::INFO),
    ("socketioxide_core", LevelFilter::INFO),
    ("socketioxide_parser_common", LevelFilter::INFO),
    // hyper's warn "read header from client timeout" would log every
    // slowloris connection; the server counts those itself.
    ("hyper", LevelFilter::ERROR),
    ("hyper_util", LevelFilter::ERROR),
    ("h2", LevelFilter::INFO),
    ("axum", LevelFilter::INFO),
    ("tower_http", LevelFilter::INFO),
    ("redis", LevelFilter::INFO),
    ("sqlx", LevelFilter::INFO),
];

/// The cap as a filter: everything else passes.
pub fn caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED.iter().copied())
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-01T00:00:00Z  INFO message key=value`
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":…,…}}`
    Json,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax
/// (`info`, `chatseal_server=debug`, …); [`caps`] applies on top of it.
pub fn init(filter: &str, format: LogFormat) {
    let mut env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // PostgreSQL NOTICEs ("relation … already exists, skipping" on every
    // start) arrive through sqlx at INFO; they are not news to an operator.
    // A filter that names sqlx itself decides for itself.
    if !filter.contains("sqlx") {
        env_filter = env_filter.add_directive(
            "sqlx::postgres::notice=warn"
                .parse()
                .expect("a valid directive"),
        );
    }
    let registry = tracing_subscriber::registry().with(env_filter).with(caps());
    let text = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => registry
            .with(text.with_ansi(
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            ))
            .try_init(),
        LogFormat::Json => registry.with(text.json().with_ansi(false)).try_init(),
    };
}
