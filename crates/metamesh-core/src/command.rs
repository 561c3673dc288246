//! Commands: every state change of a shard, as one serializable enum.
//!
//! A [`Proposal`] is what goes into the Raft log. It carries the command together with what
//! must be chosen once, by the proposer, rather than by each replica: the time, the principal
//! and the client's request id. Applying a proposal therefore reads no clock and draws no random
//! number, and every replica reaches the same state.
//!
//! Pipeline: client → [`Command::validate`] (stateless checks, before proposing) → Raft log →
//! `apply` on every replica (stateful checks and the write, in one transaction) → [`Outcome`].

use serde::{Deserialize, Serialize};

use crate::edge::{Edge, EdgeSpec};
use crate::entity::{check_len, check_token, json_len, EntitySpec};
use crate::error::CommandError;
use crate::kind::{Kind, TypeName};
use crate::limits::*;
use crate::schema::{self, Compatibility, Migration};
use crate::tenant::TenantId;
use crate::urn::{EntityUrn, Urn};

/// A registration of a new schema version for a type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaSpec {
    pub tenant: TenantId,
    pub type_name: TypeName,
    /// The kind entities of this type must be; fixed by the first version.
    pub base_kind: Kind,
    /// A JSON Schema whose root is an object schema.
    pub schema: serde_json::Value,
    /// Compatibility required of this version against the previous one; none keeps the
    /// type's current mode (backward for a new type).
    #[serde(default)]
    pub compatibility: Option<Compatibility>,
    /// How properties written under the previous version map onto this one.
    #[serde(default)]
    pub migration: Migration,
}

/// Every state change of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Make this shard the owner of a tenant.
    CreateTenant {
        tenant: TenantId,
    },
    RegisterSchema(SchemaSpec),
    /// Write a new version of an entity (creating it at version 1).
    PutEntity(EntitySpec),
    /// Write a tombstone version.
    DeleteEntity {
        urn: EntityUrn,
        #[serde(default)]
        expect_version: Option<u64>,
    },
    /// Write a new version of a markdown document attached to an entity.
    PutDocument {
        urn: EntityUrn,
        title: String,
        body: String,
    },
    DeleteDocument {
        urn: EntityUrn,
        title: String,
    },
    AddEdge(EdgeSpec),
    /// Tombstone an edge; as-of reads before this revision still see it.
    RemoveEdge(EdgeSpec),
    /// Several commands applied all-or-nothing, in order. Batches do not nest.
    Batch {
        commands: Vec<Command>,
    },
    /// Erase personal data (GDPR): the named top-level properties from every version of the
    /// entity, and the bodies of the named documents in every version. The one command that
    /// rewrites history; the audit keeps that it happened, by whom, of which fields — the
    /// command carries names, never values.
    Erase {
        urn: EntityUrn,
        #[serde(default)]
        properties: Vec<String>,
        #[serde(default)]
        documents: Vec<String>,
    },
    /// An entry for the audit log alone, proposed by the node that decided it: a request the
    /// policy refused, or a read of a resource the policy marks sensitive. Changes no state.
    Audit(AuditEvent),
    /// A signed checkpoint of the audit log (a `metamesh_audit::Checkpoint` as JSON), made by
    /// the leader; every replica checks its root against its own log before storing it.
    AuditCheckpoint {
        checkpoint: serde_json::Value,
    },
    /// Lineage references from another shard's outbox (DESIGN §6): edges stored by shard group
    /// `origin` with one end in a tenant of this shard, so that traversal from that end knows
    /// where to continue. Applied in `id` order; an id at or below the last one applied from
    /// `origin` is skipped, which makes redelivery harmless.
    DeliverReferences {
        origin: String,
        refs: Vec<RemoteRef>,
    },
    /// Outbox entries the leader delivered to their shards: removed from the outbox.
    OutboxDelivered {
        ids: Vec<u64>,
    },
    /// A write of the MLMD API (`ml_metadata.MetadataStoreService`, crate `metamesh-mlmd`) in
    /// `tenant`: the RPC's name and its request message as sent on the wire. Applying it runs
    /// MLMD's rules on the tenant's MLMD tables and yields the encoded response.
    Mlmd {
        tenant: TenantId,
        rpc: String,
        #[serde(with = "base64_bytes")]
        request: Vec<u8>,
    },
    /// OpenLineage events (crate `metamesh-openlineage`) whose jobs belong to `tenant`, each
    /// as JSON text (one object; the router writes it canonically, keys sorted). Applying one
    /// stores it once — a re-sent event is recognised by the digest of its text and changes
    /// nothing — and writes the job, run and dataset entities and the job's lineage edges
    /// (`openlineage` module of `metamesh-store`, docs/openlineage.md). `foreign` lists the
    /// input datasets that other tenants own (the router's namespace map); every other dataset
    /// named by the events belongs to `tenant`. Text rather than JSON values: a log entry holds
    /// up to a thousand events, and text is decoded and hashed without building trees.
    OpenLineage {
        tenant: TenantId,
        events: Vec<String>,
        #[serde(default)]
        foreign: Vec<ForeignDataset>,
    },
}

