//! The audit log the store writes in the apply transaction: one record per change, none for
//! refused or retried commands, nothing left behind by a failed batch, the chain continued across
//! reopening, and a file that `metamesh_audit` verifies — and stops verifying once edited.

mod common;

use common::*;
use metamesh_audit::sqlite::{read_all, verify_file};
use metamesh_core::{Command, EdgeKind, Kind, Proposal};
use metamesh_store::StoreError;
use serde_json::json;

fn path(s: &TestStore) -> std::path::PathBuf {
    s.dir.path().join("shard.sqlite")
}

fn records(s: &TestStore) -> Vec<(String, String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(path(s)).unwrap();
    read_all(&conn).unwrap().into_iter().map(|r| (r.principal, r.action, r.resource, r.request_id)).collect()
}

#[tokio::test]
async fn every_change_is_recorded_once_and_the_chain_verifies() {
    let mut s = TestStore::with_tenant().await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    s.ok(Command::Batch { commands: vec![put("mm://acme/dataset/a"), put("mm://acme/dataset/b")] }).await;
    s.ok(add_edge("mm://acme/dataset/a", EdgeKind::DerivedFrom, "mm://acme/dataset/b")).await;
    s.ok(put_doc("mm://acme/dataset/a", "readme", "# hello")).await;
    // Refused and retried commands change nothing, so they leave no record.
    s.refused(put("mm://nope/dataset/x")).await;
    s.apply_as("bob", Some("r-1"), delete("mm://acme/dataset/b")).await;
    s.apply_as("bob", Some("r-1"), delete("mm://acme/dataset/b")).await;

    let got = records(&s);
    let want: Vec<(&str, &str, &str)> = vec![
        (PRINCIPAL, "tenant.create", "mm://acme"),
        (PRINCIPAL, "schema.write", "mm://acme/type/Table"),
        (PRINCIPAL, "write", "mm://acme/dataset/a"),
        (PRINCIPAL, "write", "mm://acme/dataset/b"),
        (PRINCIPAL, "link", "mm://acme/dataset/a -derived_from-> mm://acme/dataset/b"),
        (PRINCIPAL, "write", "mm://acme/dataset/a#document=readme"),
        ("bob", "delete", "mm://acme/dataset/b"),
    ];
    let got_short: Vec<(&str, &str, &str)> =
        got.iter().map(|(p, a, r, _)| (p.as_str(), a.as_str(), r.as_str())).collect();
    assert_eq!(got_short, want);
    assert_eq!(got.last().unwrap().3.as_deref(), Some("r-1"));

    // The chain continues after reopening (the writer reloads it).
    s.reopen().await;
    s.ok(put("mm://acme/dataset/c")).await;
    let report = verify_file(&path(&s), &[]).unwrap();
    assert_eq!(report.records, 8);
}

#[tokio::test]
async fn a_failed_batch_leaves_no_record_and_the_next_one_continues_the_chain() {
    let s = TestStore::with_tenant().await;
    let p = |cmd: Command| Proposal::new(cmd, s.now_ms, PRINCIPAL);
    let failing = vec![
        (2, p(put("mm://acme/dataset/a"))),
        (4, p(put("mm://acme/dataset/b"))),
        (3, p(put("mm://acme/dataset/c"))),
    ];
    assert!(matches!(s.store().apply_batch(failing, None).await, Err(StoreError::OutOfOrder { .. })));
    assert_eq!(records(&s).len(), 1, "only the tenant's creation");
    let ok = vec![(2, p(put("mm://acme/dataset/a"))), (3, p(put("mm://acme/dataset/b")))];
    s.store().apply_batch(ok, None).await.unwrap();
    assert_eq!(verify_file(&path(&s), &[]).unwrap().records, 3);
}

#[tokio::test]
async fn the_log_is_append_only_and_an_edit_is_found() {
    let mut s = TestStore::with_tenant().await;
    for i in 0..5 {
        s.ok(put_typed_free(&format!("mm://acme/dataset/d{i}"))).await;
    }
    let conn = rusqlite::Connection::open(path(&s)).unwrap();
    let refused = conn.execute("UPDATE audit SET principal = 'mallory' WHERE seq = 3", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    assert!(conn.execute("DELETE FROM audit WHERE seq = 6", []).is_err());
    // An attacker with the file drops the triggers and rewrites a record.
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET principal = 'mallory' WHERE seq = 3;").unwrap();
    drop(conn);
    let err = verify_file(&path(&s), &[]).unwrap_err();
    assert!(err.to_string().contains('3'), "{err}");
}

fn put_typed_free(urn: &str) -> Command {
    let mut s = spec(urn);
    s.properties = json!({"n": 1});
    Command::PutEntity(s)
}

#[tokio::test]
async fn a_checkpoint_is_stored_only_if_it_matches_the_log() {
    let mut s = TestStore::with_tenant().await;
    s.ok(put("mm://acme/dataset/a")).await;
    let key = std::sync::Arc::new(metamesh_audit::ShardKey::generate());
    let cp = s.audit_checkpoint(key.clone(), "s1".into(), s.now_ms).await.unwrap().expect("records to cover");
    assert_eq!(cp.size, 2);
    // Forged: a root that is not this log's.
    let mut forged = cp.clone();
    forged.root[0] ^= 1;
    let refused = s.refused(Command::AuditCheckpoint { checkpoint: serde_json::to_value(&forged).unwrap() }).await;
    assert!(refused.to_string().contains("checkpoint"), "{refused}");
    s.ok(Command::AuditCheckpoint { checkpoint: serde_json::to_value(&cp).unwrap() }).await;
    // Nothing new to cover: no checkpoint is made.
    assert!(s.audit_checkpoint(key.clone(), "s1".into(), s.now_ms).await.unwrap().is_none());
    let report = verify_file(&path(&s), &[key.verifying_key()]).unwrap();
    assert_eq!((report.checkpoints, report.covered), (1, 2));
}
