//! The schema registry: registration, validation of writes, compatibility, migrations on read,
//! and the dry run.

mod common;

use common::*;
use metamesh_core::command::SchemaSpec;
use metamesh_core::schema::{Compatibility, Migration, MigrationStep};
use metamesh_core::{Command, CommandError, ErrorCode, Kind, Outcome};
use metamesh_store::StoreError;
use serde_json::{json, Value};

const T: &str = "mm://acme/dataset/events";

/// Version 2 of `Table`: `location` renamed to `path`.
fn table_v2() -> SchemaSpec {
    let mut s = schema_spec("acme", "Table", Kind::Dataset, table_schema());
    let props = s.schema["properties"].as_object_mut().unwrap();
    let loc = props.remove("location").unwrap();
    props.insert("path".into(), loc);
    s.schema["required"] = json!(["path"]);
    s.migration = Migration { steps: vec![MigrationStep::Rename { from: "location".into(), to: "path".into() }] };
    s
}

async fn with_table() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    let out = s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    assert_eq!(out, Outcome::Schema { tenant: tenant("acme"), type_name: type_name("Table"), version: 1 });
    s
}

fn schema_version(o: Outcome) -> u32 {
    match o {
        Outcome::Schema { version, .. } => version,
        other => panic!("{other:?}"),
    }
}

fn invalid(e: StoreError) -> CommandError {
    match e {
        StoreError::Invalid(c) => c,
        other => panic!("expected a refused query, got {other}"),
    }
}

