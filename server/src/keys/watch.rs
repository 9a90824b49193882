//! What every running server does about keys, once a second:
//!
//! * polls the keyring generation in the store; when `keys rotate` or
//!   `keys retire` bumped it, reads the keyring file again and installs it
//!   (after the same checks as a SIGHUP reload);
//! * tells the store which keys it holds (a heartbeat), so a rotation
//!   promotes a new key only once every server has it;
//! * every few seconds, adds its seals to the store's per-key counts, so
//!   the nonce budget survives restarts (and once more when it stops);
//! * with automatic rotation on, rotates when the primary is older than
//!   `--rotate-after` or has sealed `--rotate-after-seals` times — once per
//!   cluster, under the store's rotation lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatseal_core::Keyring;

use super::guard::{self, KeyUse, now_ms};
use super::rotate;
use crate::app::AppState;
use crate::config::Config;

/// How often a server polls the generation and sends its heartbeat.
pub const POLL: Duration = Duration::from_secs(1);
/// Seal counts are flushed every this many polls.
const FLUSH_EVERY: u32 = 5;
/// The automatic-rotation condition is read every this many polls.
const AUTO_EVERY: u32 = 5;

/// Checks `keyring` as a reload and installs it: seals with its primary
/// from then on and, if the primary changed, sends members the new room
/// keys. On a refusal the current keyring stays.
pub async fn install(
    state: &AppState,
    keyring: Keyring,
    source: &str,
    why: &str,
) -> anyhow::Result<()> {
    let current = state.sealer.keyring();
    guard::check_reload(&current, &keyring)?;
    let usage = KeyUse::read(&state.store).await?;
    guard::check(&keyring, source, &usage)?;
    guard::record_primary(&keyring, source, &state.store).await?;
    let (before, primary, min_decrypt) =
        (current.primary(), keyring.primary(), keyring.min_decrypt());
    let added: Vec<u32> = keyring
        .usable_key_ids()
        .filter(|id| current.key_ids().all(|k| k != *id))
        .collect();
    state.sealer.replace_keyring(keyring);
    tracing::info!(
        primary,
        was = before,
        min_decrypt,
        ?added,
        why,
        "keyring reloaded"
    );
    crate::chat::rooms::announce_keys(state, &added).await;
    Ok(())
}

/// The running watch; [`Watch::stop`] flushes the counts and says goodbye.
#[derive(Debug)]
pub struct Watch {
    node: String,
    state: AppState,
    flushed: Arc<tokio::sync::Mutex<BTreeMap<u32, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the watch for the running server.
pub fn spawn(state: &AppState, config: &Config) -> Watch {
    let node = uuid::Uuid::now_v7().to_string();
    let flushed = Arc::new(tokio::sync::Mutex::new(BTreeMap::new()));
    let task = tokio::spawn(run(
        Arc::clone(state),
        config.clone(),
        node.clone(),
        Arc::clone(&flushed),
    ));
    Watch {
        node,
        state: Arc::clone(state),
        flushed,
        task,
    }
}

impl Watch {
    /// Stops polling, flushes the seal counts and removes the heartbeat.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Err(e) = flush(&self.state, &self.flushed).await {
            tracing::warn!(error = %e, "could not record the last seal counts");
        }
        let _ = self.state.store.remove_key_node(&self.node).await;
    }
}

