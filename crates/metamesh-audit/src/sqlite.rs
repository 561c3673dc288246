//! The audit log in a SQLite file: schema, append, checkpoint, read, verify, prove (inclusion
//! and consistency).
//!
//! Everything takes a `&rusqlite::Connection` and runs in whatever transaction the caller has
//! open, so the store can append a record in the same transaction as the change it records.
//! Records and checkpoints are rows; the triggers of [`SCHEMA_SQL`] refuse to update or delete
//! them and refuse an insert that does not extend the chain (which also catches a stale
//! in-memory [`Chain`] after a rollback).
//!
//! Triggers stop mistakes and casual edits, not someone who can write the file: they can drop a
//! trigger. That is what [`verify_file`] is for.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::checkpoint::{Checkpoint, KeyId};
use crate::consistency::{ConsistencyError, ConsistencyProof};
use crate::keys::ShardKey;
use crate::merkle::{ConsistencyBuilder, Frontier, PathBuilder, MAX_TREE_SIZE};
use crate::proof::{InclusionProof, ProofBundle, ProofError};
use crate::record::{AuditRecord, Chain, Decision, Draft, Hash};
use crate::verify::{Verifier, VerifyError, VerifyReport};
use crate::AuditError;

/// Tables `audit` and `audit_checkpoints` with their append-only triggers. Idempotent.
///
/// `audit_checkpoints.frontier` caches the Merkle frontier at the checkpoint's size so the next
/// checkpoint reads only the records after it; it is trusted only when it folds to the row's
/// root, so it needs no signature of its own.
pub const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS audit (
    seq            INTEGER PRIMARY KEY CHECK (seq >= 1),
    at_ms          INTEGER NOT NULL,
    principal      TEXT NOT NULL,
    tenant         TEXT,
    action         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    decision       TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    count          INTEGER NOT NULL CHECK (count >= 1),
    policy_digest  TEXT NOT NULL,
    request_id     TEXT,
    request_digest BLOB NOT NULL CHECK (length(request_digest) = 32),
    prev_hash      BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash           BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size      INTEGER PRIMARY KEY CHECK (size >= 0),
    root      BLOB NOT NULL CHECK (length(root) = 32),
    at_ms     INTEGER NOT NULL,
    shard     TEXT NOT NULL,
    key_id    BLOB NOT NULL CHECK (length(key_id) = 32),
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    frontier  BLOB NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_link BEFORE INSERT ON audit
WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM audit), 0) + 1
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit WHERE seq = NEW.seq - 1), zeroblob(32))
BEGIN SELECT RAISE(ABORT, 'audit chain broken: record does not follow the last one'); END;

CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
"#;

const RECORD_COLUMNS: &str = "seq, at_ms, principal, tenant, action, resource, decision, count, policy_digest, \
     request_id, request_digest, prev_hash, hash";

/// Creates the audit tables and triggers if they are missing.
pub fn init(conn: &Connection) -> Result<(), AuditError> {
    conn.execute_batch(SCHEMA_SQL)?;
    Ok(())
}

/// The chain head as stored: what [`append_with`] needs, to keep in memory between appends.
pub fn load_chain(conn: &Connection) -> Result<Chain, AuditError> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))
        .optional()?;
    match head {
        None => Ok(Chain::new()),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq).map_err(|_| malformed(0, "negative seq"))?;
            let hash = hash.try_into().map_err(|_| malformed(seq, "hash is not 32 bytes"))?;
            Ok(Chain::resume(seq, hash))
        }
    }
}

/// Appends a record for `draft`, reading the chain head first. Runs in the caller's
/// transaction.
pub fn append(conn: &Connection, draft: Draft) -> Result<AuditRecord, AuditError> {
    let mut chain = load_chain(conn)?;
    append_with(conn, &mut chain, draft)
}

/// Appends with a chain head kept in memory (no read). `chain` advances only if the insert
/// succeeded; if the caller's transaction later rolls back, reload it with [`load_chain`].
pub fn append_with(conn: &Connection, chain: &mut Chain, draft: Draft) -> Result<AuditRecord, AuditError> {
    let mut next = *chain;
    let record = next.append(draft)?;
    insert_record(conn, &record)?;
    *chain = next;
    Ok(record)
}

