//! Marquez's catalog reads: namespaces, datasets and their versions, jobs, runs, search, the
//! stored events.

use super::*;

// ---------------------------------------------------------------------------------------------
// Handlers.

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::http) struct Paging {
    limit: Option<usize>,
    offset: Option<usize>,
}

impl Paging {
    fn apply(&self, mut items: Vec<Value>) -> Value {
        let total = items.len();
        let offset = self.offset.unwrap_or(0).min(total);
        let limit = self.limit.unwrap_or(100);
        items.drain(..offset);
        items.truncate(limit);
        json!({"totalCount": total, "items": items})
    }
}

fn paged(paging: &Paging, key: &str, items: Vec<Value>) -> Json<Value> {
    let mut v = paging.apply(items);
    let items = v["items"].take();
    let obj = v.as_object_mut().expect("an object");
    obj.remove("items");
    obj.insert(key.to_owned(), items);
    Json(v)
}

/// Every namespace (of jobs and datasets) with something the caller may read.
async fn all_namespaces(state: &HttpState, who: &Authorized) -> Result<BTreeMap<String, Value>, ApiError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for t in readable_tenants(state, who) {
        for kind in [Kind::Job, Kind::Dataset, Kind::Model] {
            for f in list(state, who, &t, kind, &[]).await? {
                let Some(ns) = f.ol()["namespace"].as_str() else { continue };
                let (created, updated) = (f.entity.created_at_ms, f.entity.updated_at_ms);
                let entry = out.entry(ns.to_owned()).or_insert_with(|| {
                    json!({"name": ns, "createdAt": created, "updatedAt": updated, "ownerName": t.as_str(),
                           "description": Value::Null, "isHidden": false})
                });
                if entry["createdAt"].as_i64().is_some_and(|c| created < c) {
                    entry["createdAt"] = json!(created);
                }
                if entry["updatedAt"].as_i64().is_some_and(|u| updated > u) {
                    entry["updatedAt"] = json!(updated);
                }
            }
        }
    }
    for v in out.values_mut() {
        v["createdAt"] = iso_opt(&v["createdAt"]);
        v["updatedAt"] = iso_opt(&v["updatedAt"]);
    }
    Ok(out)
}

pub(in crate::http) async fn namespaces(State(state): State<Arc<HttpState>>, Who(who): Who) -> Answer {
    let all = all_namespaces(&state, &who).await?;
    Ok(Json(json!({"namespaces": all.into_values().collect::<Vec<_>>()})))
}

pub(in crate::http) async fn namespace(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path(ns): Path<String>,
) -> Answer {
    let mut all = all_namespaces(&state, &who).await?;
    all.remove(&ns).map(Json).ok_or_else(|| ApiError::not_found(format!("namespace `{ns}` not found")))
}

/// The datasets of namespace `ns` the caller may read, in every tenant.
async fn datasets_of(state: &HttpState, who: &Authorized, ns: &str) -> Result<Vec<Found>, ApiError> {
    let mut out = Vec::new();
    for t in readable_tenants(state, who) {
        for kind in [Kind::Dataset, Kind::Model] {
            out.extend(list(state, who, &t, kind, &[("openlineage.namespace", ns)]).await?);
        }
    }
    out.sort_by(|a, b| a.ol()["name"].as_str().cmp(&b.ol()["name"].as_str()));
    Ok(out)
}

pub(in crate::http) async fn datasets(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path(ns): Path<String>,
    Query(paging): Query<Paging>,
) -> Answer {
    let found = datasets_of(&state, &who, &ns).await?;
    Ok(paged(&paging, "datasets", found.iter().map(dataset_json).collect()))
}

pub(in crate::http) async fn dataset(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path((ns, name)): Path<(String, String)>,
) -> Answer {
    let key = DatasetKey { namespace: ns, name };
    let found = find_dataset(&state, &who, &key).await?;
    found.map(|f| Json(dataset_json(&f))).ok_or_else(|| {
        ApiError::not_found(format!("dataset `{}` not found in namespace `{}`", key.name, key.namespace))
    })
}

