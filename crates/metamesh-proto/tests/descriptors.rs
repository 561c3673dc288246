//! Pins the `metamesh.v1` API surface: every service and RPC, the files, streaming shapes, and
//! that every element of the `.proto` sources is documented. Adding or removing an RPC must be
//! a deliberate change to this file too.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use metamesh_proto::v1;
use metamesh_proto::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

fn metamesh_files(fds: &FileDescriptorSet) -> Vec<&FileDescriptorProto> {
    fds.file.iter().filter(|f| f.package() == "metamesh.v1").collect()
}

/// The expected API: service -> RPCs, in declaration order.
fn expected_services() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        (
            "CatalogService",
            vec![
                "CreateTenant",
                "GetTenant",
                "ListTenants",
                "PutEntity",
                "PutEntities",
                "DeleteEntity",
                "GetEntity",
                "BatchGetEntities",
                "ListEntities",
                "ListVersions",
                "PutDocument",
                "DeleteDocument",
                "ListDocuments",
                "EraseEntityData",
            ],
        ),
        (
            "LineageService",
            vec![
                "AddEdges",
                "RemoveEdges",
                "GetEdges",
                "Expand",
                "DeliverReferences",
                "IngestOpenLineage",
                "ListOpenLineageEvents",
            ],
        ),
        ("SearchService", vec!["Search"]),
        ("SchemaService", vec!["RegisterSchema", "GetSchema", "ListSchemaVersions", "ListTypes", "CheckCompatibility"]),
        (
            "AuditService",
            vec![
                "ListRecords",
                "Verify",
                "GetCheckpoint",
                "GetInclusionProof",
                "GetConsistencyProof",
                "Export",
                "RecordEvent",
            ],
        ),
        ("WatchService", vec!["Watch"]),
        (
            "AdminService",
            vec![
                "Status",
                "AddLearner",
                "RemoveLearner",
                "ChangeMembership",
                "TriggerSnapshot",
                "Health",
                "GetShardMap",
            ],
        ),
    ])
}

#[test]
fn files_are_split_by_concern() {
    let fds = descriptor_set();
    let names: BTreeSet<&str> = metamesh_files(&fds).iter().map(|f| f.name()).collect();
    let expected: BTreeSet<String> = ["common", "catalog", "lineage", "search", "schema", "audit", "watch", "admin"]
        .iter()
        .map(|concern| format!("metamesh/v1/{concern}.proto"))
        .collect();
    let names: BTreeSet<String> = names.into_iter().map(str::to_owned).collect();
    assert_eq!(names, expected);
    for f in metamesh_files(&fds) {
        assert_eq!(f.syntax(), "proto3", "{} must be proto3", f.name());
    }
}

#[test]
fn every_service_and_rpc_exists() {
    let fds = descriptor_set();
    let actual: BTreeMap<String, Vec<String>> = metamesh_files(&fds)
        .iter()
        .flat_map(|f| &f.service)
        .map(|s| {
            let methods = s.method.iter().map(|m| m.name().to_owned()).collect();
            (s.name().to_owned(), methods)
        })
        .collect();
    let expected = expected_services();
    for (service, rpcs) in &expected {
        let got = actual.get(*service).unwrap_or_else(|| panic!("service metamesh.v1.{service} is missing"));
        for rpc in rpcs {
            assert!(got.iter().any(|m| m == rpc), "rpc metamesh.v1.{service}/{rpc} is missing");
        }
        assert_eq!(got, rpcs, "metamesh.v1.{service} RPCs changed; update this test deliberately");
    }
    let extra: Vec<&String> = actual.keys().filter(|k| !expected.contains_key(k.as_str())).collect();
    assert!(extra.is_empty(), "unexpected services: {extra:?}");
}

#[test]
fn streaming_shapes() {
    let fds = descriptor_set();
    let methods: BTreeMap<String, (bool, bool)> = metamesh_files(&fds)
        .iter()
        .flat_map(|f| &f.service)
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| (format!("{}/{}", s.name(), m.name()), (m.client_streaming(), m.server_streaming())))
        })
        .collect();
    for (name, shape) in &methods {
        let expected = match name.as_str() {
            "AuditService/Export" | "WatchService/Watch" => (false, true),
            _ => (false, false),
        };
        assert_eq!(*shape, expected, "{name}: (client, server) streaming");
    }
}