/// Inserts a finished record (the trigger refuses one that does not extend the chain).
pub fn insert_record(conn: &Connection, r: &AuditRecord) -> Result<(), AuditError> {
    let seq = i64::try_from(r.seq).map_err(|_| AuditError::InvalidDraft("seq beyond i64"))?;
    conn.prepare_cached(&format!(
        "INSERT INTO audit ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        seq,
        r.at_ms,
        r.principal,
        r.tenant,
        r.action,
        r.resource,
        r.decision.as_str(),
        r.count,
        r.policy_digest,
        r.request_id,
        &r.request_digest[..],
        &r.prev_hash[..],
        &r.hash[..],
    ])?;
    Ok(())
}

/// Signs and stores a checkpoint over every record so far, unless the latest checkpoint already
/// covers them all (then `None`). `at_ms` comes from the caller (the leader), like record times.
pub fn append_checkpoint(
    conn: &Connection,
    key: &ShardKey,
    shard: &str,
    at_ms: i64,
) -> Result<Option<Checkpoint>, AuditError> {
    let size = load_chain(conn)?.last_seq();
    match latest_checkpoint(conn)? {
        Some(cp) if cp.size == size => return Ok(None),
        Some(cp) if cp.size > size => return Err(AuditError::BeyondLog { size: cp.size, records: size }),
        _ => {}
    }
    let frontier = frontier_at(conn, size)?;
    let cp = Checkpoint::sign(shard, size, frontier.root(), at_ms, key.signing_key());
    store_checkpoint(conn, &cp, &frontier)?;
    Ok(Some(cp))
}

/// Stores a checkpoint made elsewhere (e.g. signed by the leader and carried through Raft),
/// after checking that its root is the log's root at its size.
pub fn insert_checkpoint(conn: &Connection, cp: &Checkpoint) -> Result<(), AuditError> {
    let frontier = frontier_at(conn, cp.size)?;
    if frontier.root() != cp.root {
        return Err(AuditError::CheckpointMismatch { size: cp.size });
    }
    store_checkpoint(conn, cp, &frontier)
}

fn store_checkpoint(conn: &Connection, cp: &Checkpoint, frontier: &Frontier) -> Result<(), AuditError> {
    let size = i64::try_from(cp.size).map_err(|_| AuditError::CheckpointMismatch { size: cp.size })?;
    conn.prepare_cached(
        "INSERT INTO audit_checkpoints (size, root, at_ms, shard, key_id, signature, frontier) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        size,
        &cp.root[..],
        cp.at_ms,
        cp.shard,
        &cp.key_id.0[..],
        &cp.signature[..],
        frontier.to_bytes()
    ])?;
    Ok(())
}

/// The Merkle frontier after record `size`: from the latest usable cached frontier at or below
/// `size`, plus the record hashes after it.
fn frontier_at(conn: &Connection, size: u64) -> Result<Frontier, AuditError> {
    let target = i64::try_from(size).map_err(|_| AuditError::BeyondLog { size, records: 0 })?;
    let cached: Option<(i64, Vec<u8>, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT size, root, frontier FROM audit_checkpoints WHERE size <= ?1 ORDER BY size DESC LIMIT 1",
        )?
        .query_row([target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut frontier = cached
        .and_then(|(s, root, bytes)| {
            let f = Frontier::from_parts(u64::try_from(s).ok()?, &bytes)?;
            (f.root()[..] == root[..]).then_some(f)
        })
        .unwrap_or_default();
    let mut stmt = conn.prepare_cached("SELECT seq, hash FROM audit WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")?;
    let mut rows = stmt.query(params![frontier.size() as i64, target])?;
    while let Some(row) = rows.next()? {
        let expected = frontier.size() + 1;
        let seq = int(row.get_ref(0)?, "seq").map_err(|e| malformed(expected, e))?;
        if seq != expected as i64 {
            return Err(VerifyError::Gap { missing: expected, found: seq as u64 }.into());
        }
        frontier.push(&blob32(row.get_ref(1)?, "hash").map_err(|e| malformed(expected, e))?);
    }
    if frontier.size() != size {
        return Err(AuditError::BeyondLog { size, records: frontier.size() });
    }
    Ok(frontier)
}

/// All checkpoints, smallest first.
pub fn read_checkpoints(conn: &Connection) -> Result<Vec<Checkpoint>, AuditError> {
    let mut stmt =
        conn.prepare_cached("SELECT size, root, at_ms, shard, key_id, signature FROM audit_checkpoints ORDER BY size")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_checkpoint(row)?);
    }
    Ok(out)
}

