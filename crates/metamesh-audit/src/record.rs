//! Audit records, their canonical encoding, and the hash chain that links them.
//!
//! A record's hash is `SHA-256(RECORD_DOMAIN || canonical(record without its hash))`, where the
//! canonical encoding (version 1) is, in this order and nothing else:
//!
//! | field          | encoding                                             |
//! |----------------|------------------------------------------------------|
//! | version        | `u8` = 1                                             |
//! | seq            | `u64`, big-endian                                    |
//! | at_ms          | `i64`, big-endian two's complement                   |
//! | principal      | `str`                                                |
//! | tenant         | `opt`                                                |
//! | action         | `str`                                                |
//! | resource       | `str`                                                |
//! | decision       | `u8`: 1 = allow, 2 = deny                            |
//! | count          | `u32`, big-endian                                    |
//! | policy_digest  | `str`                                                |
//! | request_id     | `opt`                                                |
//! | request_digest | 32 bytes                                             |
//! | prev_hash      | 32 bytes                                             |
//!
//! `str` is a `u32` big-endian byte length followed by the UTF-8 bytes; `opt` is `0x00` for
//! absent or `0x01` followed by a `str`. Every field has a fixed place and an explicit length, so
//! two different records never encode to the same bytes (no map order, no escaping, no
//! whitespace: nothing a JSON library could change between versions).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// A SHA-256 output: record hashes, chain links, Merkle nodes.
pub type Hash = [u8; 32];

/// The version byte that starts every canonical encoding this crate writes.
pub const ENCODING_VERSION: u8 = 1;

/// Prepended to the canonical encoding before hashing, so a record hash can never be mistaken
/// for any other hash this crate computes (Merkle leaves and nodes, checkpoint messages).
pub const RECORD_DOMAIN: &[u8] = b"metamesh.audit.record\0";

/// Upper bound on each text field, in bytes. A draft over it is refused: an audit record is
/// evidence, not storage, and the bound keeps one record's hashing cost small.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The `prev_hash` of record 1: there is no record 0.
pub const GENESIS_PREV: Hash = [0; 32];

/// What the policy decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// The SQLite and JSON spelling: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }

    /// The inverse of [`Decision::as_str`].
    pub fn parse(text: &str) -> Option<Decision> {
        match text {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Decision::Allow => 1,
            Decision::Deny => 2,
        }
    }
}

/// What a caller knows about an event: everything but the record's place in the chain.
///
/// The leader fills it in (time included) before proposing, so every replica appends the same
/// record; [`Chain::append`] adds `seq`, `prev_hash` and `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Milliseconds since the Unix epoch, chosen by the leader. For a coalesced record, the time
    /// of the first denial it counts.
    pub at_ms: i64,
    /// Who asked (certificate URI SAN or CN, or the API key's principal).
    pub principal: String,
    /// The tenant the request concerned; `None` for mesh-level actions.
    pub tenant: Option<String>,
    /// What was asked, e.g. `entity.put`, `tenant.create`, `entity.read`.
    pub action: String,
    /// What it was asked on, normally a URN.
    pub resource: String,
    /// What the policy answered.
    pub decision: Decision,
    /// How many events this record stands for: 1, or more for coalesced repeated denials.
    pub count: u32,
    /// Digest of the policy set that decided, so a decision can be replayed against it.
    pub policy_digest: String,
    /// The client's request id, when it sent one.
    pub request_id: Option<String>,
    /// Digest of the request as received (see [`request_digest`]).
    #[serde(with = "crate::hex::array")]
    pub request_digest: Hash,
}

