//! How a follower reaches its leader on a client's behalf: handing over a write, or asking for
//! a read index so that it can serve a linearizable read itself. Clients may therefore talk to
//! any replica; only one extra hop is ever taken (a leader that lost its role answers
//! `NotLeader`, which goes back to the client).

use std::future::Future;
use std::pin::Pin;

use metamesh_core::Proposal;

use crate::{ApplyReply, ReadError, WriteError};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub trait Forwarder: Send + Sync + 'static {
    /// Proposes `proposal` at the leader `leader` (reachable at its Raft address `addr`).
    fn forward(&self, leader: u64, addr: String, proposal: Proposal) -> BoxFuture<Result<ApplyReply, WriteError>>;
    /// The leader's read index: the log index a linearizable read must have applied.
    fn read_index(&self, leader: u64, addr: String) -> BoxFuture<Result<u64, ReadError>>;
}
