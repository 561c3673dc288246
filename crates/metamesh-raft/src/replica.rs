//! One replica of a shard group: starting it, writing through Raft, reading its store at a
//! chosen freshness, changing the group's membership.
//!
//! Bounded-staleness reads need to know how old this replica's state may be, which openraft's
//! metrics say only for a leader (`millis_since_quorum_ack`). A follower's side is recorded
//! here: the transports' servers hand every AppendEntries to [`serve_append_entries`], which
//! notes when a successful one arrived and the leader's commit index it carried ([`Freshness`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metamesh_core::Proposal;
use metamesh_store::{Store, StoreOptions};
use openraft::error::{ChangeMembershipError, CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{BasicNode, ChangeMembers, Config, LogId, RaftMetrics, RaftNetworkFactory, SnapshotPolicy, Vote};
use tokio::sync::watch;

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
    /// Most entries per AppendEntries request. openraft 0.9 gives every AppendEntries the
    /// heartbeat interval as its timeout, so a request must be sent, decoded and fsynced within
    /// one heartbeat even when its entries are 1,000-entity batches (otherwise a lagging follower
    /// retries the same oversized request forever): the gRPC transport also cuts requests by
    /// the commands they carry (see `grpc::APPEND_BUDGET_COMMANDS`); this count bounds the
    /// many-small-entries case.
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
            max_payload_entries: 64,
            // The log is fsynced before anything is acknowledged; the state is re-applied from
            // it after a power failure (snapshots checkpoint the state before the log is purged).
            store: StoreOptions { synchronous_full: false, ..StoreOptions::default() },
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
    /// Any replica whose state is at most this old: it sees every write acknowledged more than
    /// this long before the read. The leader qualifies while a quorum acknowledged it within
    /// the bound; a follower or learner while it heard from the current leader within the
    /// bound (a successful AppendEntries or heartbeat) and has applied everything that leader
    /// had committed then. A replica that does not qualify waits up to two heartbeats for
    /// fresh contact, then refuses with [`ReadError::TooStale`]. Both bounds at once: ask for
    /// [`ReadConsistency::MinRevision`], then for this.
    MaxStaleness(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader; the leader is {}", leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()))]
    NotLeader { leader: Option<u64>, leader_addr: Option<String> },
    #[error("revision {wanted} not applied here within {waited_ms} ms (applied: {applied})")]
    NotCaughtUp { wanted: u64, applied: u64, waited_ms: u64 },
    /// This replica's state may be older than a [`ReadConsistency::MaxStaleness`] bound; the
    /// leader (when known) is named so that a client can retry there.
    #[error("replica {replica} cannot serve a read bounded to {bound_ms} ms of staleness: {stale}")]
    TooStale { replica: u64, bound_ms: u64, stale: Stale, leader: Option<u64>, leader_addr: Option<String> },
    #[error("replication failed: {0}")]
    Raft(String),
}

/// Why a replica's state is not known to be fresh enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// No leader is known: an election is under way, or this replica is cut off.
    NoLeader,
    /// A leader is known but not confirmed current: a follower has had no successful
    /// AppendEntries from it in this term that carried a commit of the term (it may be
    /// catching up, or the leader has just been elected); a leader has not yet been
    /// acknowledged by a quorum, or not yet applied an entry of its own term.
    Unconfirmed { leader: u64 },
    /// In contact with the leader, but what it had committed is not all applied here yet.
    Behind { applied: u64, committed: u64 },
    /// Last confirmed current this long ago: a follower's last contact with the leader, a
    /// leader's last acknowledgement by a quorum.
    Old { ms: u64 },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::NoLeader => write!(f, "no leader is known (election in progress or cut off)"),
            Stale::Unconfirmed { leader } => write!(f, "not yet confirmed current by leader {leader} in this term"),
            Stale::Behind { applied, committed } => {
                write!(f, "applied up to {applied}, behind the {committed} the leader had committed")
            }
            Stale::Old { ms } => write!(f, "last confirmed current {ms} ms ago"),
        }
    }
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// This replica is not the leader; membership changes are made there.
    #[error("not the leader; the leader is {}", leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()))]
    NotLeader { leader: Option<u64>, leader_addr: Option<String> },
    /// Removing a learner that is a voter: demote it with a voter change first.
    #[error("node {0} is a voter, not a learner; remove it from the voters first")]
    IsVoter(u64),
    /// Removing a node that is not in the group.
    #[error("node {0} is not a member of the group")]
    NotMember(u64),
    /// A new voter must be a voter or a learner already.
    #[error("node {0} is neither a voter nor a learner; add it as a learner first")]
    NotLearner(u64),
    /// Another membership change has not finished; retry.
    #[error("another membership change is in progress; retry")]
    InProgress,
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
    /// When this replica was last confirmed current, for bounded-staleness reads.
    freshness: Arc<Freshness>,
    /// Copies the leader's quorum acknowledgements from the Raft metrics into `freshness`;
    /// stopped when the replica is dropped.
    lease_watch: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.lease_watch.abort();
    }
}

