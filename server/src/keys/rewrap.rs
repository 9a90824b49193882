//! `keys rewrap`: re-seals every stored message under the primary key,
//! while servers run, so older keys can be retired without losing history.
//!
//! It walks the messages table in pages of up to N rows still under a key
//! id below the primary (by SQLite rowid or PostgreSQL id, each page
//! starting where the last one ended), re-seals them in the engine
//! (`Sealer::rewrap_text`: the plaintext never leaves it), and writes the
//! new envelopes in one transaction per page, each row only if it is still
//! under the key it was read under. Reading and sealing run a page ahead of
//! writing, on the other core. A message keeps its id, room, seq, sender
//! and timestamp, so its context (room, id, sender) is the same and it
//! opens as before. A rewrapped message leaves the range read, so a killed
//! run simply starts again and finds what is left. Readers that cached an
//! old envelope still open it until its key is retired.

// A command's output is what it prints.
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatseal_core::sealer::Rewrapped;
use chatseal_core::{Sealer, chat_context};

use super::guard::{self, KeyUse, now_ms};
use super::rotate::NODE_TTL;
use crate::config::Config;
use crate::store::{NewEnvelope, RewrapCursor, RewrapRow, Store};

/// Messages that do not open are set aside (and reported); past this many
/// the run stops, as something is wrong beyond a few damaged rows.
const MAX_FAILURES: usize = 1000;

/// Sealed pages waiting for the writer: one, so the reader works on the
/// next page while the writer stores this one, and memory stays a few
/// pages.
const AHEAD: usize = 1;

/// About the most bytes of messages a page holds: after the first page,
/// pages of large messages get fewer rows than `--batch`.
const PAGE_BYTES: usize = 32 << 20;

/// Rows of the first page at most, before message sizes are known.
const FIRST_PAGE: usize = 2000;

type Limiter = governor::DefaultDirectRateLimiter;

/// Runs `keys rewrap`.
pub async fn run(config: &Config, store: &Store, batch: usize, rate: u64) -> anyhow::Result<()> {
    let batch = batch.clamp(1, 100_000);
    let keyring = super::reload(config)?;
    let source = guard::source_of(config);
    let usage = KeyUse::read(store).await?;
    guard::check(&keyring, &source, &usage)?;
    let primary = keyring.primary();
    // Every running server must hold the key messages are re-sealed under.
    let nodes = store
        .key_nodes(now_ms() - NODE_TTL.as_millis() as i64)
        .await?;
    if let Some(n) = nodes.iter().find(|n| !n.key_ids.contains(&primary)) {
        anyhow::bail!(
            "running server {} does not hold key {primary} yet (it has {:?}): let `keys rotate` \
             finish, or check that it reads {source}",
            n.node,
            n.key_ids
        );
    }
    guard::record_primary(&keyring, &source, store).await?;
    let total = store.messages_below(primary).await?;
    let mut run = Run {
        store: store.clone(),
        sealer: Arc::new(Sealer::new(keyring)),
        primary,
        batch,
        limiter: NonZeroU32::new(u32::try_from(rate).unwrap_or(u32::MAX)).map(|r| {
            let burst = NonZeroU32::new(u32::try_from(batch).unwrap_or(u32::MAX)).expect("≥ 1");
            Arc::new(Limiter::direct(
                governor::Quota::per_second(r).allow_burst(burst),
            ))
        }),
        progress: Progress::new(total),
        failed: HashSet::new(),
        done: 0,
        times: Times::default(),
    };
    // A walk finds every message that was under an older key when it
    // passed; one stored behind it meanwhile (by a server that had not
    // taken the new primary yet) is found by the next walk.
    loop {
        let found = run.walk().await?;
        if found == 0 || store.messages_below(primary).await? <= run.failed.len() as u64 {
            break;
        }
    }
    run.progress.finish(run.done);
    let t = run.times;
    tracing::debug!(
        read_s = t.read.as_secs_f64(),
        seal_s = t.seal.as_secs_f64(),
        write_s = t.write.as_secs_f64(),
        yielded_s = t.yielded.as_secs_f64(),
        "rewrap: time per phase (reading and sealing overlap writing)"
    );
    let done = run.done;
    if run.failed.is_empty() {
        println!("rewrapped {done} message(s); every stored message is under key {primary}");
        Ok(())
    } else {
        anyhow::bail!(
            "rewrapped {done} message(s); {} do not open and stay under their keys (`keys retire` \
             will count them)",
            run.failed.len()
        )
    }
}

/// One `keys rewrap` run.
struct Run {
    store: Store,
    sealer: Arc<Sealer>,
    primary: u32,
    batch: usize,
    limiter: Option<Arc<Limiter>>,
    progress: Progress,
    /// Ids of messages that do not open, set aside.
    failed: HashSet<String>,
    /// Messages rewritten.
    done: u64,
    times: Times,
}

/// Where the time went, for `--log debug`.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    read: Duration,
    seal: Duration,
    write: Duration,
    /// Left to servers writing too.
    yielded: Duration,
}

/// A page, sealed: new envelopes, the messages that did not open (id,
/// error code), and how many seals made the envelopes.
struct Sealed {
    fresh: Vec<NewEnvelope>,
    bad: Vec<(String, String)>,
    seals: u64,
}