/// An OpenLineage dataset owned by another tenant than the event's job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignDataset {
    pub namespace: String,
    pub name: String,
    pub tenant: TenantId,
}

/// Most OpenLineage events one command carries.
pub const MAX_OPENLINEAGE_EVENTS: usize = 1000;

/// Largest OpenLineage event (its JSON text).
pub const MAX_OPENLINEAGE_EVENT_BYTES: usize = 1024 * 1024;

/// Bytes as standard base64 text in JSON (Raft log entries are JSON).
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// The longest MLMD request one command may carry (the transport's own limit is 4 MiB).
pub const MAX_MLMD_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// One outbox entry as delivered: an edge (as its storing shard holds it) added or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRef {
    /// The entry's id in the origin's outbox (increasing, never reused).
    pub id: u64,
    pub edge: Edge,
    pub removed: bool,
}

impl RemoteRef {
    /// The end of the edge that is not its storing tenant's: where the reference is delivered.
    pub fn target(&self) -> &Urn {
        if edge_owner_of(&self.edge.from, &self.edge.to) == self.edge.from.entity.tenant() {
            &self.edge.to
        } else {
            &self.edge.from
        }
    }
}

/// A decision recorded in the audit log without any change of state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The policy action asked for (`read`, `write`, …).
    pub action: String,
    #[serde(default)]
    pub tenant: Option<TenantId>,
    /// The resource as the request named it (a URN, a tenant, `mesh`).
    pub resource: String,
    /// Allowed (a sensitive read) or refused.
    pub allowed: bool,
    /// Identical refusals coalesced into this record (1 otherwise).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Most properties (and most documents) one erasure names.
pub const MAX_ERASE_FIELDS: usize = 100;

/// Longest resource an audit event may name.
pub const MAX_AUDIT_RESOURCE_BYTES: usize = 4096;

impl Command {
    /// Stateless checks: syntax, sizes, edge endpoint rules, schema documents. Run before a
    /// command is proposed, and again by `apply` (a log written by an older version must not
    /// bypass them).
    pub fn validate(&self) -> Result<(), CommandError> {
        match self {
            Command::CreateTenant { .. } => Ok(()),
            Command::RegisterSchema(spec) => {
                check_len("schema", json_len(&spec.schema), MAX_SCHEMA_BYTES)?;
                schema::validate_schema_document(&spec.schema)?;
                schema::validate_migration(&spec.migration)?;
                Ok(())
            }
            Command::PutEntity(spec) => spec.validate(),
            Command::DeleteEntity { .. } => Ok(()),
            Command::PutDocument { title, body, .. } => {
                check_token("title", title, MAX_TITLE_BYTES)?;
                check_len("body", body.len(), MAX_DOCUMENT_BYTES)
            }
            Command::DeleteDocument { title, .. } => check_token("title", title, MAX_TITLE_BYTES),
            Command::AddEdge(e) | Command::RemoveEdge(e) => e.validate(),
            Command::AuditCheckpoint { checkpoint } => check_len("checkpoint", json_len(checkpoint), 4096),
            Command::Erase { properties, documents, .. } => {
                if properties.is_empty() && documents.is_empty() {
                    return Err(CommandError::invalid("properties", "name at least one property or document to erase"));
                }
                check_len("properties", properties.len(), MAX_ERASE_FIELDS)?;
                check_len("documents", documents.len(), MAX_ERASE_FIELDS)?;
                for (i, p) in properties.iter().enumerate() {
                    check_token(&format!("properties[{i}]"), p, MAX_SHORT_BYTES)?;
                }
                for (i, d) in documents.iter().enumerate() {
                    check_token(&format!("documents[{i}]"), d, MAX_TITLE_BYTES)?;
                }
                Ok(())
            }
            Command::Audit(ev) => {
                check_token("action", &ev.action, MAX_SHORT_BYTES)?;
                check_len("resource", ev.resource.len(), MAX_AUDIT_RESOURCE_BYTES)?;
                if ev.count == 0 || (ev.allowed && ev.count > 1) {
                    return Err(CommandError::invalid("count", "at least 1, and more only for refusals"));
                }
                Ok(())
            }
            Command::DeliverReferences { origin, refs } => {
                check_token("origin", origin, MAX_SHORT_BYTES)?;
                check_len("refs", refs.len(), MAX_BATCH)?;
                for (i, r) in refs.iter().enumerate() {
                    let spec = EdgeSpec {
                        from: r.edge.from.clone(),
                        to: r.edge.to.clone(),
                        kind: r.edge.kind,
                        from_column: r.edge.from_column.clone(),
                        to_column: r.edge.to_column.clone(),
                        transformation: r.edge.transformation.clone(),
                    };
                    spec.validate().map_err(|e| CommandError::invalid(format!("refs[{i}]"), e.to_string()))?;
                    if r.target().entity.tenant() == edge_owner(&spec) {
                        return Err(CommandError::invalid(
                            format!("refs[{i}]"),
                            "both ends belong to the storing tenant",
                        ));
                    }
                }
                Ok(())
            }
            Command::OutboxDelivered { ids } => check_len("ids", ids.len(), MAX_BATCH),
            Command::Mlmd { rpc, request, .. } => {
                check_token("rpc", rpc, MAX_SHORT_BYTES)?;
                check_len("request", request.len(), MAX_MLMD_REQUEST_BYTES)
            }
            Command::OpenLineage { events, foreign, .. } => {
                if events.is_empty() {
                    return Err(CommandError::invalid("events", "at least one event"));
                }
                check_len("events", events.len(), MAX_OPENLINEAGE_EVENTS)?;
                check_len("foreign", foreign.len(), MAX_OPENLINEAGE_EVENTS * 2)?;
                // Sizes only: each event is parsed (and refused naming its field) by whoever
                // proposes it and by `apply`, once each.
                for (i, event) in events.iter().enumerate() {
                    check_len(&format!("events[{i}]"), event.len(), MAX_OPENLINEAGE_EVENT_BYTES)?;
                }
                Ok(())
            }
            Command::Batch { commands } => {
                if commands.len() > MAX_BATCH {
                    return Err(CommandError::TooLarge {
                        field: "commands".into(),
                        limit: MAX_BATCH,
                        actual: commands.len(),
                    });
                }
                for (i, c) in commands.iter().enumerate() {
                    if matches!(c, Command::Batch { .. }) {
                        return Err(CommandError::invalid(format!("commands[{i}]"), "batches do not nest"));
                    }
                    c.validate().map_err(|e| e.in_batch(i))?;
                }
                Ok(())
            }
        }
    }

