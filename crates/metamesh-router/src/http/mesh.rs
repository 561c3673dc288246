//! The mesh's own JSON API for the web UI (docs/web-ui.md): who is signed in, search with
//! facets, one entity's page (state, versions, documents, neighbours, audit trail), and the
//! audit view (records, verification per shard, export). Lineage is
//! `marquez::graph::mesh_lineage`. Every answer is what the caller may see: the same gRPC
//! handlers and shard calls as the rest of the router, on the caller's behalf.
//!
//! Markdown (descriptions, documents) is rendered here with pulldown-cmark and cleaned with
//! ammonia: the page inserts only that HTML as HTML; every other string it shows as text.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use metamesh_core::{EntityUrn, TenantId};
use metamesh_node::Authorized;
use metamesh_policy::{Action, Resource};
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_server::AuditService;
use metamesh_proto::v1::lineage_service_server::LineageService;
use metamesh_proto::v1::search_service_server::SearchService;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::marquez::{as_router, get};
use super::{HttpState, Who};

type Answer = Result<Json<Value>, ApiError>;
/// A query string as its pairs, repeated keys kept.
type Pairs = Query<Vec<(String, String)>>;

/// Hits the facet counts are taken over.
const FACET_SAMPLE: u32 = 500;
/// Versions an entity page lists.
const PAGE_VERSIONS: u32 = 50;
/// Neighbours an entity page lists per direction (the explorer shows the rest).
const PAGE_NEIGHBOURS: u32 = 200;
/// Audit records an entity page shows (the latest).
const PAGE_AUDIT: usize = 100;
/// Audit records an entity page reads at most to find the latest.
const PAGE_AUDIT_SCAN: usize = 5_000;