/// When a replica was last confirmed current, by the leader's messages (on a follower or
/// learner) or by a quorum's acknowledgements (on the leader). Receivers wait on it for fresh
/// contact.
pub struct Freshness {
    state: watch::Sender<Contact>,
}

/// What [`Freshness`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Contact {
    /// The last successful AppendEntries (or heartbeat) that carried a commit of its leader's
    /// term. Before the leader commits an entry of its own term, its commit index may miss
    /// entries a previous leader acknowledged, so such messages do not count.
    from_leader: Option<LeaderContact>,
    /// On the leader: the term and the time of the last acknowledgement by a quorum.
    quorum_acked: Option<(u64, Instant)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LeaderContact {
    /// When the message arrived; the leader sent it (and read its commit index) slightly
    /// earlier, by the one-way network delay.
    at: Instant,
    term: u64,
    leader: u64,
    /// The leader's commit index in the message.
    commit: u64,
}

impl Freshness {
    fn new() -> Freshness {
        Freshness { state: watch::Sender::new(Contact::default()) }
    }

    fn record_append(&self, at: Instant, vote: &Vote<u64>, leader_commit: Option<&LogId<u64>>) {
        let (term, Some(leader)) = (vote.leader_id().get_term(), vote.leader_id().voted_for()) else { return };
        let Some(commit) = leader_commit.filter(|c| vote.is_committed() && c.leader_id.term == term) else { return };
        let contact = LeaderContact { at, term, leader, commit: commit.index };
        self.state.send_if_modified(|c| match c.from_leader {
            // Replies may be handled out of order; never move contact back in time.
            Some(prev) if prev.term == term && prev.at >= at => false,
            _ => {
                c.from_leader = Some(contact);
                true
            }
        });
    }

    fn record_quorum_ack(&self, acked: Option<(u64, Instant)>) {
        self.state.send_if_modified(|c| {
            let changed = c.quorum_acked != acked;
            c.quorum_acked = acked;
            changed
        });
    }
}

/// The [`Freshness`] of every replica started in this process, so that the transports'
/// servers, which are built from a bare `Raft` handle (`RaftGrpc::server(raft)`,
/// `LocalRouter::register(id, raft)`), can find the record of the replica they serve. Keyed by
/// the handle's `Config`, one `Arc` per started Raft; entries of dropped replicas are pruned.
static REGISTRY: Mutex<Vec<(Weak<Config>, Weak<Freshness>)>> = Mutex::new(Vec::new());

fn register_freshness(raft: &Raft, freshness: &Arc<Freshness>) {
    let mut registry = REGISTRY.lock().expect("freshness registry poisoned");
    registry.retain(|(config, f)| config.strong_count() > 0 && f.strong_count() > 0);
    registry.push((Arc::downgrade(raft.config()), Arc::downgrade(freshness)));
}

