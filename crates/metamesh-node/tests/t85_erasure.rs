//! GDPR erasure: the named properties leave every version and the named documents' bodies every
//! version; search no longer finds them; the audit log says who erased which fields of what,
//! and never holds the values; a caller without the right learns nothing.

mod common;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_tls::Role;
use tonic::Code;

const URN: &str = "mm://crm/dataset/customers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_the_values_from_history_and_the_audit_keeps_only_the_names() {
    let node = Node::start().await;
    create_tenant(&node.alice().await, "crm").await;
    let mut alice = CatalogServiceClient::new(node.alice().await);
    for (email, rows) in [("ann@example.com", 1), ("bob@example.com", 2)] {
        alice
            .put_entity(v1::PutEntityRequest {
                urn: URN.into(),
                properties_json: format!(r#"{{"owner_email":"{email}","rows":{rows}}}"#),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    alice
        .put_document(v1::PutDocumentRequest {
            entity_urn: URN.into(),
            title: "contacts".into(),
            body_markdown: "call zebediah on 555-0100".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let search = SearchServiceClient::new(node.alice().await);
    let found = |q: &'static str| {
        let mut search = search.clone();
        async move {
            search
                .search(v1::SearchRequest { query: q.into(), ..Default::default() })
                .await
                .unwrap()
                .into_inner()
                .hits
                .len()
        }
    };
    assert_eq!(found("zebediah").await, 1);

    // Someone without rights: refused without learning that the entity exists.
    let mut mallory = CatalogServiceClient::new(node.channel(Role::Client, "mallory").await);
    let refused = mallory
        .erase_entity_data(v1::EraseEntityDataRequest {
            urn: URN.into(),
            properties: vec!["owner_email".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    // Bad input: nothing named.
    let empty = alice.erase_entity_data(v1::EraseEntityDataRequest { urn: URN.into(), ..Default::default() }).await;
    assert_refused(empty, Code::InvalidArgument, "properties");

    let erased = alice
        .erase_entity_data(v1::EraseEntityDataRequest {
            urn: URN.into(),
            properties: vec!["owner_email".into()],
            documents: vec!["contacts".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((erased.versions, erased.documents), (2, 1));

    // Every version lost the property and kept the rest.
    let versions = alice
        .list_versions(v1::ListVersionsRequest { urn: URN.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 2);
    for v in &versions {
        assert!(!v.properties_json.contains("example.com"), "{}", v.properties_json);
        assert!(v.properties_json.contains("rows"), "{}", v.properties_json);
    }
    let docs = alice
        .list_documents(v1::ListDocumentsRequest { entity_urn: URN.into(), all_versions: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .documents;
    assert!(docs.iter().all(|d| d.body_markdown.is_empty() && d.title == "contacts"), "{docs:?}");
    assert_eq!(found("zebediah").await, 0, "the search index forgot the erased text");

    // The audit: who erased which fields; the values are nowhere in the log.
    let conn = rusqlite::Connection::open(node.replica.local_store().path()).unwrap();
    let records = metamesh_audit::sqlite::read_all(&conn).unwrap();
    let erase = records.iter().find(|r| r.action == "erase").expect("an erase record");
    assert_eq!(erase.principal, node.principal(Role::Client, "alice"));
    assert!(erase.resource.contains("owner_email") && erase.resource.contains("contacts"), "{}", erase.resource);
    // No table of the state keeps a copy of the erased values.
    let dump: String = conn
        .query_row(
            "SELECT group_concat(properties, ' ') || (SELECT group_concat(body, ' ') FROM documents) FROM versions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains("example.com") && !dump.contains("zebediah"), "{dump}");
}
