//! Verification: recompute the chain and the Merkle roots, and name the first thing wrong.
//!
//! Order of checks: every checkpoint's signature first (a forged checkpoint is reported
//! whatever the records say), then the records in order — for each: its seq is the next one,
//! it is well formed, its stored hash matches its fields, its `prev_hash` is the previous
//! record's hash; and whenever the records read so far reach a checkpoint's size, the Merkle
//! root of the records so far must be the signed one. At the end, a checkpoint that covers more
//! records than the log holds means the tail was cut.
//!
//! What it cannot do: an attacker who rewrites records *and* recomputes every later hash keeps
//! the chain consistent; only a checkpoint catches that, and then verify can say only which
//! range between two checkpoints changed ([`VerifyError::RootMismatch`]). Records after the
//! last checkpoint are protected by the chain alone ([`VerifyReport::uncovered`]); a witness
//! holding a later checkpoint (the router) closes that gap.

use std::borrow::Borrow;

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{Checkpoint, CheckpointError, KeyId};
use crate::merkle::{Frontier, EMPTY_ROOT};
use crate::record::{AuditRecord, Hash, GENESIS_PREV};

/// The first thing wrong with a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("record {seq}: stored hash does not match the record's contents")]
    HashMismatch { seq: u64 },
    #[error("record {seq}: prev_hash is not the hash of the record before it")]
    BrokenLink { seq: u64 },
    #[error("record {missing} is missing (the next record found is {found})")]
    Gap { missing: u64, found: u64 },
    #[error("record {expected} is missing: record {found} appears again in its place")]
    Duplicate { expected: u64, found: u64 },
    #[error("record {expected} is missing: record {found} is out of order in its place")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("record {seq}: malformed ({reason})")]
    Malformed { seq: u64, reason: String },
    #[error("records {first}..={last} do not match the signed checkpoint of size {last}")]
    RootMismatch { first: u64, last: u64 },
    #[error("the log ends at record {records} but a signed checkpoint covers {size} records: records {}..={size} are missing", records + 1)]
    Truncated { records: u64, size: u64 },
    #[error("checkpoint of size {size} is signed by unknown key {key_id}")]
    UnknownKey { size: u64, key_id: KeyId },
    #[error("checkpoint of size {size} has a bad signature")]
    BadSignature { size: u64 },
    #[error("checkpoint of size {size}: malformed ({reason})")]
    MalformedCheckpoint { size: u64, reason: String },
}

/// Where a [`VerifyError`] points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    /// This record is the first bad (or missing) one.
    Record(u64),
    /// Some record in `first..=last` changed (the chain was recomputed over it).
    Records { first: u64, last: u64 },
    /// This checkpoint (by size) is not one the trusted keys signed.
    Checkpoint(u64),
}

impl VerifyError {
    /// The place to look.
    pub fn spot(&self) -> Spot {
        match *self {
            VerifyError::HashMismatch { seq }
            | VerifyError::BrokenLink { seq }
            | VerifyError::Malformed { seq, .. }
            | VerifyError::Gap { missing: seq, .. }
            | VerifyError::Duplicate { expected: seq, .. }
            | VerifyError::OutOfOrder { expected: seq, .. } => Spot::Record(seq),
            VerifyError::Truncated { records, .. } => Spot::Record(records + 1),
            VerifyError::RootMismatch { first, last } => Spot::Records { first, last },
            VerifyError::UnknownKey { size, .. }
            | VerifyError::BadSignature { size }
            | VerifyError::MalformedCheckpoint { size, .. } => Spot::Checkpoint(size),
        }
    }

    /// The first record to distrust, when the error points at records.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self.spot() {
            Spot::Record(seq) | Spot::Records { first: seq, .. } => Some(seq),
            Spot::Checkpoint(_) => None,
        }
    }
}

/// What a successful verification checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read (= seq of the last one).
    pub records: u64,
    /// Hash of the last record ([`GENESIS_PREV`] for an empty log).
    pub head: Hash,
    /// Merkle root over all records.
    pub root: Hash,
    /// Signed checkpoints whose roots were matched.
    pub checkpoints: usize,
    /// Records covered by the largest checkpoint.
    pub covered: u64,
    /// Records after the largest checkpoint (protected by the hash chain alone).
    pub uncovered: u64,
}