/// Every service, RPC, message, field, oneof, enum and enum value carries a leading comment.
#[test]
fn every_element_is_documented() {
    let fds = descriptor_set();
    let mut undocumented = Vec::new();
    for f in metamesh_files(&fds) {
        let info = f.source_code_info.as_ref().expect("descriptors keep source info");
        let documented: HashSet<&[i32]> = info
            .location
            .iter()
            .filter(|l| !l.leading_comments().trim().is_empty())
            .map(|l| l.path.as_slice())
            .collect();
        let mut check = |path: Vec<i32>, what: String| {
            if !documented.contains(path.as_slice()) {
                undocumented.push(format!("{}: {what}", f.name()));
            }
        };
        // FileDescriptorProto: message_type = 4, enum_type = 5, service = 6.
        // DescriptorProto: field = 2, nested_type = 3, enum_type = 4, oneof_decl = 8.
        // EnumDescriptorProto: value = 2. ServiceDescriptorProto: method = 2.
        fn walk_enum(e: &prost_types::EnumDescriptorProto, path: Vec<i32>, check: &mut dyn FnMut(Vec<i32>, String)) {
            check(path.clone(), format!("enum {}", e.name()));
            for (i, v) in e.value.iter().enumerate() {
                check([path.as_slice(), &[2, i as i32]].concat(), format!("enum value {}.{}", e.name(), v.name()));
            }
        }
        fn walk_message(m: &prost_types::DescriptorProto, path: Vec<i32>, check: &mut dyn FnMut(Vec<i32>, String)) {
            check(path.clone(), format!("message {}", m.name()));
            for (i, field) in m.field.iter().enumerate() {
                check([path.as_slice(), &[2, i as i32]].concat(), format!("field {}.{}", m.name(), field.name()));
            }
            for (i, oneof) in m.oneof_decl.iter().enumerate() {
                // proto3 `optional` fields get synthetic oneofs named `_<field>`.
                let synthetic = m.field.iter().any(|f| f.proto3_optional() && f.oneof_index == Some(i as i32));
                if !synthetic {
                    check([path.as_slice(), &[8, i as i32]].concat(), format!("oneof {}.{}", m.name(), oneof.name()));
                }
            }
            for (i, nested) in m.nested_type.iter().enumerate() {
                if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                    continue;
                }
                walk_message(nested, [path.as_slice(), &[3, i as i32]].concat(), check);
            }
            for (i, e) in m.enum_type.iter().enumerate() {
                walk_enum(e, [path.as_slice(), &[4, i as i32]].concat(), check);
            }
        }
        for (i, m) in f.message_type.iter().enumerate() {
            walk_message(m, vec![4, i as i32], &mut check);
        }
        for (i, e) in f.enum_type.iter().enumerate() {
            walk_enum(e, vec![5, i as i32], &mut check);
        }
        for (i, s) in f.service.iter().enumerate() {
            check(vec![6, i as i32], format!("service {}", s.name()));
            for (j, m) in s.method.iter().enumerate() {
                check(vec![6, i as i32, 2, j as i32], format!("rpc {}.{}", s.name(), m.name()));
            }
        }
    }
    assert!(undocumented.is_empty(), "undocumented proto elements:\n{}", undocumented.join("\n"));
}

/// Field numbers are sequential from 1 in every message (no needless gaps or reservations).
#[test]
fn field_numbers_are_sequential() {
    fn walk(m: &prost_types::DescriptorProto, bad: &mut Vec<String>) {
        let mut numbers: Vec<i32> = m.field.iter().map(|f| f.number()).collect();
        numbers.sort_unstable();
        let expected: Vec<i32> = (1..=numbers.len() as i32).collect();
        if numbers != expected || !m.reserved_range.is_empty() {
            bad.push(format!("{}: {numbers:?}", m.name()));
        }
        m.nested_type.iter().for_each(|n| walk(n, bad));
    }
    let fds = descriptor_set();
    let mut bad = Vec::new();
    for f in metamesh_files(&fds) {
        f.message_type.iter().for_each(|m| walk(m, &mut bad));
    }
    assert!(bad.is_empty(), "non-sequential field numbers: {bad:?}");
}

