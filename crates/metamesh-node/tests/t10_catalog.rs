//! CatalogService over real mTLS: round trips, idempotent retries, refusals and pagination.

mod common;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::schema_service_client::SchemaServiceClient;
use metamesh_tls::Role;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_round_trip_records_the_certificate_principal() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;

    let put = catalog
        .put_entity(v1::PutEntityRequest {
            tags: vec!["pii".into()],
            owner: "team-fraud".into(),
            description: "card transactions".into(),
            ..common::put("mm://fraud/dataset/s3:%2F%2Fbucket%2Ftx", r#"{"rows": 3}"#)
        })
        .await
        .unwrap()
        .into_inner();
    let written = put.entity.unwrap();
    let alice = node.principal(Role::Client, "alice");
    assert_eq!(written.created_by, alice);
    assert_eq!(written.updated_by, alice);
    assert_eq!((written.version, written.revision), (1, put.revision));
    assert_eq!(written.name, "s3://bucket/tx");

    let got = catalog
        .get_entity(v1::GetEntityRequest { urn: written.urn.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let entity = got.entity.unwrap();
    assert_eq!(entity, written);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&entity.properties_json).unwrap()["rows"], 3);
    assert!(got.read_revision >= put.revision);

    // Tenants are listed and read back.
    let tenant = catalog.get_tenant(v1::GetTenantRequest { name: "fraud".into(), ..Default::default() }).await;
    assert_eq!(tenant.unwrap().into_inner().tenant.unwrap().shard_group, SHARD);
    let tenants = catalog.list_tenants(v1::ListTenantsRequest::default()).await.unwrap().into_inner();
    assert_eq!(tenants.tenants.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["fraud"]);

    // Documents attach to the entity.
    let doc = catalog
        .put_document(v1::PutDocumentRequest {
            entity_urn: written.urn.clone(),
            title: "readme".into(),
            body_markdown: "# tx".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (doc.document.as_ref().unwrap().version, doc.document.as_ref().unwrap().created_by.as_str()),
        (1, alice.as_str())
    );
    let docs = catalog
        .list_documents(v1::ListDocumentsRequest { entity_urn: written.urn.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(docs.documents.len(), 1);
    assert_eq!(docs.documents[0].body_markdown, "# tx");

    // A delete hides the entity unless the tombstone is asked for.
    catalog.delete_entity(v1::DeleteEntityRequest { urn: written.urn.clone(), ..Default::default() }).await.unwrap();
    let gone = catalog.get_entity(v1::GetEntityRequest { urn: written.urn.clone(), ..Default::default() }).await;
    assert_refused(gone, Code::NotFound, "");
    let tomb = catalog
        .get_entity(v1::GetEntityRequest { urn: written.urn.clone(), include_deleted: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(tomb.entity.unwrap().deleted);
    // An earlier version stays readable by name.
    let v1 = catalog
        .get_entity(v1::GetEntityRequest { urn: format!("{}@1", written.urn), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.entity.unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_returns_the_first_revision_and_writes_nothing() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    let request = v1::PutEntityRequest { request_id: "req-1".into(), ..put("mm://fraud/model/m", r#"{"a": 1}"#) };

    let first = catalog.put_entity(request.clone()).await.unwrap().into_inner();
    let again = catalog.put_entity(request.clone()).await.unwrap().into_inner();

    assert_eq!(again.revision, first.revision);
    assert_eq!(again.entity, first.entity);
    let versions = catalog
        .list_versions(v1::ListVersionsRequest { urn: "mm://fraud/model/m".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 1, "the retry wrote a second version");

    // Another caller using the same id is not a retry.
    let bob = CatalogServiceClient::new(node.channel(Role::Client, "bob").await).put_entity(request).await.unwrap();
    assert!(bob.into_inner().revision > first.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_right_code_and_field() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;

    let malformed = catalog.get_entity(v1::GetEntityRequest { urn: "fraud/dataset/x".into(), ..Default::default() });
    assert_refused(malformed.await, Code::InvalidArgument, "urn");
    let in_batch = catalog.batch_get_entities(v1::BatchGetEntitiesRequest {
        urns: vec!["mm://fraud/dataset/a".into(), "mm://Fraud/dataset/b".into()],
        ..Default::default()
    });
    assert_refused(in_batch.await, Code::InvalidArgument, "urns[1]");
    let unknown_tenant = catalog.put_entity(put("mm://nobody/dataset/x", "{}"));
    assert_refused(unknown_tenant.await, Code::NotFound, "");
    let no_tenant = catalog.get_tenant(v1::GetTenantRequest { name: "nobody".into(), ..Default::default() });
    assert_refused(no_tenant.await, Code::NotFound, "");
    let bad_json = catalog.put_entity(put("mm://fraud/dataset/x", "{nope"));
    assert_refused(bad_json.await, Code::InvalidArgument, "properties_json");
    let too_big = catalog.list_entities(v1::ListEntitiesRequest {
        tenant: "fraud".into(),
        page_size: 5000,
        ..Default::default()
    });
    assert_refused(too_big.await, Code::InvalidArgument, "page_size");
    let forged = catalog.list_entities(v1::ListEntitiesRequest {
        tenant: "fraud".into(),
        page_token: "bm90IGEgdG9rZW4".into(),
        ..Default::default()
    });
    assert_refused(forged.await, Code::InvalidArgument, "page_token");
    let bad_op = catalog.list_entities(v1::ListEntitiesRequest {
        tenant: "fraud".into(),
        property_filters: vec![v1::PropertyFilter { path: "a".into(), op: 99, value_json: "1".into() }],
        ..Default::default()
    });
    assert_refused(bad_op.await, Code::InvalidArgument, "property_filters[0].op");
    let mut lineage = LineageServiceClient::new(ch.clone());
    let direction = lineage.get_edges(v1::GetEdgesRequest {
        urns: vec!["mm://fraud/dataset/x".into()],
        direction: 42,
        ..Default::default()
    });
    assert_refused(direction.await, Code::InvalidArgument, "direction");

    // A schema violation names the properties.
    SchemaServiceClient::new(ch.clone())
        .register_schema(v1::RegisterSchemaRequest {
            tenant: "fraud".into(),
            type_name: "Table".into(),
            base_kind: "dataset".into(),
            schema_json: r#"{"type":"object","properties":{"rows":{"type":"integer"}},"required":["rows"]}"#.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let violation = catalog
        .put_entity(v1::PutEntityRequest {
            type_name: "Table".into(),
            ..put("mm://fraud/dataset/t", r#"{"rows":"x"}"#)
        })
        .await;
    assert_refused(violation, Code::InvalidArgument, "properties");
    // A batch element names itself.
    let batch = catalog
        .put_entities(v1::PutEntitiesRequest {
            entities: vec![put("mm://fraud/dataset/ok", "{}"), put("mm://fraud/dataset/bad", "[1]")],
            ..Default::default()
        })
        .await;
    assert_refused(batch, Code::InvalidArgument, "entities[1].properties");
    // Nothing of the refused writes exists.
    let listed = catalog
        .list_entities(v1::ListEntitiesRequest { tenant: "fraud".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.entities.is_empty(), "{:?}", listed.entities);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_through_one_snapshot() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut catalog = CatalogServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    let items = (0..7).map(|i| put(&format!("mm://fraud/dataset/d{i}"), "{}")).collect();
    catalog.put_entities(v1::PutEntitiesRequest { entities: items, ..Default::default() }).await.unwrap();
    put_entity(&ch, "mm://fraud/model/m").await;

    let request = |token: String| v1::ListEntitiesRequest {
        tenant: "fraud".into(),
        kind: "dataset".into(),
        page_size: 3,
        page_token: token,
        ..Default::default()
    };
    let first = catalog.list_entities(request(String::new())).await.unwrap().into_inner();
    // A write after the first page must not show up in later pages.
    put_entity(&ch, "mm://fraud/dataset/late").await;
    let mut seen: Vec<String> = first.entities.iter().map(|e| e.urn.clone()).collect();
    let mut token = first.next_page_token.clone();
    let mut pages = 1;
    while !token.is_empty() {
        let page = catalog.list_entities(request(token)).await.unwrap().into_inner();
        assert_eq!(page.read_revision, first.read_revision, "every page reads the first page's revision");
        seen.extend(page.entities.iter().map(|e| e.urn.clone()));
        token = page.next_page_token;
        pages += 1;
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = (0..7).map(|i| format!("mm://fraud/dataset/d{i}")).collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);

    // Versions page newest first.
    for _ in 0..4 {
        put_entity(&ch, "mm://fraud/model/m").await;
    }
    let mut versions = Vec::new();
    let mut token = String::new();
    loop {
        let page = catalog
            .list_versions(v1::ListVersionsRequest {
                urn: "mm://fraud/model/m".into(),
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        versions.extend(page.versions.iter().map(|v| v.version));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(versions, [5, 4, 3, 2, 1]);

    // Tenants page too.
    create_tenant(&ch, "growth").await;
    let one = catalog.list_tenants(v1::ListTenantsRequest { page_size: 1, ..Default::default() }).await.unwrap();
    let one = one.into_inner();
    let two = catalog
        .list_tenants(v1::ListTenantsRequest { page_size: 1, page_token: one.next_page_token.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((one.tenants[0].name.as_str(), two.tenants[0].name.as_str()), ("fraud", "growth"));
    assert!(two.next_page_token.is_empty());
}
