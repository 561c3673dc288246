//! `POST /api/v1/lineage` and `POST /api/v1/lineage/batch`: OpenLineage events in.
//!
//! Each event is checked here (`metamesh_openlineage::parse`: 400 naming the field), given its
//! tenant ([`Namespaces`]: 403 when its job namespace belongs to none), authorized (`write` on
//! that tenant, `link` on every input dataset another tenant owns), and sent to the tenant's
//! shard group as one `IngestOpenLineage` call per tenant — all events of a request for one
//! tenant in one Raft entry. A re-sent event is recognised by the shard and changes nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metamesh_config::OpenLineageSection;
use metamesh_core::command::{MAX_OPENLINEAGE_EVENTS, MAX_OPENLINEAGE_EVENT_BYTES};
use metamesh_core::{openlineage as names, Kind, TenantId};
use metamesh_node::Authorized;
use metamesh_policy::{Action, Resource};
use metamesh_proto::v1;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{HttpState, Who};
use crate::groups::{on_behalf, Groups};

/// Most events one batch request may hold.
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// Bytes of events sent to a shard in one call, one Raft entry: small enough to replicate within
/// a heartbeat on a loaded machine (the gRPC message limit is 4 MiB).
const MAX_CALL_BYTES: usize = 512 * 1024;

/// Which tenant owns an OpenLineage name (the router's `[openlineage]` section).
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    jobs: BTreeMap<String, TenantId>,
    datasets: BTreeMap<String, TenantId>,
    default: Option<TenantId>,
}

impl Namespaces {
    /// The map of a router configuration; errors name the key.
    pub fn new(section: &OpenLineageSection) -> anyhow::Result<Namespaces> {
        let tenant = |key: String, t: &str| {
            TenantId::new(t).map_err(|e| anyhow::anyhow!("{key}: `{t}` is not a tenant name: {e}"))
        };
        let mut jobs = BTreeMap::new();
        for (ns, t) in &section.namespaces {
            jobs.insert(ns.clone(), tenant(format!("openlineage.namespaces.{ns}"), t)?);
        }
        let mut datasets = BTreeMap::new();
        for (ns, t) in &section.datasets {
            datasets.insert(ns.clone(), tenant(format!("openlineage.datasets.{ns}"), t)?);
        }
        let default =
            section.default_tenant.as_deref().map(|t| tenant("openlineage.default_tenant".into(), t)).transpose()?;
        Ok(Namespaces { jobs, datasets, default })
    }

    /// The tenant of job namespace `ns`: as mapped, else the tenant of that name, else the
    /// default tenant.
    pub fn job_tenant(&self, ns: &str, groups: &Groups) -> Option<TenantId> {
        if let Some(t) = self.jobs.get(ns) {
            return Some(t.clone());
        }
        if groups.owner(ns).is_some() {
            if let Ok(t) = TenantId::new(ns) {
                return Some(t);
            }
        }
        self.default.clone()
    }

    /// The tenant owning dataset namespace `ns` as an input, if the map (or a tenant's name)
    /// says; none: the reading job's tenant.
    pub fn dataset_owner(&self, ns: &str, groups: &Groups) -> Option<TenantId> {
        if let Some(t) = self.datasets.get(ns) {
            return Some(t.clone());
        }
        if groups.owner(ns).is_some() {
            return TenantId::new(ns).ok();
        }
        None
    }
}

/// An event checked and placed.
struct Planned {
    tenant: TenantId,
    json: String,
    foreign: Vec<v1::OpenLineageForeignDataset>,
}

