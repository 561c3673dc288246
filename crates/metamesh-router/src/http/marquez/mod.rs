//! The Marquez-shaped reads (Marquez's JSON shapes, `/api/v1/...`), answered from the
//! catalog entities the OpenLineage events were mapped onto (`metamesh-store`'s
//! `openlineage` module) and filtered by the caller's rights: what the caller may not read is
//! left out of listings, and appears in a lineage graph only as a placeholder (its kind and
//! tenant).
//!
//! Every answer also carries the mesh's own fields where Marquez has none: `tenant` and `urn`
//! of each node, and `partial` with reasons on lineage.
//!
//! Code map: this module reads entities for the caller and writes Marquez's JSON shapes;
//! [`catalog`] answers namespaces, datasets, jobs, runs, search and events; [`graph`] the
//! lineage graphs (Marquez's, column lineage, the mesh's own).

mod catalog;
mod graph;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use metamesh_core::{openlineage as names, EntityUrn, Kind, TenantId};
use metamesh_node::Authorized;
use metamesh_openlineage::{DatasetKey, JobKey, NodeId};
use metamesh_policy::{Action, Resource, Visibility};
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_server::CatalogService;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::lineage_service_server::LineageService;
use metamesh_proto::v1::search_service_server::SearchService;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{HttpState, Who};
use crate::groups::on_behalf;

pub(super) use catalog::{
    dataset, dataset_versions, datasets, events, job, job_runs, jobs, namespace, namespaces, run, search,
};
pub(super) use graph::{column_lineage, lineage, mesh_lineage};

type Answer = Result<Json<Value>, ApiError>;

/// Most entities one listing reads from a shard.
const MAX_LISTED: usize = 10_000;
/// URNs per BatchGetEntities call.
const BATCH_GET: usize = 500;
/// Depth of `/api/v1/lineage` when the request gives none (Marquez's default).
const DEFAULT_DEPTH: u32 = 20;

// ---------------------------------------------------------------------------------------------
// Reading entities on behalf of the caller.

/// A catalog entity with its parsed properties.
pub(in crate::http) struct Found {
    pub(in crate::http) entity: v1::Entity,
    pub(in crate::http) props: Value,
}

impl Found {
    fn of(entity: v1::Entity) -> Found {
        let props = serde_json::from_str(&entity.properties_json).unwrap_or(Value::Null);
        Found { entity, props }
    }

    fn ol(&self) -> &Value {
        &self.props["openlineage"]
    }
}

/// A request to a router handler, as if it had come through the gRPC authorization layer.
pub(in crate::http) fn as_router<T>(who: &Authorized, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(who.clone());
    request
}

