//! Wire ↔ domain conversions: bad wire values become typed errors naming the wire field, and
//! refused commands become gRPC statuses with the right code and an `ErrorDetails` payload.

use metamesh_core::{CommandError, Direction, EdgeKind, EntityVersion, PropertyOp};
use metamesh_proto::convert;
use metamesh_proto::v1;
use prost::Message;

fn put(urn: &str, props: &str) -> v1::PutEntityRequest {
    v1::PutEntityRequest { urn: urn.into(), properties_json: props.into(), ..Default::default() }
}

#[test]
fn put_entity_request_checks_fields() {
    let ok = convert::entity_spec(&v1::PutEntityRequest {
        tags: vec!["b".into(), "a".into(), "a".into()],
        owner: "team".into(),
        ..put("mm://fraud/dataset/s3:%2F%2Fb%2Fk", r#"{"rows": 3}"#)
    })
    .unwrap();
    assert_eq!(ok.urn.name(), "s3://b/k");
    assert_eq!(ok.properties["rows"], 3);
    assert_eq!(ok.tags.iter().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(ok.owner.as_deref(), Some("team"));
    assert_eq!(ok.status, None, "empty proto strings mean absent");

    let cases: &[(v1::PutEntityRequest, &str)] = &[
        (put("mm://fraud/dataset/x", "{not json"), "properties_json"),
        (put("mm://fraud/dataset/x", "[1,2]"), "properties"),
        (put("mm://fraud/dataset/x@2", "{}"), "urn"),
        (put("fraud/dataset/x", "{}"), "urn"),
        (v1::PutEntityRequest { type_name: "9bad".into(), ..put("mm://fraud/dataset/x", "{}") }, "type_name"),
    ];
    for (req, field) in cases {
        let err = convert::entity_spec(req).unwrap_err();
        assert_eq!(err.field(), Some(*field), "{req:?}: {err}");
    }
}

#[test]
fn edge_spec_merges_versions_and_refuses_conflicts() {
    let e = v1::EdgeSpec {
        from_urn: "mm://t/dataset/a".into(),
        from_version: Some(2),
        to_urn: "mm://t/run/r@1".into(),
        kind: "consumed".into(),
        ..Default::default()
    };
    let spec = convert::edge_spec(&e).unwrap();
    assert_eq!(spec.from.to_string(), "mm://t/dataset/a@2");
    assert_eq!(spec.to.version, Some(1));
    assert_eq!(spec.kind, EdgeKind::Consumed);

    let conflict = v1::EdgeSpec { to_version: Some(3), ..e.clone() };
    assert_eq!(convert::edge_spec(&conflict).unwrap_err().field(), Some("to_version"));
    let zero = v1::EdgeSpec { from_version: Some(0), ..e.clone() };
    assert_eq!(convert::edge_spec(&zero).unwrap_err().field(), Some("from_version"));
    let kind = v1::EdgeSpec { kind: "likes".into(), ..e.clone() };
    assert!(convert::edge_spec(&kind).unwrap_err().to_string().contains("likes"));
    let ends = v1::EdgeSpec { kind: "produced".into(), ..e };
    assert!(matches!(convert::edge_spec(&ends).unwrap_err(), CommandError::EdgeEndpoint { .. }));
}

#[test]
fn list_filter_and_enums() {
    let req = v1::ListEntitiesRequest {
        tenant: "fraud".into(),
        kind: "model".into(),
        property_filters: vec![v1::PropertyFilter {
            path: "metrics.auc".into(),
            op: v1::property_filter::Op::Ge as i32,
            value_json: "0.9".into(),
        }],
        ..Default::default()
    };
    let f = convert::list_filter(&req).unwrap();
    assert_eq!(f.tenant.unwrap().as_str(), "fraud");
    assert_eq!(f.properties[0].op, PropertyOp::Ge);

    let bad_op = v1::ListEntitiesRequest {
        property_filters: vec![v1::PropertyFilter { path: "a".into(), op: 0, value_json: "1".into() }],
        ..Default::default()
    };
    assert_eq!(convert::list_filter(&bad_op).unwrap_err().field(), Some("property_filters[0].op"));
    let bad_path = v1::ListEntitiesRequest {
        property_filters: vec![v1::PropertyFilter { path: "a;drop".into(), op: 1, value_json: "1".into() }],
        ..Default::default()
    };
    assert!(convert::list_filter(&bad_path).is_err());
    let bad_kind = v1::ListEntitiesRequest { kind: "table".into(), ..Default::default() };
    assert_eq!(convert::list_filter(&bad_kind).unwrap_err().field(), Some("kind"));

    assert_eq!(convert::direction(0).unwrap(), Direction::Both);
    assert_eq!(convert::direction(1).unwrap(), Direction::Upstream);
    assert!(convert::direction(99).is_err());
    assert_eq!(convert::compatibility(0).unwrap(), None);
    assert!(convert::compatibility(42).is_err());
}

#[test]
fn refused_commands_map_to_grpc_status_with_details() {
    let err = CommandError::TooLarge { field: "description".into(), limit: 10, actual: 11 };
    let status = convert::status(&err);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let details = v1::ErrorDetails::decode(status.details()).unwrap();
    assert_eq!(details.errors[0].field, "description");
    assert_eq!(details.errors[0].code, "invalid_argument");

    let cases = [
        (CommandError::NotFound("mm://t/model/m".into()), tonic::Code::NotFound, 404),
        (CommandError::TenantExists("t".parse().unwrap()), tonic::Code::AlreadyExists, 409),
        (
            CommandError::VersionConflict { urn: "u".into(), expected: 1, actual: 2 },
            tonic::Code::FailedPrecondition,
            409,
        ),
    ];
    for (err, code, http) in cases {
        assert_eq!(convert::status(&err).code(), code, "{err}");
        assert_eq!(convert::http_status(err.code()), http, "{err}");
    }
}

#[test]
fn entity_to_wire_keeps_every_field() {
    let e = EntityVersion {
        urn: "mm://fraud/model/m".parse().unwrap(),
        version: 3,
        type_name: Some("Classifier".parse().unwrap()),
        schema_version: Some(2),
        properties: serde_json::json!({"auc": 0.9}),
        tags: vec!["prod".into()],
        owner: Some("ml".into()),
        status: Some("serving".into()),
        description: Some("d".into()),
        deleted: false,
        created_at_ms: 1,
        created_by: "alice".into(),
        updated_at_ms: 2,
        updated_by: "bob".into(),
        revision: 9,
    };
    let w = convert::entity_to_wire(&e);
    assert_eq!(
        (w.urn.as_str(), w.tenant.as_str(), w.kind.as_str(), w.name.as_str(), w.version),
        ("mm://fraud/model/m", "fraud", "model", "m", 3)
    );
    assert_eq!((w.type_name.as_str(), w.schema_version, w.revision), ("Classifier", 2, 9));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&w.properties_json).unwrap(), e.properties);
    assert_eq!((w.created_by.as_str(), w.updated_by.as_str(), w.updated_at_ms), ("alice", "bob", 2));
}