/// The checkpoint covering the most records, if any.
pub fn latest_checkpoint(conn: &Connection) -> Result<Option<Checkpoint>, AuditError> {
    let mut stmt = conn.prepare_cached(
        "SELECT size, root, at_ms, shard, key_id, signature FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
    )?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        Some(row) => Ok(Some(decode_checkpoint(row)?)),
        None => Ok(None),
    }
}

fn decode_checkpoint(row: &Row<'_>) -> Result<Checkpoint, AuditError> {
    let raw_size = int(row.get_ref(0)?, "size").unwrap_or(-1);
    let size = u64::try_from(raw_size).unwrap_or(0);
    let bad = |reason: String| AuditError::Verify(VerifyError::MalformedCheckpoint { size, reason });
    if raw_size < 0 {
        return Err(bad("size is not a non-negative integer".into()));
    }
    let mut shard = String::new();
    text_into(row.get_ref(3)?, &mut shard, "shard").map_err(bad)?;
    Ok(Checkpoint {
        shard,
        size,
        root: blob32(row.get_ref(1)?, "root").map_err(bad)?,
        at_ms: int(row.get_ref(2)?, "at_ms").map_err(bad)?,
        key_id: KeyId(blob32(row.get_ref(4)?, "key_id").map_err(bad)?),
        signature: match row.get_ref(5)? {
            ValueRef::Blob(b) => b.try_into().map_err(|_| bad("signature is not 64 bytes".into()))?,
            _ => return Err(bad("signature is not a blob".into())),
        },
    })
}

/// Record `seq`, if stored.
pub fn read_record(conn: &Connection, seq: u64) -> Result<Option<AuditRecord>, AuditError> {
    let mut found = None;
    for_each_record_in(conn, seq, seq, |r| {
        found = Some(r.clone());
        Ok(())
    })?;
    Ok(found)
}

/// Every record, in seq order (for small logs and tests; verify streams instead).
pub fn read_all(conn: &Connection) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    for_each_record(conn, |r| {
        out.push(r.clone());
        Ok(())
    })?;
    Ok(out)
}

/// Streams every record in seq order through `f`, reusing one record's buffers (no allocation
/// per row). A row that does not decode is reported as [`VerifyError::Malformed`].
pub fn for_each_record(
    conn: &Connection,
    f: impl FnMut(&AuditRecord) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    for_each_record_in(conn, 1, u64::MAX, f)
}

fn for_each_record_in(
    conn: &Connection,
    first: u64,
    last: u64,
    mut f: impl FnMut(&AuditRecord) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"))?;
    let mut rows = stmt.query(params![clamp(first), clamp(last)])?;
    let mut record = AuditRecord {
        seq: 0,
        at_ms: 0,
        principal: String::new(),
        tenant: None,
        action: String::new(),
        resource: String::new(),
        decision: Decision::Allow,
        count: 1,
        policy_digest: String::new(),
        request_id: None,
        request_digest: [0; 32],
        prev_hash: [0; 32],
        hash: [0; 32],
    };
    let mut last_seq = first.saturating_sub(1);
    while let Some(row) = rows.next()? {
        // A seq that does not decode is reported at the position it should have had.
        let seq = int(row.get_ref(0)?, "seq")
            .and_then(|s| u64::try_from(s).map_err(|_| "seq is negative".to_string()))
            .map_err(|e| malformed(last_seq + 1, e))?;
        decode_record(row, seq, &mut record).map_err(|e| malformed(seq, e))?;
        last_seq = seq;
        f(&record)?;
    }
    Ok(())
}

