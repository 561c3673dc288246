//! AdminService membership and map: RemoveLearner, ChangeMembership with and without keeping
//! removed voters, and GetShardMap; on the leader and through a follower.

mod common;

use std::time::{Duration, Instant};

use common::group::GroupApi;
use common::*;
use metamesh_node::LEADER_HEADER;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_testkit::test_options;
use tonic::transport::Channel;
use tonic::Code;

fn ids(members: &[v1::Member]) -> Vec<u64> {
    members.iter().map(|m| m.node_id).collect()
}

fn learner(id: u64) -> v1::AddLearnerRequest {
    v1::AddLearnerRequest {
        node: Some(v1::Member { node_id: id, raft_addr: format!("127.0.0.1:{}", 7000 + id), api_addr: String::new() }),
        ..Default::default()
    }
}

/// Asserts the call failed with `code`, its details naming `field` and its message `needle`.
#[track_caller]
fn assert_names<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, field: &str, needle: &str) {
    let status = result.expect_err("the call should fail");
    assert!(status.message().contains(needle), "{needle:?} not in {status:?}");
    assert_refused(Err::<T, _>(status), code, field);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_learner_removes_learners_only() {
    let node = Node::start().await;
    let mut admin = AdminServiceClient::new(node.alice().await);
    let added = admin.add_learner(learner(2)).await.unwrap().into_inner().membership.unwrap();
    assert_eq!((ids(&added.voters), ids(&added.learners)), (vec![1], vec![2]));

    let voter = admin.remove_learner(v1::RemoveLearnerRequest { node_id: 1, ..Default::default() }).await;
    assert_names(voter, Code::FailedPrecondition, "node_id", "node 1 is a voter");
    let stranger = admin.remove_learner(v1::RemoveLearnerRequest { node_id: 9, ..Default::default() }).await;
    assert_names(stranger, Code::NotFound, "node_id", "node 9");

    let removed = admin.remove_learner(v1::RemoveLearnerRequest { node_id: 2, ..Default::default() }).await;
    let removed = removed.unwrap().into_inner().membership.unwrap();
    assert_eq!((ids(&removed.voters), ids(&removed.learners)), (vec![1], vec![]));
    let status = admin.status(v1::StatusRequest {}).await.unwrap().into_inner();
    assert!(ids(&status.membership.unwrap().learners).is_empty(), "removal is not in the applied membership");
    let again = admin.remove_learner(v1::RemoveLearnerRequest { node_id: 2, ..Default::default() }).await;
    assert_names(again, Code::NotFound, "node_id", "node 2");

    // A voter that is not even a learner is refused before anything is proposed.
    let unknown = admin.change_membership(v1::ChangeMembershipRequest { voters: vec![1, 7], ..Default::default() });
    assert_names(unknown.await, Code::FailedPrecondition, "voters", "node 7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_map_is_this_nodes_group() {
    let node = Node::start().await;
    let ch = node.alice().await;
    create_tenant(&ch, "risk").await;
    create_tenant(&ch, "fraud").await;
    let mut admin = AdminServiceClient::new(ch);
    admin.add_learner(learner(2)).await.unwrap();

    let map = admin.get_shard_map(v1::GetShardMapRequest {}).await.unwrap().into_inner();
    assert_eq!(map.map_version, "", "a node has no mesh map file");
    let [group] = &map.groups[..] else { panic!("one group expected: {map:?}") };
    assert_eq!(group.id, SHARD);
    assert_eq!(group.tenants, ["fraud", "risk"]);
    let members: Vec<(u64, &str)> = group.members.iter().map(|m| (m.node_id, m.raft_addr.as_str())).collect();
    assert_eq!(members, [(1, "127.0.0.1:7001"), (2, "127.0.0.1:7002")]);
}

/// Polls the membership that replica `id` reports until `done` holds.
async fn wait_membership(ch: &Channel, what: &str, done: impl Fn(&v1::Membership) -> bool) -> v1::Membership {
    let mut admin = AdminServiceClient::new(ch.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = admin.status(v1::StatusRequest {}).await.unwrap().into_inner().membership.unwrap();
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_are_demoted_or_removed_as_asked_and_followers_name_the_leader() {
    let mut g = GroupApi::start(3, test_options()).await;
    let leader = g.group.wait_for_leader().await;
    let [a, b] = g.group.others(leader)[..] else { panic!("two followers") };
    let on_leader = g.alice(leader).await;
    let on_follower = g.alice(a).await;
    let mut admin = AdminServiceClient::new(on_leader.clone());

    // Membership changes are the leader's: a follower names it.
    let status = AdminServiceClient::new(on_follower.clone())
        .remove_learner(v1::RemoveLearnerRequest { node_id: b, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.metadata().get(LEADER_HEADER).unwrap(), g.group.addr(leader).to_string().as_str());

    // Demoted and kept as a learner ...
    let voters = vec![leader, a];
    let request =
        v1::ChangeMembershipRequest { voters: voters.clone(), retain_as_learners: true, ..Default::default() };
    let kept = admin.change_membership(request).await.unwrap().into_inner().membership.unwrap();
    let mut expected = voters.clone();
    expected.sort();
    assert_eq!((ids(&kept.voters), ids(&kept.learners)), (expected.clone(), vec![b]));
    // ... which the follower learns too ...
    wait_membership(&on_follower, "the follower sees b as a learner", |m| ids(&m.learners) == [b]).await;
    // ... then removed for good.
    let removed = admin.remove_learner(v1::RemoveLearnerRequest { node_id: b, ..Default::default() }).await;
    let removed = removed.unwrap().into_inner().membership.unwrap();
    assert_eq!((ids(&removed.voters), ids(&removed.learners)), (expected, vec![]));

    // Without retain_as_learners, a removed voter leaves the group at once.
    let request = v1::ChangeMembershipRequest { voters: vec![leader], ..Default::default() };
    let alone = admin.change_membership(request).await.unwrap().into_inner().membership.unwrap();
    assert_eq!((ids(&alone.voters), ids(&alone.learners)), (vec![leader], vec![]));
    let map = admin.get_shard_map(v1::GetShardMapRequest {}).await.unwrap().into_inner();
    assert_eq!(ids(&map.groups[0].members), [leader]);
}
