//! The shard's audit log, written in the apply transaction: one record per change (a batch is
//! as many changes as it has commands), hash-chained by `metamesh-audit`, in the same SQLite
//! file, so that a change and its record commit or roll back together and every replica holds
//! the same chain. The tables are append-only (triggers refuse UPDATE and DELETE).
//!
//! A record says who (the proposal's principal), when (the revision's time), what (the policy
//! action and the resource), under which policy (the digest the node authorized it with) and
//! which request (its id, and a digest of the whole command). Refused commands change nothing
//! and are not recorded; refusals by the policy and sensitive reads are decided by the node,
//! which proposes them as [`Command::Audit`] entries, recorded here like any other.

use metamesh_audit::{request_digest, Chain, Decision, Draft};
use metamesh_core::command::edge_owner;
use metamesh_core::{Command, Proposal};
use rusqlite::Connection;

use crate::StoreError;

/// Appends the records of an applied `proposal` (applied at `at_ms`) to the chain.
pub(crate) fn record(conn: &Connection, chain: &mut Chain, proposal: &Proposal, at_ms: i64) -> Result<(), StoreError> {
    let encoded = serde_json::to_vec(&proposal.command).expect("commands serialize");
    let digest = request_digest(&encoded);
    let mut drafts = Vec::new();
    if let Command::Audit(ev) = &proposal.command {
        let decision = if ev.allowed { Decision::Allow } else { Decision::Deny };
        let mut draft = Draft::new(at_ms, proposal.principal.clone(), ev.action.clone(), ev.resource.clone(), decision);
        draft.tenant = ev.tenant.as_ref().map(|t| t.to_string());
        draft.count = ev.count;
        drafts.push(draft);
    } else {
        let mut changes = Vec::new();
        changes_of(&proposal.command, &mut changes);
        for (action, tenant, resource) in changes {
            drafts
                .push(Draft::new(at_ms, proposal.principal.clone(), action, resource, Decision::Allow).tenant(tenant));
        }
    }
    for draft in drafts {
        let draft = draft
            .policy(proposal.policy_digest.clone().unwrap_or_default())
            .request(proposal.request_id.clone(), digest);
        metamesh_audit::sqlite::append_with(conn, chain, draft).map_err(|e| StoreError::Audit(e.to_string()))?;
    }
    Ok(())
}

/// The changes a command makes: (policy action, tenant, resource).
fn changes_of(command: &Command, out: &mut Vec<(&'static str, String, String)>) {
    match command {
        Command::Batch { commands } => commands.iter().for_each(|c| changes_of(c, out)),
        Command::CreateTenant { tenant } => out.push(("tenant.create", tenant.to_string(), format!("mm://{tenant}"))),
        Command::RegisterSchema(s) => {
            out.push(("schema.write", s.tenant.to_string(), format!("mm://{}/type/{}", s.tenant, s.type_name)))
        }
        Command::PutEntity(s) => out.push(("write", s.urn.tenant().to_string(), s.urn.to_string())),
        Command::DeleteEntity { urn, .. } => out.push(("delete", urn.tenant().to_string(), urn.to_string())),
        Command::PutDocument { urn, title, .. } | Command::DeleteDocument { urn, title } => {
            out.push(("write", urn.tenant().to_string(), format!("{urn}#document={title}")))
        }
        Command::AddEdge(e) | Command::RemoveEdge(e) => out.push((
            "link",
            edge_owner(e).to_string(),
            format!("{} -{}-> {}", e.from.entity, e.kind.as_str(), e.to.entity),
        )),
        Command::Erase { urn, properties, documents } => out.push((
            "erase",
            urn.tenant().to_string(),
            // Which fields, never their values.
            format!("{urn}#erase=properties:{};documents:{}", properties.join(","), documents.join(",")),
        )),
        // A delivered reference is a change of this shard's lineage, recorded in its log; the
        // outbox's own bookkeeping is not metadata and is not recorded.
        Command::DeliverReferences { refs, .. } => out.extend(refs.iter().map(|r| {
            let verb = if r.removed { "lineage.reference_removed" } else { "lineage.reference" };
            (verb, r.target().entity.tenant().to_string(), format!("{} -> {}", r.edge.from, r.edge.to))
        })),
        // An MLMD write: which RPC, in which tenant (the request itself is in the Raft log).
        Command::Mlmd { tenant, rpc, .. } => {
            out.push(("write", tenant.to_string(), format!("mm://{tenant}#mlmd={rpc}")))
        }
        // OpenLineage events: one record per job (or dataset, for a dataset event) they concern.
        Command::OpenLineage { tenant, events, .. } => {
            let mut about = std::collections::BTreeSet::new();
            for names in events.iter().filter_map(|e| serde_json::from_str::<EventNames>(e).ok()) {
                let urn = match (&names.job, &names.dataset) {
                    (Some(j), _) => metamesh_core::openlineage::job_urn(tenant, &j.namespace, &j.name),
                    (None, Some(d)) => metamesh_core::openlineage::dataset_urn(
                        tenant,
                        metamesh_core::Kind::Dataset,
                        &d.namespace,
                        &d.name,
                    ),
                    (None, None) => continue,
                };
                if let Ok(urn) = urn {
                    about.insert(format!("{urn}#openlineage"));
                }
            }
            out.extend(about.into_iter().map(|r| ("write", tenant.to_string(), r)));
        }
        Command::Audit(_) | Command::AuditCheckpoint { .. } | Command::OutboxDelivered { .. } => {}
    }
}

/// What the audit needs of an OpenLineage event: its job (or dataset); the rest of the text is
/// skipped, not decoded.
#[derive(serde::Deserialize)]
struct EventNames {
    job: Option<NameKey>,
    dataset: Option<NameKey>,
}

#[derive(serde::Deserialize)]
struct NameKey {
    namespace: String,
    name: String,
}

impl crate::Store {
    /// A checkpoint of the audit log as it stands, signed with `key`, or `None` when the latest
    /// stored checkpoint already covers every record. Nothing is stored: the leader proposes it
    /// through Raft (`Command::AuditCheckpoint`) so that every replica checks and stores it.
    pub async fn audit_checkpoint(
        &self,
        key: std::sync::Arc<metamesh_audit::ShardKey>,
        shard: String,
        at_ms: i64,
    ) -> Result<Option<metamesh_audit::Checkpoint>, StoreError> {
        self.writer
            .run(move |w| {
                // Made by the crate's own append (which reuses the last checkpoint's frontier),
                // then rolled back.
                let tx = w.conn.unchecked_transaction()?;
                let cp = metamesh_audit::sqlite::append_checkpoint(&tx, &key, &shard, at_ms)
                    .map_err(|e| StoreError::Audit(e.to_string()))?;
                tx.rollback()?;
                Ok(cp)
            })
            .await
    }
}
