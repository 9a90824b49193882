//! Idle connections: open many, hold them, and read the server's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::{Args, IdleArgs};
use crate::{engineio, proc_stats};

#[derive(Debug, serde::Serialize)]
pub struct IdleResult {
    pub label: String,
    pub connections: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub kib_per_connection: f64,
    pub connect_seconds: f64,
}

pub async fn run(args: &Args, opts: &IdleArgs) -> anyhow::Result<IdleResult> {
    anyhow::ensure!(!args.pids.is_empty(), "idle mode needs --pid of the server");
    let before = proc_stats::total_rss(&args.pids);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..opts.connections {
        let (url, gate, tx) = (args.url.clone(), Arc::clone(&gate), tx.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let ws = engineio::connect(&url, &json!({ "name": format!("idle{i}") })).await;
            drop(permit);
            let _ = tx.send(ws.is_ok());
            // Hold the connection, answering pings, until the run ends.
            if let Ok(mut ws) = ws {
                while let Some(Ok(frame)) = ws.next().await {
                    if matches!(&frame, WsMessage::Text(t) if t.as_str() == "2") {
                        let _ = ws.send(engineio::pong()).await;
                    }
                }
            }
        });
    }
    drop(tx);
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut last_report = Instant::now();
    while ok + failed < opts.connections {
        match rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => failed += 1,
            None => break,
        }
        if last_report.elapsed() > Duration::from_secs(1) {
            eprintln!("  {ok} connected, {failed} failed");
            last_report = Instant::now();
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} connections failed",
        opts.connections
    );
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let the server settle (handshake buffers freed, allocator quiet).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = proc_stats::total_rss(&args.pids);
    Ok(IdleResult {
        label: args.label.clone(),
        connections: ok,
        rss_before_mib: before as f64 / 1024.0,
        rss_after_mib: after as f64 / 1024.0,
        kib_per_connection: after.saturating_sub(before) as f64 / ok as f64,
        connect_seconds,
    })
}
