//! Events, contexts of nodes, nodes of contexts, and parent and child contexts, against what
//! MLMD 1.17.1 answered.

mod common;

use common::*;

#[test]
fn events_by_node() {
    let db = Db::new();
    with_edges(&db, T);
    let pairs = |events: &[pb::Event]| {
        events.iter().map(|e| (e.artifact_id.unwrap(), e.execution_id.unwrap())).collect::<Vec<_>>()
    };
    let r: pb::GetEventsByExecutionIDsResponse = db.get(
        T,
        "GetEventsByExecutionIDs",
        pb::GetEventsByExecutionIDsRequest { execution_ids: vec![2, 1, 999, 2], ..Default::default() },
    );
    assert_eq!(pairs(&r.events), vec![(3, 1), (1, 1), (7, 1), (2, 1), (7, 2), (9, 2), (1, 2)]);
    assert_eq!(r.events[1].path.as_ref().map(|p| p.steps.len()), Some(2));
    assert_eq!(r.events[1].milliseconds_since_epoch, Some(5));
    assert_eq!(r.events[5].milliseconds_since_epoch, Some(5));
    let r: pb::GetEventsByArtifactIDsResponse = db.get(
        T,
        "GetEventsByArtifactIDs",
        pb::GetEventsByArtifactIDsRequest { artifact_ids: vec![2, 1, 7], ..Default::default() },
    );
    assert_eq!(pairs(&r.events), vec![(1, 1), (1, 2), (2, 1), (7, 1), (7, 2)]);
    let r: pb::GetEventsByArtifactIDsResponse =
        db.get(T, "GetEventsByArtifactIDs", pb::GetEventsByArtifactIDsRequest::default());
    assert!(r.events.is_empty());
}

