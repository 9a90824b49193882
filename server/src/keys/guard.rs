//! The store knows its keys, so no keyring change can lose a message.
//!
//! A keyring is checked against the store at start, on every reload and
//! before every `keys` command that writes one:
//!
//! * every key id the store recorded must, if the keyring has it, be the
//!   same key (same check value): a different key under an old id opens
//!   nothing sealed under it;
//! * every key id that stored messages use must be in the keyring and not
//!   below `min_decrypt`, unless `keys retire --force` gave those messages up;
//! * a key id messages use that the store has no check value for (a
//!   database from before the table) must open one of those messages, and
//!   then its check value is recorded.
//!
//! A reload must moreover keep every key id it shares with the running
//! keyring the same key, and never move `primary` backwards.
//!
//! Every refusal names the key id and what to do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chatseal_core::{Keyring, Sealer, chat_context};

use crate::config::Config;
use crate::store::{KeyRecord, Store};

/// What the store says about keys: the records and message counts.
#[derive(Debug, Clone, Default)]
pub struct KeyUse {
    pub records: BTreeMap<u32, KeyRecord>,
    pub messages: BTreeMap<u32, u64>,
}

impl KeyUse {
    pub async fn read(store: &Store) -> anyhow::Result<KeyUse> {
        Ok(KeyUse {
            records: store
                .key_records()
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect(),
            messages: store.messages_per_key().await?,
        })
    }

    fn retired_by_store(&self, id: u32) -> bool {
        self.records.get(&id).is_some_and(|r| r.retired)
    }
}

/// Checks `keyring` (read from `source`) against what the store records.
/// Legacy key ids (messages but no record) are not checked here: see
/// [`verify_unrecorded`].
pub fn check(keyring: &Keyring, source: &str, usage: &KeyUse) -> anyhow::Result<()> {
    for (id, record) in &usage.records {
        if let Some(kcv) = keyring.check_value(*id) {
            anyhow::ensure!(
                kcv == record.check_value,
                "key id {id} in {source} is not the key the store recorded under that id \
                 (check value {kcv}, the store has {}): envelopes sealed under key {id} would \
                 not open. Restore the keyring from its backup; never reuse a key id for a new key",
                record.check_value
            );
        }
    }
    for (&id, &n) in &usage.messages {
        if n == 0 || usage.retired_by_store(id) {
            continue;
        }
        if keyring.key_ids().all(|k| k != id) {
            anyhow::bail!(
                "the store holds {n} message(s) sealed under key id {id}, which {source} lacks. \
                 Restore the keyring from its backup (or point --keyring-file / $CHATSEAL_KEYRING \
                 at the right one); if that key is lost for good, `chatseal-server keys retire \
                 --below {} --force` gives those messages up",
                id.saturating_add(1)
            );
        }
        anyhow::ensure!(
            id >= keyring.min_decrypt(),
            "the store holds {n} message(s) sealed under key id {id}, which {source} retires \
             (min_decrypt {}). Lower min_decrypt, then run `chatseal-server keys rewrap` and \
             `chatseal-server keys retire --below {}`",
            keyring.min_decrypt(),
            keyring.min_decrypt()
        );
    }
    Ok(())
}

/// For a reload: `next` must keep every key of `current` it lists the
/// same, and must not move `primary` backwards.
pub fn check_reload(current: &Keyring, next: &Keyring) -> anyhow::Result<()> {
    for id in current.key_ids() {
        if let (Some(a), Some(b)) = (current.check_value(id), next.check_value(id)) {
            anyhow::ensure!(
                a == b,
                "the new keyring holds a different key under key id {id}: envelopes sealed \
                 under it would not open. Put the old key back; a new key takes a new id"
            );
        }
    }
    anyhow::ensure!(
        next.primary() >= current.primary(),
        "the new keyring moves primary back from {} to {}: servers still holding \
         the newer key would seal what others cannot open. Use a new key id for a new primary",
        current.primary(),
        next.primary()
    );
    Ok(())
}

/// Key ids that messages use but the store has no check value for: each
/// must open one of its messages, then its check value is recorded.
pub async fn verify_unrecorded(
    keyring: &Keyring,
    source: &str,
    store: &Store,
    usage: &KeyUse,
) -> anyhow::Result<()> {
    let unrecorded: Vec<u32> = usage
        .messages
        .keys()
        .copied()
        .filter(|id| !usage.records.contains_key(id))
        .collect();
    if unrecorded.is_empty() {
        return Ok(());
    }
    let sealer = Sealer::new(keyring.clone());
    for id in unrecorded {
        let Some(kcv) = keyring.check_value(id) else {
            continue; // `check` has refused this already
        };
        let Some(m) = store.sample_message(id).await? else {
            continue;
        };
        let context = chat_context(&m.room, &m.id, &m.sender);
        if sealer
            .open_text(
                chatseal_core::Room::at(&m.room, m.epoch),
                &context,
                &m.message,
            )
            .is_err()
        {
            anyhow::bail!(
                "key id {id} in {source} does not open message {} (room {}), which is sealed \
                 under key id {id}: this is not the key those messages were sealed with. \
                 Restore the keyring from its backup",
                m.id,
                m.room
            );
        }
        store.record_key(id, &kcv, now_ms()).await?;
        tracing::info!(
            key_id = id,
            "recorded the check value of a key stored messages use"
        );
    }
    Ok(())
}

/// The whole start-up check, then records the primary (the key that is
/// about to seal). Returns the usage read.
pub async fn at_start(keyring: &Keyring, source: &str, store: &Store) -> anyhow::Result<KeyUse> {
    let usage = KeyUse::read(store).await?;
    check(keyring, source, &usage)?;
    verify_unrecorded(keyring, source, store, &usage).await?;
    record_primary(keyring, source, store).await?;
    Ok(usage)
}

