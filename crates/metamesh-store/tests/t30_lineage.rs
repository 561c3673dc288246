//! Lineage: adding and removing edges, endpoint and cycle checks, cross-tenant ends, frontier
//! queries and multi-hop expansion.

mod common;

use std::collections::BTreeSet;

use common::*;
use metamesh_core::{AsOf, Command, CommandError, Direction, Edge, EdgeKind, EntityUrn, Kind};
use metamesh_store::ExpandRequest;

use EdgeKind::*;

const RAW: &str = "mm://acme/dataset/raw";
const CLEAN: &str = "mm://acme/dataset/clean";
const RUN: &str = "mm://acme/run/etl-1";
const TRAIN: &str = "mm://acme/run/train-1";
const MODEL: &str = "mm://acme/model/churn";
const DEPLOY: &str = "mm://acme/deployment/prod";
/// A node of a tenant this shard does not own.
const REMOTE: &str = "mm://other/dataset/signups";

async fn with_entities(urns: &[&str]) -> TestStore {
    let mut s = TestStore::with_tenant().await;
    for u in urns {
        s.ok(put(u)).await;
    }
    s
}

/// An edge as `from -kind-> to`, with versions when stored.
fn show(e: &Edge) -> String {
    format!("{} -{}-> {}", e.from, e.kind, e.to)
}

fn shown(edges: &[Edge]) -> Vec<String> {
    edges.iter().map(show).collect()
}

fn urns(list: &[&str]) -> Vec<EntityUrn> {
    list.iter().map(|u| eu(u)).collect()
}

/// A pipeline: RAW -consumed-> RUN -produced-> CLEAN -consumed-> TRAIN -produced-> MODEL
/// -deployed-> DEPLOY, plus CLEAN -trained_on-> MODEL and REMOTE -consumed-> RUN.
async fn pipeline() -> TestStore {
    let mut s = with_entities(&[RAW, CLEAN, RUN, TRAIN, MODEL, DEPLOY]).await;
    for (from, kind, to) in [
        (RAW, Consumed, RUN),
        (REMOTE, Consumed, RUN),
        (RUN, Produced, CLEAN),
        (CLEAN, Consumed, TRAIN),
        (TRAIN, Produced, MODEL),
        (CLEAN, TrainedOn, MODEL),
        (MODEL, Deployed, DEPLOY),
    ] {
        assert!(edge_changed(s.ok(add_edge(from, kind, to)).await));
    }
    s
}