/// Checks one event: its syntax, its tenant, the caller's rights.
fn plan(state: &HttpState, who: &Authorized, value: &Value) -> Result<Planned, ApiError> {
    let event = metamesh_openlineage::parse(value).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (field, ns) = match (&event.job, &event.dataset) {
        (Some(job), _) => ("job.namespace", job.key.namespace.as_str()),
        (None, Some(d)) => ("dataset.namespace", d.key.namespace.as_str()),
        (None, None) => return Err(ApiError::bad_request("job: missing")),
    };
    let tenant = match &event.job {
        Some(_) => state.namespaces.job_tenant(ns, &state.groups),
        None => state.namespaces.dataset_owner(ns, &state.groups).or_else(|| state.namespaces.job_tenant(ns, &state.groups)),
    }
    .ok_or_else(|| {
        ApiError::forbidden(format!(
            "{field} `{ns}` belongs to no tenant: name it after a tenant or map it in the router's [openlineage] section"
        ))
    })?;
    state.require(who, Action::Write, &Resource::Tenant(&tenant), tenant.as_str())?;
    if let Some(job) = &event.job {
        names::job_urn(&tenant, &job.key.namespace, &job.key.name)
            .map_err(|e| ApiError::bad_request(format!("job.name: too long for an entity name: {e}")))?;
    }
    let json = serde_json::to_string(value).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if json.len() > MAX_OPENLINEAGE_EVENT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("event: {} bytes, over the limit of {MAX_OPENLINEAGE_EVENT_BYTES}", json.len()),
        ));
    }
    // Inputs (and the inputs of column lineage) that another tenant owns.
    let mut foreign: Vec<v1::OpenLineageForeignDataset> = Vec::new();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for (i, d) in event.inputs.iter().enumerate() {
        keys.push((format!("inputs[{i}]"), d.key.namespace.clone(), d.key.name.clone()));
    }
    for (i, d) in event.outputs.iter().enumerate() {
        for c in metamesh_openlineage::column_lineage(&d.facets) {
            for input in c.inputs {
                keys.push((format!("outputs[{i}].facets.columnLineage"), input.dataset.namespace, input.dataset.name));
            }
        }
    }
    for (field, ns, name) in keys {
        let Some(owner) = state.namespaces.dataset_owner(&ns, &state.groups) else { continue };
        if owner == tenant || foreign.iter().any(|f| f.namespace == ns && f.name == name) {
            continue;
        }
        let urn = names::dataset_urn(&owner, Kind::Dataset, &ns, &name)
            .map_err(|e| ApiError::bad_request(format!("{field}.name: too long for an entity name: {e}")))?;
        state.require(who, Action::Link, &Resource::Entity(&urn), owner.as_str())?;
        foreign.push(v1::OpenLineageForeignDataset { namespace: ns, name, tenant: owner.to_string() });
    }
    Ok(Planned { tenant, json, foreign })
}

