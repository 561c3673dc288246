//! Consistency proofs from a SQLite file, checked offline against two signed checkpoints; and
//! the witness catching a shard whose history was rewritten by someone holding its key.

mod common;

use std::path::Path;

use common::{attacker, build_file, checkpoints, draft, key, SHARD};
use metamesh_audit::merkle::Frontier;
use metamesh_audit::{
    check_consistency, sqlite, AlarmReason, AuditError, Chain, Checkpoint, ConsistencyError, ConsistencyProof, Witness,
    WitnessError,
};
use rusqlite::Connection;

const N: u64 = 37;

#[test]
fn proofs_between_any_two_sizes_check_against_the_signed_roots() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_file(dir.path(), N, 10, &key(1));
    let conn = Connection::open(&path).unwrap();
    let cps = checkpoints(&path);
    assert_eq!(cps.iter().map(|c| c.size).collect::<Vec<_>>(), [10, 20, 30, 37]);
    let keys = [key(1).verifying_key()];
    for old in &cps {
        for new in cps.iter().filter(|c| c.size >= old.size) {
            let proof = sqlite::prove_consistency(&conn, old.size, new.size).unwrap();
            assert_eq!((proof.old_size, proof.new_size), (old.size, new.size));
            // What an offline checker reads: the JSON.
            let json = serde_json::to_string(&proof).unwrap();
            let proof: ConsistencyProof = serde_json::from_str(&json).unwrap();
            check_consistency(old, new, &proof, &keys).unwrap_or_else(|e| panic!("{} -> {}: {e}", old.size, new.size));
            if old.size < new.size {
                // Backwards, or with the checkpoints swapped, it does not check.
                assert!(check_consistency(new, old, &proof, &keys).is_err());
                let mut flipped = proof.clone();
                flipped.hashes[0][0] ^= 1;
                assert_eq!(
                    check_consistency(old, new, &flipped, &keys),
                    Err(ConsistencyError::Mismatch { old_size: old.size, new_size: new.size })
                );
            }
        }
    }
    // Sizes that are not checkpoints are proved too (roots recomputed by the checker).
    let proof = sqlite::prove_consistency(&conn, 3, 29).unwrap();
    let root = |n: u64| {
        let mut f = Frontier::new();
        sqlite::read_all(&conn).unwrap().iter().take(n as usize).for_each(|r| f.push(&r.hash));
        f.root()
    };
    proof.verify(&root(3), &root(29)).unwrap();
    // Another key, another shard, proof sizes that are not the checkpoints': refused, named.
    let (a, b) = (&cps[1], &cps[3]);
    let proof = sqlite::prove_consistency(&conn, a.size, b.size).unwrap();
    let err = check_consistency(a, b, &proof, &[key(2).verifying_key()]).unwrap_err();
    assert!(matches!(err, ConsistencyError::Checkpoint { size: 20, .. }), "{err}");
    let other = sqlite::prove_consistency(&conn, a.size, 36).unwrap();
    assert!(matches!(check_consistency(a, b, &other, &keys), Err(ConsistencyError::SizeMismatch { .. })));
}

#[test]
fn bad_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(build_file(dir.path(), N, 10, &key(1))).unwrap();
    let err = |old, new| sqlite::prove_consistency(&conn, old, new).unwrap_err();
    assert!(matches!(err(0, 5), AuditError::Consistency(ConsistencyError::EmptyOld)));
    assert!(matches!(err(6, 5), AuditError::Consistency(ConsistencyError::OldLarger { old_size: 6, new_size: 5 })));
    assert!(matches!(err(5, N + 1), AuditError::BeyondLog { size, records: N } if size == N + 1));
    assert_eq!(sqlite::prove_consistency(&conn, N, N).unwrap().hashes, Vec::<[u8; 32]>::new());
}