fn decode_record(row: &Row<'_>, seq: u64, r: &mut AuditRecord) -> Result<(), String> {
    let get = |i| row.get_ref(i).map_err(|e| e.to_string());
    r.seq = seq;
    r.at_ms = int(get(1)?, "at_ms")?;
    text_into(get(2)?, &mut r.principal, "principal")?;
    opt_text_into(get(3)?, &mut r.tenant, "tenant")?;
    text_into(get(4)?, &mut r.action, "action")?;
    text_into(get(5)?, &mut r.resource, "resource")?;
    r.decision = match get(6)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(Decision::parse),
        _ => None,
    }
    .ok_or("decision is neither allow nor deny")?;
    r.count = u32::try_from(int(get(7)?, "count")?).map_err(|_| "count is out of range")?;
    text_into(get(8)?, &mut r.policy_digest, "policy_digest")?;
    opt_text_into(get(9)?, &mut r.request_id, "request_id")?;
    r.request_digest = blob32(get(10)?, "request_digest")?;
    r.prev_hash = blob32(get(11)?, "prev_hash")?;
    r.hash = blob32(get(12)?, "hash")?;
    Ok(())
}

fn malformed(seq: u64, reason: impl Into<String>) -> AuditError {
    AuditError::Verify(VerifyError::Malformed { seq, reason: reason.into() })
}

fn int(v: ValueRef<'_>, name: &str) -> Result<i64, String> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        _ => Err(format!("{name} is not an integer")),
    }
}

fn blob32(v: ValueRef<'_>, name: &str) -> Result<Hash, String> {
    match v {
        ValueRef::Blob(b) => b.try_into().map_err(|_| format!("{name} is not 32 bytes")),
        _ => Err(format!("{name} is not a blob")),
    }
}

fn text_into(v: ValueRef<'_>, out: &mut String, name: &str) -> Result<(), String> {
    match v {
        ValueRef::Text(t) => {
            out.clear();
            out.push_str(std::str::from_utf8(t).map_err(|_| format!("{name} is not UTF-8"))?);
            Ok(())
        }
        _ => Err(format!("{name} is not text")),
    }
}

fn opt_text_into(v: ValueRef<'_>, out: &mut Option<String>, name: &str) -> Result<(), String> {
    match v {
        ValueRef::Null => {
            *out = None;
            Ok(())
        }
        v => text_into(v, out.get_or_insert_with(String::new), name),
    }
}

/// Verifies the log in `conn` against its stored checkpoints plus `witnessed` ones (from the
/// router or an auditor), trusting checkpoints signed by `keys` only.
pub fn verify_conn(
    conn: &Connection,
    keys: &[VerifyingKey],
    witnessed: &[Checkpoint],
) -> Result<VerifyReport, AuditError> {
    let mut checkpoints = read_checkpoints(conn)?;
    checkpoints.extend_from_slice(witnessed);
    let mut verifier = Verifier::new(checkpoints, keys)?;
    for_each_record(conn, |r| Ok(verifier.push(r)?))?;
    Ok(verifier.finish()?)
}

/// Opens the SQLite file at `path` read-only and verifies its audit log ([`verify_conn`]).
pub fn verify_file(path: &Path, keys: &[VerifyingKey]) -> Result<VerifyReport, AuditError> {
    verify_file_with(path, keys, &[])
}

/// [`verify_file`] with checkpoints held outside the file (a witness's).
pub fn verify_file_with(
    path: &Path,
    keys: &[VerifyingKey],
    witnessed: &[Checkpoint],
) -> Result<VerifyReport, AuditError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|source| AuditError::Open { path: path.into(), source })?;
    verify_conn(&conn, keys, witnessed)
}

