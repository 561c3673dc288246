//! LineageService: edge writes as one all-or-nothing batch, one-hop frontiers, and multi-hop
//! expansion over this shard's edges (the router stitches shards together).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use metamesh_core::command::edge_owner;
use metamesh_core::{AsOf, Command, Direction, Edge, EdgeSpec, EntityUrn, Outcome, Urn};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::lineage_service_server::LineageService;
use metamesh_store::read::MAX_PAGE;
use tonic::{Request, Response, Status};

use metamesh_policy::Visibility;

use crate::api::{authz, status, NodeApi};

/// Hops an expansion walks when the request says 0.
pub const DEFAULT_DEPTH: u32 = 5;
/// Most hops an expansion may ask for.
pub const MAX_DEPTH: u32 = 50;
/// Nodes an expansion returns when the request says 0.
pub const DEFAULT_NODES: u32 = 1_000;
/// Most nodes an expansion may ask for.
pub const MAX_NODES: u32 = 10_000;
/// Time budget of an expansion when the request says 0.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// Longest time budget an expansion gets, whatever it asks: a budget bounds server work.
pub const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// The edges of a request, checked, with the storing tenant it names (if any) enforced.
fn edges_of_request(tenant: &str, edges: &[v1::EdgeSpec]) -> Result<Vec<EdgeSpec>, Status> {
    if edges.is_empty() {
        return Err(status::invalid("edges", "must not be empty"));
    }
    let specs = convert::edge_specs(edges).map_err(status::refused)?;
    if !tenant.is_empty() {
        // Which end stores an edge is a rule of the domain (the run or job end, else the
        // downstream end), not a choice: a request naming another tenant is refused, not
        // silently stored elsewhere.
        let tenant = convert::tenant_id("tenant", tenant).map_err(status::refused)?;
        if let Some((i, owner)) = specs.iter().map(edge_owner).enumerate().find(|(_, owner)| **owner != tenant) {
            return Err(status::invalid(
                "tenant",
                format!("edges[{i}] is stored by tenant `{owner}` (its run or job end, else its downstream end), not `{tenant}`"),
            ));
        }
    }
    Ok(specs)
}

/// Whether a stored edge is the one `spec` asked for (an end without a version in the spec
/// matches any version).
fn is_stored_as(spec: &EdgeSpec, e: &Edge) -> bool {
    let end = |want: &Urn, got: &Urn| want.entity == got.entity && want.version.is_none_or(|v| got.version == Some(v));
    end(&spec.from, &e.from)
        && end(&spec.to, &e.to)
        && spec.kind == e.kind
        && spec.from_column == e.from_column
        && spec.to_column == e.to_column
}

/// Parses a frontier; an error names the element (`urns[2]`).
fn frontier(urns: &[String]) -> Result<Vec<Urn>, Status> {
    if urns.is_empty() {
        return Err(status::invalid("urns", "must name at least one urn"));
    }
    if urns.len() > MAX_PAGE {
        return Err(status::invalid("urns", format!("{} urns, over the maximum of {MAX_PAGE}", urns.len())));
    }
    urns.iter()
        .enumerate()
        .map(|(i, u)| convert::urn_at(&format!("urns[{i}]"), u))
        .collect::<Result<_, _>>()
        .map_err(status::refused)
}

/// A limit from a request: 0 is the default, above the maximum is refused.
fn limit(field: &str, requested: u32, default: u32, max: u32) -> Result<u32, Status> {
    match requested {
        0 => Ok(default),
        n if n <= max => Ok(n),
        n => Err(status::invalid(field, format!("{n} is over the maximum of {max}"))),
    }
}

