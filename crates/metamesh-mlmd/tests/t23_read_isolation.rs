//! Tenants sharing one file never see each other; dispatch of unknown RPCs and bad requests;
//! the reader's pooled read-only connections.

mod common;

use common::*;

#[test]
fn tenants_never_see_each_other() {
    let db = Db::new();
    with_edges(&db, T);
    with_lineage(&db, T2);
    let other = db.artifact_type(
        T2,
        pb::ArtifactType { name: Some("Only2".into()), external_id: Some("o2".into()), ..Default::default() },
    );
    db.artifacts(
        T2,
        50,
        vec![pb::Artifact {
            type_id: Some(other),
            uri: Some("u1".into()),
            external_id: Some("zzz".into()),
            ..Default::default()
        }],
    );

    let r: pb::GetArtifactsResponse = db.get(T, "GetArtifacts", pb::GetArtifactsRequest::default());
    assert_eq!(r.artifacts.len(), 250);
    let r: pb::GetArtifactsResponse = db.get(T2, "GetArtifacts", pb::GetArtifactsRequest::default());
    assert_eq!(r.artifacts.len(), 8);
    assert!(r.artifacts.iter().all(|a| a.name.as_deref().is_none_or(|n| n.len() == 2)));
    let r = list(&db, T2, opts(Some(100)));
    assert_eq!((r.artifacts.len(), r.next_page_token), (8, None));

    // Same ids, other rows.
    let r: pb::GetArtifactsByIdResponse = db.get(
        T2,
        "GetArtifactsByID",
        pb::GetArtifactsByIdRequest { artifact_ids: vec![1, 9, 200], ..Default::default() },
    );
    assert_eq!(ids(&r.artifacts), vec![1]);
    assert_eq!(r.artifacts[0].name.as_deref(), Some("a1"));
    let r: pb::GetArtifactsByUriResponse =
        db.get(T2, "GetArtifactsByURI", pb::GetArtifactsByUriRequest { uris: vec!["u1".into()], ..Default::default() });
    assert_eq!(ids(&r.artifacts), vec![1, 8]);
    let r: pb::GetArtifactsByExternalIdsResponse = db.get(
        T,
        "GetArtifactsByExternalIds",
        pb::GetArtifactsByExternalIdsRequest { external_ids: vec!["zzz".into()], ..Default::default() },
    );
    assert!(r.artifacts.is_empty());
    let r: pb::GetArtifactTypesByExternalIdsResponse = db.get(
        T,
        "GetArtifactTypesByExternalIds",
        pb::GetArtifactTypesByExternalIdsRequest {
            external_ids: vec!["o2".into(), "atx".into()],
            ..Default::default()
        },
    );
    assert!(r.artifact_types.is_empty());
    assert_eq!(
        db.code(
            T,
            "GetArtifactType",
            pb::GetArtifactTypeRequest { type_name: Some("Only2".into()), ..Default::default() }
        ),
        Code::NotFound
    );
    let r: pb::GetArtifactTypesResponse = db.get(T2, "GetArtifactTypes", pb::GetArtifactTypesRequest::default());
    assert_eq!(r.artifact_types.len(), 2);
    let r: pb::GetArtifactsByTypeResponse = db.get(
        T2,
        "GetArtifactsByType",
        pb::GetArtifactsByTypeRequest { type_name: Some("A".into()), ..Default::default() },
    );
    assert_eq!(r.artifacts.len(), 7);
    let r: pb::GetEventsByExecutionIDsResponse = db.get(
        T2,
        "GetEventsByExecutionIDs",
        pb::GetEventsByExecutionIDsRequest { execution_ids: vec![1, 2, 3, 4, 5], ..Default::default() },
    );
    assert_eq!(r.events.len(), 8);
    let r: pb::GetContextsByArtifactResponse = db.get(
        T2,
        "GetContextsByArtifact",
        pb::GetContextsByArtifactRequest { artifact_id: Some(7), ..Default::default() },
    );
    assert_eq!(ids(&r.contexts), vec![3]);
    let r: pb::GetParentContextsByContextResponse = db.get(
        T2,
        "GetParentContextsByContext",
        pb::GetParentContextsByContextRequest { context_id: Some(2), ..Default::default() },
    );
    assert!(r.contexts.is_empty());
    let r: pb::GetArtifactsByContextResponse = db.get(
        T2,
        "GetArtifactsByContext",
        pb::GetArtifactsByContextRequest { context_id: Some(1), ..Default::default() },
    );
    assert_eq!(ids(&r.artifacts), vec![1, 2]);
    let g = subgraph(&db, T2, hops(from_artifacts("id > 0"), 100), &[]);
    assert_eq!(shape(&g).a, (1..=8).collect::<Vec<_>>());
    assert_eq!(shape(&g).types, (6, 6, 1));
    assert_eq!(db.code("nobody", "GetLineageSubgraph", sub_req(from_artifacts("id > 0"), &[])), Code::NotFound);
    let r: pb::GetArtifactsResponse =
        db.get("nobody", "GetArtifacts", pb::GetArtifactsRequest { options: Some(opts(None)), ..Default::default() });
    assert!(r.artifacts.is_empty() && r.next_page_token.is_none());
}

