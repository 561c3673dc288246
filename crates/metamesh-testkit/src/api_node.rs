//! One node serving the client API: replica 1 of shard group [`SHARD`], leader of its own
//! group, its `metamesh.v1` services on 127.0.0.1 over real mutual TLS with certificates from
//! a fresh mesh CA. The fixture of the node-API and `meshctl` tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metamesh_node::{services, NodeApi};
use metamesh_raft::network::LocalRouter;
use metamesh_raft::{Replica, ReplicaOptions};
use metamesh_store::StoreOptions;
use metamesh_tls::{connect, incoming, Credentials, MeshCa, PeerPolicy, Role, CLIENT_API_ALPN};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The trust domain of the fixture's CA.
pub const DOMAIN: &str = "test.mesh";
/// The shard group the node belongs to.
pub const SHARD: &str = "s1";

pub struct ApiNode {
    pub addr: SocketAddr,
    pub ca: MeshCa,
    pub replica: Arc<Replica>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    _dir: TempDir,
}

impl ApiNode {
    pub async fn start() -> ApiNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = ReplicaOptions {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            store: StoreOptions { synchronous_full: false, readers: 4 },
            ..Default::default()
        };
        let router = LocalRouter::new();
        let replica = Replica::start(1, dir.path(), &options, router.network(1)).await.expect("start replica");
        router.register(1, replica.raft.clone());
        replica.bootstrap(&[(1, "127.0.0.1:7001".to_owned())]).await.expect("bootstrap");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica.status().is_leader {
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let replica = Arc::new(replica);

        let ca = MeshCa::generate(DOMAIN).expect("ca");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = creds(&ca, Role::Node, "n1").server_config(CLIENT_API_ALPN).expect("server config");
        let api = Arc::new(NodeApi::new(replica.clone(), 1, SHARD));
        let server =
            tokio::spawn(tonic::transport::Server::builder().add_routes(services(api)).serve_with_incoming(incoming(
                listener,
                tls,
                PeerPolicy::AnyMeshMember,
            )));
        ApiNode { addr, ca, replica, server, _dir: dir }
    }

    /// A channel authenticated as `role`/`name`.
    pub async fn channel(&self, role: Role, name: &str) -> Channel {
        let config = creds(&self.ca, role, name).client_config().expect("client config");
        connect(self.addr, config, "localhost").await.expect("connect")
    }

    /// The channel of client `alice`, the default caller of the tests.
    pub async fn alice(&self) -> Channel {
        self.channel(Role::Client, "alice").await
    }

    /// The principal a certificate of `role`/`name` carries.
    pub fn principal(&self, role: Role, name: &str) -> String {
        self.ca.spiffe_id(role, name)
    }
}

impl Drop for ApiNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Credentials of `role`/`name` issued by `ca`, valid for an hour.
pub fn creds(ca: &MeshCa, role: Role, name: &str) -> Credentials {
    let issued = ca.issue(role, name, Duration::from_secs(3600)).expect("issue");
    Credentials::from_pem(ca.cert_pem(), &issued.cert_pem, &issued.key_pem).expect("credentials")
}
