//! Audit benchmarks: prints figures, asserts nothing about speed.
//!
//! `cargo bench -p metamesh-audit --bench verify` — scale with `METAMESH_BENCH_RECORDS`
//! (default 1,000,000); `METAMESH_BENCH_SMOKE=1` runs 20,000 records in seconds.
//!
//! - chain: `Chain::append` (canonical encoding + SHA-256) in memory;
//! - verify: `verify` over records in memory, checkpoints every 10,000 (target ≥ 1,000,000
//!   records/s on one core);
//! - sqlite append: `sqlite::append_with` in one transaction (the store's apply path, minus
//!   the store; making each draft included), plus a checkpoint every 10,000;
//! - verify file: `sqlite::verify_file` (reading the rows is part of the cost);
//! - prove: `sqlite::prove_latest` for the middle record (reads every hash up to the
//!   checkpoint).

use std::time::{Duration, Instant};

use metamesh_audit::merkle::Frontier;
use metamesh_audit::{
    request_digest, sqlite, verify, AuditRecord, Chain, Checkpoint, Decision, Draft, ShardKey, SigningKey,
};

const CHECKPOINT_EVERY: u64 = 10_000;

fn draft(i: u64) -> Draft {
    let decision = if i % 50 == 0 { Decision::Deny } else { Decision::Allow };
    Draft::new(
        1_760_000_000_000 + i as i64,
        format!("spiffe://mesh.example/client/trainer-{}", i % 97),
        ["entity.put", "edge.put", "entity.read"][(i % 3) as usize],
        format!("mm://fraud/dataset/s3%3A%2F%2Flake%2Ftransactions-{i:07}@{}", i % 9 + 1),
        decision,
    )
    .tenant("fraud")
    .policy("blake3:5f1d0c7a9e2b44c1d7a0e6f3b9c8d2a1e4f7b0c3d6a9e2f5b8c1d4a7e0f3b6c9")
    .request(Some(format!("01J9Z3K4M5N6P7Q8R9S0T{i:07}")), request_digest(&i.to_be_bytes()))
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("at least one run")
}

fn rate(n: u64, d: Duration) -> String {
    let per_s = n as f64 / d.as_secs_f64();
    let mut digits = format!("{per_s:.0}");
    let mut i = digits.len();
    while i > 3 {
        i -= 3;
        digits.insert(i, ',');
    }
    format!("{digits} records/s ({:.0} ns/record)", d.as_nanos() as f64 / n as f64)
}

fn main() {
    let smoke = std::env::var("METAMESH_BENCH_SMOKE").is_ok();
    let n: u64 = if smoke {
        20_000
    } else {
        std::env::var("METAMESH_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
    };
    let runs = if smoke { 1 } else { 3 };
    let key = ShardKey::from_signing_key(SigningKey::from_bytes(&[7; 32]));
    let keys = [key.verifying_key()];
    println!("audit benchmarks: {n} records, checkpoint every {CHECKPOINT_EVERY}, best of {runs}");

    let drafts: Vec<Draft> = (1..=n).map(draft).collect();
    let mut records: Vec<AuditRecord> = Vec::with_capacity(n as usize);
    let t = Instant::now();
    let mut chain = Chain::new();
    for d in drafts {
        records.push(chain.append(d).expect("valid draft"));
    }
    let append = t.elapsed();
    let avg = records.iter().map(|r| r.canonical_bytes().len()).sum::<usize>() / records.len().max(1);
    println!("chain append (memory)     {}   canonical record ~{avg} bytes", rate(n, append));

    let mut frontier = Frontier::new();
    let mut checkpoints = Vec::new();
    for r in &records {
        frontier.push(&r.hash);
        if r.seq % CHECKPOINT_EVERY == 0 || r.seq == n {
            checkpoints.push(Checkpoint::sign("bench", r.seq, frontier.root(), 0, key.signing_key()));
        }
    }
    let verify_mem = best_of(runs, || {
        let report = verify(&records, &checkpoints, &keys).expect("the log verifies");
        assert_eq!(report.records, n);
    });
    println!("verify (memory)           {}   target >= 1,000,000 records/s", rate(n, verify_mem));

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.sqlite");
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;").expect("pragmas");
    sqlite::init(&conn).expect("schema");
    let t = Instant::now();
    let tx = conn.transaction().expect("transaction");
    let mut head = sqlite::load_chain(&tx).expect("head");
    for d in (1..=n).map(draft) {
        let r = sqlite::append_with(&tx, &mut head, d).expect("append");
        if r.seq % CHECKPOINT_EVERY == 0 || r.seq == n {
            sqlite::append_checkpoint(&tx, &key, "bench", 0).expect("checkpoint");
        }
    }
    tx.commit().expect("commit");
    println!("sqlite append (1 tx)      {}", rate(n, t.elapsed()));
    drop(conn);

    let verify_disk = best_of(runs, || {
        let report = sqlite::verify_file(&path, &keys).expect("the file verifies");
        assert_eq!(report.records, n);
    });
    println!("verify file (sqlite)      {}", rate(n, verify_disk));

    let conn = rusqlite::Connection::open(&path).expect("open");
    let t = Instant::now();
    let bundle = sqlite::prove_latest(&conn, n / 2 + 1).expect("prove");
    let prove = t.elapsed();
    bundle.check(&keys).expect("the proof checks");
    println!(
        "prove (sqlite)            {:.1} ms for record {} of {} ({} path hashes)",
        prove.as_secs_f64() * 1e3,
        bundle.proof.seq,
        bundle.proof.size,
        bundle.proof.path.len()
    );
}