#[tonic::async_trait]
impl LineageService for NodeApi {
    async fn add_edges(&self, request: Request<v1::AddEdgesRequest>) -> Result<Response<v1::AddEdgesReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let specs = edges_of_request(&r.tenant, &r.edges)?;
        let command = Command::Batch { commands: specs.iter().cloned().map(Command::AddEdge).collect() };
        let done = self.propose(&caller, &r.request_id, command).await?;
        // Read the stored edges back (their resolved versions, time and writer) as of the
        // write's revision: one frontier query for the whole batch.
        let mut froms: Vec<EntityUrn> = specs.iter().map(|s| s.from.entity.clone()).collect();
        froms.sort_by_key(|u| u.to_string());
        froms.dedup();
        let stored = self
            .local_store()
            .edges_of(&froms, Direction::Downstream, &[], Some(AsOf::Revision(done.revision)))
            .await
            .map_err(status::store)?;
        let mut edges = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            // Several live edges can match an end given without a version; the newest is the
            // one this request wrote or found.
            let found = stored.iter().filter(|e| is_stored_as(spec, e)).max_by_key(|e| e.revision);
            let found =
                found.ok_or_else(|| status::internal(&format!("edges[{i}] was added but cannot be read back")))?;
            edges.push(convert::edge_to_wire(found));
        }
        Ok(Response::new(v1::AddEdgesReply { edges, revision: done.revision }))
    }

    async fn remove_edges(
        &self,
        request: Request<v1::RemoveEdgesRequest>,
    ) -> Result<Response<v1::RemoveEdgesReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let specs = edges_of_request(&r.tenant, &r.edges)?;
        let command = Command::Batch { commands: specs.into_iter().map(Command::RemoveEdge).collect() };
        let done = self.propose(&caller, &r.request_id, command).await?;
        let Outcome::Batch { outcomes } = &done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of a batch", done.outcome)));
        };
        let removed = outcomes.iter().filter(|o| matches!(o, Outcome::Edge { changed: true })).count() as u64;
        Ok(Response::new(v1::RemoveEdgesReply { removed, revision: done.revision }))
    }

    async fn get_edges(&self, request: Request<v1::GetEdgesRequest>) -> Result<Response<v1::GetEdgesReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let urns = frontier(&r.urns)?;
        let direction = convert::direction(r.direction).map_err(status::refused)?;
        let kinds = convert::edge_kinds("kinds", &r.kinds).map_err(status::refused)?;
        let as_of = convert::as_of(r.as_of.as_ref());
        let store = self.store(r.consistency.as_ref()).await?;
        let read_revision = self.read_revision(&store, as_of).await?;
        let mut entities: Vec<EntityUrn> = urns.iter().map(|u| u.entity.clone()).collect();
        entities.sort_by_key(|u| u.to_string());
        entities.dedup();
        let mut edges = store.edges_of(&entities, direction, &kinds, as_of).await.map_err(status::store)?;
        if urns.iter().any(|u| u.version.is_some()) {
            edges.retain(|e| urns.iter().any(|u| touches(u, direction, e)));
        }
        // Neighbours the caller may not know of are left out, with their edges.
        edges.retain(|e| authorized.sees(&e.from.entity) && authorized.sees(&e.to.entity));
        Ok(Response::new(v1::GetEdgesReply {
            edges: edges.iter().map(convert::edge_to_wire).collect(),
            read_revision,
            partial: false,
            partial_reasons: Vec::new(),
        }))
    }

    async fn ingest_open_lineage(
        &self,
        request: Request<v1::IngestOpenLineageRequest>,
    ) -> Result<Response<v1::IngestOpenLineageReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("tenant", &r.tenant).map_err(status::refused)?;
        for (i, text) in r.events_json.iter().enumerate() {
            metamesh_openlineage::parse_bytes(text.as_bytes())
                .map_err(|e| status::invalid(&format!("events_json[{i}].{}", e.field), e.message))?;
        }
        let events = r.events_json;
        let mut foreign = Vec::with_capacity(r.foreign.len());
        for (i, f) in r.foreign.iter().enumerate() {
            let owner = convert::tenant_id(&format!("foreign[{i}].tenant"), &f.tenant).map_err(status::refused)?;
            // Reading another tenant's dataset into this tenant's lineage is a cross-tenant
            // edge: `link` on the dataset, as for AddEdges.
            let urn =
                metamesh_core::openlineage::dataset_urn(&owner, metamesh_core::Kind::Dataset, &f.namespace, &f.name)
                    .map_err(|e| status::invalid(&format!("foreign[{i}]"), e.to_string()))?;
            let check = authorized.policy.check(
                &authorized.caller.principal,
                metamesh_policy::Action::Link,
                &metamesh_policy::Resource::Entity(&urn),
            );
            if !check.allowed {
                return Err(Status::permission_denied(format!(
                    "`{}` may not link to datasets of tenant `{owner}` (input {}:{})",
                    authorized.caller.principal, f.namespace, f.name
                )));
            }
            foreign.push(metamesh_core::ForeignDataset {
                namespace: f.namespace.clone(),
                name: f.name.clone(),
                tenant: owner,
            });
        }
        let command = Command::OpenLineage { tenant, events, foreign };
        let done = self.propose(&authorized.caller, &r.request_id, command).await?;
        let Outcome::OpenLineage { stored } = done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of OpenLineage events", done.outcome)));
        };
        Ok(Response::new(v1::IngestOpenLineageReply { stored, revision: done.revision }))
    }

    async fn list_open_lineage_events(
        &self,
        request: Request<v1::ListOpenLineageEventsRequest>,
    ) -> Result<Response<v1::ListOpenLineageEventsReply>, Status> {
        let r = request.into_inner();
        let tenant = convert::tenant_id("tenant", &r.tenant).map_err(status::refused)?;
        let limit = limit("limit", r.limit, 100, 1000)?;
        let store = self.store(r.consistency.as_ref()).await?;
        let query = metamesh_store::openlineage::EventQuery {
            tenant: tenant.to_string(),
            after_ms: (r.after_ms != 0).then_some(r.after_ms),
            before_ms: (r.before_ms != 0).then_some(r.before_ms),
            run_id: (!r.run_id.is_empty()).then(|| r.run_id.clone()),
            limit,
            descending: r.descending,
        };
        let (events_json, total_count) = store.openlineage_events(&query).await.map_err(status::store)?;
        Ok(Response::new(v1::ListOpenLineageEventsReply { events_json, total_count }))
    }

    async fn deliver_references(
        &self,
        request: Request<v1::DeliverReferencesRequest>,
    ) -> Result<Response<v1::DeliverReferencesReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.origin.is_empty() {
            return Err(status::invalid("origin", "must name the sending shard group"));
        }
        if r.refs.is_empty() {
            return Err(status::invalid("refs", "must not be empty"));
        }
        let refs = convert::remote_refs(&r.refs).map_err(status::refused)?;
        // The request id makes a retried delivery of the same run of entries a no-op at the
        // Raft level too (the inbox's high-water mark already makes it one in the store).
        let request_id = format!("outbox:{}:{}-{}", r.origin, r.refs[0].id, r.refs[r.refs.len() - 1].id);
        let done = self.propose(&caller, &request_id, Command::DeliverReferences { origin: r.origin, refs }).await?;
        let Outcome::References { applied, skipped } = done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of a delivery", done.outcome)));
        };
        Ok(Response::new(v1::DeliverReferencesReply { applied, skipped, revision: done.revision }))
    }

    async fn expand(&self, request: Request<v1::ExpandRequest>) -> Result<Response<v1::ExpandReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        if r.urns.is_empty() {
            return Err(status::invalid("urns", "must name at least one urn"));
        }
        let start = r
            .urns
            .iter()
            .enumerate()
            .map(|(i, u)| convert::entity_urn_at(&format!("urns[{i}]"), u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(status::refused)?;
        let max_depth = limit("max_depth", r.max_depth, DEFAULT_DEPTH, MAX_DEPTH)?;
        if !r.start_depths.is_empty() && r.start_depths.len() != r.urns.len() {
            return Err(status::invalid(
                "start_depths",
                format!("{} depths for {} urns: give one per urn, or none", r.start_depths.len(), r.urns.len()),
            ));
        }
        if let Some((i, d)) = r.start_depths.iter().enumerate().find(|(_, d)| **d > max_depth) {
            let field = format!("start_depths[{i}]");
            return Err(status::invalid(&field, format!("{d} is beyond max_depth {max_depth}")));
        }
        let req = metamesh_store::ExpandRequest {
            start,
            start_depths: r.start_depths.clone(),
            direction: convert::direction(r.direction).map_err(status::refused)?,
            kinds: convert::edge_kinds("kinds", &r.kinds).map_err(status::refused)?,
            max_depth,
            max_nodes: limit("max_nodes", r.max_nodes, DEFAULT_NODES, MAX_NODES)? as usize,
            as_of: convert::as_of(r.as_of.as_ref()),
        };
        let budget =
            if r.deadline_ms == 0 { DEFAULT_DEADLINE } else { Duration::from_millis(r.deadline_ms).min(MAX_DEADLINE) };
        let store = self.store(r.consistency.as_ref()).await?;
        // The store walks in one call, so a spent budget leaves nothing but the start: it is
        // returned as partial, with the start as the frontier to continue from.
        let Ok(expansion) = tokio::time::timeout(budget, store.expand(&req)).await else {
            let depth = |i: usize| req.start_depths.get(i).copied().unwrap_or(0);
            let nodes: Vec<v1::LineageNode> =
                req.start.iter().enumerate().map(|(i, u)| convert::lineage_node(u, depth(i), None)).collect();
            return Ok(Response::new(v1::ExpandReply {
                nodes,
                edges: Vec::new(),
                partial: true,
                partial_reasons: vec![convert::partial_reason(
                    "DEADLINE",
                    format!("the expansion did not finish within {} ms", budget.as_millis()),
                    &self.shard_group,
                )],
                remote_frontier: r.urns,
            }));
        };
        let mut expansion = expansion.map_err(status::store)?;
        // What the caller may see of each node, decided once per node (every edge end is a
        // node of the answer).
        let vis: HashMap<EntityUrn, Visibility> =
            expansion.nodes.iter().map(|(u, _)| (u.clone(), authorized.visibility(u))).collect();
        let sees = |u: &EntityUrn| vis.get(u).is_some_and(|v| *v != Visibility::Hidden);
        let full = |u: &EntityUrn| vis.get(u) == Some(&Visibility::Full);
        // Nodes the caller may not know of are left out, with their edges; nodes it may only
        // discover keep their URN but not their details (placeholders).
        let before = expansion.nodes.len();
        expansion.nodes.retain(|(u, _)| sees(u));
        let hidden = before - expansion.nodes.len();
        expansion.edges.retain(|e| sees(&e.from.entity) && sees(&e.to.entity));
        expansion.remote_frontier.retain(|u| sees(u));
        // Type, status and deletion of the nodes this shard owns, as of the same point, in one
        // query.
        let owned: HashSet<_> = store.tenants().await.map_err(status::store)?.into_iter().collect();
        let wanted: Vec<EntityUrn> = expansion
            .nodes
            .iter()
            .filter(|(u, _)| owned.contains(u.tenant()) && full(u))
            .map(|(u, _)| u.clone())
            .collect();
        let details = store.node_details(&wanted, req.as_of).await.map_err(status::store)?;
        let mut reply = convert::expansion_to_wire(
            &expansion.nodes,
            &expansion.edges,
            &expansion.remote_frontier,
            expansion.truncated,
            &details,
            &self.shard_group,
        );
        for (edge, stored) in reply.edges.iter_mut().zip(&expansion.edges) {
            if !full(&stored.from.entity) || !full(&stored.to.entity) {
                blank_edge(edge);
            }
        }
        for node in &mut reply.nodes {
            node.placeholder =
                node.urn.parse::<EntityUrn>().is_ok_and(|u| vis.get(&u) == Some(&Visibility::DiscoverOnly));
        }
        if hidden > 0 {
            // How many, never which: the caller may not know they exist.
            reply.partial = true;
            reply.partial_reasons.push(convert::partial_reason(
                "HIDDEN",
                format!("{hidden} nodes are hidden by policy"),
                &self.shard_group,
            ));
        }
        Ok(Response::new(reply))
    }
}

/// Whether `e` is an edge of frontier element `u` in `direction`: an element with a version
/// takes the edges of that version, and those attached to the entity as a whole.
fn touches(u: &Urn, direction: Direction, e: &Edge) -> bool {
    let end = |x: &Urn| x.entity == u.entity && (u.version.is_none() || x.version.is_none() || x.version == u.version);
    match direction {
        Direction::Downstream => end(&e.from),
        Direction::Upstream => end(&e.to),
        Direction::Both => end(&e.from) || end(&e.to),
    }
}

/// Blanks what an edge says beyond its shape (how the downstream was computed, who wrote it):
/// for edges with an end the caller may not read.
pub fn blank_edge(edge: &mut v1::Edge) {
    edge.transformation.clear();
    edge.created_by.clear();
}
