//! The router enforces the policy before forwarding (defence in depth), records its refusals in
//! the audit log of the shard they concern, refuses what it cannot route, and keeps internal
//! RPCs internal.

use std::time::{Duration, Instant};

use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::Code;

fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud"]), ("s2", &["growth"])], 1);
    spec.policy = std::sync::Arc::new(|dir: &std::path::Path| {
        let all = LocalMesh::principal("all");
        let reader = LocalMesh::principal("only-fraud");
        metamesh_testkit::policy::write_policy(
            dir,
            &metamesh_testkit::policy::all_rights(std::slice::from_ref(&all)),
            &[("fraud", &format!("g, {reader}, role:reader, fraud\n"))],
        );
    });
    spec
}

fn put(urn: &str) -> v1::PutEntityRequest {
    v1::PutEntityRequest { request_id: format!("put {urn}"), urn: urn.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_enforced_by_the_router_and_recorded_by_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let all = mesh.router("all").await;
    CatalogServiceClient::new(all.clone()).put_entity(put("mm://fraud/dataset/x")).await.unwrap();

    // A reader of fraud may not write there: the router refuses.
    let reader = mesh.router("only-fraud").await;
    let refused = CatalogServiceClient::new(reader.clone()).put_entity(put("mm://fraud/dataset/y")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // Growth is not even discoverable to it: the same NOT_FOUND a missing entity gets.
    let hidden = CatalogServiceClient::new(reader.clone())
        .get_entity(v1::GetEntityRequest { urn: "mm://growth/dataset/z".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    // Nothing was written.
    let missing = CatalogServiceClient::new(all.clone())
        .get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/y".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // The refusal reached fraud's shard log, under the reader's principal.
    let s1 = mesh.replica("s1", 1, mesh.client_tls("all")).await.expect("s1 up");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = AuditServiceClient::new(s1.clone())
            .list_records(v1::ListRecordsRequest {
                filter: Some(v1::AuditFilter {
                    principal: LocalMesh::principal("only-fraud"),
                    decision: v1::Decision::Deny as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        if let Some(r) = records.iter().find(|r| r.action == "write") {
            assert_eq!(r.tenant, "fraud");
            assert_eq!(r.resource, "mm://fraud/dataset/y");
            break;
        }
        assert!(Instant::now() < deadline, "the router's refusal was not recorded: {records:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_routed_is_refused_and_internal_rpcs_stay_internal() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let all = mesh.router("all").await;

    // One write spanning two shard groups: refused whole, nothing written.
    let spanning = CatalogServiceClient::new(all.clone())
        .put_entities(v1::PutEntitiesRequest {
            request_id: "span".into(),
            entities: vec![
                v1::PutEntityRequest { urn: "mm://fraud/dataset/a".into(), ..Default::default() },
                v1::PutEntityRequest { urn: "mm://growth/dataset/b".into(), ..Default::default() },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(spanning.code(), Code::InvalidArgument, "{spanning:?}");
    assert!(spanning.message().contains("shard group"), "{}", spanning.message());
    let a = CatalogServiceClient::new(all.clone())
        .get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/a".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(a.code(), Code::NotFound);

    // A read may span groups: one request per group, merged back into request order.
    CatalogServiceClient::new(all.clone()).put_entity(put("mm://growth/dataset/g")).await.unwrap();
    CatalogServiceClient::new(all.clone()).put_entity(put("mm://fraud/dataset/f")).await.unwrap();
    let both = CatalogServiceClient::new(all.clone())
        .batch_get_entities(v1::BatchGetEntitiesRequest {
            urns: vec![
                "mm://growth/dataset/g".into(),
                "mm://fraud/dataset/none".into(),
                "mm://fraud/dataset/f@1".into(),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<&str> = both.entities.iter().map(|e| e.urn.as_str()).collect();
    assert_eq!(got, ["mm://growth/dataset/g", "mm://fraud/dataset/f"], "{both:?}");
    assert_eq!(both.missing_urns, ["mm://fraud/dataset/none"]);
    assert!(!both.partial, "{both:?}");

    // A watch of every tenant would be one stream per group: through a router, name them.
    let watch = metamesh_proto::v1::watch_service_client::WatchServiceClient::new(all.clone())
        .watch(v1::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::InvalidArgument, "{watch:?}");

    // A tenant no group owns.
    let unknown = CatalogServiceClient::new(all.clone()).put_entity(put("mm://nowhere/dataset/a")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // A malformed URN reaches a node, which names the field.
    let bad = CatalogServiceClient::new(all.clone()).put_entity(put("not a urn")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");

    // A client may not speak for someone else, to the router or to a node.
    let mut forged =
        tonic::Request::new(v1::GetEntityRequest { urn: "mm://fraud/dataset/a".into(), ..Default::default() });
    forged.metadata_mut().insert("x-metamesh-principal", LocalMesh::principal("all").parse().unwrap());
    let forged = CatalogServiceClient::new(mesh.router("only-fraud").await).get_entity(forged).await.unwrap_err();
    assert_eq!(forged.code(), Code::PermissionDenied, "{forged:?}");

    // Replica-only and router-only RPCs refuse clients.
    let deliver = LineageServiceClient::new(all.clone())
        .deliver_references(v1::DeliverReferencesRequest { origin: "s9".into(), refs: vec![] })
        .await
        .unwrap_err();
    assert_eq!(deliver.code(), Code::PermissionDenied, "{deliver:?}");
    let s1 = mesh.replica("s1", 1, mesh.client_tls("all")).await.expect("s1 up");
    let record = AuditServiceClient::new(s1.clone())
        .record_event(v1::RecordEventRequest {
            principal: "someone-else".into(),
            action: "write".into(),
            count: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(record.code(), Code::PermissionDenied, "{record:?}");
    let deliver = LineageServiceClient::new(s1)
        .deliver_references(v1::DeliverReferencesRequest { origin: "s9".into(), refs: vec![] })
        .await
        .unwrap_err();
    assert_eq!(deliver.code(), Code::PermissionDenied, "{deliver:?}");
    mesh.shutdown().await;
}
