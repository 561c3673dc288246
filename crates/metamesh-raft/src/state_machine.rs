//! The Raft state machine: the shard [`Store`], plus the two facts Raft needs from it (the last
//! applied log id and the membership), kept in the store's `meta` table and written in the same
//! SQLite transaction as the command of the entry. After a crash the state and those facts can
//! therefore never disagree, and no command is half applied or applied twice.
//!
//! Files under the replica's data directory:
//! - `state/CURRENT` names the live state file `state/<name>.sqlite`; installing a snapshot
//!   writes a new file and moves the pointer (write temp + rename), so a crash leaves either the
//!   old state or the new one;
//! - `snapshots/<id>.sqlite` + `<id>.json`: the latest snapshot (a `VACUUM INTO` copy of the
//!   state) and its Raft metadata, served to followers that fell behind the purged log.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use metamesh_store::{Store, StoreOptions};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::fs::File;

use crate::{ApplyReply, TypeConfig};

type StorageResult<T> = Result<T, StorageError<u64>>;

/// The `meta` key holding [`RaftMeta`].
const META_KEY: &str = "raft";

fn sm_write(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn sm_read(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

/// What Raft needs to know about the state machine, stored inside it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RaftMeta {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

/// The live store of a replica, swappable when a snapshot is installed. Readers take an
/// `Arc<Store>` and keep using it even if a snapshot replaces it meanwhile.
pub struct SharedStore {
    dir: PathBuf,
    options: StoreOptions,
    current: RwLock<Arc<Store>>,
}

impl SharedStore {
    /// Opens the live state of the replica at `dir` (creating an empty one).
    pub async fn open(dir: &Path, options: StoreOptions) -> io::Result<SharedStore> {
        let state_dir = dir.join("state");
        std::fs::create_dir_all(&state_dir)?;
        std::fs::create_dir_all(dir.join("snapshots"))?;
        let path = match live_state_file(dir) {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomically(&state_dir.join("CURRENT"), "initial.sqlite")?;
                state_dir.join("initial.sqlite")
            }
            Err(e) => return Err(e),
        };
        let store = Store::open(path, options.clone()).await.map_err(io::Error::other)?;
        Ok(SharedStore { dir: dir.to_owned(), options, current: RwLock::new(Arc::new(store)) })
    }

    /// The live store.
    pub fn store(&self) -> Arc<Store> {
        self.current.read().expect("store lock poisoned").clone()
    }

    /// Makes the snapshot file at `snapshot` the live state.
    async fn replace_with(&self, snapshot: &Path, name: &str) -> io::Result<()> {
        let state_dir = self.dir.join("state");
        let target = state_dir.join(format!("{name}.sqlite"));
        tokio::fs::copy(snapshot, &target).await?;
        File::open(&target).await?.sync_all().await?;
        let store = Store::open(&target, self.options.clone()).await.map_err(io::Error::other)?;
        write_atomically(&state_dir.join("CURRENT"), &format!("{name}.sqlite"))?;
        let old = std::mem::replace(&mut *self.current.write().expect("store lock poisoned"), Arc::new(store));
        let old_path = old.path().to_owned();
        drop(old);
        // Readers may still hold the old store; unlinking keeps their open files valid.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = old_path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        Ok(())
    }
}

/// Whether the open `file` is the file at `path`.
async fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (open, named) = (file.metadata().await?, tokio::fs::metadata(path).await?);
    Ok(open.dev() == named.dev() && open.ino() == named.ino())
}

/// The live state file of the replica whose data directory is `dir`: the one `state/CURRENT`
/// names (for tools that read a replica's files, such as `metamesh audit`).
pub fn live_state_file(dir: &Path) -> io::Result<PathBuf> {
    let name = std::fs::read_to_string(dir.join("state").join("CURRENT"))?;
    Ok(dir.join("state").join(name.trim()))
}

