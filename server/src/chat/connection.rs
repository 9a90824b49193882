//! One connection's events, handled one at a time in the order they came.
//!
//! socketioxide runs every event handler as its own task, so two events of
//! one client can be handled out of order. Extractors, though, run in the
//! order packets arrive: [`Ticket`] numbers each event there, the handlers
//! only forward `(ticket, event)` to this connection's worker, and the worker
//! puts them back in order before handling them. A client's messages are
//! therefore sealed, stored, numbered and broadcast in the order it sent
//! them, and a `join` followed by a `chat message` to that room just works.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use tokio::sync::mpsc;

use super::identity::Identity;
use super::session;
use crate::app::AppState;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Join,
    Leave,
    Send,
}

/// One event waiting for its turn. Its payload may hold plaintext, so
/// Debug shows only the kind.
pub struct Job {
    pub kind: EventKind,
    pub data: Result<Value, String>,
    pub ack: AckSender,
    /// Counts the event as in flight until it is acknowledged.
    pub busy: Busy,
}

/// An event received and not yet acknowledged, for a graceful shutdown:
/// counted while this lives.
#[derive(Debug)]
pub struct Busy(());

impl Busy {
    pub fn start() -> Busy {
        BUSY.fetch_add(1, Ordering::SeqCst);
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Numbered events on their way to a connection's worker.
type Queue = mpsc::UnboundedSender<(u64, Box<Job>)>;

/// A connection: who it is and the queue into its worker.
pub struct Connection {
    pub identity: Identity,
    next_ticket: AtomicU64,
    queue: Mutex<Option<Queue>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the worker of `socket` and returns the connection to keep in
    /// the socket's extensions.
    pub fn start(state: AppState, socket: SocketRef, identity: Identity) -> Arc<Connection> {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Connection {
            identity,
            next_ticket: AtomicU64::new(0),
            queue: Mutex::new(Some(tx)),
        });
        let limiter = rate_limiter(state.rate_per_sec, state.rate_burst);
        tokio::spawn(worker(state, socket, Arc::clone(&conn), limiter, rx));
        conn
    }

    /// Hands an event to the worker; after [`close`](Self::close) it is dropped.
    pub fn enqueue(&self, ticket: u64, job: Job) {
        if let Some(tx) = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send((ticket, Box::new(job)));
        }
    }

    /// Called on disconnect: the worker finishes what it has, then stops.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Events received and not yet acknowledged, in the whole process.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// How many events are waiting, being handled or waiting for their commit.
pub fn busy() -> usize {
    BUSY.load(Ordering::SeqCst)
}

fn rate_limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

/// The arrival number of an event, taken while packets are still in order.
#[derive(Debug)]
pub struct Ticket {
    pub conn: Arc<Connection>,
    pub number: u64,
}

impl FromMessageParts<socketioxide::adapter::LocalAdapter> for Ticket {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<socketioxide::adapter::LocalAdapter>>,
        _: &mut socketioxide_core::Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        // The connect handler stores the connection before any event handler
        // exists, so it is always there.
        let conn = s
            .extensions
            .get::<Arc<Connection>>()
            .expect("connection is set on connect");
        let number = conn.next_ticket.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket { conn, number })
    }
}

async fn worker(
    state: AppState,
    socket: SocketRef,
    conn: Arc<Connection>,
    limiter: DefaultDirectRateLimiter,
    mut rx: mpsc::UnboundedReceiver<(u64, Box<Job>)>,
) {
    let mut waiting: BTreeMap<u64, Box<Job>> = BTreeMap::new();
    let mut next = 0u64;
    while let Some((ticket, job)) = rx.recv().await {
        waiting.insert(ticket, job);
        while let Some(job) = waiting.remove(&next) {
            next += 1;
            // Boxed: the handling future is large and lives only while an
            // event is handled, instead of in every idle connection's task.
            Box::pin(session::handle(
                &state,
                &socket,
                &conn.identity,
                &limiter,
                *job,
            ))
            .await;
        }
    }
}
