//! The transaction a batch of messages is appended in (see
//! `Store::append_batch`): the same statements and the same logic on either
//! database, run through one of two executors.
//!
//! - PostgreSQL (and a SQLite database in memory): sqlx's transaction, on a
//!   connection kept out of the pool between batches.
//! - A SQLite file: a rusqlite connection of its own, used on the calling
//!   thread — the message writer's own thread (`chat::writer`). Through
//!   sqlx every statement is a round trip to the connection's worker thread
//!   and back to a tokio worker, two thread wake-ups each, and a batch is
//!   five statements: at 10 clients the store spent 0.7–0.9 ms per batch,
//!   half of its worker thread's samples in the kernel's context switch,
//!   and the server's throughput was what that latency allowed
//!   (docs/benchmarks.md, "The store on the writer's thread"). On the
//!   writer's own thread a batch is SQLite's work alone.
//!
//! The rusqlite executor never suspends, so the batch's (async) logic is
//! run to completion in one poll ([`run_now`]) and nothing is held across a
//! real await.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::Row as _;

use super::{Result, StoreError};

/// A value bound to one of the batch's statements.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
}

/// What a column read back is decoded as.
#[derive(Debug, Clone, Copy)]
pub(super) enum Col {
    Int,
    Text,
    OptText,
}

/// A column read back.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    Int(i64),
    Text(String),
    Null,
}

impl Cell {
    pub(super) fn int(&self) -> Result<i64> {
        match self {
            Cell::Int(v) => Ok(*v),
            _ => Err(decode("an integer")),
        }
    }

    /// An integer column that holds a `u32` (a key id, an epoch).
    pub(super) fn int32(&self) -> Result<u32> {
        u32::try_from(self.int()?).map_err(|e| StoreError(sqlx::Error::Decode(Box::new(e))))
    }

    pub(super) fn text(self) -> Result<String> {
        match self {
            Cell::Text(v) => Ok(v),
            _ => Err(decode("text")),
        }
    }

    pub(super) fn opt_text(self) -> Result<Option<String>> {
        match self {
            Cell::Text(v) => Ok(Some(v)),
            Cell::Null => Ok(None),
            Cell::Int(_) => Err(decode("text or NULL")),
        }
    }
}

/// A row's columns as `cols`, through a driver's two readers of column
/// `i`: as an integer, and as text or NULL.
fn read_row(
    cols: &[Col],
    int: impl Fn(usize) -> Result<i64>,
    text: impl Fn(usize) -> Result<Option<String>>,
) -> Result<Vec<Cell>> {
    cols.iter()
        .enumerate()
        .map(|(i, col)| {
            Ok(match col {
                Col::Int => Cell::Int(int(i)?),
                Col::Text => Cell::Text(text(i)?.ok_or_else(|| decode("text"))?),
                Col::OptText => text(i)?.map_or(Cell::Null, Cell::Text),
            })
        })
        .collect()
}

/// A sqlx row's first columns, read as `cols`.
pub(super) fn sqlx_cells(row: &sqlx::any::AnyRow, cols: &[Col]) -> Result<Vec<Cell>> {
    read_row(
        cols,
        |i| Ok(row.try_get(i)?),
        |i| Ok(row.try_get::<Option<String>, _>(i)?),
    )
}

fn decode(expected: &str) -> StoreError {
    StoreError(sqlx::Error::Decode(
        format!("a store query's column is not {expected}").into(),
    ))
}

/// The statements of one batch's transaction.
pub(super) trait BatchTx {
    /// Runs a query and reads its rows' columns as `cols`, in order.
    async fn fetch(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        cols: &[Col],
    ) -> Result<Vec<Vec<Cell>>>;
    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<()>;
    async fn commit(self) -> Result<()>;
}