#[tokio::test]
async fn register_and_validate_writes() {
    let mut s = with_table().await;
    let sv = s.schema(&tenant("acme"), &type_name("Table"), None).await.unwrap().unwrap();
    assert_eq!((sv.version, sv.base_kind, sv.compatibility), (1, Kind::Dataset, Compatibility::Backward));
    assert_eq!(sv.schema, table_schema());
    assert_eq!((sv.revision, sv.created_by.as_str()), (s.rev, PRINCIPAL));

    s.ok(put_typed(T, "Table", json!({"location": "s3://x", "rows": 3}))).await;
    let e = s.current(T).await;
    assert_eq!((e.type_name, e.schema_version), (Some(type_name("Table")), Some(1)));

    // Failing properties: the error names the path, type and version; nothing is written.
    let e = s.refused(put_typed(T, "Table", json!({"location": "s3://x", "rows": -1}))).await;
    match &e {
        CommandError::SchemaViolation { type_name: t, version, path, .. } => {
            assert_eq!((t.as_str(), *version, path.as_str()), ("Table", 1, "/rows"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("/rows"), "{e}");
    let e = s.refused(put_typed(T, "Table", json!({"location": "s3://x", "format": "xlsx"}))).await;
    assert!(matches!(&e, CommandError::SchemaViolation { path, .. } if path == "/format"), "{e}");
    let e = s.refused(put_typed(T, "Table", json!({"rows": 1}))).await;
    assert!(matches!(&e, CommandError::SchemaViolation { .. }), "{e}");
    assert!(e.to_string().contains("location"), "a missing required field is named: {e}");
    let e = s.refused(put_typed(T, "Table", json!({"location": "s3://x", "colour": "red"}))).await;
    assert!(e.to_string().contains("colour"), "{e}");
    assert_eq!(s.current(T).await.version, 1);
}

#[tokio::test]
async fn unknown_type_and_unknown_version_are_refused() {
    let mut s = with_table().await;
    let e = s.refused(put_typed(T, "Nope", json!({}))).await;
    assert_eq!(e, CommandError::UnknownType { tenant: tenant("acme"), type_name: type_name("Nope") });
    assert_eq!(e.field(), Some("type_name"));

    let mut v9 = spec(T);
    v9.type_name = Some(type_name("Table"));
    v9.schema_version = Some(9);
    v9.properties = json!({"location": "x"});
    let e = s.refused(Command::PutEntity(v9)).await;
    assert_eq!(e, CommandError::UnknownSchemaVersion { type_name: type_name("Table"), version: 9 });

    // Types are per tenant.
    s.ok(create_tenant("beta")).await;
    let e = s.refused(put_typed("mm://beta/dataset/x", "Table", json!({"location": "x"}))).await;
    assert_eq!(e, CommandError::UnknownType { tenant: tenant("beta"), type_name: type_name("Table") });
}

/// `entities::put` documents that "an unknown type with a version given is still an unknown
/// type"; a client must learn that the type is missing, not that one version of it is.
#[tokio::test]
async fn unknown_type_with_a_version_is_an_unknown_type() {
    let mut s = with_table().await;
    let mut spec = spec(T);
    spec.type_name = Some(type_name("Nope"));
    spec.schema_version = Some(1);
    let e = s.refused(Command::PutEntity(spec)).await;
    assert_eq!(e, CommandError::UnknownType { tenant: tenant("acme"), type_name: type_name("Nope") });
}

#[tokio::test]
async fn kind_must_match_the_types_base_kind() {
    let mut s = with_table().await;
    let e = s.refused(put_typed("mm://acme/model/m", "Table", json!({"location": "x"}))).await;
    assert_eq!(
        e,
        CommandError::KindMismatch { type_name: type_name("Table"), expected: Kind::Dataset, actual: Kind::Model }
    );
    // A later version cannot change the base kind.
    let e = s.refused(register("acme", "Table", Kind::Model, table_schema())).await;
    assert!(matches!(e, CommandError::KindMismatch { expected: Kind::Dataset, actual: Kind::Model, .. }), "{e}");
}

#[tokio::test]
async fn compatible_v2_with_rename_and_reads_through_it() {
    let mut s = with_table().await;
    s.ok(put_typed(T, "Table", json!({"location": "s3://old", "rows": 7}))).await;
    let stored_rev = s.rev;

    assert_eq!(schema_version(s.ok(Command::RegisterSchema(table_v2())).await), 2);
    let versions = s.schema_versions(&tenant("acme"), &type_name("Table")).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(versions[1].migration, table_v2().migration);
    assert_eq!(s.schema(&tenant("acme"), &type_name("Table"), Some(1)).await.unwrap().unwrap().schema, table_schema());

    // Reading the v1 entity through v2 applies the rename; the stored version is untouched.
    let read = s.get_entity_as_schema(&vu(T), None, 2).await.unwrap().unwrap();
    assert_eq!(read.properties, json!({"path": "s3://old", "rows": 7}));
    assert_eq!((read.schema_version, read.version), (Some(2), 1));
    assert_eq!(s.current(T).await.properties, json!({"location": "s3://old", "rows": 7}));
    let same = s.get_entity_as_schema(&vu(T), None, 1).await.unwrap().unwrap();
    assert_eq!(same.properties, json!({"location": "s3://old", "rows": 7}));
    let past = s.get_entity_as_schema(&vu(T), Some(metamesh_core::AsOf::Revision(stored_rev)), 2).await.unwrap();
    assert_eq!(past.unwrap().properties["path"], json!("s3://old"));
    let e = invalid(s.get_entity_as_schema(&vu(T), None, 3).await.unwrap_err());
    assert_eq!(e, CommandError::UnknownSchemaVersion { type_name: type_name("Table"), version: 3 });

    // New writes validate against the latest version unless one is named.
    let e = s.refused(put_typed(T, "Table", json!({"location": "s3://new"}))).await;
    assert!(matches!(&e, CommandError::SchemaViolation { version: 2, .. }), "{e}");
    s.ok(put_typed(T, "Table", json!({"path": "s3://new"}))).await;
    assert_eq!(s.current(T).await.schema_version, Some(2));
    let mut old = spec("mm://acme/dataset/legacy");
    old.type_name = Some(type_name("Table"));
    old.schema_version = Some(1);
    old.properties = json!({"location": "s3://legacy"});
    s.ok(Command::PutEntity(old)).await;
    assert_eq!(s.current("mm://acme/dataset/legacy").await.schema_version, Some(1));

    // An entity stored at v2 cannot be read through the older v1.
    let e = invalid(s.get_entity_as_schema(&vu(T), None, 1).await.unwrap_err());
    assert!(
        matches!(&e, CommandError::InvalidField { field, reason } if field == "read_schema_version" && reason.contains("v1")),
        "{e}"
    );
    // Untyped entities have no schema to read through.
    s.ok(put("mm://acme/dataset/free")).await;
    assert!(s.get_entity_as_schema(&vu("mm://acme/dataset/free"), None, 1).await.is_err());
}

#[tokio::test]
async fn incompatible_schema_is_refused_naming_the_field() {
    let mut s = with_table().await;
    let mut breaking = table_schema();
    breaking["properties"]["rows"] = json!({"type": "string"});
    let e = s.refused(register("acme", "Table", Kind::Dataset, breaking.clone())).await;
    match &e {
        CommandError::IncompatibleSchema { type_name: t, source } => {
            assert_eq!(t.as_str(), "Table");
            assert_eq!(source.field, "rows", "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("rows"), "{e}");
    assert_eq!(e.code(), ErrorCode::FailedPrecondition);

    // A new required field without a default breaks backward compatibility too.
    let mut required = table_schema();
    required["properties"]["owner_team"] = json!({"type": "string"});
    required["required"] = json!(["location", "owner_team"]);
    let e = s.refused(register("acme", "Table", Kind::Dataset, required.clone())).await;
    assert!(e.to_string().contains("owner_team"), "{e}");

    // With a default it is compatible.
    let mut spec = schema_spec("acme", "Table", Kind::Dataset, required);
    spec.migration =
        Migration { steps: vec![MigrationStep::Default { field: "owner_team".into(), value: json!("unknown") }] };
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(spec)).await), 2);

    // Mode none accepts anything and is kept for later versions.
    let mut any = schema_spec("acme", "Table", Kind::Dataset, breaking);
    any.compatibility = Some(Compatibility::None);
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(any)).await), 3);
    let sv = s.schema(&tenant("acme"), &type_name("Table"), None).await.unwrap().unwrap();
    assert_eq!((sv.version, sv.compatibility), (3, Compatibility::None));
}

