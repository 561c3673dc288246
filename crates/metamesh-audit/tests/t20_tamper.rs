//! The tamper matrix on a real SQLite file: every edit an attacker with write access can make
//! is caught by `verify_file`, which names the spot; an untouched file verifies.

mod common;

use std::path::Path;

use common::{attacker, build_file, checkpoints, draft, key, SHARD};
use metamesh_audit::merkle::Frontier;
use metamesh_audit::sqlite::{self, verify_file, verify_file_with};
use metamesh_audit::{AuditError, Chain, Checkpoint, Spot, VerifyError, VerifyReport};
use rusqlite::{params, Connection};

const N: u64 = 100;
const EVERY: u64 = 25;

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = build_file(dir.path(), N, EVERY, &key(1));
    (dir, path)
}

fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    match verify_file(path, &[key(1).verifying_key()]) {
        Ok(report) => Ok(report),
        Err(AuditError::Verify(e)) => Err(e),
        Err(other) => panic!("verify failed for another reason: {other}"),
    }
}

fn spot(path: &Path) -> Spot {
    verify(path).expect_err("tampering must be detected").spot()
}

/// Sets byte `offset` of every copy of `needle` in the file to `byte` (SQLite may keep stale
/// copies of a row in free pages; the live one is among them).
fn edit_bytes(path: &Path, needle: &[u8], offset: usize, byte: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    let hits: Vec<usize> =
        bytes.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    assert!(!hits.is_empty(), "the record's text is in the file");
    for at in hits {
        bytes[at + offset] = byte;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn untouched_file_verifies() {
    let (_dir, path) = fixture();
    let report = verify(&path).unwrap();
    assert_eq!(report.records, N);
    assert_eq!(report.checkpoints, 4);
    assert_eq!((report.covered, report.uncovered), (N, 0));
    // The chain head in the report is the stored head.
    assert_eq!(report.head, sqlite::load_chain(&Connection::open(&path).unwrap()).unwrap().head());
}

#[test]
fn one_byte_changed_in_the_file() {
    let (_dir, path) = fixture();
    // principal-0037 -> principal-0038, one byte, straight in the file.
    edit_bytes(&path, b"principal-0037", 13, b'8');
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::HashMismatch { seq: 37 });
    assert_eq!(err.to_string(), "record 37: stored hash does not match the record's contents");
}

#[test]
fn every_column_changed_by_sql_is_named() {
    let changes = [
        "at_ms = at_ms + 1",
        "principal = principal || 'x'",
        "tenant = NULL",
        "action = 'entity.delete'",
        "resource = 'mm://fraud/dataset/other'",
        "decision = CASE decision WHEN 'allow' THEN 'deny' ELSE 'allow' END",
        "count = count + 1",
        "policy_digest = 'blake3:0000'",
        "request_id = 'req-forged'",
        "request_digest = zeroblob(32)",
        "prev_hash = zeroblob(32)",
        "hash = zeroblob(32)",
    ];
    for change in changes {
        let (_dir, path) = fixture();
        attacker(&path).execute(&format!("UPDATE audit SET {change} WHERE seq = 37"), []).unwrap();
        assert_eq!(spot(&path), Spot::Record(37), "{change}");
    }
}

#[test]
fn a_row_that_no_longer_decodes_is_named() {
    let (_dir, path) = fixture();
    // Through the file, not SQL (a STRICT table refuses bad values, bytes do not): the
    // principal of record 42 is no longer UTF-8.
    edit_bytes(&path, b"principal-0042", 0, 0xff);
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::Malformed { seq: 42, reason: "principal is not UTF-8".into() });
}

#[test]
fn delete_one() {
    let (_dir, path) = fixture();
    attacker(&path).execute("DELETE FROM audit WHERE seq = 37", []).unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::Gap { missing: 37, found: 38 });
}

/// Moves records `from..` up by one seq, making room for an inserted record.
fn make_room(conn: &Connection, from: u64) {
    conn.execute("UPDATE audit SET seq = seq + 1000000 WHERE seq >= ?1", [from]).unwrap();
    conn.execute("UPDATE audit SET seq = seq - 999999 WHERE seq >= 1000000", []).unwrap();
}

