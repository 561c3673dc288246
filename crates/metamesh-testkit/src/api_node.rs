//! One node serving the client API: replica 1 of shard group [`SHARD`], leader of its own
//! group, its `metamesh.v1` services on 127.0.0.1 over real mutual TLS with certificates from
//! a fresh mesh CA. The fixture of the node-API and `meshctl` tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metamesh_node::{services, AuditFeed, AuthzLayer, NodeApi};
use metamesh_policy::Authorizer;
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
    /// The policy the node enforces (its files can be changed and reloaded by a test).
    pub authorizer: Authorizer,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    _dir: TempDir,
}

/// The clients [`ApiNode::start`] grants every right: the tests' default callers and a router.
pub const TRUSTED: &[(Role, &str)] =
    &[(Role::Client, "alice"), (Role::Client, "bob"), (Role::Client, "carol"), (Role::Router, "r1")];

impl ApiNode {
    /// A node whose policy grants every right to [`TRUSTED`] callers, and nothing to others.
    pub async fn start() -> ApiNode {
        let ca = MeshCa::generate(DOMAIN).expect("ca");
        let principals: Vec<String> = TRUSTED.iter().map(|(role, name)| ca.spiffe_id(*role, name)).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        crate::policy::write_policy(&dir.path().join("policies"), &crate::policy::all_rights(&principals), &[]);
        ApiNode::start_with(ca, dir).await
    }

    /// A node enforcing the policy files in `<dir>/policies`, with certificates from `ca`; `dir`
    /// also holds the replica's data.
    pub async fn start_with(ca: MeshCa, dir: TempDir) -> ApiNode {
        let authorizer = Authorizer::load(&dir.path().join("policies")).expect("test policy loads");
        let options = ReplicaOptions {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            store: StoreOptions { synchronous_full: false, readers: 4 },
            ..Default::default()
        };
        let router = LocalRouter::new();
        let replica =
            Replica::start(1, &dir.path().join("data"), &options, router.network(1)).await.expect("start replica");
        router.register(1, replica.raft.clone());
        replica.bootstrap(&[(1, "127.0.0.1:7001".to_owned())]).await.expect("bootstrap");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica.status().is_leader {
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let replica = Arc::new(replica);

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = creds(&ca, Role::Node, "n1").server_config(CLIENT_API_ALPN).expect("server config");
        let api = Arc::new(NodeApi::new(replica.clone(), 1, SHARD));
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(AuthzLayer::new(authorizer.clone()).with_audit(AuditFeed::start(replica.clone()).0))
                .add_routes(services(api))
                .serve_with_incoming(incoming(listener, tls, PeerPolicy::AnyMeshMember)),
        );
        ApiNode { addr, ca, replica, authorizer, server, _dir: dir }
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
