//! Chains and checkpoints round trip, in memory and through a SQLite file.

mod common;

use common::{draft, key, SHARD};
use metamesh_audit::merkle::{Frontier, EMPTY_ROOT};
use metamesh_audit::{
    sqlite, verify, AuditError, AuditRecord, Chain, Checkpoint, Decision, DenialCoalescer, Draft, VerifyError,
};
use rusqlite::Connection;

fn chain_of(n: u64) -> Vec<AuditRecord> {
    let mut chain = Chain::new();
    (1..=n).map(|i| chain.append(draft(i)).unwrap()).collect()
}

fn checkpoint_at(records: &[AuditRecord], size: u64) -> Checkpoint {
    let mut f = Frontier::new();
    records[..size as usize].iter().for_each(|r| f.push(&r.hash));
    Checkpoint::sign(SHARD, size, f.root(), size as i64, key(1).signing_key())
}

#[test]
fn in_memory_chain_and_checkpoints_verify() {
    let records = chain_of(100);
    let cps: Vec<_> = [0, 1, 64, 99, 100].iter().map(|&s| checkpoint_at(&records, s)).collect();
    let report = verify(&records, &cps, &[key(2).verifying_key(), key(1).verifying_key()]).unwrap();
    assert_eq!((report.records, report.checkpoints, report.covered, report.uncovered), (100, 5, 100, 0));
    assert_eq!(report.head, records[99].hash);
    assert_eq!(report.root, cps[4].root);
    assert_eq!(cps[0].root, EMPTY_ROOT);

    // Checkpoints in any order, and records past the last one.
    let report = verify(&records, &[cps[2].clone(), cps[1].clone()], &[key(1).verifying_key()]).unwrap();
    assert_eq!((report.covered, report.uncovered), (64, 36));

    // An empty log verifies; a checkpoint claiming records it does not have does not.
    assert_eq!(verify(Vec::<AuditRecord>::new(), &[], &[]).unwrap().records, 0);
    let err = verify(&records[..50], &cps, &[key(1).verifying_key()]).unwrap_err();
    assert_eq!(err, VerifyError::Truncated { records: 50, size: 100 });
}

#[test]
fn records_round_trip_through_json() {
    for r in chain_of(12) {
        let json = serde_json::to_string(&r).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(back.is_intact());
    }
}

#[test]
fn sqlite_append_read_checkpoint_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard.sqlite");
    let conn = Connection::open(&path).unwrap();
    sqlite::init(&conn).unwrap();
    sqlite::init(&conn).unwrap(); // idempotent

    // Stateless appends and appends through a cached head write the same chain.
    let mut head = sqlite::load_chain(&conn).unwrap();
    assert_eq!(head, Chain::new());
    for i in 1..=30 {
        let r = if i % 2 == 0 {
            sqlite::append(&conn, draft(i)).unwrap()
        } else {
            sqlite::append_with(&conn, &mut head, draft(i)).unwrap()
        };
        if i % 2 == 0 {
            head = Chain::resume(r.seq, r.hash);
        }
        if i % 8 == 0 {
            let cp = sqlite::append_checkpoint(&conn, &key(1), SHARD, i as i64).unwrap().unwrap();
            assert_eq!(cp.size, i);
        }
    }
    assert_eq!(sqlite::read_all(&conn).unwrap(), chain_of(30));
    assert_eq!(sqlite::read_record(&conn, 17).unwrap().unwrap(), chain_of(17)[16]);
    assert_eq!(sqlite::read_record(&conn, 31).unwrap(), None);

    // A checkpoint over all 30; asking again with nothing new appended makes none.
    let cp = sqlite::append_checkpoint(&conn, &key(1), SHARD, 99).unwrap().unwrap();
    assert_eq!(cp, checkpoint_at(&chain_of(30), 30).with_at_ms(99));
    assert!(sqlite::append_checkpoint(&conn, &key(1), SHARD, 100).unwrap().is_none());
    assert_eq!(sqlite::read_checkpoints(&conn).unwrap().iter().map(|c| c.size).collect::<Vec<_>>(), [8, 16, 24, 30]);
    assert_eq!(sqlite::latest_checkpoint(&conn).unwrap(), Some(cp));

    let report = sqlite::verify_file(&path, &[key(1).verifying_key()]).unwrap();
    assert_eq!((report.records, report.checkpoints, report.uncovered), (30, 4, 0));
    // The same file under a key that did not sign it.
    let err = sqlite::verify_file(&path, &[key(2).verifying_key()]).unwrap_err();
    assert!(matches!(err, AuditError::Verify(VerifyError::UnknownKey { size: 8, .. })), "{err}");
}

