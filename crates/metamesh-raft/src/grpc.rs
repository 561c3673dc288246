//! The Raft transport between replicas over gRPC with mutual TLS.
//!
//! The server side ([`RaftGrpc`]) is served on the replica's Raft listener, which admits only
//! node certificates of the same mesh (`metamesh_tls::PeerPolicy::NodesOnly`). Payloads are
//! openraft's serde encoding (JSON); responses carry the `Result`, so a remote Raft error
//! arrives as itself and a transport failure as `Unreachable`.
//!
//! Besides Raft's own RPCs, a follower uses this channel to hand a client's proposal to the
//! leader (`Forward`) and to ask it for a read index (`ReadIndex`): clients may talk to any
//! replica.
//!
//! Every RPC has a span on both sides (`raft.append_entries` with the entry count, `raft.vote`
//! at debug level, since heartbeats come many times a second; `raft.install_snapshot` with the
//! chunk's offset and size, `raft.forward` and `raft.read_index` at info). A
//! [`MetadataHook`] lets the binary add the caller's trace context to outgoing requests
//! without this crate knowing OpenTelemetry.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metamesh_core::Proposal;
use metamesh_proto::raft::v1::raft_service_client::RaftServiceClient;
use metamesh_proto::raft::v1::raft_service_server::{RaftService, RaftServiceServer};
use metamesh_proto::raft::v1::RaftPayload;
use openraft::error::{
    CheckIsLeaderError, ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, LogId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::forward::{BoxFuture, Forwarder};
use crate::{ApplyReply, Raft, ReadError, TypeConfig, WriteError};

/// How long a follower waits for the leader it forwards to.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

fn encode<T: Serialize>(value: &T) -> Result<RaftPayload, Status> {
    serde_json::to_vec(value).map(|json| RaftPayload { json }).map_err(|e| Status::internal(e.to_string()))
}

fn decode<T: DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    serde_json::from_slice(&payload.json).map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

/// What `ReadIndex` answers: the leader's read log id, or why it is not the leader.
type ReadIndexResult = Result<Option<LogId<u64>>, RaftError<u64, CheckIsLeaderError<u64, BasicNode>>>;

/// How much work one AppendEntries carries at most, in commands: a 1,000-entity batch counts
/// 1,000, a command carrying a payload (OpenLineage events, an MLMD request) one per KiB of
/// it, any other entry 1. At least one entry is always sent. (Counted rather than measured:
/// serializing entries once more to weigh them would eat into the heartbeat-long timeout.)
const APPEND_BUDGET_COMMANDS: usize = 1_024;

/// The weight of an entry against [`APPEND_BUDGET_COMMANDS`].
fn weight(entry: &openraft::Entry<TypeConfig>) -> usize {
    use metamesh_core::Command;
    match &entry.payload {
        openraft::EntryPayload::Normal(p) => match &p.command {
            Command::Batch { commands } => commands.len().max(1),
            Command::OpenLineage { events, .. } => (events.iter().map(String::len).sum::<usize>() / 1024).max(1),
            Command::Mlmd { request, .. } => (request.len() / 1024).max(1),
            _ => 1,
        },
        _ => 1,
    }
}

/// Keeps the longest prefix of `entries` within `budget` (at least one entry). Returns the log
/// id of the last entry kept if any were cut.
fn cut_to_budget(entries: &mut Vec<openraft::Entry<TypeConfig>>, budget: usize) -> Option<LogId<u64>> {
    let mut used = 0;
    let mut keep = entries.len();
    for (i, e) in entries.iter().enumerate() {
        used += weight(e);
        if used > budget && i > 0 {
            keep = i;
            break;
        }
    }
    if keep == entries.len() {
        return None;
    }
    entries.truncate(keep);
    entries.last().map(|e| e.log_id)
}

/// Serves a replica's Raft RPCs.
pub struct RaftGrpc {
    raft: Raft,
}

impl RaftGrpc {
    pub fn server(raft: Raft) -> RaftServiceServer<RaftGrpc> {
        RaftServiceServer::new(RaftGrpc { raft }).max_decoding_message_size(64 * 1024 * 1024)
    }
}

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    #[tracing::instrument(level = "debug", name = "raft.append_entries", skip_all, fields(entries))]
    async fn append_entries(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req.get_ref())?;
        tracing::Span::current().record("entries", rpc.entries.len());
        Ok(Response::new(encode(&crate::replica::serve_append_entries(&self.raft, rpc).await)?))
    }

    #[tracing::instrument(level = "debug", name = "raft.vote", skip_all)]
    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: VoteRequest<u64> = decode(req.get_ref())?;
        Ok(Response::new(encode(&self.raft.vote(rpc).await)?))
    }

    #[tracing::instrument(level = "info", name = "raft.install_snapshot", skip_all, fields(offset, bytes, done))]
    async fn install_snapshot(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(req.get_ref())?;
        let span = tracing::Span::current();
        span.record("offset", rpc.offset).record("bytes", rpc.data.len()).record("done", rpc.done);
        Ok(Response::new(encode(&self.raft.install_snapshot(rpc).await)?))
    }

    #[tracing::instrument(level = "info", name = "raft.forward", skip_all)]
    async fn forward(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let proposal: Proposal = decode(req.get_ref())?;
        let result: Result<ApplyReply, RaftError<u64, ClientWriteError<u64, BasicNode>>> =
            self.raft.client_write(proposal).await.map(|r| r.data);
        Ok(Response::new(encode(&result)?))
    }

    #[tracing::instrument(level = "info", name = "raft.read_index", skip_all)]
    async fn read_index(&self, _req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let result = self.raft.ensure_linearizable().await;
        Ok(Response::new(encode(&result)?))
    }
}

