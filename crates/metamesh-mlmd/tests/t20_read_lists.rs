//! Listing reads against what MLMD 1.17.1 answered: paging and its tokens, orders, filters,
//! lookups by type, name, id, uri and external id, and the types themselves.

mod common;

use common::*;

#[test]
fn lists_without_options_return_everything_by_id() {
    let db = Db::new();
    with_artifacts(&db, T);
    let r: pb::GetArtifactsResponse = db.get(T, "GetArtifacts", pb::GetArtifactsRequest::default());
    assert_eq!(ids(&r.artifacts), (1..=250).collect::<Vec<_>>());
    assert_eq!(r.next_page_token, None);
    let a = &r.artifacts[0];
    assert_eq!(a.r#type.as_deref(), Some("A"));
    assert_eq!(a.name.as_deref(), Some("a0"));
    assert_eq!(a.uri.as_deref(), Some("u0"));
    assert_eq!((a.create_time_since_epoch, a.last_update_time_since_epoch), (Some(1000), Some(1000)));
}

#[test]
fn paging_by_id_matches_mlmd_tokens() {
    let db = Db::new();
    with_artifacts(&db, T);
    // Default options: 20 per page; MLMD's token for it.
    let r = list(&db, T, pb::ListOperationOptions::default());
    assert_eq!(ids(&r.artifacts), (1..=20).collect::<Vec<_>>());
    assert_eq!(r.next_page_token.as_deref(), Some("CBQQFBoA"));

    let p = pages(&db, T, opts(Some(100)));
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].0, (1..=100).collect::<Vec<_>>());
    assert_eq!(p[0].1.as_deref(), Some("CGQQZBoCCGQ"));
    assert_eq!(p[1].0, (101..=200).collect::<Vec<_>>());
    assert_eq!(p[1].1.as_deref(), Some("CMgBEMgBGgIIZA"));
    assert_eq!(p[2].0, (201..=250).collect::<Vec<_>>());
    assert_eq!(p[2].1, None);

    // An empty order_by_field is kept in the token's options.
    let r = list(
        &db,
        T,
        pb::ListOperationOptions {
            max_result_size: Some(3),
            order_by_field: Some(OrderByField::default()),
            ..Default::default()
        },
    );
    assert_eq!(ids(&r.artifacts), vec![1, 2, 3]);
    assert_eq!(r.next_page_token.as_deref(), Some("CAMQAxoECAMSAA"));

    // ID descending with a filter, 70 per page.
    let o = pb::ListOperationOptions {
        max_result_size: Some(70),
        order_by_field: order(3, false),
        filter_query: Some("id > 3".into()),
        ..Default::default()
    };
    let p = pages(&db, T, o);
    let sizes: Vec<usize> = p.iter().map(|(ids, _)| ids.len()).collect();
    assert_eq!(sizes, vec![70, 70, 70, 37]);
    assert_eq!(p[0].0[..3], [250, 249, 248]);
    assert_eq!(p[0].1.as_deref(), Some("CLUBELUBGhAIRhIECAMQACIGaWQgPiAz"));
    assert_eq!(p[3].0.last(), Some(&4));
}