/// The request body, gunzipped if it says so, at most `max` bytes either way.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body: over the limit of {max} bytes"));
    let raw = axum::body::to_bytes(body, max).await.map_err(|_| too_large())?;
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("body: not valid gzip: {e}")))?;
            if out.len() > max {
                return Err(too_large());
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{other}` is not supported: send gzip or no encoding"),
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("body: not JSON: {e}")))
}

/// Sends planned events of one tenant to its shard group; per event, whether it was new.
async fn send(
    state: &HttpState,
    who: &Authorized,
    tenant: &TenantId,
    events: Vec<&Planned>,
) -> Result<Vec<bool>, ApiError> {
    let group = state.groups.of(tenant)?;
    let mut foreign: Vec<v1::OpenLineageForeignDataset> = Vec::new();
    let mut digest = Sha256::new();
    digest.update(tenant.as_str());
    for p in &events {
        digest.update(p.json.as_bytes());
        for f in &p.foreign {
            if !foreign.contains(f) {
                foreign.push(f.clone());
            }
        }
    }
    let request = v1::IngestOpenLineageRequest {
        // The same events give the same id: a retry after a lost answer is answered from the
        // first result.
        request_id: format!("ol-{}", digest.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()),
        tenant: tenant.to_string(),
        events_json: events.iter().map(|p| p.json.clone()).collect(),
        foreign,
    };
    // A leader election makes every replica answer UNAVAILABLE for a moment: wait it out here
    // (the request id makes the retry harmless) rather than hand the client a 503.
    let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
    let mut pause = Duration::from_millis(50);
    loop {
        let answer = state
            .groups
            .call(group, |channel| {
                let request = on_behalf(who, request.clone());
                async move { LineageServiceClient::new(channel).ingest_open_lineage(request).await }
            })
            .await;
        match answer {
            Ok(reply) => return Ok(reply.into_inner().stored),
            Err(status)
                if status.code() == tonic::Code::Unavailable && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::debug!(group = %group.id, %status, "shard group unavailable; retrying the events");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(status) => return Err(status.into()),
        }
    }
}

/// How long a write waits for a shard group to elect a leader before answering 503.
const ELECTION_WAIT: Duration = Duration::from_secs(10);

/// `POST /api/v1/lineage`: one event; 201 when stored (or stored before).
pub(super) async fn one(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.max_body).await?;
    let value = parse_json(&bytes)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "body: expected one OpenLineage event (a JSON object); send lists to /api/v1/lineage/batch",
        ));
    }
    let planned = plan(&state, &who, &value)?;
    send(&state, &who, &planned.tenant, vec![&planned]).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `POST /api/v1/lineage/batch`: a JSON array of events (or `{"events": [...]}`). Every
/// event gets a result; the summary is `success`, `partial_success` or `failure`. Status 200
/// when all were stored, 207 when some were, else the status of the first failure.
pub(super) async fn batch(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.max_body).await?;
    let events = match parse_json(&bytes)? {
        Value::Array(list) => list,
        Value::Object(mut map) if map.get("events").is_some_and(Value::is_array) => {
            let Some(Value::Array(list)) = map.remove("events") else { unreachable!("checked above") };
            list
        }
        _ => return Err(ApiError::bad_request("body: expected a JSON array of OpenLineage events")),
    };
    if events.is_empty() {
        return Err(ApiError::bad_request("body: the batch holds no events"));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: {} events, over the limit of {MAX_BATCH_EVENTS}", events.len()),
        ));
    }
    let mut results: Vec<Option<Result<bool, ApiError>>> = Vec::with_capacity(events.len());
    let mut planned: Vec<(usize, Planned)> = Vec::new();
    for (i, value) in events.iter().enumerate() {
        match plan(&state, &who, value) {
            Ok(p) => {
                planned.push((i, p));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(ApiError::new(e.status, format!("events[{i}]: {}", e.message))))),
        }
    }
    // One call per tenant and chunk, all in parallel.
    let mut chunks: Vec<(TenantId, Vec<usize>)> = Vec::new();
    let mut by_tenant: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
    for (k, (_, p)) in planned.iter().enumerate() {
        by_tenant.entry(p.tenant.clone()).or_default().push(k);
    }
    for (tenant, list) in by_tenant {
        let (mut chunk, mut bytes) = (Vec::new(), 0);
        for k in list {
            let size = planned[k].1.json.len();
            if !chunk.is_empty() && (chunk.len() == MAX_OPENLINEAGE_EVENTS || bytes + size > MAX_CALL_BYTES) {
                chunks.push((tenant.clone(), std::mem::take(&mut chunk)));
                bytes = 0;
            }
            chunk.push(k);
            bytes += size;
        }
        if !chunk.is_empty() {
            chunks.push((tenant, chunk));
        }
    }
    let calls = chunks.iter().map(|(tenant, ks)| {
        let (state, who, planned) = (&state, &who, &planned);
        async move { send(state, who, tenant, ks.iter().map(|&k| &planned[k].1).collect()).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for ((_, ks), answer) in chunks.iter().zip(answers) {
        match answer {
            Ok(stored) => {
                for (&k, s) in ks.iter().zip(stored) {
                    results[planned[k].0] = Some(Ok(s));
                }
            }
            Err(e) => {
                for &k in ks {
                    results[planned[k].0] = Some(Err(ApiError::new(e.status, e.message.clone())));
                }
            }
        }
    }
    let mut body_results = Vec::with_capacity(results.len());
    let (mut ok, mut first_failure) = (0usize, None);
    for (i, r) in results.into_iter().enumerate() {
        match r.unwrap_or_else(|| Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "event not sent"))) {
            Ok(stored) => {
                ok += 1;
                body_results.push(json!({"index": i, "status": "success", "duplicate": !stored}));
            }
            Err(e) => {
                first_failure.get_or_insert(e.status);
                body_results
                    .push(json!({"index": i, "status": "failure", "code": e.status.as_u16(), "message": e.message}));
            }
        }
    }
    let total = body_results.len();
    let (summary, status) = match (ok, first_failure) {
        (_, None) => ("success", StatusCode::OK),
        (0, Some(status)) => ("failure", status),
        (_, Some(_)) => ("partial_success", StatusCode::MULTI_STATUS),
    };
    let body = json!({
        "status": summary,
        "received": total,
        "succeeded": ok,
        "failed": total - ok,
        "results": body_results,
    });
    Ok((status, Json(body)).into_response())
}
