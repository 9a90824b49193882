//! The chat scenario: N clients joined to rooms, S of them sending with a
//! window of unacknowledged messages, every delivery checked and timed.
//!
//! Each client is one task that owns its WebSocket. A message's plaintext
//! carries its sender, number and send time, so a reader can time it from
//! send to receipt and count what it got. At the end every acknowledged
//! message must have reached every client in its room.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::{Args, ChatArgs};
use crate::engineio::{self, Incoming, Ws};
use crate::envelope::{KeyEntry, Keys, Message, Scratch};
use crate::last::LastDelivery;
use crate::opened::Opened;
use crate::proc_stats;

/// Counters every client task adds to.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
    unreadable: AtomicU64,
    expected: AtomicU64,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct ChatResult {
    pub scenario: String,
    pub label: String,
    pub clients: usize,
    pub senders: usize,
    pub rooms: usize,
    pub size: usize,
    pub window: usize,
    /// Messages per second per sender (0: as fast as the window allows).
    pub rate: f64,
    pub seconds: f64,
    pub sent: u64,
    pub accepted: u64,
    pub accepted_per_sec: f64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub never_delivered: u64,
    pub unreadable: u64,
    pub refused: u64,
    pub errors: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub latency_ms_max: f64,
    /// With `--last-delivery`: send → delivery to the last member of the
    /// room, over the messages that reached every member.
    pub last_delivery_ms_p50: Option<f64>,
    pub last_delivery_ms_p99: Option<f64>,
    pub last_delivery_ms_max: Option<f64>,
    pub messages_complete: Option<u64>,
    pub server_cpu_seconds: f64,
    pub server_cpu_percent: f64,
    pub server_peak_rss_mib: f64,
    pub encrypted: bool,
    /// Parallel login flooders (0: none) and their answers.
    pub login_flood: usize,
    pub logins: u64,
    pub logins_per_sec: f64,
    pub logins_unauthorized: u64,
    pub logins_limited: u64,
    pub logins_unavailable: u64,
    pub logins_failed: u64,
}

struct Client {
    index: usize,
    room: String,
    ws: Ws,
    keys: Keys,
}

async fn connect_client(url: &str, index: usize, room: String) -> anyhow::Result<Client> {
    let mut ws = engineio::connect(url, &json!({ "name": format!("load{index}") })).await?;
    let ack = engineio::request(&mut ws, "join", &json!({ "room": room }), 0).await?;
    if ack["ok"] != true {
        bail!("join refused: {ack}");
    }
    let mut keys = Keys::default();
    if let Some(entries) = ack.get("keys") {
        let entries: Vec<KeyEntry> = serde_json::from_value(entries.clone())?;
        keys.add(&room, &entries)?;
    }
    Ok(Client {
        index,
        room,
        ws,
        keys,
    })
}

