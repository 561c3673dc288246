//! Signed checkpoints: "the first `size` records of shard S have Merkle root R", signed with
//! the shard's Ed25519 key.
//!
//! The signed message is, in this order:
//!
//! ```text
//! "metamesh.audit.checkpoint\0"  (CHECKPOINT_DOMAIN)
//! u8   version = 1
//! str  shard                     (u32 big-endian length, UTF-8)
//! u64  size                      (records covered = seq of the last one), big-endian
//! [32] root                      RFC 6962 Merkle tree hash of record hashes 1..=size
//! i64  at_ms                     big-endian
//! [32] key_id                    SHA-256 of the signer's SubjectPublicKeyInfo DER
//! ```
//!
//! Plain Ed25519 (RFC 8032) over those bytes, checked with `verify_strict` (no malleable or
//! small-order signatures). Signing is deterministic, so replicas that hold the same key sign a
//! checkpoint to the same bytes.

use std::fmt;

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Prepended to every checkpoint message before signing.
pub const CHECKPOINT_DOMAIN: &[u8] = b"metamesh.audit.checkpoint\0";

/// Identifies a shard key: SHA-256 of its DER `SubjectPublicKeyInfo`, as RFC 6962 names logs
/// (`openssl pkey -pubin -in key.pub.pem -outform DER | sha256sum` prints the same).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(#[serde(with = "crate::hex::array")] pub [u8; 32]);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> KeyId {
        let der = key.to_public_key_der().expect("an Ed25519 public key always encodes");
        KeyId(Sha256::digest(der.as_bytes()).into())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a checkpoint's signature is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("signed by unknown key {0}")]
    UnknownKey(KeyId),
    #[error("bad signature")]
    BadSignature,
}

/// A signed statement of the Merkle root of a shard's first `size` audit records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The shard group whose log this is.
    pub shard: String,
    /// Records covered: the tree size, which is also the seq of the last record covered.
    pub size: u64,
    /// RFC 6962 Merkle tree hash over the hashes of records `1..=size`.
    #[serde(with = "crate::hex::array")]
    pub root: Hash,
    /// When the leader made it (milliseconds since the Unix epoch).
    pub at_ms: i64,
    /// The signing key.
    pub key_id: KeyId,
    /// Ed25519 over [`Checkpoint::signed_message`].
    #[serde(with = "crate::hex::array")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Makes and signs a checkpoint.
    pub fn sign(shard: impl Into<String>, size: u64, root: Hash, at_ms: i64, key: &SigningKey) -> Checkpoint {
        let mut cp = Checkpoint {
            shard: shard.into(),
            size,
            root,
            at_ms,
            key_id: KeyId::of(&key.verifying_key()),
            signature: [0; 64],
        };
        cp.signature = key.sign(&cp.signed_message()).to_bytes();
        cp
    }

    /// The exact bytes the signature covers (see the module docs).
    pub fn signed_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 1 + 4 + self.shard.len() + 8 + 32 + 8 + 32);
        m.extend_from_slice(CHECKPOINT_DOMAIN);
        m.push(1);
        m.extend_from_slice(&u32::try_from(self.shard.len()).unwrap_or(u32::MAX).to_be_bytes());
        m.extend_from_slice(self.shard.as_bytes());
        m.extend_from_slice(&self.size.to_be_bytes());
        m.extend_from_slice(&self.root);
        m.extend_from_slice(&self.at_ms.to_be_bytes());
        m.extend_from_slice(&self.key_id.0);
        m
    }

    /// Checks the signature with `key`, which must be the key named by `key_id`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        if KeyId::of(key) != self.key_id {
            return Err(CheckpointError::UnknownKey(self.key_id));
        }
        key.verify_strict(&self.signed_message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// Checks the signature with whichever of `keys` `key_id` names.
    pub fn verify_with_any(&self, keys: &[VerifyingKey]) -> Result<(), CheckpointError> {
        let key = keys.iter().find(|k| KeyId::of(k) == self.key_id).ok_or(CheckpointError::UnknownKey(self.key_id))?;
        self.verify(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_verify_round_trip() {
        let k = key(1);
        let cp = Checkpoint::sign("s1", 10, [7; 32], 1234, &k);
        cp.verify(&k.verifying_key()).unwrap();
        cp.verify_with_any(&[key(2).verifying_key(), k.verifying_key()]).unwrap();
        // Deterministic: every replica holding the key signs the same bytes.
        assert_eq!(cp, Checkpoint::sign("s1", 10, [7; 32], 1234, &k));
        let json = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
    }

    #[test]
    fn every_field_is_signed() {
        let k = key(1);
        let vk = k.verifying_key();
        let cp = Checkpoint::sign("s1", 10, [7; 32], 1234, &k);
        let mut changed = vec![cp.clone(), cp.clone(), cp.clone(), cp.clone(), cp.clone()];
        changed[0].shard = "s2".into();
        changed[1].size = 11;
        changed[2].root[0] ^= 1;
        changed[3].at_ms += 1;
        changed[4].signature[0] ^= 1;
        for c in changed {
            assert_eq!(c.verify(&vk), Err(CheckpointError::BadSignature), "{c:?}");
        }
        let other = Checkpoint::sign("s1", 10, [7; 32], 1234, &key(2));
        assert_eq!(other.verify(&vk), Err(CheckpointError::UnknownKey(other.key_id)));
        assert_eq!(other.verify_with_any(&[vk]), Err(CheckpointError::UnknownKey(other.key_id)));
    }
}
