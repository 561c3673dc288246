//! Tenants, entity puts and deletes, documents, and bad entity input.

mod common;

use common::*;
use metamesh_core::limits::{MAX_DESCRIPTION_BYTES, MAX_DOCUMENT_BYTES, MAX_TAGS, MAX_TITLE_BYTES};
use metamesh_core::{AsOf, Command, CommandError, ListFilter, Outcome, Proposal};
use serde_json::json;

const DS: &str = "mm://acme/dataset/s3:%2F%2Flake%2Fevents";

#[tokio::test]
async fn create_tenant_then_duplicate_is_refused() {
    let mut s = TestStore::new().await;
    assert_eq!(s.ok(create_tenant("acme")).await, Outcome::Tenant { tenant: tenant("acme") });
    s.ok(create_tenant("beta")).await;
    assert_eq!(s.tenants().await.unwrap(), vec![tenant("acme"), tenant("beta")]);

    let e = s.refused(create_tenant("acme")).await;
    assert_eq!(e, CommandError::TenantExists(tenant("acme")));
    assert!(e.to_string().contains("acme"), "{e}");
    assert_eq!(s.tenants().await.unwrap().len(), 2);
}

#[tokio::test]
async fn put_entity_creates_v1_then_v2() {
    let mut s = TestStore::with_tenant().await;
    let mut v1 = spec(DS);
    v1.properties = json!({"rows": 10, "format": "parquet"});
    v1.tags = ["raw".to_string(), "pii".to_string()].into();
    v1.owner = Some("data-eng".into());
    v1.status = Some("active".into());
    v1.description = Some("Click events.".into());
    let t1 = s.now_ms;
    let out = s.ok(Command::PutEntity(v1)).await;
    assert_eq!(out, Outcome::Entity { urn: eu(DS), version: 1 });
    let rev1 = s.rev;

    let e = s.current(DS).await;
    assert_eq!(e.urn, eu(DS));
    assert_eq!(e.urn.name(), "s3://lake/events");
    assert_eq!(e.version, 1);
    assert_eq!(e.properties, json!({"rows": 10, "format": "parquet"}));
    assert_eq!(e.tags, vec!["pii", "raw"]);
    assert_eq!(e.owner.as_deref(), Some("data-eng"));
    assert_eq!(e.status.as_deref(), Some("active"));
    assert_eq!(e.description.as_deref(), Some("Click events."));
    assert!(!e.deleted);
    assert_eq!((e.created_at_ms, e.updated_at_ms), (t1, t1));
    assert_eq!((e.created_by.as_str(), e.updated_by.as_str()), (PRINCIPAL, PRINCIPAL));
    assert_eq!(e.revision, rev1);
    assert_eq!(e.type_name, None);

    let t2 = s.now_ms;
    let mut v2 = spec(DS);
    v2.properties = json!({"rows": 20});
    assert_eq!(version_of(s.ok(Command::PutEntity(v2)).await), 2);
    let e2 = s.current(DS).await;
    assert_eq!(e2.version, 2);
    assert_eq!(e2.properties, json!({"rows": 20}));
    assert!(e2.tags.is_empty() && e2.owner.is_none() && e2.description.is_none(), "a version holds the whole state");
    assert_eq!(e2.created_at_ms, t1, "creation time is the first version's");
    assert_eq!(e2.updated_at_ms, t2);
    assert_eq!(e2.revision, s.rev);

    // A URN with a version reads that version.
    let old = s.get_entity(&vu(&format!("{DS}@1")), None).await.unwrap().unwrap();
    assert_eq!(old, e);
    assert!(s.get_entity(&vu(&format!("{DS}@3")), None).await.unwrap().is_none());
    assert!(s.get_entity(&vu("mm://acme/dataset/missing"), None).await.unwrap().is_none());

    let all = s.versions(&eu(DS), 0, 10).await.unwrap();
    assert_eq!(all.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn expect_version_conflicts() {
    let mut s = TestStore::with_tenant().await;
    let mut first = spec(DS);
    first.expect_version = Some(0);
    assert_eq!(version_of(s.ok(Command::PutEntity(first.clone())).await), 1, "Some(0) creates");

    // Some(0) on an existing entity: "must not exist".
    let e = s.refused(Command::PutEntity(first)).await;
    assert_eq!(e, CommandError::VersionConflict { urn: DS.into(), expected: 0, actual: 1 });

    let mut next = spec(DS);
    next.expect_version = Some(1);
    assert_eq!(version_of(s.ok(Command::PutEntity(next.clone())).await), 2);
    // The same expectation again is now stale.
    let e = s.refused(Command::PutEntity(next)).await;
    assert_eq!(e, CommandError::VersionConflict { urn: DS.into(), expected: 1, actual: 2 });
    assert_eq!(e.field(), Some("expect_version"));

    // Some(n) on a missing entity.
    let mut missing = spec("mm://acme/model/m");
    missing.expect_version = Some(1);
    let e = s.refused(Command::PutEntity(missing)).await;
    assert_eq!(e, CommandError::VersionConflict { urn: "mm://acme/model/m".into(), expected: 1, actual: 0 });

    // Deletes check the expectation too.
    let e = s.refused(Command::DeleteEntity { urn: eu(DS), expect_version: Some(1) }).await;
    assert_eq!(e, CommandError::VersionConflict { urn: DS.into(), expected: 1, actual: 2 });
    let out = s.ok(Command::DeleteEntity { urn: eu(DS), expect_version: Some(2) }).await;
    assert_eq!(version_of(out), 3);
}

#[tokio::test]
async fn delete_writes_a_tombstone() {
    let mut s = TestStore::with_tenant().await;
    let mut v1 = spec(DS);
    v1.properties = json!({"rows": 5});
    v1.tags = ["raw".to_string()].into();
    v1.description = Some("zebra events".into());
    s.ok(Command::PutEntity(v1)).await;
    s.ok(put("mm://acme/dataset/kept")).await;
    assert_eq!(s.search("zebra", &ListFilter::default(), None, 10).await.unwrap().items.len(), 1);

    assert_eq!(version_of(s.ok(delete(DS)).await), 2);
    let rev_deleted = s.rev;

    // get: the tombstone, keeping the last state.
    let t = s.current(DS).await;
    assert!(t.deleted);
    assert_eq!((t.version, t.revision), (2, rev_deleted));
    assert_eq!(t.properties, json!({"rows": 5}));
    assert_eq!(t.tags, vec!["raw"]);
    let v1 = s.get_entity(&vu(&format!("{DS}@1")), None).await.unwrap().unwrap();
    assert!(!v1.deleted);

    // list: excluded unless asked for; search: excluded.
    let live = s.list_entities(&ListFilter::default(), None, None, 100).await.unwrap();
    assert_eq!(urns_of(&live.items), vec!["mm://acme/dataset/kept"]);
    let f = ListFilter { include_deleted: true, ..Default::default() };
    let with_deleted = s.list_entities(&f, None, None, 100).await.unwrap();
    assert_eq!(urns_of(&with_deleted.items), vec![DS, "mm://acme/dataset/kept"]);
    assert!(with_deleted.items[0].deleted);
    let f = ListFilter { include_deleted: true, tags: vec!["raw".into()], ..Default::default() };
    assert_eq!(urns_of(&s.list_entities(&f, None, None, 100).await.unwrap().items), vec![DS], "tombstone keeps tags");
    assert!(s.search("zebra", &ListFilter::default(), None, 10).await.unwrap().items.is_empty());

    // Deleting again, or writing documents to it, is refused.
    assert_eq!(s.refused(delete(DS)).await, CommandError::Deleted(DS.into()));
    assert_eq!(s.refused(put_doc(DS, "notes", "x")).await, CommandError::Deleted(DS.into()));

    // A put resurrects it as the next version.
    let mut again = spec(DS);
    again.description = Some("zebra again".into());
    assert_eq!(version_of(s.ok(Command::PutEntity(again)).await), 3);
    let back = s.current(DS).await;
    assert!(!back.deleted);
    assert_eq!(back.version, 3);
    assert_eq!(s.search("zebra", &ListFilter::default(), None, 10).await.unwrap().items.len(), 1);
    assert_eq!(s.list_entities(&ListFilter::default(), None, None, 100).await.unwrap().items.len(), 2);

    // As of the deletion, the tombstone; as of before, version 1.
    let urn = vu(DS);
    assert!(s.get_entity(&urn, Some(AsOf::Revision(rev_deleted))).await.unwrap().unwrap().deleted);
    assert_eq!(s.get_entity(&urn, Some(AsOf::Revision(rev_deleted - 1))).await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn delete_of_missing_entity_is_not_found() {
    let mut s = TestStore::with_tenant().await;
    let e = s.refused(delete("mm://acme/model/ghost")).await;
    assert_eq!(e, CommandError::NotFound("mm://acme/model/ghost".into()));
    assert!(e.to_string().contains("mm://acme/model/ghost"));
}

#[tokio::test]
async fn unknown_tenant_is_refused_for_every_entity_command() {
    let mut s = TestStore::with_tenant().await;
    s.ok(put(DS)).await;
    let urn = "mm://nope/dataset/x";
    for cmd in [
        put(urn),
        delete(urn),
        put_doc(urn, "readme", "hello"),
        Command::DeleteDocument { urn: eu(urn), title: "readme".into() },
        register("nope", "Table", metamesh_core::Kind::Dataset, table_schema()),
    ] {
        let e = s.refused(cmd).await;
        assert_eq!(e, CommandError::UnknownTenant(tenant("nope")));
        assert!(e.to_string().contains("`nope`"), "{e}");
    }
}

#[tokio::test]
async fn oversized_and_malformed_input_is_refused_naming_the_field() {
    let mut s = TestStore::with_tenant().await;
    s.ok(put(DS)).await;

    let mut big = spec(DS);
    big.description = Some("x".repeat(MAX_DESCRIPTION_BYTES + 1));
    let e = s.refused(Command::PutEntity(big)).await;
    assert_eq!(
        e,
        CommandError::TooLarge {
            field: "description".into(),
            limit: MAX_DESCRIPTION_BYTES,
            actual: MAX_DESCRIPTION_BYTES + 1
        }
    );
    let mut exact = spec(DS);
    exact.description = Some("x".repeat(MAX_DESCRIPTION_BYTES));
    s.ok(Command::PutEntity(exact)).await;

    let mut tags = spec(DS);
    tags.tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
    assert!(
        matches!(s.refused(Command::PutEntity(tags)).await, CommandError::TooLarge { field, .. } if field == "tags")
    );

    let mut not_object = spec(DS);
    not_object.properties = json!([1, 2]);
    let e = s.refused(Command::PutEntity(not_object)).await;
    assert_eq!(e.field(), Some("properties"), "{e}");

    let mut blank_owner = spec(DS);
    blank_owner.owner = Some("  ".into());
    assert_eq!(s.refused(Command::PutEntity(blank_owner)).await.field(), Some("owner"));

    let e = s.refused(put_doc(DS, &"t".repeat(MAX_TITLE_BYTES + 1), "body")).await;
    assert!(matches!(e, CommandError::TooLarge { ref field, .. } if field == "title"), "{e}");
    let e = s.refused(put_doc(DS, "readme", &"b".repeat(MAX_DOCUMENT_BYTES + 1))).await;
    assert!(matches!(e, CommandError::TooLarge { ref field, .. } if field == "body"), "{e}");

    // A refused proposal: the principal is checked too.
    let before = s.state_without_revisions().await;
    let a = s.apply_as(" ", None, put("mm://acme/model/m")).await;
    assert_eq!(a.result.unwrap_err().field(), Some("principal"));
    assert_eq!(s.state_without_revisions().await, before);
}

#[tokio::test]
async fn malformed_urns_are_refused_when_decoding_json_commands() {
    let cases = [
        (r#"{"op":"put_entity","urn":"mm://Acme/dataset/x"}"#, "mm://Acme/dataset/x"),
        (r#"{"op":"put_entity","urn":"mm://acme/table/x"}"#, "unknown kind `table`"),
        (r#"{"op":"delete_entity","urn":"mm://acme/dataset/a/b"}"#, "%2F"),
        (r#"{"op":"put_entity","urn":"mm://acme/dataset/x@2"}"#, "version is not allowed"),
        (r#"{"op":"add_edge","from":"mm://acme/dataset/a","kind":"consumed","to":"acme/run/r"}"#, "mm://"),
        (r#"{"op":"put_document","urn":"mm://acme/model/%zz","title":"t","body":"b"}"#, "two hex digits"),
    ];
    for (json, fragment) in cases {
        let err = serde_json::from_str::<Command>(json).expect_err(json).to_string();
        assert!(err.contains("invalid urn"), "{json}: {err}");
        assert!(err.contains(fragment), "{json}: {err} lacks {fragment}");
    }
    let p = r#"{"command":{"op":"delete_entity","urn":"mm://acme/run/"},"at_ms":1,"principal":"p"}"#;
    let err = serde_json::from_str::<Proposal>(p).unwrap_err().to_string();
    assert!(err.contains("name must not be empty"), "{err}");
}

#[tokio::test]
async fn documents_are_versioned_per_title_and_searchable() {
    let mut s = TestStore::with_tenant().await;
    let m = "mm://acme/model/churn";
    s.ok(put(m)).await;
    let doc = |o: Outcome| match o {
        Outcome::Document { version, title, .. } => (title, version),
        other => panic!("{other:?}"),
    };
    assert_eq!(doc(s.ok(put_doc(m, "model card", "Trained on quokka sightings.")).await), ("model card".into(), 1));
    let rev_v1 = s.rev;
    assert_eq!(doc(s.ok(put_doc(m, "model card", "Retrained on wombat counts.")).await), ("model card".into(), 2));
    assert_eq!(doc(s.ok(put_doc(m, "runbook", "Page the platypus team.")).await), ("runbook".into(), 1));

    let docs = s.documents(&eu(m), None).await.unwrap();
    let shown: Vec<(&str, u32, &str)> = docs.iter().map(|d| (d.title.as_str(), d.version, d.body.as_str())).collect();
    assert_eq!(
        shown,
        vec![("model card", 2, "Retrained on wombat counts."), ("runbook", 1, "Page the platypus team.")]
    );
    assert!(docs.iter().all(|d| !d.deleted && d.created_by == PRINCIPAL));
    let old = s.documents(&eu(m), Some(AsOf::Revision(rev_v1))).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!((old[0].version, old[0].body.as_str()), (1, "Trained on quokka sightings."));

    assert_eq!(hits(&s, "wombat").await, vec![m]);
    assert_eq!(hits(&s, "platypus").await, vec![m]);
    assert!(hits(&s, "quokka").await.is_empty(), "an old document version is not searched");

    // Delete one title: no longer listed nor found; deleting it again is refused.
    let out = s.ok(Command::DeleteDocument { urn: eu(m), title: "runbook".into() }).await;
    assert_eq!(doc(out), ("runbook".into(), 2));
    let titles: Vec<String> = s.documents(&eu(m), None).await.unwrap().into_iter().map(|d| d.title).collect();
    assert_eq!(titles, vec!["model card"]);
    assert!(hits(&s, "platypus").await.is_empty());
    assert_eq!(hits(&s, "wombat").await, vec![m]);
    let e = s.refused(Command::DeleteDocument { urn: eu(m), title: "runbook".into() }).await;
    assert!(matches!(&e, CommandError::NotFound(what) if what.contains("runbook")), "{e}");
    let e = s.refused(Command::DeleteDocument { urn: eu(m), title: "never".into() }).await;
    assert!(matches!(&e, CommandError::NotFound(what) if what.contains("never")), "{e}");
    // Writing it again continues its numbering.
    assert_eq!(doc(s.ok(put_doc(m, "runbook", "Page the echidna team.")).await), ("runbook".into(), 3));
    assert_eq!(hits(&s, "echidna").await, vec![m]);

    // Documents of an entity that does not exist.
    let e = s.refused(put_doc("mm://acme/model/ghost", "readme", "x")).await;
    assert_eq!(e, CommandError::NotFound("mm://acme/model/ghost".into()));
    // A document survives an entity update and stays searchable.
    s.ok(put(m)).await;
    assert_eq!(hits(&s, "echidna").await, vec![m]);
}

#[tokio::test]
async fn example_pipeline_applies_cleanly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/examples/pipeline.jsonl");
    let text = std::fs::read_to_string(path).expect("example pipeline");
    let mut s = TestStore::new().await;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cmd: Command = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        s.ok(cmd).await;
        n += 1;
    }
    assert_eq!(s.applied_revision().await.unwrap(), n);
    let model = s.current("mm://fraud/model/card-fraud-xgb").await;
    assert_eq!(model.version, 2);
    assert_eq!(model.properties["auc"], json!(0.947));
    let growth = s.current("mm://growth/dataset/s3:%2F%2Fgrowth-lake%2Fsignups").await;
    assert_eq!(growth.properties["rows"], json!(1_200_000));
}

async fn hits(s: &TestStore, q: &str) -> Vec<String> {
    urns_of(s.search(q, &ListFilter::default(), None, 10).await.unwrap().items.iter().map(|h| &h.entity))
}