#[test]
fn insert_one() {
    // A replayed copy of record 36 slipped in as 37.
    let (_dir, path) = fixture();
    let conn = attacker(&path);
    make_room(&conn, 37);
    conn.execute(
        "INSERT INTO audit SELECT 37, at_ms, principal, tenant, action, resource, decision, count, policy_digest, \
         request_id, request_digest, prev_hash, hash FROM audit WHERE seq = 36",
        [],
    )
    .unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::HashMismatch { seq: 37 });
}

#[test]
fn insert_one_with_a_correct_hash() {
    // The attacker computes a valid record 37 on top of 36: the break is at the next record,
    // which no longer sits at the seq its hash was computed for.
    let (_dir, path) = fixture();
    let conn = attacker(&path);
    let r36 = sqlite::read_record(&conn, 36).unwrap().unwrap();
    make_room(&conn, 37);
    let mut chain = Chain::resume(36, r36.hash);
    let forged = chain.append(draft(999)).unwrap();
    sqlite::insert_record(&conn, &forged).unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::HashMismatch { seq: 38 });
}

#[test]
fn swap_two() {
    let (_dir, path) = fixture();
    let conn = attacker(&path);
    conn.execute_batch(
        "UPDATE audit SET seq = 1000000 WHERE seq = 37;
         UPDATE audit SET seq = 37 WHERE seq = 38;
         UPDATE audit SET seq = 38 WHERE seq = 1000000;",
    )
    .unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::HashMismatch { seq: 37 });
}

#[test]
fn rewrite_history_with_recomputed_hashes() {
    // The careful attacker: change record 37 and recompute every hash after it. The chain is
    // consistent again; the signed checkpoint of size 50 is not.
    let (_dir, path) = fixture();
    let conn = attacker(&path);
    let mut records = sqlite::read_all(&conn).unwrap();
    records[36].resource = "mm://fraud/dataset/innocent".into();
    let mut chain = Chain::resume(36, records[35].hash);
    conn.execute("DELETE FROM audit WHERE seq >= 37", []).unwrap();
    for r in &records[36..] {
        let mut d = draft(r.seq);
        d.resource = r.resource.clone();
        let rewritten = chain.append(d).unwrap();
        sqlite::insert_record(&conn, &rewritten).unwrap();
    }
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::RootMismatch { first: 26, last: 50 });
    assert_eq!(err.spot(), Spot::Records { first: 26, last: 50 });
    assert_eq!(err.to_string(), "records 26..=50 do not match the signed checkpoint of size 50");
}

#[test]
fn truncate_the_tail() {
    let (_dir, path) = fixture();
    let conn = attacker(&path);
    conn.execute("DELETE FROM audit WHERE seq > 90", []).unwrap();
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::Truncated { records: 90, size: 100 });
    assert_eq!(err.spot(), Spot::Record(91));
    // The leader will not sign over a log shorter than its last checkpoint either.
    let refused = sqlite::append_checkpoint(&conn, &key(1), SHARD, 0).unwrap_err();
    assert!(matches!(refused, AuditError::BeyondLog { size: 100, records: 90 }), "{refused}");
}

#[test]
fn truncate_the_tail_and_its_checkpoints_is_caught_by_a_witness() {
    let (_dir, path) = fixture();
    let witness = checkpoints(&path).pop().unwrap();
    let conn = attacker(&path);
    conn.execute("DELETE FROM audit WHERE seq > 90", []).unwrap();
    conn.execute("DELETE FROM audit_checkpoints WHERE size > 75", []).unwrap();
    // The file alone is consistent up to 90 (15 records past its last checkpoint)...
    let report = verify(&path).unwrap();
    assert_eq!((report.records, report.covered, report.uncovered), (90, 75, 15));
    // ...but not with the router's latest checkpoint.
    let err = verify_file_with(&path, &[key(1).verifying_key()], &[witness]).unwrap_err();
    assert_eq!(err.verify_error().unwrap().spot(), Spot::Record(91));
}