/// Records the primary's check value before anything is sealed under it;
/// refuses if the store already holds another key under its id (a race
/// with another server or command).
pub async fn record_primary(keyring: &Keyring, source: &str, store: &Store) -> anyhow::Result<()> {
    let id = keyring.primary();
    let kcv = keyring
        .check_value(id)
        .expect("the primary is in the keyring");
    let stored = store.record_key(id, &kcv, now_ms()).await?;
    anyhow::ensure!(
        stored == kcv,
        "key id {id} in {source} is not the key the store recorded under that id \
         (check value {kcv}, the store has {stored}). Restore the keyring from its backup"
    );
    Ok(())
}

/// Where the keyring comes from, for messages: `$CHATSEAL_KEYRING` or the
/// file's path.
pub fn source_of(config: &Config) -> String {
    match keyring_path(config) {
        Some(path) => path.display().to_string(),
        None => format!("${}", config.keyring_env),
    }
}

/// The keyring file `keys` commands rewrite: `--keyring-file`, or
/// `<data-dir>/keyring.json`; `None` when the environment variable holds
/// the keyring (it takes precedence, and no command can change it).
pub fn keyring_path(config: &Config) -> Option<PathBuf> {
    if std::env::var_os(&config.keyring_env).is_some() {
        return None;
    }
    Some(
        config
            .keyring_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("keyring.json")),
    )
}

/// Refuses to generate a development keyring for a store that already
/// holds messages or keys: its key 1 would be a new key, and nothing
/// stored would open.
pub async fn may_generate(config: &Config, store: &Store) -> anyhow::Result<()> {
    let Some(path) = keyring_path(config) else {
        return Ok(());
    };
    if config.keyring_file.is_some() || path.exists() {
        return Ok(());
    }
    let usage = KeyUse::read(store).await?;
    let stored: u64 = usage.messages.values().sum();
    let ids: std::collections::BTreeSet<u32> = usage
        .records
        .keys()
        .chain(usage.messages.keys())
        .copied()
        .collect();
    if !ids.is_empty() {
        anyhow::bail!(
            "{} does not exist, and the store already holds {stored} message(s) and keys \
             (key ids {}): a new development keyring would open none of them. Put the keyring \
             back (restore keyring.json from its backup, or set --keyring-file / \
             $CHATSEAL_KEYRING); never start a fresh data dir against a database in use",
            path.display(),
            ids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    crate::auth::unix_now().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatseal_core::SecretKey;

    fn ring(keys: &[(u32, u8)], primary: u32, min: u32) -> Keyring {
        Keyring::from_parts(
            keys.iter()
                .map(|(id, b)| (*id, SecretKey::from_bytes([*b; 32]))),
            primary,
            min,
        )
        .unwrap()
    }

    fn usage(records: &[(u32, u8, bool)], messages: &[(u32, u64)]) -> KeyUse {
        KeyUse {
            records: records
                .iter()
                .map(|(id, b, retired)| {
                    (
                        *id,
                        KeyRecord {
                            id: *id,
                            check_value: chatseal_core::key_check_value(&SecretKey::from_bytes(
                                [*b; 32],
                            )),
                            seals: 0,
                            created: 0,
                            retired: *retired,
                        },
                    )
                })
                .collect(),
            messages: messages.iter().copied().collect(),
        }
    }

    fn refusal(r: anyhow::Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn a_different_key_under_a_recorded_id_is_refused() {
        let u = usage(&[(1, 1, false)], &[(1, 5)]);
        check(&ring(&[(1, 1)], 1, 1), "the file", &u).unwrap();
        let e = refusal(check(&ring(&[(1, 9)], 1, 1), "the file", &u));
        assert!(e.contains("key id 1 in the file is not the key"), "{e}");
        assert!(e.contains("Restore the keyring"), "{e}");
    }

    #[test]
    fn a_missing_or_retired_key_that_messages_need_is_refused() {
        let u = usage(&[(1, 1, false), (2, 2, false)], &[(1, 5), (2, 3)]);
        let e = refusal(check(&ring(&[(2, 2)], 2, 2), "the file", &u));
        assert!(e.contains("5 message(s) sealed under key id 1"), "{e}");
        assert!(e.contains("--below 2 --force"), "{e}");
        let e = refusal(check(&ring(&[(1, 1), (2, 2)], 2, 2), "the file", &u));
        assert!(e.contains("retires"), "{e}");
        assert!(e.contains("keys rewrap"), "{e}");
        // Given up by `keys retire --force`: no longer needed.
        let given_up = usage(&[(1, 1, true), (2, 2, false)], &[(1, 5), (2, 3)]);
        check(&ring(&[(2, 2)], 2, 2), "the file", &given_up).unwrap();
        // A recorded key no message uses may go.
        let unused = usage(&[(1, 1, false), (2, 2, false)], &[(2, 3)]);
        check(&ring(&[(2, 2)], 2, 2), "the file", &unused).unwrap();
    }

    #[test]
    fn a_reload_keeps_keys_and_never_moves_primary_back() {
        let now = ring(&[(1, 1), (2, 2)], 2, 1);
        check_reload(&now, &ring(&[(1, 1), (2, 2), (3, 3)], 3, 1)).unwrap();
        let e = refusal(check_reload(&now, &ring(&[(1, 1), (2, 7)], 2, 1)));
        assert!(e.contains("different key under key id 2"), "{e}");
        let e = refusal(check_reload(&now, &ring(&[(1, 1), (2, 2)], 1, 1)));
        assert!(e.contains("moves primary back from 2 to 1"), "{e}");
    }
}