#[test]
fn dispatch_and_bad_requests() {
    let db = Db::new();
    assert_eq!(answer(&db.conn, T, "GetFoo", &[]).map_err(|e| e.code), Err(Code::Unimplemented));
    assert_eq!(answer(&db.conn, T, "PutArtifacts", &[]).map_err(|e| e.code), Err(Code::Unimplemented));
    assert_eq!(answer(&db.conn, T, "GetArtifacts", b"\xff\xff").map_err(|e| e.code), Err(Code::InvalidArgument));
    assert!(is_read("GetArtifactsByID") && is_read("GetLineageSubgraph") && is_read("GetParentContextsByContexts"));
    assert!(!is_read("PutArtifacts") && !is_read("GetFoo"));
    // Empty stores answer empty lists.
    let r: pb::GetArtifactTypesResponse = db.get(T, "GetArtifactTypes", pb::GetArtifactTypesRequest::default());
    assert!(r.artifact_types.is_empty());
    let r: pb::GetContextsResponse = db.get(T, "GetContexts", pb::GetContextsRequest::default());
    assert!(r.contexts.is_empty());
}

#[test]
fn reader_reuses_read_only_connections() {
    let db = Db::new();
    with_lineage(&db, T);
    let reader = Reader::new(db.path.clone());
    for _ in 0..3 {
        let out = reader.call(T, "GetArtifacts", &pb::GetArtifactsRequest::default().encode_to_vec()).expect("read");
        let r = pb::GetArtifactsResponse::decode(out.as_slice()).expect("decode");
        assert_eq!(r.artifacts.len(), 7);
    }
    // Writes arrive between calls: the next call sees them.
    db.artifacts(T, 300, vec![pb::Artifact { type_id: Some(1), ..Default::default() }]);
    let out = reader
        .call(
            T,
            "GetArtifactsByID",
            &pb::GetArtifactsByIdRequest { artifact_ids: vec![8], ..Default::default() }.encode_to_vec(),
        )
        .expect("read");
    assert_eq!(pb::GetArtifactsByIdResponse::decode(out.as_slice()).expect("decode").artifacts.len(), 1);
    assert_eq!(reader.call(T, "PutArtifacts", &[]).map_err(|e| e.code), Err(Code::Unimplemented));
    let err = reader.call(T, "GetArtifacts", b"\xff").map_err(|e| e.code);
    assert_eq!(err, Err(Code::InvalidArgument));
    // A missing file is an internal error, not a panic.
    let missing = Reader::new(db.path.with_file_name("missing.db"));
    assert_eq!(missing.call(T, "GetArtifacts", &[]).map_err(|e| e.code), Err(Code::Internal));
}