/// Streaming verifier: feed records in log order with [`Verifier::push`], then
/// [`Verifier::finish`].
pub struct Verifier {
    /// Checkpoints sorted by size; `next` indexes the first not yet reached.
    checkpoints: Vec<Checkpoint>,
    next: usize,
    /// Size of the last checkpoint matched, for naming the range a root mismatch covers.
    matched_size: u64,
    matched: usize,
    prev: Hash,
    frontier: Frontier,
    buf: Vec<u8>,
}

impl Verifier {
    /// Checks every checkpoint's signature against `keys` and prepares to read records.
    pub fn new(
        checkpoints: impl IntoIterator<Item = Checkpoint>,
        keys: &[VerifyingKey],
    ) -> Result<Verifier, VerifyError> {
        let mut checkpoints: Vec<Checkpoint> = checkpoints.into_iter().collect();
        checkpoints.sort_by_key(|c| c.size);
        for cp in &checkpoints {
            cp.verify_with_any(keys).map_err(|e| match e {
                CheckpointError::UnknownKey(key_id) => VerifyError::UnknownKey { size: cp.size, key_id },
                CheckpointError::BadSignature => VerifyError::BadSignature { size: cp.size },
            })?;
        }
        let mut v = Verifier {
            checkpoints,
            next: 0,
            matched_size: 0,
            matched: 0,
            prev: GENESIS_PREV,
            frontier: Frontier::new(),
            buf: Vec::with_capacity(512),
        };
        v.match_checkpoints(EMPTY_ROOT)?;
        Ok(v)
    }

    /// Records accepted so far.
    pub fn records(&self) -> u64 {
        self.frontier.size()
    }

    /// Checks the next record.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), VerifyError> {
        let expected = self.frontier.size() + 1;
        let seq = record.seq;
        if seq != expected {
            return Err(if seq > expected {
                VerifyError::Gap { missing: expected, found: seq }
            } else if seq + 1 == expected {
                VerifyError::Duplicate { expected, found: seq }
            } else {
                VerifyError::OutOfOrder { expected, found: seq }
            });
        }
        if let Some(reason) = record.malformation() {
            return Err(VerifyError::Malformed { seq, reason: reason.into() });
        }
        let hash = record.compute_hash_with(&mut self.buf);
        if hash != record.hash {
            return Err(VerifyError::HashMismatch { seq });
        }
        if record.prev_hash != self.prev {
            return Err(VerifyError::BrokenLink { seq });
        }
        self.prev = hash;
        self.frontier.push(&hash);
        if self.checkpoints.get(self.next).is_some_and(|c| c.size == seq) {
            self.match_checkpoints(self.frontier.root())?;
        }
        Ok(())
    }

    /// Compares `root` (of the records so far) with every checkpoint of this size.
    fn match_checkpoints(&mut self, root: Hash) -> Result<(), VerifyError> {
        let size = self.frontier.size();
        while let Some(cp) = self.checkpoints.get(self.next).filter(|c| c.size == size) {
            if cp.root != root {
                return Err(VerifyError::RootMismatch { first: self.matched_size + 1, last: size });
            }
            self.next += 1;
            self.matched += 1;
            self.matched_size = size;
        }
        Ok(())
    }

    /// Ends the log: fails if a checkpoint covers records that were not read.
    pub fn finish(self) -> Result<VerifyReport, VerifyError> {
        let records = self.frontier.size();
        if let Some(cp) = self.checkpoints.last().filter(|c| c.size > records) {
            return Err(VerifyError::Truncated { records, size: cp.size });
        }
        Ok(VerifyReport {
            records,
            head: self.prev,
            root: self.frontier.root(),
            checkpoints: self.matched,
            covered: self.matched_size,
            uncovered: records - self.matched_size,
        })
    }
}

/// Verifies a whole log held in memory (or streamed from anywhere) against signed checkpoints.
pub fn verify<R: Borrow<AuditRecord>>(
    records: impl IntoIterator<Item = R>,
    checkpoints: &[Checkpoint],
    keys: &[VerifyingKey],
) -> Result<VerifyReport, VerifyError> {
    let mut v = Verifier::new(checkpoints.iter().cloned(), keys)?;
    for r in records {
        v.push(r.borrow())?;
    }
    v.finish()
}
