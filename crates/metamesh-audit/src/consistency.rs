//! Consistency proofs: "the log whose first `old_size` records have root A is a prefix of the
//! log whose first `new_size` records have root B" (RFC 6962 §2.1.2, `PROOF(m, D[n])`).
//!
//! Two signed checkpoints and a consistency proof between them show that the shard only
//! appended between the two: no record covered by the older one was changed, removed or
//! reordered. That is what a witness (the router) checks each time it sees a newer checkpoint
//! ([`crate::witness`]).
//!
//! The prover streams the record hashes once ([`ConsistencyBuilder`]); which subtree
//! hashes a proof holds, and the check itself, are `ct-merkle`'s, independent of our prover.

use ct_merkle::digest::generic_array::GenericArray;
use ct_merkle::RootHash;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{ConsistencyBuilder, MAX_TREE_SIZE};
use crate::record::Hash;

/// RFC 6962 `PROOF(old_size, D[new_size])`: the subtree hashes that let a verifier rebuild both
/// roots, in RFC order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Records in the older tree (≥ 1).
    pub old_size: u64,
    /// Records in the newer tree (≥ `old_size`).
    pub new_size: u64,
    /// Empty when the sizes are equal.
    #[serde(with = "crate::hex::array_list")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// A proof whose hashes arrive as byte strings (a gRPC reply's `repeated bytes`); refused
    /// when one is not 32 bytes.
    pub fn from_slices<B: AsRef<[u8]>>(
        old_size: u64,
        new_size: u64,
        hashes: &[B],
    ) -> Result<ConsistencyProof, ConsistencyError> {
        let hashes = hashes
            .iter()
            .enumerate()
            .map(|(index, h)| {
                let h = h.as_ref();
                h.try_into().map_err(|_| ConsistencyError::MalformedHash { index, len: h.len() })
            })
            .collect::<Result<_, _>>()?;
        Ok(ConsistencyProof { old_size, new_size, hashes })
    }

    /// [`verify_consistency`] with the proof's sizes.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ConsistencyError> {
        verify_consistency(self.old_size, old_root, self.new_size, new_root, &self.hashes)
    }
}

/// Why a consistency proof could not be made or does not check out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    #[error("old_size is 0: a consistency proof starts from a tree of at least one record")]
    EmptyOld,
    #[error("old_size {old_size} is larger than new_size {new_size}")]
    OldLarger { old_size: u64, new_size: u64 },
    #[error("a tree of {size} records is beyond the largest supported size")]
    TooLarge { size: u64 },
    #[error("the log holds {records} records, fewer than {size}")]
    LogTooShort { records: u64, size: u64 },
    #[error("proof hash {index} is {len} bytes, expected 32")]
    MalformedHash { index: usize, len: usize },
    #[error("the proof is from {proof_old} to {proof_new} records, the checkpoints cover {old_size} and {new_size}")]
    SizeMismatch { proof_old: u64, proof_new: u64, old_size: u64, new_size: u64 },
    #[error("the checkpoints are of shards `{old}` and `{new}`")]
    ShardMismatch { old: String, new: String },
    #[error("checkpoint of size {size}: {source}")]
    Checkpoint { size: u64, source: CheckpointError },
    /// The proof does not lead to both roots: the newer tree does not extend the older one (or
    /// the proof is wrong).
    #[error(
        "the consistency proof does not show that the tree of {old_size} records is a prefix of the tree of {new_size}"
    )]
    Mismatch { old_size: u64, new_size: u64 },
}

/// Refuses sizes no consistency proof exists for.
fn check_sizes(old_size: u64, new_size: u64) -> Result<(), ConsistencyError> {
    if old_size == 0 {
        return Err(ConsistencyError::EmptyOld);
    }
    if old_size > new_size {
        return Err(ConsistencyError::OldLarger { old_size, new_size });
    }
    if new_size > MAX_TREE_SIZE {
        return Err(ConsistencyError::TooLarge { size: new_size });
    }
    Ok(())
}

/// `(old root, new root, proof)` from the log's record hashes in order (one pass, O(log n)
/// memory; hashes after `new_size` are not read).
pub fn prove_consistency_hashes(
    hashes: impl IntoIterator<Item = Hash>,
    old_size: u64,
    new_size: u64,
) -> Result<(Hash, Hash, ConsistencyProof), ConsistencyError> {
    check_sizes(old_size, new_size)?;
    let mut builder = ConsistencyBuilder::new(old_size, new_size);
    for h in hashes {
        if builder.fed() == new_size {
            break;
        }
        builder.push(&h);
    }
    let records = builder.fed();
    let (old_root, new_root, hashes) =
        builder.finish().ok_or(ConsistencyError::LogTooShort { records, size: new_size })?;
    Ok((old_root, new_root, ConsistencyProof { old_size, new_size, hashes }))
}

