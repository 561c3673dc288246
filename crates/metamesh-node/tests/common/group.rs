//! A three-replica shard group (`metamesh_testkit::ShardGroup`: real gRPC and mutual TLS
//! between replicas, partitions) with the client API of chosen replicas served over mTLS too,
//! for the scenarios a single node cannot show: follower reads, forwarding, membership.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use metamesh_node::{services, AuthzLayer, NodeApi};
use metamesh_policy::Authorizer;
use metamesh_raft::ReplicaOptions;
use metamesh_testkit::ShardGroup;
use metamesh_tls::{connect, incoming, PeerPolicy, Role, CLIENT_API_ALPN};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::SHARD;

pub struct GroupApi {
    pub group: ShardGroup,
    /// The policy every served replica enforces: `alice` holds every right.
    authorizer: Authorizer,
    _policy: tempfile::TempDir,
    /// The API listener of each served replica.
    servers: BTreeMap<u64, (SocketAddr, JoinHandle<Result<(), tonic::transport::Error>>)>,
}

impl GroupApi {
    pub async fn start(n: u64, options: ReplicaOptions) -> GroupApi {
        let group = ShardGroup::start_with(n, options).await;
        let alice = group.ca().spiffe_id(Role::Client, "alice");
        let policy = metamesh_testkit::policy::policy_dir(&metamesh_testkit::policy::all_rights(&[alice]), &[]);
        let authorizer = Authorizer::load(policy.path()).expect("test policy");
        GroupApi { group, authorizer, _policy: policy, servers: BTreeMap::new() }
    }

    /// Serves the client API of replica `id` (once); returns its address.
    pub async fn serve(&mut self, id: u64) -> SocketAddr {
        if let Some((addr, _)) = self.servers.get(&id) {
            return *addr;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = self.group.credentials(Role::Node, &format!("api-{id}")).server_config(CLIENT_API_ALPN).expect("tls");
        let api = Arc::new(NodeApi::new(self.group.replica(id), id, SHARD));
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(AuthzLayer::new(self.authorizer.clone()))
                .add_routes(services(api))
                .serve_with_incoming(incoming(listener, tls, PeerPolicy::AnyMeshMember)),
        );
        self.servers.insert(id, (addr, server));
        addr
    }

    /// Client `alice`'s channel to replica `id`'s API (served on first use).
    pub async fn alice(&mut self, id: u64) -> Channel {
        let addr = self.serve(id).await;
        let config = self.group.credentials(Role::Client, "alice").client_config().expect("client tls");
        connect(addr, config, "localhost").await.expect("connect")
    }
}

impl Drop for GroupApi {
    fn drop(&mut self) {
        for (_, server) in self.servers.values() {
            server.abort();
        }
    }
}
