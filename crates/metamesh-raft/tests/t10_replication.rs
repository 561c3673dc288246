//! A shard group of three replicas over the in-process transport: replication, leader loss,
//! partitions, learners and snapshots.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use metamesh_raft::{ReadConsistency, ReplicaOptions};

fn fast() -> ReplicaOptions {
    ReplicaOptions {
        heartbeat_ms: 50,
        election_timeout_min_ms: 200,
        election_timeout_max_ms: 400,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_reach_every_replica() {
    let mut c = Cluster::new(3, fast()).await;
    c.write(tenant()).await;
    let mut last = 0;
    for i in 0..20 {
        let reply = c.write(put(i)).await;
        let applied = reply.applied.expect("a command entry");
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        assert!(reply.revision > last, "revisions grow");
        last = reply.revision;
    }
    c.wait_applied(last).await;
    for r in c.replicas.values() {
        let store = r.read(ReadConsistency::MinRevision(last)).await.unwrap();
        let e = store.get_entity(&dataset(19).unversioned(), None).await.unwrap().expect("replicated");
        assert_eq!(e.properties["i"], 19);
        assert_eq!(e.revision, last, "the revision is the log index, the same everywhere");
    }
    assert_all_equal(&c.digests().await);

    // A follower refuses writes and names the leader.
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    let follower = *c.replicas.keys().find(|&&id| id != leader).unwrap();
    let p = c.proposal(put(99));
    match c.replicas[&follower].write(p).await {
        Err(metamesh_raft::WriteError::NotLeader { leader: Some(l), leader_addr }) => {
            assert_eq!(l, leader);
            assert_eq!(leader_addr.as_deref(), Some(addr(leader).as_str()));
        }
        other => panic!("follower accepted a write: {other:?}"),
    }
    // And a linearizable read on a follower is refused the same way.
    assert!(matches!(
        c.replicas[&follower].read(ReadConsistency::Linearizable).await,
        Err(metamesh_raft::ReadError::NotLeader { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_keeps_every_acknowledged_write() {
    let mut c = Cluster::new(3, fast()).await;
    c.write(tenant()).await;
    let mut acked = Vec::new();
    for i in 0..10 {
        c.write(put(i)).await;
        acked.push(i);
    }
    let old = c.wait_for_leader(Duration::from_secs(5)).await;
    c.kill(old).await;
    let started = std::time::Instant::now();
    let new = c.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new, old);
    let mut last = 0;
    for i in 10..20 {
        last = c.write(put(i)).await.revision;
        acked.push(i);
    }
    eprintln!("failover: first write after kill in {:?}", started.elapsed());

    // The old leader restarts from its files and catches up.
    c.start(old).await;
    c.wait_applied(last).await;
    for r in c.replicas.values() {
        let store = r.local_store();
        for &i in &acked {
            assert!(
                store.get_entity(&dataset(i).unversioned(), None).await.unwrap().is_some(),
                "lost d{i} on {}",
                r.id
            );
        }
    }
    assert_all_equal(&c.digests().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_and_replicas_converge_after_healing() {
    let mut c = Cluster::new(3, fast()).await;
    c.write(tenant()).await;
    c.write(put(0)).await;
    let old = c.wait_for_leader(Duration::from_secs(5)).await;
    let others: Vec<u64> = c.replicas.keys().copied().filter(|&id| id != old).collect();
    c.router.partition(&[old], &others);

    // The old leader cannot commit: its write never comes back acknowledged.
    let p = c.proposal(put(1));
    let stranded = tokio::time::timeout(Duration::from_millis(1500), c.replicas[&old].write(p)).await;
    assert!(!matches!(stranded, Ok(Ok(_))), "minority leader acknowledged a write: {stranded:?}");

    // The majority elects a leader and goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let new = loop {
        let l = c.replicas[&others[0]].raft.metrics().borrow().current_leader;
        if let Some(l) = l.filter(|l| others.contains(l)) {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "majority elected no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let p = c.proposal(put(2));
    let reply = c.replicas[&new].write(p).await.unwrap();

    c.router.heal();
    c.wait_applied(reply.revision).await;
    assert_all_equal(&c.digests().await);
    for r in c.replicas.values() {
        let store = r.local_store();
        assert!(
            store.get_entity(&dataset(1).unversioned(), None).await.unwrap().is_none(),
            "uncommitted write survived"
        );
        assert!(store.get_entity(&dataset(2).unversioned(), None).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_from_a_snapshot_and_votes_once_promoted() {
    let options = ReplicaOptions { snapshot_every: 20, keep_after_snapshot: 0, purge_batch_size: 1, ..fast() };
    let mut c = Cluster::new(3, options).await;
    c.write(tenant()).await;
    for i in 0..60 {
        c.write(put(i)).await;
    }
    let leader = c.wait_for_leader(Duration::from_secs(5)).await;
    // The log has been compacted: the first entries are gone, so a newcomer needs a snapshot.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.replicas[&leader].raft.metrics().borrow().purged.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader never purged its log: {:?}",
            c.replicas[&leader].raft.metrics().borrow()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.start(4).await;
    c.replicas[&leader].add_learner(4, &addr(4), true).await.unwrap();
    let purged = c.replicas[&leader].raft.metrics().borrow().purged.map(|l| l.index).unwrap();
    c.wait_applied(purged).await;
    // Its state was replaced by the leader's snapshot (the log it needed is gone).
    let current = std::fs::read_to_string(c.replicas[&4].dir().join("state/CURRENT")).unwrap();
    assert_ne!(current.trim(), "initial.sqlite", "the learner did not install a snapshot");
    assert!(c.replicas[&4].local_store().get_entity(&dataset(0).unversioned(), None).await.unwrap().is_some());
    let last = c.write(put(60)).await.revision;
    c.wait_applied(last).await;
    assert_all_equal(&c.digests().await);

    // Promote it; then with voter 3 down, {1,2,4} is a bare majority of 4: writes commit only
    // if the new voter acknowledges them.
    c.replicas[&leader].change_voters(BTreeSet::from([1, 2, 3, 4])).await.unwrap();
    let voters: BTreeSet<u64> =
        c.replicas[&leader].raft.metrics().borrow().membership_config.membership().voter_ids().collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3, 4]));
    let down = if leader == 3 { 2 } else { 3 };
    c.kill(down).await;
    let others: Vec<u64> = c.replicas.keys().copied().filter(|&id| id != 4).collect();
    c.router.partition(&[4], &[]); // no-op: 4 stays connected
    let reply = c.write(put(61)).await;
    c.wait_applied(reply.revision).await;
    c.router.partition(&[4], &others);
    let p = c.proposal(put(62));
    let leader = c.wait_for_leader(Duration::from_secs(10)).await;
    let blocked = tokio::time::timeout(Duration::from_millis(1500), c.replicas[&leader].write(p)).await;
    assert!(!matches!(blocked, Ok(Ok(_))), "a write committed without the promoted voter");
}
