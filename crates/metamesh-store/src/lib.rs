//! The shard state machine: applies [`Proposal`]s to one SQLite file and answers queries.
//!
//! Pipeline of a write: `apply(revision, proposal)` opens one transaction, checks the revision
//! follows the last one, answers a retried request id with its first outcome, runs the command
//! inside a savepoint (a refused command rolls back to it, so nothing of it is written), records
//! the revision, and commits. Raft calls `apply` with the log index as the revision; everything
//! else in the command was chosen by the proposer, so replicas stay byte-identical.
//!
//! Writes go through one rusqlite connection in tokio's blocking pool ([`writer`]), a whole
//! batch of log entries in one transaction with a savepoint per entry. Reads go through a small
//! sqlx pool of read-only connections (WAL lets them run beside the writer) and can be asked
//! "as of" a revision or a time; see [`read`].
//!
//! Code map: [`apply`] (the write pipeline and command handlers), [`entities`] (bulk entity
//! writes), [`schemas`] (the schema registry and its validator cache), [`lineage`] (edges, cycle
//! checks, frontier expansion), [`graph`] (the live lineage graph in memory), [`read`] (entity queries and pagination), [`search`] (FTS5),
//! [`export`] (a deterministic dump used to compare replicas).

mod apply;
mod audit;
pub mod audit_query;
mod entities;
pub mod export;
mod graph;
mod lineage;
mod mlmd;
pub mod openlineage;
pub mod read;
mod rows;
mod schemas;
mod search;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use metamesh_core::CommandError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::ConnectOptions;

pub use apply::Applied;
pub use lineage::{ExpandRequest, Expansion, OutboxEntry};
pub use metamesh_core::schema::SchemaVersion;
pub use read::{Page, SearchHit};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Failures of the store itself, as opposed to a refused command ([`CommandError`], carried
/// inside [`Applied`]). A `StoreError` from `apply` means the write did not happen and the
/// replica should stop applying: retrying the same revision is safe.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Db(#[from] sqlx::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("revision {given} does not follow the last applied revision {last}")]
    OutOfOrder { last: u64, given: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The audit log refused a record (its chain does not continue the stored one).
    #[error("audit log: {0}")]
    Audit(String),
    /// A query's arguments are wrong (a bad filter, cursor or schema version).
    #[error(transparent)]
    Invalid(#[from] CommandError),
}

/// How the SQLite file is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `FULL` fsyncs every commit; `NORMAL` (in WAL mode) may lose the last commits on power
    /// loss but never corrupts — right when a durable Raft log replays them.
    pub synchronous_full: bool,
    /// Read connections.
    pub readers: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { synchronous_full: true, readers: 4 }
    }
}

/// Key of a compiled schema in the validator cache. Schema versions are immutable, so entries
/// never go stale.
type SchemaKey = (String, String, u32);

/// Compiled validators by schema version, shared by the writer and the dry-run checks.
pub(crate) type Validators = Mutex<HashMap<SchemaKey, Arc<jsonschema::Validator>>>;

/// Page cache of each reader connection, in SQLite's negative-KiB form.
const READER_CACHE_KIB: &str = "-8192";

/// A shard's state in one SQLite file.
pub struct Store {
    /// The single writer (see [`writer`]). SQLite allows one writer at a time anyway; holding
    /// it behind a lock makes writes queue in Rust rather than spin on `SQLITE_BUSY`.
    writer: writer::Writer,
    readers: SqlitePool,
    validators: Arc<Validators>,
    /// The live lineage graph (see [`graph`]); written only after an apply commits.
    graph: std::sync::RwLock<graph::Graph>,
    /// The owned tenants as last read, with a generation bumped by every apply that creates
    /// one (a read that raced with it is not kept).
    tenants: std::sync::Mutex<(u64, Option<Vec<metamesh_core::TenantId>>)>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and runs the embedded migrations.
    pub async fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.synchronous_full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10))
            .pragma("temp_store", "memory");
        let mut migrating: SqliteConnection = base.clone().create_if_missing(true).connect().await?;
        MIGRATOR.run_direct(&mut migrating).await?;
        sqlx::Connection::close(migrating).await?;
        let writer = writer::Writer::open(&path, &opts)?;
        // Each reader has its own page cache: a small one each (8 MiB), as the OS page cache
        // already holds the file once for all of them; the writer keeps 64 MiB (writer.rs).
        let readers = SqlitePoolOptions::new()
            .max_connections(opts.readers.max(1))
            .connect_with(base.read_only(true).pragma("cache_size", READER_CACHE_KIB))
            .await?;
        let store = Store {
            writer,
            readers,
            validators: Arc::new(Mutex::new(HashMap::new())),
            graph: std::sync::RwLock::new(graph::Graph::default()),
            tenants: std::sync::Mutex::new((0, None)),
            path,
        };
        store.load_graph().await?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last applied revision (0 for a new store).
    pub async fn applied_revision(&self) -> Result<u64, StoreError> {
        let rev: Option<i64> = sqlx::query_scalar("SELECT max(rev) FROM revisions").fetch_one(&self.readers).await?;
        Ok(rev.unwrap_or(0) as u64)
    }

    /// Closes the connections, checkpointing the WAL.
    pub async fn close(self) {
        self.readers.close().await;
        self.writer.close_with(|w| {
            let _ = w.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        });
    }
}
