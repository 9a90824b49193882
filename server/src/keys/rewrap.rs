//! `keys rewrap`: re-seals every stored message under the primary key,
//! while servers run, so older keys can be retired without losing history.
//!
//! It works in batches: read up to N messages under a key id below the
//! primary, re-seal them in the engine (`Sealer::rewrap_text`: the
//! plaintext never leaves it), and write the new envelopes in one
//! transaction, each row only if it is still under the key it was read
//! under. A message keeps its id, room, seq, sender and timestamp, so its
//! context (room, id, sender) is the same and it opens as before. A rewrapped
//! message leaves the range the next batch reads, so a killed run simply
//! starts again where it stopped. Readers that cached an old envelope still
//! open it until its key is retired.

// A command's output is what it prints.
#![allow(clippy::print_stdout)]

use std::io::IsTerminal as _;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use chatseal_core::sealer::Rewrapped;
use chatseal_core::{Sealer, chat_context};

use super::guard::{self, KeyUse, now_ms};
use super::rotate::NODE_TTL;
use crate::config::Config;
use crate::store::{NewEnvelope, Store, StoredMessage};

/// Messages that do not open are set aside (and reported); past this many
/// the run stops, as something is wrong beyond a few damaged rows.
const MAX_FAILURES: usize = 1000;

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
    let sealer = Arc::new(Sealer::new(keyring));
    let total = store.messages_below(primary).await?;
    let progress = Progress::new(total, batch);
    let limiter = NonZeroU32::new(u32::try_from(rate).unwrap_or(u32::MAX)).map(|r| {
        let burst = NonZeroU32::new(u32::try_from(batch).unwrap_or(u32::MAX)).expect("≥ 1");
        governor::RateLimiter::direct(governor::Quota::per_second(r).allow_burst(burst))
    });
    let mut failed: Vec<String> = Vec::new();
    let mut done = 0u64;
    let mut counted = 0u64;
    loop {
        let rows = store
            .messages_to_rewrap(primary, batch as i64, &failed)
            .await?;
        if rows.is_empty() {
            break;
        }
        if let Some(limiter) = &limiter {
            let n = NonZeroU32::new(rows.len() as u32).expect("not empty");
            limiter.until_n_ready(n).await?;
        }
        let worker = Arc::clone(&sealer);
        let (fresh, bad) = tokio::task::spawn_blocking(move || rewrap_all(&worker, &rows)).await?;
        // The nonce budget: every reseal is a seal under the primary,
        // counted in the transaction that stores it.
        let seals: u64 = sealer.seal_counts().iter().map(|(_, n)| n).sum();
        store
            .replace_envelopes(&fresh, (primary, seals - counted))
            .await?;
        counted = seals;
        done += fresh.len() as u64;
        for (id, why) in bad {
            eprintln!("message {id} does not open ({why}); left under its key");
            failed.push(id);
        }
        anyhow::ensure!(
            failed.len() <= MAX_FAILURES,
            "more than {MAX_FAILURES} messages do not open: stopping. Is this the right keyring?"
        );
        progress.advance(done);
    }
    progress.finish(done);
    if failed.is_empty() {
        println!("rewrapped {done} message(s); every stored message is under key {primary}");
        Ok(())
    } else {
        anyhow::bail!(
            "rewrapped {done} message(s); {} do not open and stay under their keys (`keys retire` \
             will count them)",
            failed.len()
        )
    }
}

/// Re-seals `rows` in the engine. Returns the new envelopes and the
/// messages that did not open (id, error code).
fn rewrap_all(
    sealer: &Sealer,
    rows: &[StoredMessage],
) -> (Vec<NewEnvelope>, Vec<(String, String)>) {
    let mut fresh = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for m in rows {
        let context = chat_context(&m.room, &m.id, &m.sender);
        match sealer.rewrap_text(&m.room, &context, &m.message) {
            Ok(Rewrapped::Resealed { key_id, envelope }) => fresh.push(NewEnvelope {
                id: m.id.clone(),
                old_key_id: m.key_id,
                key_id,
                envelope,
            }),
            // Under the primary already (the stored key id said otherwise):
            // the row's key id is put right.
            Ok(Rewrapped::Unchanged) => fresh.push(NewEnvelope {
                id: m.id.clone(),
                old_key_id: m.key_id,
                key_id: sealer.primary_key_id(),
                envelope: m.message.clone(),
            }),
            Err(e) => bad.push((m.id.clone(), e.kind().code().to_owned())),
        }
    }
    (fresh, bad)
}

/// A progress bar (count, rate, ETA) on a terminal; a line per batch on a
/// pipe.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    started: Instant,
}

impl Progress {
    fn new(total: u64, _batch: usize) -> Progress {
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
