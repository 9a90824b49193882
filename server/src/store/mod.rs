//! Storage: accounts, rooms and sealed messages, in SQLite (the embedded
//! default) or PostgreSQL, through one code path (`sqlx::Any`) — except
//! that a SQLite file's batches of messages go through a connection of
//! their own on the writer's thread (`batch_tx`), with the same statements.
//!
//! The store never sees plaintext: a message row holds the envelope's text
//! form and the metadata its context is made of. A room's `seq` is assigned
//! in the same transaction that stores the message, so numbers are
//! gap-free and a message is acknowledged only once it is committed.

mod batch_tx;
mod checkpoint;
mod keys;
mod oidc;
mod rooms;
mod schema;
pub use schema::VERSION as SCHEMA_VERSION;
mod users;

pub use keys::{
    EnvelopeWriter, KeyRecord, NewEnvelope, NodeRecord, Replaced, RewrapCursor, RewrapRow,
};
pub use rooms::{EpochChange, MAX_EPOCH};
pub use users::{AccountState, Invited};

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Row};

use batch_tx::{BatchTx, Cell, Col, Param};

/// Why a store call failed. Callers answer `UNAVAILABLE`: the client may
/// retry (with the same `clientId`, so nothing is stored twice).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(#[from] sqlx::Error);

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Another writer stored the same `(room, sender, clientId)` first.
    fn is_unique_violation(&self) -> bool {
        matches!(&self.0, sqlx::Error::Database(e) if e.is_unique_violation())
    }
}

/// `url` without its password, to name a database in errors and logs.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The userinfo ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A message as stored and as sent to clients (DESIGN §3's `Message`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub id: String,
    pub room: String,
    pub seq: i64,
    pub sender: String,
    pub ts: i64,
    pub key_id: u32,
    /// The room's key epoch the envelope is sealed under (docs/format.md §1).
    pub epoch: u32,
    /// The sealed envelope, text form.
    pub message: String,
}

/// A message to store; `seq` is assigned by the store.
#[derive(Debug)]
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub room: &'a str,
    pub sender: &'a str,
    pub ts: i64,
    pub key_id: u32,
    pub epoch: u32,
    pub envelope: &'a str,
    pub client_id: Option<&'a str>,
}

/// The outcome of [`Store::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with its room sequence number.
    New(StoredMessage),
    /// The sender already sent this `clientId`: the first message.
    Duplicate(StoredMessage),
    /// Not stored: the room is private and the sender is not a member (a
    /// socket that joined the name while it was public and silent, on a
    /// server that has not put it out yet).
    Forbidden,
    /// Not stored: the room's key epoch is now `epoch`, and this message (or
    /// another of its room in the batch) was sealed under an older one. The
    /// writer seals the room's messages again under `epoch` and resends them
    /// in order, so nothing is stored under a key a removed member holds.
    StaleEpoch { epoch: u32 },
}

/// A message to store, owning its fields (for the batch writer).
#[derive(Debug, Clone)]
pub struct OwnedMessage {
    pub id: String,
    pub room: String,
    pub sender: String,
    pub ts: i64,
    pub key_id: u32,
    pub epoch: u32,
    pub envelope: String,
    pub client_id: Option<String>,
}

impl From<&NewMessage<'_>> for OwnedMessage {
    fn from(m: &NewMessage<'_>) -> Self {
        OwnedMessage {
            id: m.id.to_owned(),
            room: m.room.to_owned(),
            sender: m.sender.to_owned(),
            ts: m.ts,
            key_id: m.key_id,
            epoch: m.epoch,
            envelope: m.envelope.to_owned(),
            client_id: m.client_id.map(str::to_owned),
        }
    }
}

/// Rows per multi-row INSERT: 9 parameters each, well under SQLite's and
/// PostgreSQL's limits on parameters per statement.
pub const MAX_BATCH: usize = 256;

/// How many keys the resend look-up of `n` clientIds asks for: `n` rounded
/// up to a power of two, the last key repeated (a key asked for twice is
/// found once). So nine statements serve every batch size. One statement
/// per size, beside the batch INSERT's one per size, overflowed the writer
/// connection's statement cache, and SQLite then prepared (and planned) a
/// look-up of n ORs for every batch: 8 % of the server's time at 10
/// clients sending clientIds, as the SDK does.
fn lookup_keys(n: usize) -> usize {
    n.next_power_of_two()
}

/// Who may read and join a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub name: String,
    pub owner: Option<String>,
    pub private: bool,
    /// The room's current key epoch: what it seals under.
    pub epoch: u32,
}

/// The first character of a service's sender name (`#bot`): messages the
/// publish API stored. Account names cannot contain it and guests' start
/// with `~`, so no client can post as a service.
pub const SERVICE_MARK: char = '#';

/// A room as `GET /api/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomListing {
    pub name: String,
    pub owner: Option<String>,
    pub private: bool,
    pub last_seq: i64,
}

