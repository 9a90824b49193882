//! Caps on Engine.IO sessions, taken at the handshake.
//!
//! An Engine.IO handshake (a request under `/socket.io/` without `sid`) makes
//! a session of ~10 KB that lives until the client connects to Socket.IO or
//! the connect timeout ends it; 11.5 k handshakes a second made 5 GB. Each
//! new session takes a slot of the client address's session cap and one of
//! the server's pending-session cap; beyond either, the handshake is refused
//! with a JSON error and `Retry-After`. The slots ride in the request's
//! extensions, which engineioxide keeps for the session's life: they are
//! given back when the session is dropped (the pending one as soon as the
//! socket connects, see [`connected`]).

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::error::{ApiError, Code};
use crate::per_ip::{Full, PerIp, Slot};

/// The two caps.
#[derive(Debug)]
pub struct SessionCaps {
    pending: Arc<PerIp>,
    per_ip: Arc<PerIp>,
}

impl SessionCaps {
    /// `max_pending` not-yet-connected sessions in total, `max_per_ip`
    /// sessions per address (0 = no cap).
    pub fn new(max_pending: usize, max_per_ip: usize) -> SessionCaps {
        SessionCaps {
            pending: PerIp::new("pending sessions", max_pending, 0),
            per_ip: PerIp::new("sessions", 0, max_per_ip),
        }
    }

    /// Sessions not yet connected, now.
    pub fn pending(&self) -> usize {
        self.pending.total()
    }
}

impl Default for SessionCaps {
    fn default() -> Self {
        SessionCaps::new(1024, 512)
    }
}

/// A session's slots, in its handshake request's extensions.
#[derive(Debug, Clone)]
pub struct SessionSlots(Arc<Slots>);

#[derive(Debug)]
struct Slots {
    _per_ip: Slot,
    pending: Mutex<Option<Slot>>,
}

/// The socket connected to Socket.IO: it is no longer pending.
pub fn connected(extensions: &axum::http::Extensions) {
    if let Some(SessionSlots(slots)) = extensions.get::<SessionSlots>() {
        slots
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// Middleware for `/socket.io/` requests.
pub async fn admit(
    axum::extract::State(caps): axum::extract::State<Arc<SessionCaps>>,
    mut req: Request,
    next: Next,
) -> Response {
    let is_handshake = req.uri().path().starts_with(super::PATH)
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")));
    if !is_handshake {
        return next.run(req).await;
    }
    let ip = crate::serve::client_ip(req.extensions());
    let slots = caps.per_ip.take(ip).and_then(|per_ip| {
        let pending = caps.pending.take(ip)?;
        Ok(Slots {
            _per_ip: per_ip,
            pending: Mutex::new(Some(pending)),
        })
    });
    match slots {
        Ok(slots) => {
            req.extensions_mut().insert(SessionSlots(Arc::new(slots)));
            next.run(req).await
        }
        Err(full) => {
            crate::metrics::session_refused();
            tracing::debug!(reason = %full, "Engine.IO handshake refused");
            let (code, retry) = match full {
                Full::Total(_) => (Code::Unavailable, 1),
                Full::PerIp(_) => (Code::RateLimited, 5),
            };
            (
                [(RETRY_AFTER, retry.to_string())],
                ApiError::new(code, full.to_string()),
            )
                .into_response()
        }
    }
}
