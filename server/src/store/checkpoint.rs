//! WAL checkpoints of a SQLite file, off the writer's thread.
//!
//! By default SQLite checkpoints on the commit that takes the write-ahead
//! log past 1,000 pages: that commit copies every logged page into the
//! database file and syncs both files, while the writer, and every message
//! queued behind it, waits. At 10 chat clients that was a commit in every
//! ~80 ms, and a fifth of the writer's time (docs/benchmarks.md, seventh
//! session).
//!
//! So the writer's connection checkpoints itself only past
//! [`WRITER_AUTOCHECKPOINT_PAGES`], a backstop; a thread of its own, at the
//! lowest CPU priority, runs passive checkpoints (they take no write lock)
//! [`INTERVAL`] after the first commit that finds the log checkpointed. A
//! checkpoint that could not copy everything (a reader still on an older
//! snapshot) is tried again after the next interval. With no commits the
//! thread sleeps.
//!
//! It also bounds what a power loss can take back. With `synchronous =
//! NORMAL` a WAL commit is synced to disk only by the next checkpoint; at
//! 1,000 pages, a quiet server's acknowledged messages could wait hours for
//! one. Now they wait at most [`INTERVAL`] and the checkpoint's own time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long commits gather before a checkpoint.
pub(super) const INTERVAL: Duration = Duration::from_millis(50);

/// The writer connection's own automatic checkpoint, reached only if the
/// checkpointer falls behind or cannot write (40 MiB of 4 KiB pages).
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

#[derive(Default)]
struct Shared {
    /// A commit since the last complete checkpoint.
    dirty: AtomicBool,
    stop: AtomicBool,
    /// Held while a checkpoint runs, so `close` waits for it.
    conn: Mutex<Option<rusqlite::Connection>>,
}

/// The checkpointing thread of one SQLite file; see the module's docs.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    /// To wake the thread; it is never joined (`close` waits on `conn`).
    thread: std::thread::Thread,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Starts the thread for the database at `path`. `None` if it cannot
    /// be started: SQLite's own automatic checkpoint still runs, later.
    pub(super) fn start(path: &Path) -> Option<Self> {
        let shared = Arc::new(Shared::default());
        let path = path.to_path_buf();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("chatseal-checkpoint".into())
                .spawn(move || run(&shared, &path))
        };
        match thread {
            Ok(handle) => Some(Checkpointer {
                shared,
                thread: handle.thread().clone(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the checkpoint thread: the writer checkpoints itself");
                None
            }
        }
    }

    /// A batch committed: a checkpoint follows within [`INTERVAL`].
    pub(super) fn committed(&self) {
        if !self.shared.dirty.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }

    /// Whether checkpoints still run (not closed).
    pub(super) fn running(&self) -> bool {
        !self.shared.stop.load(Ordering::Acquire)
    }

    /// Stops the thread; waits for a checkpoint in progress and closes the
    /// thread's connection.
    pub(super) fn close(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
        self.shared
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(shared: &Shared, path: &Path) {
    // The lowest CPU priority for this thread alone (on Linux `setpriority`
    // with 0 names the calling thread): a checkpoint copies megabytes, and
    // on a busy machine the threads that deliver messages come first. A
    // failure leaves the default priority, which is still correct.
    // SAFETY: a plain system call on the calling thread, no pointers.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
    let stopped = || shared.stop.load(Ordering::Acquire);
    let mut failing = false;
    while !stopped() {
        if !shared.dirty.load(Ordering::Acquire) {
            std::thread::park();
            continue;
        }
        // Let commits gather (parking may return early: wait out the rest).
        let due = Instant::now() + INTERVAL;
        while !stopped() && Instant::now() < due {
            std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
        }
        if stopped() {
            break;
        }
        shared.dirty.store(false, Ordering::Release);
        let mut conn = shared.conn.lock().unwrap_or_else(|p| p.into_inner());
        if stopped() {
            break;
        }
        let outcome = checkpoint(&mut conn, path);
        if outcome.is_ok() && failing {
            tracing::info!("WAL checkpoints succeed again");
            failing = false;
        }
        match outcome {
            Ok(true) => {}
            Ok(false) => shared.dirty.store(true, Ordering::Release),
            Err(e) => {
                // Tried again after the next interval, on a new connection;
                // past the writer's backstop the writer checkpoints itself.
                // Said once per failing spell (a full disk fails each try).
                if failing {
                    tracing::debug!(error = %e, "WAL checkpoint failed again");
                } else {
                    tracing::warn!(error = %e, retry_every_ms = INTERVAL.as_millis() as u64, "WAL checkpoint failed; retrying");
                    failing = true;
                }
                *conn = None;
                shared.dirty.store(true, Ordering::Release);
            }
        }
    }
}

/// One passive checkpoint on `conn` (opened on first use); whether every
/// page of the log was copied.
fn checkpoint(conn: &mut Option<rusqlite::Connection>, path: &Path) -> rusqlite::Result<bool> {
    use rusqlite::OpenFlags;
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?),
    };
    // (busy, pages in the log, pages copied); -1s when not in WAL mode.
    let (busy, logged, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(busy == 0 && copied >= logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_pages(path: &Path) -> u64 {
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        std::fs::metadata(wal).map(|m| m.len() / 4096).unwrap_or(0)
    }

    #[test]
    fn commits_are_checkpointed_by_the_thread_not_the_writer() {
        let path = std::env::temp_dir().join(format!(
            "chatseal-checkpoint-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA wal_autocheckpoint = 10000;
                 CREATE TABLE t (v BLOB);",
            )
            .unwrap();
        let checkpointer = Checkpointer::start(&path).unwrap();
        for _ in 0..200 {
            writer
                .execute("INSERT INTO t (v) VALUES (zeroblob(8000))", [])
                .unwrap();
            checkpointer.committed();
        }
        // 200 rows of 8,000 bytes are over 400 pages, all in the log: the
        // writer's own threshold (10,000 pages) was never reached, so only
        // the thread can copy them into the database file.
        let deadline = Instant::now() + Duration::from_secs(10);
        let file_pages = || std::fs::metadata(&path).unwrap().len() / 4096;
        while file_pages() < 400 && Instant::now() < deadline {
            std::thread::sleep(INTERVAL);
        }
        assert!(
            file_pages() >= 400,
            "the database file holds {} pages after 10 s (log: {})",
            file_pages(),
            wal_pages(&path)
        );
        checkpointer.close();
        assert!(checkpointer.shared.conn.lock().unwrap().is_none());
        drop(writer);
        let _ = std::fs::remove_file(&path);
    }
}
