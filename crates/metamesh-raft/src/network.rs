//! An in-process transport with fault injection, for multi-replica tests in one process.
//!
//! Every RPC goes through [`LocalRouter`], which delivers it to the target replica's `Raft`
//! handle unless the target is down or the link between the two is cut. Real deployments use
//! the gRPC transport; this one exists so that partitions and crashes can be scripted
//! exactly (`partition`, `isolate`, `heal`, `remove`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use tracing::Instrument;

use metamesh_core::Proposal;

use crate::forward::{BoxFuture, Forwarder};
use crate::{ApplyReply, Raft, ReadError, TypeConfig, WriteError};

#[derive(Default)]
struct Inner {
    nodes: HashMap<u64, Raft>,
    /// Cut links, both directions stored.
    cut: HashSet<(u64, u64)>,
}

/// Delivers RPCs between the replicas registered with it.
#[derive(Clone, Default)]
pub struct LocalRouter {
    inner: Arc<Mutex<Inner>>,
}

impl LocalRouter {
    pub fn new() -> LocalRouter {
        LocalRouter::default()
    }

    /// Makes `raft` reachable as node `id`.
    pub fn register(&self, id: u64, raft: Raft) {
        self.inner.lock().expect("router poisoned").nodes.insert(id, raft);
    }

    /// Makes node `id` unreachable (as if its process died).
    pub fn remove(&self, id: u64) {
        self.inner.lock().expect("router poisoned").nodes.remove(&id);
    }

    /// Cuts every link between a node of `a` and a node of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut inner = self.inner.lock().expect("router poisoned");
        for &x in a {
            for &y in b {
                inner.cut.insert((x, y));
                inner.cut.insert((y, x));
            }
        }
    }

    /// Cuts `id` off from every node known now.
    pub fn isolate(&self, id: u64) {
        let others: Vec<u64> = self.inner.lock().expect("router poisoned").nodes.keys().copied().collect();
        self.partition(&[id], &others);
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.inner.lock().expect("router poisoned").cut.clear();
    }

    fn reach(&self, from: u64, to: u64) -> Result<Raft, Unreachable> {
        let inner = self.inner.lock().expect("router poisoned");
        if inner.cut.contains(&(from, to)) {
            return Err(Unreachable::new(&std::io::Error::other(format!("link {from} -> {to} is cut"))));
        }
        inner
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&std::io::Error::other(format!("node {to} is down"))))
    }

    fn node(&self, id: u64) -> Option<Raft> {
        self.inner.lock().expect("router poisoned").nodes.get(&id).cloned()
    }

    /// The network factory of replica `id`.
    pub fn network(&self, id: u64) -> LocalNetwork {
        LocalNetwork { router: self.clone(), from: id }
    }
}

/// One replica's view of the router.
pub struct LocalNetwork {
    router: LocalRouter,
    from: u64,
}

impl RaftNetworkFactory<TypeConfig> for LocalNetwork {
    type Network = LocalConnection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> LocalConnection {
        LocalConnection { router: self.router.clone(), from: self.from, to: target }
    }
}

pub struct LocalConnection {
    router: LocalRouter,
    from: u64,
    to: u64,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl LocalConnection {
    fn target(&self) -> Result<Raft, Unreachable> {
        self.router.reach(self.from, self.to)
    }
}

// The same span names as the gRPC transport, so traces read alike over both.
impl RaftNetwork<TypeConfig> for LocalConnection {
    #[tracing::instrument(
        level = "debug",
        name = "raft.append_entries",
        skip_all,
        fields(target = self.to, entries = rpc.entries.len())
    )]
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let resp = crate::replica::serve_append_entries(&raft, rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        // A reply can be lost too: check the link again on the way back.
        self.target().map_err(|e| RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string()))))?;
        Ok(resp)
    }

    #[tracing::instrument(
        level = "info",
        name = "raft.install_snapshot",
        skip_all,
        fields(target = self.to, offset = rpc.offset, bytes = rpc.data.len(), done = rpc.done)
    )]
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }

    #[tracing::instrument(level = "debug", name = "raft.vote", skip_all, fields(target = self.to))]
    async fn vote(&mut self, rpc: VoteRequest<u64>, _option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))
    }
}

impl Forwarder for LocalRouter {
    fn forward(&self, leader: u64, _addr: String, proposal: Proposal) -> BoxFuture<Result<ApplyReply, WriteError>> {
        let router = self.clone();
        let call = async move {
            let raft = router.node(leader).ok_or_else(|| WriteError::Raft(format!("node {leader} is down")))?;
            raft.client_write(proposal).await.map(|r| r.data).map_err(crate::replica::write_error)
        };
        Box::pin(call.instrument(tracing::info_span!("raft.forward", leader)))
    }

    fn read_index(&self, leader: u64, _addr: String) -> BoxFuture<Result<u64, ReadError>> {
        let router = self.clone();
        let call = async move {
            let raft = router.node(leader).ok_or_else(|| ReadError::Raft(format!("node {leader} is down")))?;
            let log_id = raft.ensure_linearizable().await.map_err(crate::replica::read_error)?;
            Ok(log_id.map(|l| l.index).unwrap_or(0))
        };
        Box::pin(call.instrument(tracing::info_span!("raft.read_index", leader)))
    }
}
