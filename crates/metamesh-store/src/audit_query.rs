//! Reading the shard's audit log (written by [`crate::audit`] in the apply transaction): listing
//! records by filter, verifying the chain, and the signed checkpoints, inclusion proofs and
//! consistency proofs of `metamesh-audit`.
//!
//! Each call opens its own read-only rusqlite connection on the state file, in tokio's blocking
//! pool, and reads through the audit crate's functions; WAL lets it run beside the writer and it
//! sees the last committed apply. The `audit` table has no index but its seq key: a filtered
//! listing scans the records after its cursor until it has a page. That is linear in the log,
//! fine at today's sizes; an index on (tenant, seq) is the next step when listings get slow (it
//! must be created after the writer creates the table, not in a migration).

use std::path::PathBuf;

use metamesh_audit::merkle::Frontier;
use metamesh_audit::{
    AuditError, AuditRecord, Checkpoint, ConsistencyError, ConsistencyProof, Decision, ProofBundle, ProofError,
    VerifyError,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::{Store, StoreError};

/// Which records a listing returns. Unset fields do not filter; set ones are ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub tenant: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    /// Records at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Records before this time.
    pub until_ms: Option<i64>,
    pub decision: Option<Decision>,
}

/// What [`Store::audit_verify`] found. Verification by the node checks the chain (each record's
/// hash over its fields, each link, no gaps) and that every stored checkpoint's Merkle root is
/// the root of the records it covers; it does not check checkpoint signatures, because a node
/// does not hold the shard's public key: a client checks those offline with the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    /// Records checked (from the first asked for to the last read).
    pub records_checked: u64,
    /// Checkpoints whose roots were matched.
    pub checkpoints_checked: u64,
    /// The first thing wrong, if any.
    pub problem: Option<VerifyError>,
}

/// Why no inclusion proof could be made (the request's fault or the log's state, not a store
/// failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofRefusal {
    #[error("record {seq} does not exist: the log holds {records} records")]
    NoRecord { seq: u64, records: u64 },
    #[error("the audit log has no signed checkpoint yet")]
    NoCheckpoint,
    #[error("there is no checkpoint of size {size}")]
    NoCheckpointOfSize { size: u64 },
    #[error("record {seq} is after the checkpoint of size {size}: wait for the next checkpoint")]
    NotCovered { seq: u64, size: u64 },
    /// The stored log does not reproduce the checkpoint: tampering or corruption.
    #[error("{0}")]
    LogMismatch(String),
}

/// Why no consistency proof could be made (the request's fault or the log's state, not a store
/// failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyRefusal {
    #[error("old_size is 0: a consistency proof starts from a tree of at least one record")]
    EmptyOld,
    #[error("old_size {old_size} is larger than new_size {new_size}")]
    OldLarger { old_size: u64, new_size: u64 },
    #[error("new_size {new_size} is beyond the log, which holds {records} records")]
    NewBeyondLog { new_size: u64, records: u64 },
    #[error("old_size {old_size} is beyond the latest checkpoint, of {size} records")]
    OldBeyondCheckpoint { old_size: u64, size: u64 },
    #[error("the audit log has no signed checkpoint yet: pass new_size")]
    NoCheckpoint,
    /// The stored log does not reproduce a checkpoint: tampering or corruption.
    #[error("{0}")]
    LogMismatch(String),
}

impl Store {
    /// Up to `limit` records matching `filter` and `keep` with seq above `after_seq`, oldest
    /// first. `keep` sees each record's tenant (`None` for mesh-level records): the node passes
    /// the caller's authorization there, so that a page is full of records the caller may see.
    pub async fn audit_records(
        &self,
        filter: AuditFilter,
        after_seq: u64,
        limit: usize,
        keep: impl Fn(Option<&str>) -> bool + Send + 'static,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_read(move |conn| records(conn, &filter, after_seq, limit, &keep)).await
    }

    /// Verifies records `from..=to` (`to` = the end of the log) as [`AuditVerification`] says.
    /// Records before `from` are read for their hashes (the Merkle roots of checkpoints start
    /// at record 1) but not checked.
    pub async fn audit_verify(&self, from: u64, to: Option<u64>) -> Result<AuditVerification, StoreError> {
        self.audit_read(move |conn| verify(conn, from.max(1), to.unwrap_or(u64::MAX))).await
    }

    /// The latest checkpoint, or the one of exactly `size` records.
    pub async fn audit_checkpoint_at(&self, size: Option<u64>) -> Result<Option<Checkpoint>, StoreError> {
        self.audit_read(move |conn| checkpoint_at(conn, size)).await
    }

