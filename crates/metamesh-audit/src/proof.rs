//! Inclusion proofs: "record `seq` is in the log whose first `size` records a signed checkpoint
//! commits to", checkable offline with nothing but the record, the proof, the checkpoint and the
//! shard's public key.

use std::borrow::Borrow;

use ct_merkle::digest::generic_array::GenericArray;
use ct_merkle::RootHash;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::PathBuilder;
use crate::record::{AuditRecord, Hash};

/// RFC 6962 `PATH(seq - 1, D[size])`: the sibling subtree hashes from the record's leaf up to
/// the root, nearest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The record proved.
    pub seq: u64,
    /// The tree size the path leads to (the checkpoint's size).
    pub size: u64,
    #[serde(with = "crate::hex::array_list")]
    pub path: Vec<Hash>,
}

/// Everything `check-proof` needs, in one JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub record: AuditRecord,
    pub checkpoint: Checkpoint,
    pub proof: InclusionProof,
}

impl ProofBundle {
    /// [`check_proof`] on the bundle's parts.
    pub fn check(&self, keys: &[VerifyingKey]) -> Result<(), ProofError> {
        check_proof(&self.record, &self.proof, &self.checkpoint, keys)
    }

    /// One line saying what the bundle proves, for the command-line tools.
    pub fn describe(&self) -> String {
        format!(
            "record {} ({} {} by {}) is in the checkpoint of {} records signed at {}",
            self.record.seq,
            self.record.action,
            self.record.resource,
            self.record.principal,
            self.checkpoint.size,
            self.checkpoint.at_ms
        )
    }
}

/// Why a proof could not be made or does not check out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("record {seq} is not covered by the checkpoint of size {size}")]
    NotCovered { seq: u64, size: u64 },
    #[error("the log holds {records} records, fewer than the checkpoint's {size}")]
    LogTooShort { records: u64, size: u64 },
    #[error("the log does not match the checkpoint of size {size}: run verify")]
    LogMismatch { size: u64 },
    #[error("record {seq}: stored hash does not match the record's contents")]
    RecordAltered { seq: u64 },
    #[error("the proof is for record {proof}, not record {record}")]
    SeqMismatch { proof: u64, record: u64 },
    #[error("the proof is for a tree of {proof} records, the checkpoint covers {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("the inclusion path does not lead from record {seq} to the checkpoint's root")]
    PathMismatch { seq: u64 },
    #[error("checkpoint of size {size}: {source}")]
    Checkpoint { size: u64, source: CheckpointError },
}

/// Builds the inclusion proof of record `seq` in `checkpoint` from the log's records in order
/// (one pass, O(log n) memory; records after the checkpoint are not read). Fails when the log
/// does not reproduce the checkpoint's root.
pub fn prove<R: Borrow<AuditRecord>>(
    records: impl IntoIterator<Item = R>,
    seq: u64,
    checkpoint: &Checkpoint,
) -> Result<InclusionProof, ProofError> {
    prove_hashes(records.into_iter().map(|r| r.borrow().hash), seq, checkpoint)
}

/// [`prove`] over the record hashes alone (what the SQLite reader streams).
pub fn prove_hashes(
    hashes: impl IntoIterator<Item = Hash>,
    seq: u64,
    checkpoint: &Checkpoint,
) -> Result<InclusionProof, ProofError> {
    let size = checkpoint.size;
    if seq == 0 || seq > size {
        return Err(ProofError::NotCovered { seq, size });
    }
    let mut builder = PathBuilder::new(seq - 1, size);
    for h in hashes {
        if builder.fed() == size {
            break;
        }
        builder.push(&h);
    }
    let records = builder.fed();
    let (_, root, path) = builder.finish().ok_or(ProofError::LogTooShort { records, size })?;
    if root != checkpoint.root {
        return Err(ProofError::LogMismatch { size });
    }
    Ok(InclusionProof { seq, size, path })
}

/// Checks offline that `record` is record `proof.seq` of the log `checkpoint` commits to, and
/// that one of `keys` signed the checkpoint.
pub fn check_proof(
    record: &AuditRecord,
    proof: &InclusionProof,
    checkpoint: &Checkpoint,
    keys: &[VerifyingKey],
) -> Result<(), ProofError> {
    checkpoint.verify_with_any(keys).map_err(|source| ProofError::Checkpoint { size: checkpoint.size, source })?;
    if record.compute_hash() != record.hash {
        return Err(ProofError::RecordAltered { seq: record.seq });
    }
    if proof.seq != record.seq {
        return Err(ProofError::SeqMismatch { proof: proof.seq, record: record.seq });
    }
    if proof.size != checkpoint.size {
        return Err(ProofError::SizeMismatch { proof: proof.size, checkpoint: checkpoint.size });
    }
    if record.seq == 0 || record.seq > checkpoint.size {
        return Err(ProofError::NotCovered { seq: record.seq, size: checkpoint.size });
    }
    // The path check itself is ct-merkle's RFC 6962 verifier, independent of our prover.
    let root = RootHash::<Sha256>::new(GenericArray::clone_from_slice(&checkpoint.root), checkpoint.size);
    let path = ct_merkle::InclusionProof::<Sha256>::try_from_bytes(proof.path.concat())
        .map_err(|_| ProofError::PathMismatch { seq: record.seq })?;
    root.verify_inclusion(&record.hash, record.seq - 1, &path).map_err(|_| ProofError::PathMismatch { seq: record.seq })
}
