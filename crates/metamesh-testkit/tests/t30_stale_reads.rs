//! Bounded-staleness reads (`ReadConsistency::MaxStaleness`) over the real transport: a replica
//! serves them only while it is confirmed current (a follower by its leader's messages, a
//! leader by a quorum's acknowledgements), refuses them once cut off for longer than the bound,
//! and serves them again — with everything committed meanwhile — after the partition heals.

use std::time::{Duration, Instant};

use metamesh_core::{Command, TenantId};
use metamesh_raft::replica::Stale;
use metamesh_raft::{ReadConsistency, ReadError, Replica, ReplicaOptions};
use metamesh_testkit::{test_options, ShardGroup};

const BOUND: Duration = Duration::from_millis(200);
const BOUNDED: ReadConsistency = ReadConsistency::MaxStaleness(BOUND);

fn tenant(name: &str) -> Command {
    Command::CreateTenant { tenant: TenantId::new(name).unwrap() }
}

/// Polls a bounded read on `replica` until `accept` takes its outcome, for up to `within`.
async fn poll_bounded<T>(
    replica: &Replica,
    within: Duration,
    what: &str,
    accept: impl Fn(&Result<(), ReadError>) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let outcome = replica.read(BOUNDED).await.map(|_| ());
        if let Some(t) = accept(&outcome) {
            return t;
        }
        assert!(Instant::now() < deadline, "replica {}: {what} within {within:?}; last: {outcome:?}", replica.id);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[track_caller]
fn assert_old(stale: &Stale) {
    match stale {
        Stale::Old { ms } => assert!(*ms > BOUND.as_millis() as u64, "{stale}"),
        other => panic!("refused as {other:?}, not for the age of its last confirmation"),
    }
}

async fn served(replica: &Replica) {
    poll_bounded(replica, Duration::from_secs(15), "a bounded read served", |o| o.is_ok().then_some(())).await
}

/// Waits for the first refusal; returns how stale the replica said it was.
async fn refused(replica: &Replica) -> Stale {
    poll_bounded(replica, Duration::from_secs(5), "a bounded read refused", |o| match o {
        Err(ReadError::TooStale { stale, bound_ms, replica: id, .. }) => {
            assert_eq!((*bound_ms, *id), (BOUND.as_millis() as u64, replica.id));
            Some(stale.clone())
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_follower_refuses_bounded_reads_after_the_bound_and_serves_again_after_heal() {
    // Elections far slower than the bound, so that the follower refuses because its contact
    // with the leader aged, not because it has started an election of its own.
    let options = ReplicaOptions { election_timeout_min_ms: 1500, election_timeout_max_ms: 3000, ..test_options() };
    let mut g = ShardGroup::start_with(3, options).await;
    let leader = g.wait_for_leader().await;
    let follower = g.others(leader)[0];
    let before = g.write_via(leader, tenant("before")).await;
    g.wait_applied(before).await;
    served(&g.replica(follower)).await;
    served(&g.replica(leader)).await;

    g.partition(&[follower], &g.others(follower));
    let cut = Instant::now();
    let stale = refused(&g.replica(follower)).await;
    // The last heartbeat arrived at most one interval before the cut: no refusal can come
    // sooner than the bound minus that interval.
    let heartbeat = Duration::from_millis(g.options.heartbeat_ms);
    assert!(cut.elapsed() >= BOUND - heartbeat, "refused {:?} after the cut: {stale}", cut.elapsed());
    assert_old(&stale);

    // What it has applied it still serves to read-your-writes readers; a linearizable read
    // needs the leader, which it cannot reach.
    let store = g.replica(follower).read(ReadConsistency::MinRevision(before)).await.expect("applied revision");
    assert!(store.tenants().await.unwrap().contains(&TenantId::new("before").unwrap()));
    let cut_off = g.replica(follower);
    let linearizable = tokio::time::timeout(Duration::from_secs(10), cut_off.read(ReadConsistency::Linearizable));
    assert!(linearizable.await.expect("answers in time").is_err(), "a cut-off follower served a linearizable read");

    // The majority goes on; the follower misses it: enough entries that catching up takes
    // several AppendEntries (four entries each), each carrying the leader's whole commit.
    let mut during = 0;
    for i in 0..40 {
        during = g.write(tenant(&format!("during-{i}"))).await;
    }
    let acknowledged = Instant::now();
    assert!(g.replica(follower).applied() < during);

    g.heal();
    served(&g.replica(follower)).await;
    // Served again only once it applied what the leader had committed, the writes made during
    // the partition included.
    let tenants = g.replica(follower).local_store().tenants().await.unwrap();
    assert!(
        tenants.contains(&TenantId::new("during-39").unwrap()),
        "served a bounded read before applying what its leader had committed (last write acknowledged {:?} earlier)",
        acknowledged.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_refuses_bounded_reads() {
    let mut g = ShardGroup::start(3).await;
    let old = g.wait_for_leader().await;
    let rev = g.write_via(old, tenant("acme")).await;
    g.wait_applied(rev).await;
    served(&g.replica(old)).await;

    g.partition(&[old], &g.others(old));
    let cut = Instant::now();
    let stale = refused(&g.replica(old)).await;
    let heartbeat = Duration::from_millis(g.options.heartbeat_ms);
    assert!(cut.elapsed() >= BOUND - heartbeat, "refused {:?} after the cut: {stale}", cut.elapsed());
    // openraft 0.9 keeps a leader cut off from its quorum in the leader role: only the age of
    // its last quorum acknowledgement tells.
    assert_old(&stale);

    // The others elect a new leader, which serves bounded reads, and so does its follower.
    let deadline = Instant::now() + Duration::from_secs(15);
    let new = loop {
        let leaders: Vec<u64> = g.others(old).into_iter().filter(|&id| g.replica(id).status().is_leader).collect();
        if let [new] = leaders[..] {
            break new;
        }
        assert!(Instant::now() < deadline, "no new leader among {:?}", g.others(old));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    served(&g.replica(new)).await;
    let other = g.others(old).into_iter().find(|&id| id != new).unwrap();
    served(&g.replica(other)).await;

    g.heal();
    served(&g.replica(old)).await;
}