/// Rewrites record `seq` of the file and every hash after it, as someone who can write the file
/// and holds the shard key would, and replaces every checkpoint with one re-signed over the new
/// history (`resign`: false leaves the old checkpoints in place).
fn rewrite(path: &Path, seq: u64, resign: bool) {
    let conn = attacker(path);
    let mut records = sqlite::read_all(&conn).unwrap();
    let sizes: Vec<u64> = checkpoints(path).iter().map(|c| c.size).collect();
    let i = (seq - 1) as usize;
    records[i].resource = "mm://fraud/dataset/innocent".into();
    let mut chain = if i == 0 { Chain::new() } else { Chain::resume(seq - 1, records[i - 1].hash) };
    conn.execute("DELETE FROM audit WHERE seq >= ?1", [seq]).unwrap();
    for r in &records[i..] {
        let mut d = draft(r.seq);
        d.resource = r.resource.clone();
        sqlite::insert_record(&conn, &chain.append(d).unwrap()).unwrap();
    }
    if resign {
        conn.execute("DELETE FROM audit_checkpoints", []).unwrap();
        let hashes: Vec<_> = sqlite::read_all(&conn).unwrap().iter().map(|r| r.hash).collect();
        for size in sizes {
            let mut f = Frontier::new();
            hashes[..size as usize].iter().for_each(|h| f.push(h));
            let cp = Checkpoint::sign(SHARD, size, f.root(), 1_770_000_000_000 + size as i64, key(1).signing_key());
            sqlite::insert_checkpoint(&conn, &cp).unwrap();
        }
    }
}

#[test]
fn a_rewritten_history_cannot_prove_consistency_with_what_was_witnessed() {
    let dir = tempfile::tempdir().unwrap();
    let honest = build_file(dir.path(), N, 10, &key(1));
    let mut witness = Witness::new();
    witness.trust(SHARD, [key(1).verifying_key()]);
    let witnessed = checkpoints(&honest)[1].clone();
    assert_eq!(witness.observe(&witnessed, None), Ok(metamesh_audit::Accepted::First));

    // The same shard, record 5 rewritten, every hash and checkpoint recomputed and re-signed
    // with the stolen key: the file verifies on its own...
    let forged_dir = tempfile::tempdir().unwrap();
    let forged = forged_dir.path().join("audit.sqlite");
    std::fs::copy(&honest, &forged).unwrap();
    rewrite(&forged, 5, true);
    sqlite::verify_file(&forged, &[key(1).verifying_key()]).expect("a re-signed forgery verifies alone");
    // ...but its latest checkpoint does not extend the one the witness holds.
    let conn = Connection::open(&forged).unwrap();
    let latest = sqlite::latest_checkpoint(&conn).unwrap().unwrap();
    assert_eq!(witness.proof_needed(&latest), Some((20, N)));
    let proof = sqlite::prove_consistency(&conn, 20, N).unwrap();
    let err = witness.observe(&latest, Some(&proof)).unwrap_err();
    let WitnessError::Alarm(alarm) = err else { panic!("expected an alarm: {err:?}") };
    assert_eq!((alarm.reason, alarm.old_size, alarm.new_size), (AlarmReason::Inconsistent, 20, N));
    // The witnessed checkpoint also catches the forged file offline.
    assert!(sqlite::verify_file_with(&forged, &[key(1).verifying_key()], &[witnessed]).is_err());
    // Its checkpoint of the witnessed size has another root: a fork, proved by two signatures.
    let mut witness = Witness::new();
    witness.trust(SHARD, [key(1).verifying_key()]);
    witness.observe(&checkpoints(&honest)[1], None).unwrap();
    let same_size = checkpoints(&forged)[1].clone();
    let err = witness.observe(&same_size, None).unwrap_err();
    assert_eq!(err.alarm().map(|a| a.reason.clone()), Some(AlarmReason::Forked));
}

#[test]
fn a_node_does_not_prove_over_a_log_its_checkpoints_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_file(dir.path(), N, 10, &key(1));
    rewrite(&path, 15, false);
    let conn = Connection::open(&path).unwrap();
    // Below the rewrite the log still matches its checkpoint of 10.
    sqlite::prove_consistency(&conn, 10, 14).unwrap();
    let err = sqlite::prove_consistency(&conn, 10, 20).unwrap_err();
    assert!(matches!(err, AuditError::CheckpointMismatch { size: 20 }), "{err}");
    let err = sqlite::prove_consistency(&conn, 30, N).unwrap_err();
    assert!(matches!(err, AuditError::CheckpointMismatch { size: 30 }), "{err}");
}
