//! One connection's events, handled one at a time in the order they came.
//!
//! socketioxide runs every event handler as its own task, so two events of
//! one client can be handled out of order. Extractors, though, run in the
//! order packets arrive: [`Ticket`] numbers each event there, the handlers
//! only hand `(ticket, event)` to the [`Connection`], which puts them back in
//! order and handles them one at a time. A client's messages are
//! therefore sealed, stored, numbered and broadcast in the order it sent
//! them, and a `join` followed by a `chat message` to that room just works.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use super::adapter::{Ack, ChatAdapter, ChatSocket};
use super::expiry::Expiry;
use super::identity::Identity;
use super::protocol::SendRequest;
use super::session;
use crate::app::AppState;

/// What a client asked for, with its payload as read (or why it could not
/// be read).
pub enum Request {
    Join(Result<Value, String>),
    Leave(Result<Value, String>),
    Send(Result<SendRequest, String>),
    Refresh(Result<Value, String>),
    Typing(Result<Value, String>),
}

/// The event's name only: a payload may hold plaintext or a token.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event())
    }
}

impl Request {
    /// The event's name in the protocol.
    pub fn event(&self) -> &'static str {
        match self {
            Request::Join(_) => "join",
            Request::Leave(_) => "leave",
            Request::Send(_) => "chat message",
            Request::Refresh(_) => "refresh",
            Request::Typing(_) => "typing",
        }
    }
}

/// One event waiting for its turn. Its payload may hold plaintext or a
/// token, so Debug shows only the event's name.
pub struct Job {
    pub request: Request,
    pub ack: Ack,
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
            .field("event", &self.request.event())
            .finish_non_exhaustive()
    }
}

/// A connection: who it is, its rate limit, and its events waiting in order.
///
/// No task runs for an idle connection: the first event that can be handled
/// starts one, and it ends when no event is next in line. Idle connections
/// are most connections, so they should cost nothing but this struct.
pub struct Connection {
    pub identity: Identity,
    /// When the session ends (an account's token `exp`), and its watch.
    pub expiry: Arc<Expiry>,
    state: AppState,
    next_ticket: AtomicU64,
    limiter: DefaultDirectRateLimiter,
    line: Mutex<Line>,
    /// `join`s, and `join`s with `since` (catch-ups).
    joins: DefaultDirectRateLimiter,
    catch_ups: DefaultDirectRateLimiter,
    /// `typing` signals (see [`super::typing`]).
    typing: DefaultDirectRateLimiter,
    /// `refresh`es: each costs a token check and a store read.
    refreshes: DefaultDirectRateLimiter,
    /// Disconnected as a slow reader (see [`super::rooms::evict`]).
    evicted: std::sync::atomic::AtomicBool,
}

/// The answer to a `join` or a `chat message` on an evicted connection.
/// `UNAVAILABLE`, as for a server that cannot serve now: retry on a fresh
/// connection (and catch up with `since`), not give up.
pub fn evicted() -> super::protocol::Failure {
    super::protocol::Failure::new(
        crate::error::Code::Unavailable,
        "this connection fell behind and is being closed: reconnect and join with since",
    )
}