/// Deletes records after `keep` and checkpoints above it, and stores the checkpoint `checkpoint`
/// makes from the size and root of what is left.
fn truncate_and_resign(path: &Path, keep: u64, checkpoint: impl FnOnce(u64, [u8; 32]) -> Checkpoint) {
    let conn = attacker(path);
    conn.execute("DELETE FROM audit WHERE seq > ?1", [keep]).unwrap();
    conn.execute("DELETE FROM audit_checkpoints WHERE size > ?1", [keep]).unwrap();
    let mut frontier = Frontier::new();
    for r in sqlite::read_all(&conn).unwrap() {
        frontier.push(&r.hash);
    }
    let cp = checkpoint(keep, frontier.root());
    conn.execute(
        "INSERT INTO audit_checkpoints VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            keep as i64,
            &cp.root[..],
            cp.at_ms,
            cp.shard,
            &cp.key_id.0[..],
            &cp.signature[..],
            frontier.to_bytes()
        ],
    )
    .unwrap();
}

#[test]
fn truncate_the_tail_and_resign_with_another_key() {
    let (_dir, path) = fixture();
    let mallory = key(66);
    truncate_and_resign(&path, 90, |size, root| Checkpoint::sign(SHARD, size, root, 0, mallory.signing_key()));
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey { size: 90, key_id: mallory.key_id() });
    assert_eq!(err.spot(), Spot::Checkpoint(90));
}

#[test]
fn truncate_the_tail_and_resign_claiming_the_shard_key() {
    let (_dir, path) = fixture();
    truncate_and_resign(&path, 90, |size, root| {
        let mut cp = Checkpoint::sign(SHARD, size, root, 0, key(66).signing_key());
        cp.key_id = key(1).key_id();
        cp
    });
    assert_eq!(verify(&path).unwrap_err(), VerifyError::BadSignature { size: 90 });
}

#[test]
fn forged_checkpoints() {
    // A signed root changed.
    let (_dir, path) = fixture();
    attacker(&path).execute("UPDATE audit_checkpoints SET root = zeroblob(32) WHERE size = 50", []).unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::BadSignature { size: 50 });

    // A signature copied from another checkpoint.
    let (_dir, path) = fixture();
    attacker(&path)
        .execute("UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE size = 25) WHERE size = 75", [])
        .unwrap();
    assert_eq!(spot(&path), Spot::Checkpoint(75));

    // A checkpoint for a log that never was, properly signed by the shard key: the records
    // say otherwise (this is what a stolen key cannot hide).
    let (_dir, path) = fixture();
    let stolen = Checkpoint::sign(SHARD, 60, [7; 32], 0, key(1).signing_key());
    attacker(&path)
        .execute(
            "INSERT INTO audit_checkpoints VALUES (60, ?1, 0, ?2, ?3, ?4, x'')",
            params![&stolen.root[..], SHARD, &stolen.key_id.0[..], &stolen.signature[..]],
        )
        .unwrap();
    assert_eq!(verify(&path).unwrap_err(), VerifyError::RootMismatch { first: 51, last: 60 });
}

#[test]
fn triggers_refuse_update_delete_and_a_broken_chain() {
    let (_dir, path) = fixture();
    let conn = Connection::open(&path).unwrap();
    for sql in [
        "UPDATE audit SET principal = 'x' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 100",
        "DELETE FROM audit",
        "UPDATE audit_checkpoints SET at_ms = 0",
        "DELETE FROM audit_checkpoints WHERE size = 25",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("audit is append-only"), "{sql}: {err}");
    }
    // A record that does not extend the chain (a stale in-memory head, a replay).
    let stale = Chain::resume(99, [0; 32]).append(draft(1)).unwrap();
    let err = sqlite::insert_record(&conn, &stale).unwrap_err().to_string();
    assert!(err.contains("audit chain broken"), "{err}");
    let mut skipping = Chain::resume(101, sqlite::load_chain(&conn).unwrap().head());
    let err = sqlite::append_with(&conn, &mut skipping, draft(1)).unwrap_err().to_string();
    assert!(err.contains("audit chain broken"), "{err}");
    assert_eq!(skipping.last_seq(), 101, "a refused append leaves the cached head alone");
    // Nothing changed.
    verify(&path).unwrap();
}
