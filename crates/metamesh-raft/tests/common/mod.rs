//! An in-process shard group: N replicas with real SQLite files in a temp dir, connected by the
//! fault-injecting local transport.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use metamesh_core::{Command, EntitySpec, EntityUrn, Proposal, TenantId};
use metamesh_raft::network::LocalRouter;
use metamesh_raft::{ApplyReply, Replica, ReplicaOptions, WriteError};
use openraft::BasicNode;
use tempfile::TempDir;

pub struct Cluster {
    pub router: LocalRouter,
    pub replicas: BTreeMap<u64, Replica>,
    pub options: ReplicaOptions,
    dir: TempDir,
    clock: i64,
}

pub fn addr(id: u64) -> String {
    format!("local-{id}")
}

impl Cluster {
    pub async fn new(n: u64, options: ReplicaOptions) -> Cluster {
        let mut c = Cluster {
            router: LocalRouter::new(),
            replicas: BTreeMap::new(),
            options,
            dir: tempfile::tempdir().unwrap(),
            clock: 1_700_000_000_000,
        };
        for id in 1..=n {
            c.start(id).await;
        }
        let members: BTreeMap<u64, BasicNode> = (1..=n).map(|id| (id, BasicNode::new(addr(id)))).collect();
        c.replicas[&1].initialize(members).await.unwrap();
        c.wait_for_leader(Duration::from_secs(10)).await;
        c
    }

    pub async fn start(&mut self, id: u64) {
        let dir = self.dir.path().join(format!("node-{id}"));
        let r = Replica::start(id, &dir, &self.options, self.router.network(id)).await.unwrap();
        self.router.register(id, r.raft.clone());
        self.replicas.insert(id, r);
    }

    /// Stops a replica as a crash would look to the others (its files stay).
    pub async fn kill(&mut self, id: u64) {
        self.router.remove(id);
        if let Some(r) = self.replicas.remove(&id) {
            r.shutdown().await;
        }
    }

    /// The leader all live replicas agree on.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<Option<u64>> =
                self.replicas.values().map(|r| r.raft.metrics().borrow().current_leader).collect();
            if let Some(Some(l)) = leaders.first() {
                if self.replicas.contains_key(l)
                    && self.replicas[l].raft.metrics().borrow().state == openraft::ServerState::Leader
                {
                    return *l;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn proposal(&mut self, command: Command) -> Proposal {
        self.clock += 1;
        Proposal::new(command, self.clock, "tester")
    }

    /// Writes through whichever replica leads, retrying through elections.
    pub async fn write(&mut self, command: Command) -> ApplyReply {
        let p = self.proposal(command);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let leader = self.wait_for_leader(Duration::from_secs(10)).await;
            match self.replicas[&leader].write(p.clone()).await {
                Ok(reply) => return reply,
                Err(WriteError::NotLeader { .. }) | Err(WriteError::Raft(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }

    /// Waits until every live replica has applied `index`.
    pub async fn wait_applied(&self, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for r in self.replicas.values() {
            while r.applied() < index {
                assert!(Instant::now() < deadline, "replica {} stuck at {} < {index}", r.id, r.applied());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Digests of every live replica's state.
    pub async fn digests(&self) -> BTreeMap<u64, String> {
        let mut out = BTreeMap::new();
        for (id, r) in &self.replicas {
            out.insert(*id, r.local_store().digest().await.unwrap());
        }
        out
    }
}

pub fn tenant() -> Command {
    Command::CreateTenant { tenant: TenantId::new("acme").unwrap() }
}

pub fn dataset(i: usize) -> EntityUrn {
    format!("mm://acme/dataset/d{i:05}").parse().unwrap()
}

pub fn put(i: usize) -> Command {
    let mut spec = EntitySpec::new(dataset(i));
    spec.properties = serde_json::json!({ "i": i });
    Command::PutEntity(spec)
}

pub fn assert_all_equal(digests: &BTreeMap<u64, String>) {
    let first = digests.values().next().unwrap();
    assert!(digests.values().all(|d| d == first), "replicas diverged: {digests:?}");
}
