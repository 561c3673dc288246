//! A shard group of three replicas talking Raft over real gRPC and mutual TLS on 127.0.0.1:
//! replication, follower forwarding and linearizable follower reads, leader loss and restart,
//! and the Raft listener refusing client certificates.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_all_equal, dataset, put, tenant};
use metamesh_core::{Command, Proposal};
use metamesh_raft::{GrpcNetwork, RaftGrpc, ReadConsistency, Replica, ReplicaOptions, WriteError};
use metamesh_tls::{Credentials, MeshCa, PeerPolicy, Role, INTERNAL_ALPN};
use openraft::BasicNode;

struct Node {
    replica: Arc<Replica>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

struct GrpcCluster {
    ca: MeshCa,
    root: tempfile::TempDir,
    addrs: BTreeMap<u64, SocketAddr>,
    nodes: BTreeMap<u64, Node>,
    options: ReplicaOptions,
    clock: i64,
}

impl GrpcCluster {
    async fn new(n: u64) -> GrpcCluster {
        let mut c = GrpcCluster {
            ca: MeshCa::generate("test.mesh").unwrap(),
            root: tempfile::tempdir().unwrap(),
            addrs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            options: ReplicaOptions {
                heartbeat_ms: 50,
                election_timeout_min_ms: 300,
                election_timeout_max_ms: 600,
                ..Default::default()
            },
            clock: 1_700_000_000_000,
        };
        // Reserve a port per node first: the membership names every address.
        for id in 1..=n {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            c.addrs.insert(id, l.local_addr().unwrap());
        }
        for id in 1..=n {
            c.start(id).await;
        }
        let members: BTreeMap<u64, BasicNode> =
            c.addrs.iter().map(|(id, a)| (*id, BasicNode::new(a.to_string()))).collect();
        c.nodes[&1].replica.initialize(members).await.unwrap();
        c.leader().await;
        c
    }

    fn credentials(&self, role: Role, name: &str) -> Credentials {
        let issued = self.ca.issue(role, name, Duration::from_secs(3600)).unwrap();
        Credentials::from_pem(self.ca.cert_pem(), &issued.cert_pem, &issued.key_pem).unwrap()
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    async fn start(&mut self, id: u64) {
        let creds = self.credentials(Role::Node, &format!("node-{id}"));
        let network = GrpcNetwork::new(creds.client_config().unwrap());
        let replica = Replica::start(id, &self.dir(id), &self.options, network.clone()).await.unwrap();
        let replica = Arc::new(replica.with_forwarder(Arc::new(network)));
        let listener = tokio::net::TcpListener::bind(self.addrs[&id]).await.unwrap();
        let incoming =
            metamesh_tls::incoming(listener, creds.server_config(INTERNAL_ALPN).unwrap(), PeerPolicy::NodesOnly);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = RaftGrpc::server(replica.raft.clone());
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        self.nodes.insert(id, Node { replica, stop, server });
    }

    async fn kill(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap();
        let _ = node.stop.send(());
        node.server.abort();
        let _ = node.replica.raft.shutdown().await;
    }

    async fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for n in self.nodes.values() {
                let m = n.replica.raft.metrics().borrow().clone();
                if m.state == openraft::ServerState::Leader {
                    return m.id;
                }
            }
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn proposal(&mut self, command: Command) -> Proposal {
        self.clock += 1;
        Proposal::new(command, self.clock, "tester")
    }

    /// Writes through `via` (any replica: followers forward), retrying through elections.
    async fn write_via(&mut self, via: u64, command: Command) -> u64 {
        let p = self.proposal(command);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.nodes[&via].replica.write(p.clone()).await {
                Ok(reply) => {
                    assert!(reply.applied.unwrap().result.is_ok());
                    return reply.revision;
                }
                Err(e @ (WriteError::NotLeader { .. } | WriteError::Raft(_))) => {
                    assert!(Instant::now() < deadline, "write never succeeded: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn wait_applied(&self, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for n in self.nodes.values() {
            while n.replica.applied() < index {
                assert!(Instant::now() < deadline, "replica {} stuck at {}", n.replica.id, n.replica.applied());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn digests(&self) -> BTreeMap<u64, String> {
        let mut out = BTreeMap::new();
        for (id, n) in &self.nodes {
            out.insert(*id, n.replica.local_store().digest().await.unwrap());
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_forwarding_and_failover_over_mutual_tls() {
    let mut c = GrpcCluster::new(3).await;
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();

    // A follower forwards writes to the leader.
    c.write_via(follower, tenant()).await;
    let mut last = 0;
    for i in 0..10 {
        last = c.write_via(follower, put(i)).await;
    }
    // A linearizable read on the follower sees the write it just acknowledged.
    let store = c.nodes[&follower].replica.read(ReadConsistency::Linearizable).await.unwrap();
    assert!(store.get_entity(&dataset(9).unversioned(), None).await.unwrap().is_some());
    c.wait_applied(last).await;
    assert_all_equal(&c.digests().await);

    // Kill the leader: a new one is elected, writes resume, nothing acknowledged is lost.
    c.kill(leader).await;
    let killed = Instant::now();
    let survivor = *c.nodes.keys().next().unwrap();
    let first = c.write_via(survivor, put(10)).await;
    eprintln!("failover over grpc: first write {:?} after the kill", killed.elapsed());
    for i in 11..20 {
        last = c.write_via(survivor, put(i)).await;
    }
    assert!(last > first);

    // The old leader restarts from disk on its address and catches up.
    c.start(leader).await;
    c.wait_applied(last).await;
    for n in c.nodes.values() {
        let store = n.replica.local_store();
        for i in 0..20 {
            assert!(store.get_entity(&dataset(i).unversioned(), None).await.unwrap().is_some(), "lost d{i}");
        }
    }
    assert_all_equal(&c.digests().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_listener_refuses_client_certificates() {
    let c = GrpcCluster::new(1).await;
    let addr = c.addrs[&1];
    // A client certificate of the same mesh is refused: no Raft RPC gets through.
    let client = c.credentials(Role::Client, "intruder");
    let outcome = match metamesh_tls::connect(addr, client.client_config().unwrap(), "127.0.0.1").await {
        Err(_) => None,
        Ok(channel) => {
            let mut raft = metamesh_proto::raft::v1::raft_service_client::RaftServiceClient::new(channel);
            let payload = metamesh_proto::raft::v1::RaftPayload { json: b"null".to_vec() };
            Some(raft.read_index(payload).await)
        }
    };
    assert!(!matches!(outcome, Some(Ok(_))), "a client certificate reached the raft service: {outcome:?}");
    // A node certificate of the same mesh is served.
    let node = c.credentials(Role::Node, "node-9");
    let channel = metamesh_tls::connect(addr, node.client_config().unwrap(), "127.0.0.1").await.unwrap();
    let mut raft = metamesh_proto::raft::v1::raft_service_client::RaftServiceClient::new(channel);
    let payload = metamesh_proto::raft::v1::RaftPayload { json: b"null".to_vec() };
    assert!(raft.read_index(payload).await.is_ok());
}