/// The connection pool and the queries.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The connection messages are appended on, kept out of the pool
    /// between batches (no acquire per batch); dropped after an error so a
    /// broken one is replaced.
    appender: Arc<tokio::sync::Mutex<Option<PoolConnection<Any>>>>,
    /// A SQLite file's own writer connection, used instead of `appender`
    /// on the caller's thread (see [`Store::appends_block`]).
    sqlite_writer: Option<Arc<batch_tx::SqliteWriter>>,
    /// The size of the last batch if it failed for another reason than a
    /// duplicate, 0 once one commits (see [`Store::writes_failing`]).
    failed_batch_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// The SQLite database's directory, to see its disk's free space.
    sqlite_dir: Option<std::path::PathBuf>,
    /// This history's id (see `chat_store` in the schema), read at connect.
    history_id: Arc<str>,
    /// The longest any store call may take (see [`Store::connect_with`]).
    timeout: Duration,
}

/// Free space a SQLite database's disk must have for `/healthz` to say
/// ok: a few batches of large messages.
pub const DISK_HEADROOM: u64 = 4 << 20;

/// The default longest wait for the database, per store call.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A store call with a deadline.
trait Within: std::future::Future + Sized {
    /// `self`, failing with a timeout error after `timeout`.
    async fn within<T, E>(self, timeout: Duration) -> std::result::Result<T, StoreError>
    where
        Self: std::future::Future<Output = std::result::Result<T, E>>,
        StoreError: From<E>,
    {
        match tokio::time::timeout(timeout, self).await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(StoreError(timed_out(timeout))),
        }
    }
}

impl<F: std::future::Future> Within for F {}

