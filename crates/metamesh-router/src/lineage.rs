//! Lineage across shards: breadth-first expansion that pushes work down to the shards.
//!
//! A round sends, for every shard group that owns part of the frontier, one `Expand` request
//! with those nodes and the depth still allowed; all groups are asked in parallel. Each shard
//! walks as many hops as it can over its own edges (and the remote references delivered to
//! it) and returns what it reached plus the *remote frontier*: nodes of tenants it does not
//! own. The next round sends that frontier to the groups owning it. Round trips therefore grow
//! with the number of shard crossings on a path, not with its depth.
//!
//! Every shard call carries the caller's principal: shards drop what the caller may not know of
//! and reduce what it may only discover to placeholders (kind and tenant, no properties), and
//! the router applies its own policy again to the merged answer. A group that does not answer,
//! a spent deadline, the node limit and hidden nodes make the answer `partial`, each with a
//! reason naming the group where there is one — never an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use metamesh_core::EntityUrn;
use metamesh_node::api::authz;
use metamesh_node::api::lineage::{DEFAULT_DEADLINE, DEFAULT_DEPTH, DEFAULT_NODES, MAX_DEADLINE, MAX_DEPTH, MAX_NODES};
use metamesh_node::Authorized;
use metamesh_policy::Visibility;
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::lineage_service_server::LineageService;
use tonic::{Request, Response, Status};

use crate::api::{forwarded, RouterApi};
use crate::groups::{on_behalf, unavailable, Group};

fn limit(field: &str, requested: u32, default: u32, max: u32) -> Result<u32, Status> {
    match requested {
        0 => Ok(default),
        n if n <= max => Ok(n),
        n => Err(Status::invalid_argument(format!("invalid `{field}`: {n} is over the maximum of {max}"))),
    }
}

/// An edge's identity: ends with their versions, kind, columns.
type EdgeKey = (String, Option<u64>, String, Option<u64>, String, String, String);

/// An edge's identity, for merging the copies two shards hold (the storing shard's and the
/// remote reference).
fn edge_key(e: &v1::Edge) -> EdgeKey {
    (
        e.from_urn.clone(),
        e.from_version,
        e.to_urn.clone(),
        e.to_version,
        e.kind.clone(),
        e.from_column.clone(),
        e.to_column.clone(),
    )
}

/// What the walk has found so far.
#[derive(Default)]
struct Walk {
    nodes: HashMap<String, v1::LineageNode>,
    /// Whether a node's details came from its owning shard.
    owned: HashSet<String>,
    edges: BTreeMap<EdgeKey, v1::Edge>,
    /// The depth each node was expanded from (none: not yet).
    expanded: HashMap<String, u32>,
    reasons: Vec<v1::PartialReason>,
    /// Nodes reached but not expanded (limits, deadline, unavailable groups).
    unexpanded: Vec<String>,
    truncated: bool,
}

impl Walk {
    fn reason(&mut self, code: &str, detail: String, shard: &str) {
        if !self.reasons.iter().any(|r| r.code == code && r.shard == shard) {
            self.reasons.push(convert::partial_reason(code, detail, shard));
        }
    }

    /// Adds a node reached at `depth`; keeps the smallest depth, and the owning shard's details.
    fn node(&mut self, mut node: v1::LineageNode, depth: u32, from_owner: bool, max_nodes: usize) -> bool {
        node.depth = depth;
        let full = self.nodes.len() >= max_nodes;
        match self.nodes.get_mut(&node.urn) {
            Some(known) => {
                let depth = known.depth.min(depth);
                if from_owner && !self.owned.contains(&node.urn) {
                    *known = node;
                    self.owned.insert(known.urn.clone());
                }
                known.depth = depth;
                true
            }
            None if full => {
                self.truncated = true;
                false
            }
            None => {
                if from_owner {
                    self.owned.insert(node.urn.clone());
                }
                self.nodes.insert(node.urn.clone(), node);
                true
            }
        }
    }
}

