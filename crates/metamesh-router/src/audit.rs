//! Central compliance queries across every shard's audit log (DESIGN §8).
//!
//! The router holds no audit records: it asks the shard groups, always on behalf of the caller
//! (its principal forwarded), so each node decides which records the caller may read exactly as
//! when asked directly — records of tenants it holds `audit.read` on, mesh-level records only
//! with `audit.read` on the mesh. The router checks the request's filter the same way first (a
//! tenant the caller may not audit is refused once, not by every node) and screens the listed
//! records again with its own policy (defence in depth; an export's bytes pass as the nodes
//! filtered them).
//!
//! - ListRecords asks every group (or only `filter.shard`) and merges the records by
//!   (`time_ms`, `shard`, `seq`) with the same cross-shard cursor as search
//!   (`crate::search::fanout`: per group, the node's token and how many of its page were
//!   returned). Each record carries its shard group. A group that does not answer is named in
//!   `missing_shards` (`partial`), and asked again on the next page.
//! - Export streams each group's export in turn, in mesh map order (not merged by time: that
//!   would mean parsing and holding every group's stream at once). Nothing is buffered beyond a
//!   few chunks: a slow reader slows the nodes' streams down. Each record gets its shard group (a
//!   `shard` JSON field, or a last `shard` CSV column), since seqs repeat across shards; a CSV
//!   export has one header row, the first group's. A group that fails, before or during its
//!   stream, ends the export with that error, naming the group and how many of its records were
//!   sent: an export with a hole in it must not look complete.
//! - Verify, GetCheckpoint, GetInclusionProof and GetConsistencyProof speak for one log: they
//!   need `shard` (INVALID_ARGUMENT naming `shard` when empty, NOT_FOUND when the mesh map has no
//!   such group) and are forwarded to that group, whose answer or refusal is passed back as it
//!   is. Verify is one of them because its reply describes a single log: verifying every shard is
//!   one call per shard group (`GetShardMap` lists them).
//! - RecordEvent is internal (routers to replicas) and refused here.

use std::pin::Pin;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use metamesh_core::{CommandError, TenantId};
use metamesh_node::api::{authz, page, status};
use metamesh_node::Authorized;
use metamesh_policy::{Action, Resource};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_proto::v1::audit_service_server::AuditService;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use crate::api::RouterApi;
use crate::groups::{on_behalf, Group, Groups};
use crate::search::fanout;

type ExportStream = Pin<Box<dyn Stream<Item = Result<v1::ExportChunk, Status>> + Send>>;

/// Chunks an export keeps in flight between the nodes' streams and the caller.
const EXPORT_BUFFER: usize = 4;

/// Refuses a filter the way a node would, before any node is asked: a bad decision or time
/// range (INVALID_ARGUMENT naming the field), a tenant the caller may not audit
/// (PERMISSION_DENIED when it may discover the tenant, else NOT_FOUND as for any unknown one).
fn check_filter(authorized: &Authorized, f: Option<&v1::AuditFilter>) -> Result<(), Status> {
    let Some(f) = f else { return Ok(()) };
    convert::decision_filter("filter.decision", f.decision).map_err(status::refused)?;
    if let (Some(start), Some(end)) = (f.start_time_ms, f.end_time_ms) {
        if end < start {
            return Err(status::invalid("filter.end_time_ms", format!("{end} is before start_time_ms {start}")));
        }
    }
    if !f.tenant.is_empty() {
        let tenant = convert::tenant_id("filter.tenant", &f.tenant).map_err(status::refused)?;
        if !authorized.may(Action::AuditRead, &tenant) {
            if authorized.may(Action::Discover, &tenant) {
                let principal = &authorized.caller.principal;
                return Err(status::with_field(
                    Code::PermissionDenied,
                    "filter.tenant",
                    format!("`{principal}` may not audit.read tenant `{tenant}`"),
                ));
            }
            return Err(status::refused(CommandError::UnknownTenant(tenant)));
        }
    }
    Ok(())
}

/// Whether a record of `tenant` (empty: a mesh-level record) may be shown: with `audit.read`
/// on the mesh (`mesh`) every record, else those of tenants the caller may audit (`may`).
fn record_visible(tenant: &str, mesh: bool, may: impl Fn(&TenantId) -> bool) -> bool {
    if mesh {
        return true;
    }
    !tenant.is_empty() && TenantId::new(tenant).is_ok_and(|t| may(&t))
}

