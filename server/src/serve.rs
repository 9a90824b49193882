//! Accepting connections, with the limits a public server needs.
//!
//! `axum::serve` reads request heads with no deadline, takes every
//! connection the kernel hands it, and logs `accept` errors (`Too many open
//! files`) once a second forever: 2,100 half-open requests starved every
//! other client. This loop serves the same router with:
//!
//! * a deadline for each request head ([`ConnLimits::header_timeout`]),
//!   which also closes keep-alive connections idle that long;
//! * a cap on open connections, in total and per client address, below the
//!   process's file limit, so `accept` keeps working and one address cannot
//!   take them all (beyond a cap the connection is closed at once);
//! * a backoff on `accept` errors (10 ms doubling to 1 s, logged once per run
//!   of errors);
//! * a [`Disconnect`] handle on every request, which ends the connection (also
//!   after a WebSocket upgrade): how a slow reader is really disconnected.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::task::AtomicWaker;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::per_ip::{PerIp, Slot};

/// The connection limits (flags in [`crate::config`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections in total; 0 = derived from the file limit.
    pub max_connections: usize,
    /// Open connections per client address; 0 = no cap.
    pub max_connections_per_ip: usize,
    /// Longest wait for a request head.
    pub header_timeout: Duration,
}

impl ConnLimits {
    /// The total cap: as configured, or the file limit less 256 files kept
    /// for the database, logs and the keyring.
    pub fn total(&self) -> usize {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        match open_files_limit() {
            Some(limit) => limit.saturating_sub(256).max(64),
            None => 4096,
        }
    }
}

#[cfg(unix)]
fn open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct we own and keep no pointer to.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<usize> {
    None
}

/// Ends one connection from anywhere: reads and writes on it fail from then
/// on, whether hyper or a WebSocket holds it. Every request carries one in
/// its extensions.
#[derive(Debug, Clone, Default)]
pub struct Disconnect(Arc<Switch>);

#[derive(Debug, Default)]
struct Switch {
    off: AtomicBool,
    waker: AtomicWaker,
}

impl Disconnect {
    /// Closes the connection (its reader wakes up to an error).
    pub fn now(&self) {
        self.0.off.store(true, Ordering::SeqCst);
        self.0.waker.wake();
    }

    fn is_off(&self) -> bool {
        self.0.off.load(Ordering::SeqCst)
    }
}

/// A TCP stream that holds its connection slot and obeys its [`Disconnect`].
#[derive(Debug)]
struct Guarded {
    tcp: TcpStream,
    off: Disconnect,
    _slot: Slot,
}

fn disconnected() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "disconnected by the server",
    )
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.off.0.waker.register(cx.waker());
        if self.off.is_off() {
            return Poll::Ready(Err(disconnected()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.off.is_off() {
            return Poll::Ready(Err(disconnected()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.off.is_off() {
            return Poll::Ready(Err(disconnected()));
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = PerIp::new("connections", limits.total(), limits.max_connections_per_ip);
    tracing::info!(
        max = limits.total(),
        per_ip = limits.max_connections_per_ip,
        header_timeout_ms = limits.header_timeout.as_millis() as u64,
        "connection limits"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    // Every connection task holds a receiver; all dropped = all closed.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut refused = RefusalLog::default();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff.reset(); pair }
                Err(e) => { backoff.wait(&e).await; continue }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                crate::metrics::connection_refused();
                refused.note(&full);
                drop(tcp); // closed at once: a clear refusal for TCP
                continue;
            }
        };
        // Without it small Socket.IO frames wait ~40 ms for Nagle.
        let _ = tcp.set_nodelay(true);
        let off = Disconnect::default();
        let io = Guarded {
            tcp,
            off: off.clone(),
            _slot: slot,
        };
        let service =
            app.clone()
                .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(off.clone());
                    req
                });
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        let timeout = limits.header_timeout;
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout);
            let conn = builder
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// `accept` errors: the first of a run is logged, then the loop waits
/// 10 ms, doubling to 1 s, until a connection is accepted again.
#[derive(Debug, Default)]
struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    fn reset(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!("accepting connections again");
        }
    }

    async fn wait(&mut self, e: &io::Error) {
        use io::ErrorKind::*;
        // A peer that gave up before accept: not the server's problem.
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused
        ) {
            return;
        }
        let delay = match self.delay {
            None => {
                tracing::error!(error = %e, "accept failed; backing off");
                Duration::from_millis(10)
            }
            Some(d) => (d * 2).min(Duration::from_secs(1)),
        };
        self.delay = Some(delay);
        crate::metrics::accept_error();
        tokio::time::sleep(delay).await;
    }
}

/// Refused connections are counted always and logged at most every 10 s.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<std::time::Instant>,
    since: u64,
}

impl RefusalLog {
    fn note(&mut self, full: &crate::per_ip::Full) {
        self.since += 1;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(refused = self.since, reason = %full, "refusing connections");
            self.last = Some(std::time::Instant::now());
            self.since = 0;
        }
    }
}

/// The client address of a request, where the server loop recorded it
/// (tests that call the router directly have none).
pub fn client_ip(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Extractor: the client address (see [`client_ip`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}
