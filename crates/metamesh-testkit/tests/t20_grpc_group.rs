//! Shard groups over the real transport (gRPC, mutual TLS, 127.0.0.1): replication through any
//! replica, leader loss under write load, partitions, and the Raft listener's peer policy.

use std::time::{Duration, Instant};

use metamesh_core::{Command, EntitySpec, EntityUrn, TenantId};
use metamesh_raft::ReadConsistency;
use metamesh_testkit::ShardGroup;
use metamesh_tls::Role;

fn tenant() -> Command {
    Command::CreateTenant { tenant: TenantId::new("acme").unwrap() }
}

fn dataset(i: usize) -> EntityUrn {
    format!("mm://acme/dataset/d{i:05}").parse().unwrap()
}

fn put(i: usize) -> Command {
    let mut spec = EntitySpec::new(dataset(i));
    spec.properties = serde_json::json!({ "i": i });
    Command::PutEntity(spec)
}

/// Timeouts for large entries in a debug build (JSON encodes about ten times slower than in
/// release), with at most `max_payload_entries` entries per append request.
fn large_entry_options(max_payload_entries: u64) -> metamesh_raft::ReplicaOptions {
    metamesh_raft::ReplicaOptions {
        heartbeat_ms: 400,
        election_timeout_min_ms: 1200,
        election_timeout_max_ms: 2400,
        max_payload_entries,
        ..Default::default()
    }
}

