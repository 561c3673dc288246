//! Central compliance through the router: audit records of every shard in one listing (each
//! tagged with its shard), exports streamed as JSONL and CSV, verification per shard — for
//! auditors only.

use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::transport::Channel;
use tonic::Code;

fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud"]), ("s2", &["growth"])], 1);
    spec.policy = std::sync::Arc::new(|dir: &std::path::Path| {
        let all = LocalMesh::principal("all");
        let writer = LocalMesh::principal("writer");
        let global = format!(
            "{}g, {writer}, role:writer, *\n",
            metamesh_testkit::policy::all_rights(std::slice::from_ref(&all))
        );
        metamesh_testkit::policy::write_policy(dir, &global, &[]);
    });
    spec
}

async fn put(ch: &Channel, urn: &str) {
    CatalogServiceClient::new(ch.clone())
        .put_entity(v1::PutEntityRequest { request_id: format!("put {urn}"), urn: urn.into(), ..Default::default() })
        .await
        .unwrap();
}

async fn export(ch: &Channel, format: v1::ExportFormat, filter: v1::AuditFilter) -> String {
    let mut stream = AuditServiceClient::new(ch.clone())
        .export(v1::ExportRequest { filter: Some(filter), format: format as i32 })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        out.extend(chunk.data);
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_queries_span_every_shard_for_auditors_only() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let writer = mesh.router("writer").await;
    for i in 0..3 {
        put(&writer, &format!("mm://fraud/dataset/f{i}")).await;
        put(&writer, &format!("mm://growth/dataset/g{i}")).await;
    }
    let auditor = mesh.router("all").await;
    let by_writer = v1::AuditFilter { principal: LocalMesh::principal("writer"), ..Default::default() };

    // One listing over both shards, time-ordered, each record naming its shard.
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let page = AuditServiceClient::new(auditor.clone())
            .list_records(v1::ListRecordsRequest { filter: Some(by_writer.clone()), page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        assert!(!page.partial, "{:?}", page.missing_shards);
        records.extend(page.records);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(records.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(records.iter().filter(|r| r.shard == "s1" && r.tenant == "fraud").count(), 3);
    assert_eq!(records.iter().filter(|r| r.shard == "s2" && r.tenant == "growth").count(), 3);
    let growth = AuditServiceClient::new(auditor.clone())
        .list_records(v1::ListRecordsRequest {
            filter: Some(v1::AuditFilter { tenant: "growth".into(), ..by_writer.clone() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(growth.records.len(), 3);

    // Exports: every shard's records, one CSV header.
    let jsonl = export(&auditor, v1::ExportFormat::Jsonl, by_writer.clone()).await;
    let lines: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines.iter().filter(|l| l["shard"] == "s2").count(), 3, "{jsonl}");
    let csv = export(&auditor, v1::ExportFormat::Csv, by_writer.clone()).await;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7, "one header and six records: {csv}");
    assert_eq!(rows.iter().filter(|r| r.starts_with("seq,")).count(), 1, "{csv}");

    // Verification is per shard, and says which.
    for shard in ["s1", "s2"] {
        let v = AuditServiceClient::new(auditor.clone())
            .verify(v1::VerifyRequest { shard: shard.into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(v.ok && v.shard == shard && v.records_checked >= 3, "{v:?}");
    }
    let unnamed = AuditServiceClient::new(auditor.clone()).verify(v1::VerifyRequest::default()).await.unwrap_err();
    assert_eq!(unnamed.code(), Code::InvalidArgument, "{unnamed:?}");

    // A writer is no auditor: nothing of the log.
    let denied = AuditServiceClient::new(writer.clone())
        .verify(v1::VerifyRequest { shard: "s1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let listed = AuditServiceClient::new(writer.clone())
        .list_records(v1::ListRecordsRequest::default())
        .await
        .map(|r| r.into_inner().records.len());
    assert!(matches!(listed, Ok(0) | Err(_)), "a writer read audit records: {listed:?}");
    mesh.shutdown().await;
}