fn freshness_of(raft: &Raft) -> Option<Arc<Freshness>> {
    let registry = REGISTRY.lock().expect("freshness registry poisoned");
    let config = Arc::as_ptr(raft.config());
    registry.iter().find(|(c, _)| std::ptr::eq(c.as_ptr(), config)).and_then(|(_, f)| f.upgrade())
}

/// Hands an AppendEntries received from the leader to `raft`; on success, records the contact
/// for bounded-staleness reads. The server side of every transport calls this rather than
/// `Raft::append_entries`.
pub async fn serve_append_entries(
    raft: &Raft,
    rpc: AppendEntriesRequest<TypeConfig>,
) -> Result<AppendEntriesResponse<u64>, RaftError<u64>> {
    let arrived = Instant::now();
    let (vote, leader_commit) = (rpc.vote, rpc.leader_commit);
    let reply = raft.append_entries(rpc).await;
    if let Ok(AppendEntriesResponse::Success) = &reply {
        if let Some(f) = freshness_of(raft) {
            f.record_append(arrived, &vote, leader_commit.as_ref());
        }
    }
    reply
}

/// Whether the state described by `m` and `c` is at most `bound` old at `now`.
fn judge(m: &RaftMetrics<u64, BasicNode>, c: &Contact, now: Instant, bound: Duration) -> Result<(), Stale> {
    let Some(leader) = m.current_leader else { return Err(Stale::NoLeader) };
    let applied = m.last_applied.as_ref();
    let since = |at: Instant| {
        let age = now.saturating_duration_since(at);
        if age <= bound {
            Ok(())
        } else {
            Err(Stale::Old { ms: age.as_millis() as u64 })
        }
    };
    if leader == m.id {
        // Entries a previous leader acknowledged are all applied once an entry of this
        // leader's term is; what this leader acknowledged, it applied before answering.
        let own_term_applied = applied.is_some_and(|a| a.leader_id.term == m.current_term);
        return match c.quorum_acked {
            Some((term, at)) if term == m.current_term && own_term_applied && m.state.is_leader() => since(at),
            _ => Err(Stale::Unconfirmed { leader }),
        };
    }
    match c.from_leader {
        Some(l) if l.term == m.current_term && l.leader == leader => {
            since(l.at)?;
            let applied = applied.map(|a| a.index).unwrap_or(0);
            if applied < l.commit {
                return Err(Stale::Behind { applied, committed: l.commit });
            }
            Ok(())
        }
        _ => Err(Stale::Unconfirmed { leader }),
    }
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
        let freshness = Arc::new(Freshness::new());
        register_freshness(&raft, &freshness);
        let lease_watch = tokio::spawn(watch_quorum_acks(raft.metrics(), Arc::downgrade(&freshness)));
        Ok(Replica { id, raft, shared, dir: dir.to_owned(), forwarder: None, freshness, lease_watch })
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
            ReadConsistency::MaxStaleness(bound) => self.bounded_staleness(bound).await?,
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

    /// Waits (up to two heartbeats) until this replica's state is at most `bound` old.
    async fn bounded_staleness(&self, bound: Duration) -> Result<(), ReadError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(2 * self.raft.config().heartbeat_interval);
        let mut metrics = self.raft.metrics();
        let mut contact = self.freshness.state.subscribe();
        loop {
            let m = metrics.borrow_and_update().clone();
            let c = *contact.borrow_and_update();
            let stale = match judge(&m, &c, Instant::now(), bound) {
                Ok(()) => return Ok(()),
                Err(stale) => stale,
            };
            let changed = tokio::select! {
                r = metrics.changed() => r.is_ok(),
                r = contact.changed() => r.is_ok(),
                _ = tokio::time::sleep_until(deadline) => {
                    let leader_addr = m.current_leader.and_then(|l| {
                        m.membership_config.membership().get_node(&l).map(|n| n.addr.clone())
                    });
                    return Err(ReadError::TooStale {
                        replica: self.id,
                        bound_ms: bound.as_millis() as u64,
                        stale,
                        leader: m.current_leader,
                        leader_addr,
                    });
                }
            };
            if !changed {
                return Err(ReadError::Raft("raft stopped".into()));
            }
        }
    }

    /// The store as it is now, without any freshness guarantee (for tests and status pages).
    pub fn local_store(&self) -> Arc<Store> {
        self.shared.store()
    }

    /// Adds a non-voting member; with `blocking`, returns once it has caught up.
    pub async fn add_learner(&self, id: u64, addr: &str, blocking: bool) -> Result<(), WriteError> {
        self.raft.add_learner(id, BasicNode::new(addr), blocking).await.map(|_| ()).map_err(write_error)
    }

    /// Replaces the voters (learners not named stay learners; removed voters become learners).
    pub async fn change_voters(&self, voters: BTreeSet<u64>) -> Result<(), WriteError> {
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Replaces the voters; removed voters stay as learners with `retain`, else leave the
    /// group. Learners not named stay learners. Each new voter must be a voter or a learner.
    pub async fn change_membership(&self, voters: BTreeSet<u64>, retain: bool) -> Result<(), MembershipError> {
        let m = self.leader_metrics()?;
        let config = m.membership_config.membership();
        if let Some(&stranger) = voters.iter().find(|id| config.get_node(id).is_none()) {
            return Err(MembershipError::NotLearner(stranger));
        }
        self.commit_membership(ChangeMembers::ReplaceAllVoters(voters), retain).await
    }

    /// Removes a learner from the group: the leader stops replicating to it. Refused for a
    /// voter (demote it first) and for an id that is not a member.
    pub async fn remove_learner(&self, id: u64) -> Result<(), MembershipError> {
        let m = self.leader_metrics()?;
        let config = m.membership_config.membership();
        if config.voter_ids().any(|v| v == id) {
            return Err(MembershipError::IsVoter(id));
        }
        if !config.learner_ids().any(|l| l == id) {
            return Err(MembershipError::NotMember(id));
        }
        // openraft refuses to remove a voter as "learner not found": a concurrent promotion.
        self.commit_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false).await.map_err(|e| match e {
            MembershipError::NotLearner(n) => MembershipError::IsVoter(n),
            e => e,
        })
    }

    /// The metrics, if this replica is the leader (membership is checked against the
    /// leader's view, which is the one that changes).
    fn leader_metrics(&self) -> Result<RaftMetrics<u64, BasicNode>, MembershipError> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader == Some(self.id) && m.state.is_leader() {
            return Ok(m);
        }
        let leader_addr =
            m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
        Err(MembershipError::NotLeader { leader: m.current_leader, leader_addr })
    }

    async fn commit_membership(
        &self,
        change: ChangeMembers<u64, BasicNode>,
        retain: bool,
    ) -> Result<(), MembershipError> {
        let change = self.raft.change_membership(change, retain);
        match tokio::time::timeout(WRITE_TIMEOUT, change).await {
            Err(_) => Err(MembershipError::Raft(format!("not committed within {WRITE_TIMEOUT:?}"))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(membership_error(e)),
        }
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

/// Keeps `freshness` up to date with the leader's last quorum acknowledgement.
///
/// openraft reports it as an age (`millis_since_quorum_ack`) computed when the metrics were
/// sent; turning it into an instant as each report arrives lets a read compute the age at the
/// time of the read. One millisecond is added for the age's truncation. Ends when Raft stops or
/// the replica is dropped.
async fn watch_quorum_acks(mut metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>, freshness: Weak<Freshness>) {
    while metrics.changed().await.is_ok() {
        let acked = {
            let m = metrics.borrow_and_update();
            match (m.state.is_leader(), m.millis_since_quorum_ack) {
                (true, Some(ms)) => {
                    Instant::now().checked_sub(Duration::from_millis(ms + 1)).map(|at| (m.current_term, at))
                }
                _ => None,
            }
        };
        let Some(freshness) = freshness.upgrade() else { return };
        freshness.record_quorum_ack(acked);
    }
}

fn membership_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> MembershipError {
    if let Some(f) = e.forward_to_leader() {
        return MembershipError::NotLeader {
            leader: f.leader_id,
            leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
        };
    }
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(_))) => {
            MembershipError::InProgress
        }
        // Raised for a removed node that is a voter, and for a new voter that is no learner;
        // both were checked before proposing, so this is a concurrent change.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::LearnerNotFound(l))) => {
            MembershipError::NotLearner(l.node_id)
        }
        other => MembershipError::Raft(other.to_string()),
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

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, ServerState};

    use super::*;

    const BOUND: Duration = Duration::from_millis(200);

    fn log_id(term: u64, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, 0), index)
    }

    /// Replica `id` in term 3 following `leader`, having applied `applied` (an entry of term 3).
    fn metrics(id: u64, leader: Option<u64>, applied: u64) -> RaftMetrics<u64, BasicNode> {
        let mut m = RaftMetrics::new_initial(id);
        m.current_term = 3;
        m.current_leader = leader;
        m.state = if leader == Some(id) { ServerState::Leader } else { ServerState::Follower };
        m.last_applied = Some(log_id(3, applied));
        m
    }

    fn heard(f: &Freshness, at: Instant, term: u64, commit: Option<LogId<u64>>) {
        f.record_append(at, &Vote::new_committed(term, 1), commit.as_ref());
    }

    #[test]
    fn a_follower_is_fresh_while_it_hears_from_its_leader_and_has_applied_its_commit() {
        let now = Instant::now();
        let f = Freshness::new();
        let m = metrics(2, Some(1), 10);
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));

        heard(&f, now - Duration::from_millis(50), 3, Some(log_id(3, 10)));
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Ok(()));
        assert_eq!(judge(&m, &f.state.borrow(), now + BOUND, BOUND), Err(Stale::Old { ms: 250 }));
        let behind = metrics(2, Some(1), 9);
        assert_eq!(judge(&behind, &f.state.borrow(), now, BOUND), Err(Stale::Behind { applied: 9, committed: 10 }));
        // An older message handled late does not move the contact back.
        heard(&f, now - Duration::from_millis(500), 3, Some(log_id(3, 8)));
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Ok(()));
    }

    #[test]
    fn contact_counts_only_from_the_current_leader_with_a_commit_of_its_term() {
        let now = Instant::now();
        let m = metrics(2, Some(1), 10);
        // The new leader has not committed an entry of its term: its commit index may miss
        // entries the previous leader acknowledged.
        let f = Freshness::new();
        heard(&f, now, 3, Some(log_id(2, 10)));
        heard(&f, now, 3, None);
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));
        // Contact from an earlier term, or with another leader than the one followed now.
        heard(&f, now, 2, Some(log_id(2, 10)));
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));
        let other_leader = metrics(2, Some(3), 10);
        heard(&f, now, 3, Some(log_id(3, 10)));
        assert_eq!(judge(&other_leader, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 3 }));
        assert_eq!(judge(&metrics(2, None, 10), &f.state.borrow(), now, BOUND), Err(Stale::NoLeader));
    }

    #[test]
    fn a_leader_is_fresh_while_a_quorum_acknowledged_it_and_it_applied_its_own_term() {
        let now = Instant::now();
        let f = Freshness::new();
        let m = metrics(1, Some(1), 10);
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));
        f.record_quorum_ack(Some((3, now - Duration::from_millis(20))));
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Ok(()));
        assert_eq!(judge(&m, &f.state.borrow(), now + BOUND, BOUND), Err(Stale::Old { ms: 220 }));
        let mut new_leader = m.clone();
        new_leader.last_applied = Some(log_id(2, 9));
        assert_eq!(judge(&new_leader, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));
        f.record_quorum_ack(Some((2, now)));
        assert_eq!(judge(&m, &f.state.borrow(), now, BOUND), Err(Stale::Unconfirmed { leader: 1 }));
    }
}
