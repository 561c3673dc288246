//! Multi-replica scenarios that read like the scenario they check.
//!
//! [`ShardGroup`] starts N replicas of one shard group in this process, each with its own temp
//! directory (real SQLite files), its own Raft listener on 127.0.0.1 (real gRPC, real mutual
//! TLS with certificates from a fresh mesh CA), and a fault-injecting layer in its Raft
//! transport:
//!
//! [`api_node::ApiNode`] is a single replica serving the client API over mTLS.
//!
//! ```text
//! let mut g = ShardGroup::start(3).await;
//! let leader = g.wait_for_leader().await;
//! g.partition(&[leader], &g.others(leader));
//! g.heal();
//! g.kill(leader).await;
//! g.restart(leader).await;
//! ```

pub mod api_node;
pub mod bench;
pub mod mesh;
pub mod policy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metamesh_core::{Command, Proposal};
use metamesh_raft::{Faults, GrpcNetwork, RaftGrpc, Replica, ReplicaOptions, WriteError};
use metamesh_tls::{Credentials, MeshCa, PeerPolicy, Role, INTERNAL_ALPN};

struct Running {
    replica: Arc<Replica>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

/// N replicas of one shard group in this process.
pub struct ShardGroup {
    ca: MeshCa,
    root: tempfile::TempDir,
    addrs: BTreeMap<u64, SocketAddr>,
    running: BTreeMap<u64, Running>,
    faults: Faults,
    pub options: ReplicaOptions,
    clock: i64,
}

/// Timeouts short enough for tests, long enough for a loaded 2-core machine.
pub fn test_options() -> ReplicaOptions {
    ReplicaOptions {
        heartbeat_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..Default::default()
    }
}

impl ShardGroup {
    /// Starts `n` replicas and bootstraps the group with all of them as voters.
    pub async fn start(n: u64) -> ShardGroup {
        ShardGroup::start_with(n, test_options()).await
    }

    pub async fn start_with(n: u64, options: ReplicaOptions) -> ShardGroup {
        let mut g = ShardGroup {
            ca: MeshCa::generate("test.mesh").expect("a CA"),
            root: tempfile::tempdir().expect("a temp dir"),
            addrs: BTreeMap::new(),
            running: BTreeMap::new(),
            faults: Faults::default(),
            options,
            clock: 1_700_000_000_000,
        };
        for id in 1..=n {
            g.reserve(id);
        }
        for id in 1..=n {
            g.restart(id).await;
        }
        let voters: Vec<(u64, String)> = g.addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        g.replica(1).bootstrap(&voters).await.expect("bootstrap");
        g.wait_for_leader().await;
        g
    }

    /// Picks a Raft address for `id` (a free port on 127.0.0.1).
    pub fn reserve(&mut self, id: u64) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = l.local_addr().expect("an address");
        self.addrs.insert(id, addr);
        addr
    }

    pub fn ca(&self) -> &MeshCa {
        &self.ca
    }

    /// Credentials issued by the group's CA.
    pub fn credentials(&self, role: Role, name: &str) -> Credentials {
        let issued = self.ca.issue(role, name, Duration::from_secs(3600)).expect("a certificate");
        Credentials::from_pem(self.ca.cert_pem(), &issued.cert_pem, &issued.key_pem).expect("credentials")
    }

    pub fn addr(&self, id: u64) -> SocketAddr {
        self.addrs[&id]
    }

    pub fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    pub fn ids(&self) -> Vec<u64> {
        self.running.keys().copied().collect()
    }

    /// The running replicas other than `id`.
    pub fn others(&self, id: u64) -> Vec<u64> {
        self.ids().into_iter().filter(|&x| x != id).collect()
    }

    pub fn replica(&self, id: u64) -> Arc<Replica> {
        self.running[&id].replica.clone()
    }

    /// Starts (or restarts, from its files) replica `id` on its reserved address.
    pub async fn restart(&mut self, id: u64) {
        let creds = self.credentials(Role::Node, &format!("node-{id}"));
        let network = GrpcNetwork::new(creds.client_config().expect("client tls")).with_faults(id, self.faults.clone());
        let replica = Replica::start(id, &self.dir(id), &self.options, network.clone()).await.expect("a replica");
        let replica = Arc::new(replica.with_forwarder(Arc::new(network)));
        let addr = self.addrs[&id];
        let listener = bind_retrying(addr).await;
        let incoming = metamesh_tls::incoming(
            listener,
            creds.server_config(INTERNAL_ALPN).expect("server tls"),
            PeerPolicy::NodesOnly,
        );
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
        self.running.insert(id, Running { replica, stop, server });
    }

    /// Stops replica `id` abruptly: its listener closes and its Raft stops; its files stay.
    pub async fn kill(&mut self, id: u64) {
        if let Some(r) = self.running.remove(&id) {
            let _ = r.stop.send(());
            r.server.abort();
            let _ = r.replica.raft.shutdown().await;
        }
    }

    /// Cuts every Raft link between a node of `a` and a node of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        self.faults.partition(a, b);
    }

    pub fn heal(&self) {
        self.faults.heal();
    }

    /// The replica that is leader (and that a majority follows), waiting up to 15 s.
    pub async fn wait_for_leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for r in self.running.values() {
                let s = r.replica.status();
                if s.is_leader {
                    let followers = self.running.values().filter(|o| o.replica.status().leader == Some(s.id)).count();
                    if followers * 2 > self.running.len() {
                        return s.id;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader within 15 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn proposal(&mut self, command: Command) -> Proposal {
        self.clock += 1;
        Proposal::new(command, self.clock, "tester")
    }

    /// Writes through replica `via` (followers forward to the leader), retrying through
    /// elections for up to 15 s; returns the revision. Panics if the command is refused.
    pub async fn write_via(&mut self, via: u64, command: Command) -> u64 {
        let p = self.proposal(command);
        let replica = self.replica(via);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match replica.write(p.clone()).await {
                Ok(reply) => {
                    let applied = reply.applied.expect("a command entry");
                    if let Err(e) = applied.result {
                        panic!("command refused: {e}");
                    }
                    return reply.revision;
                }
                Err(e @ (WriteError::NotLeader { .. } | WriteError::Raft(_))) => {
                    assert!(Instant::now() < deadline, "write never succeeded: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Writes through the current leader.
    pub async fn write(&mut self, command: Command) -> u64 {
        let leader = self.wait_for_leader().await;
        self.write_via(leader, command).await
    }

    /// Waits until every running replica has applied `index`.
    pub async fn wait_applied(&self, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for r in self.running.values() {
            while r.replica.applied() < index {
                assert!(
                    Instant::now() < deadline,
                    "replica {} stuck at {} < {index}",
                    r.replica.id,
                    r.replica.applied()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The state digest of every running replica.
    pub async fn digests(&self) -> BTreeMap<u64, String> {
        let mut out = BTreeMap::new();
        for (id, r) in &self.running {
            out.insert(*id, r.replica.local_store().digest().await.expect("a digest"));
        }
        out
    }

    /// Panics unless every running replica has the same state.
    pub async fn assert_converged(&self) {
        let d = self.digests().await;
        let first = d.values().next().expect("a replica");
        assert!(d.values().all(|x| x == first), "replicas diverged: {d:?}");
    }
}

/// Binding a port just released by a killed replica can take a moment.
async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("binding {addr}: {e}"),
        }
    }
}
