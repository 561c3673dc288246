//! WatchService over real mTLS: following new writes, resuming, filtering.

mod common;

use std::time::Duration;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::change_event::Payload;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::watch_service_client::WatchServiceClient;
use metamesh_tls::Role;
use tonic::Streaming;

/// The next event that is not a progress mark.
async fn next_change(stream: &mut Streaming<v1::ChangeEvent>) -> v1::ChangeEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("no event within 5 s")
            .expect("stream failed")
            .expect("stream ended");
        if event.change != v1::ChangeKind::Progress as i32 {
            return event;
        }
    }
}

async fn watch(node: &Node, request: v1::WatchRequest) -> Streaming<v1::ChangeEvent> {
    WatchServiceClient::new(node.alice().await).watch(request).await.expect("watch").into_inner()
}

fn entity_urn(event: &v1::ChangeEvent) -> &str {
    match &event.payload {
        Some(Payload::Entity(e)) => &e.urn,
        other => panic!("not an entity event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_later_writes_and_resumes_without_gaps_or_repeats() {
    let node = Node::start().await;
    let ch = node.alice().await;
    create_tenant(&ch, "fraud").await;
    put_entity(&ch, "mm://fraud/dataset/before").await;

    let mut stream = watch(&node, v1::WatchRequest::default()).await;
    let b = put_entity(&ch, "mm://fraud/dataset/b").await;
    let event = next_change(&mut stream).await;
    assert_eq!(event.change, v1::ChangeKind::EntityVersion as i32);
    assert_eq!(
        (event.revision, event.urn.as_str(), event.tenant.as_str()),
        (b.revision, "mm://fraud/dataset/b", "fraud")
    );
    assert!(event.revision_end);
    assert_eq!(event.shard, SHARD);
    match &event.payload {
        Some(Payload::Entity(e)) => {
            assert_eq!(e.created_by, node.principal(Role::Client, "alice"));
            assert_eq!(event.time_ms, e.updated_at_ms);
        }
        other => panic!("payload {other:?}"),
    }

    // An edge: its event carries the edge.
    put_entity(&ch, "mm://fraud/run/r").await;
    assert_eq!(entity_urn(&next_change(&mut stream).await), "mm://fraud/run/r");
    LineageServiceClient::new(ch.clone())
        .add_edges(v1::AddEdgesRequest {
            edges: vec![v1::EdgeSpec {
                from_urn: "mm://fraud/dataset/b".into(),
                to_urn: "mm://fraud/run/r".into(),
                kind: "consumed".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let edge = next_change(&mut stream).await;
    assert_eq!(edge.change, v1::ChangeKind::EdgeAdded as i32);
    let last_seen = edge.revision;
    match edge.payload {
        Some(Payload::Edge(e)) => assert_eq!(e.to_urn, "mm://fraud/run/r"),
        other => panic!("payload {other:?}"),
    }
    drop(stream);

    // Writes while nobody watches are delivered on resume, once each, in order.
    let c = put_entity(&ch, "mm://fraud/dataset/c").await;
    let d = put_entity(&ch, "mm://fraud/dataset/d").await;
    let mut resumed = watch(&node, v1::WatchRequest { from_revision: Some(last_seen), ..Default::default() }).await;
    let first = next_change(&mut resumed).await;
    let second = next_change(&mut resumed).await;
    assert_eq!((first.revision, entity_urn(&first)), (c.revision, "mm://fraud/dataset/c"));
    assert_eq!((second.revision, entity_urn(&second)), (d.revision, "mm://fraud/dataset/d"));
    let e = put_entity(&ch, "mm://fraud/dataset/e").await;
    assert_eq!(next_change(&mut resumed).await.revision, e.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_filters_by_change_kind_tenant_and_entity_kind() {
    let node = Node::start().await;
    let ch = node.alice().await;
    create_tenant(&ch, "fraud").await;
    create_tenant(&ch, "risk").await;
    put_entity(&ch, "mm://fraud/dataset/a").await;
    put_entity(&ch, "mm://risk/model/m").await;
    let last = put_entity(&ch, "mm://fraud/model/m").await.revision;

    let mut tenants = watch(
        &node,
        v1::WatchRequest { from_revision: Some(0), changes: vec![v1::ChangeKind::Tenant as i32], ..Default::default() },
    )
    .await;
    for name in ["fraud", "risk"] {
        let event = next_change(&mut tenants).await;
        match event.payload {
            Some(Payload::TenantInfo(t)) => assert_eq!((t.name.as_str(), t.shard_group.as_str()), (name, SHARD)),
            other => panic!("payload {other:?}"),
        }
    }

    let mut models = watch(
        &node,
        v1::WatchRequest {
            from_revision: Some(0),
            tenants: vec!["fraud".into()],
            kinds: vec!["model".into()],
            ..Default::default()
        },
    )
    .await;
    let only = next_change(&mut models).await;
    assert_eq!((only.revision, entity_urn(&only)), (last, "mm://fraud/model/m"));
    // Then progress marks only: nothing else matches.
    let idle = tokio::time::timeout(Duration::from_millis(300), next_change(&mut models)).await;
    assert!(idle.is_err(), "unexpected event {idle:?}");

    let bad =
        WatchServiceClient::new(ch.clone()).watch(v1::WatchRequest { changes: vec![99], ..Default::default() }).await;
    assert_refused(bad, tonic::Code::InvalidArgument, "changes[0]");
}
