//! Lineage graphs: Marquez's job/dataset graph, column lineage, and the mesh's own walk.

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::http) struct LineageQuery {
    node_id: Option<String>,
    depth: Option<u32>,
    /// `true`/`false` in any case (Python clients send `False`).
    with_downstream: Option<String>,
}

impl LineageQuery {
    fn with_downstream(&self) -> Result<bool, ApiError> {
        match self.with_downstream.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!("withDownstream: `{other}` is not true or false"))),
        }
    }
}

/// The URN a Marquez node id starts from.
async fn start_urn(state: &HttpState, who: &Authorized, node: &NodeId) -> Result<EntityUrn, ApiError> {
    let missing = || ApiError::not_found(format!("node `{node}` not found"));
    let found = match node {
        NodeId::Dataset(key) | NodeId::DatasetField { dataset: key, .. } => find_dataset(state, who, key).await?,
        NodeId::Job(key) => find_job(state, who, key).await?,
        NodeId::Run(id) => {
            let run = find_run(state, who, id).await?.ok_or_else(missing)?;
            let job = JobKey {
                namespace: run.ol()["job"]["namespace"].as_str().unwrap_or_default().to_owned(),
                name: run.ol()["job"]["name"].as_str().unwrap_or_default().to_owned(),
            };
            find_job(state, who, &job).await?
        }
        other => return Err(ApiError::bad_request(format!("nodeId: `{other}` names a version"))),
    };
    let found = found.ok_or_else(missing)?;
    found.entity.urn.parse().map_err(|e| ApiError::bad_request(format!("{e}")))
}

fn node_id_of(query: &LineageQuery) -> Result<NodeId, ApiError> {
    let text = query.node_id.as_deref().ok_or_else(|| ApiError::bad_request("nodeId: missing"))?;
    // Versions are not kept apart in the graph: a versioned id names its node.
    NodeId::parse(text).map(|n| n.without_version()).map_err(|e| ApiError::bad_request(format!("nodeId: {e}")))
}

/// The Marquez id of an entity of the graph (OpenLineage names when it was made from events).
fn marquez_id(kind: &str, name: &str, urn: &str) -> (String, &'static str) {
    let ty = if kind == "job" || kind == "run" { "JOB" } else { "DATASET" };
    match names::parse_key_name(name) {
        Some((ns, n)) => (format!("{}:{ns}:{n}", ty.to_ascii_lowercase()), ty),
        None => (format!("{}:{urn}", ty.to_ascii_lowercase()), ty),
    }
}