/// The digest a listing's page token carries: every filter field.
fn filter_digest(f: Option<&v1::AuditFilter>) -> String {
    let f = f.cloned().unwrap_or_default();
    let fields = serde_json::json!([
        f.principal,
        f.tenant,
        f.action,
        f.resource,
        f.start_time_ms,
        f.end_time_ms,
        f.decision,
        f.shard
    ]);
    let digest = metamesh_audit::request_digest(fields.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Records in the order of a listing: time, then shard group, then seq.
fn record_key(r: &v1::AuditRecord) -> (i64, String, u64) {
    (r.time_ms, r.shard.clone(), r.seq)
}

impl RouterApi {
    /// The group of a single-log RPC's `shard`.
    /// Sends `message` on the caller's behalf to the shard group named `shard` and returns its
    /// answer unchanged (the RPCs that concern one shard's log).
    async fn on_named_shard<T, R, F, Fut>(
        &self,
        request: Request<T>,
        shard: impl Fn(&T) -> &str,
        call: F,
    ) -> Result<Response<R>, Status>
    where
        T: Clone,
        F: Fn(AuditServiceClient<tonic::transport::Channel>, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<R>, Status>>,
    {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let group = self.named_group(shard(&r))?;
        self.groups.call(group, |ch| call(AuditServiceClient::new(ch), on_behalf(&authorized, r.clone()))).await
    }

    fn named_group(&self, shard: &str) -> Result<&Group, Status> {
        if shard.is_empty() {
            let ids: Vec<&str> = self.groups.all().iter().map(|g| g.id.as_str()).collect();
            return Err(status::invalid(
                "shard",
                format!("through the router, name the shard group whose log is meant (one of: {})", ids.join(", ")),
            ));
        }
        self.groups.get(shard).ok_or_else(|| {
            status::with_field(Code::NotFound, "shard", format!("the mesh map has no shard group `{shard}`"))
        })
    }

    /// The groups a listing or export reads: the one named by `filter.shard`, else all.
    fn filtered_groups(&self, f: Option<&v1::AuditFilter>) -> Result<Vec<&Group>, Status> {
        match f.map(|f| f.shard.as_str()).filter(|s| !s.is_empty()) {
            None => Ok(self.groups.all().iter().collect()),
            Some(shard) => self.groups.get(shard).map(|g| vec![g]).ok_or_else(|| {
                status::with_field(Code::NotFound, "filter.shard", format!("the mesh map has no shard group `{shard}`"))
            }),
        }
    }
}

#[tonic::async_trait]
impl AuditService for RouterApi {
    type ExportStream = ExportStream;

    /// Records of every shard group the caller may read, merged by time, shard and seq.
    async fn list_records(
        &self,
        request: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let limit = page::size(r.page_size)?;
        check_filter(&authorized, r.filter.as_ref())?;
        let groups = self.filtered_groups(r.filter.as_ref())?;
        let digest = filter_digest(r.filter.as_ref());
        let cursor = match fanout::Cursor::resume(&r.page_token, &digest)? {
            Some(cursor) => cursor,
            None => fanout::Cursor::start(digest, limit, groups.iter().map(|g| g.id.clone())),
        };
        let mesh = authorized.policy.check(&authorized.caller.principal, Action::AuditRead, &Resource::Mesh).allowed;
        let fetch = |group: String, token: String, size: usize| {
            let (authorized, filter) = (&authorized, &r.filter);
            async move {
                let Some(g) = self.groups.get(&group) else {
                    return Err(Status::not_found(format!("shard group {group} is no longer in the mesh map")));
                };
                let request =
                    v1::ListRecordsRequest { filter: filter.clone(), page_size: size as u32, page_token: token };
                let call = self.groups.call(g, |ch| {
                    let request = request.clone();
                    async move { AuditServiceClient::new(ch).list_records(on_behalf(authorized, request)).await }
                });
                let reply = tokio::time::timeout(fanout::NODE_CALL_TIMEOUT, call).await.map_err(|_| {
                    Status::deadline_exceeded(format!("no answer within {} s", fanout::NODE_CALL_TIMEOUT.as_secs()))
                })??;
                let reply = reply.into_inner();
                let mut records = reply.records;
                for record in &mut records {
                    if record.shard != group {
                        if !record.shard.is_empty() {
                            tracing::warn!(group = %group, shard = %record.shard, "a node's audit records name another shard group than the mesh map");
                        }
                        record.shard = group.clone();
                    }
                }
                Ok(fanout::NodePage { items: records, next: reply.next_page_token })
            }
        };
        let merged = fanout::page(
            cursor,
            limit,
            record_key,
            |_, record: v1::AuditRecord| {
                record_visible(&record.tenant, mesh, |t| authorized.may(Action::AuditRead, t)).then_some(record)
            },
            fetch,
        )
        .await;
        for (group, status) in &merged.failed {
            tracing::debug!(group = %group, %status, "a shard group did not answer an audit listing");
        }
        Ok(Response::new(v1::ListRecordsReply {
            records: merged.items,
            next_page_token: merged.next.map(|c| c.encode()).unwrap_or_default(),
            partial: !merged.failed.is_empty(),
            missing_shards: merged.failed.into_iter().map(|(group, _)| group).collect(),
        }))
    }

    /// Verifies one shard group's log (`shard` is required: the reply describes one log).
    async fn verify(&self, request: Request<v1::VerifyRequest>) -> Result<Response<v1::VerifyReply>, Status> {
        self.on_named_shard(request, |r| &r.shard, |mut c, r| async move { c.verify(r).await }).await
    }

    /// A signed checkpoint of the shard group `shard`.
    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::SignedCheckpoint>, Status> {
        self.on_named_shard(request, |r| &r.shard, |mut c, r| async move { c.get_checkpoint(r).await }).await
    }

    /// An inclusion proof from the shard group `shard`.
    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofReply>, Status> {
        self.on_named_shard(request, |r| &r.shard, |mut c, r| async move { c.get_inclusion_proof(r).await }).await
    }

    /// A consistency proof from the shard group `shard`.
    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofReply>, Status> {
        self.on_named_shard(request, |r| &r.shard, |mut c, r| async move { c.get_consistency_proof(r).await }).await
    }

    async fn record_event(&self, _: Request<v1::RecordEventRequest>) -> Result<Response<v1::RecordEventReply>, Status> {
        Err(Status::permission_denied("RecordEvent is sent by routers to replicas, never to a router"))
    }

    /// Every group's export in turn, each record tagged with its shard group (see the module
    /// docs).
    async fn export(&self, request: Request<v1::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let csv = match v1::ExportFormat::try_from(r.format) {
            Ok(v1::ExportFormat::Unspecified | v1::ExportFormat::Jsonl) => false,
            Ok(v1::ExportFormat::Csv) => true,
            Err(_) => return Err(status::invalid("format", format!("{} is not an export format", r.format))),
        };
        check_filter(&authorized, r.filter.as_ref())?;
        let order: Vec<String> = self.filtered_groups(r.filter.as_ref())?.iter().map(|g| g.id.clone()).collect();
        let groups = self.groups.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
        tokio::spawn(
            async move {
                if let Err(e) = export_all(&groups, &authorized, &r, &order, csv, &tx).await {
                    let _ = tx.send(Err(e)).await;
                }
            }
            .instrument(tracing::Span::current()),
        );
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Streams the export of each group of `order` into `tx`, one group after the other. Returns
/// early, without error, when the caller went away.
async fn export_all(
    groups: &Arc<Groups>,
    authorized: &Authorized,
    r: &v1::ExportRequest,
    order: &[String],
    csv: bool,
    tx: &tokio::sync::mpsc::Sender<Result<v1::ExportChunk, Status>>,
) -> Result<(), Status> {
    // The CSV header the export has sent (the first group's).
    let mut header: Option<Vec<u8>> = None;
    for id in order {
        let Some(group) = groups.get(id) else { continue };
        let failed = |sent: u64, status: Status| {
            Status::new(
                status.code(),
                format!(
                    "the export stopped at shard group {id} after {sent} of its records (groups before it were complete): {}",
                    status.message()
                ),
            )
        };
        let mut stream = groups
            .call(group, |ch| {
                let request = r.clone();
                async move { AuditServiceClient::new(ch).export(on_behalf(authorized, request)).await }
            })
            .await
            .map_err(|s| failed(0, s))?
            .into_inner();
        let mut tagger = Tagger::new(csv, id, header.clone());
        let mut sent = 0;
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    sent += chunk.records;
                    let chunk = tagger.chunk(chunk);
                    if chunk.data.is_empty() && chunk.records == 0 {
                        continue;
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                Err(status) => return Err(failed(sent, status)),
            }
        }
        if header.is_none() {
            header = tagger.header().map(<[u8]>::to_vec);
        }
        tracing::debug!(group = %id, records = sent, "shard group exported");
    }
    Ok(())
}

/// Rewrites one group's export stream: every record tagged with the group, and for CSV the
/// header row passed on (with a `shard` column) only until the export has one. Chunks end on
/// record boundaries, but the state is carried from chunk to chunk all the same.
struct Tagger {
    csv: bool,
    /// What is added to each record: `,<cell>` before a CSV row's line break, or
    /// `"shard":"<id>"` as the last field of a JSON line.
    tag: Vec<u8>,
    /// CSV: what to do with the first line, until it has passed.
    header: Header,
    /// CSV: the first line so far.
    first_line: Vec<u8>,
    /// CSV: inside a quoted cell, where a line break belongs to the cell.
    quoted: bool,
    /// JSONL: the next byte starts a line.
    line_start: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Header {
    /// The export has no header yet: pass this one on, with the `shard` column added.
    Keep,
    /// The export has this header already: drop the first line if it is the same (a node
    /// that sent none loses no record).
    Drop(Vec<u8>),
    /// It has passed; [`Tagger::header`] holds it if it was kept.
    Passed(Option<Vec<u8>>),
}

impl Tagger {
    /// A tagger for the stream of `shard`; `header` is the CSV header the export has sent
    /// already, if any.
    fn new(csv: bool, shard: &str, header: Option<Vec<u8>>) -> Tagger {
        let tag = if csv {
            format!(",{}", csv_cell(shard)).into_bytes()
        } else {
            format!("\"shard\":{}", serde_json::Value::String(shard.to_owned())).into_bytes()
        };
        let header = match (csv, header) {
            (false, _) => Header::Passed(None),
            (true, None) => Header::Keep,
            (true, Some(h)) => Header::Drop(h),
        };
        Tagger { csv, tag, header, first_line: Vec::new(), quoted: false, line_start: true }
    }

    /// The CSV header this stream passed on (as the node sent it), if it did.
    fn header(&self) -> Option<&[u8]> {
        match &self.header {
            Header::Passed(kept) => kept.as_deref(),
            _ => None,
        }
    }

    fn chunk(&mut self, chunk: v1::ExportChunk) -> v1::ExportChunk {
        let data = if self.csv { self.csv_bytes(&chunk.data) } else { self.jsonl_bytes(&chunk.data) };
        v1::ExportChunk { data, records: chunk.records }
    }

    fn csv_bytes(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        let mut rest = data;
        if !matches!(self.header, Header::Passed(_)) {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                self.first_line.extend_from_slice(rest);
                return out;
            };
            self.first_line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.first_line);
            match std::mem::replace(&mut self.header, Header::Passed(None)) {
                Header::Keep => {
                    out.extend_from_slice(&line);
                    end_row(&mut out, b",shard");
                    self.header = Header::Passed(Some(line));
                }
                Header::Drop(expected) if expected == line => {}
                Header::Drop(_) => {
                    let mut row = line;
                    row.push(b'\n');
                    self.csv_rows(&row, &mut out);
                }
                Header::Passed(_) => unreachable!("checked above"),
            }
        }
        self.csv_rows(rest, &mut out);
        out
    }

    fn csv_rows(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            match b {
                b'"' => {
                    self.quoted = !self.quoted;
                    out.push(b);
                }
                b'\n' if !self.quoted => end_row(out, &self.tag),
                _ => out.push(b),
            }
        }
    }

    fn jsonl_bytes(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        for line in data.split_inclusive(|&b| b == b'\n') {
            let whole = self.line_start && line.ends_with(b"\n");
            self.line_start = line.ends_with(b"\n");
            let body = line.trim_ascii_end();
            // A JSON line (strings escape their line breaks) is one object: the field goes
            // before its closing brace.
            match body.strip_suffix(b"}") {
                Some(open) if whole && body.starts_with(b"{") => {
                    out.extend_from_slice(open);
                    if open.trim_ascii() != b"{" {
                        out.push(b',');
                    }
                    out.extend_from_slice(&self.tag);
                    out.push(b'}');
                    out.extend_from_slice(&line[body.len()..]);
                }
                _ => out.extend_from_slice(line),
            }
        }
        out
    }
}

/// Ends a CSV row with `cells`, keeping its line break (`\n` or `\r\n`).
fn end_row(out: &mut Vec<u8>, cells: &[u8]) {
    let cr = out.last() == Some(&b'\r');
    if cr {
        out.pop();
    }
    out.extend_from_slice(cells);
    if cr {
        out.push(b'\r');
    }
    out.push(b'\n');
}

/// One CSV cell (RFC 4180), as the node writes them: quoted when it holds a comma, a quote or a
/// line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &str, records: u64) -> v1::ExportChunk {
        v1::ExportChunk { data: data.as_bytes().to_vec(), records }
    }

    /// What a tagger makes of `chunks`, concatenated.
    fn tagged(csv: bool, shard: &str, first: bool, chunks: &[(&str, u64)]) -> (String, u64) {
        let known = (!first).then(|| HEADER.trim_end().as_bytes().to_vec());
        let mut tagger = Tagger::new(csv, shard, known);
        let mut out = Vec::new();
        let mut records = 0;
        for (data, n) in chunks {
            let c = tagger.chunk(chunk(data, *n));
            out.extend(c.data);
            records += c.records;
        }
        (String::from_utf8(out).unwrap(), records)
    }

    const HEADER: &str = "seq,at_ms,principal,tenant,action,resource,decision,count,policy_digest,request_id,request_digest,prev_hash,hash\n";

    #[test]
    fn the_first_groups_csv_header_gets_a_shard_column() {
        let (out, records) =
            tagged(true, "s1", true, &[(HEADER, 0), ("1,10,p,fraud,write,mm://fraud/a,allow,1,d,,00,00,aa\n", 1)]);
        assert_eq!(records, 1);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("{},shard", HEADER.trim_end()));
        assert_eq!(lines[1], "1,10,p,fraud,write,mm://fraud/a,allow,1,d,,00,00,aa,s1");
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn later_groups_lose_their_csv_header() {
        let rows = "1,10,p,,tenant.create,mm://growth,allow,1,d,,00,00,aa\n2,11,p,growth,write,mm://growth/x,deny,3,d,r1,00,aa,bb\n";
        let (out, records) = tagged(true, "s2", false, &[(HEADER, 0), (rows, 2)]);
        assert_eq!(records, 2);
        assert_eq!(
            out,
            "1,10,p,,tenant.create,mm://growth,allow,1,d,,00,00,aa,s2\n2,11,p,growth,write,mm://growth/x,deny,3,d,r1,00,aa,bb,s2\n"
        );
        // A header split across chunks is dropped all the same.
        let (split, _) = tagged(true, "s2", false, &[(&HEADER[..7], 0), (&HEADER[7..], 0), (rows, 2)]);
        assert_eq!(split, out);
        // A stream without a header loses no record.
        let (headless, _) = tagged(true, "s2", false, &[(rows, 2)]);
        assert_eq!(headless, out);
    }

    #[test]
    fn the_header_is_kept_once_and_remembered() {
        let mut first = Tagger::new(true, "s1", None);
        assert_eq!(first.header(), None);
        first.chunk(chunk(HEADER, 0));
        assert_eq!(first.header(), Some(HEADER.trim_end().as_bytes()));
        // A later group with the same header drops it.
        let mut second = Tagger::new(true, "s2", first.header().map(<[u8]>::to_vec));
        assert!(second.chunk(chunk(HEADER, 0)).data.is_empty());
        assert_eq!(second.header(), None);
    }

    #[test]
    fn quoted_line_breaks_are_not_row_ends() {
        let row = "3,12,\"p, \"\"quoted\"\"\",fraud,write,\"mm://fraud/a\nb\",allow,1,d,,00,00,aa\r\n";
        let (out, _) = tagged(true, "s1", false, &[(HEADER, 0), (row, 1)]);
        assert_eq!(out, "3,12,\"p, \"\"quoted\"\"\",fraud,write,\"mm://fraud/a\nb\",allow,1,d,,00,00,aa,s1\r\n");
    }

    #[test]
    fn csv_cells_are_escaped() {
        assert_eq!(csv_cell("s1"), "s1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
        let (out, _) = tagged(true, "odd,\"id\"", false, &[(HEADER, 0), ("1,2\n", 1)]);
        assert_eq!(out, "1,2,\"odd,\"\"id\"\"\"\n");
    }

    #[test]
    fn json_lines_get_a_shard_field() {
        let lines = "{\"seq\":1,\"resource\":\"mm://fraud/{x}\"}\n{\"seq\":2}\n{}\n";
        let (out, records) = tagged(false, "s1", false, &[(lines, 3)]);
        assert_eq!(records, 3);
        assert_eq!(
            out,
            "{\"seq\":1,\"resource\":\"mm://fraud/{x}\",\"shard\":\"s1\"}\n{\"seq\":2,\"shard\":\"s1\"}\n{\"shard\":\"s1\"}\n"
        );
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["shard"], "s1");
        }
        // Every group's lines are tagged, the first one's too; there is no header.
        assert_eq!(tagged(false, "s2", true, &[("{\"seq\":1}\n", 1)]).0, "{\"seq\":1,\"shard\":\"s2\"}\n");
    }

    #[test]
    fn tagged_json_lines_still_read_as_audit_records() {
        let draft = metamesh_audit::Draft::new(1, "p", "write", "mm://fraud/a", metamesh_audit::Decision::Allow);
        let record = metamesh_audit::Chain::new().append(draft).unwrap();
        let line = serde_json::to_string(&record).unwrap() + "\n";
        let (out, _) = tagged(false, "s1", true, &[(&line, 1)]);
        let back: metamesh_audit::AuditRecord = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn records_merge_by_time_then_shard_then_seq() {
        let rec =
            |time_ms, shard: &str, seq| v1::AuditRecord { time_ms, shard: shard.into(), seq, ..Default::default() };
        let mut records = [rec(5, "s2", 1), rec(5, "s1", 9), rec(3, "s2", 2), rec(5, "s1", 8)];
        records.sort_by_key(record_key);
        let order: Vec<(i64, &str, u64)> = records.iter().map(|r| (r.time_ms, r.shard.as_str(), r.seq)).collect();
        assert_eq!(order, [(3, "s2", 2), (5, "s1", 8), (5, "s1", 9), (5, "s2", 1)]);
    }

    #[test]
    fn records_are_visible_per_tenant_or_with_the_mesh() {
        let fraud_only = |t: &TenantId| t.as_str() == "fraud";
        assert!(record_visible("fraud", false, fraud_only));
        assert!(!record_visible("growth", false, fraud_only));
        assert!(!record_visible("", false, fraud_only), "mesh-level records need audit.read on the mesh");
        assert!(!record_visible("Not A Tenant", false, |_| true));
        assert!(record_visible("", true, |_| false));
        assert!(record_visible("growth", true, |_| false));
    }

    #[test]
    fn the_listing_digest_covers_every_filter_field() {
        let base = v1::AuditFilter { tenant: "fraud".into(), ..Default::default() };
        assert_eq!(filter_digest(None), filter_digest(Some(&v1::AuditFilter::default())));
        let changed = [
            v1::AuditFilter { principal: "p".into(), ..base.clone() },
            v1::AuditFilter { tenant: "growth".into(), ..base.clone() },
            v1::AuditFilter { action: "write".into(), ..base.clone() },
            v1::AuditFilter { resource: "mm://fraud/a".into(), ..base.clone() },
            v1::AuditFilter { start_time_ms: Some(1), ..base.clone() },
            v1::AuditFilter { end_time_ms: Some(1), ..base.clone() },
            v1::AuditFilter { decision: 2, ..base.clone() },
            v1::AuditFilter { shard: "s1".into(), ..base.clone() },
        ];
        for c in changed {
            assert_ne!(filter_digest(Some(&base)), filter_digest(Some(&c)), "{c:?}");
        }
    }
}
