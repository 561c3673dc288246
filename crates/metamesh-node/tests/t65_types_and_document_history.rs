//! SchemaService.ListTypes and the document history of CatalogService.ListDocuments over real
//! mTLS, with their bad input.

mod common;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::schema_service_client::SchemaServiceClient;
use tonic::transport::Channel;
use tonic::Code;

const OPEN: &str = r#"{"type":"object"}"#;
const CLOSED: &str = r#"{"type":"object","additionalProperties":false}"#;
/// `CLOSED` plus an optional property: a backward-compatible second version.
const WITH_ROWS: &str = r#"{"type":"object","properties":{"rows":{"type":"integer"}},"additionalProperties":false}"#;
const M: &str = "mm://fraud/model/scorer";

async fn register(ch: &Channel, type_name: &str, base_kind: &str, schema_json: &str) -> v1::SchemaVersion {
    let request = v1::RegisterSchemaRequest {
        tenant: "fraud".into(),
        type_name: type_name.into(),
        base_kind: base_kind.into(),
        schema_json: schema_json.into(),
        ..Default::default()
    };
    SchemaServiceClient::new(ch.clone()).register_schema(request).await.expect("register").into_inner()
}

fn list_types(base_kind: &str, page_size: u32, page_token: &str) -> v1::ListTypesRequest {
    v1::ListTypesRequest {
        tenant: "fraud".into(),
        base_kind: base_kind.into(),
        page_size,
        page_token: page_token.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_are_listed_with_their_latest_version() {
    let node = Node::start().await;
    let ch = node.alice().await;
    create_tenant(&ch, "fraud").await;
    create_tenant(&ch, "empty").await;
    register(&ch, "Table", "dataset", CLOSED).await;
    let model = register(&ch, "Model", "model", OPEN).await;
    let table = register(&ch, "Table", "dataset", WITH_ROWS).await;
    let mut schemas = SchemaServiceClient::new(ch.clone());

    let all = schemas.list_types(list_types("", 0, "")).await.unwrap().into_inner();
    assert_eq!(all.types, [model.clone(), table.clone()]);
    assert_eq!(all.next_page_token, "");
    let datasets = schemas.list_types(list_types("dataset", 0, "")).await.unwrap().into_inner();
    assert_eq!(datasets.types, std::slice::from_ref(&table));
    let empty = v1::ListTypesRequest { tenant: "empty".into(), ..Default::default() };
    assert!(schemas.list_types(empty).await.unwrap().into_inner().types.is_empty());

    // One type per page; a type registered meanwhile does not shift the pages.
    let first = schemas.list_types(list_types("", 1, "")).await.unwrap().into_inner();
    assert_eq!(first.types, [model]);
    register(&ch, "Feature", "feature", OPEN).await;
    let second = schemas.list_types(list_types("", 1, &first.next_page_token)).await.unwrap().into_inner();
    assert_eq!((second.types, second.next_page_token), (vec![table], String::new()));

    let bad_kind = schemas.list_types(list_types("spaceship", 0, "")).await;
    assert_refused(bad_kind, Code::InvalidArgument, "base_kind");
    let bad_tenant = schemas.list_types(v1::ListTypesRequest { tenant: "Not A Tenant".into(), ..Default::default() });
    assert_refused(bad_tenant.await, Code::InvalidArgument, "tenant");
    let unknown = schemas.list_types(v1::ListTypesRequest { tenant: "nobody".into(), ..Default::default() }).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    assert_refused(schemas.list_types(list_types("", 0, "bm90IGpzb24")).await, Code::InvalidArgument, "page_token");
    assert_refused(schemas.list_types(list_types("", 5000, "")).await, Code::InvalidArgument, "page_size");
}

fn put_doc(title: &str, body: &str) -> v1::PutDocumentRequest {
    v1::PutDocumentRequest {
        entity_urn: M.into(),
        title: title.into(),
        body_markdown: body.into(),
        ..Default::default()
    }
}

fn list_docs(all_versions: bool, include_deleted: bool) -> v1::ListDocumentsRequest {
    v1::ListDocumentsRequest { entity_urn: M.into(), all_versions, include_deleted, ..Default::default() }
}

fn shown(reply: &v1::ListDocumentsReply) -> Vec<(&str, u32, bool)> {
    reply.documents.iter().map(|d| (d.title.as_str(), d.version, d.deleted)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_history_lists_every_version_and_tombstones_on_request() {
    let node = Node::start().await;
    let ch = node.alice().await;
    create_tenant(&ch, "fraud").await;
    put_entity(&ch, M).await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    let first = catalog.put_document(put_doc("card", "first")).await.unwrap().into_inner().revision;
    catalog.put_document(put_doc("card", "second")).await.unwrap();
    catalog.put_document(put_doc("runbook", "page someone")).await.unwrap();
    let delete = v1::DeleteDocumentRequest { entity_urn: M.into(), title: "runbook".into(), ..Default::default() };
    catalog.delete_document(delete).await.unwrap();

    let latest = catalog.list_documents(list_docs(false, false)).await.unwrap().into_inner();
    assert_eq!(shown(&latest), [("card", 2, false)]);
    let with_deleted = catalog.list_documents(list_docs(false, true)).await.unwrap().into_inner();
    assert_eq!(shown(&with_deleted), [("card", 2, false), ("runbook", 2, true)]);
    let history = catalog.list_documents(list_docs(true, false)).await.unwrap().into_inner();
    assert_eq!(shown(&history), [("card", 2, false), ("card", 1, false)]);
    assert_eq!(history.documents[1].body_markdown, "first");
    assert_eq!(history.documents[1].revision, first);
    let everything = catalog.list_documents(list_docs(true, true)).await.unwrap().into_inner();
    assert_eq!(
        shown(&everything),
        [("card", 2, false), ("card", 1, false), ("runbook", 2, true), ("runbook", 1, false)]
    );

    // As of the first version's revision, and one version per page.
    let as_of = v1::AsOf { point: Some(v1::as_of::Point::Revision(first)) };
    let old = catalog.list_documents(v1::ListDocumentsRequest { as_of: Some(as_of), ..list_docs(true, true) });
    assert_eq!(shown(&old.await.unwrap().into_inner()), [("card", 1, false)]);
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let request = v1::ListDocumentsRequest { page_size: 1, page_token: token, ..list_docs(true, true) };
        let page = catalog.list_documents(request).await.unwrap().into_inner();
        pages.extend(page.documents.iter().map(|d| (d.title.clone(), d.version)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert_eq!(pages, shown(&everything).iter().map(|(t, v, _)| (t.to_string(), *v)).collect::<Vec<_>>());

    let unknown = v1::ListDocumentsRequest { entity_urn: "mm://fraud/model/nope".into(), ..list_docs(true, false) };
    assert_eq!(catalog.list_documents(unknown).await.unwrap_err().code(), Code::NotFound);
    let forged = v1::ListDocumentsRequest { page_token: "e30".into(), ..list_docs(true, false) };
    assert_refused(catalog.list_documents(forged).await, Code::InvalidArgument, "page_token");
    // Compare-and-set on documents is not served: it needs the write path to carry it.
    let cas = catalog.put_document(v1::PutDocumentRequest { expect_version: Some(2), ..put_doc("card", "third") });
    assert_eq!(cas.await.unwrap_err().code(), Code::Unimplemented);
}
