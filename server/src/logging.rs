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

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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

/// The cap as a filter: nothing passes beyond `most`, nor a capped crate
/// beyond its cap.
pub fn caps(most: LevelFilter) -> Targets {
    Targets::new()
        .with_default(most)
        .with_targets(CAPPED.iter().map(|&(target, cap)| (target, cap.min(most))))
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
    let (env_filter, caps) = filters(filter);
    let registry = tracing_subscriber::registry().with(env_filter).with(caps);
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

/// The operator's filter and the caps under it. The caps pass everything
/// else up to the operator's most verbose level, not TRACE: a subscriber's
/// level hint is the most verbose of its filters', and `try_init` gives
/// that hint to the `log` crate, so a TRACE default let every `log::trace!`
/// of tungstenite (a few per frame) through to the dispatcher only to be
/// filtered out there — 3–4 % of the server's CPU under chat load (perf,
/// docs/benchmarks.md).
fn filters(filter: &str) -> (EnvFilter, Targets) {
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
    let most = Layer::<Registry>::max_level_hint(&env_filter).unwrap_or(LevelFilter::TRACE);
    (env_filter, caps(most))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Subscriber as _;

    /// What the `log` crate is told to pass (set from this hint by
    /// `try_init`) is what the operator asked for, whatever the caps.
    #[test]
    fn the_level_hint_is_the_operators() {
        for (filter, want) in [
            ("info", LevelFilter::INFO),
            ("warn", LevelFilter::WARN),
            ("chatseal_server=debug", LevelFilter::DEBUG),
            ("trace", LevelFilter::TRACE),
            ("chatseal_server=loud", LevelFilter::INFO),
        ] {
            let (env_filter, caps) = filters(filter);
            let subscriber = tracing_subscriber::registry().with(env_filter).with(caps);
            assert_eq!(subscriber.max_level_hint(), Some(want), "{filter}");
        }
    }

    /// The caps still hold at the most verbose setting.
    #[test]
    fn caps_hold_under_trace() {
        let (env_filter, caps) = filters("trace");
        let subscriber = tracing_subscriber::registry().with(env_filter).with(caps);
        let _guard = tracing::subscriber::set_default(subscriber);
        assert!(tracing::enabled!(target: "chatseal_server", tracing::Level::TRACE));
        assert!(!tracing::enabled!(target: "tungstenite", tracing::Level::DEBUG));
        assert!(tracing::enabled!(target: "tungstenite", tracing::Level::INFO));
        assert!(!tracing::enabled!(target: "hyper", tracing::Level::WARN));
    }
}
