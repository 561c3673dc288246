//! Who is calling the HTTP API: a client certificate from the mesh CA (as on the gRPC port), or
//! a bearer API key. Keys are kept only as SHA-256 hashes, in a TOML file named by
//! `http.api_keys`:
//!
//! ```toml
//! [keys.fraud-writer]
//! sha256 = "9f86d0…"                                        # hex SHA-256 of the key
//! principal = "spiffe://metamesh.local/client/fraud-writer" # whom the key stands for
//! ```
//!
//! A key stands for a principal, so the same policies apply to it as to that principal's
//! certificate. `metamesh keys hash` prints the hash of a key.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use axum::http::HeaderMap;
use metamesh_node::Caller;
use metamesh_tls::Identity;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// The identity of the connection's client certificate, if it presented one.
#[derive(Clone, Debug)]
pub struct Peer(pub Option<Identity>);

/// The API keys, by hash.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Key>,
}

#[derive(Clone, Debug)]
struct Key {
    name: String,
    principal: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: std::collections::BTreeMap<String, KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    sha256: String,
    principal: String,
}

/// The hex SHA-256 of an API key, as the keys file stores it.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiKeys {
    /// Reads a keys file; errors name the key (`keys.<name>.sha256`).
    pub fn load(path: &Path) -> anyhow::Result<ApiKeys> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading API keys {}", path.display()))?;
        ApiKeys::parse(&text).with_context(|| format!("API keys {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<ApiKeys> {
        let file: KeysFile = toml::from_str(text)?;
        let mut by_hash = HashMap::new();
        for (name, entry) in file.keys {
            let hash = parse_hex(&entry.sha256)
                .ok_or_else(|| anyhow::anyhow!("keys.{name}.sha256: expected 64 hex digits"))?;
            if entry.principal.is_empty() || entry.principal.len() > 256 {
                anyhow::bail!("keys.{name}.principal: expected 1 to 256 characters");
            }
            if by_hash.insert(hash, Key { name: name.clone(), principal: entry.principal }).is_some() {
                anyhow::bail!("keys.{name}.sha256: the same key is listed twice");
            }
        }
        Ok(ApiKeys { by_hash })
    }

    /// The principal an API key stands for, if the key is known.
    pub fn principal_of(&self, key: &str) -> Option<&str> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_hash.get(&hash).map(|k| k.principal.as_str())
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The caller of a request: by its bearer key if it sends one (a wrong key is refused even
/// with a certificate), else by its certificate. Neither: 401.
pub fn authenticate(keys: &ApiKeys, headers: &HeaderMap, peer: &Peer) -> Result<Caller, ApiError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let key = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <API key>`"))?
            .trim();
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let found = keys.by_hash.get(&hash).ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
        tracing::debug!(key = %found.name, principal = %found.principal, "API key accepted");
        return Ok(Caller {
            principal: found.principal.clone(),
            peer: peer.0.clone().unwrap_or_else(|| Identity::without_certificate(&found.principal)),
            forwarded: false,
            policy_digest: None,
        });
    }
    match &peer.0 {
        Some(identity) => Ok(Caller {
            principal: identity.principal.to_string(),
            peer: identity.clone(),
            forwarded: false,
            policy_digest: None,
        }),
        None => Err(ApiError::unauthorized(
            "no credentials: present a client certificate from the mesh CA or send `Authorization: Bearer <API key>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_and_bad_files_name_the_key() {
        let text = format!("[keys.a]\nsha256 = \"{}\"\nprincipal = \"p-a\"\n", hash_key("secret"));
        let keys = ApiKeys::parse(&text).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        assert_eq!(authenticate(&keys, &headers, &Peer(None)).unwrap().principal, "p-a");
        headers.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(authenticate(&keys, &headers, &Peer(None)).unwrap_err().status, 401);
        assert_eq!(authenticate(&keys, &HeaderMap::new(), &Peer(None)).unwrap_err().status, 401);
        let bad = ApiKeys::parse("[keys.b]\nsha256 = \"xyz\"\nprincipal = \"p\"\n").unwrap_err();
        assert!(format!("{bad:#}").contains("keys.b.sha256"), "{bad:#}");
    }
}