/// The tenants the caller may read, in the mesh map's order.
fn readable_tenants(state: &HttpState, who: &Authorized) -> Vec<TenantId> {
    let mut out = Vec::new();
    for g in state.groups.all() {
        for t in &g.tenants {
            if let Ok(t) = TenantId::new(t) {
                if who.may(Action::Read, &t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// One entity, if it exists and the caller may read it.
pub(in crate::http) async fn get(
    state: &HttpState,
    who: &Authorized,
    urn: &EntityUrn,
) -> Result<Option<Found>, ApiError> {
    if who.visibility(urn) != Visibility::Full {
        return Ok(None);
    }
    let request = v1::GetEntityRequest { urn: urn.to_string(), ..Default::default() };
    match state.catalog(who, urn.tenant(), request, |mut c, r| async move { c.get_entity(r).await }).await {
        Ok(reply) => Ok(reply.entity.map(Found::of)),
        Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::PermissionDenied) => Ok(None),
        Err(s) => Err(s.into()),
    }
}

/// The OpenLineage entities of `kind` in `tenant` whose properties match `filters`
/// (`path = value`), that the caller may read.
async fn list(
    state: &HttpState,
    who: &Authorized,
    tenant: &TenantId,
    kind: Kind,
    filters: &[(&str, &str)],
) -> Result<Vec<Found>, ApiError> {
    if !who.may(Action::Read, tenant) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = v1::ListEntitiesRequest {
            tenant: tenant.to_string(),
            kind: kind.as_str().to_owned(),
            tags: vec![names::TAG.to_owned()],
            property_filters: filters
                .iter()
                .map(|(path, value)| v1::PropertyFilter {
                    path: (*path).to_owned(),
                    op: v1::property_filter::Op::Eq as i32,
                    value_json: json!(value).to_string(),
                })
                .collect(),
            page_size: 1000,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let reply = state.catalog(who, tenant, request, |mut c, r| async move { c.list_entities(r).await }).await?;
        out.extend(reply.entities.into_iter().map(Found::of).filter(|f| f.ol().is_object()));
        if reply.next_page_token.is_empty() || out.len() >= MAX_LISTED {
            return Ok(out);
        }
        page_token = reply.next_page_token;
    }
}

/// The entities of `urns` the caller may read (others are skipped), by URN.
async fn get_many(state: &HttpState, who: &Authorized, urns: &[String]) -> Result<HashMap<String, Found>, ApiError> {
    let readable: Vec<String> = urns
        .iter()
        .filter(|u| u.parse::<EntityUrn>().is_ok_and(|u| who.visibility(&u) == Visibility::Full))
        .cloned()
        .collect();
    let mut out = HashMap::new();
    for chunk in readable.chunks(BATCH_GET) {
        let request = v1::BatchGetEntitiesRequest { urns: chunk.to_vec(), ..Default::default() };
        let reply = state.api.batch_get_entities(as_router(who, request)).await?.into_inner();
        for e in reply.entities {
            out.insert(e.urn.clone(), Found::of(e));
        }
    }
    Ok(out)
}

/// Dataset `key`, wherever it lives: first in the tenant its namespace maps to, then in every
/// tenant the caller may read; as a dataset or as a model.
async fn find_dataset(state: &HttpState, who: &Authorized, key: &DatasetKey) -> Result<Option<Found>, ApiError> {
    let mut tenants = Vec::new();
    if let Some(t) = state.namespaces.dataset_owner(&key.namespace, &state.groups) {
        tenants.push(t);
    }
    for t in readable_tenants(state, who) {
        if !tenants.contains(&t) {
            tenants.push(t);
        }
    }
    for t in tenants {
        for kind in [Kind::Dataset, Kind::Model] {
            let Ok(urn) = names::dataset_urn(&t, kind, &key.namespace, &key.name) else { continue };
            if let Some(found) = get(state, who, &urn).await? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// Job `key`, in the tenant its namespace belongs to.
async fn find_job(state: &HttpState, who: &Authorized, key: &JobKey) -> Result<Option<Found>, ApiError> {
    let Some(tenant) = state.namespaces.job_tenant(&key.namespace, &state.groups) else { return Ok(None) };
    let Ok(urn) = names::job_urn(&tenant, &key.namespace, &key.name) else { return Ok(None) };
    get(state, who, &urn).await
}

/// Run `id`, in whichever tenant the caller may read holds it.
async fn find_run(state: &HttpState, who: &Authorized, id: &str) -> Result<Option<Found>, ApiError> {
    let id = id.to_ascii_lowercase();
    for t in readable_tenants(state, who) {
        let Ok(urn) = names::run_urn(&t, &id) else { continue };
        if let Some(found) = get(state, who, &urn).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Marquez's JSON shapes.

/// Milliseconds as Marquez prints instants (ISO 8601, UTC).
fn iso(ms: i64) -> Value {
    match time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) {
        Ok(t) => t.format(&time::format_description::well_known::Rfc3339).map(Value::String).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fn iso_opt(v: &Value) -> Value {
    v.as_i64().map(iso).unwrap_or(Value::Null)
}

/// A stable UUID-shaped version id of an entity version (Marquez versions are UUIDs).
fn version_id(urn: &str, version: u64) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{urn}@{version}").as_bytes());
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

fn dataset_json(f: &Found) -> Value {
    let ol = f.ol();
    let e = &f.entity;
    let facets = ol.get("facets").cloned().unwrap_or_else(|| json!({}));
    let fields: Vec<Value> = ol["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|fd| json!({"name": fd["name"], "type": fd["type"], "tags": [], "description": fd["description"]}))
        .collect();
    json!({
        "id": {"namespace": ol["namespace"], "name": ol["name"]},
        "type": if e.kind == "model" { "MODEL" } else { "DB_TABLE" },
        "name": ol["name"],
        "physicalName": ol["name"],
        "createdAt": iso(e.created_at_ms),
        "updatedAt": iso(e.updated_at_ms),
        "namespace": ol["namespace"],
        "sourceName": facets["dataSource"]["name"].as_str().unwrap_or("default"),
        "fields": fields,
        "tags": [],
        "lastModifiedAt": if ol["producedBy"].is_string() { iso(e.updated_at_ms) } else { Value::Null },
        "lastLifecycleState": facets["lifecycleStateChange"]["lifecycleStateChange"],
        "description": if e.description.is_empty() { Value::Null } else { json!(e.description) },
        "currentVersion": version_id(&e.urn, e.version),
        "columnLineage": Value::Null,
        "facets": facets,
        "deleted": false,
        "tenant": e.tenant,
        "urn": e.urn,
    })
}

fn dataset_version_json(f: &Found) -> Value {
    let mut v = dataset_json(f);
    let ol = f.ol();
    v["version"] = json!(version_id(&f.entity.urn, f.entity.version));
    v["createdAt"] = iso(f.entity.updated_at_ms);
    v["lifecycleState"] = v["lastLifecycleState"].clone();
    v["createdByRun"] = match ol["producedBy"].as_str() {
        Some(run) => json!({"id": run}),
        None => Value::Null,
    };
    v
}

/// A run summary as a job's `latestRun` holds it.
fn run_summary_json(run: &Value, job: &Value) -> Value {
    if !run.is_object() {
        return Value::Null;
    }
    let started = run["startedAt"].as_i64();
    let ended = run["endedAt"].as_i64();
    json!({
        "id": run["id"],
        "createdAt": iso_opt(&run["transitionedAt"]),
        "updatedAt": iso_opt(&run["transitionedAt"]),
        "state": run["state"],
        "startedAt": iso_opt(&run["startedAt"]),
        "endedAt": iso_opt(&run["endedAt"]),
        "durationMs": match (started, ended) { (Some(s), Some(e)) => json!(e - s), _ => Value::Null },
        "jobVersion": {"namespace": job["namespace"], "name": job["name"]},
    })
}

fn job_json(f: &Found) -> Value {
    let ol = f.ol();
    let e = &f.entity;
    let facets = ol.get("facets").cloned().unwrap_or_else(|| json!({}));
    let io = |list: &Value| -> Vec<Value> {
        list.as_array().into_iter().flatten().map(|k| json!({"namespace": k["namespace"], "name": k["name"]})).collect()
    };
    let job_key = json!({"namespace": ol["namespace"], "name": ol["name"]});
    // A child job (its runs have a parent facet) is named `<parent>.<child>`, as in Marquez.
    let name = ol["name"].as_str().unwrap_or_default();
    let parent = ol["parentJob"]["name"].as_str().filter(|p| name.starts_with(&format!("{p}.")));
    json!({
        "id": job_key,
        "type": facets["jobType"]["processingType"].as_str().unwrap_or("BATCH"),
        "name": ol["name"],
        "simpleName": parent.map_or(name, |p| &name[p.len() + 1..]),
        "parentJobName": parent,
        "createdAt": iso(e.created_at_ms),
        "updatedAt": iso(e.updated_at_ms),
        "namespace": ol["namespace"],
        "inputs": io(&ol["inputs"]),
        "outputs": io(&ol["outputs"]),
        "location": facets["sourceCodeLocation"]["url"],
        "description": if e.description.is_empty() { Value::Null } else { json!(e.description) },
        "latestRun": run_summary_json(&ol["latestRun"], &job_key),
        "facets": facets,
        "currentVersion": version_id(&e.urn, e.version),
        "labels": [],
        "tags": [],
        "tenant": e.tenant,
        "urn": e.urn,
    })
}

fn run_json(f: &Found) -> Value {
    let ol = f.ol();
    let e = &f.entity;
    let facets = ol.get("facets").cloned().unwrap_or_else(|| json!({}));
    let started = ol["startedAt"].as_i64();
    let ended = ol["endedAt"].as_i64();
    let versions = |list: &Value| -> Vec<Value> {
        list.as_array().into_iter().flatten().map(|k| json!({"namespace": k["namespace"], "name": k["name"]})).collect()
    };
    json!({
        "id": ol["runId"],
        "createdAt": iso(e.created_at_ms),
        "updatedAt": iso(e.updated_at_ms),
        "nominalStartTime": facets["nominalTime"]["nominalStartTime"],
        "nominalEndTime": facets["nominalTime"]["nominalEndTime"],
        "state": ol["state"],
        "startedAt": iso_opt(&ol["startedAt"]),
        "endedAt": iso_opt(&ol["endedAt"]),
        "durationMs": match (started, ended) { (Some(s), Some(e)) => json!(e - s), _ => Value::Null },
        "args": {},
        "jobVersion": {"namespace": ol["job"]["namespace"], "name": ol["job"]["name"]},
        "inputDatasetVersions": versions(&ol["inputs"]),
        "outputDatasetVersions": versions(&ol["outputs"]),
        "context": {},
        "facets": facets,
        "parentRun": ol["parent"],
        "tenant": e.tenant,
        "urn": e.urn,
    })
}
