//! Changing the keyring of every running server with one command: the
//! keyring file is rewritten, the store's keyring generation is bumped, and
//! every server (polling it each second) reads the file again. A rotation
//! is two such steps — add the new key everywhere, then make it primary —
//! and the second waits until every running server reports holding the new
//! key, so no server is ever handed a message it has no key for.
//!
//! One change at a time, cluster-wide: each holds the store's lease.

use std::time::Duration;

use chatseal_core::{Keyring, SecretKey};

use super::KeyringFile;
use super::guard::{self, KeyUse, now_ms};
use super::kek::Wrapping;
use crate::store::{NodeRecord, Store};

/// A server whose last heartbeat is older than this is not waited for.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// How long a lease lasts if its holder dies without giving it back.
const LEASE: Duration = Duration::from_secs(300);

/// How to rotate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who holds the lease (a server's node id, or the command).
    pub holder: String,
    /// How long to wait for the servers at each step.
    pub wait: Duration,
    /// Rotate only if this is still the primary (automatic rotation: another
    /// server may have rotated first).
    pub only_if_primary: Option<u32>,
}

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new primary key id.
    pub id: u32,
    /// Running servers that picked it up.
    pub servers: usize,
}

/// Holds the store's rotation lease while `f` runs; `Ok(None)` if another
/// holder has it.
pub async fn with_lease<T, F>(store: &Store, holder: &str, f: F) -> anyhow::Result<Option<T>>
where
    F: AsyncFnOnce() -> anyhow::Result<T>,
{
    let now = now_ms();
    let until = now + LEASE.as_millis() as i64;
    if !store.take_key_lease(holder, now, until).await? {
        return Ok(None);
    }
    let outcome = f().await;
    store.release_key_lease(holder).await?;
    outcome.map(Some)
}

/// A keyring read from its file, checked against the store, with how it is
/// kept (wrapped under which KEK, or plain) so it is written back the same.
#[derive(Debug)]
pub struct Checked {
    pub keyring: Keyring,
    pub usage: KeyUse,
    pub wrapping: Option<Wrapping>,
}

/// Loads the keyring file (opening it with its KEK) and checks it against
/// the store.
pub async fn load_checked(store: &Store, file: &KeyringFile) -> anyhow::Result<Checked> {
    let stored = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || file.load()).await??
    };
    let usage = KeyUse::read(store).await?;
    guard::check(&stored.keyring, &file.path.display().to_string(), &usage)?;
    Ok(Checked {
        keyring: stored.keyring,
        usage,
        wrapping: stored.wrapping,
    })
}

/// Writes `keyring` to the file (kept as `wrapping` says), bumps the
/// generation and waits until every running server has read it and `done`
/// holds for it. Returns how many servers there were.
pub async fn publish(
    store: &Store,
    file: &KeyringFile,
    keyring: &Keyring,
    wrapping: Option<&Wrapping>,
    wait: Duration,
    done: impl Fn(&NodeRecord) -> bool,
) -> anyhow::Result<usize> {
    {
        let (file, keyring, wrapping) = (file.clone(), keyring.clone(), wrapping.cloned());
        tokio::task::spawn_blocking(move || file.save(&keyring, wrapping.as_ref())).await??;
    }
    let path = &file.path;
    let generation = store.bump_key_generation().await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let nodes = store
            .key_nodes(now_ms() - NODE_TTL.as_millis() as i64)
            .await?;
        let behind: Vec<&NodeRecord> = nodes
            .iter()
            .filter(|n| n.generation < generation || !done(n))
            .collect();
        if behind.is_empty() {
            return Ok(nodes.len());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} of {} running server(s) did not take keyring generation {generation} within \
                 {:?} (node {}: holds key ids {:?}, primary {}). Does every server read {}? \
                 Their logs say why a reload was refused",
                behind.len(),
                nodes.len(),
                wait,
                behind[0].node,
                behind[0].key_ids,
                behind[0].primary,
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Adds a fresh key under a new id on every running server, then makes it
/// primary everywhere. `Ok(None)` if another rotation holds the lease, or
/// if `only_if_primary` is no longer the primary.
pub async fn rotate(
    store: &Store,
    file: &KeyringFile,
    options: &Options,
) -> anyhow::Result<Option<Rotated>> {
    let path = &file.path;
    with_lease(store, &options.holder, async || {
        let Checked {
            mut keyring,
            usage,
            wrapping,
        } = load_checked(store, file).await?;
        if options
            .only_if_primary
            .is_some_and(|p| p != keyring.primary())
        {
            return Ok(None);
        }
        // A new id, never one the store has seen (a key given up by
        // `retire --force` keeps its id).
        let highest = keyring
            .key_ids()
            .chain(usage.records.keys().copied())
            .max()
            .unwrap_or(0);
        let id = highest
            .checked_add(1)
            .ok_or_else(|| anyhow::anyhow!("key ids are exhausted"))?;
        keyring.add_key(id, SecretKey::generate())?;
        let kcv = keyring.check_value(id).expect("just added");
        let recorded = store.record_key(id, &kcv, now_ms()).await?;
        anyhow::ensure!(
            recorded == kcv,
            "key id {id} was recorded by someone else meanwhile"
        );
        // Step 1: every server holds the new key (still sealing with the old).
        publish(
            store,
            file,
            &keyring,
            wrapping.as_ref(),
            options.wait,
            |n| n.key_ids.contains(&id),
        )
        .await
        .map_err(|e| {
            e.context(format!(
                "key {id} was added to {} but is NOT primary: run `keys rotate` again once \
                     every server reads that file",
                path.display()
            ))
        })?;
        // Step 2: every server seals with it.
        keyring.promote(id)?;
        let servers = publish(
            store,
            file,
            &keyring,
            wrapping.as_ref(),
            options.wait,
            |n| n.primary == id,
        )
        .await?;
        Ok(Some(Rotated { id, servers }))
    })
    .await
    .map(Option::flatten)
}