#[tokio::test]
async fn invalid_schema_documents_and_migrations_are_refused() {
    let mut s = with_table().await;
    for (schema, fragment) in [
        (json!({"type": "string"}), "type"),
        (json!(true), "root"),
        (json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}), "remote"),
        (json!({"type": "object", "properties": {"a": {"type": 12}}}), ""),
    ] {
        let e = s.refused(register("acme", "Other", Kind::Dataset, schema.clone())).await;
        assert!(matches!(e, CommandError::InvalidSchema(_)), "{schema}: {e}");
        assert!(e.to_string().contains(fragment), "{e}");
    }
    // The first version has nothing to migrate from.
    let mut first = schema_spec("acme", "Other", Kind::Dataset, json!({"type": "object"}));
    first.migration = Migration { steps: vec![MigrationStep::Drop { field: "x".into() }] };
    let e = s.refused(Command::RegisterSchema(first)).await;
    assert_eq!(e.field(), Some("migration"), "{e}");
    // A malformed migration step.
    let mut bad = table_v2();
    bad.migration = Migration { steps: vec![MigrationStep::Rename { from: "a".into(), to: "a".into() }] };
    let e = s.refused(Command::RegisterSchema(bad)).await;
    assert!(e.to_string().contains("onto itself"), "{e}");
}

#[tokio::test]
async fn reregistering_the_identical_schema_returns_the_same_version() {
    let mut s = with_table().await;
    assert_eq!(schema_version(s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await), 1);
    assert_eq!(s.schema_versions(&tenant("acme"), &type_name("Table")).await.unwrap().len(), 1);
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(table_v2())).await), 2);
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(table_v2())).await), 3, "a migration makes a new version");
    let mut plain = table_v2();
    plain.migration = Migration::default();
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(plain.clone())).await), 3);
    assert_eq!(s.schema_versions(&tenant("acme"), &type_name("Table")).await.unwrap().len(), 3);
}