/// Links cut on purpose, for partition tests over the real transport: an RPC from `a` to `b`
/// fails as unreachable while `(a, b)` is in the set. Shared by the replicas of a test group.
#[derive(Clone, Default)]
pub struct Faults {
    cut: Arc<Mutex<std::collections::HashSet<(u64, u64)>>>,
}

impl Faults {
    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut cut = self.cut.lock().expect("faults poisoned");
        for &x in a {
            for &y in b {
                cut.insert((x, y));
                cut.insert((y, x));
            }
        }
    }

    pub fn heal(&self) {
        self.cut.lock().expect("faults poisoned").clear();
    }

    fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut.lock().expect("faults poisoned").contains(&(from, to))
    }
}

/// Writes into the metadata of every outgoing request (the binary puts the current trace
/// context there).
pub type MetadataHook = Arc<dyn Fn(&mut tonic::metadata::MetadataMap) + Send + Sync>;

/// Connects a replica to its peers.
#[derive(Clone)]
pub struct GrpcNetwork {
    tls: Arc<rustls::ClientConfig>,
    /// One lazily connected channel per peer address, shared by all RPC kinds.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// This replica's id and injected faults (tests only).
    faults: Option<(u64, Faults)>,
    /// Called on every outgoing request's metadata.
    hook: Option<MetadataHook>,
}

impl GrpcNetwork {
    /// `tls` is the replica's node identity (client certificate) and the mesh roots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> GrpcNetwork {
        GrpcNetwork { tls, channels: Arc::new(Mutex::new(HashMap::new())), faults: None, hook: None }
    }

    /// Calls `hook` on the metadata of every request this network sends.
    pub fn with_metadata_hook(mut self, hook: MetadataHook) -> GrpcNetwork {
        self.hook = Some(hook);
        self
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(hook) = &self.hook {
            hook(request.metadata_mut());
        }
        request
    }

    /// Subjects replica `me`'s outgoing RPCs to `faults`.
    pub fn with_faults(mut self, me: u64, faults: Faults) -> GrpcNetwork {
        self.faults = Some((me, faults));
        self
    }

    fn check(&self, to: u64) -> Result<(), Unreachable> {
        match &self.faults {
            Some((me, f)) if f.is_cut(*me, to) => {
                Err(Unreachable::new(&std::io::Error::other(format!("link {me} -> {to} is cut"))))
            }
            _ => Ok(()),
        }
    }

    fn client(&self, addr: &str) -> Result<RaftServiceClient<Channel>, Unreachable> {
        let unreachable = |e: String| Unreachable::new(&std::io::Error::other(e));
        let mut channels = self.channels.lock().expect("channels poisoned");
        if let Some(ch) = channels.get(addr) {
            return Ok(RaftServiceClient::new(ch.clone()).max_decoding_message_size(64 * 1024 * 1024));
        }
        let socket: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("resolving {addr}: {e}")))?
            .next()
            .ok_or_else(|| unreachable(format!("{addr} resolves to nothing")))?;
        let host = addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or(addr);
        let connector = metamesh_tls::MeshConnector::new(socket, self.tls.clone(), host)
            .map_err(|e| unreachable(format!("{addr}: {e}")))?;
        let channel = Endpoint::from_shared(format!("http://{socket}"))
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_with_connector_lazy(connector);
        channels.insert(addr.to_owned(), channel.clone());
        Ok(RaftServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GrpcConnection {
        GrpcConnection { network: self.clone(), target, addr: node.addr.clone(), probing: true }
    }
}

