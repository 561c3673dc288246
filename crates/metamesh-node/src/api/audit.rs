//! AuditService: the shard's audit log, served from this replica's state file (see
//! `metamesh_store::audit_query`).
//!
//! Authorization (the rules in [`authz::RULES`]): Verify, GetCheckpoint, GetInclusionProof and
//! GetConsistencyProof need `audit.read` on the mesh — they speak for the whole log. ListRecords
//! and Export are open to any caller and filtered here: a caller sees the records of the tenants
//! it holds `audit.read` on, and the mesh-level records (no tenant) only with `audit.read` on the
//! mesh. A filter naming a tenant the caller may not audit is refused as the layer would refuse
//! it (NOT_FOUND when the caller may not even discover the tenant, PERMISSION_DENIED otherwise);
//! with no tenant filter, a caller who may audit nothing gets an empty listing.
//!
//! GetConsistencyProof proves that the tree of `old_size` records is a prefix of the tree of
//! `new_size` (0 = the latest checkpoint's size): `old_size` 0 or above `new_size` is
//! INVALID_ARGUMENT, a size past the log (or, with `new_size` 0, past the latest checkpoint)
//! OUT_OF_RANGE, no checkpoint yet with `new_size` 0 FAILED_PRECONDITION; each names the field.
//!
//! Reads are linearizable (through the leader's read index): a record a client just caused is
//! listed. A node serves only its own shard group's log; a `shard` other than its own matches
//! nothing (listings) or is NOT_FOUND (the single-log RPCs).

use std::pin::Pin;
use std::sync::Arc;

use metamesh_core::{CommandError, TenantId};
use metamesh_policy::{Action, Resource};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_server::AuditService;
use metamesh_store::audit_query::{AuditFilter, ConsistencyRefusal, ProofRefusal};
use metamesh_store::Store;
use serde::{Deserialize, Serialize};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

use crate::api::{authz, page, status, Authorized, NodeApi};

/// Records per Export chunk (and per store read while exporting).
const EXPORT_CHUNK: usize = 500;

/// Where a listing resumes.
#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The last seq returned.
    after: u64,
}

/// The CSV columns of Export, in order: the fields of `metamesh_audit::AuditRecord` as its JSON
/// spells them (byte fields hex-encoded).
const CSV_COLUMNS: [&str; 13] = [
    "seq",
    "at_ms",
    "principal",
    "tenant",
    "action",
    "resource",
    "decision",
    "count",
    "policy_digest",
    "request_id",
    "request_digest",
    "prev_hash",
    "hash",
];

#[tonic::async_trait]
impl AuditService for NodeApi {
    type ExportStream = Pin<Box<dyn Stream<Item = Result<v1::ExportChunk, Status>> + Send>>;

