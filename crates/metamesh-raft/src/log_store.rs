//! The Raft log, in its own SQLite file.
//!
//! Kept apart from the state (TiKV's `Engines { kv, raft }`): the log is written on every
//! append and purged after snapshots, the state grows forever; separate files keep their WAL
//! checkpoints and fsyncs from waiting on each other.
//!
//! Correctness rules from openraft, and how they hold here:
//! - entries are consecutive: `append` inserts exactly the entries given, `truncate` deletes a
//!   suffix, `purge` a prefix;
//! - writes are serialized: one connection, owned by one thread (`raft-log`) that runs jobs in
//!   the order they were queued; every operation queues its job before it returns (an append
//!   before it returns, ahead of its flush), so the file sees them in openraft's order;
//! - an append is acknowledged (`LogFlushed`) only after its transaction committed with
//!   `synchronous = FULL`, i.e. after fsync.
//!
//! The connection is plain rusqlite on its own thread rather than sqlx: sqlx hands each
//! statement to a worker thread and streams results back, several thread switches a statement,
//! and a replicated write makes one append on each replica. Here an append is one queued job
//! and one wake-up of the caller.
//!
//! The commit index (`save_committed`, optional in openraft) is not written on its own: openraft
//! awaits it on its core task before applying, and a write of its own would cost a second fsync
//! per commit, queued behind the append in flight. It is kept in memory and written in the
//! transaction of the next append. What is on disk is therefore a committed index, possibly
//! behind the latest: that is all openraft needs at startup (it applies up to it), and
//! everything after it is learned again from the leader.
//!
//! The newest entries are also kept in memory ([`Recent`]): replication reads the entries it
//! sends to followers right after they were appended, and serving those reads from memory keeps
//! them from queueing behind the leader's own fsync on the single connection.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use rusqlite::{params, Connection, OptionalExtension};

use crate::TypeConfig;

type StorageResult<T> = Result<T, StorageError<u64>>;

fn write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
";

const SET_KV: &str = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The error of an operation after the log thread ended.
fn stopped() -> io::Error {
    io::Error::other("the raft log thread has stopped")
}

/// Work for the log thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The log store. Cloning shares the connection's thread (readers and the writer alike: reads
/// that miss the in-memory tail are rare — replication to a lagging follower — and must see
/// every acknowledged append).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The queue of the thread that owns the connection; the thread ends when the last clone
    /// of the store is dropped.
    jobs: mpsc::Sender<Job>,
    recent: Mutex<Recent>,
    /// The commit index given to `save_committed` and not written yet.
    committed: Mutex<Option<Option<LogId<u64>>>>,
}

/// The newest log entries, a consecutive run ending at the last appended entry, bounded in
/// count and (approximate, serialized) bytes.
#[derive(Default)]
struct Recent {
    entries: BTreeMap<u64, (Entry<TypeConfig>, usize)>,
    bytes: usize,
}

impl Recent {
    const MAX_ENTRIES: usize = 512;
    const MAX_BYTES: usize = 32 * 1024 * 1024;

    fn push(&mut self, entry: Entry<TypeConfig>, size: usize) {
        let index = entry.log_id.index;
        // An append always follows the previous one or replaces a truncated suffix; anything
        // else (a gap) starts the run afresh so the cache never has holes.
        if self.entries.last_key_value().is_some_and(|(&last, _)| last + 1 != index) {
            self.truncate(index);
            if self.entries.last_key_value().is_some_and(|(&last, _)| last + 1 != index) {
                self.clear();
            }
        }
        self.bytes += size;
        self.entries.insert(index, (entry, size));
        while self.entries.len() > Self::MAX_ENTRIES || (self.bytes > Self::MAX_BYTES && self.entries.len() > 1) {
            if let Some((_, (_, size))) = self.entries.pop_first() {
                self.bytes -= size;
            }
        }
    }

    /// Drops entries at `index` and after.
    fn truncate(&mut self, index: u64) {
        for (_, (_, size)) in self.entries.split_off(&index) {
            self.bytes -= size;
        }
    }

