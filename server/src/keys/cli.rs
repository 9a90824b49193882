//! `chatseal-server keys …`: the keyring, managed while servers run. Each
//! command takes the server's own flags and environment (`--data-dir`,
//! `DATABASE_URL`, `--keyring-file`, `$CHATSEAL_KEYRING`), so it finds the
//! same store and keyring the servers use. Changes reach running servers
//! through the store's keyring generation (see [`super::rotate`]).

// A command's output is what it prints.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatseal_core::{Keyring, SEAL_BUDGET_PER_KEY};

use super::guard::{self, KeyUse, now_ms};
use super::{KeyringFile, rotate};
use crate::config::Config;
use crate::store::Store;

/// What the binary does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manage the keyring: status, generate, rotate, rewrap, retire, wrap,
    /// unwrap, rekey-kek.
    #[command(subcommand)]
    Keys(Keys),
    /// Manage accounts: add, reset-password, disable, enable, invite.
    #[command(subcommand)]
    Users(crate::users::Users),
}

/// `keys …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Keys {
    /// Per key id: primary, retired, messages stored, seals, nonce budget
    /// used, created.
    Status {
        /// One JSON object `{ "keys": [ { id, primary, retired, messages,
        /// seals, created } ] }`.
        #[arg(long)]
        json: bool,
    },
    /// A new keyring (one key, id 1), printed or written to a new 0600 file.
    Generate {
        /// Write it here (mode 0600; an existing file is never replaced).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print only a fresh key (standard base64 of 32 bytes), to add by hand.
        #[arg(long, conflicts_with = "out")]
        key_only: bool,
    },
    /// Add a new key to every running server, then make it primary everywhere.
    Rotate {
        /// How long to wait for running servers at each step.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
    /// Re-seal every stored message under the primary key, online and
    /// resumable.
    Rewrap {
        /// Messages per transaction.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
        /// Most messages per second (0: as fast as it goes).
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Retire every key below `--below`: servers stop opening with them and
    /// `join` stops handing them out.
    Retire {
        /// The lowest key id that stays usable.
        #[arg(long)]
        below: u32,
        /// Retire even if stored messages need those keys: they become
        /// unreadable for good (their keys are removed from the keyring).
        #[arg(long)]
        force: bool,
        /// How long to wait for running servers.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
    /// Wrap a plain keyring under the key-encryption key the --kek-* or
    /// --pkcs11-* settings give (for the data-dir keyring without any:
    /// <data-dir>/kek, generated), in place.
    Wrap {
        /// Write the wrapped keyring to this new file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a wrapped keyring back as plain JSON (its keys bare at rest),
    /// in place.
    Unwrap {
        /// Write the plain keyring to this new file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Wrap the keyring under a new key-encryption key (--new-*), in place.
    RekeyKek {
        #[command(flatten)]
        new: Box<super::kek_cli::NewKek>,
        /// Write the rewrapped keyring to this new file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a `keys` command.
pub async fn run(config: &Config, keys: Keys) -> anyhow::Result<()> {
    match keys {
        Keys::Generate { out, key_only } => return generate(out.as_deref(), key_only),
        Keys::Wrap { out } => return super::kek_cli::wrap(config, out).await,
        Keys::Unwrap { out } => return super::kek_cli::unwrap(config, out).await,
        Keys::RekeyKek { new, out } => return super::kek_cli::rekey(config, &new, out).await,
        _ => {}
    }
    let store = connect(config).await?;
    let outcome = match keys {
        Keys::Status { json } => status(config, &store, json).await,
        Keys::Rotate { wait } => rotate_cmd(config, &store, wait).await,
        Keys::Rewrap { batch, rate } => super::rewrap::run(config, &store, batch, rate).await,
        Keys::Retire { below, force, wait } => retire(config, &store, below, force, wait).await,
        Keys::Generate { .. } | Keys::Wrap { .. } | Keys::Unwrap { .. } | Keys::RekeyKek { .. } => {
            unreachable!("handled above")
        }
    };
    store.close().await;
    outcome
}

/// The servers' store; never creates one (a command against the wrong
/// `--data-dir` must not make an empty database look like the right one).
pub(crate) async fn connect(config: &Config) -> anyhow::Result<Store> {
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => {
            let path = config.data_dir.join("chatseal.db");
            anyhow::ensure!(
                path.is_file(),
                "no store at {} (set --data-dir or DATABASE_URL as the servers have them)",
                path.display()
            );
            format!("sqlite://{}?mode=rw", path.display())
        }
    };
    Ok(Store::connect(&url).await?)
}

/// The keyring as the servers read it, if there is one (never generated).
fn current_keyring(config: &Config) -> anyhow::Result<Option<Keyring>> {
    Ok(super::read(config)?.map(|s| s.keyring))
}

/// The keyring file a command may rewrite.
fn writable_keyring(config: &Config) -> anyhow::Result<KeyringFile> {
    KeyringFile::of(config).ok_or_else(|| {
        anyhow::anyhow!(
            "the keyring comes from ${}, which no command can change: rotate it where it is \
             kept (add the key, SIGHUP every server, then make it primary, SIGHUP again), or \
             move it to a 0600 file (--keyring-file) shared by the servers",
            config.keyring_env
        )
    })
}

fn holder() -> String {
    format!("keys-command-{}", uuid::Uuid::now_v7())
}

/// One line of `keys status`.
#[derive(Debug, serde::Serialize)]
struct KeyStatus {
    id: u32,
    primary: bool,
    retired: bool,
    messages: u64,
    seals: u64,
    /// RFC 3339, UTC; `null` for a key the store has not recorded.
    created: Option<String>,
}

async fn status(config: &Config, store: &Store, json: bool) -> anyhow::Result<()> {
    let keyring = current_keyring(config)?;
    let usage = KeyUse::read(store).await?;
    let mut ids: std::collections::BTreeSet<u32> = usage
        .records
        .keys()
        .chain(usage.messages.keys())
        .copied()
        .collect();
    if let Some(k) = &keyring {
        ids.extend(k.key_ids());
    }
    let rows: Vec<KeyStatus> = ids
        .into_iter()
        .map(|id| {
            let record = usage.records.get(&id);
            KeyStatus {
                id,
                primary: keyring.as_ref().is_some_and(|k| k.primary() == id),
                retired: record.is_some_and(|r| r.retired)
                    || keyring
                        .as_ref()
                        .is_some_and(|k| id < k.min_decrypt() || k.key_ids().all(|x| x != id)),
                messages: usage.messages.get(&id).copied().unwrap_or(0),
                seals: record.map_or(0, |r| r.seals),
                created: record.map(|r| {
                    let at = std::time::UNIX_EPOCH
                        + Duration::from_millis(u64::try_from(r.created).unwrap_or(0));
                    humantime::format_rfc3339_seconds(at).to_string()
                }),
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::json!({ "keys": rows }));
        return Ok(());
    }
    if keyring.is_none() {
        println!("(no keyring found at {})", guard::source_of(config));
    }
    println!(
        "{:>6}  {:>7}  {:>7}  {:>12}  {:>14}  {:>8}  created",
        "key id", "primary", "retired", "messages", "seals", "budget"
    );
    for r in &rows {
        println!(
            "{:>6}  {:>7}  {:>7}  {:>12}  {:>14}  {:>7.4}%  {}",
            r.id,
            if r.primary { "yes" } else { "" },
            if r.retired { "yes" } else { "" },
            r.messages,
            r.seals,
            100.0 * r.seals as f64 / SEAL_BUDGET_PER_KEY as f64,
            r.created.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn generate(out: Option<&Path>, key_only: bool) -> anyhow::Result<()> {
    if key_only {
        let key = chatseal_core::SecretKey::generate();
        println!("{}", key.to_base64().as_str());
        return Ok(());
    }
    let keyring = Keyring::generate();
    match out {
        None => print!("{}", keyring.to_json().as_str()),
        Some(path) => {
            anyhow::ensure!(
                !path.exists(),
                "{} exists; a keyring is never overwritten (it may be the only copy)",
                path.display()
            );
            keyring.save_file(path)?;
            eprintln!(
                "wrote a new keyring to {} (mode 0600); back it up",
                path.display()
            );
        }
    }
    Ok(())
}

async fn rotate_cmd(config: &Config, store: &Store, wait: Duration) -> anyhow::Result<()> {
    let file = writable_keyring(config)?;
    let path = &file.path;
    let options = rotate::Options {
        holder: holder(),
        wait,
        only_if_primary: None,
    };
    match rotate::rotate(store, &file, &options).await? {
        Some(done) => {
            println!(
                "key {} is primary in {} and on {} running server(s)",
                done.id,
                path.display(),
                done.servers
            );
            Ok(())
        }
        None => anyhow::bail!("another rotation or retirement is running; try again shortly"),
    }
}

async fn retire(
    config: &Config,
    store: &Store,
    below: u32,
    force: bool,
    wait: Duration,
) -> anyhow::Result<()> {
    let file = writable_keyring(config)?;
    let path = &file.path;
    let done = rotate::with_lease(store, &holder(), async || {
        let rotate::Checked {
            keyring,
            usage,
            wrapping,
        } = rotate::load_checked(store, &file).await?;
        anyhow::ensure!(
            below <= keyring.primary(),
            "--below {below} would retire the primary key {}: run `keys rotate` first",
            keyring.primary()
        );
        // A running server still sealing under a key below `below` would
        // store messages after the count below that need a retired key.
        let nodes = store
            .key_nodes(now_ms() - rotate::NODE_TTL.as_millis() as i64)
            .await?;
        if let Some(n) = nodes.iter().find(|n| n.primary < below) {
            anyhow::bail!(
                "refused: running server {} (and maybe others) still seals with key {}, below \
                 {below}: its new messages would need a retired key. Run `chatseal-server \
                 keys rotate` (or reload every server's keyring) first, then `keys rewrap`",
                n.node,
                n.primary
            );
        }
        let needed: Vec<(u32, u64)> = usage
            .messages
            .range(..below)
            .map(|(id, n)| (*id, *n))
            .filter(|(_, n)| *n > 0)
            .collect();
        let total: u64 = needed.iter().map(|(_, n)| n).sum();
        if total > 0 && !force {
            anyhow::bail!(
                "refused: {total} stored message(s) still need key ids below {below} ({}). Run \
                 `chatseal-server keys rewrap` first, then retire; `--force` would make them \
                 unreadable for good",
                describe(&needed)
            );
        }
        if total > 0 {
            eprintln!(
                "WARNING: --force: {total} stored message(s) under key ids {} become UNREADABLE \
                 FOR GOOD: their keys are removed from {}. Only a backup of the old keyring can \
                 bring them back.",
                describe(&needed),
                path.display()
            );
        }
        // The store first: servers reloading the new file then see these
        // keys given up, not dropped by mistake.
        store.retire_keys_below(below).await?;
        let kept: Vec<(u32, chatseal_core::SecretKey)> = keyring
            .key_ids()
            .filter(|id| !force || *id >= below)
            .map(|id| {
                let key = if id >= keyring.min_decrypt() {
                    keyring.key(id)?.clone()
                } else {
                    // Retired already: its material is copied as it is.
                    retired_key(&keyring, id)?
                };
                Ok((id, key))
            })
            .collect::<anyhow::Result<_>>()?;
        let next = Keyring::from_parts(kept, keyring.primary(), below.max(keyring.min_decrypt()))?;
        rotate::publish(store, &file, &next, wrapping.as_ref(), wait, |n| {
            n.key_ids.iter().all(|id| *id >= below || !force)
        })
        .await?;
        // Every server seals at or above `below` now; a message stored
        // between the count and the publish still needs a retired key.
        let late = store.messages_below(below).await?;
        if late > 0 && !force {
            anyhow::bail!(
                "{} message(s) under key ids below {below} were stored while retiring: their \
                 keys stay in {} but are retired (min_decrypt {below}). Put the previous \
                 min_decrypt back in the file and reload, or run `keys rewrap` with it",
                late,
                path.display()
            );
        }
        Ok(total)
    })
    .await?;
    match done {
        Some(total) => {
            println!(
                "keys below {below} retired{}; join hands out keys from {below} up",
                if total > 0 {
                    format!(" ({total} message(s) given up)")
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        None => anyhow::bail!("another rotation or retirement is running; try again shortly"),
    }
}

/// A key below `min_decrypt` (which `Keyring::key` refuses to hand out),
/// for rewriting the keyring file unchanged.
fn retired_key(keyring: &Keyring, id: u32) -> anyhow::Result<chatseal_core::SecretKey> {
    let mut copy = keyring.clone();
    copy.set_min_decrypt(0)?;
    Ok(copy.key(id)?.clone())
}

fn describe(needed: &[(u32, u64)]) -> String {
    needed
        .iter()
        .map(|(id, n)| format!("key {id}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