/// What one shard's walk may spend.
#[derive(Clone, Copy)]
struct Limits {
    /// The absolute depth the walk may reach.
    max_depth: u32,
    max_nodes: u32,
    budget: Duration,
}

impl RouterApi {
    /// One `Expand` on `group` for its part of the frontier, each node at its own depth.
    async fn expand_on(
        &self,
        authorized: &Authorized,
        group: &Group,
        starts: &[(String, u32)],
        base: &v1::ExpandRequest,
        limits: Limits,
    ) -> Result<v1::ExpandReply, Status> {
        let Limits { max_depth, max_nodes, budget } = limits;
        let as_of = match base.shard_revisions.get(&group.id) {
            Some(&rev) => Some(v1::AsOf { point: Some(v1::as_of::Point::Revision(rev)) }),
            None => base.as_of,
        };
        let request = v1::ExpandRequest {
            urns: starts.iter().map(|(u, _)| u.clone()).collect(),
            start_depths: starts.iter().map(|(_, d)| *d).collect(),
            direction: base.direction,
            max_depth,
            max_nodes,
            deadline_ms: budget.as_millis().max(1) as u64,
            kinds: base.kinds.clone(),
            as_of,
            consistency: base.consistency,
            shard_revisions: Default::default(),
        };
        let call = self.groups.call(group, |ch| {
            let request = request.clone();
            async move { LineageServiceClient::new(ch).expand(on_behalf(authorized, request)).await }
        });
        match tokio::time::timeout(budget, call).await {
            Ok(reply) => reply.map(Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!("no answer within {} ms", budget.as_millis()))),
        }
    }
}

#[tonic::async_trait]
impl LineageService for RouterApi {
    async fn add_edges(&self, _: Request<v1::AddEdgesRequest>) -> Result<Response<v1::AddEdgesReply>, Status> {
        Err(forwarded())
    }

    async fn remove_edges(&self, _: Request<v1::RemoveEdgesRequest>) -> Result<Response<v1::RemoveEdgesReply>, Status> {
        Err(forwarded())
    }

    async fn ingest_open_lineage(
        &self,
        _: Request<v1::IngestOpenLineageRequest>,
    ) -> Result<Response<v1::IngestOpenLineageReply>, Status> {
        Err(forwarded())
    }

    async fn list_open_lineage_events(
        &self,
        _: Request<v1::ListOpenLineageEventsRequest>,
    ) -> Result<Response<v1::ListOpenLineageEventsReply>, Status> {
        Err(forwarded())
    }

    async fn deliver_references(
        &self,
        _: Request<v1::DeliverReferencesRequest>,
    ) -> Result<Response<v1::DeliverReferencesReply>, Status> {
        Err(Status::permission_denied("DeliverReferences is sent by replicas to replicas, never through a router"))
    }

