//! `join { since }` latency: how long a returning client waits for what it
//! missed, against a store filled beforehand (scripts/bench.sh fills it
//! through the chat path, then runs this at each size).
//!
//! Each connection joins the room once to learn its `latestSeq`, then
//! joins again and again with `since = latestSeq - back`, one join at a
//! time, timing each from send to ack. Every ack must be `ok` and carry
//! the `back` messages up to `latestSeq` (nobody posts meanwhile), or the
//! join counts as an error.

use std::time::Instant;

use anyhow::bail;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::args::{Args, SinceArgs};
use crate::engineio;

#[derive(Debug, serde::Serialize)]
pub struct SinceResult {
    pub scenario: String,
    pub label: String,
    /// Messages in the store, as the caller says (it filled it).
    pub stored: u64,
    pub room: String,
    pub latest_seq: u64,
    pub back: u64,
    pub connections: usize,
    pub joins: u64,
    pub errors: u64,
    pub seconds: f64,
    pub joins_per_sec: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

pub async fn run(args: &Args, opts: &SinceArgs) -> anyhow::Result<SinceResult> {
    anyhow::ensure!(
        opts.connections >= 1 && opts.joins >= 1 && opts.back >= 1,
        "--connections, --joins and --back must be at least 1"
    );
    let deadline = Instant::now() + opts.max_seconds;
    let per_conn = opts.joins.div_ceil(opts.connections);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..opts.connections {
        let (url, room) = (args.url.clone(), opts.room.clone());
        let (back, joins) = (
            opts.back,
            per_conn.min(opts.joins.saturating_sub(c * per_conn)),
        );
        tasks.push(tokio::spawn(async move {
            one_connection(&url, c as usize, &room, back, joins, deadline).await
        }));
    }
    let mut hist = crate::run::latency_histogram();
    let (mut latest, mut errors, mut joins) = (0, 0u64, 0u64);
    for t in tasks {
        let r = t.await??;
        latest = latest.max(r.latest);
        errors += r.errors;
        joins += r.hist.len();
        hist.add(&r.hist)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let pct = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(SinceResult {
        scenario: args.scenario.clone(),
        label: args.label.clone(),
        stored: opts.stored,
        room: opts.room.clone(),
        latest_seq: latest,
        back: opts.back,
        connections: opts.connections as usize,
        joins,
        errors,
        seconds,
        joins_per_sec: joins as f64 / seconds,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_max: hist.max() as f64 / 1000.0,
    })
}

struct ConnResult {
    latest: u64,
    errors: u64,
    hist: Histogram<u64>,
}

async fn one_connection(
    url: &str,
    index: usize,
    room: &str,
    back: u64,
    joins: u64,
    deadline: Instant,
) -> anyhow::Result<ConnResult> {
    let mut hist = crate::run::latency_histogram();
    let mut ws = engineio::connect(url, &json!({ "name": format!("since{index}") })).await?;
    let ack = engineio::request(&mut ws, "join", &json!({ "room": room }), 0).await?;
    let Some(latest) = ack["latestSeq"].as_u64().filter(|_| ack["ok"] == true) else {
        bail!("join refused: {}", ack["error"]);
    };
    anyhow::ensure!(
        latest > back,
        "room {room} has {latest} messages, --back is {back}"
    );
    let since = latest - back;
    let mut errors = 0;
    for n in 0..joins {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let ack = engineio::request(
            &mut ws,
            "join",
            &json!({ "room": room, "since": since }),
            n + 1,
        )
        .await?;
        let took = sent.elapsed();
        let missed = ack["missed"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let complete = ack["ok"] == true
            && missed.len() as u64 == back
            && missed.first().and_then(|m| m["seq"].as_u64()) == Some(since + 1)
            && missed.last().and_then(|m| m["seq"].as_u64()) == Some(latest);
        if complete {
            let _ = hist.record((took.as_micros() as u64).max(1));
        } else {
            errors += 1;
        }
    }
    Ok(ConnResult {
        latest,
        errors,
        hist,
    })
}

#[allow(clippy::print_stdout)]
pub fn print(r: &SinceResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "{} [{}]: {} joins with since = latestSeq − {} in room {} (latestSeq {}, {} messages stored), {} connections, {:.1} s",
        r.label,
        r.scenario,
        r.joins,
        r.back,
        r.room,
        r.latest_seq,
        r.stored,
        r.connections,
        r.seconds
    );
    println!(
        "  latency send→ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} joins/s; errors {}",
        r.latency_ms_p50, r.latency_ms_p99, r.latency_ms_max, r.joins_per_sec, r.errors
    );
}
