//! One replica of a shard group: starting it, writing through Raft, reading its store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use metamesh_core::Proposal;
use metamesh_store::{Store, StoreOptions};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, RaftNetworkFactory, SnapshotPolicy};

use crate::forward::Forwarder;
use crate::log_store::LogStore;
use crate::state_machine::{SharedStore, StateMachine};
use crate::{ApplyReply, Raft, TypeConfig};

/// How a replica is run.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Log entries applied between two snapshots; the log before a snapshot is purged.
    pub snapshot_every: u64,
    /// Entries kept in the log after a snapshot, so a briefly lagging follower catches up from
    /// the log rather than by a whole snapshot.
    pub keep_after_snapshot: u64,
    /// Purge the log only when at least this many entries can go (purging is one transaction).
    pub purge_batch_size: u64,
    /// Entries per AppendEntries request. openraft 0.9 gives every AppendEntries the heartbeat
    /// interval as its timeout, so a request must be small enough to be sent, decoded and
    /// fsynced within one heartbeat even when its entries are 1,000-entity batches; otherwise a
    /// lagging follower retries the same oversized request forever.
    pub max_payload_entries: u64,
    pub store: StoreOptions,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
            purge_batch_size: 256,
            max_payload_entries: 4,
            store: StoreOptions::default(),
        }
    }
}

/// Why a write was not done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This replica is not the leader; retry at the leader (unknown during an election).
    #[error("not the leader; the leader is {}", leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()))]
    NotLeader { leader: Option<u64>, leader_addr: Option<String> },
    /// Raft failed or is shutting down.
    #[error("replication failed: {0}")]
    Raft(String),
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Sees every write acknowledged before the read began (read index through the leader).
    Linearizable,
    /// Any replica, once it has applied at least this revision (read-your-writes).
    MinRevision(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader; the leader is {}", leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()))]
    NotLeader { leader: Option<u64>, leader_addr: Option<String> },
    #[error("revision {wanted} not applied here within {waited_ms} ms (applied: {applied})")]
    NotCaughtUp { wanted: u64, applied: u64, waited_ms: u64 },
    #[error("replication failed: {0}")]
    Raft(String),
}

/// How long a write may wait for commit (or for the leader it was forwarded to).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A replica's view of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub id: u64,
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub term: u64,
    pub last_log_index: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

/// A running replica.
pub struct Replica {
    pub id: u64,
    pub raft: Raft,
    shared: Arc<SharedStore>,
    dir: PathBuf,
    /// How to reach the leader for clients of this replica; without one, a follower answers
    /// `NotLeader` and the client retries at the leader.
    forwarder: Option<Arc<dyn Forwarder>>,
}