impl Run {
    /// Walks the table once: a task reads and seals page after page while
    /// this one writes them. Returns how many messages under an older key
    /// it found (set-aside ones not counted).
    async fn walk(&mut self) -> anyhow::Result<u64> {
        let (pages, mut sealed) = tokio::sync::mpsc::channel(AHEAD);
        // Aborted when dropped: a write error, or too many messages that do
        // not open, stops the reader too.
        let mut reader = Abort(tokio::spawn(read_and_seal(
            self.store.clone(),
            Arc::clone(&self.sealer),
            self.primary,
            self.batch,
            self.limiter.clone(),
            self.failed.clone(),
            pages,
        )));
        let mut writer = self.store.envelope_writer();
        while let Some(page) = sealed.recv().await {
            let Sealed { fresh, bad, seals } = page;
            for (id, why) in bad {
                eprintln!("message {id} does not open ({why}); left under its key");
                self.failed.insert(id);
            }
            anyhow::ensure!(
                self.failed.len() <= MAX_FAILURES,
                "more than {MAX_FAILURES} messages do not open: stopping. Is this the right keyring?"
            );
            let started = Instant::now();
            // The nonce budget: every reseal is a seal under the primary,
            // counted in the transaction that stores it.
            let replaced = writer.replace(&fresh, (self.primary, seals)).await?;
            let held = started.elapsed();
            self.times.write += held;
            self.done += fresh.len() as u64;
            self.progress.advance(self.done);
            // SQLite has one writer at a time, and one that waits polls at
            // growing intervals: while servers store messages too, leave
            // the lock free as long as this page held it, or their acks
            // would wait for the whole run.
            if replaced.others_wrote {
                tokio::time::sleep(held).await;
                self.times.yielded += held;
            }
        }
        let (found, times) = (&mut reader.0).await??;
        self.times.read += times.read;
        self.times.seal += times.seal;
        Ok(found)
    }
}

/// A task that is aborted when its handle is dropped.
struct Abort<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Abort<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads pages of messages under a key id below `primary` from the start
/// of the table, leaves out those in `skip`, re-seals them and hands them
/// to the writer, until the table ends or the writer stops taking them.
async fn read_and_seal(
    store: Store,
    sealer: Arc<Sealer>,
    primary: u32,
    batch: usize,
    limiter: Option<Arc<Limiter>>,
    skip: HashSet<String>,
    pages: tokio::sync::mpsc::Sender<Sealed>,
) -> anyhow::Result<(u64, Times)> {
    let mut cursor = RewrapCursor::default();
    let mut found = 0u64;
    let mut times = Times::default();
    let mut rows_per_page = batch.min(FIRST_PAGE);
    loop {
        let started = Instant::now();
        let mut rows = store
            .messages_to_rewrap(primary, &cursor, rows_per_page as i64)
            .await?;
        times.read += started.elapsed();
        let Some(last) = rows.last() else {
            break;
        };
        cursor = last.cursor();
        let largest = rows.iter().map(row_bytes).max().unwrap_or(1);
        rows_per_page = (PAGE_BYTES / largest).clamp(1, batch);
        rows.retain(|m| !skip.contains(&m.id));
        if rows.is_empty() {
            continue;
        }
        found += rows.len() as u64;
        if let Some(limiter) = &limiter {
            let n = NonZeroU32::new(rows.len() as u32).expect("not empty");
            limiter.until_n_ready(n).await?;
        }
        let started = Instant::now();
        let worker = Arc::clone(&sealer);
        let page = tokio::task::spawn_blocking(move || rewrap_all(&worker, rows)).await?;
        times.seal += started.elapsed();
        if pages.send(page).await.is_err() {
            break;
        }
    }
    Ok((found, times))
}

/// About what a row takes in memory.
fn row_bytes(m: &RewrapRow) -> usize {
    m.envelope.len() + m.id.len() + m.room.len() + m.sender.len() + 64
}

/// Re-seals `rows` in the engine.
fn rewrap_all(sealer: &Sealer, rows: Vec<RewrapRow>) -> Sealed {
    let mut fresh = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    let mut seals = 0;
    for m in rows {
        let context = chat_context(&m.room, &m.id, &m.sender);
        let (key_id, envelope) = match sealer.rewrap_text(
            chatseal_core::Room::at(&m.room, m.epoch),
            &context,
            &m.envelope,
        ) {
            Ok(Rewrapped::Resealed { key_id, envelope }) => {
                seals += 1;
                (key_id, envelope)
            }
            // Under the primary already (the stored key id said otherwise):
            // the row's key id is put right.
            Ok(Rewrapped::Unchanged) => (sealer.primary_key_id(), m.envelope),
            Err(e) => {
                bad.push((m.id, e.kind().code().to_owned()));
                continue;
            }
        };
        fresh.push(NewEnvelope {
            rowid: m.rowid,
            id: m.id,
            old_key_id: m.key_id,
            key_id,
            envelope,
        });
    }
    Sealed { fresh, bad, seals }
}

/// A progress bar (count, rate, ETA) on a terminal; a line per batch on a
/// pipe.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    started: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {human_pos}/{human_len} messages  {per_sec}  ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar
        });
        Progress {
            bar,
            total,
            started: Instant::now(),
        }
    }

    fn advance(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let secs = self.started.elapsed().as_secs_f64().max(1e-9);
                println!(
                    "rewrapped {done}/{} ({:.0} msg/s)",
                    self.total,
                    done as f64 / secs
                );
            }
        }
    }

    fn finish(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{done} message(s) in {secs:.2} s: {:.0} msg/s",
            done as f64 / secs
        );
    }
}