impl BatchTx for sqlx::Transaction<'_, sqlx::Any> {
    async fn fetch(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        cols: &[Col],
    ) -> Result<Vec<Vec<Cell>>> {
        let rows = bind_sqlx(sqlx::query(sql), params)
            .fetch_all(&mut **self)
            .await?;
        rows.iter().map(|row| sqlx_cells(row, cols)).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<()> {
        bind_sqlx(sqlx::query(sql), params)
            .execute(&mut **self)
            .await?;
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        Ok(sqlx::Transaction::commit(self).await?)
    }
}

fn bind_sqlx<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for param in params {
        query = match *param {
            Param::Text(v) => query.bind(v),
            Param::OptText(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
        };
    }
    query
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(v) | Param::OptText(Some(v)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))
            }
            Param::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
        })
    }
}

impl BatchTx for rusqlite::Transaction<'_> {
    async fn fetch(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        cols: &[Col],
    ) -> Result<Vec<Vec<Cell>>> {
        let mut statement = self.prepare_cached(sql).map_err(sqlite)?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(sqlite)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite)? {
            out.push(read_row(
                cols,
                |i| row.get(i).map_err(sqlite),
                |i| row.get::<_, Option<String>>(i).map_err(sqlite),
            )?);
        }
        Ok(out)
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<()> {
        self.prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
            .map_err(sqlite)?;
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        rusqlite::Transaction::commit(self).map_err(sqlite)
    }
}

/// Polls `future` once: for the rusqlite executor, which never suspends.
/// A future that does suspend is a bug here, reported as an error (and its
/// transaction rolled back when it is dropped) rather than a hang.
pub(super) fn run_now<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(StoreError(sqlx::Error::Protocol(
            "the SQLite batch suspended on the writer's thread".into(),
        ))),
    }
}