impl Replica {
    /// Starts (or restarts, from what is on disk) replica `id` with its data in `dir`.
    pub async fn start<N>(id: u64, dir: &Path, options: &ReplicaOptions, network: N) -> std::io::Result<Replica>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        std::fs::create_dir_all(dir)?;
        let log = LogStore::open(&dir.join("raft-log.sqlite")).await.map_err(std::io::Error::other)?;
        let shared = Arc::new(SharedStore::open(dir, options.store.clone()).await?);
        let config = Config {
            cluster_name: "metamesh".into(),
            heartbeat_interval: options.heartbeat_ms,
            election_timeout_min: options.election_timeout_min_ms,
            election_timeout_max: options.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every),
            max_in_snapshot_log_to_keep: options.keep_after_snapshot,
            purge_batch_size: options.purge_batch_size,
            max_payload_entries: options.max_payload_entries,
            ..Default::default()
        }
        .validate()
        .map_err(std::io::Error::other)?;
        let raft = Raft::new(id, Arc::new(config), network, log, StateMachine::new(shared.clone()))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Replica { id, raft, shared, dir: dir.to_owned(), forwarder: None })
    }

    /// Lets this replica forward writes and read-index requests to the leader.
    pub fn with_forwarder(mut self, forwarder: Arc<dyn Forwarder>) -> Replica {
        self.forwarder = Some(forwarder);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes this replica the first member of a new group with these voters.
    pub async fn initialize(&self, members: BTreeMap<u64, BasicNode>) -> Result<(), WriteError> {
        self.raft.initialize(members).await.map_err(|e| WriteError::Raft(e.to_string()))
    }

    /// Initializes a new group with these voters (id, Raft address) unless this replica already
    /// belongs to one; returns whether it initialized. Safe to call on every start.
    pub async fn bootstrap(&self, voters: &[(u64, String)]) -> Result<bool, WriteError> {
        if self.raft.is_initialized().await.map_err(|e| WriteError::Raft(e.to_string()))? {
            return Ok(false);
        }
        let members = voters.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
        self.initialize(members).await.map(|_| true)
    }

    /// Who leads, as this replica knows it, and what it has applied: for status pages.
    pub fn status(&self) -> ReplicaStatus {
        let m = self.raft.metrics().borrow().clone();
        ReplicaStatus {
            id: m.id,
            leader: m.current_leader,
            is_leader: m.state == openraft::ServerState::Leader,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied: m.last_applied.map(|l| l.index).unwrap_or(0),
            voters: m.membership_config.membership().voter_ids().collect(),
            learners: m.membership_config.membership().learner_ids().collect(),
        }
    }

    /// Proposes a command; returns once it is committed and applied here (the leader).
    ///
    /// Gives up after [`WRITE_TIMEOUT`] (a leader cut off from its majority never commits); the
    /// write may still commit later, so clients retry with the same request id.
    pub async fn write(&self, proposal: Proposal) -> Result<ApplyReply, WriteError> {
        let attempt = async {
            match self.raft.client_write(proposal.clone()).await {
                Ok(resp) => Ok(resp.data),
                Err(e) => match (write_error(e), &self.forwarder) {
                    (WriteError::NotLeader { leader: Some(leader), leader_addr: Some(addr) }, Some(f)) => {
                        f.forward(leader, addr, proposal).await
                    }
                    (e, _) => Err(e),
                },
            }
        };
        tokio::time::timeout(WRITE_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| Err(WriteError::Raft(format!("not committed within {WRITE_TIMEOUT:?}"))))
    }

    /// The store, once it is fresh enough for `consistency`.
    pub async fn read(&self, consistency: ReadConsistency) -> Result<Arc<Store>, ReadError> {
        match consistency {
            ReadConsistency::Linearizable => match self.raft.ensure_linearizable().await.map_err(read_error) {
                Ok(_) => {}
                Err(ReadError::NotLeader { leader: Some(leader), leader_addr: Some(addr) })
                    if self.forwarder.is_some() =>
                {
                    // Read index from the leader, then wait until this replica has applied it.
                    let f = self.forwarder.as_ref().expect("checked");
                    let index = f.read_index(leader, addr).await?;
                    self.raft
                        .wait(Some(Duration::from_secs(5)))
                        .applied_index_at_least(Some(index), "read index")
                        .await
                        .map_err(|e| ReadError::Raft(e.to_string()))?;
                }
                Err(e) => return Err(e),
            },
            ReadConsistency::MinRevision(wanted) => {
                let wait = Duration::from_secs(2);
                if let Err(e) = self.raft.wait(Some(wait)).applied_index_at_least(Some(wanted), "min_revision").await {
                    let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0);
                    return Err(match e {
                        openraft::metrics::WaitError::Timeout(..) => {
                            ReadError::NotCaughtUp { wanted, applied, waited_ms: wait.as_millis() as u64 }
                        }
                        other => ReadError::Raft(other.to_string()),
                    });
                }
            }
        }
        Ok(self.shared.store())
    }

    /// The store as it is now, without any freshness guarantee (for tests and status pages).
    pub fn local_store(&self) -> Arc<Store> {
        self.shared.store()
    }

    /// Adds a non-voting member; with `blocking`, returns once it has caught up.
    pub async fn add_learner(&self, id: u64, addr: &str, blocking: bool) -> Result<(), WriteError> {
        self.raft.add_learner(id, BasicNode::new(addr), blocking).await.map(|_| ()).map_err(write_error)
    }

    /// Replaces the voters (learners not named stay learners).
    pub async fn change_voters(&self, voters: std::collections::BTreeSet<u64>) -> Result<(), WriteError> {
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// The last applied log index here.
    pub fn applied(&self) -> u64 {
        self.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// Stops Raft and closes the files, as a clean shutdown.
    pub async fn shutdown(self) {
        let _ = self.raft.shutdown().await;
    }
}

pub(crate) fn read_error(e: RaftError<u64, CheckIsLeaderError<u64, BasicNode>>) -> ReadError {
    match e.forward_to_leader() {
        Some(f) => {
            ReadError::NotLeader { leader: f.leader_id, leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()) }
        }
        None => ReadError::Raft(e.to_string()),
    }
}

pub(crate) fn write_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> WriteError {
    match e.forward_to_leader() {
        Some(f) => {
            WriteError::NotLeader { leader: f.leader_id, leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()) }
        }
        None => WriteError::Raft(e.to_string()),
    }
}
