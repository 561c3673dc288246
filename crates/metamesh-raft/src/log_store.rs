//! The Raft log, in its own SQLite file.
//!
//! Kept apart from the state (TiKV's `Engines { kv, raft }`): the log is written on every
//! append and purged after snapshots, the state grows forever; separate files keep their WAL
//! checkpoints and fsyncs from waiting on each other.
//!
//! Correctness rules from openraft, and how they hold here:
//! - entries are consecutive: `append` inserts exactly the entries given, `truncate` deletes a
//!   suffix, `purge` a prefix;
//! - writes are serialized: one connection behind a mutex, every write its own transaction;
//! - an append is acknowledged (`LogFlushed`) only after its transaction committed with
//!   `synchronous = FULL`, i.e. after fsync.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

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

/// The log store. Cloning shares the connection (readers and the writer alike: reads of the log
/// are rare — replication to a lagging follower — and must see every acknowledged append).
#[derive(Clone)]
pub struct LogStore {
    conn: Arc<Mutex<SqliteConnection>>,
}

impl LogStore {
    pub async fn open(path: &Path) -> Result<LogStore, sqlx::Error> {
        let mut conn = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .connect()
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
        Ok(LogStore { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn get_kv<T: serde::de::DeserializeOwned>(&self, key: &str) -> StorageResult<Option<T>> {
        let mut conn = self.conn.lock().await;
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM kv WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(read_err)?;
        value.map(|v| serde_json::from_str(&v)).transpose().map_err(read_err)
    }

    async fn set_kv<T: serde::Serialize>(&self, key: &str, value: &T) -> StorageResult<()> {
        let text = serde_json::to_string(value).map_err(write_err)?;
        let mut conn = self.conn.lock().await;
        sqlx::query("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(text)
            .execute(&mut *conn)
            .await
            .map_err(write_err)?;
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
        let mut conn = self.conn.lock().await;
        // One JSON document rather than a row per entry: each row costs a worker round trip.
        let text: String = sqlx::query_scalar(
            "SELECT '[' || ifnull(group_concat(entry, ','), '') || ']'
             FROM (SELECT entry FROM log WHERE idx >= ? AND idx <= ? ORDER BY idx)",
        )
        .bind(start)
        .bind(end)
        .fetch_one(&mut *conn)
        .await
        .map_err(read_err)?;
        serde_json::from_str(&text).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<u64>> = self.get_kv("last_purged").await?;
        let last: Option<String> = {
            let mut conn = self.conn.lock().await;
            sqlx::query_scalar("SELECT entry FROM log ORDER BY idx DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(read_err)?
        };
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

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StorageResult<()> {
        self.set_kv("committed", &committed).await
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<u64>>> {
        Ok(self.get_kv::<Option<LogId<u64>>>("committed").await?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows: Vec<(u64, String)> = entries
            .into_iter()
            .map(|e| serde_json::to_string(&e).map(|text| (e.log_id.index, text)))
            .collect::<Result<_, _>>()
            .map_err(write_err)?;
        let result = async {
            let mut conn = self.conn.lock().await;
            let mut tx = conn.begin().await?;
            sqlx::query("INSERT OR REPLACE INTO log (idx, entry) SELECT value->>0, value->>1 FROM json_each(?)")
                .bind(serde_json::to_string(&rows).expect("log rows serialize"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        let mut conn = self.conn.lock().await;
        sqlx::query("DELETE FROM log WHERE idx >= ?")
            .bind(log_id.index as i64)
            .execute(&mut *conn)
            .await
            .map_err(write_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StorageResult<()> {
        // Record the purge point first: a crash between the two leaves entries that are merely
        // redundant, never a hole.
        self.set_kv("last_purged", &log_id).await?;
        let mut conn = self.conn.lock().await;
        sqlx::query("DELETE FROM log WHERE idx <= ?")
            .bind(log_id.index as i64)
            .execute(&mut *conn)
            .await
            .map_err(write_err)?;
        Ok(())
    }
}
