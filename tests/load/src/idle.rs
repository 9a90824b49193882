//! Idle connections: open many, hold them, and read the server's memory.
//!
//! One process holds at most its open-files limit of connections (20,000
//! here), so `--procs N` spreads them: this process starts N copies of
//! itself (`idle --child`), each opens its share and says so on stdout,
//! and once all have, the server's memory is read; closing their stdin
//! ends them (and they end by themselves after `--hold-seconds`).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
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
    pub scenario: String,
    pub label: String,
    pub connections: usize,
    pub processes: u16,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub kib_per_connection: f64,
    pub connect_seconds: f64,
}

/// What a child reports once its share is connected.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Share {
    ok: usize,
    failed: usize,
}

/// Runs the idle mode; `None` in a child (it reports on stdout itself).
pub async fn run(args: &Args, opts: &IdleArgs) -> anyhow::Result<Option<IdleResult>> {
    if opts.child {
        child(args, opts).await?;
        return Ok(None);
    }
    anyhow::ensure!(!args.pids.is_empty(), "idle mode needs --pid of the server");
    let before = proc_stats::total_rss(&args.pids);
    let started = Instant::now();
    let (ok, failed, children) = if opts.procs <= 1 {
        let (ok, failed) = open(&args.url, opts.connections, opts.parallel, "idle").await;
        (ok, failed, Vec::new())
    } else {
        spawn_children(args, opts).await?
    };
    let result = async {
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
            scenario: args.scenario.clone(),
            label: args.label.clone(),
            connections: ok,
            processes: opts.procs,
            rss_before_mib: before as f64 / 1024.0,
            rss_after_mib: after as f64 / 1024.0,
            kib_per_connection: after.saturating_sub(before) as f64 / ok.max(1) as f64,
            connect_seconds,
        })
    }
    .await;
    end(children);
    result.map(Some)
}

/// Opens `connections` connections, `parallel` at a time, each held by a
/// task answering pings until the process ends; returns (ok, failed).
async fn open(url: &str, connections: usize, parallel: usize, prefix: &str) -> (usize, usize) {
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..connections {
        let (url, gate, tx) = (url.to_owned(), Arc::clone(&gate), tx.clone());
        let name = format!("{prefix}{i}");
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let ws = engineio::connect(&url, &json!({ "name": name })).await;
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
    // Every connect gives up within engineio::WAIT, so this ends.
    while ok + failed < connections {
        match rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => failed += 1,
            None => break,
        }
        if last_report.elapsed() > Duration::from_secs(1) {
            eprintln!("  {prefix}: {ok} connected, {failed} failed");
            last_report = Instant::now();
        }
    }
    (ok, failed)
}

/// A child: its share, one JSON line on stdout, then hold until stdin
/// closes or --hold-seconds pass.
async fn child(args: &Args, opts: &IdleArgs) -> anyhow::Result<()> {
    let prefix = format!("i{}x", std::process::id());
    let (ok, failed) = open(&args.url, opts.connections, opts.parallel, &prefix).await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&Share { ok, failed })?)?;
    out.flush()?;
    drop(out);
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    let _ = tokio::time::timeout(opts.hold_seconds, stdin_closed).await;
    // Leave at once: the held connections are this process's to drop.
    std::process::exit(0)
}

async fn spawn_children(
    args: &Args,
    opts: &IdleArgs,
) -> anyhow::Result<(usize, usize, Vec<Child>)> {
    let exe = std::env::current_exe()?;
    let procs = usize::from(opts.procs);
    let mut children = Vec::new();
    for p in 0..procs {
        let share = opts.connections / procs + usize::from(p < opts.connections % procs);
        let spawned = Command::new(&exe)
            .args(["--url", &args.url, "--label", &args.label, "idle"])
            .args(["--connections", &share.to_string()])
            .args(["--parallel", &opts.parallel.to_string()])
            .args([
                "--hold-seconds",
                &opts.hold_seconds.as_secs_f64().to_string(),
            ])
            .arg("--child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        match spawned {
            Ok(c) => children.push(c),
            Err(e) => {
                end(children);
                return Err(e.into());
            }
        }
    }
    // Each child's one line, read on a thread; a child connects its share
    // within (share / parallel + 1) × engineio::WAIT at worst.
    let readers: Vec<_> = children
        .iter_mut()
        .map(|c| {
            let stdout = c.stdout.take().expect("piped");
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                serde_json::from_str::<Share>(&line).map_err(std::io::Error::other)
            })
        })
        .collect();
    let worst = engineio::WAIT * (opts.connections / opts.parallel.max(1) + 2) as u32;
    let (mut ok, mut failed) = (0, 0);
    for r in readers {
        match tokio::time::timeout(worst, r).await {
            Ok(Ok(Ok(share))) => {
                ok += share.ok;
                failed += share.failed;
            }
            other => {
                end(children);
                anyhow::bail!("a load process did not report its connections: {other:?}");
            }
        }
    }
    Ok((ok, failed, children))
}

/// Ends the children: their stdin closed, then killed if still there.
fn end(children: Vec<Child>) {
    let mut children = children;
    for c in &mut children {
        drop(c.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for c in &mut children {
        while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}