async fn run(
    state: AppState,
    config: Config,
    node: String,
    flushed: Arc<tokio::sync::Mutex<BTreeMap<u32, u64>>>,
) {
    let source = guard::source_of(&config);
    let rotating = Arc::new(AtomicBool::new(false));
    let mut applied = state.store.key_generation().await.unwrap_or(0);
    let mut refused = None;
    let mut pending = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u32.. {
        tick.tick().await;
        match state.store.key_generation().await {
            Ok(generation) if generation != applied => {
                let outcome = match super::reload_blocking(
                    &config,
                    super::RELOAD_TIMEOUT,
                    &mut pending,
                )
                .await
                {
                    Ok(keyring) => install(&state, keyring, &source, "keyring generation").await,
                    Err(e) => Err(e),
                };
                // Only a generation this server applied is reported: `keys
                // retire` and `keys rewrap` trust the heartbeat. A refused
                // one is retried every poll, logged once.
                match outcome {
                    Ok(()) => {
                        applied = generation;
                        refused = None;
                    }
                    Err(e) if refused != Some(generation) => {
                        tracing::error!(
                            error = %e,
                            generation,
                            "keyring reload refused; keeping the current one, retrying"
                        );
                        refused = Some(generation);
                    }
                    Err(e) => tracing::debug!(error = %e, generation, "keyring reload refused"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "store unavailable: keyring generation"),
        }
        let keyring = state.sealer.keyring();
        let beat = crate::store::NodeRecord {
            node: node.clone(),
            key_ids: keyring.key_ids().collect(),
            primary: keyring.primary(),
            generation: applied,
            seen: now_ms(),
        };
        if let Err(e) = state.store.key_heartbeat(&beat).await {
            tracing::debug!(error = %e, "store unavailable: key heartbeat");
        }
        if n % FLUSH_EVERY == FLUSH_EVERY - 1
            && let Err(e) = flush(&state, &flushed).await
        {
            tracing::debug!(error = %e, "store unavailable: seal counts kept for later");
        }
        if n % AUTO_EVERY == AUTO_EVERY - 1 {
            auto_rotate(&state, &config, &node, &keyring, &rotating).await;
        }
    }
}

/// Adds the seals since the last flush to the store's counts.
async fn flush(
    state: &AppState,
    flushed: &tokio::sync::Mutex<BTreeMap<u32, u64>>,
) -> anyhow::Result<()> {
    let mut flushed = flushed.lock().await;
    let counts = state.sealer.seal_counts();
    let deltas: Vec<(u32, u64)> = counts
        .iter()
        .map(|(id, n)| (*id, n - flushed.get(id).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect();
    state.store.add_seals(&deltas).await?;
    flushed.extend(counts);
    Ok(())
}

/// Whether the primary is due for rotation: older than `rotate_after`, or
/// `rotate_after_seals` seals under it (counted by every server).
pub fn due(config: &Config, created_ms: i64, seals: u64, now_ms: i64) -> Option<&'static str> {
    if let Some(after) = config.rotate_after {
        let age = u128::try_from(now_ms.saturating_sub(created_ms)).unwrap_or(0);
        if age >= after.as_millis() {
            return Some("the primary key reached --rotate-after");
        }
    }
    if config.rotate_after_seals > 0 && seals >= config.rotate_after_seals {
        return Some("the primary key reached --rotate-after-seals");
    }
    None
}

async fn auto_rotate(
    state: &AppState,
    config: &Config,
    node: &str,
    keyring: &Keyring,
    rotating: &Arc<AtomicBool>,
) {
    if config.rotate_after.is_none() && config.rotate_after_seals == 0 {
        return;
    }
    let Ok(records) = state.store.key_records().await else {
        return;
    };
    let primary = keyring.primary();
    let Some(record) = records.iter().find(|r| r.id == primary) else {
        return;
    };
    let Some(why) = due(config, record.created, record.seals, now_ms()) else {
        return;
    };
    let Some(file) = super::KeyringFile::of(config) else {
        tracing::warn!(
            key_id = primary,
            reason = why,
            "rotation due, but the keyring comes from ${} and cannot be rotated here",
            config.keyring_env
        );
        return;
    };
    if rotating.swap(true, Ordering::SeqCst) {
        return;
    }
    let (state, node, rotating) = (Arc::clone(state), node.to_owned(), Arc::clone(rotating));
    tokio::spawn(async move {
        let options = rotate::Options {
            holder: node,
            wait: Duration::from_secs(60),
            only_if_primary: Some(primary),
        };
        match rotate::rotate(&state.store, &file, &options).await {
            Ok(Some(done)) => {
                tracing::info!(
                    key_id = done.id,
                    reason = why,
                    "rotated the keyring automatically"
                )
            }
            Ok(None) => {} // another server rotated first
            Err(e) => tracing::error!(error = %e, "automatic rotation failed"),
        }
        rotating.store(false, Ordering::SeqCst);
    });
}