impl Draft {
    /// A draft for one event with no tenant, policy digest, request id or request digest; set
    /// those with the builder methods or the public fields.
    pub fn new(
        at_ms: i64,
        principal: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        decision: Decision,
    ) -> Draft {
        Draft {
            at_ms,
            principal: principal.into(),
            tenant: None,
            action: action.into(),
            resource: resource.into(),
            decision,
            count: 1,
            policy_digest: String::new(),
            request_id: None,
            request_digest: [0; 32],
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Draft {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the policy digest.
    pub fn policy(mut self, digest: impl Into<String>) -> Draft {
        self.policy_digest = digest.into();
        self
    }

    /// Sets the request id and digest.
    pub fn request(mut self, id: Option<String>, digest: Hash) -> Draft {
        self.request_id = id;
        self.request_digest = digest;
        self
    }

    /// Refuses what no honest writer produces, so verify can treat it as tampering.
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.count == 0 {
            return Err(AuditError::InvalidDraft("count must be at least 1"));
        }
        if self.count > 1 && self.decision == Decision::Allow {
            return Err(AuditError::InvalidDraft("only denials are coalesced (count > 1 needs decision deny)"));
        }
        let texts = [
            Some(&self.principal),
            self.tenant.as_ref(),
            Some(&self.action),
            Some(&self.resource),
            Some(&self.policy_digest),
            self.request_id.as_ref(),
        ];
        if texts.into_iter().flatten().any(|t| t.len() > MAX_FIELD_BYTES) {
            return Err(AuditError::InvalidDraft("a text field is longer than 64 KiB"));
        }
        Ok(())
    }
}

/// The digest a caller should put in [`Draft::request_digest`]: SHA-256 over a domain tag and the
/// request's encoded bytes (for gRPC, the protobuf message as received).
pub fn request_digest(encoded_request: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"metamesh.audit.request\0");
    h.update(encoded_request);
    h.finalize().into()
}

/// One entry of a shard's audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the shard's log: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Event time in milliseconds since the Unix epoch (see [`Draft::at_ms`]).
    pub at_ms: i64,
    /// Who asked.
    pub principal: String,
    /// The tenant concerned, if any.
    pub tenant: Option<String>,
    /// What was asked.
    pub action: String,
    /// On what.
    pub resource: String,
    /// What the policy answered.
    pub decision: Decision,
    /// Events this record stands for (more than 1 only for coalesced denials).
    pub count: u32,
    /// Digest of the policy set that decided.
    pub policy_digest: String,
    /// The client's request id, if any.
    pub request_id: Option<String>,
    /// Digest of the request as received.
    #[serde(with = "crate::hex::array")]
    pub request_digest: Hash,
    /// `hash` of record `seq - 1` ([`GENESIS_PREV`] for record 1).
    #[serde(with = "crate::hex::array")]
    pub prev_hash: Hash,
    /// `SHA-256(RECORD_DOMAIN || canonical(self without hash))`; also this record's Merkle leaf.
    #[serde(with = "crate::hex::array")]
    pub hash: Hash,
}

impl AuditRecord {
    /// The canonical encoding (version 1) of everything but `hash`; see the module docs.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        self.encode_canonical(&mut buf);
        buf
    }

    /// Appends the canonical encoding to `buf` (which verify reuses across records).
    pub fn encode_canonical(&self, buf: &mut Vec<u8>) {
        fn text(buf: &mut Vec<u8>, s: &str) {
            // Lengths above u32::MAX cannot come from a validated draft; saturating keeps the
            // encoding total, and the hash then simply does not match.
            buf.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        fn optional(buf: &mut Vec<u8>, s: Option<&str>) {
            match s {
                None => buf.push(0),
                Some(s) => {
                    buf.push(1);
                    text(buf, s);
                }
            }
        }
        buf.push(ENCODING_VERSION);
        buf.extend_from_slice(&self.seq.to_be_bytes());
        buf.extend_from_slice(&self.at_ms.to_be_bytes());
        text(buf, &self.principal);
        optional(buf, self.tenant.as_deref());
        text(buf, &self.action);
        text(buf, &self.resource);
        buf.push(self.decision.code());
        buf.extend_from_slice(&self.count.to_be_bytes());
        text(buf, &self.policy_digest);
        optional(buf, self.request_id.as_deref());
        buf.extend_from_slice(&self.request_digest);
        buf.extend_from_slice(&self.prev_hash);
    }

    /// The hash this record's fields call for (compare with the stored `hash`).
    pub fn compute_hash(&self) -> Hash {
        self.compute_hash_with(&mut Vec::with_capacity(256))
    }

    /// [`AuditRecord::compute_hash`] with a caller-owned scratch buffer.
    pub fn compute_hash_with(&self, buf: &mut Vec<u8>) -> Hash {
        buf.clear();
        buf.extend_from_slice(RECORD_DOMAIN);
        self.encode_canonical(buf);
        Sha256::digest(buf.as_slice()).into()
    }

    /// Whether the stored hash matches the fields.
    pub fn is_intact(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// What no honest writer produces; verify reports it as a malformed record.
    pub(crate) fn malformation(&self) -> Option<&'static str> {
        if self.count == 0 {
            Some("count is 0")
        } else if self.count > 1 && self.decision == Decision::Allow {
            Some("an allow record with count > 1")
        } else {
            None
        }
    }
}