pub struct GrpcConnection {
    network: GrpcNetwork,
    target: u64,
    addr: String,
    /// Whether a request that must be cut is first sent as an empty probe of its last entry
    /// (see `append_entries`); cleared once the follower is found to lack entries.
    probing: bool,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl GrpcConnection {
    async fn call<Req, Resp, E>(&self, rpc: &Req, ttl: Duration, kind: RpcKind) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        self.network.check(self.target).map_err(RPCError::Unreachable)?;
        let mut client = self.network.client(&self.addr).map_err(RPCError::Unreachable)?;
        let payload = serde_json::to_vec(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = self.network.request(RaftPayload { json: payload });
        let call = async {
            match kind {
                RpcKind::Append => client.append_entries(request).await,
                RpcKind::Vote => client.vote(request).await,
                RpcKind::Snapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Err(_) => return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other("rpc timed out")))),
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        // A link cut while the call was in flight loses the reply too.
        self.network.check(self.target).map_err(RPCError::Unreachable)?;
        let result: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Clone, Copy)]
enum RpcKind {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for GrpcConnection {
    #[tracing::instrument(
        level = "debug",
        name = "raft.append_entries",
        skip_all,
        fields(target = self.target, entries = rpc.entries.len())
    )]
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        // openraft 0.9 gives an AppendEntries one heartbeat interval to complete, however many
        // entries it carries. Entries range from one small put to a 1,000-entity batch, so the
        // request is cut by its commands here rather than by entries (`max_payload_entries` only bounds
        // it): a prefix is sent and a success reported as partial, and Raft sends the rest next.
        //
        // A new leader does not know how much of its log a follower holds: it resends what the
        // follower may already have, and cut to one large entry per request, catching up a
        // follower that holds every entry took one round trip per 1,000-entity batch (W7 in
        // docs/benchmarks.md: 0.7 s after an election). So a request that would be cut is first
        // sent without entries, asking whether the follower holds its last entry: if it does,
        // the whole request is done (Raft's log matching: the follower holds the same prefix);
        // if not, the prefix is sent as before, and this connection stops probing, since the
        // follower is really behind.
        let last = rpc.entries.last().map(|e| e.log_id);
        let sent = cut_to_budget(&mut rpc.entries, APPEND_BUDGET_COMMANDS);
        if self.probing && sent.is_some() {
            let probe: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
                vote: rpc.vote,
                prev_log_id: last,
                leader_commit: rpc.leader_commit,
                entries: Vec::new(),
            };
            match self.call(&probe, option.hard_ttl(), RpcKind::Append).await? {
                AppendEntriesResponse::Success => return Ok(AppendEntriesResponse::Success),
                AppendEntriesResponse::Conflict => self.probing = false,
                other => return Ok(other),
            }
        }
        let reply: AppendEntriesResponse<u64> = self.call(&rpc, option.hard_ttl(), RpcKind::Append).await?;
        Ok(match (reply, sent) {
            (AppendEntriesResponse::Success, Some(last)) => AppendEntriesResponse::PartialSuccess(Some(last)),
            (reply, _) => reply,
        })
    }

    #[tracing::instrument(
        level = "info",
        name = "raft.install_snapshot",
        skip_all,
        fields(target = self.target, offset = rpc.offset, bytes = rpc.data.len(), done = rpc.done)
    )]
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.call(&rpc, option.hard_ttl(), RpcKind::Snapshot).await
    }

    #[tracing::instrument(level = "debug", name = "raft.vote", skip_all, fields(target = self.target))]
    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        self.call(&rpc, option.hard_ttl(), RpcKind::Vote).await
    }
}

