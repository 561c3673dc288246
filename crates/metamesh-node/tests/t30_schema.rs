//! SchemaService over real mTLS: registration, compatibility and reading through migrations.

mod common;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::schema_service_client::SchemaServiceClient;
use tonic::Code;

const V1: &str = r#"{"type":"object","properties":{"rows":{"type":"integer"}},"required":["rows"]}"#;
/// Adds a required field without a default: old data no longer validates.
const BREAKING: &str = r#"{"type":"object","properties":{"rows":{"type":"integer"},"owner":{"type":"string"}},"required":["rows","owner"]}"#;
/// Renames `rows` to `row_count`, with the migration that maps old data.
const RENAMED: &str = r#"{"type":"object","properties":{"row_count":{"type":"integer"}},"required":["row_count"]}"#;

fn register(schema_json: &str) -> v1::RegisterSchemaRequest {
    v1::RegisterSchemaRequest {
        tenant: "fraud".into(),
        type_name: "Table".into(),
        base_kind: "dataset".into(),
        schema_json: schema_json.into(),
        ..Default::default()
    }
}

fn rename() -> v1::Migration {
    use v1::migration_step::{Rename, Step};
    v1::Migration {
        steps: vec![v1::MigrationStep {
            step: Some(Step::Rename(Rename { from: "rows".into(), to: "row_count".into() })),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_register_refuse_incompatible_versions_and_migrate_reads() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut schemas = SchemaServiceClient::new(ch.clone());
    let mut catalog = CatalogServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;

    let first = schemas.register_schema(register(V1)).await.unwrap().into_inner();
    assert_eq!((first.version, first.compatibility), (1, v1::Compatibility::Backward as i32));
    catalog
        .put_entity(v1::PutEntityRequest { type_name: "Table".into(), ..put("mm://fraud/dataset/t", r#"{"rows":5}"#) })
        .await
        .unwrap();

    // An incompatible v2 is refused, and the dry run says why without writing.
    let refused = schemas.register_schema(register(BREAKING)).await;
    assert_refused(refused, Code::FailedPrecondition, "schema");
    let check = schemas
        .check_compatibility(v1::CheckCompatibilityRequest {
            tenant: "fraud".into(),
            type_name: "Table".into(),
            base_kind: "dataset".into(),
            schema_json: BREAKING.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.compatible);
    assert_eq!(check.against_version, Some(1));
    assert_eq!(check.problems.len(), 1, "{check:?}");

    // A compatible v2 with a migration registers as version 2 ...
    let ok = schemas
        .check_compatibility(v1::CheckCompatibilityRequest {
            tenant: "fraud".into(),
            type_name: "Table".into(),
            base_kind: "dataset".into(),
            schema_json: RENAMED.into(),
            migration: Some(rename()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.compatible, "{ok:?}");
    let second = schemas
        .register_schema(v1::RegisterSchemaRequest { migration: Some(rename()), ..register(RENAMED) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.version, 2);
    assert_eq!(second.created_by, node.principal(metamesh_tls::Role::Client, "alice"));

    // ... is read back, listed, and old entities read through it.
    let got = schemas
        .get_schema(v1::GetSchemaRequest { tenant: "fraud".into(), type_name: "Table".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, second);
    let listed = schemas
        .list_schema_versions(v1::ListSchemaVersionsRequest {
            tenant: "fraud".into(),
            type_name: "Table".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    let migrated = catalog
        .get_entity(v1::GetEntityRequest {
            urn: "mm://fraud/dataset/t".into(),
            read_schema_version: Some(2),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entity
        .unwrap();
    assert_eq!(migrated.schema_version, 2);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&migrated.properties_json).unwrap()["row_count"], 5);

    // Unknown types and versions are NOT_FOUND; an unknown compatibility is INVALID_ARGUMENT.
    let missing = schemas.get_schema(v1::GetSchemaRequest {
        tenant: "fraud".into(),
        type_name: "Nope".into(),
        ..Default::default()
    });
    assert_refused(missing.await, Code::NotFound, "type_name");
    let no_version = schemas.get_schema(v1::GetSchemaRequest {
        tenant: "fraud".into(),
        type_name: "Table".into(),
        version: Some(9),
        ..Default::default()
    });
    assert_refused(no_version.await, Code::NotFound, "schema_version");
    let bad_mode = schemas.register_schema(v1::RegisterSchemaRequest { compatibility: 17, ..register(V1) });
    assert_refused(bad_mode.await, Code::InvalidArgument, "compatibility");
    // The tenant's types: the latest version of each.
    let types = schemas.list_types(v1::ListTypesRequest { tenant: "fraud".into(), ..Default::default() }).await;
    assert_eq!(types.unwrap().into_inner().types, [second]);
}