/// Markdown as HTML that is safe to insert: no script, no event handler, no `javascript:` link,
/// no image.
pub(super) fn markdown_html(text: &str) -> String {
    let options = pulldown_cmark::Options::ENABLE_TABLES
        | pulldown_cmark::Options::ENABLE_STRIKETHROUGH
        | pulldown_cmark::Options::ENABLE_TASKLISTS;
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new_ext(text, options));
    // No images: a picture's URL is fetched by every viewer's browser with their session, so a
    // description could make readers call the API unawares. Links need a click.
    ammonia::Builder::default()
        .rm_tags(["img"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

/// The opaque id of a placeholder: stable for one router process, not reversible to the URN.
fn placeholder_id(state: &HttpState, urn: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(state.placeholder_key);
    hash.update(urn.as_bytes());
    let digest = hash.finalize();
    format!("hidden:{}", digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A lineage node as the UI's JSON: placeholders keep only kind, tenant and depth.
pub(super) fn node_json(state: &HttpState, n: &v1::LineageNode) -> Value {
    if n.placeholder {
        json!({"id": placeholder_id(state, &n.urn), "urn": Value::Null, "tenant": n.tenant, "kind": n.kind,
               "placeholder": true, "depth": n.depth})
    } else {
        json!({"id": n.urn, "urn": n.urn, "tenant": n.tenant, "kind": n.kind, "name": n.name, "placeholder": false,
               "depth": n.depth, "typeName": n.type_name, "status": n.status, "deleted": n.deleted})
    }
}

fn reasons_json(reasons: &[v1::PartialReason]) -> Vec<Value> {
    reasons.iter().map(|r| json!({"code": r.code, "detail": r.detail, "shard": r.shard})).collect()
}

/// Whether the caller may read audit records: of the whole mesh or of some tenant.
fn is_auditor(state: &HttpState, who: &Authorized) -> bool {
    who.policy.check(&who.caller.principal, Action::AuditRead, &Resource::Mesh).allowed
        || state
            .groups
            .all()
            .iter()
            .flat_map(|g| g.tenants.iter())
            .any(|t| TenantId::new(t).is_ok_and(|t| who.may(Action::AuditRead, &t)))
}

// ---------------------------------------------------------------------------------------------
// Who.

/// `GET /api/mesh/v1/whoami`: the caller, how it signed in, the tenants it may know of and
/// whether it may read audit records. A request with no credentials at all gets 200
/// `{"signedIn": false}` (the page's first question, asked on every visit); wrong credentials
/// still get 401.
pub(super) async fn whoami(
    State(state): State<Arc<HttpState>>,
    who: Result<Who, ApiError>,
    headers: axum::http::HeaderMap,
) -> Answer {
    let who = match who {
        Ok(Who(who)) => who,
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED && !headers.contains_key(header::AUTHORIZATION) => {
            return Ok(Json(json!({"signedIn": false})));
        }
        Err(e) => return Err(e),
    };
    // The same order as `HttpState::authorize`: bearer key, session, certificate.
    let via = if headers.contains_key(header::AUTHORIZATION) {
        "apiKey"
    } else if state.session_principal(&axum::http::Method::GET, &headers).is_some() {
        "session"
    } else {
        "certificate"
    };
    let mut tenants = Vec::new();
    for g in state.groups.all() {
        for t in &g.tenants {
            let Ok(id) = TenantId::new(t) else { continue };
            if who.may(Action::Discover, &id) || who.may(Action::Read, &id) {
                tenants.push(json!({"name": t, "shardGroup": g.id, "read": who.may(Action::Read, &id)}));
            }
        }
    }
    Ok(Json(json!({"signedIn": true, "principal": who.caller.principal, "via": via, "tenants": tenants,
                   "auditor": is_auditor(&state, &who)})))
}

// ---------------------------------------------------------------------------------------------
// Search.

/// The values of `key` in a query: repeated, comma-separated, or both; blanks dropped.
fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn one(pairs: &[(String, String)], key: &str) -> Result<Option<String>, ApiError> {
    let mut found = pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.trim().to_owned());
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::bad_request(format!("{key}: given more than once")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

fn number<T: std::str::FromStr>(pairs: &[(String, String)], key: &str) -> Result<Option<T>, ApiError> {
    match one(pairs, key)? {
        None => Ok(None),
        Some(text) => {
            text.parse().map(Some).map_err(|_| ApiError::bad_request(format!("{key}: `{text}` is not a valid number")))
        }
    }
}

fn hit_json(hit: &v1::SearchHit) -> Value {
    let e = hit.entity.clone().unwrap_or_default();
    json!({"urn": e.urn, "tenant": e.tenant, "kind": e.kind, "name": e.name, "typeName": e.type_name,
           "owner": e.owner, "tags": e.tags, "status": e.status, "description": e.description,
           "snippet": hit.snippet, "score": hit.score, "updatedAtMs": e.updated_at_ms, "deleted": e.deleted})
}

/// `GET /api/mesh/v1/search?q=&kind=&tenant=&tag=&owner=&type=&pageSize=&pageToken=`: ranked
/// hits the caller may see, and on the first page facet counts over the first 500 matches of
/// the text alone (so a filter can be widened again).
pub(super) async fn search(State(state): State<Arc<HttpState>>, Who(who): Who, Query(pairs): Pairs) -> Answer {
    for (key, _) in &pairs {
        if !matches!(key.as_str(), "q" | "kind" | "tenant" | "tag" | "owner" | "type" | "pageSize" | "pageToken") {
            return Err(ApiError::bad_request(format!(
                "{key}: not a search parameter (q, kind, tenant, tag, owner, type, pageSize, pageToken)"
            )));
        }
    }
    let query = one(&pairs, "q")?.unwrap_or_default();
    let page_token = one(&pairs, "pageToken")?.unwrap_or_default();
    let request = v1::SearchRequest {
        query: query.clone(),
        kinds: values(&pairs, "kind"),
        tenants: values(&pairs, "tenant"),
        tags: values(&pairs, "tag"),
        owner: one(&pairs, "owner")?.unwrap_or_default(),
        type_name: one(&pairs, "type")?.unwrap_or_default(),
        page_size: number(&pairs, "pageSize")?.unwrap_or(0),
        page_token: page_token.clone(),
        ..Default::default()
    };
    let reply = state.api.search(as_router(&who, request)).await?.into_inner();
    let facets = if page_token.is_empty() {
        let sample = v1::SearchRequest { query, page_size: FACET_SAMPLE, ..Default::default() };
        let sample = state.api.search(as_router(&who, sample)).await?.into_inner();
        facet_counts(&sample.hits)
    } else {
        Value::Null
    };
    Ok(Json(json!({
        "hits": reply.hits.iter().map(hit_json).collect::<Vec<_>>(),
        "facets": facets,
        "nextPageToken": reply.next_page_token,
        "partial": reply.partial,
        "partialReasons": reasons_json(&reply.partial_reasons),
    })))
}

fn facet_counts(hits: &[v1::SearchHit]) -> Value {
    let mut facets: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for e in hits.iter().filter_map(|h| h.entity.as_ref()) {
        let mut count = |facet: &'static str, value: &str| {
            if !value.is_empty() {
                *facets.entry(facet).or_default().entry(value.to_owned()).or_default() += 1;
            }
        };
        count("kind", &e.kind);
        count("tenant", &e.tenant);
        count("owner", &e.owner);
        count("type", &e.type_name);
        for t in &e.tags {
            count("tag", t);
        }
    }
    let mut out = serde_json::Map::new();
    for facet in ["kind", "tenant", "tag", "owner", "type"] {
        out.insert(facet.to_owned(), json!(facets.remove(facet).unwrap_or_default()));
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// One entity.

/// `GET /api/mesh/v1/entity?urn=`: the entity's latest version (markdown description rendered
/// safely), its versions, documents, direct neighbours and — for those allowed — its audit
/// trail. 404 when it does not exist or the caller may not read it.
pub(super) async fn entity(State(state): State<Arc<HttpState>>, Who(who): Who, Query(pairs): Pairs) -> Answer {
    let text = one(&pairs, "urn")?.ok_or_else(|| ApiError::bad_request("urn: missing"))?;
    let urn: EntityUrn = text.parse().map_err(|e| ApiError::bad_request(format!("urn: {e}")))?;
    let found = get(&state, &who, &urn).await?.ok_or_else(|| ApiError::not_found(format!("`{urn}` not found")))?;
    let e = &found.entity;
    let entity = json!({
        "urn": e.urn, "tenant": e.tenant, "kind": e.kind, "name": e.name, "version": e.version,
        "typeName": e.type_name, "schemaVersion": e.schema_version, "properties": found.props,
        "tags": e.tags, "owner": e.owner, "status": e.status, "description": e.description,
        "descriptionHtml": markdown_html(&e.description), "createdAtMs": e.created_at_ms,
        "createdBy": e.created_by, "updatedAtMs": e.updated_at_ms, "updatedBy": e.updated_by,
        "revision": e.revision, "deleted": e.deleted,
    });
    let (versions, documents, lineage, audit) = futures_util::join!(
        versions(&state, &who, &urn),
        documents(&state, &who, &urn),
        neighbours(&state, &who, &urn),
        audit_trail(&state, &who, &urn),
    );
    Ok(Json(json!({"entity": entity, "versions": versions?, "documents": documents?, "lineage": lineage?,
                   "audit": audit?})))
}

async fn versions(state: &HttpState, who: &Authorized, urn: &EntityUrn) -> Result<Value, ApiError> {
    let request = v1::ListVersionsRequest { urn: urn.to_string(), page_size: PAGE_VERSIONS, ..Default::default() };
    let reply = state.catalog(who, urn.tenant(), request, |mut c, r| async move { c.list_versions(r).await }).await?;
    let rows: Vec<Value> = reply
        .versions
        .iter()
        .map(|v| {
            json!({"version": v.version, "revision": v.revision, "updatedAtMs": v.updated_at_ms,
                   "updatedBy": v.updated_by, "status": v.status, "deleted": v.deleted,
                   "schemaVersion": v.schema_version, "typeName": v.type_name})
        })
        .collect();
    Ok(json!(rows))
}

async fn documents(state: &HttpState, who: &Authorized, urn: &EntityUrn) -> Result<Value, ApiError> {
    let request = v1::ListDocumentsRequest { entity_urn: urn.to_string(), ..Default::default() };
    let reply = state.catalog(who, urn.tenant(), request, |mut c, r| async move { c.list_documents(r).await }).await?;
    let docs: Vec<Value> = reply
        .documents
        .iter()
        .filter(|d| !d.deleted)
        .map(|d| {
            json!({"title": d.title, "version": d.version, "html": markdown_html(&d.body_markdown),
                   "createdAtMs": d.created_at_ms, "createdBy": d.created_by})
        })
        .collect();
    Ok(json!(docs))
}

/// The entity's direct neighbours, split by direction.
async fn neighbours(state: &HttpState, who: &Authorized, urn: &EntityUrn) -> Result<Value, ApiError> {
    let request = v1::ExpandRequest {
        urns: vec![urn.to_string()],
        direction: v1::Direction::Both as i32,
        max_depth: 1,
        max_nodes: 2 * PAGE_NEIGHBOURS + 1,
        ..Default::default()
    };
    let reply = state.api.expand(as_router(who, request)).await?.into_inner();
    let me = urn.to_string();
    let by_urn: std::collections::HashMap<&str, &v1::LineageNode> =
        reply.nodes.iter().map(|n| (n.urn.as_str(), n)).collect();
    let (mut upstream, mut downstream) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for e in &reply.edges {
        let (up, other) = if e.to_urn == me {
            (true, e.from_urn.as_str())
        } else if e.from_urn == me {
            (false, e.to_urn.as_str())
        } else {
            continue;
        };
        if other == me || !seen.insert((up, other)) {
            continue;
        }
        let Some(node) = by_urn.get(other) else { continue };
        if up {
            upstream.push(node_json(state, node));
        } else {
            downstream.push(node_json(state, node));
        }
    }
    Ok(json!({"upstream": upstream, "downstream": downstream, "partial": reply.partial,
              "partialReasons": reasons_json(&reply.partial_reasons)}))
}

fn record_json(r: &v1::AuditRecord) -> Value {
    json!({"seq": r.seq, "timeMs": r.time_ms, "principal": r.principal, "tenant": r.tenant, "action": r.action,
           "resource": r.resource, "allowed": r.decision == v1::Decision::Allow as i32, "shard": r.shard,
           "count": r.count, "requestId": r.request_id,
           "hash": r.hash.iter().map(|b| format!("{b:02x}")).collect::<String>()})
}

/// The latest audit records naming the entity, newest first; `allowed: false` for a caller
/// who may not read the tenant's audit log.
async fn audit_trail(state: &HttpState, who: &Authorized, urn: &EntityUrn) -> Result<Value, ApiError> {
    if !who.may(Action::AuditRead, urn.tenant()) {
        return Ok(json!({"allowed": false, "records": []}));
    }
    let filter = v1::AuditFilter { tenant: urn.tenant().to_string(), resource: urn.to_string(), ..Default::default() };
    let mut records: std::collections::VecDeque<v1::AuditRecord> = Default::default();
    let (mut token, mut scanned) = (String::new(), 0usize);
    loop {
        let request = v1::ListRecordsRequest { filter: Some(filter.clone()), page_size: 1000, page_token: token };
        let reply = state.api.list_records(as_router(who, request)).await?.into_inner();
        scanned += reply.records.len();
        for r in reply.records {
            if records.len() == PAGE_AUDIT {
                records.pop_front();
            }
            records.push_back(r);
        }
        if reply.next_page_token.is_empty() || scanned >= PAGE_AUDIT_SCAN {
            break;
        }
        token = reply.next_page_token;
    }
    let rows: Vec<Value> = records.iter().rev().map(record_json).collect();
    Ok(json!({"allowed": true, "records": rows}))
}

// ---------------------------------------------------------------------------------------------
// The audit view.

/// The audit filter of a query (`principal`, `tenant`, `action`, `resource`, `decision`,
/// `startMs`, `endMs`, `shard`); `extra` lists the other keys the route takes.
fn audit_filter(pairs: &[(String, String)], extra: &[&str]) -> Result<v1::AuditFilter, ApiError> {
    const KEYS: &[&str] = &["principal", "tenant", "action", "resource", "decision", "startMs", "endMs", "shard"];
    for (key, _) in pairs {
        if !KEYS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            let mut all: Vec<&str> = KEYS.to_vec();
            all.extend_from_slice(extra);
            return Err(ApiError::bad_request(format!("{key}: not an audit parameter ({})", all.join(", "))));
        }
    }
    let decision = match one(pairs, "decision")?.as_deref() {
        None => v1::Decision::Unspecified,
        Some("allow") => v1::Decision::Allow,
        Some("deny") => v1::Decision::Deny,
        Some(other) => return Err(ApiError::bad_request(format!("decision: `{other}` is not allow or deny"))),
    };
    Ok(v1::AuditFilter {
        principal: one(pairs, "principal")?.unwrap_or_default(),
        tenant: one(pairs, "tenant")?.unwrap_or_default(),
        action: one(pairs, "action")?.unwrap_or_default(),
        resource: one(pairs, "resource")?.unwrap_or_default(),
        start_time_ms: number(pairs, "startMs")?,
        end_time_ms: number(pairs, "endMs")?,
        decision: decision as i32,
        shard: one(pairs, "shard")?.unwrap_or_default(),
    })
}

/// 403 (recorded) for a caller who may read no audit log at all.
fn require_auditor(state: &HttpState, who: &Authorized) -> Result<(), ApiError> {
    if is_auditor(state, who) {
        return Ok(());
    }
    state.require(who, Action::AuditRead, &Resource::Mesh, "")
}

/// `GET /api/mesh/v1/audit/records?<filter>&pageSize=&pageToken=`: records of every shard
/// group the caller may audit, by time.
pub(super) async fn audit_records(State(state): State<Arc<HttpState>>, Who(who): Who, Query(pairs): Pairs) -> Answer {
    require_auditor(&state, &who)?;
    let filter = audit_filter(&pairs, &["pageSize", "pageToken"])?;
    let request = v1::ListRecordsRequest {
        filter: Some(filter),
        page_size: number(&pairs, "pageSize")?.unwrap_or(0),
        page_token: one(&pairs, "pageToken")?.unwrap_or_default(),
    };
    let reply = state.api.list_records(as_router(&who, request)).await?.into_inner();
    Ok(Json(json!({"records": reply.records.iter().map(record_json).collect::<Vec<_>>(),
                   "nextPageToken": reply.next_page_token, "partial": reply.partial,
                   "missingShards": reply.missing_shards})))
}

/// `GET /api/mesh/v1/audit/verify`: each shard group's hash chain and signed checkpoints,
/// checked by a replica of the group; a group that cannot answer shows its error.
pub(super) async fn audit_verify(State(state): State<Arc<HttpState>>, Who(who): Who) -> Answer {
    require_auditor(&state, &who)?;
    let checks = state.groups.all().iter().map(|g| {
        let request = v1::VerifyRequest { shard: g.id.clone(), ..Default::default() };
        let (state, who) = (&state, &who);
        async move { (g.id.clone(), state.api.verify(as_router(who, request)).await) }
    });
    let mut shards = Vec::new();
    for (shard, answer) in futures_util::future::join_all(checks).await {
        shards.push(match answer {
            Ok(r) => {
                let r = r.into_inner();
                json!({"shard": shard, "ok": r.ok, "recordsChecked": r.records_checked,
                       "checkpointsChecked": r.checkpoints_checked, "firstBadSeq": r.first_bad_seq,
                       "reason": r.reason, "error": Value::Null})
            }
            Err(status) => json!({"shard": shard, "ok": false, "error": status.message()}),
        });
    }
    Ok(Json(json!({"shards": shards})))
}

/// `GET /api/mesh/v1/audit/export?format=jsonl|csv&<filter>`: the matching records as a file
/// (the gRPC `Export` stream, passed through). A failure after the first bytes ends the
/// download early: the body is then shorter than the records it announced.
pub(super) async fn audit_export(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    require_auditor(&state, &who)?;
    let filter = audit_filter(&pairs, &["format"])?;
    let (format, content_type, file) = match one(&pairs, "format")?.as_deref() {
        None | Some("jsonl") => (v1::ExportFormat::Jsonl, "application/x-ndjson", "metamesh-audit.jsonl"),
        Some("csv") => (v1::ExportFormat::Csv, "text/csv; charset=utf-8", "metamesh-audit.csv"),
        Some(other) => return Err(ApiError::bad_request(format!("format: `{other}` is not jsonl or csv"))),
    };
    let request = v1::ExportRequest { filter: Some(filter), format: format as i32 };
    let stream = state.api.export(as_router(&who, request)).await?.into_inner();
    let body = Body::from_stream(stream.map(|chunk| {
        chunk
            .map(|c| bytes::Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(format!("export interrupted: {}", s.message())))
    }));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")).expect("a fixed file name"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_formatting_and_drops_scripts() {
        let html = markdown_html(
            "# Title\n\n**bold** <script>alert(1)</script> <img src=x onerror=alert(1)> [a](javascript:alert(1)) [b](https://example.com)",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(!markdown_html("![x](/api/mesh/v1/entity?urn=mm://a/dataset/b)").contains("<img"));
    }

    #[test]
    fn query_values_split_and_refuse_doubles() {
        let pairs = vec![("kind".to_owned(), "dataset, model".to_owned()), ("kind".to_owned(), "run".to_owned())];
        assert_eq!(values(&pairs, "kind"), ["dataset", "model", "run"]);
        assert!(one(&pairs, "kind").is_err());
        let bad = vec![("pageSize".to_owned(), "ten".to_owned())];
        assert_eq!(number::<u32>(&bad, "pageSize").unwrap_err().status, 400);
        let bad = vec![("decision".to_owned(), "maybe".to_owned())];
        assert!(audit_filter(&bad, &[]).unwrap_err().message.contains("decision"));
    }
}