    /// The proof that record `seq` is in the checkpoint of `size` records (the latest if
    /// `None`), with the record and checkpoint: what `metamesh audit check-proof` reads.
    pub async fn audit_prove(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<Result<ProofBundle, ProofRefusal>, StoreError> {
        self.audit_read(move |conn| prove(conn, seq, size)).await
    }

    /// The RFC 6962 consistency proof from the tree of the first `old_size` records to the tree
    /// of the first `new_size` (the latest checkpoint's size if `None`). Sizes need not be
    /// checkpoints'; where one is, the log must reproduce its root.
    pub async fn audit_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<Result<ConsistencyProof, ConsistencyRefusal>, StoreError> {
        self.audit_read(move |conn| consistency(conn, old_size, new_size)).await
    }

    /// Runs `f` on a fresh read-only connection to the state file, in the blocking pool.
    async fn audit_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path: PathBuf = self.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let conn =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Audit(format!("audit read task failed: {e}")))?
    }
}

fn audit_err(e: AuditError) -> StoreError {
    StoreError::Audit(e.to_string())
}

/// Rows scanned per query while filling a page.
const SCAN_BATCH: i64 = 1000;

fn records(
    conn: &Connection,
    filter: &AuditFilter,
    after_seq: u64,
    limit: usize,
    keep: &dyn Fn(Option<&str>) -> bool,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = String::from("SELECT seq, tenant FROM audit WHERE seq > ?1");
    let mut args: Vec<Value> = vec![Value::Integer(0)];
    let mut push = |clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    let text = |s: &String| Value::Text(s.clone());
    if let Some(p) = &filter.principal {
        push("principal =", text(p));
    }
    if let Some(t) = &filter.tenant {
        push("tenant =", text(t));
    }
    if let Some(a) = &filter.action {
        push("action =", text(a));
    }
    if let Some(r) = &filter.resource {
        push("resource =", text(r));
    }
    if let Some(t) = filter.since_ms {
        push("at_ms >=", Value::Integer(t));
    }
    if let Some(t) = filter.until_ms {
        push("at_ms <", Value::Integer(t));
    }
    if let Some(d) = filter.decision {
        push("decision =", Value::Text(d.as_str().to_owned()));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {SCAN_BATCH}"));
    let mut stmt = conn.prepare(&sql)?;
    let mut seqs = Vec::new();
    let mut cursor = i64::try_from(after_seq).unwrap_or(i64::MAX);
    'scan: loop {
        args[0] = Value::Integer(cursor);
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
        let mut scanned = 0;
        while let Some(row) = rows.next()? {
            scanned += 1;
            cursor = row.get(0)?;
            let tenant: Option<String> = row.get(1)?;
            if keep(tenant.as_deref()) {
                seqs.push(cursor as u64);
                if seqs.len() == limit {
                    break 'scan;
                }
            }
        }
        if scanned < SCAN_BATCH {
            break;
        }
    }
    seqs.into_iter()
        .map(|seq| {
            metamesh_audit::sqlite::read_record(conn, seq)
                .map_err(audit_err)?
                .ok_or_else(|| StoreError::Corrupt(format!("audit record {seq} vanished during a read")))
        })
        .collect()
}

fn verify(conn: &Connection, from: u64, to: u64) -> Result<AuditVerification, StoreError> {
    let checkpoints = metamesh_audit::sqlite::read_checkpoints(conn).map_err(audit_err)?;
    let mut frontier = Frontier::new();
    let mut prev = metamesh_audit::record::GENESIS_PREV;
    let mut next_cp = checkpoints.iter().position(|c| c.size >= from.max(1)).unwrap_or(checkpoints.len());
    let (mut matched, mut matched_size) = (0u64, 0u64);
    let mut problem = None;
    let mut buf = Vec::new();
    // The read stops at the first problem, through an error this closure returns.
    let stop = || AuditError::NotFound { seq: 0 };
    let read = metamesh_audit::sqlite::for_each_record(conn, |r| {
        let expected = frontier.size() + 1;
        if r.seq > to {
            return Err(stop());
        }
        let found = if r.seq != expected {
            Some(VerifyError::Gap { missing: expected, found: r.seq })
        } else if r.seq < from {
            None
        } else if r.count == 0 || (r.count > 1 && r.decision == Decision::Allow) {
            Some(VerifyError::Malformed { seq: r.seq, reason: "count does not fit the decision".into() })
        } else if r.compute_hash_with(&mut buf) != r.hash {
            Some(VerifyError::HashMismatch { seq: r.seq })
        } else if r.prev_hash != prev {
            Some(VerifyError::BrokenLink { seq: r.seq })
        } else {
            None
        };
        if let Some(e) = found {
            problem = Some(e);
            return Err(stop());
        }
        prev = r.hash;
        frontier.push(&r.hash);
        while let Some(cp) = checkpoints.get(next_cp).filter(|c| c.size == r.seq) {
            if cp.root != frontier.root() {
                problem = Some(VerifyError::RootMismatch { first: matched_size + 1, last: cp.size });
                return Err(stop());
            }
            matched += 1;
            matched_size = cp.size;
            next_cp += 1;
        }
        Ok(())
    });
    match read {
        Ok(()) | Err(AuditError::NotFound { seq: 0 }) => {}
        Err(AuditError::Verify(e)) => problem = Some(e),
        Err(e) => return Err(audit_err(e)),
    }
    let records = frontier.size();
    if problem.is_none() {
        if let Some(cp) = checkpoints.iter().rev().find(|c| c.size > records && c.size <= to) {
            problem = Some(VerifyError::Truncated { records, size: cp.size });
        }
    }
    Ok(AuditVerification { records_checked: (records + 1).saturating_sub(from), checkpoints_checked: matched, problem })
}