#[tokio::test]
async fn add_edge_pins_versions_and_is_idempotent() {
    let mut s = with_entities(&[RAW, RUN]).await;
    s.ok(put(RAW)).await; // RAW is at version 2
    let t = s.now_ms;
    assert!(edge_changed(s.ok(add_edge(RAW, Consumed, RUN)).await));
    let rev = s.rev;
    let edges = s.edges_of(&urns(&[RUN]), Direction::Upstream, &[], None).await.unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(show(&edges[0]), format!("{RAW}@2 -consumed-> {RUN}@1"), "unversioned local ends pin the current");
    assert_eq!((edges[0].revision, edges[0].created_at_ms, edges[0].created_by.as_str()), (rev, t, PRINCIPAL));

    // The same edge again changes nothing.
    let before = s.state_without_revisions().await;
    assert!(!edge_changed(s.ok(add_edge(RAW, Consumed, RUN)).await));
    assert!(!edge_changed(s.ok(add_edge(&format!("{RAW}@2"), Consumed, RUN)).await));
    assert_eq!(s.state_without_revisions().await, before);

    // An explicit older version is a different edge; a future version does not exist.
    assert!(edge_changed(s.ok(add_edge(&format!("{RAW}@1"), Consumed, RUN)).await));
    let e = s.refused(add_edge(&format!("{RAW}@3"), Consumed, RUN)).await;
    assert_eq!(e, CommandError::NotFound(format!("{RAW}@3")));
    // After RAW moves on, the unversioned edge pins the new version: a new edge.
    s.ok(put(RAW)).await;
    assert!(edge_changed(s.ok(add_edge(RAW, Consumed, RUN)).await));
    let all = s.edges_of(&urns(&[RAW]), Direction::Downstream, &[], None).await.unwrap();
    let mut versions: Vec<Option<u64>> = all.iter().map(|e| e.from.version).collect();
    versions.sort();
    assert_eq!(versions, vec![Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn column_edges_keep_columns_and_transformation() {
    let mut s = with_entities(&[RAW, CLEAN]).await;
    let mut spec = edge_spec(RAW, Column, CLEAN);
    spec.from_column = Some("amount".into());
    spec.to_column = Some("amount_7d".into());
    spec.transformation = Some("sum(amount) over 7 days".into());
    assert!(edge_changed(s.ok(Command::AddEdge(spec.clone())).await));
    let mut other = spec.clone();
    other.to_column = Some("amount_30d".into());
    assert!(edge_changed(s.ok(Command::AddEdge(other)).await), "another column pair is another edge");
    assert!(!edge_changed(s.ok(Command::AddEdge(spec)).await));
    let edges = s.edges_of(&urns(&[CLEAN]), Direction::Upstream, &[Column], None).await.unwrap();
    let cols: Vec<(Option<&str>, Option<&str>, Option<&str>)> =
        edges.iter().map(|e| (e.from_column.as_deref(), e.to_column.as_deref(), e.transformation.as_deref())).collect();
    assert_eq!(
        cols,
        vec![
            (Some("amount"), Some("amount_7d"), Some("sum(amount) over 7 days")),
            (Some("amount"), Some("amount_30d"), Some("sum(amount) over 7 days"))
        ]
    );
    let e = s.refused(add_edge(RAW, Column, CLEAN)).await;
    assert_eq!(e.field(), Some("from_column"), "{e}");
}

#[tokio::test]
async fn cross_tenant_ends() {
    let mut s = with_entities(&[RUN, CLEAN]).await;
    // A remote upstream end is accepted as is, without a version.
    assert!(edge_changed(s.ok(add_edge(REMOTE, Consumed, RUN)).await));
    let edges = s.edges_of(&urns(&[RUN]), Direction::Upstream, &[], None).await.unwrap();
    assert_eq!(shown(&edges), vec![format!("{REMOTE} -consumed-> {RUN}@1")]);
    // And is a node one can ask about.
    assert_eq!(s.edges_of(&urns(&[REMOTE]), Direction::Downstream, &[], None).await.unwrap(), edges);
    // A remote end with a version keeps it.
    assert!(edge_changed(s.ok(add_edge(&format!("{REMOTE}@4"), DerivedFrom, CLEAN)).await));
    let up = s.edges_of(&urns(&[CLEAN]), Direction::Upstream, &[], None).await.unwrap();
    assert_eq!(shown(&up), vec![format!("{REMOTE}@4 -derived_from-> {CLEAN}@1")]);

    // The edge belongs to its downstream (or run) tenant: one this shard does not own is refused.
    let e = s.refused(add_edge(CLEAN, DerivedFrom, "mm://other/dataset/copy")).await;
    assert_eq!(e, CommandError::UnknownTenant(tenant("other")));
    // A local end that does not exist, or is deleted, is refused.
    let e = s.refused(add_edge("mm://acme/dataset/ghost", Consumed, RUN)).await;
    assert_eq!(e, CommandError::NotFound("mm://acme/dataset/ghost".into()));
    s.ok(put(RAW)).await;
    s.ok(delete(RAW)).await;
    let e = s.refused(add_edge(RAW, Consumed, RUN)).await;
    assert_eq!(e, CommandError::Deleted(RAW.into()));
    // Another tenant owned by this shard is local: its ends must exist.
    s.ok(create_tenant("beta")).await;
    let e = s.refused(add_edge("mm://beta/dataset/x", Consumed, RUN)).await;
    assert_eq!(e, CommandError::NotFound("mm://beta/dataset/x".into()));
}

#[tokio::test]
async fn endpoint_kinds_are_checked() {
    let mut s = with_entities(&[RAW, RUN, TRAIN, MODEL, DEPLOY]).await;
    let cases = [
        (RUN, Consumed, TRAIN, "from", Kind::Run),
        (RAW, Produced, MODEL, "from", Kind::Dataset),
        (MODEL, TrainedOn, MODEL, "from", Kind::Model),
        (RAW, TrainedOn, DEPLOY, "to", Kind::Deployment),
        (MODEL, Deployed, RUN, "to", Kind::Run),
        (RAW, FeatureOf, MODEL, "from", Kind::Dataset),
        (DEPLOY, DerivedFrom, RAW, "from", Kind::Deployment),
    ];
    for (from, kind, to, end, found) in cases {
        let e = s.refused(add_edge(from, kind, to)).await;
        match &e {
            CommandError::EdgeEndpoint { kind: k, end: en, found: f, .. } => {
                assert_eq!((*k, en.as_str(), *f), (kind, end, found), "{e}");
            }
            other => panic!("{from} {kind} {to}: {other:?}"),
        }
        assert!(e.to_string().contains(found.as_str()), "{e}");
    }
}

#[tokio::test]
async fn acyclic_kinds_refuse_cycles_naming_the_path() {
    let (a, b, c) = ("mm://acme/dataset/a", "mm://acme/dataset/b", "mm://acme/dataset/c");
    let mut s = with_entities(&[a, b, c]).await;
    s.ok(add_edge(a, DerivedFrom, b)).await;
    s.ok(add_edge(b, DerivedFrom, c)).await;
    let e = s.refused(add_edge(c, DerivedFrom, a)).await;
    match &e {
        CommandError::Cycle { kind, path } => {
            assert_eq!(*kind, DerivedFrom);
            assert_eq!(path, &vec![c.to_string(), a.to_string(), b.to_string(), c.to_string()]);
        }
        other => panic!("{other:?}"),
    }
    for u in [a, b, c] {
        assert!(e.to_string().contains(u), "{e}");
    }
    // The cycle check is per kind, and ignores versions: a newer version of `a` is the same node.
    s.ok(put(a)).await;
    assert!(matches!(s.refused(add_edge(c, DerivedFrom, a)).await, CommandError::Cycle { .. }));
    assert!(matches!(s.refused(add_edge(a, DerivedFrom, a)).await, CommandError::Cycle { .. }));
    let mut col = edge_spec(c, Column, a);
    col.from_column = Some("x".into());
    col.to_column = Some("y".into());
    s.ok(Command::AddEdge(col)).await;

    // feature_of through a feature: f -> d is fine, no cycle possible back.
    let f = "mm://acme/feature/f";
    s.ok(put(f)).await;
    s.ok(add_edge(f, FeatureOf, a)).await;

    // Once an edge on the path is removed, the reverse edge is allowed.
    assert!(edge_changed(s.ok(remove_edge(b, DerivedFrom, c)).await));
    assert!(edge_changed(s.ok(add_edge(c, DerivedFrom, a)).await));
}

#[tokio::test]
async fn consumed_and_produced_may_loop() {
    let mut s = with_entities(&[RAW, RUN]).await;
    // A job that appends to the table it reads.
    assert!(edge_changed(s.ok(add_edge(RAW, Consumed, RUN)).await));
    assert!(edge_changed(s.ok(add_edge(RUN, Produced, RAW)).await));
    let both = s.edges_of(&urns(&[RAW]), Direction::Both, &[], None).await.unwrap();
    assert_eq!(both.len(), 2);
}

#[tokio::test]
async fn remove_edge_tombstones_and_as_of_still_sees_it() {
    let mut s = with_entities(&[RAW, RUN]).await;
    s.ok(add_edge(RAW, Consumed, RUN)).await;
    let rev_added = s.rev;
    let time_added = s.now_ms - s.tick_ms;
    s.ok(put(RAW)).await;
    s.ok(add_edge(RAW, Consumed, RUN)).await; // RAW@2 -> RUN@1
    let rev_both = s.rev;

    // Removing with a versioned end removes just that edge.
    assert!(edge_changed(s.ok(remove_edge(&format!("{RAW}@1"), Consumed, RUN)).await));
    let now = s.edges_of(&urns(&[RUN]), Direction::Upstream, &[], None).await.unwrap();
    assert_eq!(shown(&now), vec![format!("{RAW}@2 -consumed-> {RUN}@1")]);
    // Without versions, any version matches.
    assert!(edge_changed(s.ok(remove_edge(RAW, Consumed, RUN)).await));
    let removed_rev = s.rev;
    assert!(s.edges_of(&urns(&[RUN]), Direction::Both, &[], None).await.unwrap().is_empty());
    let before = s.state_without_revisions().await;
    assert!(!edge_changed(s.ok(remove_edge(RAW, Consumed, RUN)).await), "already gone");
    assert_eq!(s.state_without_revisions().await, before);

    let at = |r: u64| Some(AsOf::Revision(r));
    assert_eq!(upstream(&s, RUN, at(rev_added - 1)).await, Vec::<String>::new());
    assert_eq!(upstream(&s, RUN, at(rev_added)).await, vec![format!("{RAW}@1 -consumed-> {RUN}@1")]);
    assert_eq!(upstream(&s, RUN, at(rev_both)).await.len(), 2);
    assert_eq!(upstream(&s, RUN, at(removed_rev - 1)).await.len(), 1);
    assert_eq!(upstream(&s, RUN, at(removed_rev)).await, Vec::<String>::new());
    assert_eq!(upstream(&s, RUN, Some(AsOf::TimeMs(time_added))).await.len(), 1);
    assert_eq!(upstream(&s, RUN, Some(AsOf::TimeMs(time_added - 1))).await, Vec::<String>::new());
    // Re-adding after removal makes a new live edge.
    assert!(edge_changed(s.ok(add_edge(RAW, Consumed, RUN)).await));
}

#[tokio::test]
async fn edges_of_a_frontier() {
    let s = pipeline().await;
    let q = |frontier: &[&str], dir, kinds: &[EdgeKind]| {
        let frontier = urns(frontier);
        let kinds = kinds.to_vec();
        let s = &s;
        async move {
            let edges = s.edges_of(&frontier, dir, &kinds, None).await.unwrap();
            let set: BTreeSet<String> =
                edges.iter().map(|e| format!("{}>{}", e.from.entity.name(), e.to.entity.name())).collect();
            assert_eq!(set.len(), edges.len(), "each edge once: {edges:?}");
            set.into_iter().collect::<Vec<_>>().join(" ")
        }
    };
    assert_eq!(q(&[RUN, MODEL], Direction::Upstream, &[]).await, "clean>churn raw>etl-1 signups>etl-1 train-1>churn");
    assert_eq!(q(&[RUN, MODEL], Direction::Downstream, &[]).await, "churn>prod etl-1>clean");
    assert_eq!(
        q(&[RUN, MODEL], Direction::Both, &[]).await,
        "churn>prod clean>churn etl-1>clean raw>etl-1 signups>etl-1 train-1>churn"
    );
    // An edge between two frontier nodes is returned once.
    assert_eq!(q(&[CLEAN, TRAIN, MODEL], Direction::Both, &[Consumed]).await, "clean>train-1");
    assert_eq!(q(&[CLEAN, MODEL], Direction::Both, &[TrainedOn, Deployed]).await, "churn>prod clean>churn");
    assert_eq!(q(&[RUN, MODEL], Direction::Upstream, &[Produced]).await, "train-1>churn");
    assert_eq!(q(&[REMOTE], Direction::Both, &[]).await, "signups>etl-1");
    assert_eq!(q(&["mm://acme/dataset/unknown"], Direction::Both, &[]).await, "");
    assert_eq!(q(&[], Direction::Both, &[]).await, "");
}

async fn upstream(s: &TestStore, urn: &str, as_of: Option<AsOf>) -> Vec<String> {
    shown(&s.edges_of(&[eu(urn)], Direction::Upstream, &[], as_of).await.unwrap())
}

fn expand_req(start: &[&str], direction: Direction, max_depth: u32, max_nodes: usize) -> ExpandRequest {
    ExpandRequest {
        start: urns(start),
        start_depths: vec![],
        direction,
        kinds: vec![],
        max_depth,
        max_nodes,
        as_of: None,
    }
}

#[tokio::test]
async fn expand_walks_hops_up_to_the_depth() {
    let s = pipeline().await;
    let names = |nodes: &[(EntityUrn, u32)]| -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = nodes.iter().map(|(u, d)| (u.name().to_string(), *d)).collect();
        v.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        v
    };
    let x = s.expand(&expand_req(&[DEPLOY], Direction::Upstream, 10, 100)).await.unwrap();
    assert_eq!(
        names(&x.nodes),
        vec![
            ("prod".into(), 0),
            ("churn".into(), 1),
            ("clean".into(), 2),
            ("train-1".into(), 2),
            ("etl-1".into(), 3),
            ("raw".into(), 4),
            ("signups".into(), 4),
        ]
    );
    assert_eq!(x.edges.len(), 7);
    assert!(!x.truncated);
    assert_eq!(x.remote_frontier, vec![eu(REMOTE)]);

    let x = s.expand(&expand_req(&[DEPLOY], Direction::Upstream, 2, 100)).await.unwrap();
    assert_eq!(names(&x.nodes).iter().map(|n| n.1).max(), Some(2));
    assert_eq!(x.nodes.len(), 4);
    assert!(!x.truncated && x.remote_frontier.is_empty());
    for e in &x.edges {
        assert!(x.nodes.iter().any(|(u, _)| *u == e.from.entity) && x.nodes.iter().any(|(u, _)| *u == e.to.entity));
    }

    let x = s.expand(&expand_req(&[RAW], Direction::Downstream, 10, 100)).await.unwrap();
    assert_eq!(x.nodes.len(), 6, "{:?}", x.nodes);
    assert!(x.remote_frontier.is_empty());
    // Kinds restrict the walk.
    let mut req = expand_req(&[MODEL], Direction::Upstream, 10, 100);
    req.kinds = vec![TrainedOn];
    let x = s.expand(&req).await.unwrap();
    assert_eq!(names(&x.nodes), vec![("churn".into(), 0), ("clean".into(), 1)]);
    // Depth 0 returns the start alone.
    let x = s.expand(&expand_req(&[MODEL], Direction::Both, 0, 100)).await.unwrap();
    assert_eq!((x.nodes.len(), x.edges.len()), (1, 0));

    // Starts at depths of their own (a router continuing a walk): depths count from the same
    // origin, a start keeps its depth even if reached later, and max_depth bounds the total.
    let mut req = expand_req(&[TRAIN, RAW], Direction::Downstream, 4, 100);
    req.start_depths = vec![1, 0];
    let x = s.expand(&req).await.unwrap();
    assert_eq!(
        names(&x.nodes),
        vec![
            ("raw".into(), 0),
            ("etl-1".into(), 1),
            ("train-1".into(), 1),
            ("churn".into(), 2),
            ("clean".into(), 2),
            ("prod".into(), 3),
        ]
    );
    let mut req = expand_req(&[TRAIN], Direction::Downstream, 3, 100);
    req.start_depths = vec![3];
    let x = s.expand(&req).await.unwrap();
    assert_eq!(names(&x.nodes), vec![("train-1".into(), 3)], "a start at max_depth is not expanded");
}

#[tokio::test]
async fn expand_truncates_at_max_nodes() {
    let s = pipeline().await;
    for max_nodes in 1..=6 {
        let x = s.expand(&expand_req(&[DEPLOY], Direction::Upstream, 10, max_nodes)).await.unwrap();
        assert_eq!(x.nodes.len(), max_nodes, "{max_nodes}");
        assert!(x.truncated, "{max_nodes}");
        let mut seen = BTreeSet::new();
        for (u, _) in &x.nodes {
            assert!(seen.insert(u.clone()), "node twice: {u}");
        }
        for e in &x.edges {
            assert!(seen.contains(&e.from.entity) && seen.contains(&e.to.entity), "{max_nodes}: dangling {}", show(e));
        }
        for r in &x.remote_frontier {
            assert!(seen.contains(r));
        }
    }
    let x = s.expand(&expand_req(&[DEPLOY], Direction::Upstream, 10, 7)).await.unwrap();
    assert!(!x.truncated);
}

#[tokio::test]
async fn expand_as_of() {
    let mut s = pipeline().await;
    let rev = s.rev;
    s.ok(remove_edge(CLEAN, TrainedOn, MODEL)).await;
    s.ok(remove_edge(TRAIN, Produced, MODEL)).await;
    let now = s.expand(&expand_req(&[MODEL], Direction::Upstream, 10, 100)).await.unwrap();
    assert_eq!(now.nodes.len(), 1);
    let mut req = expand_req(&[MODEL], Direction::Upstream, 10, 100);
    req.as_of = Some(AsOf::Revision(rev));
    let x = s.expand(&req).await.unwrap();
    assert_eq!(x.nodes.len(), 6);
    assert_eq!(x.remote_frontier, vec![eu(REMOTE)]);
}