#[test]
fn entity_round_trips_with_every_field() {
    let entity = v1::Entity {
        urn: "mm://fraud/dataset/s3%3A%2F%2Fbucket%2Ftx".into(),
        tenant: "fraud".into(),
        kind: "dataset".into(),
        name: "s3://bucket/tx".into(),
        version: 7,
        type_name: "fraud.Transactions".into(),
        schema_version: 3,
        properties_json: r#"{"rows":1200,"metrics":{"auc":0.91}}"#.into(),
        tags: vec!["pii".into(), "gold".into()],
        owner: "team-fraud".into(),
        status: "production".into(),
        description: "Card transactions, **daily**.".into(),
        created_at_ms: -1_700_000_000_123,
        created_by: "spiffe://mesh.local/ns/fraud/sa/etl".into(),
        revision: u64::MAX,
        deleted: true,
        updated_at_ms: 1_700_000_999_000,
        updated_by: "spiffe://mesh.local/ns/fraud/sa/curator".into(),
    };
    let bytes = entity.encode_to_vec();
    let decoded = v1::Entity::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, entity);
    // Every field above is set to a non-default value; if Entity grows, extend this test.
    let fields = descriptor_set()
        .file
        .iter()
        .find(|f| f.name() == "metamesh/v1/common.proto")
        .and_then(|f| f.message_type.iter().find(|m| m.name() == "Entity"))
        .map(|m| m.field.len());
    assert_eq!(fields, Some(18), "Entity fields changed; extend this test");
}

#[test]
fn optional_and_oneof_presence_survive_the_wire() {
    let req = v1::PutEntityRequest {
        urn: "mm://fraud/model/scorer".into(),
        expect_version: Some(0),
        schema_version: None,
        ..Default::default()
    };
    let back = v1::PutEntityRequest::decode(req.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.expect_version, Some(0), "explicit 0 is not 'unset'");
    assert_eq!(back.schema_version, None);

    let as_of = v1::AsOf { point: Some(v1::as_of::Point::Revision(0)) };
    let back = v1::AsOf::decode(as_of.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.point, Some(v1::as_of::Point::Revision(0)));

    let event = v1::ChangeEvent {
        revision: 42,
        change: v1::ChangeKind::EdgeAdded as i32,
        payload: Some(v1::change_event::Payload::Edge(v1::Edge {
            from_urn: "mm://fraud/dataset/tx".into(),
            from_version: Some(3),
            to_urn: "mm://growth/run/train-1".into(),
            kind: "consumed".into(),
            ..Default::default()
        })),
        revision_end: true,
        ..Default::default()
    };
    let back = v1::ChangeEvent::decode(event.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back, event);
}

/// The generated clients and servers exist under the expected names.
#[test]
fn generated_clients_and_servers_exist() {
    use std::any::type_name;
    let names = [
        type_name::<v1::catalog_service_client::CatalogServiceClient<()>>(),
        type_name::<v1::lineage_service_client::LineageServiceClient<()>>(),
        type_name::<v1::search_service_client::SearchServiceClient<()>>(),
        type_name::<v1::schema_service_client::SchemaServiceClient<()>>(),
        type_name::<v1::audit_service_client::AuditServiceClient<()>>(),
        type_name::<v1::watch_service_client::WatchServiceClient<()>>(),
        type_name::<v1::admin_service_client::AdminServiceClient<()>>(),
        type_name::<v1::catalog_service_server::CatalogServiceServer<()>>(),
        type_name::<v1::lineage_service_server::LineageServiceServer<()>>(),
        type_name::<v1::search_service_server::SearchServiceServer<()>>(),
        type_name::<v1::schema_service_server::SchemaServiceServer<()>>(),
        type_name::<v1::audit_service_server::AuditServiceServer<()>>(),
        type_name::<v1::watch_service_server::WatchServiceServer<()>>(),
        type_name::<v1::admin_service_server::AdminServiceServer<()>>(),
    ];
    assert_eq!(names.len(), 14);
    assert_eq!(
        <v1::catalog_service_server::CatalogServiceServer<()> as tonic::server::NamedService>::NAME,
        "metamesh.v1.CatalogService"
    );
}
