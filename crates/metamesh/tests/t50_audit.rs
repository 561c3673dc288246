//! The audit log end to end: changes made through a real three-process shard group are recorded
//! by every replica in the same hash chain, `metamesh audit verify` accepts each replica's log,
//! and names the record an attacker edited in one of them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;

fn verify(data_dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(bin()).args(["audit", "verify", "--data-dir"]).arg(data_dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Once the group serves: alice's catalog client on node 1, with tenant `acme` created (retried
/// while the group elects its leader).
async fn acme(group: &ProcessGroup) -> CatalogServiceClient<tonic::transport::Channel> {
    for i in 0..3 {
        group.wait_serving(i).await;
    }
    let channel = metamesh_tls::connect(group.nodes[0].client, group.client_tls("alice"), "127.0.0.1").await.unwrap();
    let mut client = CatalogServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(status) =
        client.create_tenant(v1::CreateTenantRequest { name: "acme".into(), ..Default::default() }).await
    {
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_holds_the_same_verifiable_chain_and_an_edit_is_named() {
    let mut group = ProcessGroup::start(3);
    let mut client = acme(&group).await;
    let mut last = 0;
    for i in 0..10 {
        let reply = client
            .put_entity(v1::PutEntityRequest { urn: format!("mm://acme/dataset/d{i}"), ..Default::default() })
            .await
            .unwrap();
        last = reply.into_inner().revision;
    }
    // Every replica applied the last write before stopping.
    for i in 0..3 {
        let channel =
            metamesh_tls::connect(group.nodes[i].client, group.client_tls("alice"), "127.0.0.1").await.unwrap();
        let consistency = v1::ReadConsistency {
            mode: Some(v1::read_consistency::Mode::Follower(v1::read_consistency::FollowerRead {
                max_staleness_ms: 0,
                min_revision: last,
            })),
        };
        CatalogServiceClient::new(channel)
            .get_entity(v1::GetEntityRequest {
                urn: "mm://acme/dataset/d9".into(),
                consistency: Some(consistency),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    for node in &mut group.nodes {
        node.kill9();
    }

    let dirs: Vec<_> = (1..=3).map(|id| group.dir.path().join(format!("data-{id}"))).collect();
    let mut heads = Vec::new();
    for dir in &dirs {
        let (ok, text) = verify(dir);
        assert!(ok, "{text}");
        assert!(text.contains("11 records"), "one record per change: {text}");
        heads.push(text.split("head ").nth(1).unwrap().split(',').next().unwrap().to_owned());
    }
    assert!(heads.iter().all(|h| *h == heads[0]), "replicas disagree on the chain: {heads:?}");

    // Someone with the file rewrites who made change 5 on replica 2.
    let state = std::fs::read_to_string(dirs[1].join("state/CURRENT")).unwrap();
    let conn = rusqlite::Connection::open(dirs[1].join("state").join(state.trim())).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET principal = 'mallory' WHERE seq = 5;").unwrap();
    drop(conn);
    let (ok, text) = verify(&dirs[1]);
    assert!(!ok, "an edited log verified: {text}");
    assert!(text.contains("record 5"), "the edited record is named: {text}");
    assert!(verify(&dirs[0]).0, "the other replicas still verify");
}

fn metamesh(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_signs_checkpoints_and_a_record_is_proved_offline() {
    let keys = tempfile::tempdir().unwrap();
    let k = keys.path().to_str().unwrap().to_owned();
    assert!(metamesh(&["certs", "--dir", &k, "--shard-key", "s1", "--shard-key", "other"]).0);
    let key = format!("{k}/s1.audit.key");
    let public = format!("{k}/s1.audit.pub.pem");
    let mut group = ProcessGroup::start_with_env(3, |_| {
        vec![
            ("METAMESH_AUDIT__KEY".to_owned(), key.clone()),
            ("METAMESH_AUDIT__CHECKPOINT_EVERY_MS".to_owned(), "200".to_owned()),
        ]
    });
    let mut client = acme(&group).await;
    for i in 0..5 {
        client
            .put_entity(v1::PutEntityRequest { urn: format!("mm://acme/dataset/d{i}"), ..Default::default() })
            .await
            .unwrap();
    }

    // Within a few checkpoint periods every replica holds a signed checkpoint over all 6 records.
    let dir = |id: u64| group.dir.path().join(format!("data-{id}")).to_str().unwrap().to_owned();
    for id in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (ok, text) = metamesh(&["audit", "verify", "--data-dir", &dir(id), "--key", &public]);
            assert!(ok, "{text}");
            if text.contains("covering 6 records") {
                break;
            }
            assert!(Instant::now() < deadline, "no checkpoint over all records on node {id}: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The wrong key does not verify the checkpoints.
    let (ok, text) =
        metamesh(&["audit", "verify", "--data-dir", &dir(1), "--key", &format!("{k}/other.audit.pub.pem")]);
    assert!(!ok && text.contains("unknown key"), "{text}");

    // An inclusion proof of record 3, checked with nothing but the public key.
    let (ok, proof) = metamesh(&["audit", "prove", "--data-dir", &dir(2), "--seq", "3"]);
    assert!(ok, "{proof}");
    let proof_file = keys.path().join("proof.json");
    std::fs::write(&proof_file, &proof).unwrap();
    let p = proof_file.to_str().unwrap();
    let (ok, text) = metamesh(&["audit", "check-proof", p, "--key", &public]);
    assert!(ok, "{text}");
    assert!(text.contains("record 3"), "{text}");
    let (ok, text) = metamesh(&["audit", "check-proof", p, "--key", &format!("{k}/other.audit.pub.pem")]);
    assert!(!ok, "a proof checked against another shard's key: {text}");
    // A forged record does not check.
    let forged = proof.replacen("spiffe://test.mesh/client/alice", "spiffe://test.mesh/client/mallory", 1);
    assert_ne!(forged, proof, "the proof names the principal");
    std::fs::write(&proof_file, forged).unwrap();
    let (ok, text) = metamesh(&["audit", "check-proof", p, "--key", &public]);
    assert!(!ok, "a forged record checked: {text}");

    for node in &mut group.nodes {
        node.kill9();
    }
}