    /// The tenants this command writes to; the first decides the owning shard.
    pub fn tenants(&self) -> Vec<&TenantId> {
        let mut out = Vec::new();
        self.collect_tenants(&mut out);
        out.dedup();
        out
    }

    fn collect_tenants<'a>(&'a self, out: &mut Vec<&'a TenantId>) {
        match self {
            Command::CreateTenant { tenant } => out.push(tenant),
            Command::RegisterSchema(s) => out.push(&s.tenant),
            Command::PutEntity(s) => out.push(s.urn.tenant()),
            Command::DeleteEntity { urn, .. }
            | Command::PutDocument { urn, .. }
            | Command::DeleteDocument { urn, .. }
            | Command::Erase { urn, .. } => out.push(urn.tenant()),
            // The edge belongs to the tenant that writes it: the downstream end for a
            // `produced`/`derived_from` edge, the run for `consumed`. We take the end that is a
            // run or job if any, else the downstream end.
            Command::AddEdge(e) | Command::RemoveEdge(e) => out.push(edge_owner(e)),
            Command::Audit(ev) => out.extend(ev.tenant.as_ref()),
            Command::Mlmd { tenant, .. } | Command::OpenLineage { tenant, .. } => out.push(tenant),
            Command::AuditCheckpoint { .. } | Command::OutboxDelivered { .. } => {}
            Command::DeliverReferences { refs, .. } => out.extend(refs.iter().map(|r| r.target().entity.tenant())),
            Command::Batch { commands } => commands.iter().for_each(|c| c.collect_tenants(out)),
        }
    }
}

/// The tenant that owns (stores) an edge.
pub fn edge_owner(e: &EdgeSpec) -> &TenantId {
    edge_owner_of(&e.from, &e.to)
}

/// [`edge_owner`] of an edge given by its ends.
pub fn edge_owner_of<'a>(from: &'a Urn, to: &'a Urn) -> &'a TenantId {
    if matches!(from.entity.kind(), Kind::Run | Kind::Job) {
        from.entity.tenant()
    } else {
        to.entity.tenant()
    }
}

/// A command as it enters the Raft log, with everything chosen once by the proposer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub command: Command,
    /// Milliseconds since the Unix epoch, read once by the proposer. The store never lets time
    /// run backwards: it uses `max(at_ms, last applied time)`.
    pub at_ms: i64,
    /// Who asked (from the caller's certificate or API key).
    pub principal: String,
    /// The client's idempotency key: a retried proposal with the same key returns the first
    /// outcome and changes nothing.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The digest of the policy the request was authorized under, recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
}