/// A re-registration that returns the existing version changed nothing, so it must not write
/// (not even a change-feed entry: `watch` would report a schema change that did not happen;
/// compare an idempotent `AddEdge`, which records no change).
#[tokio::test]
async fn reregistering_the_identical_schema_writes_nothing() {
    let mut s = with_table().await;
    let before = s.state_without_revisions().await;
    assert_eq!(schema_version(s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await), 1);
    assert_eq!(s.state_without_revisions().await, before);
}

#[tokio::test]
async fn check_schema_is_a_dry_run() {
    let mut s = with_table().await;
    let before = s.export().await.unwrap();
    assert_eq!(s.check_schema(&table_v2()).await.unwrap(), 2);
    let fresh = schema_spec("acme", "Fresh", Kind::Model, json!({"type": "object"}));
    assert_eq!(s.check_schema(&fresh).await.unwrap(), 1);
    let mut breaking = schema_spec("acme", "Table", Kind::Dataset, table_schema());
    breaking.schema["properties"]["rows"] = json!({"type": "string"});
    let e = invalid(s.check_schema(&breaking).await.unwrap_err());
    assert!(matches!(&e, CommandError::IncompatibleSchema { source, .. } if source.field == "rows"), "{e}");
    let e = invalid(s.check_schema(&schema_spec("acme", "Table", Kind::Model, table_schema())).await.unwrap_err());
    assert!(matches!(e, CommandError::KindMismatch { .. }), "{e}");
    let e =
        invalid(s.check_schema(&schema_spec("acme", "X", Kind::Model, json!({"type": "array"}))).await.unwrap_err());
    assert!(matches!(e, CommandError::InvalidSchema(_)), "{e}");
    assert_eq!(s.export().await.unwrap(), before, "a dry run writes nothing");
    assert_eq!(s.schema_versions(&tenant("acme"), &type_name("Table")).await.unwrap().len(), 1);
    // And what it predicted is what registration does.
    assert_eq!(schema_version(s.ok(Command::RegisterSchema(table_v2())).await), 2);
}

/// The dry run must answer what registration would: same version, same refusals.
#[tokio::test]
async fn check_schema_agrees_with_register() {
    let mut identical = schema_spec("acme", "Table", Kind::Dataset, table_schema());
    identical.compatibility = None;
    let mut first_with_migration = schema_spec("acme", "Fresh", Kind::Dataset, json!({"type": "object"}));
    first_with_migration.migration = Migration { steps: vec![MigrationStep::Drop { field: "x".into() }] };
    let unknown_tenant = schema_spec("nope", "Table", Kind::Dataset, table_schema());
    let mut failures = Vec::new();
    for (name, spec) in
        [("identical", identical), ("first with migration", first_with_migration), ("unknown tenant", unknown_tenant)]
    {
        let mut s = with_table().await;
        let predicted = s.check_schema(&spec).await.map_err(|e| invalid(e).to_string());
        let actual = match s.apply(Command::RegisterSchema(spec)).await.result {
            Ok(o) => Ok(schema_version(o)),
            Err(e) => Err(e.to_string()),
        };
        if predicted.is_ok() != actual.is_ok() || (predicted.is_ok() && predicted != actual) {
            failures.push(format!("{name}: check_schema {predicted:?}, register {actual:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Property schemas with nested objects: the violation path is a JSON pointer to the field.
#[tokio::test]
async fn nested_violation_paths() {
    let mut s = TestStore::with_tenant().await;
    let schema: Value = json!({
        "type": "object",
        "properties": {"metrics": {"type": "object", "properties": {"auc": {"type": "number", "maximum": 1}}}}
    });
    s.ok(register("acme", "Classifier", Kind::Model, schema)).await;
    s.ok(put_typed("mm://acme/model/m", "Classifier", json!({"metrics": {"auc": 0.9}}))).await;
    let e = s.refused(put_typed("mm://acme/model/m", "Classifier", json!({"metrics": {"auc": 1.5}}))).await;
    assert!(matches!(&e, CommandError::SchemaViolation { path, .. } if path == "/metrics/auc"), "{e}");
}