/// Events received out of order wait here until their turn.
#[derive(Default)]
struct Line {
    waiting: BTreeMap<u64, Box<Job>>,
    /// The ticket to handle next.
    next: u64,
    /// A task is handling this connection's events.
    running: bool,
    /// Disconnected: events still arriving are dropped.
    closed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The connection to keep in the socket's extensions.
    pub fn new(state: AppState, identity: Identity, expiry: Arc<Expiry>) -> Arc<Connection> {
        Arc::new(Connection {
            identity,
            expiry,
            limiter: rate_limiter(state.rate_per_sec, state.rate_burst),
            joins: rate_limiter(state.guards.join.per_sec, state.guards.join.burst),
            catch_ups: rate_limiter(state.guards.catch_up.per_sec, state.guards.catch_up.burst),
            typing: rate_limiter(super::typing::PER_SEC, super::typing::BURST),
            refreshes: rate_limiter(REFRESH_PER_SEC, REFRESH_BURST),
            state,
            next_ticket: AtomicU64::new(0),
            line: Mutex::new(Line::default()),
            evicted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Takes one `join` (and one catch-up when it has `since`) from the
    /// connection's rates, or refuses it `RATE_LIMITED`; refuses every join
    /// `UNAVAILABLE` once the connection was evicted as a slow reader.
    pub fn admit_join(&self, catch_up: bool) -> Result<(), super::protocol::Failure> {
        use super::protocol::Failure;
        use crate::error::Code;
        if self.is_evicted() {
            return Err(evicted());
        }
        if self.joins.check().is_err() {
            return Err(Failure::new(Code::RateLimited, "too many joins: slow down"));
        }
        if catch_up && self.catch_ups.check().is_err() {
            return Err(Failure::new(
                Code::RateLimited,
                "too many catch-ups (join with since): slow down",
            ));
        }
        Ok(())
    }

    /// Takes one `refresh` from the connection's rate; false when over it.
    pub fn admit_refresh(&self) -> bool {
        self.refreshes.check().is_ok()
    }

    /// Takes one `typing` from the connection's rate; false when over it.
    pub fn admit_typing(&self) -> bool {
        self.typing.check().is_ok()
    }

    /// Marks the connection as evicted; true the first time only.
    pub fn evict(&self) -> bool {
        !self.evicted.swap(true, Ordering::SeqCst)
    }

    /// Whether the connection was evicted as a slow reader. An evicted
    /// connection is out of every room and on its way out; a `join` must
    /// not put it back, or it would stay connected and, its queue still
    /// full, get only parts of later batches: messages skipped silently.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    fn line(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an event over; it is handled after every event numbered before
    /// it. After [`close`](Self::close) it is dropped.
    fn enqueue(self: &Arc<Self>, socket: ChatSocket, ticket: u64, job: Job) {
        let mut line = self.line();
        if line.closed {
            return;
        }
        line.waiting.insert(ticket, Box::new(job));
        if line.running || !line.waiting.contains_key(&line.next) {
            return;
        }
        line.running = true;
        drop(line);
        tokio::spawn(drain(socket, Arc::clone(self)));
    }

    /// Called on disconnect: events already here are handled, later ones dropped.
    pub fn close(&self) {
        self.line().closed = true;
        self.expiry.close();
    }

    /// The next event in line, or None (and no task running) if it has not come.
    fn next_job(&self) -> Option<Box<Job>> {
        let mut line = self.line();
        let next = line.next;
        match line.waiting.remove(&next) {
            Some(job) => {
                line.next += 1;
                Some(job)
            }
            None => {
                line.running = false;
                None
            }
        }
    }
}

/// A client refreshes once per token (minutes apart); a few in a row are
/// retries. More is a flood of token checks and store reads.
const REFRESH_PER_SEC: u32 = 1;
const REFRESH_BURST: u32 = 5;

/// Events received and not yet acknowledged, in the whole process.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// How many events are waiting, being handled or waiting for their commit.
pub fn busy() -> usize {
    BUSY.load(Ordering::SeqCst)
}

/// The clock of every connection's limiters. Making one asks the CPU
/// whether its counter is usable (`cpuid`, a trap to the hypervisor on a
/// virtual machine): five per connection were 4 % of the server's CPU
/// while 5,000 clients connected (perf, docs/benchmarks.md). A clone shares
/// the calibrated source.
static CLOCK: std::sync::LazyLock<DefaultClock> = std::sync::LazyLock::new(DefaultClock::default);

/// A rate of 0 means no cap (docs/operations.md, "Limits").
pub(crate) fn rate_limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let quota = match (NonZeroU32::new(per_sec), NonZeroU32::new(burst.max(1))) {
        (Some(per_sec), Some(burst)) => Quota::per_second(per_sec).allow_burst(burst),
        _ => Quota::per_second(NonZeroU32::MAX),
    };
    RateLimiter::direct_with_clock(quota, CLOCK.clone())
}

/// The arrival number of an event, taken while packets are still in order.
pub struct Ticket {
    conn: Arc<Connection>,
    socket: ChatSocket,
    number: u64,
}

/// Debug shows the number only: a socket's Debug prints its id, a bearer
/// credential that is never to be logged.
impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

impl Ticket {
    /// Hands the event over to be handled in its turn.
    pub fn enqueue(self, job: Job) {
        self.conn.enqueue(self.socket, self.number, job);
    }
}

impl FromMessageParts<ChatAdapter> for Ticket {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<ChatAdapter>>,
        value: &mut socketioxide_core::Value,
        ack: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let socket = ChatSocket::from_message_parts(s, value, ack)?;
        // The connect handler stores the connection before any event handler
        // exists, so it is always there.
        let conn = s
            .extensions
            .get::<Arc<Connection>>()
            .expect("connection is set on connect");
        let number = conn.next_ticket.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            conn,
            socket,
            number,
        })
    }
}

/// Handles this connection's events in ticket order while the next one is here.
async fn drain(socket: ChatSocket, conn: Arc<Connection>) {
    while let Some(job) = conn.next_job() {
        // Boxed: the handling future is large and lives only while an
        // event is handled.
        Box::pin(session::handle(
            &conn.state,
            &socket,
            &conn.identity,
            &conn.limiter,
            &conn.expiry,
            *job,
        ))
        .await;
    }
}

/// For unit tests: a guest's socket with its connection, on a Socket.IO
/// instance of the server's adapter, and what keeps it open (its dummy
/// transport's ends).
#[cfg(test)]
pub(crate) async fn test_socket(
    state: &AppState,
) -> (ChatSocket, Arc<Connection>, Box<dyn std::any::Any + Send>) {
    use crate::chat::adapter::{Adapters, ChatAdapter};
    let (_svc, io) = socketioxide::SocketIo::builder()
        .with_adapter::<ChatAdapter>(Arc::new(Adapters::default()))
        .build_svc();
    io.ns("/", async |_: ChatSocket| {});
    let transport = io.new_dummy_sock("/", ()).await;
    let socket = io.sockets().remove(0);
    let conn = Connection::new(
        Arc::clone(state),
        Identity::Guest("ann".into()),
        Arc::default(),
    );
    socket.extensions.insert(Arc::clone(&conn));
    (socket, conn, Box::new((io, transport)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{:?}` of a ticket, as a panic message or a log line would print
    /// it, does not show its socket's id.
    #[tokio::test]
    async fn a_tickets_debug_hides_the_socket_id() {
        let (state, _db) = crate::app::test_state("ticket").await;
        let (socket, conn, _open) = test_socket(&state).await;
        let id = socket.id.to_string();
        let ticket = Ticket {
            conn,
            socket,
            number: 41,
        };
        let printed = format!("{ticket:?}");
        assert!(printed.contains("41"), "{printed}");
        assert!(!printed.contains(&id), "{printed}");
    }

    #[test]
    fn a_rate_of_zero_means_no_cap() {
        let unlimited = rate_limiter(0, 0);
        assert!((0..10_000).all(|_| unlimited.check().is_ok()));
        let capped = rate_limiter(1, 2);
        assert!(capped.check().is_ok() && capped.check().is_ok());
        assert!(capped.check().is_err());
    }
}