/// The error of a call that got no answer in time: the database hangs.
fn timed_out(timeout: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "no answer from the database within {} ms",
            timeout.as_millis()
        ),
    ))
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the
    /// schema up to date, with the default [`TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, TIMEOUT).await
    }

    /// [`Store::connect`] with `timeout` for every store call: a database
    /// that keeps its connections open but stops answering (a hung server,
    /// a network path that drops everything) fails calls after `timeout`
    /// instead of holding acks as long as the hang lasts.
    pub async fn connect_with(url: &str, timeout: Duration) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let options: AnyConnectOptions = url.parse()?;
        // The pool retries a failing connect until its acquire timeout and
        // then says only "pool timed out"; one direct attempt first reports
        // why (refused, unknown host, password, no such database).
        match tokio::time::timeout(
            Duration::from_secs(10),
            AnyConnection::connect_with(&options),
        )
        .await
        {
            Ok(probe) => probe?.close().await?,
            Err(_) => {
                return Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within 10 s",
                ))
                .into());
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time either way; a few readers beside it.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(timeout)
            // A SQLite connection is a file handle and cannot go stale: the
            // ping sqlx sends on every acquire would be one more round trip
            // to its worker thread in every batch.
            .test_before_acquire(backend == Backend::Postgres)
            // A connection whose transaction could be neither committed nor
            // rolled back (SQLite after "database or disk is full" ends the
            // transaction itself, so sqlx's ROLLBACK fails and it still
            // counts one open) would refuse every BEGIN after: close it
            // instead of handing it out again.
            .after_release(|conn, _meta| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer. NORMAL keeps
                        // every commit across a process crash (the WAL is
                        // written before the ack); only a power loss can take
                        // the last commits back.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        schema::migrate(&pool, backend).await?;
        let history_id: Arc<str> = Arc::from(schema::history_id(&pool).await?);
        let sqlite_writer = match sqlite_path(url) {
            Some(path) => match batch_tx::SqliteWriter::open(&path, timeout, &history_id) {
                Ok(writer) => Some(Arc::new(writer)),
                Err(e) => {
                    // Still correct through the pool, only slower.
                    tracing::warn!(error = %e, "no writer connection of its own for SQLite: appending through the pool");
                    None
                }
            },
            None => None,
        };
        let store = Store {
            pool,
            backend,
            history_id,
            sqlite_writer,
            appender: Arc::new(tokio::sync::Mutex::new(None)),
            failed_batch_bytes: Arc::default(),
            sqlite_dir: sqlite_dir(url),
            timeout,
        };
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether [`Store::append_batch`] runs on the calling thread and
    /// blocks it until the batch commits: a SQLite file is written through
    /// a connection of its own, without the round trips to sqlx's worker
    /// thread (see `batch_tx`). The message writer then runs on a thread of
    /// its own (`chat::writer`), never on a tokio worker.
    pub fn appends_block(&self) -> bool {
        self.sqlite_writer.is_some()
    }

    /// This history's id: the same for every server sharing the database,
    /// different for another database (docs/protocol.md §2, `history`).
    pub fn history_id(&self) -> &str {
        &self.history_id
    }

    /// A cheap query, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(())
    }

    /// Whether the last append failed: reads may still work (a full disk,
    /// a read-only file system) while no message can be stored.
    pub fn writes_failing(&self) -> bool {
        self.failed_batch_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    }

    /// For health checks: whether the store can take messages now. The
    /// database must answer; on SQLite its disk must have room (a full
    /// disk still answers reads, and a small write still fits in journal
    /// space a failed one left): at least [`DISK_HEADROOM`], and twice the
    /// last batch if that failed. While appends fail, a write that changes
    /// nothing must also commit; once it does, [`Store::writes_failing`]
    /// is cleared.
    pub async fn health(&self) -> Result<()> {
        self.ping().await?;
        let failed = self
            .failed_batch_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        if let Some(dir) = &self.sqlite_dir {
            let free = rustix::fs::statvfs(dir.as_path())
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
                .map_err(|e| StoreError(sqlx::Error::Io(e.into())))?;
            let needed = failed.saturating_mul(2).max(DISK_HEADROOM);
            if free < needed {
                return Err(StoreError(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!("{free} bytes free on the database's disk, under {needed}"),
                ))));
            }
        }
        if failed == 0 {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE chat_schema SET version = version")
            .execute(&mut *tx)
            .within(self.timeout)
            .await?;
        tx.commit().within(self.timeout).await?;
        self.failed_batch_bytes
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A transaction that will write. SQLite takes its write lock at BEGIN
    /// (IMMEDIATE), so a transaction that reads before it writes waits for
    /// the lock politely instead of failing with "database is locked".
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        self.pool
            .begin_with(self.begin_write())
            .within(self.timeout)
            .await
    }

    fn begin_write(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Appends the `n`th (from 1) bind parameter of a statement to `sql`.
    /// SQLite looks numbered parameters up by name, one linear scan each (a
    /// batch's hundreds of them cost more than its insert), so it gets
    /// anonymous ones, bound in order.
    fn push_param(&self, sql: &mut String, n: usize) {
        use std::fmt::Write as _;
        match self.backend {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                let _ = write!(sql, "${n}");
            }
        }
    }

    /// `count` parameters, comma-separated, numbered after `before`.
    fn push_params(&self, sql: &mut String, before: usize, count: usize) {
        for n in before + 1..=before + count {
            if n > before + 1 {
                sql.push(',');
            }
            self.push_param(sql, n);
        }
    }

    /// Stores one message, numbering it in its room; a repeated
    /// `(room, sender, clientId)` returns the first message instead. A batch of
    /// one: there is a single numbering path.
    pub async fn append(&self, msg: &NewMessage<'_>) -> Result<Appended> {
        let owned = OwnedMessage::from(msg);
        let mut out = self.append_batch(std::slice::from_ref(&owned)).await?;
        Ok(out.remove(0))
    }

    /// Stores a batch of messages in one transaction (group commit): each
    /// room's counter moves once, the rows go in one INSERT. Outcomes come
    /// back in input order; within a room, messages are numbered in input
    /// order. A `(room, sender, clientId)` seen before — in the database or earlier
    /// in the batch — gets the first message back. If another server stored
    /// the same clientId meanwhile, the batch is redone one message at a time.
    pub async fn append_batch(&self, batch: &[OwnedMessage]) -> Result<Vec<Appended>> {
        match self.try_append_batch(batch).await {
            Err(e) if e.is_unique_violation() => {
                let mut out = Vec::with_capacity(batch.len());
                for m in batch {
                    let one = std::slice::from_ref(m);
                    // Once more if the race repeats: the second try's
                    // lookup then finds the other server's message.
                    let stored = match self.try_append_batch(one).await {
                        Err(e) if e.is_unique_violation() => self.try_append_batch(one).await?,
                        other => other?,
                    };
                    out.extend(stored);
                }
                Ok(out)
            }
            other => other,
        }
    }

    async fn try_append_batch(&self, batch: &[OwnedMessage]) -> Result<Vec<Appended>> {
        assert!(batch.len() <= MAX_BATCH, "batches are at most MAX_BATCH");
        let outcome = match &self.sqlite_writer {
            // SQLite's busy timeout (the store's timeout) bounds the wait
            // for another writer; the transaction is rolled back when it
            // is dropped unfinished.
            Some(writer) => writer.append(|tx| batch_tx::run_now(self.append_in(tx, batch))),
            None => self.append_pooled(batch).await,
        };
        let failed = outcome.as_ref().is_err_and(|e| !e.is_unique_violation());
        let bytes = if failed {
            batch.iter().map(|m| m.envelope.len() as u64 + 256).sum()
        } else {
            0
        };
        self.failed_batch_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
        outcome
    }

    /// Appends `batch` through sqlx, on the connection kept for it.
    async fn append_pooled(&self, batch: &[OwnedMessage]) -> Result<Vec<Appended>> {
        let mut appender = self.appender.lock().await;
        let kept = appender.is_some();
        // One deadline for the whole batch, retry included: the ack waits
        // at most that long, whatever the database does.
        let attempt = async {
            match self.begin_and_append(&mut appender, batch).await {
                // The kept connection may have died with the database (a
                // restart, a network cut) while idle: nothing was done, so a
                // fresh one from the pool (which pings PostgreSQL first) gets
                // the batch.
                Err(_) if kept => {
                    discard(&mut appender);
                    self.begin_and_append(&mut appender, batch).await
                }
                other => other,
            }
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            // Whether the commit got through is unknown: the client's resend
            // with the same clientId finds out.
            Err(_) => Err(timed_out(self.timeout)),
        };
        let outcome = outcome
            .map_err(StoreError::from)
            .and_then(|appended| appended);
        if outcome.as_ref().is_err_and(|e| !e.is_unique_violation()) {
            discard(&mut appender);
        }
        outcome
    }

    /// Begins a write transaction on the appending connection (taking one
    /// from the pool if there is none) and appends `batch` in it. The outer
    /// error is a failed BEGIN: nothing was attempted.
    async fn begin_and_append(
        &self,
        slot: &mut Option<PoolConnection<Any>>,
        batch: &[OwnedMessage],
    ) -> std::result::Result<Result<Vec<Appended>>, sqlx::Error> {
        let conn = match slot {
            Some(conn) => conn,
            empty => empty.insert(self.pool.acquire().await?),
        };
        let tx = conn.begin_with(self.begin_write()).await?;
        Ok(self.append_in(tx, batch).await)
    }

    async fn append_in(
        &self,
        mut tx: impl BatchTx,
        batch: &[OwnedMessage],
    ) -> Result<Vec<Appended>> {
        use std::collections::HashMap;
        let earlier = self.existing_client_ids(&mut tx, batch).await?;
        let refused = self.non_members(&mut tx, batch).await?;
        // A room any of whose messages was sealed under another epoch than
        // the room's current one is sent back whole (not just the stale
        // messages): its messages are then stored in the order they came.
        // (Maps, not lists: a batch may span as many rooms as it has
        // messages.)
        let mut stale: HashMap<&str, u32> = HashMap::new();
        for m in batch {
            let epoch = refused.epoch(&m.room);
            if m.epoch != epoch {
                stale.entry(m.room.as_str()).or_insert(epoch);
            }
        }
        let stale_epoch = |room: &str| stale.get(room).copied();
        let mut first_in_batch: HashMap<(&str, &str, &str), usize> = HashMap::new();
        let mut counts: HashMap<&str, i64> = HashMap::new();
        // The messages to insert: allowed, and not seen before, in the
        // database or the batch.
        let mut rows: Vec<usize> = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if refused.contains(&(m.room.as_str(), m.sender.as_str()))
                || stale_epoch(&m.room).is_some()
            {
                continue;
            }
            if let Some(cid) = m.client_id.as_deref() {
                let key = (m.room.as_str(), m.sender.as_str(), cid);
                if earlier.contains_key(&owned(key)) || first_in_batch.contains_key(&key) {
                    continue;
                }
                first_in_batch.insert(key, i);
            }
            rows.push(i);
            *counts.entry(m.room.as_str()).or_insert(0) += 1;
        }
        // Every room's counter moves once, by its count, in at most two
        // statements whatever the number of rooms (a batch spanning 200
        // rooms was 400 round trips to the database). Rooms go in name
        // order, so two servers' batches on PostgreSQL lock rows alike.
        let mut per_room: Vec<(&str, i64)> = counts.into_iter().collect();
        per_room.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let counters = self.move_counters(&mut tx, &per_room, &refused).await?;
        let mut next_seq: HashMap<&str, i64> = HashMap::with_capacity(per_room.len());
        for &(room, n) in &per_room {
            // A room read as public (or absent) above moves its counter
            // only if it is still public: on PostgreSQL a private creation
            // may commit between the read and the upsert (SQLite's BEGIN
            // IMMEDIATE excludes it). Then no row comes back and the batch
            // fails UNAVAILABLE; the client's resend is refused FORBIDDEN.
            // The counter's row is locked from there to the commit, and an
            // epoch change updates the same row: the epoch read back is the
            // one in force when this batch commits.
            let Some(&(last, epoch)) = counters.get(room) else {
                return Err(StoreError(sqlx::Error::Protocol(format!(
                    "room {room:?} became private while a batch was stored; resend"
                ))));
            };
            if epoch != i64::from(refused.epoch(room)) {
                // PostgreSQL: an epoch change committed between the read
                // above and this update. Nothing is stored; the resend is
                // sent back to be sealed again.
                return Err(StoreError(sqlx::Error::Protocol(format!(
                    "room {room:?} changed its key epoch while a batch was stored; resend"
                ))));
            }
            next_seq.insert(room, last - n + 1);
        }
        let mut stored: Vec<Option<StoredMessage>> = vec![None; batch.len()];
        if !rows.is_empty() {
            // SQLite: OR FAIL, not the default ABORT. Inside a transaction
            // an INSERT that may abort keeps a statement journal, a copy of
            // every page it touches so it can undo itself alone (7 % of the
            // server at 10 clients, half of it written to a temporary
            // file). Here a failed INSERT fails the whole batch, whose
            // transaction is then rolled back, so there is nothing to undo
            // alone.
            let mut sql = String::from(match self.backend {
                Backend::Sqlite => "INSERT OR FAIL INTO chat_messages ",
                Backend::Postgres => "INSERT INTO chat_messages ",
            });
            sql.push_str("(room, seq, id, sender, ts, key_id, epoch, envelope, client_id) VALUES ");
            for k in 0..rows.len() {
                sql.push_str(if k > 0 { ",(" } else { "(" });
                self.push_params(&mut sql, 9 * k, 9);
                sql.push(')');
            }
            let mut params = Vec::with_capacity(9 * rows.len());
            for &i in &rows {
                let m = &batch[i];
                let seq = next_seq.get_mut(m.room.as_str()).expect("counted above");
                let this = *seq;
                *seq += 1;
                params.extend([
                    Param::Text(&m.room),
                    Param::Int(this),
                    Param::Text(&m.id),
                    Param::Text(&m.sender),
                    Param::Int(m.ts),
                    Param::Int(i64::from(m.key_id)),
                    Param::Int(i64::from(m.epoch)),
                    Param::Text(&m.envelope),
                    Param::OptText(m.client_id.as_deref()),
                ]);
                stored[i] = Some(StoredMessage {
                    id: m.id.clone(),
                    room: m.room.clone(),
                    seq: this,
                    sender: m.sender.clone(),
                    ts: m.ts,
                    key_id: m.key_id,
                    epoch: m.epoch,
                    message: m.envelope.clone(),
                });
            }
            tx.execute(&sql, &params).await?;
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if let Some(s) = stored[i].take() {
                out.push(Appended::New(s));
                continue;
            }
            if refused.contains(&(m.room.as_str(), m.sender.as_str())) {
                out.push(Appended::Forbidden);
                continue;
            }
            if let Some(epoch) = stale_epoch(&m.room) {
                out.push(Appended::StaleEpoch { epoch });
                continue;
            }
            let cid = m.client_id.as_deref().unwrap_or_default();
            let key = (m.room.as_str(), m.sender.as_str(), cid);
            let first = match earlier.get(&owned(key)) {
                Some(first) => first.clone(),
                None => {
                    let j = first_in_batch[&key];
                    match &out[j] {
                        Appended::New(s) | Appended::Duplicate(s) => s.clone(),
                        Appended::Forbidden | Appended::StaleEpoch { .. } => {
                            unreachable!("refused messages are not deduplicated")
                        }
                    }
                }
            };
            out.push(Appended::Duplicate(first));
        }
        Ok(out)
    }

    /// Adds each room's count to its counter: rooms read as public (or
    /// absent) by one upsert that leaves a room made private since alone,
    /// private rooms by one UPDATE. Returns each moved room's new
    /// `(last_seq, epoch)`; a room missing from it was not moved.
    async fn move_counters(
        &self,
        tx: &mut impl BatchTx,
        per_room: &[(&str, i64)],
        refused: &Refused<'_>,
    ) -> Result<std::collections::HashMap<String, (i64, i64)>> {
        let (private, public): (Vec<_>, Vec<_>) = per_room
            .iter()
            .partition(|(room, _)| refused.private_rooms.contains(room));
        let mut moved = std::collections::HashMap::with_capacity(per_room.len());
        let mut fetched = Vec::new();
        if !public.is_empty() {
            let mut sql = String::from("INSERT INTO chat_rooms (name, last_seq, private) VALUES ");
            for k in 0..public.len() {
                sql.push_str(if k > 0 { ",(" } else { "(" });
                self.push_params(&mut sql, 2 * k, 2);
                sql.push_str(",0)");
            }
            sql.push_str(
                " ON CONFLICT (name) DO UPDATE SET last_seq = chat_rooms.last_seq + excluded.last_seq \
                 WHERE chat_rooms.private = 0 RETURNING name, last_seq, epoch",
            );
            let params: Vec<Param> = public
                .iter()
                .flat_map(|&&(room, count)| [Param::Text(room), Param::Int(count)])
                .collect();
            fetched.extend(tx.fetch(&sql, &params, COUNTER_COLS).await?);
        }
        if !private.is_empty() {
            let mut sql = String::from("UPDATE chat_rooms SET last_seq = last_seq + CASE name");
            for k in 0..private.len() {
                sql.push_str(" WHEN ");
                self.push_param(&mut sql, 2 * k + 1);
                // PostgreSQL types an untyped CASE result as text.
                sql.push_str(" THEN CAST(");
                self.push_param(&mut sql, 2 * k + 2);
                sql.push_str(" AS BIGINT)");
            }
            sql.push_str(" END WHERE name IN (");
            self.push_params(&mut sql, 2 * private.len(), private.len());
            sql.push_str(") RETURNING name, last_seq, epoch");
            let params: Vec<Param> = private
                .iter()
                .flat_map(|&&(room, count)| [Param::Text(room), Param::Int(count)])
                .chain(private.iter().map(|&&(room, _)| Param::Text(room)))
                .collect();
            fetched.extend(tx.fetch(&sql, &params, COUNTER_COLS).await?);
        }
        for row in fetched {
            let [name, last_seq, epoch] = <[Cell; 3]>::try_from(row).map_err(|_| columns())?;
            moved.insert(name.text()?, (last_seq.int()?, epoch.int()?));
        }
        Ok(moved)
    }

    /// Which `(room, sender)` of the batch may not post: the room's row is
    /// private and the sender is not among its members; also each room's key
    /// epoch. One query for the batch, in the batch's transaction, so the
    /// store is the authority whatever a server's sockets believe.
    async fn non_members<'b>(
        &self,
        tx: &mut impl BatchTx,
        batch: &'b [OwnedMessage],
    ) -> Result<Refused<'b>> {
        use std::collections::{HashMap, HashSet};
        // The batch's rooms in first-seen order, each with its senders; and
        // every sender once.
        let mut rooms: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut pairs: HashSet<(&str, &str)> = HashSet::new();
        let mut senders: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for m in batch {
            let (room, sender) = (m.room.as_str(), m.sender.as_str());
            let i = *index.entry(room).or_insert_with(|| {
                rooms.push((room, Vec::new()));
                rooms.len() - 1
            });
            if pairs.insert((room, sender)) {
                rooms[i].1.push(sender);
            }
            if seen.insert(sender) {
                senders.push(sender);
            }
        }
        let mut refused = Refused::default();
        // One query for the whole batch: a row per private room and member
        // among the batch's senders, or one with a NULL username; none for
        // a room without a row (public, epoch 0).
        let mut sql = String::from(
            "SELECT r.name, r.private, r.epoch, m.username FROM chat_rooms r \
             LEFT JOIN chat_members m ON m.room = r.name AND r.private <> 0 \
             AND m.username IN (",
        );
        self.push_params(&mut sql, 0, senders.len());
        sql.push_str(") WHERE r.name IN (");
        self.push_params(&mut sql, senders.len(), rooms.len());
        sql.push(')');
        let params: Vec<Param> = senders
            .iter()
            .copied()
            .chain(rooms.iter().map(|(room, _)| *room))
            .map(Param::Text)
            .collect();
        // Per room of the batch: private?, and its members among the senders.
        let mut found: Vec<Option<(bool, Vec<String>)>> = vec![None; rooms.len()];
        let cols = [Col::Text, Col::Int, Col::Int, Col::OptText];
        for row in tx.fetch(&sql, &params, &cols).await? {
            let [name, private, epoch, username] =
                <[Cell; 4]>::try_from(row).map_err(|_| columns())?;
            let name = name.text()?;
            let Some(&i) = index.get(name.as_str()) else {
                continue;
            };
            let entry = found[i].get_or_insert_with(|| (false, Vec::new()));
            if !refused.epochs.contains_key(rooms[i].0) {
                refused.epochs.insert(rooms[i].0, epoch.int32()?);
            }
            entry.0 |= private.int()? != 0;
            if let Some(member) = username.opt_text()? {
                entry.1.push(member);
            }
        }
        for ((room, room_senders), found) in rooms.into_iter().zip(found) {
            let Some((true, members)) = found else {
                continue;
            };
            refused.private_rooms.push(room);
            for sender in room_senders {
                // A service (the publish API, with its own token) may
                // post to any room; no socket sender has the mark.
                if !members.iter().any(|m| m == sender) && !sender.starts_with(SERVICE_MARK) {
                    refused.pairs.insert((room, sender));
                }
            }
        }
        Ok(refused)
    }

    /// The look-up of `n` resends (see [`lookup_keys`]): each `(room, sender, client_id)` is
    /// three parameters, in that order. It must be answered from the
    /// clientId index (`chat_messages_room_client_id`), whose rows all have
    /// a clientId: `client_id = $n` tells the database so.
    fn resend_lookup_sql(&self, n: usize) -> String {
        let mut sql = format!("SELECT {COLUMNS}, client_id FROM chat_messages WHERE ");
        for k in 0..n {
            if k > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str("(room = ");
            self.push_param(&mut sql, 3 * k + 1);
            sql.push_str(" AND sender = ");
            self.push_param(&mut sql, 3 * k + 2);
            sql.push_str(" AND client_id = ");
            self.push_param(&mut sql, 3 * k + 3);
            sql.push(')');
        }
        sql
    }

    /// The stored messages of the batch's `(room, sender, clientId)`: a
    /// resend is one in the same room by the same sender, so it can never
    /// be answered with another sender's or another room's message.
    async fn existing_client_ids(
        &self,
        tx: &mut impl BatchTx,
        batch: &[OwnedMessage],
    ) -> Result<std::collections::HashMap<DedupKey, StoredMessage>> {
        let keyed: Vec<&OwnedMessage> = batch.iter().filter(|m| m.client_id.is_some()).collect();
        let mut found = std::collections::HashMap::new();
        if keyed.is_empty() {
            return Ok(found);
        }
        let padded = lookup_keys(keyed.len());
        let sql = self.resend_lookup_sql(padded);
        let last = keyed[keyed.len() - 1];
        let params: Vec<Param> = keyed
            .iter()
            .chain(std::iter::repeat_n(&last, padded - keyed.len()))
            .flat_map(|m| {
                [
                    Param::Text(&m.room),
                    Param::Text(&m.sender),
                    Param::OptText(m.client_id.as_deref()),
                ]
            })
            .collect();
        let cols: Vec<Col> = COLUMN_COLS.iter().copied().chain([Col::Text]).collect();
        for mut row in tx.fetch(&sql, &params, &cols).await? {
            let cid = row.pop().ok_or_else(columns)?.text()?;
            let msg = message_from(row)?;
            found.insert((msg.room.clone(), msg.sender.clone(), cid), msg);
        }
        Ok(found)
    }

    /// Messages of `room` with `after < seq < before`, ascending, at most `limit`.
    pub async fn messages(
        &self,
        room: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chat_messages WHERE room = $1 AND seq > $2 AND seq < $3 \
             ORDER BY seq ASC LIMIT $4"
        ))
        .bind(room)
        .bind(after)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await?;
        rows.iter().map(message_of).collect()
    }

    /// The newest `limit` messages of `room` before `before`, ascending.
    pub async fn latest_messages(
        &self,
        room: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM chat_messages WHERE room = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(room)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await?;
        let mut messages: Vec<_> = rows.iter().map(message_of).collect::<Result<_>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// The room's last assigned `seq` (0 for a room with no messages).
    pub async fn latest_seq(&self, room: &str) -> Result<i64> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM chat_rooms WHERE name = $1")
                .bind(room)
                .fetch_optional(&self.pool)
                .within(self.timeout)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The room's access rules; `None` for a room nobody created (public).
    pub async fn room(&self, name: &str) -> Result<Option<RoomInfo>> {
        let row = sqlx::query("SELECT name, owner, private, epoch FROM chat_rooms WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .within(self.timeout)
            .await?;
        row.map(|r| {
            Ok(RoomInfo {
                name: r.try_get("name")?,
                owner: r.try_get("owner")?,
                private: r.try_get::<i64, _>("private")? != 0,
                epoch: u32::try_from(r.try_get::<i64, _>("epoch")?)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            })
        })
        .transpose()
    }

    /// Creates a room owned by `owner`; `false` if the name is taken (a
    /// room with a stored message counts as taken: its first message makes
    /// its row; a join makes none).
    ///
    /// A private room starts at key epoch 1: anyone may have joined the
    /// name while it was public and silent, and a join hands out the keys
    /// of epoch 0, so the room's own messages must be sealed under a key
    /// none of them was given.
    pub async fn create_room(&self, name: &str, owner: &str, private: bool) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let created = sqlx::query(
            "INSERT INTO chat_rooms (name, last_seq, owner, private, epoch) \
             VALUES ($1, 0, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::from(private))
        .bind(i64::from(private))
        .execute(&mut *tx)
        .within(self.timeout)
        .await?
        .rows_affected()
            == 1;
        if created {
            add_member(&mut tx, name, owner).await?;
        }
        tx.commit().within(self.timeout).await?;
        Ok(created)
    }

    /// Adds `username` to the members of `room`.
    pub async fn add_member(&self, room: &str, username: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        add_member(&mut tx, room, username)
            .within(self.timeout)
            .await?;
        tx.commit().within(self.timeout).await?;
        Ok(())
    }

    /// Whether `username` is a member of `room`.
    pub async fn is_member(&self, room: &str, username: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM chat_members WHERE room = $1 AND username = $2")
                .bind(room)
                .bind(username)
                .fetch_optional(&self.pool)
                .within(self.timeout)
                .await?;
        Ok(found.is_some())
    }

    /// Rooms by name after `after`, at most `limit`: the public ones, and
    /// the private ones `viewer` is a member of. A name is listed once it
    /// has a row (its first stored message, or `POST /api/rooms`).
    pub async fn list_rooms(
        &self,
        viewer: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<RoomListing>> {
        let rows = match viewer {
            None => {
                sqlx::query(
                    "SELECT name, owner, private, last_seq FROM chat_rooms \
                     WHERE name > $1 AND private = 0 ORDER BY name LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .within(self.timeout)
                .await?
            }
            Some(viewer) => {
                sqlx::query(
                    "SELECT name, owner, private, last_seq FROM chat_rooms r \
                     WHERE name > $1 AND (private = 0 OR EXISTS (SELECT 1 FROM chat_members m \
                     WHERE m.room = r.name AND m.username = $2)) ORDER BY name LIMIT $3",
                )
                .bind(after)
                .bind(viewer)
                .bind(limit)
                .fetch_all(&self.pool)
                .within(self.timeout)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(RoomListing {
                    name: r.try_get("name")?,
                    owner: r.try_get("owner")?,
                    private: r.try_get::<i64, _>("private")? != 0,
                    last_seq: r.try_get("last_seq")?,
                })
            })
            .collect()
    }

    /// Members of `room` by name after `after`, at most `limit`.
    pub async fn members_page(&self, room: &str, after: &str, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT username FROM chat_members WHERE room = $1 AND username > $2 \
             ORDER BY username LIMIT $3",
        )
        .bind(room)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await
    }

    /// The members of `room` (its owner and those invited).
    pub async fn room_members(&self, room: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM chat_members WHERE room = $1")
            .bind(room)
            .fetch_all(&self.pool)
            .within(self.timeout)
            .await
    }

    /// Creates an account; `false` if the name is taken.
    pub async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> Result<bool> {
        insert_user(&self.pool, username, password_hash, now)
            .within(self.timeout)
            .await
    }

    /// Whether an account has this name in any case (`ann`, `Ann`, `ANN`
    /// are one name): a guest may not speak under it.
    pub async fn account_name_taken(&self, username: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM chat_users WHERE lower(username) = lower($1)")
                .bind(username)
                .fetch_optional(&self.pool)
                .within(self.timeout)
                .await?;
        Ok(found.is_some())
    }

    /// The stored password hash of an account; `None` for a disabled one
    /// (which cannot log in, be invited, or be vouched for).
    pub async fn password_hash(&self, username: &str) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT password_hash FROM chat_users u WHERE username = $1 AND NOT EXISTS \
             (SELECT 1 FROM chat_user_state s WHERE s.username = u.username AND s.disabled <> 0)",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .within(self.timeout)
        .await
    }

    /// Closes the pool, waiting for queries in flight (an append in flight
    /// holds the appending connection until it is done).
    pub async fn close(&self) {
        self.appender.lock().await.take();
        if let Some(writer) = &self.sqlite_writer {
            writer.close();
        }
        self.pool.close().await;
    }
}

/// The file of a `sqlite://path?…` database (none for memory).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(path.into())
}

