//! Read consistency through the client API of a follower: bounded staleness
//! (`max_staleness_ms`), read-your-writes (`min_revision`) and linearizable reads, while the
//! follower is in touch with its leader, cut off from it, and after the partition heals.

mod common;

use std::time::{Duration, Instant};

use common::group::GroupApi;
use common::*;
use metamesh_node::LEADER_HEADER;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_raft::ReplicaOptions;
use metamesh_testkit::test_options;
use tonic::transport::Channel;
use tonic::Code;

const URN: &str = "mm://fraud/dataset/raw";
const BOUND_MS: u64 = 200;

fn follower_read(max_staleness_ms: u64, min_revision: u64) -> Option<v1::ReadConsistency> {
    use v1::read_consistency::{FollowerRead, Mode};
    Some(v1::ReadConsistency { mode: Some(Mode::Follower(FollowerRead { max_staleness_ms, min_revision })) })
}

async fn get(ch: &Channel, consistency: Option<v1::ReadConsistency>) -> Result<v1::GetEntityReply, tonic::Status> {
    let request = v1::GetEntityRequest { urn: URN.into(), consistency, ..Default::default() };
    CatalogServiceClient::new(ch.clone()).get_entity(request).await.map(|r| r.into_inner())
}

/// Polls a read bounded to [`BOUND_MS`] until `accept` takes its outcome.
async fn poll_bounded<T>(
    ch: &Channel,
    what: &str,
    accept: impl Fn(&Result<v1::GetEntityReply, tonic::Status>) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outcome = get(ch, follower_read(BOUND_MS, 0)).await;
        if let Some(t) = accept(&outcome) {
            return t;
        }
        assert!(Instant::now() < deadline, "{what}; last: {outcome:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_refuses_bounded_reads_but_serves_applied_revisions() {
    // Elections far slower than the bound: the follower refuses because its contact aged.
    let options = ReplicaOptions { election_timeout_min_ms: 1500, election_timeout_max_ms: 3000, ..test_options() };
    let mut g = GroupApi::start(3, options).await;
    let leader = g.group.wait_for_leader().await;
    let follower = g.group.others(leader)[0];
    let on_follower = g.alice(follower).await;
    create_tenant(&on_follower, "fraud").await;
    let written = put_entity(&on_follower, URN).await.revision;
    g.group.wait_applied(written).await;

    let fresh = poll_bounded(&on_follower, "a bounded read served", |o| o.as_ref().ok().cloned()).await;
    assert_eq!(fresh.entity.unwrap().version, 1);
    assert!(fresh.read_revision >= written);

    g.group.partition(&[follower], &g.group.others(follower));
    let cut = Instant::now();
    let status = poll_bounded(&on_follower, "a bounded read refused", |o| o.as_ref().err().cloned()).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&format!("bounded to {BOUND_MS} ms")), "{status:?}");
    assert!(status.message().contains("ms ago"), "says how stale: {status:?}");
    assert_eq!(status.metadata().get(LEADER_HEADER).unwrap(), g.group.addr(leader).to_string().as_str());
    let heartbeat = Duration::from_millis(g.group.options.heartbeat_ms);
    assert!(cut.elapsed() >= Duration::from_millis(BOUND_MS) - heartbeat, "refused after {:?}", cut.elapsed());

    // Read-your-writes still works for what it applied; linearizable reads need the leader.
    let mine = get(&on_follower, follower_read(0, written)).await.expect("an applied revision");
    assert_eq!(mine.entity.unwrap().version, 1);
    let both = get(&on_follower, follower_read(BOUND_MS, written)).await.unwrap_err();
    assert_eq!(both.code(), Code::Unavailable, "both bounds apply: {both:?}");
    let linearizable = get(&on_follower, None).await.unwrap_err();
    assert_eq!(linearizable.code(), Code::Unavailable, "{linearizable:?}");

    // A second version while it is cut off; after heal, a bounded read shows it.
    let on_leader = g.alice(leader).await;
    let second = put_entity(&on_leader, URN).await.revision;
    g.group.heal();
    let healed = poll_bounded(&on_follower, "a bounded read served after heal", |o| o.as_ref().ok().cloned()).await;
    assert_eq!(healed.entity.unwrap().version, 2, "served before applying what the leader had committed");
    assert!(healed.read_revision >= second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_a_follower_answer_with_what_they_wrote() {
    let mut g = GroupApi::start(3, test_options()).await;
    let leader = g.group.wait_for_leader().await;
    let on_follower = g.alice(g.group.others(leader)[0]).await;
    create_tenant(&on_follower, "fraud").await;
    // The leader applies a forwarded write before the follower does; the follower's answer is
    // read from its own store, so it must wait for its own apply (no INTERNAL "cannot be read
    // back").
    for version in 1..=20 {
        let reply = put_entity(&on_follower, URN).await;
        assert_eq!(reply.entity.unwrap().version, version);
    }
}