/// Writes `content` to `path` through a temporary file, a rename and an fsync of the directory.
fn write_atomically(path: &Path, content: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

pub struct StateMachine {
    shared: Arc<SharedStore>,
    /// The Raft bookkeeping as last written to the store, so `apply` does not read it back
    /// from SQLite for every batch; cleared when a snapshot replaces the store.
    meta: Option<RaftMeta>,
    /// Where the snapshot being received is written (`begin_receiving_snapshot` hands out only
    /// the file).
    receiving: Option<PathBuf>,
}

impl StateMachine {
    pub fn new(shared: Arc<SharedStore>) -> StateMachine {
        StateMachine { shared, meta: None, receiving: None }
    }

    fn snapshots(&self) -> PathBuf {
        self.shared.dir.join("snapshots")
    }

    async fn meta(&mut self) -> StorageResult<RaftMeta> {
        if let Some(meta) = &self.meta {
            return Ok(meta.clone());
        }
        let meta = match self.shared.store().meta(META_KEY).await.map_err(sm_read)? {
            Some(text) => serde_json::from_str(&text).map_err(sm_read)?,
            None => RaftMeta::default(),
        };
        self.meta = Some(meta.clone());
        Ok(meta)
    }

    /// Keeps `id` as the only snapshot.
    fn keep_only(&self, id: &str) -> io::Result<()> {
        for entry in std::fs::read_dir(self.snapshots())? {
            let path = entry?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if stem != id {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        let meta = self.meta().await?;
        Ok((meta.last_applied, meta.membership))
    }

    #[tracing::instrument(level = "info", name = "raft.apply", skip_all, fields(entries, commands, last))]
    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<ApplyReply>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let store = self.shared.store();
        let mut meta = self.meta().await?;
        // Until this batch is fully written the cache may be ahead of the store; a failed
        // write leaves it empty so the next call reads the truth back.
        self.meta = None;
        // The whole batch is one store transaction (one commit), the Raft bookkeeping in it.
        let mut commands = Vec::new();
        let mut indexes = Vec::new();
        for entry in entries {
            meta.last_applied = Some(entry.log_id);
            let index = entry.log_id.index;
            match entry.payload {
                EntryPayload::Blank => indexes.push((index, false)),
                EntryPayload::Membership(m) => {
                    meta.membership = StoredMembership::new(Some(entry.log_id), m);
                    indexes.push((index, false));
                }
                EntryPayload::Normal(proposal) => {
                    commands.push((index, proposal));
                    indexes.push((index, true));
                }
            }
        }
        let span = tracing::Span::current();
        span.record("entries", indexes.len());
        span.record("commands", commands.len());
        span.record("last", meta.last_applied.map(|l| l.index));
        let text = serde_json::to_string(&meta).map_err(sm_write)?;
        let mut applied =
            store.apply_batch(commands, Some((META_KEY.to_owned(), text))).await.map_err(sm_write)?.into_iter();
        let mut replies = Vec::with_capacity(indexes.len());
        for (index, is_command) in indexes {
            let applied = if is_command {
                Some(applied.next().ok_or_else(|| sm_write("the store answered fewer entries than given"))?.into())
            } else {
                None
            };
            replies.push(ApplyReply { revision: index, applied });
        }
        self.meta = Some(meta);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder { shared: self.shared.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<File>> {
        let path = self.snapshots().join(format!("receiving-{}.part", unique()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(snap_err)?;
        self.receiving = Some(path);
        Ok(Box::new(file))
    }

    #[tracing::instrument(level = "info", name = "raft.snapshot.install", skip_all, fields(snapshot = %meta.snapshot_id))]
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        mut snapshot: Box<File>,
    ) -> StorageResult<()> {
        let received = self.receiving.take().ok_or_else(|| snap_err("no snapshot is being received"))?;
        // The data is normally in the file `begin_receiving_snapshot` handed out; a caller may
        // instead hand back another open snapshot file (openraft's test suite does), whose
        // content is then copied in.
        if !same_file(&snapshot, &received).await.map_err(snap_err)? {
            use tokio::io::AsyncSeekExt;
            snapshot.seek(io::SeekFrom::Start(0)).await.map_err(snap_err)?;
            let mut target = File::create(&received).await.map_err(snap_err)?;
            tokio::io::copy(&mut *snapshot, &mut target).await.map_err(snap_err)?;
            *snapshot = target;
        }
        snapshot.sync_all().await.map_err(snap_err)?;
        drop(snapshot);
        let id = meta.snapshot_id.clone();
        let data = self.snapshots().join(format!("{id}.sqlite"));
        tokio::fs::rename(&received, &data).await.map_err(snap_err)?;
        write_atomically(&self.snapshots().join(format!("{id}.json")), &serde_json::to_string(meta).map_err(snap_err)?)
            .map_err(snap_err)?;
        self.keep_only(&id).map_err(snap_err)?;
        self.meta = None;
        self.shared.replace_with(&data, &id).await.map_err(snap_err)?;
        tracing::info!(snapshot = %id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        current_snapshot(&self.snapshots()).await
    }
}

async fn current_snapshot(dir: &Path) -> StorageResult<Option<Snapshot<TypeConfig>>> {
    let mut found = None;
    for entry in std::fs::read_dir(dir).map_err(sm_read)? {
        let path = entry.map_err(sm_read)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            found = Some(path);
        }
    }
    let Some(meta_path) = found else { return Ok(None) };
    let meta: SnapshotMeta<u64, BasicNode> =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).map_err(sm_read)?).map_err(sm_read)?;
    let file = File::open(meta_path.with_extension("sqlite")).await.map_err(sm_read)?;
    Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

pub struct SnapshotBuilder {
    shared: Arc<SharedStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    #[tracing::instrument(level = "info", name = "raft.snapshot.build", skip_all)]
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let dir = self.shared.dir.join("snapshots");
        let building = dir.join(format!("building-{}.part", unique()));
        let text = self.shared.store().snapshot_into(&building, META_KEY).await.map_err(snap_err)?;
        let raft: RaftMeta = match text {
            Some(t) => serde_json::from_str(&t).map_err(snap_err)?,
            None => RaftMeta::default(),
        };
        let index = raft.last_applied.map(|l| l.index).unwrap_or(0);
        let id = format!("{index:020}-{}", unique());
        let meta =
            SnapshotMeta { last_log_id: raft.last_applied, last_membership: raft.membership, snapshot_id: id.clone() };
        tokio::fs::rename(&building, dir.join(format!("{id}.sqlite"))).await.map_err(snap_err)?;
        write_atomically(&dir.join(format!("{id}.json")), &serde_json::to_string(&meta).map_err(snap_err)?)
            .map_err(snap_err)?;
        for entry in std::fs::read_dir(&dir).map_err(snap_err)? {
            let path = entry.map_err(snap_err)?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            if stem != id && !stem.starts_with("receiving-") && !stem.starts_with("building-") {
                let _ = std::fs::remove_file(&path);
            }
        }
        let file = File::open(dir.join(format!("{id}.sqlite"))).await.map_err(snap_err)?;
        tracing::info!(snapshot = %id, "built snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}