/// The head of a hash chain: the last record's seq and hash. `Copy`, 40 bytes: the store keeps
/// one in memory per shard so an append needs no read, and reloads it after a rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    last_seq: u64,
    head: Hash,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain::new()
    }
}

impl Chain {
    /// The chain of an empty log.
    pub fn new() -> Chain {
        Chain { last_seq: 0, head: GENESIS_PREV }
    }

    /// The chain after record `last_seq`, whose hash is `head`.
    pub fn resume(last_seq: u64, head: Hash) -> Chain {
        Chain { last_seq, head }
    }

    /// Seq of the last record (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Hash of the last record ([`GENESIS_PREV`] for an empty log).
    pub fn head(&self) -> Hash {
        self.head
    }

    /// Turns a draft into the next record and advances the chain. On error the chain is
    /// unchanged.
    pub fn append(&mut self, draft: Draft) -> Result<AuditRecord, AuditError> {
        draft.validate()?;
        let seq = self.last_seq.checked_add(1).ok_or(AuditError::InvalidDraft("audit sequence exhausted"))?;
        let Draft {
            at_ms,
            principal,
            tenant,
            action,
            resource,
            decision,
            count,
            policy_digest,
            request_id,
            request_digest,
        } = draft;
        let mut record = AuditRecord {
            seq,
            at_ms,
            principal,
            tenant,
            action,
            resource,
            decision,
            count,
            policy_digest,
            request_id,
            request_digest,
            prev_hash: self.head,
            hash: [0; 32],
        };
        record.hash = record.compute_hash();
        self.last_seq = seq;
        self.head = record.hash;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft::new(1_700_000_000_000, "spiffe://mesh/client/a", "entity.put", "mm://fraud/dataset/x", Decision::Allow)
            .tenant("fraud")
            .policy("p1")
    }

    #[test]
    fn canonical_encoding_is_pinned() {
        // The exact bytes of version 1: changing them breaks every stored chain.
        let r = Chain::new().append(Draft::new(2, "p", "a", "r", Decision::Deny).tenant("t")).unwrap();
        let mut expected = vec![1];
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 1, b'p']);
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b't']);
        expected.extend_from_slice(&[0, 0, 0, 1, b'a']);
        expected.extend_from_slice(&[0, 0, 0, 1, b'r']);
        expected.push(2);
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.push(0);
        expected.extend_from_slice(&[0; 64]);
        assert_eq!(r.canonical_bytes(), expected);
        let mut pre = RECORD_DOMAIN.to_vec();
        pre.extend_from_slice(&expected);
        assert_eq!(r.hash, <[u8; 32]>::from(Sha256::digest(&pre)));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = draft();
        let mut b = draft();
        a.principal = "ab".into();
        a.action = "c".into();
        b.principal = "a".into();
        b.action = "bc".into();
        assert_ne!(Chain::new().append(a).unwrap().hash, Chain::new().append(b).unwrap().hash);
        let mut c = draft();
        c.tenant = None;
        let mut d = draft();
        d.tenant = Some(String::new());
        assert_ne!(Chain::new().append(c).unwrap().hash, Chain::new().append(d).unwrap().hash);
    }

    #[test]
    fn chain_links_records() {
        let mut chain = Chain::new();
        let r1 = chain.append(draft()).unwrap();
        let r2 = chain.append(draft()).unwrap();
        assert_eq!((r1.seq, r2.seq), (1, 2));
        assert_eq!(r1.prev_hash, GENESIS_PREV);
        assert_eq!(r2.prev_hash, r1.hash);
        assert_ne!(r1.hash, r2.hash);
        assert!(r1.is_intact() && r2.is_intact());
        assert_eq!(chain, Chain::resume(2, r2.hash));
    }

    #[test]
    fn bad_drafts_leave_the_chain_alone() {
        let mut chain = Chain::new();
        let mut zero = draft();
        zero.count = 0;
        assert!(chain.append(zero).is_err());
        let mut coalesced_allow = draft();
        coalesced_allow.count = 2;
        assert!(chain.append(coalesced_allow).is_err());
        let mut long = draft();
        long.resource = "x".repeat(MAX_FIELD_BYTES + 1);
        assert!(chain.append(long).is_err());
        assert_eq!(chain, Chain::new());
    }
}