pub async fn chat(args: &Args, opts: &ChatArgs) -> anyhow::Result<ChatResult> {
    anyhow::ensure!(
        opts.clients >= 1 && opts.rooms >= 1,
        "need a client and a room"
    );
    let senders = opts
        .senders
        .unwrap_or(opts.clients.min(10))
        .min(opts.clients);
    anyhow::ensure!(
        opts.size >= 32,
        "--size must be at least 32 (the timing header)"
    );

    // Connect and join, 100 at a time.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(100));
    let mut joins = Vec::new();
    for i in 0..opts.clients {
        let (url, gate) = (args.url.clone(), Arc::clone(&gate));
        let room = format!("bench-{}", i % opts.rooms);
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            connect_client(&url, i, room).await
        }));
    }
    let mut clients = Vec::new();
    for j in joins {
        clients.push(j.await?.context("a client could not connect and join")?);
    }
    let encrypted = !clients[0].keys.is_empty();
    let mut per_room = vec![0u64; opts.rooms];
    for c in &clients {
        per_room[c.index % opts.rooms] += 1;
    }
    eprintln!(
        "{}: {} clients joined {} room(s) in {:.1} s; {} senders, window {}, {} B, {} s",
        args.label,
        opts.clients,
        opts.rooms,
        started.elapsed().as_secs_f64(),
        senders,
        opts.window,
        opts.size,
        opts.duration.as_secs_f64()
    );

    let totals = Arc::new(Totals::default());
    let stop_sending = Arc::new(AtomicBool::new(false));
    let flood = (opts.login_flood > 0)
        .then(|| crate::login_flood::start(&args.url, opts.login_flood, Arc::clone(&stop_sending)));
    let cpu_before = proc_stats::total_cpu(&args.pids);
    let epoch = Instant::now();
    let per_room = Arc::new(per_room);
    let to_last = if opts.last_delivery {
        let per_sender = match opts.rate {
            Some(r) => opts
                .messages
                .min((r * opts.duration.as_secs_f64()).ceil() as u64 + 2),
            None => opts.messages,
        };
        let members = (0..senders)
            .map(|i| per_room[i % opts.rooms] as u32)
            .collect();
        Some(Arc::new(LastDelivery::new(members, per_sender)?))
    } else {
        None
    };
    let mut tasks = Vec::new();
    for c in clients {
        let sender = c.index < senders;
        let ctx = Task {
            epoch,
            totals: Arc::clone(&totals),
            stop: Arc::clone(&stop_sending),
            per_room: Arc::clone(&per_room),
            rooms: opts.rooms,
            size: opts.size,
            window: if sender { opts.window } else { 0 },
            budget: if sender { opts.messages } else { 0 },
            // Senders start their pace at evenly spread offsets.
            pace: opts.rate.filter(|_| sender).map(|r| {
                let period = Duration::from_secs_f64(1.0 / r);
                (period, period.mul_f64(c.index as f64 / senders as f64))
            }),
            last: to_last.clone(),
            client_ids: opts.client_ids,
        };
        tasks.push(tokio::spawn(ctx.run(c)));
    }

    // Progress each second until the time is up or every sender is done.
    let deadline = epoch + opts.duration;
    let budget = opts.messages.saturating_mul(senders as u64);
    while Instant::now() < deadline
        && totals.accepted.load(Ordering::Relaxed) + totals.refused.load(Ordering::Relaxed) < budget
    {
        tokio::time::sleep(Duration::from_millis(1000).min(deadline - Instant::now())).await;
        eprintln!(
            "  {:>5.1} s  accepted {:>9}  delivered {:>10}",
            epoch.elapsed().as_secs_f64(),
            totals.accepted.load(Ordering::Relaxed),
            totals.delivered.load(Ordering::Relaxed)
        );
    }
    stop_sending.store(true, Ordering::Relaxed);
    let send_window = epoch.elapsed();
    // Let acks and deliveries drain: until nothing moves for 500 ms, at most 10 s.
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (u64::MAX, u64::MAX);
    while Instant::now() < drain_deadline {
        let now = (
            totals.accepted.load(Ordering::Relaxed),
            totals.delivered.load(Ordering::Relaxed),
        );
        let all_in = totals.delivered.load(Ordering::Relaxed)
            + totals.unreadable.load(Ordering::Relaxed)
            >= totals.expected.load(Ordering::Relaxed)
            && totals.accepted.load(Ordering::Relaxed) + totals.refused.load(Ordering::Relaxed)
                >= totals.sent.load(Ordering::Relaxed);
        if now == last || all_in {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = send_window.as_secs_f64();
    let flood_counts = |f: fn(&crate::login_flood::Counts) -> u64| flood.as_deref().map_or(0, f);
    let logins = flood_counts(|c| c.total());
    let cpu = proc_stats::total_cpu(&args.pids).saturating_sub(cpu_before);
    let peak_rss = proc_stats::total_peak_rss(&args.pids);

    // Every task hands its latencies over at least every 200 ms; after a
    // last flush, stop them.
    tokio::time::sleep(Duration::from_millis(250)).await;
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let latency = LATENCIES.take().unwrap_or_else(latency_histogram);
    let pct = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let last = to_last.map(|l| l.histogram());
    let last_pct = |q: f64| {
        last.as_ref()
            .map(|(h, _)| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let t = &totals;
    let accepted = t.accepted.load(Ordering::Relaxed);
    let delivered = t.delivered.load(Ordering::Relaxed);
    let unreadable = t.unreadable.load(Ordering::Relaxed);
    let expected = t.expected.load(Ordering::Relaxed);
    let refused = t.refused.load(Ordering::Relaxed);
    let never = expected.saturating_sub(delivered + unreadable);
    Ok(ChatResult {
        scenario: args.scenario.clone(),
        label: args.label.clone(),
        clients: opts.clients,
        senders,
        rooms: opts.rooms,
        size: opts.size,
        window: opts.window,
        rate: opts.rate.unwrap_or(0.0),
        seconds: elapsed,
        sent: t.sent.load(Ordering::Relaxed),
        accepted,
        accepted_per_sec: accepted as f64 / elapsed,
        delivered,
        deliveries_per_sec: delivered as f64 / elapsed,
        never_delivered: never,
        unreadable,
        refused,
        errors: refused + unreadable + never,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_p999: pct(0.999),
        latency_ms_max: latency.max() as f64 / 1000.0,
        last_delivery_ms_p50: last_pct(0.5),
        last_delivery_ms_p99: last_pct(0.99),
        last_delivery_ms_max: last.as_ref().map(|(h, _)| h.max() as f64 / 1000.0),
        messages_complete: last.as_ref().map(|(_, n)| *n),
        server_cpu_seconds: cpu.as_secs_f64(),
        server_cpu_percent: 100.0 * cpu.as_secs_f64() / elapsed,
        server_peak_rss_mib: peak_rss as f64 / 1024.0,
        encrypted,
        login_flood: opts.login_flood,
        logins,
        logins_per_sec: logins as f64 / elapsed,
        logins_unauthorized: flood_counts(|c| c.unauthorized.load(Ordering::Relaxed)),
        logins_limited: flood_counts(|c| c.limited.load(Ordering::Relaxed)),
        logins_unavailable: flood_counts(|c| c.unavailable.load(Ordering::Relaxed)),
        logins_failed: flood_counts(|c| c.other.load(Ordering::Relaxed)),
    })
}

/// One client's loop.
struct Task {
    epoch: Instant,
    totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
    per_room: Arc<Vec<u64>>,
    rooms: usize,
    size: usize,
    window: usize,
    budget: u64,
    /// With `--rate`: the period between sends and the first send's delay.
    pace: Option<(Duration, Duration)>,
    last: Option<Arc<LastDelivery>>,
    client_ids: crate::client_ids::ClientIds,
}

impl Task {
    /// Runs until the connection closes or the task is aborted. Latencies
    /// (µs) go to [`LATENCIES`] every 200 ms, when [`PENDING`] of them are
    /// waiting, and at the end.
    async fn run(self, mut client: Client) {
        let mut latencies = Vec::with_capacity(PENDING);
        let mut scratch = Scratch::default();
        let readers_per_message = self.per_room[client.index % self.rooms];
        let mut next_seq = 0u64;
        let mut in_flight = 0usize;
        let filler = "x".repeat(self.size);
        let send_one = |seq: u64| -> WsMessage {
            let mut text = format!(
                "{}:{}:{}:",
                client.index,
                seq,
                self.epoch.elapsed().as_micros()
            );
            let pad = self.size.saturating_sub(text.len());
            text.push_str(&filler[..pad]);
            let mut body = json!({ "message": text, "room": client.room });
            if let Some(id) = self.client_ids.make(client.index, seq) {
                body["clientId"] = id.into();
            }
            engineio::event("chat message", &body, Some(seq + 1))
        };
        let mut pace = self.pace.map(|(period, delay)| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + delay, period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        // Fill the window (paced senders send on their ticks only).
        while pace.is_none() && in_flight < self.window && next_seq < self.budget {
            if client.ws.send(send_one(next_seq)).await.is_err() {
                return;
            }
            self.totals.sent.fetch_add(1, Ordering::Relaxed);
            next_seq += 1;
            in_flight += 1;
        }
        let mut flush_hist = tokio::time::interval(Duration::from_millis(200));
        loop {
            let frame = tokio::select! {
                f = client.ws.next() => f,
                _ = flush_hist.tick() => {
                    LATENCIES.record_all(&mut latencies);
                    continue;
                }
                _ = async { pace.as_mut().map(|p| p.tick()).expect("paced").await }, if pace.is_some() => {
                    if in_flight < self.window
                        && next_seq < self.budget
                        && !self.stop.load(Ordering::Relaxed)
                    {
                        if client.ws.send(send_one(next_seq)).await.is_err() {
                            break;
                        }
                        self.totals.sent.fetch_add(1, Ordering::Relaxed);
                        next_seq += 1;
                        in_flight += 1;
                    }
                    continue;
                }
            };
            let text = match frame {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(_)) => continue,
                _ => break,
            };
            match engineio::parse(&text) {
                Incoming::Ping => {
                    let _ = client.ws.send(engineio::pong()).await;
                }
                Incoming::Ack(_, ack) => {
                    in_flight = in_flight.saturating_sub(1);
                    if ack["ok"] == true {
                        self.totals.accepted.fetch_add(1, Ordering::Relaxed);
                        self.totals
                            .expected
                            .fetch_add(readers_per_message, Ordering::Relaxed);
                    } else {
                        self.totals.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    if pace.is_none()
                        && !self.stop.load(Ordering::Relaxed)
                        && next_seq < self.budget
                    {
                        if client.ws.send(send_one(next_seq)).await.is_err() {
                            break;
                        }
                        self.totals.sent.fetch_add(1, Ordering::Relaxed);
                        next_seq += 1;
                        in_flight += 1;
                    }
                }
                Incoming::Event(raw) => {
                    let copies = readers_per_message.saturating_sub(1);
                    self.deliver(&client.keys, raw, copies, &mut scratch, &mut latencies);
                    if latencies.len() >= PENDING {
                        LATENCIES.record_all(&mut latencies);
                    }
                }
                Incoming::Other => {}
            }
        }
        LATENCIES.record_all(&mut latencies);
    }

    /// Checks and times one delivery. `copies`: how many other members of
    /// its room receive the same message.
    fn deliver(
        &self,
        keys: &Keys,
        raw: &str,
        copies: u64,
        scratch: &mut Scratch,
        latencies: &mut Vec<u64>,
    ) {
        let Ok((name, msg)) = serde_json::from_str::<(Cow<str>, Message)>(raw) else {
            return;
        };
        if name != "chat message" {
            return;
        }
        let plain = if keys.is_empty() {
            Some(msg.message.as_bytes())
        } else {
            OPENED.with_borrow_mut(|opened| keys.open(&msg, scratch, opened, copies))
        };
        let Some(plain) = plain else {
            self.totals.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match timing_header(plain) {
            Some((sender, seq, sent)) => {
                let now = self.epoch.elapsed().as_micros() as u64;
                let latency = now.saturating_sub(sent).max(1);
                latencies.push(latency);
                if let Some(last) = &self.last {
                    last.record(sender, seq, latency);
                }
                self.totals.delivered.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.totals.unreadable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A message's plaintext starts "<sender>:<seq>:<µs since epoch>:".
fn timing_header(plain: &[u8]) -> Option<(usize, u64, u64)> {
    let mut parts = std::str::from_utf8(plain).ok()?.splitn(4, ':');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((sender, seq, sent))
}

thread_local! {
    /// Envelopes the clients on this thread have opened.
    static OPENED: RefCell<Opened> = RefCell::default();
}

/// An empty histogram of latencies in µs: 1 µs to a minute, 3 significant
/// figures. Every mode of the tool reports through one of these.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")
}

/// Latencies handed over by the client tasks, so that stopping a task at
/// the end loses nothing it recorded.
static LATENCIES: Latencies = Latencies(std::sync::Mutex::new(None));

/// Latencies a client task keeps before it hands them over.
const PENDING: usize = 4096;

/// One histogram for all clients. Each task keeps its latencies in a short
/// list and records them here in one go: a histogram of its own per task
/// (17,408 counters, 136 KiB, at this range and precision) was added into
/// this one and zeroed five times a second, which with 100 clients was a
/// tenth of the tool's time, on the cores the server under test runs on.
struct Latencies(std::sync::Mutex<Option<Histogram<u64>>>);

impl Latencies {
    /// Records the latencies in `pending` and empties it.
    fn record_all(&self, pending: &mut Vec<u64>) {
        if pending.is_empty() {
            return;
        }
        let mut shared = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let hist = shared.get_or_insert_with(latency_histogram);
        for &latency in pending.iter() {
            // Beyond the range (a minute, rounded up to the histogram's
            // buckets): not a latency this tool can have measured; left
            // out, as before.
            let _ = hist.record(latency);
        }
        pending.clear();
    }

    fn take(&self) -> Option<Histogram<u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clients_latencies_land_in_one_histogram() {
        let shared = Latencies(std::sync::Mutex::new(None));
        let mut empty = Vec::new();
        shared.record_all(&mut empty);
        assert!(shared.take().is_none(), "nothing recorded, no histogram");
        let mut a: Vec<u64> = (1..=900).collect();
        let mut b: Vec<u64> = vec![5_000; 100];
        // Far beyond the range's minute (12 days): left out.
        b.push(1 << 40);
        shared.record_all(&mut a);
        shared.record_all(&mut b);
        assert!(a.is_empty() && b.is_empty(), "handed over, so emptied");
        let hist = shared.take().expect("recorded");
        assert_eq!(hist.len(), 1_000);
        assert_eq!(hist.value_at_quantile(0.5), 500);
        assert_eq!(hist.max(), hist.highest_equivalent(5_000));
    }

    #[test]
    fn the_timing_header_names_sender_number_and_send_time() {
        assert_eq!(timing_header(b"12:7:123456:xxxx"), Some((12, 7, 123456)));
        assert_eq!(timing_header(b"12:7:123456"), None);
        assert_eq!(timing_header(b"a:7:1:x"), None);
    }
}
