//! Shared fixtures: realistic drafts, deterministic keys, audit files built through the public
//! API, and an attacker's connection (triggers dropped).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use metamesh_audit::{request_digest, sqlite, Checkpoint, Decision, Draft, ShardKey, SigningKey};
use rusqlite::Connection;

pub const SHARD: &str = "s1";

/// A deterministic key (tests must not depend on randomness to reproduce).
pub fn key(seed: u8) -> ShardKey {
    ShardKey::from_signing_key(SigningKey::from_bytes(&[seed; 32]))
}

/// Event `i`: a mix of tenants, actions, decisions, coalesced counts and absent options.
pub fn draft(i: u64) -> Draft {
    let decision = if i % 7 == 3 { Decision::Deny } else { Decision::Allow };
    let mut d = Draft::new(
        1_760_000_000_000 + i as i64 * 17,
        format!("spiffe://mesh.example/client/principal-{i:04}"),
        ["entity.put", "edge.put", "entity.read", "tenant.create"][(i % 4) as usize],
        format!("mm://fraud/dataset/s3%3A%2F%2Flake%2Ftable-{i:05}@{}", i % 9 + 1),
        decision,
    )
    .policy("blake3:5f1d0c7a9e")
    .request((i % 5 != 0).then(|| format!("req-{i:08}")), request_digest(format!("request body {i}").as_bytes()));
    if i % 11 != 0 {
        d = d.tenant(if i % 2 == 0 { "fraud" } else { "risk" });
    }
    if decision == Decision::Deny && i % 2 == 1 {
        d.count = 1 + (i % 13) as u32;
    }
    d
}

/// A file holding records `1..=n`, with a checkpoint signed by `signer` every `every` records
/// and one at `n`.
pub fn build_file(dir: &Path, n: u64, every: u64, signer: &ShardKey) -> PathBuf {
    let path = dir.join("audit.sqlite");
    let mut conn = Connection::open(&path).unwrap();
    sqlite::init(&conn).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 1..=n {
        sqlite::append(&tx, draft(i)).unwrap();
        if i % every == 0 || i == n {
            sqlite::append_checkpoint(&tx, signer, SHARD, 1_760_000_000_000 + i as i64).unwrap();
        }
    }
    tx.commit().unwrap();
    path
}

/// What someone with write access to the file does first: drop the protective triggers.
pub fn attacker(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; DROP TRIGGER audit_chain_link;
         DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;",
    )
    .unwrap();
    conn
}

pub fn checkpoints(path: &Path) -> Vec<Checkpoint> {
    sqlite::read_checkpoints(&Connection::open(path).unwrap()).unwrap()
}
