//! Replication of a shard group with `openraft` — the only crate that knows openraft.
//!
//! Pipeline of a write: a replica's [`Replica::write`] → `Raft::client_write` on the leader
//! (a follower answers [`WriteError::NotLeader`] with the leader's id and address) → the entry
//! is appended to the leader's [`LogStore`] (fsync) and replicated → once a majority has it,
//! every replica's [`StateMachine`] applies it to its store, in one SQLite transaction with the
//! Raft bookkeeping → the leader answers with the entry's index as the shard revision.
//!
//! Code map: [`log_store`] (the log in its own SQLite file), [`state_machine`] (the store as
//! state machine; snapshots as `VACUUM INTO` copies sent in chunks), [`network`] (the in-process
//! fault-injecting transport used by tests), [`grpc`] (the mTLS gRPC transport between replicas),
//! [`forward`] (followers reaching the leader for clients), [`replica`] (starting a replica,
//! writes, reads).

pub mod forward;
pub mod grpc;
pub mod log_store;
pub mod network;
pub mod replica;
pub mod state_machine;

use metamesh_core::{CommandError, Outcome, Proposal};
use serde::{Deserialize, Serialize};

pub use forward::Forwarder;
pub use grpc::{Faults, GrpcNetwork, RaftGrpc};
pub use log_store::LogStore;
pub use replica::{ReadConsistency, ReadError, Replica, ReplicaOptions, ReplicaStatus, WriteError};
pub use state_machine::{SharedStore, StateMachine};

openraft::declare_raft_types!(
    /// The Raft types of a shard group: log entries carry [`Proposal`]s, applying one yields an
    /// [`ApplyReply`]; snapshots are SQLite files.
    pub TypeConfig:
        D = Proposal,
        R = ApplyReply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A shard group's Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// What applying one log entry produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyReply {
    /// The entry's log index: the shard revision of the change.
    pub revision: u64,
    /// The command's result; `None` for entries without a command (leader no-ops, membership).
    pub applied: Option<AppliedCommand>,
}

/// The result of a command entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedCommand {
    pub at_ms: i64,
    pub result: Result<Outcome, CommandError>,
    pub duplicate_of: Option<u64>,
}

impl From<metamesh_store::Applied> for AppliedCommand {
    fn from(a: metamesh_store::Applied) -> Self {
        AppliedCommand { at_ms: a.at_ms, result: a.result, duplicate_of: a.duplicate_of }
    }
}
