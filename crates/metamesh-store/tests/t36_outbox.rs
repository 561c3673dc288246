//! Cross-shard lineage on the store: edges into another shard's tenant are queued in the outbox
//! in the writing transaction; delivered references are applied once, in order, however often
//! they arrive; delivered entries leave the outbox.

mod common;

use common::*;
use metamesh_core::command::RemoteRef;
use metamesh_core::{Command, CommandError, Direction, EdgeKind, Outcome};

const RUN: &str = "mm://acme/run/train";
const REMOTE: &str = "mm://other/dataset/signups";

/// A store owning `acme` with a run that consumes `other`'s dataset (stored here).
async fn origin() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    s.ok(put(RUN)).await;
    assert!(edge_changed(s.ok(add_edge(REMOTE, EdgeKind::Consumed, RUN)).await));
    s
}

/// A store owning `other` with its dataset.
async fn target() -> TestStore {
    let mut s = TestStore::new().await;
    s.ok(create_tenant("other")).await;
    s.ok(put(REMOTE)).await;
    s
}

fn deliver(refs: &[RemoteRef]) -> Command {
    Command::DeliverReferences { origin: "s1".into(), refs: refs.to_vec() }
}

fn refs_of(entries: &[metamesh_store::OutboxEntry]) -> Vec<RemoteRef> {
    entries.iter().map(|e| e.reference.clone()).collect()
}

#[tokio::test]
async fn an_edge_into_another_shard_is_queued_once_and_its_removal_too() {
    let mut s = origin().await;
    let queued = s.outbox(100).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].target.as_str(), "other");
    assert!(!queued[0].reference.removed);
    assert_eq!(queued[0].reference.edge.to.entity, eu(RUN));
    // Adding the same edge again changes nothing and queues nothing.
    assert!(!edge_changed(s.ok(add_edge(REMOTE, EdgeKind::Consumed, RUN)).await));
    // A local edge is not queued.
    s.ok(put("mm://acme/model/m")).await;
    s.ok(add_edge(RUN, EdgeKind::Produced, "mm://acme/model/m")).await;
    assert_eq!(s.outbox(100).await.unwrap().len(), 1);
    assert!(edge_changed(s.ok(remove_edge(REMOTE, EdgeKind::Consumed, RUN)).await));
    let queued = s.outbox(100).await.unwrap();
    assert_eq!(queued.len(), 2);
    assert!(queued[1].reference.removed);
    assert!(queued[0].reference.id < queued[1].reference.id);
    assert_eq!(s.outbox_backlog().await.unwrap().0, 2);

    let ids: Vec<u64> = queued.iter().map(|e| e.reference.id).collect();
    assert_eq!(s.ok(Command::OutboxDelivered { ids: ids.clone() }).await, Outcome::Delivered { removed: 2 });
    assert!(s.outbox(100).await.unwrap().is_empty());
    // Ids are never reused: the next entry's id is above the delivered ones.
    s.ok(add_edge(REMOTE, EdgeKind::Consumed, RUN)).await;
    assert!(s.outbox(100).await.unwrap()[0].reference.id > ids[1]);
}

#[tokio::test]
async fn delivered_references_apply_once_and_in_order() {
    let mut a = origin().await;
    let first = refs_of(&a.outbox(100).await.unwrap());
    let mut b = target().await;
    assert_eq!(b.ok(deliver(&first)).await, Outcome::References { applied: 1, skipped: 0 });
    let down = b.edges_of(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap();
    assert_eq!(down.len(), 1, "downstream from the target's entity finds the remote run");
    assert_eq!(down[0].to.entity, eu(RUN));
    // Redelivery (a new leader resending, a lost acknowledgement) adds nothing.
    assert_eq!(b.ok(deliver(&first)).await, Outcome::References { applied: 0, skipped: 1 });
    assert_eq!(b.edges_of(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap().len(), 1);
    assert_eq!(b.edges_of_sql(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap().len(), 1);

    // The removal travels the same way; delivering the whole history again changes nothing.
    a.ok(remove_edge(REMOTE, EdgeKind::Consumed, RUN)).await;
    let all = refs_of(&a.outbox(100).await.unwrap());
    assert_eq!(b.ok(deliver(&all)).await, Outcome::References { applied: 1, skipped: 1 });
    assert!(b.edges_of(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap().is_empty());
    assert!(b.edges_of_sql(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap().is_empty());
    assert_eq!(b.ok(deliver(&all)).await, Outcome::References { applied: 0, skipped: 2 });
    assert!(b.edges_of_sql(&[eu(REMOTE)], Direction::Downstream, &[], None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_reference_for_a_tenant_the_shard_does_not_own_is_refused_whole() {
    let a = origin().await;
    let refs = refs_of(&a.outbox(100).await.unwrap());
    let mut b = TestStore::new().await;
    b.ok(create_tenant("third")).await;
    let err = b.refused(deliver(&refs)).await;
    assert!(matches!(err, CommandError::UnknownTenant(_)), "{err:?}");
    // Nothing was recorded as applied: a later delivery to the right shard is not skipped.
    b.ok(create_tenant("other")).await;
    assert_eq!(b.ok(deliver(&refs)).await, Outcome::References { applied: 1, skipped: 0 });
}
