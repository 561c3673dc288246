//! LineageService and SearchService over real mTLS.

mod common;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_tls::Role;
use tonic::Code;

fn edge(from: &str, kind: &str, to: &str) -> v1::EdgeSpec {
    v1::EdgeSpec { from_urn: from.into(), to_urn: to.into(), kind: kind.into(), ..Default::default() }
}

const RAW: &str = "mm://fraud/dataset/raw";
const RUN: &str = "mm://fraud/run/train-1";
const MODEL: &str = "mm://fraud/model/scorer";
const DEPLOY: &str = "mm://fraud/deployment/prod";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_are_written_all_or_nothing_and_expanded() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut lineage = LineageServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    for urn in [RAW, RUN, MODEL, DEPLOY] {
        put_entity(&ch, urn).await;
    }

    // One bad edge (an unknown local entity) refuses the whole batch.
    let refused = lineage
        .add_edges(v1::AddEdgesRequest {
            edges: vec![edge(RAW, "consumed", RUN), edge(RUN, "produced", "mm://fraud/model/missing")],
            ..Default::default()
        })
        .await
        .expect_err("an edge to a missing entity");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let none = lineage
        .get_edges(v1::GetEdgesRequest { urns: vec![RUN.into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(none.edges.is_empty(), "a refused batch wrote {:?}", none.edges);
    let malformed = lineage
        .add_edges(v1::AddEdgesRequest { edges: vec![edge(RAW, "consumed", "mm://fraud/run")], ..Default::default() })
        .await;
    assert_refused(malformed, Code::InvalidArgument, "edges[0].to_urn");

    let added = lineage
        .add_edges(v1::AddEdgesRequest {
            edges: vec![edge(RAW, "consumed", RUN), edge(RUN, "produced", MODEL), edge(MODEL, "deployed", DEPLOY)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.edges.len(), 3);
    let first = &added.edges[0];
    assert_eq!((first.from_urn.as_str(), first.to_urn.as_str(), first.kind.as_str()), (RAW, RUN, "consumed"));
    assert_eq!((first.from_version, first.revision), (Some(1), added.revision));
    assert_eq!(first.created_by, node.principal(Role::Client, "alice"));
    assert_eq!(first.tenant, "fraud");

    let out_of_run = lineage
        .get_edges(v1::GetEdgesRequest {
            urns: vec![RUN.into()],
            direction: v1::Direction::Downstream as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out_of_run.edges.iter().map(|e| e.to_urn.as_str()).collect::<Vec<_>>(), [MODEL]);

    let all = lineage
        .expand(v1::ExpandRequest {
            urns: vec![RAW.into()],
            direction: v1::Direction::Downstream as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let nodes: Vec<(&str, u32)> = all.nodes.iter().map(|n| (n.urn.as_str(), n.depth)).collect();
    assert_eq!(nodes, [(RAW, 0), (RUN, 1), (MODEL, 2), (DEPLOY, 3)]);
    assert_eq!(all.edges.len(), 3);
    assert!(!all.partial, "{:?}", all.partial_reasons);

    let cut = lineage
        .expand(v1::ExpandRequest {
            urns: vec![RAW.into()],
            direction: v1::Direction::Downstream as i32,
            max_nodes: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cut.nodes.len(), 2);
    assert!(cut.partial);
    assert_eq!(cut.partial_reasons[0].code, "MAX_NODES");

    // An edge into another tenant leaves a remote frontier.
    lineage
        .add_edges(v1::AddEdgesRequest {
            tenant: "fraud".into(),
            edges: vec![edge("mm://growth/dataset/events", "consumed", RUN)],
            ..Default::default()
        })
        .await
        .unwrap();
    let up = lineage
        .expand(v1::ExpandRequest {
            urns: vec![MODEL.into()],
            direction: v1::Direction::Upstream as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.remote_frontier, ["mm://growth/dataset/events"]);
    assert!(up.partial && up.partial_reasons.iter().any(|r| r.code == "REMOTE_FRONTIER"), "{up:?}");

    // A storing tenant that the ownership rule does not give is refused.
    let wrong_owner = lineage
        .add_edges(v1::AddEdgesRequest {
            tenant: "growth".into(),
            edges: vec![edge(RAW, "consumed", RUN)],
            ..Default::default()
        })
        .await;
    assert_refused(wrong_owner, Code::InvalidArgument, "tenant");

    let removed = lineage
        .remove_edges(v1::RemoveEdgesRequest {
            edges: vec![edge(MODEL, "deployed", DEPLOY), edge(RAW, "derived_from", MODEL)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.removed, 1);
    // The removal is visible now, and as of before it the edge is still there.
    let now = lineage
        .get_edges(v1::GetEdgesRequest { urns: vec![DEPLOY.into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(now.edges.is_empty());
    let before = lineage
        .get_edges(v1::GetEdgesRequest {
            urns: vec![DEPLOY.into()],
            as_of: Some(v1::AsOf { point: Some(v1::as_of::Point::Revision(removed.revision - 1)) }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.edges.len(), 1);
}

/// An expansion's nodes carry their entity's status and tombstone flag at the read point: the
/// current ones (kept in memory beside the graph) and, as of an earlier revision, the ones then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expanded_nodes_carry_their_details_at_the_read_point() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    let mut lineage = LineageServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    let with_status =
        |urn: &str, status: &str| v1::PutEntityRequest { urn: urn.into(), status: status.into(), ..Default::default() };
    catalog.put_entity(with_status(RAW, "fresh")).await.unwrap();
    catalog.put_entity(with_status(RUN, "running")).await.unwrap();
    let linked = lineage
        .add_edges(v1::AddEdgesRequest { edges: vec![edge(RAW, "consumed", RUN)], ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .revision;
    catalog.put_entity(with_status(RUN, "succeeded")).await.unwrap();
    catalog.delete_entity(v1::DeleteEntityRequest { urn: RAW.into(), ..Default::default() }).await.unwrap();

    let expand = |as_of: Option<u64>| v1::ExpandRequest {
        urns: vec![RUN.into()],
        direction: v1::Direction::Upstream as i32,
        as_of: as_of.map(|r| v1::AsOf { point: Some(v1::as_of::Point::Revision(r)) }),
        ..Default::default()
    };
    let details = |reply: v1::ExpandReply| -> Vec<(String, String, bool)> {
        reply.nodes.into_iter().map(|n| (n.urn, n.status, n.deleted)).collect()
    };
    let now = details(lineage.expand(expand(None)).await.unwrap().into_inner());
    assert_eq!(now, [(RUN.to_owned(), "succeeded".to_owned(), false), (RAW.to_owned(), "fresh".to_owned(), true)]);
    let then = details(lineage.expand(expand(Some(linked))).await.unwrap().into_inner());
    assert_eq!(then, [(RUN.to_owned(), "running".to_owned(), false), (RAW.to_owned(), "fresh".to_owned(), false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_filters_and_pages() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    let mut search = SearchServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    create_tenant(&ch, "risk").await;
    let described = |urn: &str, text: &str| v1::PutEntityRequest { description: text.into(), ..put(urn, "{}") };
    let items = vec![
        described("mm://fraud/dataset/tx", "card transactions for fraud scoring"),
        described("mm://fraud/model/scorer", "fraud scorer trained nightly"),
        described("mm://fraud/run/r1", "fraud training run"),
        described("mm://fraud/dataset/other", "unrelated marketing table"),
    ];
    catalog.put_entities(v1::PutEntitiesRequest { entities: items, ..Default::default() }).await.unwrap();
    catalog.put_entity(described("mm://risk/model/limits", "credit limits, fraud aware")).await.unwrap();

    let hits = search.search(v1::SearchRequest { query: "fraud".into(), ..Default::default() }).await.unwrap();
    let hits = hits.into_inner().hits;
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    assert!(hits.iter().all(|h| !h.snippet.contains('«')), "plain-text snippets");

    // Several kinds and tenants: filtered hit by hit, and paged without loss.
    let scoped = |token: String| v1::SearchRequest {
        query: "fraud".into(),
        kinds: vec!["model".into(), "dataset".into()],
        tenants: vec!["fraud".into(), "risk".into()],
        page_size: 1,
        page_token: token,
        ..Default::default()
    };
    let mut urns = Vec::new();
    let mut token = String::new();
    loop {
        let page = search.search(scoped(token)).await.unwrap().into_inner();
        urns.extend(page.hits.iter().map(|h| h.entity.as_ref().unwrap().urn.clone()));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    urns.sort();
    assert_eq!(urns, ["mm://fraud/dataset/tx", "mm://fraud/model/scorer", "mm://risk/model/limits"]);

    // An empty query lists what the filters allow.
    let listed = search
        .search(v1::SearchRequest { tenants: vec!["risk".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.hits.len(), 1);
    let bad_kind =
        search.search(v1::SearchRequest { query: "x".into(), kinds: vec!["table".into()], ..Default::default() });
    assert_refused(bad_kind.await, Code::InvalidArgument, "kinds[0]");
}