    /// Drops entries at `index` and before.
    fn purge(&mut self, index: u64) {
        let keep = self.entries.split_off(&(index + 1));
        self.entries = keep;
        self.bytes = self.entries.values().map(|(_, s)| s).sum();
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries `start..=end` if all of them are here.
    fn get(&self, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
        let (&first, _) = self.entries.first_key_value()?;
        let (&last, _) = self.entries.last_key_value()?;
        // A range past the tail is SQLite's to answer (it holds nothing there either).
        if start < first || start > end || start > last {
            return None;
        }
        let end = end.min(last);
        Some(self.entries.range(start..=end).map(|(_, (e, _))| e.clone()).collect())
    }
}

impl LogStore {
    pub async fn open(path: &Path) -> io::Result<LogStore> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("raft-log".into()).spawn(move || {
            let mut conn = conn;
            while let Ok(job) = queue.recv() {
                job(&mut conn);
            }
        })?;
        Ok(LogStore { inner: Arc::new(Inner { jobs, recent: Mutex::default(), committed: Mutex::default() }) })
    }

    /// Queues `job` on the log thread.
    fn submit(&self, job: Job) -> io::Result<()> {
        self.inner.jobs.send(job).map_err(|_| stopped())
    }

    /// Runs `f` on the log thread, after everything queued before it, and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }))?;
        rx.await.map_err(|_| stopped())?.map_err(io::Error::other)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.recent.lock().expect("log cache poisoned")
    }

    async fn get_kv<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> StorageResult<Option<T>> {
        let value: Option<String> = self
            .call(move |c| c.query_row("SELECT value FROM kv WHERE key = ?", [key], |r| r.get(0)).optional())
            .await
            .map_err(read_err)?;
        value.map(|v| serde_json::from_str(&v)).transpose().map_err(read_err)
    }

    async fn set_kv<T: serde::Serialize>(&self, key: &'static str, value: &T) -> StorageResult<()> {
        let text = serde_json::to_string(value).map_err(write_err)?;
        self.call(move |c| c.prepare_cached(SET_KV)?.execute(params![key, text])).await.map_err(write_err)?;
        Ok(())
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (i64, i64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s as i64,
        Bound::Excluded(&s) => s as i64 + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e as i64,
        Bound::Excluded(&e) => e as i64 - 1,
        Bound::Unbounded => i64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let (start, end) = bounds(&range);
        if start > end {
            return Ok(Vec::new());
        }
        if let Some(hit) = self.recent().get(start as u64, end as u64) {
            return Ok(hit);
        }
        let texts: Vec<String> = self
            .call(move |c| {
                let mut st = c.prepare_cached("SELECT entry FROM log WHERE idx >= ? AND idx <= ? ORDER BY idx")?;
                let rows = st.query_map([start, end], |r| r.get(0))?;
                rows.collect()
            })
            .await
            .map_err(read_err)?;
        texts.iter().map(|t| serde_json::from_str(t)).collect::<Result<_, _>>().map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<u64>> = self.get_kv("last_purged").await?;
        let last: Option<String> = self
            .call(|c| c.query_row("SELECT entry FROM log ORDER BY idx DESC LIMIT 1", [], |r| r.get(0)).optional())
            .await
            .map_err(read_err)?;
        let last_log_id = match last {
            Some(text) => {
                let e: Entry<TypeConfig> = serde_json::from_str(&text).map_err(read_err)?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StorageResult<()> {
        self.set_kv("vote", vote).await.map_err(|_| StorageIOError::write_vote(AnyError::error("saving vote")).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<u64>>> {
        self.get_kv("vote").await
    }

    /// Kept for the next append's transaction (see the module documentation).
    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        *self.inner.committed.lock().expect("commit index poisoned") = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        Ok(self.get_kv::<Option<LogId<u64>>>("committed").await?.flatten())
    }

    #[tracing::instrument(level = "debug", name = "raft.log.append", skip_all)]
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut kept = Vec::new();
        let rows: Vec<(i64, String)> = entries
            .into_iter()
            .map(|e| {
                let text = serde_json::to_string(&e)?;
                let row = (e.log_id.index as i64, text);
                kept.push((e, row.1.len()));
                Ok(row)
            })
            .collect::<Result<_, serde_json::Error>>()
            .map_err(write_err)?;
        {
            // Cached before the write: replication may send an entry before the leader's own
            // flush (commit still needs a quorum of flushes); a failed write stops the replica.
            let mut recent = self.recent();
            for (e, size) in kept {
                recent.push(e, size);
            }
        }
        // Every entry up to a commit index given before this append is already queued, so the
        // index may travel with these entries.
        let committed = match self.inner.committed.lock().expect("commit index poisoned").take() {
            Some(c) => Some(serde_json::to_string(&c).map_err(write_err)?),
            None => None,
        };
        // The write runs on the log thread and reports through `callback` (storage-v2's
        // contract: `append` may return before the flush, as long as the entries are readable —
        // they are, from the cache). It is queued before this returns, so every later log
        // operation runs after it. Raft thereby replicates while the leader's own fsync is in
        // flight.
        let span = tracing::info_span!(
            "raft.log.flush",
            entries = rows.len(),
            first = rows.first().map(|r| r.0),
            last = rows.last().map(|r| r.0)
        );
        self.submit(Box::new(move |conn| {
            let _entered = span.enter();
            let result = (|| {
                let tx = conn.transaction()?;
                {
                    let mut insert = tx.prepare_cached("INSERT OR REPLACE INTO log (idx, entry) VALUES (?, ?)")?;
                    for (idx, text) in &rows {
                        insert.execute(params![idx, text])?;
                    }
                }
                if let Some(committed) = committed {
                    // Cached: parsing this upsert again on every append was ~2 % of a replicated put's CPU.
                    tx.prepare_cached(SET_KV)?.execute(params!["committed", committed])?;
                }
                tx.commit()
            })();
            match result {
                Ok(()) => callback.log_io_completed(Ok(())),
                Err(e) => {
                    tracing::error!(error = %e, "appending to the raft log failed");
                    callback.log_io_completed(Err(io::Error::other(e.to_string())));
                }
            }
        }))
        .map_err(write_err)
    }

    #[tracing::instrument(level = "info", name = "raft.log.truncate", skip_all, fields(from = log_id.index))]
    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        self.recent().truncate(log_id.index);
        let from = log_id.index as i64;
        self.call(move |c| c.execute("DELETE FROM log WHERE idx >= ?", [from])).await.map_err(write_err)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "raft.log.purge", skip_all, fields(upto = log_id.index))]
    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        // Record the purge point first: a crash between the two leaves entries that are merely
        // redundant, never a hole.
        self.set_kv("last_purged", &log_id).await?;
        self.recent().purge(log_id.index);
        let upto = log_id.index as i64;
        self.call(move |c| c.execute("DELETE FROM log WHERE idx <= ?", [upto])).await.map_err(write_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 0), index), payload: EntryPayload::Blank }
    }

    fn indexes(r: &Recent, start: u64, end: u64) -> Option<Vec<u64>> {
        r.get(start, end).map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn the_cache_is_a_consecutive_tail() {
        let mut r = Recent::default();
        for i in 1..=5 {
            r.push(entry(i), 10);
        }
        assert_eq!(indexes(&r, 2, 4), Some(vec![2, 3, 4]));
        assert_eq!(indexes(&r, 4, 99), Some(vec![4, 5]));
        assert_eq!(indexes(&r, 0, 3), None, "a range starting before the cache goes to SQLite");
        assert_eq!(indexes(&r, 6, 9), None, "so does one starting after it");
        // A conflicting suffix replaced (truncate, then append from 4).
        r.truncate(4);
        r.push(entry(4), 10);
        assert_eq!(indexes(&r, 1, 9), Some(vec![1, 2, 3, 4]));
        assert_eq!(r.bytes, 40);
        // An append that is not the next index (a follower after a snapshot) restarts the run.
        r.push(entry(9), 10);
        assert_eq!(indexes(&r, 9, 9), Some(vec![9]));
        assert_eq!(indexes(&r, 4, 9), None);
        r.push(entry(10), 10);
        r.purge(9);
        assert_eq!(indexes(&r, 10, 10), Some(vec![10]));
        assert_eq!(r.bytes, 10);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut r = Recent::default();
        for i in 1..=(Recent::MAX_ENTRIES as u64 + 10) {
            r.push(entry(i), 1);
        }
        assert_eq!(r.entries.len(), Recent::MAX_ENTRIES);
        assert_eq!(indexes(&r, 1, 1), None);
        r.push(entry(Recent::MAX_ENTRIES as u64 + 11), Recent::MAX_BYTES);
        assert_eq!(r.entries.len(), 1, "one huge entry evicts the rest but stays itself");
    }
}