#[test]
fn checkpoints_made_elsewhere_are_checked_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("a.sqlite")).unwrap();
    sqlite::init(&conn).unwrap();
    let records = chain_of(20);
    for r in &records {
        sqlite::insert_record(&conn, r).unwrap();
    }
    // The leader signed it; a replica stores it after checking it against its own log.
    sqlite::insert_checkpoint(&conn, &checkpoint_at(&records, 13)).unwrap();
    sqlite::insert_checkpoint(&conn, &checkpoint_at(&records, 5)).unwrap();
    let mut wrong = checkpoint_at(&records, 20);
    wrong.root = [1; 32];
    assert!(matches!(sqlite::insert_checkpoint(&conn, &wrong), Err(AuditError::CheckpointMismatch { size: 20 })));
    let beyond = checkpoint_at(&chain_of(21), 21);
    assert!(matches!(sqlite::insert_checkpoint(&conn, &beyond), Err(AuditError::BeyondLog { size: 21, records: 20 })));
    // The next checkpoint starts from the cached frontier at 13 and agrees with a full recompute.
    let cp = sqlite::append_checkpoint(&conn, &key(1), SHARD, 20).unwrap().unwrap();
    assert_eq!(cp.root, checkpoint_at(&records, 20).root);
}

#[test]
fn a_coalesced_flood_is_a_few_verifiable_records() {
    let mut coalescer = DenialCoalescer::new(1_000, 1_000);
    let mut chain = Chain::new();
    let mut records = Vec::new();
    let mut append = |drafts: Vec<Draft>, records: &mut Vec<AuditRecord>| {
        for d in drafts {
            records.push(chain.append(d).unwrap());
        }
    };
    // 10 seconds of 1,000 denials a second from one principal, with normal traffic between.
    for ms in 0..10_000i64 {
        let deny =
            Draft::new(ms, "mallory", "entity.read", format!("mm://risk/model/m{ms}"), Decision::Deny).tenant("risk");
        let out = coalescer.offer(deny);
        append(out, &mut records);
        if ms % 100 == 0 {
            let allow = Draft::new(ms, "trainer", "entity.put", "mm://risk/model/m", Decision::Allow).tenant("risk");
            append(coalescer.offer(allow), &mut records);
            append(coalescer.tick(ms), &mut records);
        }
    }
    append(coalescer.flush(), &mut records);
    let denials: Vec<_> = records.iter().filter(|r| r.decision == Decision::Deny).collect();
    assert_eq!(denials.iter().map(|r| u64::from(r.count)).sum::<u64>(), 10_000, "every denial counted");
    assert!(denials.len() <= 20, "{} denial records for 10 windows", denials.len());
    verify(&records, &[], &[]).unwrap();
}

/// A checkpoint identical but for its time (re-signed).
trait WithAtMs {
    fn with_at_ms(self, at_ms: i64) -> Checkpoint;
}

impl WithAtMs for Checkpoint {
    fn with_at_ms(self, at_ms: i64) -> Checkpoint {
        Checkpoint::sign(self.shard, self.size, self.root, at_ms, key(1).signing_key())
    }
}