#[test]
fn contexts_and_their_nodes() {
    let db = Db::new();
    with_edges(&db, T);
    let by_art = |id: Option<i64>| pb::GetContextsByArtifactRequest { artifact_id: id, ..Default::default() };
    let r: pb::GetContextsByArtifactResponse = db.get(T, "GetContextsByArtifact", by_art(Some(7)));
    assert_eq!(ids(&r.contexts), vec![1, 2, 3, 4]);
    assert_eq!(r.contexts[0].r#type.as_deref(), Some("C"));
    for missing in [Some(999), Some(100), None] {
        assert_eq!(db.code(T, "GetContextsByArtifact", by_art(missing)), Code::NotFound);
    }
    let by_exec = |id: i64| pb::GetContextsByExecutionRequest { execution_id: Some(id), ..Default::default() };
    let r: pb::GetContextsByExecutionResponse = db.get(T, "GetContextsByExecution", by_exec(1));
    assert_eq!(ids(&r.contexts), vec![1, 3]);
    assert_eq!(db.code(T, "GetContextsByExecution", by_exec(5)), Code::NotFound);

    let arts = |c: i64, o: Option<pb::ListOperationOptions>| pb::GetArtifactsByContextRequest {
        context_id: Some(c),
        options: o,
        ..Default::default()
    };
    let r: pb::GetArtifactsByContextResponse = db.get(T, "GetArtifactsByContext", arts(1, None));
    assert_eq!((ids(&r.artifacts), r.next_page_token), (vec![1, 3, 7], None));
    let r: pb::GetArtifactsByContextResponse = db.get(T, "GetArtifactsByContext", arts(1, Some(opts(Some(2)))));
    assert_eq!((ids(&r.artifacts), r.next_page_token.as_deref()), (vec![1, 3], Some("CAMQAxoCCAI")));
    let r: pb::GetArtifactsByContextResponse = db.get(
        T,
        "GetArtifactsByContext",
        arts(1, Some(pb::ListOperationOptions { next_page_token: r.next_page_token, ..opts(Some(2)) })),
    );
    assert_eq!((ids(&r.artifacts), r.next_page_token), (vec![7], None));
    let o = pb::ListOperationOptions {
        max_result_size: Some(2),
        order_by_field: order(1, false),
        filter_query: Some("id != 3".into()),
        ..Default::default()
    };
    let r: pb::GetArtifactsByContextResponse = db.get(T, "GetArtifactsByContext", arts(1, Some(o)));
    assert_eq!((ids(&r.artifacts), r.next_page_token), (vec![7, 1], None));
    // A context without artifacts: empty, options unchecked; else they are checked.
    let bad = pb::ListOperationOptions {
        max_result_size: Some(0),
        filter_query: Some("bad bad".into()),
        ..Default::default()
    };
    for c in [999, 5] {
        let r: pb::GetArtifactsByContextResponse = db.get(T, "GetArtifactsByContext", arts(c, Some(bad.clone())));
        assert!(r.artifacts.is_empty() && r.next_page_token.is_none());
    }
    assert_eq!(db.code(T, "GetArtifactsByContext", arts(1, Some(bad))), Code::InvalidArgument);

    let execs = |c: i64, o: Option<pb::ListOperationOptions>| pb::GetExecutionsByContextRequest {
        context_id: Some(c),
        options: o,
        ..Default::default()
    };
    let r: pb::GetExecutionsByContextResponse = db.get(T, "GetExecutionsByContext", execs(3, None));
    assert_eq!((ids(&r.executions), r.next_page_token), (vec![1, 2], None));
    let r: pb::GetExecutionsByContextResponse = db.get(T, "GetExecutionsByContext", execs(3, Some(opts(Some(1)))));
    assert_eq!((ids(&r.executions), r.next_page_token.as_deref()), (vec![1], Some("CAEQARoCCAE")));
    let r: pb::GetExecutionsByContextResponse = db.get(T, "GetExecutionsByContext", execs(5, None));
    assert!(r.executions.is_empty());

    let r: pb::GetContextsByIdResponse =
        db.get(T, "GetContextsByID", pb::GetContextsByIdRequest { context_ids: vec![3, 1, 77], ..Default::default() });
    assert_eq!(ids(&r.contexts), vec![1, 3]);
    let r: pb::GetExecutionsByIdResponse = db.get(
        T,
        "GetExecutionsByID",
        pb::GetExecutionsByIdRequest { execution_ids: vec![3, 1, 77], ..Default::default() },
    );
    assert_eq!(ids(&r.executions), vec![1, 3]);
    let r: pb::GetContextByTypeAndNameResponse = db.get(
        T,
        "GetContextByTypeAndName",
        pb::GetContextByTypeAndNameRequest {
            type_name: Some("C".into()),
            context_name: Some("c3".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.context.and_then(|c| c.id), Some(4));
    let r: pb::GetExecutionByTypeAndNameResponse = db.get(
        T,
        "GetExecutionByTypeAndName",
        pb::GetExecutionByTypeAndNameRequest {
            type_name: Some("E".into()),
            execution_name: Some("e3".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.execution.and_then(|e| e.id), Some(4));
    let r: pb::GetContextsByTypeResponse = db.get(
        T,
        "GetContextsByType",
        pb::GetContextsByTypeRequest {
            type_name: Some("C".into()),
            options: Some(opts(Some(2))),
            ..Default::default()
        },
    );
    assert_eq!(ids(&r.contexts), vec![1, 2]);
    let r: pb::GetContextsResponse = db.get(T, "GetContexts", pb::GetContextsRequest::default());
    assert_eq!(ids(&r.contexts), vec![1, 2, 3, 4, 5]);
    let desc = pb::ListOperationOptions {
        order_by_field: Some(OrderByField { field: None, is_asc: Some(false) }),
        ..Default::default()
    };
    let r: pb::GetExecutionsResponse =
        db.get(T, "GetExecutions", pb::GetExecutionsRequest { options: Some(desc), ..Default::default() });
    assert_eq!((ids(&r.executions), r.next_page_token), (vec![5, 4, 3, 2, 1], None));
}

#[test]
fn parent_and_child_contexts() {
    let db = Db::new();
    with_edges(&db, T);
    let parents = |c: i64| -> Vec<i64> {
        let r: pb::GetParentContextsByContextResponse = db.get(
            T,
            "GetParentContextsByContext",
            pb::GetParentContextsByContextRequest { context_id: Some(c), ..Default::default() },
        );
        ids(&r.contexts)
    };
    let children = |c: i64| -> Vec<i64> {
        let r: pb::GetChildrenContextsByContextResponse = db.get(
            T,
            "GetChildrenContextsByContext",
            pb::GetChildrenContextsByContextRequest { context_id: Some(c), ..Default::default() },
        );
        ids(&r.contexts)
    };
    assert_eq!((parents(2), children(2)), (vec![1, 4], vec![5]));
    assert_eq!((parents(5), children(5)), (vec![2], vec![]));
    assert_eq!((parents(1), children(1)), (vec![], vec![2, 3]));
    assert_eq!((parents(999), children(0)), (vec![], vec![]));

    let r: pb::GetParentContextsByContextsResponse = db.get(
        T,
        "GetParentContextsByContexts",
        pb::GetParentContextsByContextsRequest { context_ids: vec![5, 2, 1, 999, 2], ..Default::default() },
    );
    let got: Vec<(i64, Vec<i64>)> = r.contexts.iter().map(|(k, v)| (*k, ids(&v.parent_contexts))).collect();
    assert_eq!(got, vec![(2, vec![1, 4]), (5, vec![2])]);
    let r: pb::GetChildrenContextsByContextsResponse = db.get(
        T,
        "GetChildrenContextsByContexts",
        pb::GetChildrenContextsByContextsRequest { context_ids: vec![1, 2, 3], ..Default::default() },
    );
    let got: Vec<(i64, Vec<i64>)> = r.contexts.iter().map(|(k, v)| (*k, ids(&v.children_contexts))).collect();
    assert_eq!(got, vec![(1, vec![2, 3]), (2, vec![5])]);
    assert_eq!(
        db.code(T, "GetParentContextsByContexts", pb::GetParentContextsByContextsRequest::default()),
        Code::InvalidArgument
    );
    assert_eq!(
        db.code(T, "GetChildrenContextsByContexts", pb::GetChildrenContextsByContextsRequest::default()),
        Code::InvalidArgument
    );
}