    /// One hop from a frontier that may span groups: one request per group, in parallel.
    async fn get_edges(&self, request: Request<v1::GetEdgesRequest>) -> Result<Response<v1::GetEdgesReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        if r.urns.is_empty() {
            return Err(Status::invalid_argument("invalid `urns`: must name at least one urn"));
        }
        let calls = self.groups.by_group(&r.urns)?.into_iter().map(|(group, urns)| {
            let request = v1::GetEdgesRequest { urns, ..r.clone() };
            let authorized = &authorized;
            async move {
                let reply = self
                    .groups
                    .call(group, |ch| {
                        let request = request.clone();
                        async move { LineageServiceClient::new(ch).get_edges(on_behalf(authorized, request)).await }
                    })
                    .await;
                (group, reply)
            }
        });
        let mut edges = BTreeMap::new();
        let mut reasons = Vec::new();
        for (group, reply) in futures_util::future::join_all(calls).await {
            match reply {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    reasons.extend(reply.partial_reasons);
                    for e in reply.edges {
                        edges.entry(edge_key(&e)).or_insert(e);
                    }
                }
                Err(status) => reasons.push(unavailable(&group.id, &status)),
            }
        }
        let mut edges: Vec<v1::Edge> = edges.into_values().collect();
        edges.retain(|e| sees(&authorized, &e.from_urn) && sees(&authorized, &e.to_urn));
        Ok(Response::new(v1::GetEdgesReply {
            edges,
            read_revision: 0,
            partial: !reasons.is_empty(),
            partial_reasons: reasons,
        }))
    }

    async fn expand(&self, request: Request<v1::ExpandRequest>) -> Result<Response<v1::ExpandReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        if r.urns.is_empty() {
            return Err(Status::invalid_argument("invalid `urns`: must name at least one urn"));
        }
        let max_depth = limit("max_depth", r.max_depth, DEFAULT_DEPTH, MAX_DEPTH)?;
        let max_nodes = limit("max_nodes", r.max_nodes, DEFAULT_NODES, MAX_NODES)? as usize;
        let budget =
            if r.deadline_ms == 0 { DEFAULT_DEADLINE } else { Duration::from_millis(r.deadline_ms).min(MAX_DEADLINE) };
        let deadline = Instant::now() + budget;
        if let Some(unknown) = r.shard_revisions.keys().find(|g| self.groups.get(g).is_none()) {
            return Err(Status::invalid_argument(format!(
                "invalid `shard_revisions`: `{unknown}` is not a shard group of the mesh"
            )));
        }
        let mut walk = Walk::default();
        let mut frontier: Vec<(String, u32)> = Vec::new();
        for (i, text) in r.urns.iter().enumerate() {
            let urn =
                convert::entity_urn_at(&format!("urns[{i}]"), text).map_err(metamesh_node::api::status::refused)?;
            self.groups.of(urn.tenant())?;
            frontier.push((urn.to_string(), 0));
        }
        let mut round = 0;
        while !frontier.is_empty() {
            round += 1;
            // One request per group, each start node at its own depth.
            let mut batches: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
            for (urn, depth) in frontier.drain(..) {
                if walk.expanded.get(&urn).is_some_and(|&d| d <= depth) {
                    continue;
                }
                let tenant = urn.parse::<EntityUrn>().map(|u| u.tenant().to_string()).unwrap_or_default();
                let Some(group) = self.groups.owner(&tenant) else {
                    walk.reason("UNKNOWN_TENANT", format!("tenant `{tenant}` is owned by no shard group"), "");
                    walk.unexpanded.push(urn);
                    continue;
                };
                walk.expanded.insert(urn.clone(), depth);
                batches.entry(group.id.clone()).or_default().push((urn, depth));
            }
            if batches.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                walk.reason("DEADLINE", format!("the expansion did not finish within {} ms", budget.as_millis()), "");
                walk.unexpanded.extend(batches.into_values().flatten().map(|(u, _)| u));
                break;
            }
            let room = max_nodes.saturating_sub(walk.nodes.len()).max(1) as u32;
            let calls = batches.into_iter().map(|(group_id, starts)| {
                let group = self.groups.get(&group_id).expect("group of the map");
                let authorized = &authorized;
                let r = &r;
                async move {
                    let limits = Limits { max_depth, max_nodes: room + starts.len() as u32, budget: left };
                    let reply = self.expand_on(authorized, group, &starts, r, limits).await;
                    (group, starts, reply)
                }
            });
            // The shard calls run in the request's span (their trace context is injected from
            // it); the round's span covers the merge only, never an await.
            let replies = futures_util::future::join_all(calls).await;
            let span = tracing::debug_span!("lineage round", round);
            let _enter = span.enter();
            for (group, starts, reply) in replies {
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(status) => {
                        walk.reasons.push(unavailable(&group.id, &status));
                        for (urn, depth) in starts {
                            // The start nodes stay in the answer (their shape is known from the
                            // edge that reached them), without details.
                            let node = bare_node(&urn);
                            walk.node(node, depth, false, usize::MAX);
                            walk.unexpanded.push(urn);
                        }
                        continue;
                    }
                };
                for reason in reply.partial_reasons {
                    // The remote frontier is this walk's next round, not a gap.
                    if reason.code != "REMOTE_FRONTIER" {
                        walk.reason(&reason.code, reason.detail, &reason.shard);
                    }
                }
                // Depths in the reply count from the walk's origin (the shard was given each
                // start's depth).
                let depth_of: HashMap<&str, u32> = reply.nodes.iter().map(|n| (n.urn.as_str(), n.depth)).collect();
                for remote in &reply.remote_frontier {
                    let d = depth_of.get(remote.as_str()).copied().unwrap_or(max_depth);
                    if d < max_depth && walk.nodes.len() < max_nodes {
                        frontier.push((remote.clone(), d));
                    } else if d < max_depth {
                        walk.unexpanded.push(remote.clone());
                    }
                }
                for node in reply.nodes {
                    // Details (type, status) come from the shard owning the node's tenant.
                    let owner = self.groups.owner(&node.tenant).is_some_and(|g| g.id == group.id);
                    let d = node.depth;
                    walk.node(node, d, owner, max_nodes);
                }
                for e in reply.edges {
                    walk.edges.entry(edge_key(&e)).or_insert(e);
                }
            }
        }
        if walk.truncated {
            walk.reason("MAX_NODES", format!("the answer was cut at {max_nodes} nodes"), "");
        }
        Ok(Response::new(answer(walk, &authorized)))
    }
}

