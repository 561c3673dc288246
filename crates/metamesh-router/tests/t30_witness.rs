//! The router is a witness of every shard's signed audit checkpoints: a shard whose history is
//! rewritten on every replica — records changed, the hash chain recomputed, the checkpoints
//! re-signed with the shard's own key, so that each replica verifies on its own — is caught
//! when its next checkpoint does not extend the one the router witnessed.

use std::path::Path;
use std::time::{Duration, Instant};

use metamesh_audit::merkle::Frontier;
use metamesh_audit::{Checkpoint, ShardKey};
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::transport::Channel;

fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud"])], 3);
    spec.checkpoint_every_ms = Some(300);
    spec.policy = std::sync::Arc::new(|dir: &Path| {
        let all = LocalMesh::principal("all");
        metamesh_testkit::policy::write_policy(
            dir,
            &metamesh_testkit::policy::all_rights(std::slice::from_ref(&all)),
            &[],
        );
    });
    spec
}

async fn witness(router: &Channel) -> v1::ComponentHealth {
    let health = AdminServiceClient::new(router.clone()).health(v1::HealthRequest {}).await.unwrap().into_inner();
    health.components.into_iter().find(|c| c.name == "witness").expect("a witness component")
}

async fn put(router: &Channel, urn: &str) {
    CatalogServiceClient::new(router.clone())
        .put_entity(v1::PutEntityRequest { request_id: format!("put {urn}"), urn: urn.into(), ..Default::default() })
        .await
        .unwrap();
}

/// Rewrites record 2 of the replica's audit log and everything after it, and re-signs every
/// checkpoint over the new history with the shard's key: what an attacker who can write every
/// replica's files and holds the key can do.
fn rewrite(data_dir: &Path, key: &ShardKey) {
    let path = metamesh_raft::state_machine::live_state_file(data_dir).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
         DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;",
    )
    .unwrap();
    let mut records = metamesh_audit::sqlite::read_all(&conn).unwrap();
    let checkpoints = metamesh_audit::sqlite::read_checkpoints(&conn).unwrap();
    assert!(records.len() >= 3 && !checkpoints.is_empty(), "nothing to rewrite yet");
    records[1].resource = "mm://fraud/dataset/nothing-to-see".into();
    for i in 1..records.len() {
        records[i].prev_hash = records[i - 1].hash;
        records[i].hash = records[i].compute_hash();
    }
    conn.execute("DELETE FROM audit WHERE seq >= 2", []).unwrap();
    for r in &records[1..] {
        metamesh_audit::sqlite::insert_record(&conn, r).unwrap();
    }
    conn.execute("DELETE FROM audit_checkpoints", []).unwrap();
    for cp in checkpoints {
        let mut f = Frontier::new();
        records[..cp.size as usize].iter().for_each(|r| f.push(&r.hash));
        let forged = Checkpoint::sign(cp.shard.clone(), cp.size, f.root(), cp.at_ms, key.signing_key());
        metamesh_audit::sqlite::insert_checkpoint(&conn, &forged).unwrap();
    }
    // Each replica's own verification passes: the chain and its checkpoints agree.
    let report = metamesh_audit::sqlite::verify_conn(&conn, &[key.verifying_key()], &[]);
    assert!(report.is_ok(), "the forgery does not verify locally: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_history_is_reported_by_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let router = mesh.router("all").await;
    for i in 0..5 {
        put(&router, &format!("mm://fraud/dataset/d{i}")).await;
    }
    // The router witnesses a checkpoint of s1.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = witness(&router).await;
        assert!(w.ok, "an honest shard flagged: {w:?}");
        if w.detail.contains("witnessed: s1 at") {
            break;
        }
        assert!(Instant::now() < deadline, "s1 was never witnessed: {w:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Honest growth stays accepted.
    put(&router, "mm://fraud/dataset/d5").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(witness(&router).await.ok);

    // Every replica's history is rewritten the same way, while the group is down.
    mesh.stop_group("s1").await;
    let key = ShardKey::load(&mesh.dir.join("keys").join("s1.audit.key")).unwrap();
    for id in 1..=3 {
        rewrite(&mesh.dir.join("data").join(format!("s1-{id}")), &key);
    }
    mesh.start_group("s1").await.unwrap();
    put(&router, "mm://fraud/dataset/after").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let w = witness(&router).await;
        if !w.ok {
            assert!(w.detail.contains("s1"), "{w:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the rewritten history was not reported: {w:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    mesh.shutdown().await;
}