async fn present(g: &ShardGroup, id: u64, i: usize) -> bool {
    g.replica(id).local_store().get_entity(&dataset(i).unversioned(), None).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_replica_and_linearizable_follower_reads() {
    let mut g = ShardGroup::start(3).await;
    let leader = g.wait_for_leader().await;
    let follower = g.others(leader)[0];
    g.write_via(follower, tenant()).await;
    let mut last = 0;
    for i in 0..10 {
        last = g.write_via(follower, put(i)).await;
    }
    // A linearizable read at the follower sees what it just acknowledged.
    let store = g.replica(follower).read(ReadConsistency::Linearizable).await.unwrap();
    assert!(store.get_entity(&dataset(9).unversioned(), None).await.unwrap().is_some());
    g.wait_applied(last).await;
    g.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_write_load_loses_no_acknowledged_write() {
    let mut g = ShardGroup::start(3).await;
    g.write(tenant()).await;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        g.write(put(i)).await;
        acknowledged.push(i);
    }
    let old = g.wait_for_leader().await;
    g.kill(old).await;
    let killed = Instant::now();
    let survivor = g.ids()[0];
    g.write_via(survivor, put(10)).await;
    acknowledged.push(10);
    eprintln!("failover: first acknowledged write {:?} after the kill", killed.elapsed());
    let mut last = 0;
    for i in 11..30 {
        last = g.write_via(survivor, put(i)).await;
        acknowledged.push(i);
    }
    g.restart(old).await;
    g.wait_applied(last).await;
    for id in g.ids() {
        for &i in &acknowledged {
            assert!(present(&g, id, i).await, "replica {id} lost acknowledged write d{i}");
        }
    }
    g.assert_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_and_all_converge_after_healing() {
    let mut g = ShardGroup::start(3).await;
    g.write(tenant()).await;
    let old = g.wait_for_leader().await;
    let majority = g.others(old);
    g.partition(&[old], &majority);

    let p = g.proposal(put(1));
    let stranded = tokio::time::timeout(Duration::from_millis(1500), g.replica(old).write(p)).await;
    assert!(!matches!(stranded, Ok(Ok(_))), "the minority acknowledged a write: {stranded:?}");

    // The majority goes on without it.
    let revision = g.write_via(majority[0], put(2)).await;
    assert!(!present(&g, old, 2).await);

    g.heal();
    g.wait_applied(revision).await;
    g.assert_converged().await;
    for id in g.ids() {
        assert!(!present(&g, id, 1).await, "an unacknowledged minority write survived on {id}");
        assert!(present(&g, id, 2).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_listener_serves_nodes_only() {
    let g = ShardGroup::start(1).await;
    let payload = || metamesh_proto::raft::v1::RaftPayload { json: b"null".to_vec() };
    for (role, name) in [(Role::Client, "intruder"), (Role::Router, "router-1")] {
        let creds = g.credentials(role, name);
        let outcome = match metamesh_tls::connect(g.addr(1), creds.client_config().unwrap(), "127.0.0.1").await {
            Err(_) => None,
            Ok(ch) => Some(
                metamesh_proto::raft::v1::raft_service_client::RaftServiceClient::new(ch).read_index(payload()).await,
            ),
        };
        assert!(!matches!(outcome, Some(Ok(_))), "a {role:?} certificate reached the raft service");
    }
    let node = g.credentials(Role::Node, "node-9");
    let ch = metamesh_tls::connect(g.addr(1), node.client_config().unwrap(), "127.0.0.1").await.unwrap();
    let mut raft = metamesh_proto::raft::v1::raft_service_client::RaftServiceClient::new(ch);
    assert!(raft.read_index(payload()).await.is_ok());
}

/// A new leader must re-send the tail of the log to the other follower; with 1,000-entity
/// batch entries that tail is megabytes. openraft 0.9 times each AppendEntries out after one
/// heartbeat, so requests must stay small (`max_payload_entries`) or replication stalls forever.
/// Debug builds encode JSON about ten times slower than release, so this test runs with a longer
/// heartbeat and one entry per request; the release defaults (100 ms, 4 entries) are exercised
/// by the `replicated` benchmark's failover step, which stalled with larger requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_large_batches_does_not_stall_replication() {
    let mut g = ShardGroup::start_with(3, large_entry_options(1)).await;
    g.write(tenant()).await;
    for b in 0..12 {
        let commands = (0..1000).map(|i| put(1000 + b * 1000 + i)).collect();
        g.write(Command::Batch { commands }).await;
    }
    let old = g.wait_for_leader().await;
    g.kill(old).await;
    let started = Instant::now();
    let survivor = g.ids()[0];
    let revision = g.write_via(survivor, put(0)).await;
    assert!(started.elapsed() < Duration::from_secs(12), "failover took {:?}", started.elapsed());
    g.wait_applied(revision).await;
    g.assert_converged().await;
}

/// An append request too large to send whole is first sent as an empty probe of its last entry
/// (`GrpcConnection::append_entries`): a follower lacking the entries gets them (the probe
/// conflicts), one holding them is not sent them again (the probe succeeds). Both happen here:
/// a follower cut off while batches are written catches up after healing, then a new leader
/// finds the other survivor holding its whole log. Every replica must end with every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_catch_up_through_probed_append_requests() {
    let mut g = ShardGroup::start_with(3, large_entry_options(16)).await;
    g.write(tenant()).await;
    // Batches of 600: two of them pass the 1,024-command budget of one request.
    let batch = |b: usize| Command::Batch { commands: (0..600).map(|i| put(1000 + b * 600 + i)).collect() };
    let leader = g.wait_for_leader().await;
    let lagging = g.others(leader)[1];
    g.partition(&[lagging], &g.others(lagging));
    for b in 0..4 {
        g.write(batch(b)).await;
    }
    assert!(!present(&g, lagging, 1000).await, "the partitioned follower got a batch");
    g.heal();
    let mut revision = 0;
    for b in 4..8 {
        revision = g.write(batch(b)).await;
    }
    g.wait_applied(revision).await;
    g.assert_converged().await;

    let old = g.wait_for_leader().await;
    g.kill(old).await;
    let survivor = g.ids()[0];
    let revision = g.write_via(survivor, put(0)).await;
    g.wait_applied(revision).await;
    g.assert_converged().await;
    for id in g.ids() {
        for i in [0, 1000, 1000 + 4 * 600 - 1, 1000 + 8 * 600 - 1] {
            assert!(present(&g, id, i).await, "replica {id} lacks d{i:05}");
        }
    }
}