/// The directory of a `sqlite://path?…` database (none for memory).
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = sqlite_path(url)?;
    let dir = path.parent()?;
    Some(if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir.to_path_buf()
    })
}

/// Closes the appending connection instead of returning it to the pool:
/// after a failed batch its state is unknown (a transaction SQLite ended on
/// its own, a query still in flight), and a fresh one costs little.
fn discard(slot: &mut Option<PoolConnection<Any>>) {
    if let Some(mut conn) = slot.take() {
        conn.close_on_drop();
    }
}

/// Inserts an account; `false` if the name is taken (in any case).
async fn insert_user<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool> {
    let created = sqlx::query(
        "INSERT INTO chat_users (username, password_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(created == 1)
}

async fn add_member(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    room: &str,
    username: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO chat_members (room, username) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(room)
        .bind(username)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, room, seq, sender, ts, key_id, epoch, envelope";
/// How [`COLUMNS`] are read, in order.
const COLUMN_COLS: &[Col] = &[
    Col::Text,
    Col::Text,
    Col::Int,
    Col::Text,
    Col::Int,
    Col::Int,
    Col::Int,
    Col::Text,
];

/// What the counter statements return: `name, last_seq, epoch`.
const COUNTER_COLS: &[Col] = &[Col::Text, Col::Int, Col::Int];

/// A store query's row with another number of columns than asked for.
fn columns() -> StoreError {
    StoreError(sqlx::Error::Protocol(
        "a store query returned another number of columns".into(),
    ))
}

/// What [`Store::non_members`] found in a batch.
#[derive(Debug, Default)]
struct Refused<'b> {
    /// The batch's rooms whose row is private.
    private_rooms: Vec<&'b str>,
    /// `(room, sender)` pairs that may not post.
    pairs: std::collections::HashSet<(&'b str, &'b str)>,
    /// The batch's rooms with a row, and their current key epoch (a room
    /// without a row is at epoch 0).
    epochs: std::collections::HashMap<&'b str, u32>,
}

impl Refused<'_> {
    fn contains(&self, pair: &(&str, &str)) -> bool {
        self.pairs.contains(pair)
    }

    fn epoch(&self, room: &str) -> u32 {
        self.epochs.get(room).copied().unwrap_or(0)
    }
}