pub(in crate::http) async fn dataset_versions(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path((ns, name)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> Answer {
    let key = DatasetKey { namespace: ns, name };
    let found = find_dataset(&state, &who, &key).await?.ok_or_else(|| {
        ApiError::not_found(format!("dataset `{}` not found in namespace `{}`", key.name, key.namespace))
    })?;
    let urn: EntityUrn = found.entity.urn.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let request = v1::ListVersionsRequest { urn: urn.to_string(), page_size: 1000, ..Default::default() };
    let reply = state.catalog(&who, urn.tenant(), request, |mut c, r| async move { c.list_versions(r).await }).await?;
    // Marquez's versions are what a run wrote (or a first read or dataset event described): the
    // bare version made when a run named an output before completing is not one. ListVersions
    // answers newest first, as Marquez lists them.
    let versions: Vec<Value> = reply
        .versions
        .into_iter()
        .map(Found::of)
        .filter(|f| f.ol()["producedBy"].is_string() || f.ol()["facets"].as_object().is_some_and(|m| !m.is_empty()))
        .map(|f| dataset_version_json(&f))
        .collect();
    Ok(paged(&paging, "versions", versions))
}

pub(in crate::http) async fn jobs(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path(ns): Path<String>,
    Query(paging): Query<Paging>,
) -> Answer {
    let mut found = Vec::new();
    if let Some(t) = state.namespaces.job_tenant(&ns, &state.groups) {
        found = list(&state, &who, &t, Kind::Job, &[("openlineage.namespace", &ns)]).await?;
    }
    found.sort_by(|a, b| a.ol()["name"].as_str().cmp(&b.ol()["name"].as_str()));
    Ok(paged(&paging, "jobs", found.iter().map(job_json).collect()))
}

pub(in crate::http) async fn job(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path((ns, name)): Path<(String, String)>,
) -> Answer {
    let key = JobKey { namespace: ns, name };
    find_job(&state, &who, &key)
        .await?
        .map(|f| Json(job_json(&f)))
        .ok_or_else(|| ApiError::not_found(format!("job `{}` not found in namespace `{}`", key.name, key.namespace)))
}

pub(in crate::http) async fn job_runs(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Path((ns, name)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> Answer {
    let key = JobKey { namespace: ns, name };
    if find_job(&state, &who, &key).await?.is_none() {
        return Err(ApiError::not_found(format!("job `{}` not found in namespace `{}`", key.name, key.namespace)));
    }
    let tenant = state.namespaces.job_tenant(&key.namespace, &state.groups).expect("the job was found");
    let mut runs = list(
        &state,
        &who,
        &tenant,
        Kind::Run,
        &[("openlineage.job.namespace", &key.namespace), ("openlineage.job.name", &key.name)],
    )
    .await?;
    // Newest first.
    runs.sort_by_key(|f| std::cmp::Reverse((f.entity.created_at_ms, f.entity.urn.clone())));
    Ok(paged(&paging, "runs", runs.iter().map(run_json).collect()))
}

pub(in crate::http) async fn run(State(state): State<Arc<HttpState>>, Who(who): Who, Path(id): Path<String>) -> Answer {
    find_run(&state, &who, &id)
        .await?
        .map(|f| Json(run_json(&f)))
        .ok_or_else(|| ApiError::not_found(format!("run `{id}` not found")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::http) struct SearchQuery {
    q: Option<String>,
    filter: Option<String>,
    sort: Option<String>,
    limit: Option<u32>,
    namespace: Option<String>,
}

/// `GET /api/v1/search?q=…&filter=DATASET|JOB&sort=NAME|UPDATE_AT&limit=…`.
pub(in crate::http) async fn search(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(query): Query<SearchQuery>,
) -> Answer {
    let kinds: Vec<String> = match query.filter.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("") => vec!["job".into(), "dataset".into(), "model".into()],
        Some("DATASET") => vec!["dataset".into(), "model".into()],
        Some("JOB") => vec!["job".into()],
        Some(other) => return Err(ApiError::bad_request(format!("filter: `{other}` is not DATASET or JOB"))),
    };
    let limit = query.limit.unwrap_or(10).clamp(1, 100);
    let request = v1::SearchRequest {
        query: query.q.clone().unwrap_or_default(),
        kinds,
        tags: vec![names::TAG.to_owned()],
        page_size: 100,
        ..Default::default()
    };
    let reply = state.api.search(as_router(&who, request)).await?.into_inner();
    let mut results = Vec::new();
    for hit in reply.hits {
        let Some(e) = hit.entity else { continue };
        let Some((ns, name)) = names::parse_key_name(&e.name) else { continue };
        if query.namespace.as_deref().is_some_and(|want| want != ns) {
            continue;
        }
        let ty = if e.kind == "job" { "JOB" } else { "DATASET" };
        results.push(json!({
            "type": ty,
            "name": name,
            "updatedAt": iso(e.updated_at_ms),
            "namespace": ns,
            "nodeId": format!("{}:{ns}:{name}", ty.to_ascii_lowercase()),
            "tenant": e.tenant,
            "updatedAtMs": e.updated_at_ms,
        }));
    }
    match query.sort.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("NAME") => results.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str())),
        Some("UPDATE_AT") => results.sort_by_key(|r| std::cmp::Reverse(r["updatedAtMs"].as_i64())),
        Some(other) => return Err(ApiError::bad_request(format!("sort: `{other}` is not NAME or UPDATE_AT"))),
    }
    results.truncate(limit as usize);
    for r in &mut results {
        r.as_object_mut().expect("an object").remove("updatedAtMs");
    }
    Ok(Json(json!({"totalCount": results.len(), "results": results})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::http) struct EventsQuery {
    before: Option<String>,
    after: Option<String>,
    sort_direction: Option<String>,
    limit: Option<u32>,
}

fn instant(field: &str, text: &Option<String>) -> Result<i64, ApiError> {
    match text.as_deref() {
        None | Some("") => Ok(0),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| ApiError::bad_request(format!("{field}: `{t}` is not an ISO 8601 instant: {e}"))),
    }
}

/// `GET /api/v1/events/lineage?before=…&after=…&sortDirection=desc|asc&limit=…`: the stored
/// events of every tenant the caller may read, by event time.
pub(in crate::http) async fn events(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(query): Query<EventsQuery>,
) -> Answer {
    let (before_ms, after_ms) = (instant("before", &query.before)?, instant("after", &query.after)?);
    let descending = match query.sort_direction.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(ApiError::bad_request(format!("sortDirection: `{other}` is not asc or desc"))),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let mut all: Vec<(i64, Value)> = Vec::new();
    let mut total = 0u64;
    for t in readable_tenants(&state, &who) {
        state.require(&who, Action::Read, &Resource::Tenant(&t), t.as_str())?;
        let group = state.groups.of(&t)?;
        let request = v1::ListOpenLineageEventsRequest {
            tenant: t.to_string(),
            after_ms,
            before_ms,
            limit,
            descending,
            ..Default::default()
        };
        let reply = state
            .groups
            .call(group, |channel| {
                let request = on_behalf(&who, request.clone());
                async move { LineageServiceClient::new(channel).list_open_lineage_events(request).await }
            })
            .await?
            .into_inner();
        total += reply.total_count;
        for text in reply.events_json {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let at = metamesh_openlineage::parse(&value).map(|e| e.event_time_ms).unwrap_or(0);
            all.push((at, value));
        }
    }
    if descending {
        all.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    } else {
        all.sort_by_key(|(at, _)| *at);
    }
    all.truncate(limit as usize);
    Ok(Json(json!({"events": all.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "totalCount": total})))
}
