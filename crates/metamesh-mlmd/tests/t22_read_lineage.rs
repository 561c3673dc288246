//! `GetLineageSubgraph` against what MLMD 1.17.1 answered: hops, directions, read masks,
//! ending nodes, errors; and `GetLineageGraph`, which MLMD does not implement.

mod common;

use common::*;

#[test]
fn lineage_hops() {
    let db = Db::new();
    with_lineage(&db, T);
    let sub = |o| shape(&subgraph(&db, T, o, &[]));
    let a1 = || from_artifacts("id = 1");
    assert_eq!(sub(hops(a1(), 0)), s(&[1], &[], &[1], &[], &[(1, 1)], &[], 1));
    assert_eq!(sub(hops(a1(), 1)), s(&[1], &[1], &[1], &[(1, 1)], &[(1, 1)], &[(1, 1)], 1));
    let two = s(&[1, 2, 6], &[1], &[1], &[(1, 1), (2, 1), (6, 1)], &[(1, 1), (2, 1)], &[(1, 1)], 1);
    assert_eq!(sub(hops(a1(), 2)), two);
    let three = s(&[1, 2, 6], &[1, 2], &[1], &[(1, 1), (2, 1), (6, 1), (2, 2)], &[(1, 1), (2, 1)], &[(1, 1)], 1);
    assert_eq!(sub(hops(a1(), 3)), three);
    let four_ev = [(1, 1), (2, 1), (6, 1), (2, 2), (3, 2), (5, 2)];
    assert_eq!(sub(hops(a1(), 4)), s(&[1, 2, 3, 5, 6], &[1, 2], &[1], &four_ev, &[(1, 1), (2, 1)], &[(1, 1)], 1));
    let five_ev = [(1, 1), (2, 1), (6, 1), (2, 2), (3, 2), (5, 2), (3, 3)];
    let five = s(&[1, 2, 3, 5, 6], &[1, 2, 3], &[1, 2], &five_ev, &[(1, 1), (2, 1)], &[(1, 1), (3, 2)], 1);
    assert_eq!(sub(hops(a1(), 5)), five);
    let all_ev = [(1, 1), (2, 1), (6, 1), (2, 2), (3, 2), (5, 2), (3, 3), (4, 3)];
    let all = s(&[1, 2, 3, 4, 5, 6], &[1, 2, 3], &[1, 2], &all_ev, &[(1, 1), (2, 1), (4, 2)], &[(1, 1), (3, 2)], 1);
    for n in [6, 100, 1000] {
        assert_eq!(sub(hops(a1(), n)), all, "{n} hops");
    }
    assert_eq!(sub(a1()), all, "hops unset");

    // Every artifact as a start, no hop.
    let start_all = s(&[1, 2, 3, 4, 5, 6, 7], &[], &[1, 2, 3], &[], &[(1, 1), (2, 1), (4, 2), (7, 3)], &[], 1);
    assert_eq!(sub(hops(from_artifacts("id > 0"), 0)), start_all);

    // Nodes carry their id only; types as FindTypes gives them.
    let g = subgraph(&db, T, hops(a1(), 1), &[]);
    assert_eq!(g.artifacts, vec![pb::Artifact { id: Some(1), ..Default::default() }]);
    assert_eq!(g.contexts, vec![pb::Context { id: Some(1), ..Default::default() }]);
    assert_eq!(g.events[0].milliseconds_since_epoch, Some(1011));
    assert_eq!(g.events[0].r#type, Some(pb::event::Type::Input as i32));
    // The built-in types first (ids 1 to 4), then the fixture's.
    assert_eq!(g.artifact_types[0].name.as_deref(), Some("mlmd.Dataset"));
    let t = &g.artifact_types[4];
    assert_eq!((t.name.as_deref(), t.external_id.as_ref(), t.base_type), (Some("A"), None, None));
    assert!(g.parent_contexts.is_empty());
}

#[test]
fn lineage_directions() {
    let db = Db::new();
    with_lineage(&db, T);
    let sub = |o: pb::LineageSubgraphQueryOptions, d: Direction| {
        let mut o = hops(o, 2);
        o.direction = Some(d as i32);
        shape(&subgraph(&db, T, o, &[]))
    };
    let a3 = || from_artifacts("id = 3");
    let e2 = || from_executions("id = 2");
    use Direction::{Bidirectional, Downstream, Upstream};
    assert_eq!(sub(a3(), Upstream), s(&[2, 3, 5], &[2], &[1], &[(3, 2), (2, 2), (5, 2)], &[(2, 1)], &[], 1));
    assert_eq!(sub(e2(), Upstream), s(&[2, 5], &[1, 2], &[1], &[(2, 2), (5, 2), (2, 1)], &[(2, 1)], &[(1, 1)], 1));
    assert_eq!(sub(a3(), Downstream), s(&[3, 4], &[3], &[2], &[(3, 3), (4, 3)], &[(4, 2)], &[(3, 2)], 1));
    assert_eq!(sub(e2(), Downstream), s(&[3], &[2, 3], &[2], &[(3, 2), (3, 3)], &[], &[(3, 2)], 1));
    let bi_a3 =
        s(&[2, 3, 4, 5], &[2, 3], &[1, 2], &[(3, 2), (3, 3), (2, 2), (5, 2), (4, 3)], &[(2, 1), (4, 2)], &[(3, 2)], 1);
    assert_eq!(sub(a3(), Bidirectional), bi_a3);
    let bi_e2 =
        s(&[2, 3, 5], &[1, 2, 3], &[1, 2], &[(2, 2), (3, 2), (5, 2), (2, 1), (3, 3)], &[(2, 1)], &[(1, 1), (3, 2)], 1);
    assert_eq!(sub(e2(), Bidirectional), bi_e2);
    assert_eq!(sub(e2(), Direction::Unspecified), bi_e2);
}

#[test]
fn lineage_read_mask_and_ending_nodes() {
    let db = Db::new();
    with_lineage(&db, T);
    let a1 = |n| hops(from_artifacts("id = 1"), n);
    assert_eq!(shape(&subgraph(&db, T, a1(2), &["artifacts"])), s(&[1, 2, 6], &[], &[], &[], &[], &[], 0));
    assert_eq!(shape(&subgraph(&db, T, a1(2), &["bogus"])), s(&[], &[], &[], &[], &[], &[], 0));
    let g = subgraph(&db, T, a1(2), &["events", "contexts", "parent_contexts"]);
    assert_eq!(shape(&g), s(&[], &[], &[1], &[(1, 1), (2, 1), (6, 1)], &[], &[], 0));
    let g = subgraph(&db, T, a1(2), &["execution_types", "associations"]);
    assert_eq!((g.artifact_types.len(), g.execution_types.len(), g.associations.len()), (0, 6, 1));

    let ending = |f: &str, include: bool| {
        Some(EndingNodes { filter_query: Some(f.into()), include_ending_nodes: Some(include) })
    };
    let mut o = a1(10);
    o.ending_executions = ending("id = 2", false);
    assert_eq!(
        shape(&subgraph(&db, T, o.clone(), &[])),
        s(&[1, 2, 6], &[1], &[1], &[(1, 1), (2, 1), (6, 1)], &[(1, 1), (2, 1)], &[(1, 1)], 1)
    );
    o.ending_executions = ending("id = 2", true);
    let incl = s(&[1, 2, 6], &[1, 2], &[1], &[(1, 1), (2, 1), (6, 1), (2, 2)], &[(1, 1), (2, 1)], &[(1, 1)], 1);
    assert_eq!(shape(&subgraph(&db, T, o, &[])), incl);

    let mut o = a1(10);
    o.ending_artifacts = ending("id = 3", true);
    let ev = [(1, 1), (2, 1), (6, 1), (2, 2), (3, 2), (5, 2)];
    assert_eq!(
        shape(&subgraph(&db, T, o, &[])),
        s(&[1, 2, 3, 5, 6], &[1, 2], &[1], &ev, &[(1, 1), (2, 1)], &[(1, 1)], 1)
    );

    // A starting node can be an ending node.
    let mut o = hops(from_artifacts("id <= 2"), 10);
    o.ending_artifacts = ending("id = 1", false);
    let ev = [(2, 1), (2, 2), (6, 1), (3, 2), (5, 2), (3, 3), (4, 3)];
    assert_eq!(
        shape(&subgraph(&db, T, o.clone(), &[])),
        s(&[2, 3, 4, 5, 6], &[1, 2, 3], &[1, 2], &ev, &[(2, 1), (4, 2)], &[(1, 1), (3, 2)], 1)
    );
    o.ending_artifacts = ending("id = 1", true);
    let ev = [(2, 1), (2, 2), (1, 1), (6, 1), (3, 2), (5, 2), (3, 3), (4, 3)];
    let want = s(&[1, 2, 3, 4, 5, 6], &[1, 2, 3], &[1, 2], &ev, &[(1, 1), (2, 1), (4, 2)], &[(1, 1), (3, 2)], 1);
    assert_eq!(shape(&subgraph(&db, T, o, &[])), want);
    // An empty ending filter matches every node: nothing is left.
    let mut o = a1(10);
    o.ending_artifacts = ending("", false);
    assert_eq!(shape(&subgraph(&db, T, o, &[])), s(&[], &[], &[], &[], &[], &[], 1));

    // More links, then every execution as a start with e2 an ending node.
    db.links(T, &[(3, 1), (2, 2)], &[(3, 1), (2, 1)]);
    let mut o = hops(from_executions("id > 0"), 1);
    o.ending_executions = ending("id = 2", false);
    let attr = [(1, 1), (1, 3), (2, 1), (2, 2), (4, 2)];
    let assoc = [(1, 1), (1, 2), (1, 3), (3, 2)];
    let ev = [(1, 1), (2, 1), (6, 1), (3, 3), (4, 3)];
    assert_eq!(
        shape(&subgraph(&db, T, o.clone(), &[])),
        s(&[1, 2, 3, 4, 6], &[1, 3], &[1, 2, 3], &ev, &attr, &assoc, 1)
    );
    o.ending_executions = ending("id = 2", true);
    assert_eq!(shape(&subgraph(&db, T, o, &[])).e, vec![1, 2, 3]);
}

#[test]
fn lineage_errors_and_start_cap() {
    let db = Db::new();
    with_lineage(&db, T);
    let code = |o: pb::LineageSubgraphQueryOptions| db.code(T, "GetLineageSubgraph", sub_req(o, &[]));
    assert_eq!(code(hops(from_artifacts("id = 1"), -1)), Code::InvalidArgument);
    assert_eq!(code(hops(pb::LineageSubgraphQueryOptions::default(), 1)), Code::InvalidArgument);
    assert_eq!(code(hops(from_artifacts(""), 1)), Code::InvalidArgument);
    assert_eq!(code(hops(from_artifacts("id = 999"), 1)), Code::NotFound);
    assert_eq!(code(hops(from_artifacts("id === 1"), 1)), Code::InvalidArgument);
    let mut o = hops(from_artifacts("id = 1"), 10);
    o.ending_artifacts = Some(EndingNodes { filter_query: Some("id ==".into()), include_ending_nodes: None });
    assert_eq!(code(o), Code::InvalidArgument);
    assert_eq!(db.code(T, "GetLineageSubgraph", pb::GetLineageSubgraphRequest::default()), Code::InvalidArgument);

    // At most 101 starting nodes, the lowest ids.
    let at = 1;
    db.artifacts(T, 200, (0..150).map(|_| pb::Artifact { type_id: Some(at), ..Default::default() }).collect());
    let g = subgraph(&db, T, hops(from_artifacts("id > 3"), 0), &["artifacts"]);
    assert_eq!(ids(&g.artifacts), (4..=104).collect::<Vec<_>>());
    let mut o = hops(from_artifacts("id > 3"), 0);
    o.ending_artifacts = Some(EndingNodes { filter_query: Some("id > 50".into()), include_ending_nodes: None });
    let g = subgraph(&db, T, o, &["artifacts"]);
    assert_eq!(ids(&g.artifacts), (4..=50).collect::<Vec<_>>());
}

#[test]
fn lineage_graph_is_unimplemented() {
    let db = Db::new();
    assert_eq!(db.code(T, "GetLineageGraph", pb::GetLineageGraphRequest::default()), Code::Unimplemented);
}