/// `GET /api/v1/lineage?nodeId=…&depth=…`: Marquez's job/dataset graph around a node, across
/// tenants; `depth` counts jobs away from the start, as in Marquez.
pub(in crate::http) async fn lineage(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(query): Query<LineageQuery>,
) -> Answer {
    let node = node_id_of(&query)?;
    let depth = query.depth.unwrap_or(DEFAULT_DEPTH);
    if depth > 24 {
        return Err(ApiError::bad_request(format!("depth: {depth} is over the maximum of 24")));
    }
    let found = start_urn(&state, &who, &node).await?;
    // Marquez walks jobs: from a dataset it starts at the job that last wrote it (else the
    // last that read it); a dataset no job reads or writes is the whole answer.
    let start = if found.kind() == Kind::Job { Some(found.clone()) } else { start_job(&state, &who, &found).await? };
    let Some(start) = start else {
        let entities = get_many(&state, &who, &[found.to_string()]).await?;
        let f =
            entities.get(&found.to_string()).ok_or_else(|| ApiError::not_found(format!("node `{node}` not found")))?;
        let (id, ty) = marquez_id(&f.entity.kind, &f.entity.name, &f.entity.urn);
        let node = json!({"id": id, "type": ty, "data": dataset_json(f), "tenant": f.entity.tenant, "inEdges": [], "outEdges": []});
        return Ok(Json(json!({"graph": [node], "partial": false, "partialReasons": [], "hiddenNodes": 0})));
    };
    // Jobs sharing a dataset are one step apart: two edges. The datasets of the last jobs
    // reached are in the answer, one edge further.
    let hops = 2 * depth + 1;
    let request = v1::ExpandRequest {
        urns: vec![start.to_string()],
        direction: v1::Direction::Both as i32,
        max_depth: hops.clamp(1, 50),
        max_nodes: 5_000,
        kinds: vec!["consumed".into(), "produced".into()],
        ..Default::default()
    };
    let reply = state.api.expand(as_router(&who, request)).await?.into_inner();
    let urns: Vec<String> = reply.nodes.iter().filter(|n| !n.placeholder).map(|n| n.urn.clone()).collect();
    let entities = get_many(&state, &who, &urns).await?;
    // Node ids: OpenLineage names for readable nodes, opaque ids for placeholders.
    let mut ids: HashMap<String, (String, &'static str)> = HashMap::new();
    let mut graph: BTreeMap<String, Value> = BTreeMap::new();
    let mut hidden = 0usize;
    for n in &reply.nodes {
        if n.placeholder {
            hidden += 1;
            let ty = if n.kind == "job" || n.kind == "run" { "JOB" } else { "DATASET" };
            let id = format!("hidden:{}:{}:{hidden}", n.tenant, n.kind);
            graph.insert(
                id.clone(),
                json!({"id": id, "type": ty, "data": Value::Null, "placeholder": true, "tenant": n.tenant,
                       "kind": n.kind, "inEdges": [], "outEdges": []}),
            );
            ids.insert(n.urn.clone(), (id, ty));
            continue;
        }
        let (id, ty) = marquez_id(&n.kind, &n.name, &n.urn);
        let data = match entities.get(&n.urn) {
            Some(f) if f.ol().is_object() && ty == "JOB" => job_json(f),
            Some(f) if f.ol().is_object() => dataset_json(f),
            _ => json!({"urn": n.urn, "tenant": n.tenant, "kind": n.kind, "name": n.name}),
        };
        graph.insert(
            id.clone(),
            json!({"id": id, "type": ty, "data": data, "tenant": n.tenant, "inEdges": [], "outEdges": []}),
        );
        ids.insert(n.urn.clone(), (id, ty));
    }
    let mut seen = BTreeSet::new();
    for e in &reply.edges {
        let (Some((from, _)), Some((to, _))) = (ids.get(&e.from_urn), ids.get(&e.to_urn)) else { continue };
        if !seen.insert((from.clone(), to.clone())) {
            continue;
        }
        let edge = json!({"origin": from, "destination": to});
        if let Some(n) = graph.get_mut(from) {
            n["outEdges"].as_array_mut().expect("an array").push(edge.clone());
        }
        if let Some(n) = graph.get_mut(to) {
            n["inEdges"].as_array_mut().expect("an array").push(edge);
        }
    }
    let reasons: Vec<Value> =
        reply.partial_reasons.iter().map(|r| json!({"code": r.code, "detail": r.detail, "shard": r.shard})).collect();
    Ok(Json(json!({
        "graph": graph.into_values().collect::<Vec<_>>(),
        "partial": reply.partial || hidden > 0,
        "partialReasons": reasons,
        "hiddenNodes": hidden,
    })))
}

/// The job a dataset's lineage starts from, as Marquez chooses it: the most recently updated
/// job writing it, else the most recently updated job reading it; none when no job does.
async fn start_job(state: &HttpState, who: &Authorized, dataset: &EntityUrn) -> Result<Option<EntityUrn>, ApiError> {
    let request = v1::GetEdgesRequest {
        urns: vec![dataset.to_string()],
        direction: v1::Direction::Both as i32,
        kinds: vec!["consumed".into(), "produced".into()],
        ..Default::default()
    };
    let reply = state.api.get_edges(as_router(who, request)).await?.into_inner();
    let (mut writers, mut readers) = (Vec::new(), Vec::new());
    for e in &reply.edges {
        let (job, list) =
            if e.to_urn == dataset.to_string() { (&e.from_urn, &mut writers) } else { (&e.to_urn, &mut readers) };
        if job.parse::<EntityUrn>().is_ok_and(|u| u.kind() == Kind::Job && who.sees(&u)) && !list.contains(job) {
            list.push(job.clone());
        }
    }
    for list in [writers, readers] {
        if list.is_empty() {
            continue;
        }
        let found = get_many(state, who, &list).await?;
        // The newest readable one; a job the caller may only discover still starts the walk.
        let newest = found.values().max_by_key(|f| (f.entity.updated_at_ms, f.entity.urn.clone()));
        let urn = match newest {
            Some(f) => f.entity.urn.clone(),
            None => list.iter().min().cloned().expect("not empty"),
        };
        return Ok(Some(urn.parse().map_err(|e| ApiError::bad_request(format!("{e}")))?));
    }
    Ok(None)
}

/// `GET /api/v1/column-lineage?nodeId=dataset:…|datasetField:…&depth=…&withDownstream=…`:
/// the `column` edges around a dataset's fields, upstream (and downstream if asked).
pub(in crate::http) async fn column_lineage(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(query): Query<LineageQuery>,
) -> Answer {
    let node = node_id_of(&query)?;
    let only_field = match &node {
        NodeId::DatasetField { field, .. } => Some(field.clone()),
        NodeId::Dataset(_) => None,
        _ => return Err(ApiError::bad_request("nodeId: column lineage starts from a dataset or a dataset field")),
    };
    let depth = query.depth.unwrap_or(DEFAULT_DEPTH).min(50);
    let start = start_urn(&state, &who, &node).await?;
    let mut edges: Vec<v1::Edge> = Vec::new();
    let mut frontier = vec![start.to_string()];
    let mut visited: BTreeSet<String> = frontier.iter().cloned().collect();
    let directions: &[v1::Direction] = if query.with_downstream()? {
        &[v1::Direction::Upstream, v1::Direction::Downstream]
    } else {
        &[v1::Direction::Upstream]
    };
    for _ in 0..depth {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for direction in directions {
            let urns: Vec<String> =
                frontier.iter().filter(|u| who.sees(&u.parse().expect("checked urn"))).cloned().collect();
            if urns.is_empty() {
                continue;
            }
            let request = v1::GetEdgesRequest {
                urns,
                direction: *direction as i32,
                kinds: vec!["column".into()],
                ..Default::default()
            };
            let reply = state.api.get_edges(as_router(&who, request)).await?.into_inner();
            for e in reply.edges {
                for end in [&e.from_urn, &e.to_urn] {
                    if visited.insert(end.clone()) {
                        next.push(end.clone());
                    }
                }
                if !edges.iter().any(|x| x == &e) {
                    edges.push(e);
                }
            }
        }
        frontier = next;
    }
    let urns: Vec<String> = visited.iter().cloned().collect();
    let entities = get_many(&state, &who, &urns).await?;
    let key_of = |urn: &str| -> Option<(String, String)> {
        let f = entities.get(urn)?;
        Some((f.ol()["namespace"].as_str()?.to_owned(), f.ol()["name"].as_str()?.to_owned()))
    };
    let field_type = |urn: &str, field: &str| -> Value {
        entities
            .get(urn)
            .and_then(|f| f.ol()["fields"].as_array().and_then(|l| l.iter().find(|x| x["name"] == field).cloned()))
            .map(|x| x["type"].clone())
            .unwrap_or(Value::Null)
    };
    let mut graph: BTreeMap<String, Value> = BTreeMap::new();
    let node_of = |urn: &str, field: &str, graph: &mut BTreeMap<String, Value>| -> Option<String> {
        let (ns, name) = key_of(urn)?;
        let id = format!("datasetField:{ns}:{name}:{field}");
        graph.entry(id.clone()).or_insert_with(|| {
            json!({"id": id, "type": "DATASET_FIELD",
                   "data": {"namespace": ns, "dataset": name, "field": field, "fieldType": field_type(urn, field),
                            "inputFields": []},
                   "inEdges": [], "outEdges": []})
        });
        Some(id)
    };
    for e in &edges {
        let (Some(from), Some(to)) =
            (node_of(&e.from_urn, &e.from_column, &mut graph), node_of(&e.to_urn, &e.to_column, &mut graph))
        else {
            continue;
        };
        let edge = json!({"origin": from, "destination": to});
        let input = {
            let d = &graph[&from]["data"];
            let (description, kind) = transformation(
                entities.get(&e.to_urn),
                &e.to_column,
                d["namespace"].as_str().unwrap_or_default(),
                d["dataset"].as_str().unwrap_or_default(),
                &e.from_column,
            );
            json!({"namespace": d["namespace"], "dataset": d["dataset"], "field": d["field"],
                   "transformationDescription": description, "transformationType": kind})
        };
        let target = graph.get_mut(&to).expect("inserted above");
        target["inEdges"].as_array_mut().expect("an array").push(edge.clone());
        target["data"]["inputFields"].as_array_mut().expect("an array").push(input);
        graph.get_mut(&from).expect("inserted above")["outEdges"].as_array_mut().expect("an array").push(edge);
    }
    if let Some(field) = only_field {
        // Keep the field's own subgraph: what reaches it and what it reaches.
        let start_id = match &node {
            NodeId::DatasetField { dataset, .. } => {
                format!("datasetField:{}:{}:{field}", dataset.namespace, dataset.name)
            }
            _ => unreachable!("only a field id sets only_field"),
        };
        let mut keep = BTreeSet::from([start_id.clone()]);
        let mut todo = vec![start_id];
        while let Some(id) = todo.pop() {
            let Some(n) = graph.get(&id) else { continue };
            for e in n["inEdges"].as_array().into_iter().flatten().chain(n["outEdges"].as_array().into_iter().flatten())
            {
                for end in [e["origin"].as_str(), e["destination"].as_str()].into_iter().flatten() {
                    if keep.insert(end.to_owned()) {
                        todo.push(end.to_owned());
                    }
                }
            }
        }
        graph.retain(|id, _| keep.contains(id));
    }
    Ok(Json(json!({"graph": graph.into_values().collect::<Vec<_>>()})))
}

/// How output field `field` of `output` was computed from input `(ns, name, input_field)`, as
/// its `columnLineage` facet says: `inputFields[].transformationDescription`/`…Type` (spec
/// 1-0-x), the newer `inputFields[].transformations[0]`, or the output field's own.
fn transformation(output: Option<&Found>, field: &str, ns: &str, name: &str, input_field: &str) -> (Value, Value) {
    let Some(out) = output.map(|f| &f.ol()["facets"]["columnLineage"]["fields"][field]) else {
        return (Value::Null, Value::Null);
    };
    let input = out["inputFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["namespace"] == ns && i["name"] == name && i["field"] == input_field);
    let pick = |v: &Value, key: &str| if v[key].is_null() { None } else { Some(v[key].clone()) };
    let from_input = input.and_then(|i| {
        let t = &i["transformations"][0];
        Some((
            pick(i, "transformationDescription").or_else(|| pick(t, "description"))?,
            pick(i, "transformationType").or_else(|| pick(t, "type")).unwrap_or(Value::Null),
        ))
    });
    from_input.unwrap_or_else(|| {
        (
            pick(out, "transformationDescription").unwrap_or(Value::Null),
            pick(out, "transformationType").unwrap_or(Value::Null),
        )
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(in crate::http) struct MeshLineageQuery {
    urn: Option<String>,
    node_id: Option<String>,
    direction: Option<String>,
    depth: Option<u32>,
    max_nodes: Option<u32>,
    as_of_ms: Option<i64>,
    kinds: Option<String>,
}

/// `GET /api/mesh/v1/lineage?urn=…|nodeId=…&direction=upstream|downstream|both&depth=&maxNodes=&asOfMs=&kinds=`:
/// the mesh's own lineage walk as JSON — entity nodes (runs, models, deployments too), typed
/// edges, a direction, the graph as of a time, and `partial` with its reasons. Nodes the
/// caller may not read are placeholders (kind and tenant); the same filter as the gRPC
/// `LineageService.Expand`, which this is.
pub(in crate::http) async fn mesh_lineage(
    State(state): State<Arc<HttpState>>,
    Who(who): Who,
    Query(query): Query<MeshLineageQuery>,
) -> Answer {
    let start: EntityUrn = match (&query.urn, &query.node_id) {
        (Some(urn), None) => urn.parse().map_err(|e| ApiError::bad_request(format!("urn: {e}")))?,
        (None, Some(_)) => {
            let node = node_id_of(&LineageQuery { node_id: query.node_id.clone(), ..Default::default() })?;
            start_urn(&state, &who, &node).await?
        }
        _ => return Err(ApiError::bad_request("urn: give exactly one of urn and nodeId")),
    };
    if !who.sees(&start) {
        return Err(ApiError::not_found(format!("`{start}` not found")));
    }
    let direction = match query.direction.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("both") => v1::Direction::Both,
        Some("upstream") => v1::Direction::Upstream,
        Some("downstream") => v1::Direction::Downstream,
        Some(other) => {
            return Err(ApiError::bad_request(format!("direction: `{other}` is not upstream, downstream or both")))
        }
    };
    let kinds: Vec<String> = query
        .kinds
        .as_deref()
        .map(|k| k.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let request = v1::ExpandRequest {
        urns: vec![start.to_string()],
        direction: direction as i32,
        max_depth: query.depth.unwrap_or(0),
        max_nodes: query.max_nodes.unwrap_or(0),
        kinds,
        as_of: query.as_of_ms.map(|ms| v1::AsOf { point: Some(v1::as_of::Point::TimeMs(ms)) }),
        ..Default::default()
    };
    let reply = state.api.expand(as_router(&who, request)).await?.into_inner();
    let nodes: Vec<Value> = reply.nodes.iter().map(|n| super::super::mesh::node_json(&state, n)).collect();
    // Placeholders are opaque: their edges name them by their id and by position, not by URN.
    let hidden: HashMap<&str, (usize, &Value)> = reply
        .nodes
        .iter()
        .zip(&nodes)
        .enumerate()
        .filter(|(_, (n, _))| n.placeholder)
        .map(|(i, (n, shown))| (n.urn.as_str(), (i, &shown["id"])))
        .collect();
    let end = |urn: &str| match hidden.get(urn) {
        Some((i, _)) => json!({"placeholder": i}),
        None => json!(urn),
    };
    let id = |urn: &str| match hidden.get(urn) {
        Some((_, id)) => (*id).clone(),
        None => json!(urn),
    };
    let edges: Vec<Value> = reply
        .edges
        .iter()
        .map(|e| {
            json!({"from": end(&e.from_urn), "to": end(&e.to_urn), "fromId": id(&e.from_urn), "toId": id(&e.to_urn),
                   "kind": e.kind, "fromColumn": e.from_column, "toColumn": e.to_column, "tenant": e.tenant})
        })
        .collect();
    let reasons: Vec<Value> =
        reply.partial_reasons.iter().map(|r| json!({"code": r.code, "detail": r.detail, "shard": r.shard})).collect();
    Ok(Json(json!({"start": start.to_string(), "nodes": nodes, "edges": edges, "partial": reply.partial,
                   "partialReasons": reasons})))
}