/// A node known only by its URN.
fn bare_node(urn: &str) -> v1::LineageNode {
    match urn.parse::<EntityUrn>() {
        Ok(u) => convert::lineage_node(&u, 0, None),
        Err(_) => v1::LineageNode { urn: urn.to_owned(), ..Default::default() },
    }
}

fn sees(authorized: &Authorized, urn: &str) -> bool {
    urn.parse::<metamesh_core::Urn>().is_ok_and(|u| authorized.sees(&u.entity))
}

/// The merged walk as the caller may see it, nodes by depth then URN, edges between them.
fn answer(mut walk: Walk, authorized: &Authorized) -> v1::ExpandReply {
    let mut nodes: Vec<v1::LineageNode> = Vec::with_capacity(walk.nodes.len());
    let mut hidden = 0;
    // Whom the caller may read fully, decided once per node.
    let mut readable: HashSet<String> = HashSet::new();
    for (_, mut node) in walk.nodes.drain() {
        let Ok(urn) = node.urn.parse::<EntityUrn>() else { continue };
        match authorized.visibility(&urn) {
            Visibility::Full => {
                readable.insert(node.urn.clone());
            }
            Visibility::DiscoverOnly => {
                node.placeholder = true;
                node.type_name.clear();
                node.status.clear();
            }
            Visibility::Hidden => {
                hidden += 1;
                continue;
            }
        }
        nodes.push(node);
    }
    if hidden > 0 {
        walk.reason("HIDDEN", format!("{hidden} nodes are hidden by policy"), "");
    }
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.urn.cmp(&b.urn)));
    let present: HashSet<&str> = nodes.iter().map(|n| n.urn.as_str()).collect();
    let mut edges: Vec<v1::Edge> = walk
        .edges
        .into_values()
        .filter(|e| present.contains(e.from_urn.as_str()) && present.contains(e.to_urn.as_str()))
        .collect();
    for e in &mut edges {
        if !readable.contains(&e.from_urn) || !readable.contains(&e.to_urn) {
            metamesh_node::api::lineage::blank_edge(e);
        }
    }
    let mut remote_frontier: Vec<String> =
        walk.unexpanded.into_iter().filter(|u| present.contains(u.as_str())).collect();
    remote_frontier.sort();
    remote_frontier.dedup();
    v1::ExpandReply { partial: !walk.reasons.is_empty(), partial_reasons: walk.reasons, nodes, edges, remote_frontier }
}