/// What makes two messages one for dedup: room, sender, clientId.
type DedupKey = (String, String, String);

fn owned((room, sender, cid): (&str, &str, &str)) -> DedupKey {
    (room.to_owned(), sender.to_owned(), cid.to_owned())
}

/// A message from a row that starts with [`COLUMNS`].
fn message_of(row: &sqlx::any::AnyRow) -> Result<StoredMessage> {
    message_from(batch_tx::sqlx_cells(row, COLUMN_COLS)?)
}

/// A message from [`COLUMNS`], read as [`COLUMN_COLS`] (by sqlx or in a
/// batch's transaction).
fn message_from(cells: Vec<Cell>) -> Result<StoredMessage> {
    let [id, room, seq, sender, ts, key_id, epoch, envelope] =
        <[Cell; 8]>::try_from(cells).map_err(|_| columns())?;
    Ok(StoredMessage {
        id: id.text()?,
        room: room.text()?,
        seq: seq.int()?,
        sender: sender.text()?,
        ts: ts.int()?,
        key_id: key_id.int32()?,
        epoch: epoch.int32()?,
        message: envelope.text()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `sql` (its parameters NULL), one line a step.
    fn plan(path: &std::path::Path, sql: &str) -> String {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(unbound), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        rows.join("\n")
    }

    /// Nine look-up statements for every batch size, each asking for every
    /// key of its batch and at most twice as many.
    #[test]
    fn resend_look_ups_come_in_nine_sizes() {
        let sizes: std::collections::BTreeSet<usize> = (1..=MAX_BATCH)
            .inspect(|&n| assert!((n..2 * n).contains(&lookup_keys(n)), "{n}"))
            .map(lookup_keys)
            .collect();
        assert_eq!(sizes.len(), 9, "{sizes:?}");
        assert_eq!(sizes.last(), Some(&MAX_BATCH));
    }

    /// Every batch with clientIds asks for earlier copies of them; on a
    /// store of millions of messages that must be a search of the clientId
    /// index for each, never a pass over the messages — and the index that
    /// holds only messages with a clientId must serve it.
    #[tokio::test]
    async fn resends_are_looked_up_in_the_client_id_index() {
        let path = std::env::temp_dir().join(format!(
            "chatseal-store-plan-{}-{}.db",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        for n in [1, 4, 64, MAX_BATCH] {
            let plan = plan(&path, &store.resend_lookup_sql(n));
            assert!(
                plan.contains(
                    "USING INDEX chat_messages_room_client_id (room=? AND client_id=? AND sender=?)"
                ),
                "{n} resends: {plan}"
            );
            assert!(!plan.contains("SCAN"), "{n} resends: {plan}");
        }
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