/// A SQLite error as the store's error, keeping what callers ask of it
/// (a unique violation is another writer's message with the same
/// clientId, see `Store::append_batch`).
fn sqlite(e: rusqlite::Error) -> StoreError {
    StoreError(sqlx::Error::Database(Box::new(SqliteFailure(e))))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SqliteFailure(rusqlite::Error);

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        "SQLite"
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        match &self.0 {
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.extended_code,
                    SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                sqlx::error::ErrorKind::UniqueViolation
            }
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

/// Prepared statements a writer connection keeps: a batch's statements
/// differ by their number of rows (1 to `MAX_BATCH`), as in sqlx's cache.
const STATEMENT_CACHE: usize = 128;

/// The SQLite file's own writer connection. It is opened on first use and
/// dropped after any failed batch (its state is then unknown: SQLite may
/// have ended the transaction itself on a full disk), so the next batch
/// gets a fresh one.
pub(super) struct SqliteWriter {
    path: PathBuf,
    busy_timeout: Duration,
    /// The history id the file must have: the one sqlx's pool read.
    history_id: String,
    conn: Mutex<Option<rusqlite::Connection>>,
    /// Checkpoints what this connection commits (see [`super::checkpoint`]).
    checkpointer: Option<super::checkpoint::Checkpointer>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteWriter {
    /// The writer for the database at `path`, checked now: it must be the
    /// database sqlx opened (same history id), never a file created beside
    /// it under another reading of the URL.
    pub(super) fn open(path: &Path, busy_timeout: Duration, history_id: &str) -> Result<Self> {
        let writer = SqliteWriter {
            path: path.to_path_buf(),
            busy_timeout,
            history_id: history_id.to_owned(),
            conn: Mutex::new(None),
            checkpointer: super::checkpoint::Checkpointer::start(path),
        };
        let conn = writer.connect()?;
        *writer.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        Ok(writer)
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        // No CREATE: the file exists (sqlx made it and its schema).
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(sqlite)?;
        // As sqlx's connections (see `Store::connect_with`).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            .and_then(|()| conn.busy_timeout(self.busy_timeout))
            .and_then(|()| {
                // A backstop only, while the checkpointer runs.
                let pages = match &self.checkpointer {
                    Some(c) if c.running() => super::checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
                    _ => 1_000, // SQLite's default
                };
                conn.pragma_update(None, "wal_autocheckpoint", pages)
            })
            .map_err(sqlite)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(sqlite)?;
        let id: String = conn
            .query_row("SELECT history FROM chat_store WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(sqlite)?;
        if id != self.history_id || !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError(sqlx::Error::Protocol(format!(
                "{} is not the database the pool opened (history {id}, journal {mode})",
                self.path.display()
            ))));
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Runs `append` in a write transaction (`BEGIN IMMEDIATE`) on this
    /// thread; the connection is dropped if it fails other than by a
    /// duplicate.
    pub(super) fn append<T>(
        &self,
        append: impl FnOnce(rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.connect()?),
        };
        let outcome = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite)
            .and_then(append);
        if outcome.as_ref().is_err_and(|e| !e.is_unique_violation()) {
            *slot = None;
        }
        if outcome.is_ok()
            && let Some(checkpointer) = &self.checkpointer
        {
            checkpointer.committed();
        }
        outcome
    }

    /// Closes the connection (a later batch opens it again) and stops the
    /// checkpoints.
    pub(super) fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close();
        }
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, history: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "chatseal-batch-tx-{name}-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE chat_store (id INTEGER PRIMARY KEY, history TEXT NOT NULL);
             CREATE TABLE t (k TEXT UNIQUE);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO chat_store (id, history) VALUES (1, ?)",
            [history],
        )
        .unwrap();
        path
    }

    #[test]
    fn the_writer_opens_only_the_pools_database() {
        let path = scratch("history", "h-1");
        let wrong = SqliteWriter::open(&path, Duration::from_secs(1), "h-2").unwrap_err();
        assert!(wrong.to_string().contains("not the database"), "{wrong}");
        SqliteWriter::open(&path, Duration::from_secs(1), "h-1").unwrap();
        // No file is created for a path that names none.
        let missing = path.with_extension("missing");
        assert!(SqliteWriter::open(&missing, Duration::from_secs(1), "h-1").is_err());
        assert!(!missing.exists());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_duplicate_reads_as_a_unique_violation_and_keeps_the_connection() {
        let path = scratch("unique", "h");
        let writer = SqliteWriter::open(&path, Duration::from_secs(1), "h").unwrap();
        let insert = |tx: rusqlite::Transaction<'_>| {
            run_now(async move {
                let mut tx = tx;
                BatchTx::execute(&mut tx, "INSERT INTO t (k) VALUES (?)", &[Param::Text("a")])
                    .await?;
                BatchTx::commit(tx).await
            })
        };
        writer.append(insert).unwrap();
        let again = writer.append(insert).unwrap_err();
        assert!(again.is_unique_violation(), "{again}");
        assert!(
            writer.conn.lock().unwrap().is_some(),
            "kept after a duplicate"
        );
        // Any other failure drops the connection; the next batch reopens it.
        let other = writer
            .append(|_tx| Err::<(), _>(columns_error()))
            .unwrap_err();
        assert!(!other.is_unique_violation());
        assert!(
            writer.conn.lock().unwrap().is_none(),
            "dropped after a failure"
        );
        let rows = writer
            .append(|tx| {
                run_now(async move {
                    let mut tx = tx;
                    let rows = tx.fetch("SELECT k FROM t", &[], &[Col::Text]).await?;
                    BatchTx::commit(tx).await?;
                    Ok(rows.len())
                })
            })
            .unwrap();
        assert_eq!(rows, 1, "the duplicate was rolled back, the first kept");
        let _ = std::fs::remove_file(&path);
    }

    fn columns_error() -> StoreError {
        StoreError(sqlx::Error::Protocol("failed".into()))
    }

    #[test]
    fn a_batch_that_suspends_is_an_error_not_a_hang() {
        let pending = run_now(async {
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(pending.is_err());
    }
}
