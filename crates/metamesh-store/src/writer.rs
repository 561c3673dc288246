//! The single writer: one rusqlite connection, used from tokio's blocking pool.
//!
//! Reads go through sqlx; writes do not. sqlx hands every statement to a worker thread and
//! waits for the answer (50–90 µs a statement on this hardware), and an apply runs a dozen
//! statements, so a single-entity write cost a millisecond before any disk work. Here the whole
//! apply — every statement of every log entry of a Raft apply batch — runs as plain function
//! calls in one blocking task: one thread hop per batch instead of one per statement.
//!
//! WAL checkpoints run on a thread of their own ([`Checkpointer`]) rather than inside the commit
//! that crosses SQLite's threshold: a checkpoint copies a thousand pages or more into the main
//! file and fsyncs it, and inside a commit that stalls the apply (and the Raft reply) it lands in.
//! The writer keeps a higher threshold of its own (4,000 pages) as a bound on the WAL's size.
//!
//! The connection also caches what every apply needs and only writes change: the last revision
//! and its time, and the tenants this shard owns. The cache is dropped whenever a write fails, so
//! it is re-read from the file rather than trusted after a rollback.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, StoreOptions};

/// The writer's connection and the facts it caches between applies.
pub(crate) struct WriterConn {
    pub conn: Connection,
    /// `None` until read, and after any failed write.
    pub cached: Option<Cached>,
}

/// Facts about the committed state that every apply needs.
#[derive(Debug)]
pub(crate) struct Cached {
    pub last_rev: i64,
    pub last_at_ms: i64,
    pub tenants: HashSet<String>,
    /// The audit chain's last sequence number and hash.
    pub chain: metamesh_audit::Chain,
}

impl Cached {
    /// Moves to revision `rev` proposed at `at_ms`: revisions must increase, and time never runs
    /// backwards (the recorded time is `max(at_ms, last time)`, returned).
    pub fn advance(&mut self, rev: u64, at_ms: i64) -> Result<i64, StoreError> {
        if rev as i64 <= self.last_rev || rev > i64::MAX as u64 {
            return Err(StoreError::OutOfOrder { last: self.last_rev as u64, given: rev });
        }
        let at_ms = at_ms.max(self.last_at_ms);
        self.last_rev = rev as i64;
        self.last_at_ms = at_ms;
        Ok(at_ms)
    }
}

impl WriterConn {
    /// Takes the cached facts out (read from the file if they are not cached): a write puts
    /// them back only once it committed, so a failure leaves nothing stale behind.
    pub fn take_cached(&mut self) -> Result<Cached, StoreError> {
        if let Some(c) = self.cached.take() {
            return Ok(c);
        }
        let (last_rev, last_at_ms) =
            self.conn.query_row("SELECT ifnull(max(rev), 0), ifnull(max(at_ms), 0) FROM revisions", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut stmt = self.conn.prepare("SELECT name FROM tenants")?;
        let tenants = stmt.query_map([], |r| r.get(0))?.collect::<Result<HashSet<String>, _>>()?;
        drop(stmt);
        let chain = metamesh_audit::sqlite::load_chain(&self.conn).map_err(|e| StoreError::Audit(e.to_string()))?;
        Ok(Cached { last_rev, last_at_ms, tenants, chain })
    }
}

/// Shared handle on the writer connection.
pub(crate) struct Writer {
    inner: Arc<Mutex<WriterConn>>,
    checkpoints: Checkpointer,
}

/// Checkpoints the WAL from a connection of its own, on a thread of its own, at most once per
/// [`Checkpointer::EVERY`] while writes come in. `PASSIVE` checkpoints never block the writer
/// or readers; the writer starts the WAL over once one has copied everything. Dropping it lets
/// the thread end after its current round.
struct Checkpointer {
    /// The thread and its wake-up queue (told after each write; never blocks: a full queue means
    /// a checkpoint is already due). `None` once stopped.
    running: Mutex<Option<(std::sync::mpsc::SyncSender<()>, std::thread::JoinHandle<()>)>>,
}

impl Checkpointer {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(50);

    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let (due, wake) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while wake.recv().is_ok() {
                    std::thread::sleep(Self::EVERY);
                    while wake.try_recv().is_ok() {}
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer { running: Mutex::new(Some((due, thread))) })
    }