fn checkpoint_at(conn: &Connection, size: Option<u64>) -> Result<Option<Checkpoint>, StoreError> {
    match size {
        None => metamesh_audit::sqlite::latest_checkpoint(conn).map_err(audit_err),
        Some(size) => {
            Ok(metamesh_audit::sqlite::read_checkpoints(conn).map_err(audit_err)?.into_iter().find(|c| c.size == size))
        }
    }
}

fn prove(conn: &Connection, seq: u64, size: Option<u64>) -> Result<Result<ProofBundle, ProofRefusal>, StoreError> {
    let records = metamesh_audit::sqlite::load_chain(conn).map_err(audit_err)?.last_seq();
    if seq == 0 || seq > records {
        return Ok(Err(ProofRefusal::NoRecord { seq, records }));
    }
    let checkpoint = match (checkpoint_at(conn, size)?, size) {
        (Some(cp), _) => cp,
        (None, Some(size)) => return Ok(Err(ProofRefusal::NoCheckpointOfSize { size })),
        (None, None) => return Ok(Err(ProofRefusal::NoCheckpoint)),
    };
    match metamesh_audit::sqlite::prove(conn, seq, &checkpoint) {
        Ok(bundle) => Ok(Ok(bundle)),
        Err(AuditError::Proof(ProofError::NotCovered { seq, size })) => Ok(Err(ProofRefusal::NotCovered { seq, size })),
        Err(e @ AuditError::Proof(_)) | Err(e @ AuditError::Verify(_)) => {
            Ok(Err(ProofRefusal::LogMismatch(e.to_string())))
        }
        Err(e) => Err(audit_err(e)),
    }
}

fn consistency(
    conn: &Connection,
    old_size: u64,
    new_size: Option<u64>,
) -> Result<Result<ConsistencyProof, ConsistencyRefusal>, StoreError> {
    if old_size == 0 {
        return Ok(Err(ConsistencyRefusal::EmptyOld));
    }
    let new_size = match new_size {
        Some(new_size) if old_size > new_size => return Ok(Err(ConsistencyRefusal::OldLarger { old_size, new_size })),
        Some(new_size) => {
            let records = metamesh_audit::sqlite::load_chain(conn).map_err(audit_err)?.last_seq();
            if new_size > records {
                return Ok(Err(ConsistencyRefusal::NewBeyondLog { new_size, records }));
            }
            new_size
        }
        None => match metamesh_audit::sqlite::latest_checkpoint(conn).map_err(audit_err)? {
            None => return Ok(Err(ConsistencyRefusal::NoCheckpoint)),
            Some(cp) if old_size > cp.size => {
                return Ok(Err(ConsistencyRefusal::OldBeyondCheckpoint { old_size, size: cp.size }))
            }
            Some(cp) => cp.size,
        },
    };
    match metamesh_audit::sqlite::prove_consistency(conn, old_size, new_size) {
        Ok(proof) => Ok(Ok(proof)),
        // The log was read shorter than its head said (or than its latest checkpoint): the file
        // changed under the read, or a checkpoint covers missing records.
        Err(e @ AuditError::BeyondLog { .. })
        | Err(e @ AuditError::CheckpointMismatch { .. })
        | Err(e @ AuditError::Verify(_)) => Ok(Err(ConsistencyRefusal::LogMismatch(e.to_string()))),
        Err(AuditError::Consistency(ConsistencyError::EmptyOld)) => Ok(Err(ConsistencyRefusal::EmptyOld)),
        Err(AuditError::Consistency(ConsistencyError::OldLarger { old_size, new_size })) => {
            Ok(Err(ConsistencyRefusal::OldLarger { old_size, new_size }))
        }
        Err(e) => Err(audit_err(e)),
    }
}