#[test]
fn page_size_cap_and_bounds() {
    let db = Db::new();
    with_artifacts(&db, T);
    let r = list(&db, T, opts(Some(101)));
    assert_eq!((r.artifacts.len(), r.next_page_token), (101, None));
    let r = list(&db, T, opts(Some(150)));
    assert_eq!((r.artifacts.len(), r.next_page_token), (101, None));
    for bad in [0, -1] {
        let req = pb::GetArtifactsRequest { options: Some(opts(Some(bad))), ..Default::default() };
        assert_eq!(db.code(T, "GetArtifacts", req), Code::InvalidArgument);
    }
    let req = pb::GetArtifactsRequest {
        options: Some(pb::ListOperationOptions { order_by_field: order(0, true), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(db.code(T, "GetArtifacts", req), Code::InvalidArgument);
}

#[test]
fn paging_by_create_time_both_directions() {
    let db = Db::new();
    with_artifacts(&db, T);
    let desc =
        pb::ListOperationOptions { max_result_size: Some(100), order_by_field: order(1, false), ..Default::default() };
    let p = pages(&db, T, desc);
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].0, (151..=250).rev().collect::<Vec<_>>());
    assert_eq!(p[1].0, (51..=150).rev().collect::<Vec<_>>());
    assert_eq!(p[2].0, (1..=50).rev().collect::<Vec<_>>());
    let t = decode_token(p[0].1.as_deref().unwrap());
    assert_eq!((t.id_offset, t.field_offset, t.listed_ids.len()), (Some(151), Some(2000), 0));
    let set = t.set_options.unwrap();
    assert_eq!((set.max_result_size, set.order_by_field, set.next_page_token), (Some(100), order(1, false), None));

    // Ascending, with ties inside one batch broken by id, across page boundaries.
    let asc =
        pb::ListOperationOptions { max_result_size: Some(30), order_by_field: order(1, true), ..Default::default() };
    let all: Vec<i64> = pages(&db, T, asc).into_iter().flat_map(|(ids, _)| ids).collect();
    assert_eq!(all, (1..=250).collect::<Vec<_>>());
}

#[test]
fn paging_by_update_time_with_equal_times() {
    let db = Db::new();
    let a = with_artifacts(&db, T);
    // Artifacts 5 and 3 updated later, in that order.
    for (id, at) in [(5, 9000), (3, 9500)] {
        let updated = pb::Artifact {
            id: Some(id),
            type_id: Some(a),
            uri: Some("moved".into()),
            properties: [("p".to_owned(), int(-id))].into(),
            ..Default::default()
        };
        db.artifacts(T, at, vec![updated]);
    }
    let asc =
        pb::ListOperationOptions { max_result_size: Some(100), order_by_field: order(2, true), ..Default::default() };
    let p = pages(&db, T, asc);
    let all: Vec<i64> = p.iter().flat_map(|(ids, _)| ids.clone()).collect();
    let mut expected: Vec<i64> = (1..=250).filter(|i| *i != 3 && *i != 5).collect();
    expected.extend([5, 3]);
    assert_eq!(all, expected);
    // The first page ends inside the run of time 2000 (ids 101..=200): the token lists the
    // page's trailing ids with that time, last first, and has no id_offset.
    let t = decode_token(p[0].1.as_deref().unwrap());
    assert_eq!(t.field_offset, Some(2000));
    assert_eq!(t.id_offset, None);
    assert_eq!(t.listed_ids, vec![102, 101]);

    let desc =
        pb::ListOperationOptions { max_result_size: Some(7), order_by_field: order(2, false), ..Default::default() };
    let all: Vec<i64> = pages(&db, T, desc).into_iter().flat_map(|(ids, _)| ids).collect();
    assert_eq!(all.len(), 250);
    assert_eq!(all[..3], [3, 5, 250]);
    assert_eq!(all.last(), Some(&1));
}

#[test]
fn page_tokens_are_checked() {
    let db = Db::new();
    with_artifacts(&db, T);
    let first = list(&db, T, opts(Some(5)));
    let token = first.next_page_token.clone().unwrap();
    assert_eq!(token, "CAUQBRoCCAU");
    let with = |o: pb::ListOperationOptions| pb::GetArtifactsRequest { options: Some(o), ..Default::default() };
    let tok = |t: &str| pb::ListOperationOptions {
        max_result_size: Some(5),
        next_page_token: Some(t.into()),
        ..Default::default()
    };

    for bad in ["!!!", "AAAA", "CAUQBRoCCA+", "CAUQBRoCCAU=="] {
        assert_eq!(db.code(T, "GetArtifacts", with(tok(bad))), Code::InvalidArgument, "{bad}");
    }
    // Another ordering than the token's.
    let o = pb::ListOperationOptions { order_by_field: order(3, false), ..tok(&token) };
    assert_eq!(db.code(T, "GetArtifacts", with(o)), Code::InvalidArgument);
    // Another size or filter is accepted.
    let r = list(&db, T, pb::ListOperationOptions { max_result_size: Some(7), ..tok(&token) });
    assert_eq!(ids(&r.artifacts), (6..=12).collect::<Vec<_>>());
    assert_eq!(r.next_page_token.as_deref(), Some("CAwQDBoCCAc"));
    let r = list(&db, T, pb::ListOperationOptions { filter_query: Some("id > 100".into()), ..tok(&token) });
    assert_eq!(ids(&r.artifacts), (101..=105).collect::<Vec<_>>());
    // Padding and whitespace are tolerated, as absl does; a blank token starts over.
    assert_eq!(ids(&list(&db, T, tok(&format!("{token}="))).artifacts), (6..=10).collect::<Vec<_>>());
    assert_eq!(ids(&list(&db, T, tok("C AUQBRo CCAU")).artifacts), (6..=10).collect::<Vec<_>>());
    assert_eq!(ids(&list(&db, T, tok(" ")).artifacts), (1..=5).collect::<Vec<_>>());
    // A LAST_UPDATE_TIME token without listed ids.
    let crafted = {
        use base64::Engine as _;
        let t = pb::ListOperationNextPageToken {
            field_offset: Some(0),
            set_options: Some(pb::ListOperationOptions { order_by_field: order(2, true), ..Default::default() }),
            ..Default::default()
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.encode_to_vec())
    };
    let o = pb::ListOperationOptions { order_by_field: order(2, true), ..tok(&crafted) };
    assert_eq!(db.code(T, "GetArtifacts", with(o)), Code::InvalidArgument);
}

#[test]
fn filter_queries() {
    let db = Db::new();
    with_artifacts(&db, T);
    let r = list(
        &db,
        T,
        pb::ListOperationOptions {
            max_result_size: Some(4),
            filter_query: Some("uri = 'u1'".into()),
            ..Default::default()
        },
    );
    assert_eq!(ids(&r.artifacts), vec![2, 5, 8, 11]);
    assert_eq!(r.next_page_token.as_deref(), Some("CAsQCxoOCAQiCnVyaSA9ICd1MSc"));
    let r = list(&db, T, pb::ListOperationOptions { filter_query: Some("name = 'a7'".into()), ..Default::default() });
    assert_eq!(ids(&r.artifacts), vec![8]);
    let bad = pb::GetArtifactsRequest {
        options: Some(pb::ListOperationOptions { filter_query: Some("foo bar".into()), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(db.code(T, "GetArtifacts", bad), Code::InvalidArgument);
    // An empty filter is no filter.
    let r = list(
        &db,
        T,
        pb::ListOperationOptions { max_result_size: Some(2), filter_query: Some(String::new()), ..Default::default() },
    );
    assert_eq!(ids(&r.artifacts), vec![1, 2]);
}

#[test]
fn by_type_and_by_name() {
    let db = Db::new();
    with_artifacts(&db, T);
    db.artifact_type(
        T,
        pb::ArtifactType {
            name: Some("A".into()),
            version: Some("v1".into()),
            external_id: Some("ext-A1".into()),
            ..Default::default()
        },
    );
    db.artifact_type(T, pb::ArtifactType { name: Some("Empty".into()), ..Default::default() });
    let by_type =
        |name: &str, version: Option<&str>, options: Option<pb::ListOperationOptions>| pb::GetArtifactsByTypeRequest {
            type_name: Some(name.into()),
            type_version: version.map(Into::into),
            options,
            ..Default::default()
        };
    let r: pb::GetArtifactsByTypeResponse = db.get(T, "GetArtifactsByType", by_type("A", None, None));
    assert_eq!((r.artifacts.len(), r.next_page_token), (250, None));
    let r: pb::GetArtifactsByTypeResponse = db.get(T, "GetArtifactsByType", by_type("A", None, Some(opts(Some(2)))));
    assert_eq!(ids(&r.artifacts), vec![1, 2]);
    assert_eq!(r.next_page_token.as_deref(), Some("CAIQAhoCCAI"));
    // With options the token field is set even on the last page (MLMD does so for *ByType).
    let o = pb::ListOperationOptions {
        max_result_size: Some(100),
        filter_query: Some("id < 5".into()),
        ..Default::default()
    };
    let r: pb::GetArtifactsByTypeResponse = db.get(T, "GetArtifactsByType", by_type("A", Some(""), Some(o)));
    assert_eq!((ids(&r.artifacts), r.next_page_token), (vec![1, 2, 3, 4], Some(String::new())));
    let o = pb::ListOperationOptions {
        max_result_size: Some(3),
        filter_query: Some("id > 10".into()),
        order_by_field: order(1, false),
        ..Default::default()
    };
    let r: pb::GetArtifactsByTypeResponse = db.get(T, "GetArtifactsByType", by_type("A", None, Some(o)));
    assert_eq!(ids(&r.artifacts), vec![250, 249, 248]);
    // Missing type, other version, type without nodes: empty, options unchecked.
    for (name, version) in [("Nope", None), ("A", Some("v1")), ("A", Some("v9")), ("", None), ("Empty", None)] {
        let r: pb::GetArtifactsByTypeResponse =
            db.get(T, "GetArtifactsByType", by_type(name, version, Some(opts(Some(0)))));
        assert_eq!((r.artifacts.len(), r.next_page_token), (0, None), "{name} {version:?}");
    }
    assert_eq!(db.code(T, "GetArtifactsByType", by_type("A", None, Some(opts(Some(0))))), Code::InvalidArgument);
    // Another kind's type of that name.
    let r: pb::GetExecutionsByTypeResponse = db.get(
        T,
        "GetExecutionsByType",
        pb::GetExecutionsByTypeRequest { type_name: Some("A".into()), ..Default::default() },
    );
    assert!(r.executions.is_empty());

    let by_name = |t: &str, v: Option<&str>, n: &str| pb::GetArtifactByTypeAndNameRequest {
        type_name: Some(t.into()),
        type_version: v.map(Into::into),
        artifact_name: Some(n.into()),
        ..Default::default()
    };
    let r: pb::GetArtifactByTypeAndNameResponse = db.get(T, "GetArtifactByTypeAndName", by_name("A", None, "a5"));
    assert_eq!(r.artifact.map(|a| a.id), Some(Some(6)));
    let r: pb::GetArtifactByTypeAndNameResponse = db.get(T, "GetArtifactByTypeAndName", by_name("A", Some(""), "a5"));
    assert_eq!(r.artifact.map(|a| a.id), Some(Some(6)));
    for (t, v, n) in [("A", None, "zz"), ("Q", None, "a5"), ("A", Some("v1"), "a5"), ("A", None, "")] {
        let r: pb::GetArtifactByTypeAndNameResponse = db.get(T, "GetArtifactByTypeAndName", by_name(t, v, n));
        assert_eq!(r.artifact, None, "{t} {v:?} {n}");
    }
}

#[test]
fn nodes_by_id_uri_and_external_id() {
    let db = Db::new();
    let a = with_artifacts(&db, T);
    let b = db.artifact_type(
        T,
        pb::ArtifactType {
            name: Some("B".into()),
            external_id: Some("bx".into()),
            base_type: Some(2),
            ..Default::default()
        },
    );
    let x = db.artifacts(
        T,
        4000,
        vec![
            pb::Artifact {
                type_id: Some(b),
                uri: Some("zz".into()),
                external_id: Some("zzz".into()),
                ..Default::default()
            },
            pb::Artifact { type_id: Some(a), external_id: Some("aaa".into()), ..Default::default() },
            pb::Artifact {
                type_id: Some(a),
                uri: Some("zz".into()),
                external_id: Some("mmm".into()),
                ..Default::default()
            },
        ],
    );
    assert_eq!(x, vec![251, 252, 253]);

    let r: pb::GetArtifactsByIdResponse = db.get(
        T,
        "GetArtifactsByID",
        pb::GetArtifactsByIdRequest { artifact_ids: vec![5, 999, 3, 5, -1], ..Default::default() },
    );
    assert_eq!((ids(&r.artifacts), r.artifact_types.len()), (vec![3, 5], 0));
    let r: pb::GetArtifactsByIdResponse = db.get(
        T,
        "GetArtifactsByID",
        pb::GetArtifactsByIdRequest {
            artifact_ids: vec![252, 251, 1],
            populate_artifact_types: Some(true),
            ..Default::default()
        },
    );
    assert_eq!(ids(&r.artifacts), vec![1, 251, 252]);
    // In order of first use; without base_type (MLMD leaves it out there).
    let types: Vec<_> =
        r.artifact_types.iter().map(|t| (t.id, t.name.clone(), t.base_type, t.external_id.clone())).collect();
    assert_eq!(
        types,
        vec![(Some(a), Some("A".into()), None, None), (Some(b), Some("B".into()), None, Some("bx".into()))]
    );

    let by_ext = |x: &[&str]| pb::GetArtifactsByExternalIdsRequest {
        external_ids: x.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let r: pb::GetArtifactsByExternalIdsResponse =
        db.get(T, "GetArtifactsByExternalIds", by_ext(&["mmm", "zzz", "nope", "aaa", "zzz"]));
    assert_eq!(ids(&r.artifacts), vec![251, 252, 253]);
    let r: pb::GetArtifactsByExternalIdsResponse = db.get(T, "GetArtifactsByExternalIds", by_ext(&[]));
    assert!(r.artifacts.is_empty());
    assert_eq!(db.code(T, "GetArtifactsByExternalIds", by_ext(&["zzz", ""])), Code::InvalidArgument);

    let by_uri = |u: &[&str]| pb::GetArtifactsByUriRequest {
        uris: u.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let r: pb::GetArtifactsByUriResponse = db.get(T, "GetArtifactsByURI", by_uri(&["zz", "u1", "nope", "zz"]));
    let got = ids(&r.artifacts);
    assert_eq!(got.len(), 2 + 83);
    assert_eq!(got[..3], [251, 253, 2]);
    let r: pb::GetArtifactsByUriResponse = db.get(T, "GetArtifactsByURI", by_uri(&[""]));
    assert_eq!(ids(&r.artifacts), vec![252]);
    let r: pb::GetArtifactsByUriResponse = db.get(T, "GetArtifactsByURI", by_uri(&[]));
    assert!(r.artifacts.is_empty());
    // The deprecated `uri` (field 1) of old clients.
    assert_eq!(answer(&db.conn, T, "GetArtifactsByURI", b"\x0a\x01x").map_err(|e| e.code), Err(Code::InvalidArgument));
}

#[test]
fn types() {
    let db = Db::new();
    let a = db.artifact_type(
        T,
        pb::ArtifactType { name: Some("A".into()), properties: [("p".to_owned(), 1)].into(), ..Default::default() },
    );
    let a1 = db.artifact_type(
        T,
        pb::ArtifactType {
            name: Some("A".into()),
            version: Some("v1".into()),
            external_id: Some("ext-A1".into()),
            ..Default::default()
        },
    );
    let e = db.execution_type(
        T,
        pb::ExecutionType {
            name: Some("EF".into()),
            external_id: Some("efx".into()),
            base_type: Some(1),
            input_type: Some(pb::ArtifactStructType {
                kind: Some(pb::artifact_struct_type::Kind::Any(pb::AnyArtifactStructType {})),
            }),
            ..Default::default()
        },
    );
    let c = db.context_type(
        T,
        pb::ContextType { name: Some("C".into()), external_id: Some("cx".into()), ..Default::default() },
    );
    let f = db.artifact_type(
        T,
        pb::ArtifactType {
            name: Some("F".into()),
            external_id: Some("bx".into()),
            description: Some("d".into()),
            base_type: Some(3),
            ..Default::default()
        },
    );
    let simple = db.artifact_type(T, pb::ArtifactType { name: Some("mlmd.Dataset".into()), ..Default::default() });

    let get = |name: &str, version: Option<&str>| pb::GetArtifactTypeRequest {
        type_name: Some(name.into()),
        type_version: version.map(Into::into),
        ..Default::default()
    };
    let r: pb::GetArtifactTypeResponse = db.get(T, "GetArtifactType", get("A", None));
    assert_eq!(r.artifact_type.and_then(|t| t.id), Some(a));
    let r: pb::GetArtifactTypeResponse = db.get(T, "GetArtifactType", get("A", Some("")));
    assert_eq!(r.artifact_type.and_then(|t| t.id), Some(a));
    let r: pb::GetArtifactTypeResponse = db.get(T, "GetArtifactType", get("A", Some("v1")));
    assert_eq!(r.artifact_type.and_then(|t| t.external_id), Some("ext-A1".into()));
    let r: pb::GetArtifactTypeResponse = db.get(T, "GetArtifactType", get("F", None));
    assert_eq!(r.artifact_type.and_then(|t| t.base_type), Some(3));
    for (n, v) in [("A", Some("v2")), ("Z", None), ("", None), ("EF", None)] {
        assert_eq!(db.code(T, "GetArtifactType", get(n, v)), Code::NotFound);
    }
    let r: pb::GetExecutionTypeResponse = db.get(
        T,
        "GetExecutionType",
        pb::GetExecutionTypeRequest { type_name: Some("EF".into()), ..Default::default() },
    );
    let et = r.execution_type.unwrap();
    assert_eq!((et.base_type, et.external_id.as_deref(), et.input_type.is_some()), (Some(1), Some("efx"), true));

    // All types: without external_id (base_type kept), without MLMD's simple types.
    let r: pb::GetArtifactTypesResponse = db.get(T, "GetArtifactTypes", pb::GetArtifactTypesRequest::default());
    let listed: Vec<_> = r.artifact_types.iter().map(|t| (t.id, t.external_id.clone(), t.base_type)).collect();
    assert_eq!(listed, vec![(Some(a), None, None), (Some(a1), None, None), (Some(f), None, Some(3))]);
    let r: pb::GetExecutionTypesResponse = db.get(T, "GetExecutionTypes", pb::GetExecutionTypesRequest::default());
    assert_eq!(r.execution_types.len(), 1);
    assert_eq!((r.execution_types[0].external_id.clone(), r.execution_types[0].input_type.is_some()), (None, true));
    let r: pb::GetContextTypesResponse = db.get(T, "GetContextTypes", pb::GetContextTypesRequest::default());
    assert_eq!(
        r.context_types.iter().map(|t| (t.id, t.external_id.clone())).collect::<Vec<_>>(),
        vec![(Some(c), None)]
    );

    // By id: the request's order, repeats kept, other kinds and unknown ids skipped.
    let r: pb::GetArtifactTypesByIdResponse = db.get(
        T,
        "GetArtifactTypesByID",
        pb::GetArtifactTypesByIdRequest { type_ids: vec![a1, 99, a, e, a, simple], ..Default::default() },
    );
    let got: Vec<_> = r.artifact_types.iter().map(|t| t.id.unwrap()).collect();
    assert_eq!(got, vec![a1, a, a, simple]);
    assert_eq!(r.artifact_types[0].external_id.as_deref(), Some("ext-A1"));

    // By external id: ordered by external id, without base_type (and struct types).
    let by_ext = |x: &[&str]| pb::GetArtifactTypesByExternalIdsRequest {
        external_ids: x.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let r: pb::GetArtifactTypesByExternalIdsResponse =
        db.get(T, "GetArtifactTypesByExternalIds", by_ext(&["ext-A1", "nope", "bx", "ext-A1"]));
    let got: Vec<_> = r.artifact_types.iter().map(|t| (t.id.unwrap(), t.base_type, t.description.clone())).collect();
    assert_eq!(got, vec![(f, None, Some("d".into())), (a1, None, None)]);
    assert_eq!(db.code(T, "GetArtifactTypesByExternalIds", by_ext(&[""])), Code::InvalidArgument);
    let r: pb::GetArtifactTypesByExternalIdsResponse = db.get(T, "GetArtifactTypesByExternalIds", by_ext(&[]));
    assert!(r.artifact_types.is_empty());
    let r: pb::GetExecutionTypesByExternalIdsResponse = db.get(
        T,
        "GetExecutionTypesByExternalIds",
        pb::GetExecutionTypesByExternalIdsRequest { external_ids: vec!["efx".into()], ..Default::default() },
    );
    let et = &r.execution_types[0];
    assert_eq!((et.base_type, et.input_type.is_some(), et.external_id.as_deref()), (None, false, Some("efx")));
    let r: pb::GetContextTypesByExternalIdsResponse = db.get(
        T,
        "GetContextTypesByExternalIds",
        pb::GetContextTypesByExternalIdsRequest { external_ids: vec!["cx".into()], ..Default::default() },
    );
    assert_eq!(r.context_types.len(), 1);
}