    fn wrote(&self) {
        if let Some((due, _)) = self.running.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = due.try_send(());
        }
    }

    /// Stops the thread, waiting for a checkpoint in progress.
    fn stop(&self) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((due, thread)) = running {
            drop(due);
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Opens the writer on a file whose schema is already migrated.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Writer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if opts.synchronous_full { "FULL" } else { "NORMAL" })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", "-65536")?;
        // Checkpoints are the checkpointer's (below). The writer checkpoints itself only past
        // 4,000 pages (16 MiB): under writes back to back, a checkpoint from another connection
        // never catches up with the last frame, and SQLite starts the WAL over only when one
        // has — this bounds the file (most of its frames are copied already by then).
        conn.pragma_update(None, "wal_autocheckpoint", "4000")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Freed content is overwritten with zeros, so that erased personal data (`Command::Erase`)
        // does not linger in free pages of the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        // The audit tables and their append-only triggers (idempotent).
        metamesh_audit::sqlite::init(&conn).map_err(|e| StoreError::Audit(e.to_string()))?;
        let checkpoints = Checkpointer::start(path)?;
        Ok(Writer { inner: Arc::new(Mutex::new(WriterConn { conn, cached: None })), checkpoints })
    }

    /// Runs `f` on the connection in the blocking pool. Calls are serialized by the lock; a
    /// call that panicked leaves the connection usable (its transaction rolled back on unwind)
    /// but its cache dropped.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut WriterConn) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.inner.clone();
        let done = tokio::task::spawn_blocking(move || run_locked(&mut inner.lock().unwrap_or_else(recover), f))
            .await
            .map_err(|e| StoreError::Corrupt(format!("the store writer failed: {e}")))?;
        self.checkpoints.wrote();
        done
    }

    /// Runs `f` right here on the calling thread if the connection is free, otherwise as
    /// [`Writer::run`] does. For work shorter than a trip through the blocking pool (a small
    /// apply): it holds the calling (runtime) thread meanwhile.
    pub async fn run_here<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut WriterConn) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        match self.try_here(f) {
            Ok(result) => {
                self.checkpoints.wrote();
                result
            }
            Err(f) => self.run(f).await,
        }
    }

    /// Runs `f` on this thread, or hands it back if the connection is busy.
    fn try_here<R, F>(&self, f: F) -> Result<Result<R, StoreError>, F>
    where
        F: FnOnce(&mut WriterConn) -> Result<R, StoreError>,
    {
        let mut w = match self.inner.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => recover(poisoned),
            Err(std::sync::TryLockError::WouldBlock) => return Err(f),
        };
        Ok(run_locked(&mut w, f))
    }

    /// Runs `f` on the calling thread (for `close`, which owns the store), once the
    /// checkpointer has stopped.
    pub fn close_with<R>(&self, f: impl FnOnce(&mut WriterConn) -> R) -> R {
        self.checkpoints.stop();
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }
}

/// Runs `f` on the locked connection. A panic becomes an error and leaves the connection usable
/// (its transaction rolled back on unwind); any error drops the cached facts.
fn run_locked<R>(
    w: &mut WriterConn,
    f: impl FnOnce(&mut WriterConn) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *w)))
        .unwrap_or_else(|_| Err(StoreError::Corrupt("the store writer panicked".into())));
    if result.is_err() {
        w.cached = None;
    }
    result
}

/// The connection of a lock poisoned by a panic elsewhere, its cached facts dropped.
fn recover(
    poisoned: std::sync::PoisonError<std::sync::MutexGuard<'_, WriterConn>>,
) -> std::sync::MutexGuard<'_, WriterConn> {
    let mut w = poisoned.into_inner();
    w.cached = None;
    w
}
