//! The tamper-evident audit log of a shard (DESIGN §8): a hash chain of records, RFC 6962 Merkle
//! checkpoints signed with the shard's Ed25519 key, verification that names the first bad
//! record, inclusion and consistency proofs checkable offline, and the witness that holds a
//! shard to its signed history. Operator-facing description: `docs/audit.md`.
//!
//! Code map:
//! - [`record`]: [`AuditRecord`], [`Draft`] (what a caller supplies), the versioned canonical
//!   encoding and record hash, and [`Chain`] (the head: last seq and hash) that turns drafts
//!   into records.
//! - [`merkle`]: RFC 6962 tree hashing in a stream ([`merkle::Frontier`]), inclusion paths and
//!   consistency proofs without materializing the tree.
//! - [`checkpoint`]: [`Checkpoint`] and its signed message; [`KeyId`].
//! - [`keys`]: [`ShardKey`], Ed25519 keys in PKCS#8 PEM files.
//! - [`verify`](mod@verify): the streaming [`Verifier`], [`VerifyError`] (which names the spot)
//!   and [`VerifyReport`].
//! - [`proof`]: [`InclusionProof`], [`ProofBundle`], [`prove`] and [`check_proof`] (the path
//!   check is `ct-merkle`'s).
//! - [`consistency`]: [`ConsistencyProof`], [`verify_consistency`] (`ct-merkle`'s verifier) and
//!   [`check_consistency`] (two signed checkpoints and the proof between them).
//! - [`witness`]: [`Witness`], which keeps each shard's latest accepted checkpoint and raises a
//!   sticky [`WitnessAlarm`] when a newer one does not extend it.
//! - [`coalesce`]: [`DenialCoalescer`], which keeps a flood of denials from filling the log.
//! - [`sqlite`]: the tables (append-only triggers) and the functions the store and `meshctl`
//!   call: [`sqlite::append`], [`sqlite::append_checkpoint`], [`sqlite::verify_file`],
//!   [`sqlite::prove`], [`sqlite::prove_consistency`].
//!
//! **Invariants:** no clock and no randomness outside key generation (times come in drafts
//! and arguments, so every replica computes the same bytes); nothing here is async; the only IO
//! is through a caller's SQLite connection, a key file path, or the witness's state file.

pub mod checkpoint;
pub mod coalesce;
pub mod consistency;
mod hex;
pub mod keys;
pub mod merkle;
pub mod proof;
pub mod record;
pub mod sqlite;
pub mod verify;
pub mod witness;

use std::path::PathBuf;

pub use checkpoint::{Checkpoint, CheckpointError, KeyId};
pub use coalesce::DenialCoalescer;
pub use consistency::{check_consistency, verify_consistency, ConsistencyError, ConsistencyProof};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use keys::{load_public_key, parse_public_key_pem, KeyError, ShardKey};
pub use proof::{check_proof, prove, InclusionProof, ProofBundle, ProofError};
pub use record::{request_digest, AuditRecord, Chain, Decision, Draft, Hash};
pub use verify::{verify, Spot, Verifier, VerifyError, VerifyReport};
pub use witness::{Accepted, AlarmReason, Witness, WitnessAlarm, WitnessError, WitnessFileError};

/// Failures of this crate's operations (verification failures are [`AuditError::Verify`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit draft: {0}")]
    InvalidDraft(&'static str),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("checkpoint of size {size} does not match the log")]
    CheckpointMismatch { size: u64 },
    #[error("a checkpoint of size {size} needs {size} records, the log holds {records}")]
    BeyondLog { size: u64, records: u64 },
    #[error("audit record {seq} not found")]
    NotFound { seq: u64 },
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl AuditError {
    /// The verification failure inside, if this is one.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            AuditError::Verify(e) => Some(e),
            _ => None,
        }
    }
}