impl Forwarder for GrpcNetwork {
    fn forward(&self, leader: u64, addr: String, proposal: Proposal) -> BoxFuture<Result<ApplyReply, WriteError>> {
        let network = self.clone();
        let call = async move {
            network.check(leader).map_err(|e| WriteError::Raft(e.to_string()))?;
            let mut client = network.client(&addr).map_err(|e| WriteError::Raft(e.to_string()))?;
            let payload = encode(&proposal).map_err(|e| WriteError::Raft(e.to_string()))?;
            let mut request = network.request(payload);
            request.set_timeout(FORWARD_TIMEOUT);
            let reply = tokio::time::timeout(FORWARD_TIMEOUT, client.forward(request))
                .await
                .map_err(|_| WriteError::Raft(format!("forwarding to {addr} timed out")))?
                .map_err(|s| WriteError::Raft(format!("forwarding: {s}")))?;
            let result: Result<ApplyReply, RaftError<u64, ClientWriteError<u64, BasicNode>>> =
                decode(reply.get_ref()).map_err(|e| WriteError::Raft(e.to_string()))?;
            result.map_err(crate::replica::write_error)
        };
        Box::pin(call.instrument(tracing::info_span!("raft.forward", leader)))
    }

    fn read_index(&self, leader: u64, addr: String) -> BoxFuture<Result<u64, ReadError>> {
        let network = self.clone();
        let call = async move {
            network.check(leader).map_err(|e| ReadError::Raft(e.to_string()))?;
            let mut client = network.client(&addr).map_err(|e| ReadError::Raft(e.to_string()))?;
            let payload = network.request(encode(&()).map_err(|e| ReadError::Raft(e.to_string()))?);
            let reply = tokio::time::timeout(FORWARD_TIMEOUT, client.read_index(payload))
                .await
                .map_err(|_| ReadError::Raft(format!("read index from {addr} timed out")))?
                .map_err(|s| ReadError::Raft(format!("read index: {s}")))?;
            let result: ReadIndexResult = decode(reply.get_ref()).map_err(|e| ReadError::Raft(e.to_string()))?;
            result.map(|l| l.map(|l| l.index).unwrap_or(0)).map_err(crate::replica::read_error)
        };
        Box::pin(call.instrument(tracing::info_span!("raft.read_index", leader)))
    }
}

#[cfg(test)]
mod tests {
    use metamesh_core::{Command, TenantId};
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    use super::*;

    fn entry(index: u64, commands: usize) -> Entry<TypeConfig> {
        let one = || Command::CreateTenant { tenant: TenantId::new("t").unwrap() };
        let command =
            if commands == 1 { one() } else { Command::Batch { commands: (0..commands).map(|_| one()).collect() } };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(Proposal::new(command, 0, "p")),
        }
    }

    #[test]
    fn append_requests_are_cut_by_the_commands_they_carry() {
        let mut small: Vec<_> = (1..=64).map(|i| entry(i, 1)).collect();
        assert_eq!(cut_to_budget(&mut small, APPEND_BUDGET_COMMANDS), None, "64 small entries travel together");
        assert_eq!(small.len(), 64);

        let mut big = vec![entry(1, 1000), entry(2, 1000), entry(3, 1)];
        let cut = cut_to_budget(&mut big, APPEND_BUDGET_COMMANDS);
        assert_eq!(cut.map(|l| l.index), Some(1), "a second big batch waits for the next request");
        assert_eq!(big.len(), 1);

        let mut huge = vec![entry(7, 5000), entry(8, 1)];
        assert_eq!(cut_to_budget(&mut huge, APPEND_BUDGET_COMMANDS).map(|l| l.index), Some(7), "one entry always goes");
        assert_eq!(huge.len(), 1);
    }
}
