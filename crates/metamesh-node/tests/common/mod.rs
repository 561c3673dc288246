//! A real single-replica shard group in a temp dir, its client API served over real mTLS on
//! 127.0.0.1, and clients with certificates from the same mesh CA.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metamesh_node::{services, NodeApi};
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_raft::network::LocalRouter;
use metamesh_raft::{Replica, ReplicaOptions};
use metamesh_store::StoreOptions;
use metamesh_tls::{connect, incoming, Credentials, MeshCa, PeerPolicy, Role, CLIENT_API_ALPN};
use prost::Message;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub const DOMAIN: &str = "test.mesh";
pub const SHARD: &str = "s1";

/// One node: replica 1 of shard group `s1`, leader of its own group.
pub struct Node {
    pub addr: SocketAddr,
    pub ca: MeshCa,
    pub replica: Arc<Replica>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    _dir: TempDir,
}

impl Node {
    pub async fn start() -> Node {
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
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !replica.status().is_leader {
            assert!(std::time::Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let replica = Arc::new(replica);

        let ca = MeshCa::generate(DOMAIN).expect("ca");
        let server_creds = creds(&ca, Role::Node, "n1");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = server_creds.server_config(CLIENT_API_ALPN).expect("server config");
        let api = Arc::new(NodeApi::new(replica.clone(), 1, SHARD));
        let server =
            tokio::spawn(tonic::transport::Server::builder().add_routes(services(api)).serve_with_incoming(incoming(
                listener,
                tls,
                PeerPolicy::AnyMeshMember,
            )));
        Node { addr, ca, replica, server, _dir: dir }
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

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn creds(ca: &MeshCa, role: Role, name: &str) -> Credentials {
    let issued = ca.issue(role, name, Duration::from_secs(3600)).expect("issue");
    Credentials::from_pem(ca.cert_pem(), &issued.cert_pem, &issued.key_pem).expect("credentials")
}

/// Creates tenant `name` through the API.
pub async fn create_tenant(channel: &Channel, name: &str) -> u64 {
    let reply = CatalogServiceClient::new(channel.clone())
        .create_tenant(v1::CreateTenantRequest { name: name.into(), ..Default::default() })
        .await
        .expect("create tenant");
    reply.into_inner().revision
}

/// A put of `urn` with these properties.
pub fn put(urn: &str, properties_json: &str) -> v1::PutEntityRequest {
    v1::PutEntityRequest { urn: urn.into(), properties_json: properties_json.into(), ..Default::default() }
}

/// Writes entity `urn`; returns the reply.
pub async fn put_entity(channel: &Channel, urn: &str) -> v1::PutEntityReply {
    CatalogServiceClient::new(channel.clone()).put_entity(put(urn, "{}")).await.expect("put entity").into_inner()
}

/// The `ErrorDetails` of a failed call.
pub fn details(status: &tonic::Status) -> v1::ErrorDetails {
    v1::ErrorDetails::decode(status.details()).expect("status carries ErrorDetails")
}

/// Asserts the code of a failed call and the field its details name.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: tonic::Code, field: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    let d = details(&status);
    assert_eq!(d.errors.first().map(|e| e.field.as_str()), Some(field), "{status:?}");
}