/// The proof of record `seq` against `checkpoint`, with the record and checkpoint, ready to
/// print as JSON for an offline `check-proof`. Reads the hashes of records `1..=checkpoint.size`.
pub fn prove(conn: &Connection, seq: u64, checkpoint: &Checkpoint) -> Result<ProofBundle, AuditError> {
    let size = checkpoint.size;
    if seq == 0 || seq > size {
        return Err(ProofError::NotCovered { seq, size }.into());
    }
    let record = read_record(conn, seq)?.ok_or(AuditError::NotFound { seq })?;
    if !record.is_intact() {
        return Err(ProofError::RecordAltered { seq }.into());
    }
    let mut builder = PathBuilder::new(seq - 1, size);
    let mut stmt = conn.prepare_cached("SELECT hash FROM audit WHERE seq <= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([i64::try_from(size).unwrap_or(i64::MAX)])?;
    while let Some(row) = rows.next()? {
        let at = builder.fed() + 1;
        builder.push(&blob32(row.get_ref(0)?, "hash").map_err(|e| malformed(at, e))?);
    }
    let records = builder.fed();
    let (leaf, root, path) = builder.finish().ok_or(ProofError::LogTooShort { records, size })?;
    if root != checkpoint.root || leaf != record.hash {
        return Err(ProofError::LogMismatch { size }.into());
    }
    Ok(ProofBundle { record, checkpoint: checkpoint.clone(), proof: InclusionProof { seq, size, path } })
}

/// [`prove`] against the latest stored checkpoint that covers `seq`.
pub fn prove_latest(conn: &Connection, seq: u64) -> Result<ProofBundle, AuditError> {
    let cp = latest_checkpoint(conn)?.ok_or(ProofError::NotCovered { seq, size: 0 })?;
    prove(conn, seq, &cp)
}

/// The consistency proof from the tree of the first `old_size` records to the tree of the first
/// `new_size` (RFC 6962 `PROOF(old_size, D[new_size])`). Reads the hashes of records
/// `1..=new_size` once (O(log n) memory).
///
/// When a stored checkpoint has either size, the log must reproduce its root
/// ([`AuditError::CheckpointMismatch`] otherwise): a proof is only served for the history the
/// checkpoints signed. Sizes: `0 < old_size <= new_size`, and `new_size` at most the log's
/// length ([`AuditError::BeyondLog`]).
pub fn prove_consistency(conn: &Connection, old_size: u64, new_size: u64) -> Result<ConsistencyProof, AuditError> {
    if old_size == 0 {
        return Err(ConsistencyError::EmptyOld.into());
    }
    if old_size > new_size {
        return Err(ConsistencyError::OldLarger { old_size, new_size }.into());
    }
    if new_size > MAX_TREE_SIZE {
        return Err(ConsistencyError::TooLarge { size: new_size }.into());
    }
    let mut builder = ConsistencyBuilder::new(old_size, new_size);
    let mut stmt = conn.prepare_cached("SELECT seq, hash FROM audit WHERE seq <= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([i64::try_from(new_size).unwrap_or(i64::MAX)])?;
    while let Some(row) = rows.next()? {
        let expected = builder.fed() + 1;
        let seq = int(row.get_ref(0)?, "seq").map_err(|e| malformed(expected, e))?;
        if seq != expected as i64 {
            return Err(VerifyError::Gap { missing: expected, found: seq as u64 }.into());
        }
        builder.push(&blob32(row.get_ref(1)?, "hash").map_err(|e| malformed(expected, e))?);
    }
    let records = builder.fed();
    let (old_root, new_root, hashes) = builder.finish().ok_or(AuditError::BeyondLog { size: new_size, records })?;
    for (size, root) in [(old_size, old_root), (new_size, new_root)] {
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT root FROM audit_checkpoints WHERE size = ?1")?
            .query_row([i64::try_from(size).unwrap_or(i64::MAX)], |r| r.get(0))
            .optional()?;
        if stored.is_some_and(|s| s[..] != root[..]) {
            return Err(AuditError::CheckpointMismatch { size });
        }
    }
    Ok(ConsistencyProof { old_size, new_size, hashes })
}