impl Proposal {
    pub fn new(command: Command, at_ms: i64, principal: impl Into<String>) -> Proposal {
        Proposal { command, at_ms, principal: principal.into(), request_id: None, policy_digest: None }
    }

    pub fn validate(&self) -> Result<(), CommandError> {
        check_token("principal", &self.principal, MAX_SHORT_BYTES)?;
        if let Some(id) = &self.request_id {
            check_token("request_id", id, MAX_SHORT_BYTES)?;
        }
        self.command.validate()
    }
}

/// What an applied command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Tenant {
        tenant: TenantId,
    },
    Schema {
        tenant: TenantId,
        type_name: TypeName,
        version: u32,
    },
    Entity {
        urn: EntityUrn,
        version: u64,
    },
    Document {
        urn: EntityUrn,
        title: String,
        version: u32,
    },
    /// `changed` is false when the edge already existed (add) or was already absent (remove).
    Edge {
        changed: bool,
    },
    Batch {
        outcomes: Vec<Outcome>,
    },
    /// An audit-only entry was recorded.
    Audited,
    /// Personal data was erased: from this many entity versions and document versions.
    Erased {
        urn: EntityUrn,
        versions: u64,
        documents: u64,
    },
    /// Remote references applied (new to this shard) and skipped (delivered before).
    References {
        applied: u64,
        skipped: u64,
    },
    /// Outbox entries removed after delivery.
    Delivered {
        removed: u64,
    },
    /// An MLMD write's encoded response message.
    Mlmd {
        #[serde(with = "base64_bytes")]
        response: Vec<u8>,
    },
    /// OpenLineage events applied: per event, in order, whether it was stored (false: the
    /// same event had been stored before, and nothing changed).
    OpenLineage {
        stored: Vec<bool>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_stable() {
        let p = Proposal {
            command: Command::DeleteEntity { urn: "mm://t/model/m".parse().unwrap(), expect_version: Some(2) },
            at_ms: 7,
            principal: "alice".into(),
            request_id: Some("r1".into()),
            policy_digest: None,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"command":{"op":"delete_entity","urn":"mm://t/model/m","expect_version":2},"at_ms":7,"principal":"alice","request_id":"r1"}"#
        );
        assert_eq!(serde_json::from_str::<Proposal>(&json).unwrap(), p);
        // The policy digest is written when set, and optional when read.
        let with = Proposal { policy_digest: Some("ab".into()), ..p.clone() };
        assert!(serde_json::to_string(&with).unwrap().ends_with(r#","policy_digest":"ab"}"#));
    }

    #[test]
    fn audit_events_are_checked() {
        let ev = |allowed: bool, count: u32, action: &str| {
            Command::Audit(AuditEvent {
                action: action.into(),
                tenant: None,
                resource: "mm://t/model/m".into(),
                allowed,
                count,
            })
        };
        assert!(ev(false, 3, "read").validate().is_ok());
        assert!(ev(true, 1, "read").validate().is_ok());
        for bad in [ev(true, 2, "read"), ev(false, 0, "read"), ev(false, 1, "")] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let json = r#"{"op":"audit","action":"read","resource":"mm://t/model/m","allowed":false}"#;
        assert_eq!(serde_json::from_str::<Command>(json).unwrap(), ev(false, 1, "read"));
    }

    #[test]
    fn bad_urn_in_json_is_refused_at_decode() {
        let err = serde_json::from_str::<Command>(r#"{"op":"delete_entity","urn":"mm://T/model/m"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid urn"), "{err}");
    }

    #[test]
    fn batch_errors_name_the_element() {
        let mut spec = EntitySpec::new("mm://t/model/m".parse().unwrap());
        spec.tags.insert(" ".into());
        let c = Command::Batch {
            commands: vec![Command::CreateTenant { tenant: TenantId::new("t").unwrap() }, Command::PutEntity(spec)],
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.field(), Some("commands[1].tags"));
        let nested = Command::Batch { commands: vec![Command::Batch { commands: vec![] }] };
        assert!(nested.validate().unwrap_err().to_string().contains("do not nest"));
    }

    #[test]
    fn size_limits() {
        let mut spec = EntitySpec::new("mm://t/model/m".parse().unwrap());
        spec.description = Some("x".repeat(MAX_DESCRIPTION_BYTES + 1));
        let err = Command::PutEntity(spec).validate().unwrap_err();
        assert!(matches!(err, CommandError::TooLarge { ref field, .. } if field == "description"), "{err}");
        let doc = Command::PutDocument {
            urn: "mm://t/model/m".parse().unwrap(),
            title: "readme".into(),
            body: "x".repeat(MAX_DOCUMENT_BYTES + 1),
        };
        assert!(matches!(doc.validate(), Err(CommandError::TooLarge { .. })));
    }
}
