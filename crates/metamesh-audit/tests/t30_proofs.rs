//! Inclusion proofs: made from a SQLite file, printed as JSON, checked offline with the public
//! key alone; anything modified fails.

mod common;

use common::{build_file, key, SHARD};
use metamesh_audit::{
    check_proof, parse_public_key_pem, prove, sqlite, CheckpointError, ProofBundle, ProofError, VerifyingKey,
};
use rusqlite::Connection;

const N: u64 = 37;

fn fixture() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = build_file(dir.path(), N, 10, &key(1));
    let conn = Connection::open(path).unwrap();
    (dir, conn)
}

/// What an offline checker has: the JSON and the shard's public key PEM.
fn check_offline(json: &str) -> Result<(), ProofError> {
    let key: VerifyingKey = parse_public_key_pem(&key(1).public_key_pem()).unwrap();
    let bundle: ProofBundle = serde_json::from_str(json).unwrap();
    bundle.check(&[key])
}

#[test]
fn every_record_proves_against_every_covering_checkpoint() {
    let (_dir, conn) = fixture();
    let checkpoints = sqlite::read_checkpoints(&conn).unwrap();
    assert_eq!(checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(), [10, 20, 30, 37]);
    let records = sqlite::read_all(&conn).unwrap();
    for cp in &checkpoints {
        for seq in 1..=cp.size {
            let bundle = sqlite::prove(&conn, seq, cp).unwrap();
            let json = serde_json::to_string_pretty(&bundle).unwrap();
            check_offline(&json).unwrap_or_else(|e| panic!("seq {seq} in {}: {e}", cp.size));
            // The in-memory prover gives the same path.
            assert_eq!(prove(&records, seq, cp).unwrap(), bundle.proof);
        }
        assert_eq!(
            sqlite::prove(&conn, cp.size + 1, cp).unwrap_err().to_string(),
            format!("record {} is not covered by the checkpoint of size {}", cp.size + 1, cp.size)
        );
    }
    assert_eq!(sqlite::prove_latest(&conn, 5).unwrap().checkpoint.size, N);
}

#[test]
fn the_json_is_plain_hex() {
    let (_dir, conn) = fixture();
    let bundle = sqlite::prove_latest(&conn, 12).unwrap();
    let v: serde_json::Value = serde_json::to_value(&bundle).unwrap();
    assert_eq!(v["proof"]["seq"], 12);
    assert_eq!(v["proof"]["size"], N);
    assert_eq!(v["record"]["decision"], "allow");
    let first = v["proof"]["path"][0].as_str().unwrap();
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(v["checkpoint"]["signature"].as_str().unwrap().len(), 128);
}

#[test]
fn modified_record_proof_or_checkpoint_fails() {
    let (_dir, conn) = fixture();
    let bundle = sqlite::prove_latest(&conn, 12).unwrap();
    let keys = [key(1).verifying_key()];
    bundle.check(&keys).unwrap();

    // The record's text changed: its hash no longer matches.
    let mut b = bundle.clone();
    b.record.principal.push('x');
    assert_eq!(b.check(&keys), Err(ProofError::RecordAltered { seq: 12 }));

    // Changed and re-hashed: self-consistent, but not the record the checkpoint covers.
    b.record.hash = b.record.compute_hash();
    assert_eq!(b.check(&keys), Err(ProofError::PathMismatch { seq: 12 }));

    // Another record presented with this proof.
    let mut b = bundle.clone();
    b.record = sqlite::read_record(&conn, 13).unwrap().unwrap();
    assert_eq!(b.check(&keys), Err(ProofError::SeqMismatch { proof: 12, record: 13 }));
    b.proof.seq = 13;
    assert_eq!(b.check(&keys), Err(ProofError::PathMismatch { seq: 13 }));

    // A path hash flipped, dropped, or one too many.
    for edit in 0..3 {
        let mut b = bundle.clone();
        match edit {
            0 => b.proof.path[2][7] ^= 1,
            1 => {
                b.proof.path.pop();
            }
            _ => b.proof.path.push([0; 32]),
        }
        assert_eq!(b.check(&keys), Err(ProofError::PathMismatch { seq: 12 }), "edit {edit}");
    }

    // The proof claims another tree size.
    let mut b = bundle.clone();
    b.proof.size = 30;
    assert_eq!(b.check(&keys), Err(ProofError::SizeMismatch { proof: 30, checkpoint: N }));

    // The checkpoint's root or size changed: its signature fails.
    let mut b = bundle.clone();
    b.checkpoint.root[0] ^= 1;
    assert_eq!(b.check(&keys), Err(ProofError::Checkpoint { size: N, source: CheckpointError::BadSignature }));
    let mut b = bundle.clone();
    b.checkpoint.size = 64;
    b.proof.size = 64;
    assert_eq!(b.check(&keys), Err(ProofError::Checkpoint { size: 64, source: CheckpointError::BadSignature }));

    // The right checkpoint checked with the wrong key.
    let other = [key(2).verifying_key()];
    assert!(matches!(bundle.check(&other), Err(ProofError::Checkpoint { source: CheckpointError::UnknownKey(_), .. })));
    assert!(check_proof(&bundle.record, &bundle.proof, &bundle.checkpoint, &keys).is_ok());
}

#[test]
fn a_log_that_does_not_match_the_checkpoint_gives_no_proof() {
    let (_dir, conn) = fixture();
    let cp = sqlite::latest_checkpoint(&conn).unwrap().unwrap();
    let mut records = sqlite::read_all(&conn).unwrap();
    records[3].hash[0] ^= 1;
    assert_eq!(prove(&records, 20, &cp), Err(ProofError::LogMismatch { size: N }));
    assert_eq!(prove(&records[..30], 20, &cp), Err(ProofError::LogTooShort { records: 30, size: N }));
    assert_eq!(cp.shard, SHARD);
}
