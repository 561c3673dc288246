//! Shard signing keys: Ed25519 in PKCS#8 PEM files.
//!
//! The private key file is written once, with mode 0600, and never overwritten; the public key
//! (SPKI PEM) is what auditors and the router's witness are given.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::checkpoint::KeyId;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file {path}: not an Ed25519 {what} in PEM: {reason}")]
    Parse { path: PathBuf, what: &'static str, reason: String },
}

/// A shard's checkpoint signing key.
pub struct ShardKey {
    signing: SigningKey,
    key_id: KeyId,
}

impl std::fmt::Debug for ShardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "ShardKey({})", self.key_id)
    }
}

impl ShardKey {
    /// A new random key (operating-system randomness).
    pub fn generate() -> ShardKey {
        ShardKey::from_signing_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    pub fn from_signing_key(signing: SigningKey) -> ShardKey {
        let key_id = KeyId::of(&signing.verifying_key());
        ShardKey { signing, key_id }
    }

    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
    /// -algorithm ed25519` writes).
    pub fn from_pkcs8_pem(pem: &str) -> Result<ShardKey, KeyError> {
        SigningKey::from_pkcs8_pem(pem).map(ShardKey::from_signing_key).map_err(|e| KeyError::Parse {
            path: PathBuf::from("<memory>"),
            what: "private key",
            reason: e.to_string(),
        })
    }

    /// Reads a PKCS#8 PEM private key file.
    pub fn load(path: &Path) -> Result<ShardKey, KeyError> {
        let pem = fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.into(), source })?;
        ShardKey::from_pkcs8_pem(&pem).map_err(|e| match e {
            KeyError::Parse { what, reason, .. } => KeyError::Parse { path: path.into(), what, reason },
            other => other,
        })
    }

    /// Writes the private key as PKCS#8 PEM to a new file (mode 0600 on Unix); refuses to
    /// overwrite an existing file, so a key that signed checkpoints is never lost by mistake.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.into(), source };
        let pem = self.signing.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key always encodes");
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Loads the key at `path`, or generates and saves one when there is no file.
    pub fn load_or_generate(path: &Path) -> Result<ShardKey, KeyError> {
        if path.exists() {
            return ShardKey::load(path);
        }
        let key = ShardKey::generate();
        key.save(path)?;
        Ok(key)
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for auditors and witnesses.
    pub fn public_key_pem(&self) -> String {
        self.verifying_key().to_public_key_pem(LineEnding::LF).expect("an Ed25519 key always encodes")
    }
}

/// Parses an SPKI PEM public key.
pub fn parse_public_key_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Parse {
        path: PathBuf::from("<memory>"),
        what: "public key",
        reason: e.to_string(),
    })
}

/// Reads an SPKI PEM public key file.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let pem = fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.into(), source })?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| KeyError::Parse {
        path: path.into(),
        what: "public key",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.key");
        let key = ShardKey::load_or_generate(&path).unwrap();
        let again = ShardKey::load_or_generate(&path).unwrap();
        assert_eq!(key.key_id(), again.key_id());
        assert!(matches!(key.save(&path), Err(KeyError::Io { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let public = dir.path().join("shard.pub");
        fs::write(&public, key.public_key_pem()).unwrap();
        assert_eq!(load_public_key(&public).unwrap(), key.verifying_key());
        assert_eq!(KeyId::of(&parse_public_key_pem(&key.public_key_pem()).unwrap()), key.key_id());
        fs::write(dir.path().join("bad"), "not a key").unwrap();
        let err = ShardKey::load(&dir.path().join("bad")).unwrap_err().to_string();
        assert!(err.contains("bad") && err.contains("private key"), "{err}");
    }

    #[test]
    fn key_id_is_sha256_of_the_spki_der() {
        // Ed25519 SPKI DER = fixed 12-byte prefix || raw key (RFC 8410).
        let key = ShardKey::from_signing_key(SigningKey::from_bytes(&[9; 32]));
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend_from_slice(key.verifying_key().as_bytes());
        use sha2::Digest;
        assert_eq!(key.key_id().0, <[u8; 32]>::from(sha2::Sha256::digest(&der)));
    }
}