    async fn list_records(
        &self,
        request: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let limit = page::size(r.page_size)?;
        let after = page::decode::<Cursor>(&r.page_token)?.map_or(0, |c| c.after);
        let Some(filter) = self.filter(&authorized, r.filter.as_ref())? else {
            return Ok(Response::new(v1::ListRecordsReply::default()));
        };
        let store = self.store(None).await?;
        // One more than a page, to know whether another page follows.
        let mut records =
            store.audit_records(filter, after, limit + 1, visible_to(&authorized)).await.map_err(status::store)?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next_page_token = match (more, records.last()) {
            (true, Some(last)) => page::encode(&Cursor { after: last.seq }),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListRecordsReply {
            records: records.iter().map(|rec| convert::audit_record_to_wire(rec, &self.shard_group)).collect(),
            next_page_token,
            partial: false,
            missing_shards: Vec::new(),
        }))
    }

    async fn verify(&self, request: Request<v1::VerifyRequest>) -> Result<Response<v1::VerifyReply>, Status> {
        authz::authorized(&request)?;
        let r = request.into_inner();
        self.own_shard(&r.shard)?;
        let from = r.from_seq.unwrap_or(1);
        if from == 0 {
            return Err(status::invalid("from_seq", "seqs start at 1"));
        }
        if r.to_seq.is_some_and(|to| to < from) {
            return Err(status::invalid("to_seq", format!("{} is before from_seq {from}", r.to_seq.unwrap_or(0))));
        }
        let store = self.store(None).await?;
        let v = store.audit_verify(from, r.to_seq).await.map_err(status::store)?;
        if let Some(problem) = &v.problem {
            tracing::warn!(shard = %self.shard_group, %problem, "the audit log does not verify");
        }
        Ok(Response::new(v1::VerifyReply {
            ok: v.problem.is_none(),
            first_bad_seq: v.problem.as_ref().and_then(|p| p.first_bad_seq()),
            reason: v.problem.map(|p| p.to_string()).unwrap_or_default(),
            records_checked: v.records_checked,
            checkpoints_checked: v.checkpoints_checked,
            shard: self.shard_group.clone(),
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::SignedCheckpoint>, Status> {
        authz::authorized(&request)?;
        let r = request.into_inner();
        self.own_shard(&r.shard)?;
        let store = self.store(None).await?;
        match store.audit_checkpoint_at(r.tree_size).await.map_err(status::store)? {
            Some(cp) => Ok(Response::new(convert::checkpoint_to_wire(&cp, Vec::new()))),
            None => Err(match r.tree_size {
                None => Status::not_found("the audit log has no signed checkpoint yet"),
                Some(size) => status::with_field(
                    Code::FailedPrecondition,
                    "tree_size",
                    format!("there is no checkpoint of size {size}"),
                ),
            }),
        }
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofReply>, Status> {
        authz::authorized(&request)?;
        let r = request.into_inner();
        self.own_shard(&r.shard)?;
        if r.seq == 0 {
            return Err(status::invalid("seq", "seqs start at 1"));
        }
        let size = (r.tree_size > 0).then_some(r.tree_size);
        let store = self.store(None).await?;
        match store.audit_prove(r.seq, size).await.map_err(status::store)? {
            Ok(bundle) => Ok(Response::new(convert::proof_to_wire(&bundle, &self.shard_group))),
            Err(refusal) => Err(proof_refusal(refusal)),
        }
    }

    /// A router's decision, recorded under the principal it was about: the router's own
    /// principal is the peer (only routers reach this handler, see `authz`).
    async fn record_event(
        &self,
        request: Request<v1::RecordEventRequest>,
    ) -> Result<Response<v1::RecordEventReply>, Status> {
        let router = self.caller(&request)?;
        let r = request.into_inner();
        let principal = r.principal.trim();
        if principal.is_empty() || principal.len() > metamesh_core::limits::MAX_SHORT_BYTES {
            return Err(status::invalid("principal", "must be 1 to 256 bytes"));
        }
        let tenant = match r.tenant.as_str() {
            "" => None,
            t => Some(convert::tenant_id("tenant", t).map_err(status::refused)?),
        };
        let event = metamesh_core::command::AuditEvent {
            action: r.action,
            tenant,
            resource: r.resource,
            allowed: r.allowed,
            count: r.count.max(1),
        };
        let caller = crate::api::caller::Caller {
            principal: principal.to_owned(),
            peer: router.peer,
            forwarded: true,
            policy_digest: Some(r.policy_digest),
        };
        let done = self.propose(&caller, "", metamesh_core::Command::Audit(event)).await?;
        Ok(Response::new(v1::RecordEventReply { revision: done.revision }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofReply>, Status> {
        authz::authorized(&request)?;
        let r = request.into_inner();
        self.own_shard(&r.shard)?;
        if r.old_size == 0 {
            return Err(status::invalid("old_size", "a consistency proof starts from a tree of at least one record"));
        }
        let new_size = (r.new_size > 0).then_some(r.new_size);
        if new_size.is_some_and(|new| r.old_size > new) {
            return Err(status::invalid("old_size", format!("{} is larger than new_size {}", r.old_size, r.new_size)));
        }
        let store = self.store(None).await?;
        match store.audit_consistency(r.old_size, new_size).await.map_err(status::store)? {
            Ok(proof) => Ok(Response::new(v1::GetConsistencyProofReply {
                old_size: proof.old_size,
                new_size: proof.new_size,
                hashes: proof.hashes.iter().map(|h| h.to_vec()).collect(),
            })),
            Err(refusal) => Err(consistency_refusal(refusal)),
        }
    }

    async fn export(&self, request: Request<v1::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let csv = match v1::ExportFormat::try_from(r.format) {
            Ok(v1::ExportFormat::Unspecified | v1::ExportFormat::Jsonl) => false,
            Ok(v1::ExportFormat::Csv) => true,
            Err(_) => return Err(status::invalid("format", format!("{} is not an export format", r.format))),
        };
        let filter = self.filter(&authorized, r.filter.as_ref())?;
        let store = self.store(None).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(e) = export(store, filter, authorized, csv, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

impl NodeApi {
    /// The store filter of a wire filter, checked; `None` when it cannot match anything here
    /// (another shard's log).
    fn filter(&self, authorized: &Authorized, f: Option<&v1::AuditFilter>) -> Result<Option<AuditFilter>, Status> {
        let Some(f) = f else { return Ok(Some(AuditFilter::default())) };
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let decision = convert::decision_filter("filter.decision", f.decision).map_err(status::refused)?;
        if let (Some(start), Some(end)) = (f.start_time_ms, f.end_time_ms) {
            if end < start {
                return Err(status::invalid("filter.end_time_ms", format!("{end} is before start_time_ms {start}")));
            }
        }
        if !f.tenant.is_empty() {
            let tenant = convert::tenant_id("filter.tenant", &f.tenant).map_err(status::refused)?;
            may_audit(authorized, &tenant)?;
        }
        if !f.shard.is_empty() && f.shard != self.shard_group {
            return Ok(None);
        }
        Ok(Some(AuditFilter {
            principal: text(&f.principal),
            tenant: text(&f.tenant),
            action: text(&f.action),
            resource: text(&f.resource),
            since_ms: f.start_time_ms,
            until_ms: f.end_time_ms,
            decision,
        }))
    }

    /// Refuses a `shard` that is not this node's group: its log is not here.
    fn own_shard(&self, shard: &str) -> Result<(), Status> {
        if shard.is_empty() || shard == self.shard_group {
            return Ok(());
        }
        Err(status::with_field(
            Code::NotFound,
            "shard",
            format!("this node holds the log of shard group `{}`, not `{shard}`", self.shard_group),
        ))
    }
}

/// Refuses a tenant filter the caller may not audit, as the authorization layer would.
fn may_audit(authorized: &Authorized, tenant: &TenantId) -> Result<(), Status> {
    if authorized.may(Action::AuditRead, tenant) {
        return Ok(());
    }
    if authorized.may(Action::Discover, tenant) {
        let principal = &authorized.caller.principal;
        return Err(status::with_field(
            Code::PermissionDenied,
            "filter.tenant",
            format!("`{principal}` may not audit.read tenant `{tenant}`"),
        ));
    }
    Err(status::refused(CommandError::UnknownTenant(tenant.clone())))
}

/// Which records the caller may see, by tenant: those of tenants it holds `audit.read` on, and
/// the mesh-level ones (and any whose tenant does not parse) with `audit.read` on the mesh.
fn visible_to(authorized: &Authorized) -> impl Fn(Option<&str>) -> bool + Send + 'static {
    let mesh = authorized.policy.check(&authorized.caller.principal, Action::AuditRead, &Resource::Mesh).allowed;
    let authorized = authorized.clone();
    move |tenant| match tenant.map(TenantId::new) {
        Some(Ok(t)) => mesh || authorized.may(Action::AuditRead, &t),
        _ => mesh,
    }
}

fn proof_refusal(refusal: ProofRefusal) -> Status {
    let message = refusal.to_string();
    match refusal {
        ProofRefusal::NoRecord { .. } => status::with_field(Code::NotFound, "seq", message),
        ProofRefusal::NoCheckpoint => status::with_field(Code::FailedPrecondition, "seq", message),
        ProofRefusal::NoCheckpointOfSize { .. } => status::with_field(Code::FailedPrecondition, "tree_size", message),
        ProofRefusal::NotCovered { .. } => status::with_field(Code::FailedPrecondition, "seq", message),
        ProofRefusal::LogMismatch(_) => {
            tracing::error!(error = %message, "an audit proof does not match the stored log");
            Status::data_loss(format!("the audit log does not match its checkpoint ({message}); run Verify"))
        }
    }
}

fn consistency_refusal(refusal: ConsistencyRefusal) -> Status {
    let message = refusal.to_string();
    match refusal {
        ConsistencyRefusal::EmptyOld | ConsistencyRefusal::OldLarger { .. } => status::invalid("old_size", message),
        ConsistencyRefusal::NewBeyondLog { .. } => out_of_range("new_size", message),
        ConsistencyRefusal::OldBeyondCheckpoint { .. } => out_of_range("old_size", message),
        ConsistencyRefusal::NoCheckpoint => status::with_field(Code::FailedPrecondition, "new_size", message),
        ConsistencyRefusal::LogMismatch(_) => {
            tracing::error!(error = %message, "a consistency proof does not match the stored log");
            Status::data_loss(format!("the audit log does not match its checkpoints ({message}); run Verify"))
        }
    }
}

/// OUT_OF_RANGE naming `field`: a size past what the log holds now (it may hold it later).
/// Built here rather than with [`status::with_field`], which names only a few codes in its
/// `ErrorDetails`.
fn out_of_range(field: &str, message: String) -> Status {
    use prost::Message as _;
    let detail = v1::ErrorDetail { code: "out_of_range".into(), field: field.into(), message: message.clone() };
    Status::with_details(Code::OutOfRange, message, v1::ErrorDetails { errors: vec![detail] }.encode_to_vec().into())
}

/// Streams the records `filter` matches and the caller may see, [`EXPORT_CHUNK`] per chunk.
async fn export(
    store: Arc<Store>,
    filter: Option<AuditFilter>,
    authorized: Authorized,
    csv: bool,
    tx: &tokio::sync::mpsc::Sender<Result<v1::ExportChunk, Status>>,
) -> Result<(), Status> {
    if csv {
        let header = CSV_COLUMNS.join(",") + "\n";
        let chunk = v1::ExportChunk { data: header.into_bytes(), records: 0 };
        if tx.send(Ok(chunk)).await.is_err() {
            return Ok(());
        }
    }
    let Some(filter) = filter else { return Ok(()) };
    let mut after = 0;
    loop {
        let records = store
            .audit_records(filter.clone(), after, EXPORT_CHUNK, visible_to(&authorized))
            .await
            .map_err(status::store)?;
        let Some(last) = records.last() else { return Ok(()) };
        after = last.seq;
        let mut data = Vec::new();
        for rec in &records {
            let json = serde_json::to_value(rec).map_err(|e| status::internal(&e))?;
            if csv {
                let cells: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_cell(&json[*c])).collect();
                data.extend_from_slice(cells.join(",").as_bytes());
            } else {
                data.extend_from_slice(json.to_string().as_bytes());
            }
            data.push(b'\n');
        }
        let chunk = v1::ExportChunk { data, records: records.len() as u64 };
        // A client that went away ends the export.
        if tx.send(Ok(chunk)).await.is_err() || records.len() < EXPORT_CHUNK {
            return Ok(());
        }
    }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_cell(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_quote_what_needs_quoting() {
        assert_eq!(csv_cell(&serde_json::json!("plain")), "plain");
        assert_eq!(csv_cell(&serde_json::json!(7)), "7");
        assert_eq!(csv_cell(&serde_json::Value::Null), "");
        assert_eq!(csv_cell(&serde_json::json!("a,b")), "\"a,b\"");
        assert_eq!(csv_cell(&serde_json::json!("say \"hi\"\n")), "\"say \"\"hi\"\"\n\"");
    }

    #[test]
    fn csv_columns_are_the_record_fields() {
        let draft = metamesh_audit::Draft::new(1, "p", "write", "mm://t", metamesh_audit::Decision::Allow);
        let record = metamesh_audit::Chain::new().append(draft).unwrap();
        let json = serde_json::to_value(&record).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns = CSV_COLUMNS.to_vec();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
    }
}
