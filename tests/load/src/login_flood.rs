//! A login flood alongside a chat run (issue 15, item 7): `parallel`
//! connections each send `POST /api/login` for made-up names, one after
//! another, until stopped. Raw HTTP/1.1, one request per connection, as
//! a flood would; the answers are counted by status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Answers by status class.
#[derive(Debug, Default)]
pub struct Counts {
    pub unauthorized: AtomicU64,
    pub limited: AtomicU64,
    pub unavailable: AtomicU64,
    pub other: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.unauthorized.load(Ordering::Relaxed)
            + self.limited.load(Ordering::Relaxed)
            + self.unavailable.load(Ordering::Relaxed)
            + self.other.load(Ordering::Relaxed)
    }
}

/// `host:port` of an `http://host:port` URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Starts the flood on a thread and runtime of its own (so the chatting
/// clients' latency is not the flooders' scheduling delay); it runs until
/// `stop` is set.
pub fn start(url: &str, parallel: usize, stop: Arc<AtomicBool>) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let addr = authority(url);
    let (shared, done) = (Arc::clone(&counts), Arc::clone(&stop));
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            flood(addr, parallel, Arc::clone(&done), shared);
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
    });
    counts
}

fn flood(addr: String, parallel: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    for worker in 0..parallel {
        let (addr, stop, counts) = (addr.clone(), Arc::clone(&stop), Arc::clone(&counts));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let status = login(&addr, &format!("flood{worker}x{n}")).await;
                let slot = match status {
                    Some(401) => &counts.unauthorized,
                    Some(429) => &counts.limited,
                    Some(503) => &counts.unavailable,
                    _ => &counts.other,
                };
                slot.fetch_add(1, Ordering::Relaxed);
                if status.is_none() {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        });
    }
}

async fn login(addr: &str, name: &str) -> Option<u16> {
    let body = format!(r#"{{"username":"{name}","password":"not the password"}}"#);
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.ok()?;
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
