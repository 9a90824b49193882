//! Prometheus metrics (`GET /metrics`). Names, labels and meanings are
//! listed in README's "Metrics"; nothing here carries plaintext or keys.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::Code;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later calls reuse it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0,
                ])
                .expect("static buckets")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "chatseal_store_batch_messages".into(),
                    ),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
                .expect("static buckets")
                .install_recorder();
            match handle {
                Ok(handle) => handle,
                // Another recorder is installed (an embedding program's):
                // keep a private one so /metrics still answers.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

pub fn connected() {
    metrics::gauge!("chatseal_connections").increment(1.0);
    metrics::counter!("chatseal_connections_total").increment(1);
}

pub fn disconnected() {
    metrics::gauge!("chatseal_connections").decrement(1.0);
}

pub fn sealed() {
    metrics::counter!("chatseal_seals_total").increment(1);
}

pub fn messages_stored(n: u64) {
    metrics::counter!("chatseal_messages_total").increment(n);
}

/// `n` frames handed to sockets (counted per message, not per socket: a
/// counter look-up per delivery was ~3 % of the server's time at 100 readers).
pub fn delivered(n: u64) {
    metrics::counter!("chatseal_deliveries_total").increment(n);
}

pub fn session_expired() {
    metrics::counter!("chatseal_sessions_expired_total").increment(1);
}

pub fn slow_reader() {
    metrics::counter!("chatseal_slow_readers_disconnected_total").increment(1);
}

/// A connection closed at accept: over a connection cap.
pub fn connection_refused() {
    metrics::counter!("chatseal_connections_refused_total").increment(1);
}

/// An `accept` error (out of files, say).
pub fn accept_error() {
    metrics::counter!("chatseal_accept_errors_total").increment(1);
}

/// An Engine.IO handshake refused: over a session cap.
pub fn session_refused() {
    metrics::counter!("chatseal_sessions_refused_total").increment(1);
}

/// Password hashes running now (`delta` +1 / -1).
pub fn hashing(delta: f64) {
    metrics::gauge!("chatseal_password_hashes_running").increment(delta);
}

pub fn refused(code: Code) {
    metrics::counter!("chatseal_refused_total", "code" => code.as_str()).increment(1);
}

pub fn store_latency(elapsed: Duration) {
    metrics::histogram!("chatseal_store_seconds").record(elapsed.as_secs_f64());
}

pub fn batch_size(messages: usize) {
    metrics::histogram!("chatseal_store_batch_messages").record(messages as f64);
}
