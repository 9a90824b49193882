//! A session's end: an account's socket lives until its token's `exp`,
//! unless the client sends `refresh` with a newer token first. At `exp` the
//! server emits `session expired` `{ code: "UNAUTHORIZED", message: "token
//! expired" }` and disconnects the socket, so a token that has run out (or
//! been stolen and has run out) keeps no live socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::adapter::ChatSocket;
use crate::auth::unix_now;

/// The event a client gets when its session ends.
pub const EVENT: &str = "session expired";

/// When a socket's session ends, and a bell for when that changes.
#[derive(Debug, Default)]
pub struct Expiry {
    /// Milliseconds since the epoch; `u64::MAX` for guests (no token).
    at_ms: AtomicU64,
    changed: Notify,
    closed: AtomicBool,
}

impl Expiry {
    /// A session ending at `exp` (JWT seconds), or never (`None`: a guest).
    pub fn new(exp: Option<u64>) -> Expiry {
        Expiry {
            at_ms: AtomicU64::new(exp.map_or(u64::MAX, |s| s.saturating_mul(1000))),
            ..Expiry::default()
        }
    }

    /// A refreshed token moves the end to its `exp`; returns it in ms.
    pub fn extend(&self, exp: u64) -> u64 {
        let at = exp.saturating_mul(1000);
        self.at_ms.store(at, Ordering::SeqCst);
        self.changed.notify_one();
        at
    }

    /// The socket is gone: the watch ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    fn at_ms(&self) -> u64 {
        self.at_ms.load(Ordering::SeqCst)
    }
}

/// Ends `socket`'s session at its expiry unless it is extended; returns
/// when the socket is gone. Runs only for sockets with a token.
pub async fn watch(socket: ChatSocket, expiry: Arc<Expiry>) {
    loop {
        if expiry.closed.load(Ordering::SeqCst) {
            return;
        }
        let at = expiry.at_ms();
        let now = unix_now().as_millis() as u64;
        if now >= at {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(at - now)) => {}
            () = expiry.changed.notified() => {}
        }
    }
    let _ = socket.emit(
        EVENT,
        &serde_json::json!({ "code": "UNAUTHORIZED", "message": "token expired" }),
    );
    crate::metrics::session_expired();
    tracing::debug!("session expired: disconnecting");
    let _ = socket.disconnect();
}
