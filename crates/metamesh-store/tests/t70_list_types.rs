//! Listing a tenant's types (`Store::list_types`): the latest schema version of each, by name,
//! filtered by base kind, as of a revision, paged with a cursor pinned to the first page.

mod common;

use common::*;
use metamesh_core::schema::{Compatibility, SchemaVersion};
use metamesh_core::{AsOf, CommandError, Kind};
use metamesh_store::StoreError;
use serde_json::json;

fn names(types: &[SchemaVersion]) -> Vec<(String, u32)> {
    types.iter().map(|t| (t.type_name.to_string(), t.version)).collect()
}

fn open_object() -> serde_json::Value {
    json!({"type": "object"})
}

/// `Table` v1 (revision 2), `Model` v1 (3), `Table` v2 (4), `Feature` v1 with FULL
/// compatibility (5), and a second tenant's `Alien` (7).
async fn registry() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    s.ok(register("acme", "Model", Kind::Model, open_object())).await;
    let mut v2 = table_schema();
    v2["properties"]["owner"] = json!({"type": "string"});
    s.ok(register("acme", "Table", Kind::Dataset, v2)).await;
    let mut feature = schema_spec("acme", "Feature", Kind::Feature, open_object());
    feature.compatibility = Some(Compatibility::Full);
    s.ok(metamesh_core::Command::RegisterSchema(feature)).await;
    s.ok(create_tenant("other")).await;
    s.ok(register("other", "Alien", Kind::Dataset, open_object())).await;
    assert_eq!(s.rev, 7);
    s
}

#[tokio::test]
async fn lists_the_latest_version_of_each_type_by_name() {
    let s = registry().await;
    let page = s.list_types(&tenant("acme"), None, None, None, 100).await.unwrap();
    assert_eq!(names(&page.items), [("Feature".into(), 1), ("Model".into(), 1), ("Table".into(), 2)]);
    assert_eq!(page.next, None);

    let table = &page.items[2];
    assert_eq!((table.base_kind, table.compatibility), (Kind::Dataset, Compatibility::Backward));
    assert_eq!((table.revision, table.created_by.as_str()), (4, PRINCIPAL));
    assert_eq!(table.schema["properties"]["owner"], json!({"type": "string"}));
    assert_eq!(page.items[0].compatibility, Compatibility::Full);
    // The same rows the registry's own reads return.
    let latest = s.schema(&tenant("acme"), &type_name("Table"), None).await.unwrap().unwrap();
    assert_eq!(*table, latest);

    let other = s.list_types(&tenant("other"), None, None, None, 100).await.unwrap();
    assert_eq!(names(&other.items), [("Alien".into(), 1)], "tenants do not see each other's types");
}

#[tokio::test]
async fn filters_by_base_kind() {
    let s = registry().await;
    let datasets = s.list_types(&tenant("acme"), Some(Kind::Dataset), None, None, 100).await.unwrap();
    assert_eq!(names(&datasets.items), [("Table".into(), 2)]);
    let runs = s.list_types(&tenant("acme"), Some(Kind::Run), None, None, 100).await.unwrap();
    assert!(runs.items.is_empty());
}

#[tokio::test]
async fn as_of_a_revision_shows_the_registry_as_it_was() {
    let s = registry().await;
    let at3 = s.list_types(&tenant("acme"), None, Some(AsOf::Revision(3)), None, 100).await.unwrap();
    assert_eq!(names(&at3.items), [("Model".into(), 1), ("Table".into(), 1)]);
    let at1 = s.list_types(&tenant("acme"), None, Some(AsOf::Revision(1)), None, 100).await.unwrap();
    assert!(at1.items.is_empty(), "the tenant exists but has no types yet");
    // Before the tenant existed it is unknown, as it is now for a tenant never created.
    let before = s.list_types(&tenant("other"), None, Some(AsOf::Revision(5)), None, 100).await;
    assert!(matches!(before, Err(StoreError::Invalid(CommandError::UnknownTenant(_)))), "{before:?}");
    let unknown = s.list_types(&tenant("nobody"), None, None, None, 100).await;
    assert!(matches!(unknown, Err(StoreError::Invalid(CommandError::UnknownTenant(_)))), "{unknown:?}");
}

#[tokio::test]
async fn pages_stay_on_the_first_pages_revision() {
    let mut s = registry().await;
    let first = s.list_types(&tenant("acme"), None, None, None, 2).await.unwrap();
    assert_eq!(names(&first.items), [("Feature".into(), 1), ("Model".into(), 1)]);
    let token = first.next.expect("a third type follows");

    // Registered after the first page: neither the new type nor the new version shows.
    s.ok(register("acme", "Zebra", Kind::Dataset, open_object())).await;
    let mut v3 = table_schema();
    v3["properties"]["owner"] = json!({"type": "string"});
    v3["properties"]["team"] = json!({"type": "string"});
    s.ok(register("acme", "Table", Kind::Dataset, v3)).await;

    let second = s.list_types(&tenant("acme"), None, None, Some(&token), 2).await.unwrap();
    assert_eq!(names(&second.items), [("Table".into(), 2)]);
    assert_eq!(second.next, None);
    let fresh = s.list_types(&tenant("acme"), None, None, None, 100).await.unwrap();
    assert_eq!(names(&fresh.items).last(), Some(&("Zebra".into(), 1)));
    assert_eq!(names(&fresh.items)[2], ("Table".into(), 3));
}

#[tokio::test]
async fn bad_tokens_and_page_sizes_name_the_field() {
    let s = registry().await;
    for token in ["!!", "e30", "bm90IGpzb24"] {
        match s.list_types(&tenant("acme"), None, None, Some(token), 10).await {
            Err(StoreError::Invalid(CommandError::InvalidField { field, .. })) => assert_eq!(field, "page_token"),
            other => panic!("{token}: {other:?}"),
        }
    }
    for limit in [0, metamesh_store::read::MAX_PAGE + 1] {
        match s.list_types(&tenant("acme"), None, None, None, limit).await {
            Err(StoreError::Invalid(CommandError::InvalidField { field, .. })) => assert_eq!(field, "page_size"),
            other => panic!("{limit}: {other:?}"),
        }
    }
}