/// Checks that `proof` shows the tree of `old_size` records with root `old_root` to be a prefix
/// of the tree of `new_size` records with root `new_root` (`ct-merkle`'s RFC 6962 verifier).
/// Equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    check_sizes(old_size, new_size)?;
    let mismatch = || ConsistencyError::Mismatch { old_size, new_size };
    let old = RootHash::<Sha256>::new(GenericArray::clone_from_slice(old_root), old_size);
    let new = RootHash::<Sha256>::new(GenericArray::clone_from_slice(new_root), new_size);
    let proof = ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(proof.concat()).map_err(|_| mismatch())?;
    new.verify_consistency(&old, &proof).map_err(|_| mismatch())
}

/// Checks offline that `new` extends `old`: both signed by one of `keys`, of the same shard,
/// with `proof` between their sizes verifying against their roots.
pub fn check_consistency(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &ConsistencyProof,
    keys: &[VerifyingKey],
) -> Result<(), ConsistencyError> {
    for cp in [old, new] {
        cp.verify_with_any(keys).map_err(|source| ConsistencyError::Checkpoint { size: cp.size, source })?;
    }
    if old.shard != new.shard {
        return Err(ConsistencyError::ShardMismatch { old: old.shard.clone(), new: new.shard.clone() });
    }
    if (proof.old_size, proof.new_size) != (old.size, new.size) {
        return Err(ConsistencyError::SizeMismatch {
            proof_old: proof.old_size,
            proof_new: proof.new_size,
            old_size: old.size,
            new_size: new.size,
        });
    }
    proof.verify(&old.root, &new.root)
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;
    use crate::merkle::Frontier;

    fn hashes(n: u64) -> Vec<Hash> {
        (0..n).map(|i| Sha256::digest(i.to_be_bytes()).into()).collect()
    }

    fn root(hs: &[Hash]) -> Hash {
        let mut f = Frontier::new();
        hs.iter().for_each(|h| f.push(h));
        f.root()
    }

    #[test]
    fn proofs_verify_and_any_change_fails() {
        let hs = hashes(40);
        for new in 1..=40u64 {
            for old in 1..=new {
                let (old_root, new_root, proof) = prove_consistency_hashes(hs.iter().copied(), old, new).unwrap();
                assert_eq!((old_root, new_root), (root(&hs[..old as usize]), root(&hs[..new as usize])));
                proof.verify(&old_root, &new_root).unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
                for i in 0..proof.hashes.len() {
                    let mut bad = proof.clone();
                    bad.hashes[i][3] ^= 0x10;
                    assert_eq!(
                        bad.verify(&old_root, &new_root),
                        Err(ConsistencyError::Mismatch { old_size: old, new_size: new })
                    );
                }
                let mut wrong_root = new_root;
                wrong_root[0] ^= 1;
                assert!(proof.verify(&old_root, &wrong_root).is_err());
                assert!(proof.verify(&wrong_root, &new_root).is_err());
                if old < new {
                    let mut short = proof.clone();
                    short.hashes.pop();
                    assert!(short.verify(&old_root, &new_root).is_err(), "{old} -> {new} without its last hash");
                }
            }
        }
    }

    #[test]
    fn sizes_are_checked() {
        let h = [0; 32];
        assert_eq!(verify_consistency(0, &h, 3, &h, &[]), Err(ConsistencyError::EmptyOld));
        assert_eq!(
            verify_consistency(4, &h, 3, &h, &[]),
            Err(ConsistencyError::OldLarger { old_size: 4, new_size: 3 })
        );
        assert_eq!(verify_consistency(1, &h, u64::MAX, &h, &[]), Err(ConsistencyError::TooLarge { size: u64::MAX }));
        assert_eq!(verify_consistency(3, &h, 3, &h, &[]), Ok(()));
        assert!(verify_consistency(3, &h, 3, &[1; 32], &[]).is_err());
        assert_eq!(
            prove_consistency_hashes(hashes(5), 2, 9).unwrap_err(),
            ConsistencyError::LogTooShort { records: 5, size: 9 }
        );
    }

    #[test]
    fn wire_hashes_must_be_32_bytes() {
        let ok = ConsistencyProof::from_slices(1, 2, &[vec![7u8; 32]]).unwrap();
        assert_eq!(ok.hashes, vec![[7; 32]]);
        assert_eq!(
            ConsistencyProof::from_slices(1, 3, &[vec![0u8; 32], vec![0u8; 31]]),
            Err(ConsistencyError::MalformedHash { index: 1, len: 31 })
        );
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<ConsistencyProof>(&json).unwrap(), ok);
    }
}
