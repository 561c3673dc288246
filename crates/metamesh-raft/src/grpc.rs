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
    async fn append_entries(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req.get_ref())?;
        Ok(Response::new(encode(&self.raft.append_entries(rpc).await)?))
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: VoteRequest<u64> = decode(req.get_ref())?;
        Ok(Response::new(encode(&self.raft.vote(rpc).await)?))
    }

    async fn install_snapshot(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(req.get_ref())?;
        Ok(Response::new(encode(&self.raft.install_snapshot(rpc).await)?))
    }

    async fn forward(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let proposal: Proposal = decode(req.get_ref())?;
        let result: Result<ApplyReply, RaftError<u64, ClientWriteError<u64, BasicNode>>> =
            self.raft.client_write(proposal).await.map(|r| r.data);
        Ok(Response::new(encode(&result)?))
    }

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

/// Connects a replica to its peers.
#[derive(Clone)]
pub struct GrpcNetwork {
    tls: Arc<rustls::ClientConfig>,
    /// One lazily connected channel per peer address, shared by all RPC kinds.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// This replica's id and injected faults (tests only).
    faults: Option<(u64, Faults)>,
}

impl GrpcNetwork {
    /// `tls` is the replica's node identity (client certificate) and the mesh roots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> GrpcNetwork {
        GrpcNetwork { tls, channels: Arc::new(Mutex::new(HashMap::new())), faults: None }
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
        GrpcConnection { network: self.clone(), target, addr: node.addr.clone() }
    }
}

pub struct GrpcConnection {
    network: GrpcNetwork,
    target: u64,
    addr: String,
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
        let request = Request::new(RaftPayload { json: payload });
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
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        self.call(&rpc, option.hard_ttl(), RpcKind::Append).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.call(&rpc, option.hard_ttl(), RpcKind::Snapshot).await
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        self.call(&rpc, option.hard_ttl(), RpcKind::Vote).await
    }
}

impl Forwarder for GrpcNetwork {
    fn forward(&self, leader: u64, addr: String, proposal: Proposal) -> BoxFuture<Result<ApplyReply, WriteError>> {
        let network = self.clone();
        Box::pin(async move {
            network.check(leader).map_err(|e| WriteError::Raft(e.to_string()))?;
            let mut client = network.client(&addr).map_err(|e| WriteError::Raft(e.to_string()))?;
            let payload = encode(&proposal).map_err(|e| WriteError::Raft(e.to_string()))?;
            let mut request = Request::new(payload);
            request.set_timeout(FORWARD_TIMEOUT);
            let reply = tokio::time::timeout(FORWARD_TIMEOUT, client.forward(request))
                .await
                .map_err(|_| WriteError::Raft(format!("forwarding to {addr} timed out")))?
                .map_err(|s| WriteError::Raft(format!("forwarding: {s}")))?;
            let result: Result<ApplyReply, RaftError<u64, ClientWriteError<u64, BasicNode>>> =
                decode(reply.get_ref()).map_err(|e| WriteError::Raft(e.to_string()))?;
            result.map_err(crate::replica::write_error)
        })
    }

    fn read_index(&self, leader: u64, addr: String) -> BoxFuture<Result<u64, ReadError>> {
        let network = self.clone();
        Box::pin(async move {
            network.check(leader).map_err(|e| ReadError::Raft(e.to_string()))?;
            let mut client = network.client(&addr).map_err(|e| ReadError::Raft(e.to_string()))?;
            let payload = encode(&()).map_err(|e| ReadError::Raft(e.to_string()))?;
            let reply = tokio::time::timeout(FORWARD_TIMEOUT, client.read_index(payload))
                .await
                .map_err(|_| ReadError::Raft(format!("read index from {addr} timed out")))?
                .map_err(|s| ReadError::Raft(format!("read index: {s}")))?;
            let result: ReadIndexResult = decode(reply.get_ref()).map_err(|e| ReadError::Raft(e.to_string()))?;
            result.map(|l| l.map(|l| l.index).unwrap_or(0)).map_err(crate::replica::read_error)
        })
    }
}
