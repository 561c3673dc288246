//! `GetLineageSubgraph`: MLMD's constrained breadth-first walk over events
//! (`RDBMSMetadataAccessObject::QueryLineageSubgraph`), step for step.
//!
//! - Starting nodes: the artifacts (or executions) matching `starting_*.filter_query`, at most
//!   101 of them (the lowest ids: MLMD lists them with its 101-row cap). No starting nodes
//!   option, or an empty filter, is INVALID_ARGUMENT; no match is NOT_FOUND.
//! - `max_num_hops`: each artifact→execution or execution→artifact step is one hop; unset or
//!   above 100 means 100; negative is INVALID_ARGUMENT. Hop `d` expands the nodes reached at
//!   hop `d - 1` only; the walk stops early when a hop reaches nothing new.
//! - `direction`: UPSTREAM follows, from an artifact, the events that output it
//!   (`OUTPUT`, `DECLARED_OUTPUT`, `INTERNAL_OUTPUT`, `PENDING_OUTPUT`) and, from an execution,
//!   its inputs (`INPUT`, `DECLARED_INPUT`, `INTERNAL_INPUT`); DOWNSTREAM the reverse; anything
//!   else follows every event. A directional walk also keeps an event that leads to a node
//!   already visited; a bidirectional one does not.
//! - `ending_*`: a reached node matching the filter (an empty filter matches every node) is
//!   not expanded further; with `include_ending_nodes` it and the events leading to it are
//!   returned, otherwise neither is. Starting nodes can be ending nodes.
//! - `read_mask`: the `LineageGraph` fields to fill; empty means all. `artifacts`,
//!   `executions` and `contexts` give nodes with only their `id` set; `contexts` are those of
//!   the returned artifacts and executions; `events` the events walked; `attributions` and
//!   `associations` every one of the returned artifacts and executions; `*_types` every type of
//!   the kind (as MLMD's `FindTypes`: without `external_id` and `base_type`). Unknown paths
//!   and `parent_contexts` add nothing.
//!
//! Where MLMD's order comes from a hash set (nodes, contexts), nodes here are by id; events
//! are in walk order, each hop's by node id then event id, as in MLMD. Attributions and
//! associations are by (node id, context id) (MLMD: by creation).

use std::collections::BTreeSet;

use rusqlite::params;

use super::list::sql_value;
use super::Ctx;
use crate::pb;
use crate::pb::lineage_subgraph_query_options::{Direction, EndingNodes, StartingNodesOneOf};
use crate::store::{NodeKind, Type};
use crate::{MlmdError, Result};

/// MLMD's `kQueryLineageSubgraphMaxNumHops`.
const MAX_HOPS: i64 = 100;

/// The fields of `LineageGraph`, the paths an empty read mask stands for.
const ALL_PATHS: [&str; 10] = [
    "artifact_types",
    "execution_types",
    "context_types",
    "artifacts",
    "executions",
    "contexts",
    "events",
    "attributions",
    "associations",
    "parent_contexts",
];

/// Answers `GetLineageSubgraph`.
pub(super) fn subgraph(q: &Ctx<'_>, request: pb::GetLineageSubgraphRequest) -> Result<pb::LineageGraph> {
    let paths: BTreeSet<String> = match request.read_mask {
        Some(m) if !m.paths.is_empty() => m.paths.into_iter().collect(),
        _ => ALL_PATHS.iter().map(|p| (*p).to_owned()).collect(),
    };
    let options = request.lineage_subgraph_query_options.unwrap_or_default();
    let (start_filter, from_artifacts) = match &options.starting_nodes {
        Some(StartingNodesOneOf::StartingArtifacts(s)) => (s.filter_query.clone().unwrap_or_default(), true),
        Some(StartingNodesOneOf::StartingExecutions(s)) => (s.filter_query.clone().unwrap_or_default(), false),
        None => return Err(MlmdError::invalid("Missing arguments for listing starting nodes.")),
    };
    if start_filter.is_empty() {
        return Err(MlmdError::invalid("Cannot list starting nodes if `filter_query` is unspecified."));
    }
    let hops = match options.max_num_hops {
        None => MAX_HOPS,
        Some(h) if h < 0 => {
            return Err(MlmdError::invalid(format!("max_num_hops cannot be negative: max_num_hops = {h}")));
        }
        Some(h) => h.min(MAX_HOPS),
    };

    let mut walk = Walk {
        q,
        direction: options.direction.unwrap_or_default(),
        ending_artifacts: options.ending_artifacts.clone(),
        ending_executions: options.ending_executions.clone(),
        artifacts: Side::default(),
        executions: Side::default(),
        events: Vec::new(),
    };
    let start_kind = if from_artifacts { NodeKind::Artifact } else { NodeKind::Execution };
    let start = starting_ids(q, start_kind, &start_filter)?;
    if start.is_empty() {
        return Err(MlmdError::not_found("Cannot find qualified nodes to start the traversal."));
    }
    {
        let ending = walk.ending(start_kind).cloned();
        let side = walk.side(start_kind);
        side.visited = start.iter().copied().collect();
        side.ending = ending_ids(q, start_kind, ending.as_ref(), &side.visited)?;
        let ending = side.ending.clone();
        side.visited.retain(|id| !ending.contains(id));
        side.frontier = side.visited.iter().copied().collect();
    }

    for distance in 0..hops {
        // From the starting kind on even hops, from the other kind on odd ones.
        let expand_from_artifacts = from_artifacts == (distance % 2 == 0);
        if walk.expand(expand_from_artifacts)? == 0 {
            break;
        }
    }

    let include = |e: &Option<EndingNodes>| e.as_ref().and_then(|e| e.include_ending_nodes).unwrap_or(false);
    let mut artifact_ids = walk.artifacts.visited.clone();
    if include(&walk.ending_artifacts) {
        artifact_ids.extend(walk.artifacts.ending.iter().copied());
    }
    let mut execution_ids = walk.executions.visited.clone();
    if include(&walk.ending_executions) {
        execution_ids.extend(walk.executions.ending.iter().copied());
    }

    let mut graph = pb::LineageGraph::default();
    let has = |p: &str| paths.contains(p);
    if has("artifacts") {
        graph.artifacts = artifact_ids.iter().map(|&id| pb::Artifact { id: Some(id), ..Default::default() }).collect();
    }
    if has("executions") {
        graph.executions =
            execution_ids.iter().map(|&id| pb::Execution { id: Some(id), ..Default::default() }).collect();
    }
    if has("contexts") {
        let mut contexts = BTreeSet::new();
        for &id in &artifact_ids {
            contexts.extend(q.context_ids_of(NodeKind::Artifact, id)?);
        }
        for &id in &execution_ids {
            contexts.extend(q.context_ids_of(NodeKind::Execution, id)?);
        }
        graph.contexts = contexts.into_iter().map(|id| pb::Context { id: Some(id), ..Default::default() }).collect();
    }
    if has("events") {
        graph.events = std::mem::take(&mut walk.events);
    }
    if has("attributions") {
        for &id in &artifact_ids {
            for context in q.context_ids_of(NodeKind::Artifact, id)? {
                graph.attributions.push(pb::Attribution {
                    artifact_id: Some(id),
                    context_id: Some(context),
                    system_metadata: None,
                });
            }
        }
    }
    if has("associations") {
        for &id in &execution_ids {
            for context in q.context_ids_of(NodeKind::Execution, id)? {
                graph.associations.push(pb::Association {
                    execution_id: Some(id),
                    context_id: Some(context),
                    system_metadata: None,
                });
            }
        }
    }
    if has("artifact_types") {
        graph.artifact_types = all_types(q)?;
    }
    if has("execution_types") {
        graph.execution_types = all_types(q)?;
    }
    if has("context_types") {
        graph.context_types = all_types(q)?;
    }
    Ok(graph)
}

/// One node kind's state in the walk.
#[derive(Default)]
struct Side {
    /// Reached (and starting) nodes, ending nodes excepted.
    visited: BTreeSet<i64>,
    /// Reached nodes that match the kind's ending filter.
    ending: BTreeSet<i64>,
    /// The nodes reached by the last hop (or the starting nodes), expanded by the next one.
    frontier: Vec<i64>,
}

struct Walk<'q, 'c> {
    q: &'q Ctx<'c>,
    direction: i32,
    ending_artifacts: Option<EndingNodes>,
    ending_executions: Option<EndingNodes>,
    artifacts: Side,
    executions: Side,
    events: Vec<pb::Event>,
}

impl Walk<'_, '_> {
    fn side(&mut self, kind: NodeKind) -> &mut Side {
        match kind {
            NodeKind::Artifact => &mut self.artifacts,
            _ => &mut self.executions,
        }
    }

    fn ending(&self, kind: NodeKind) -> Option<&EndingNodes> {
        match kind {
            NodeKind::Artifact => self.ending_artifacts.as_ref(),
            _ => self.ending_executions.as_ref(),
        }
    }

    /// One hop from the frontier of artifacts (or executions) to the other kind: MLMD's
    /// `ExpandLineageSubgraphImpl`. Returns how many new nodes it reached.
    fn expand(&mut self, from_artifacts: bool) -> Result<usize> {
        let (from, to) = if from_artifacts {
            (NodeKind::Artifact, NodeKind::Execution)
        } else {
            (NodeKind::Execution, NodeKind::Artifact)
        };
        let input = std::mem::take(&mut self.side(from).frontier);
        let events: Vec<pb::Event> =
            self.q.events(from, &input)?.into_iter().filter(|e| follows(e, from_artifacts, self.direction)).collect();
        let other = |e: &pb::Event| {
            if from_artifacts {
                e.execution_id.unwrap_or_default()
            } else {
                e.artifact_id.unwrap_or_default()
            }
        };

        let ending_filter = self.ending(to).cloned();
        let include_ending = ending_filter.as_ref().and_then(|e| e.include_ending_nodes).unwrap_or(false);
        let directional =
            self.direction == Direction::Upstream as i32 || self.direction == Direction::Downstream as i32;
        let q = self.q;
        let side = self.side(to);
        let mut unvisited: BTreeSet<i64> =
            events.iter().map(other).filter(|id| !side.visited.contains(id) && !side.ending.contains(id)).collect();
        let new_ending = ending_ids(q, to, ending_filter.as_ref(), &unvisited)?;
        side.ending.extend(new_ending);
        unvisited.retain(|id| !side.ending.contains(id));

        let mut kept = Vec::new();
        for e in events {
            let o = other(&e);
            let keep = if !side.visited.contains(&o) && !side.ending.contains(&o) {
                true
            } else if side.ending.contains(&o) {
                include_ending
            } else {
                directional
            };
            if keep {
                kept.push(e);
            }
        }
        side.visited.extend(unvisited.iter().copied());
        side.frontier = unvisited.into_iter().collect();
        let reached = side.frontier.len();
        self.events.extend(kept);
        Ok(reached)
    }
}

/// Whether the walk follows event `e` from an artifact (or an execution) in `direction`.
fn follows(e: &pb::Event, from_artifact: bool, direction: i32) -> bool {
    use pb::event::Type as T;
    let t = e.r#type.unwrap_or_default();
    let is_output = [T::DeclaredOutput, T::InternalOutput, T::PendingOutput, T::Output].iter().any(|x| *x as i32 == t);
    let is_input = [T::DeclaredInput, T::InternalInput, T::Input].iter().any(|x| *x as i32 == t);
    let upstream = direction == Direction::Upstream as i32;
    let downstream = direction == Direction::Downstream as i32;
    match (from_artifact, upstream, downstream) {
        (true, true, _) => is_output,
        (true, _, true) => is_input,
        (false, true, _) => is_input,
        (false, _, true) => is_output,
        _ => true,
    }
}

/// The ids of the (at most 101) lowest-id nodes of `kind` matching `filter`.
fn starting_ids(q: &Ctx<'_>, kind: NodeKind, filter: &str) -> Result<Vec<i64>> {
    let compiled = metamesh_mlmd_filter::compile_in_tenant(filter, kind.filter_kind(), "n", q.tenant)?;
    let sql = format!(
        "SELECT n.id FROM mlmd_node n WHERE n.tenant = ? AND n.kind = ? AND n.id > 0 AND ({}) ORDER BY n.id LIMIT 101",
        compiled.where_sql
    );
    let mut args =
        vec![rusqlite::types::Value::Text(q.tenant.to_owned()), rusqlite::types::Value::Integer(kind as i64)];
    args.extend(compiled.params.into_iter().map(sql_value));
    q.ids(&sql, rusqlite::params_from_iter(args))
}

/// Those of `candidates` (nodes of `kind`) that match the ending filter: none without one,
/// every one for an empty one.
fn ending_ids(
    q: &Ctx<'_>,
    kind: NodeKind,
    ending: Option<&EndingNodes>,
    candidates: &BTreeSet<i64>,
) -> Result<BTreeSet<i64>> {
    let Some(filter) = ending.and_then(|e| e.filter_query.as_deref()) else { return Ok(BTreeSet::new()) };
    if filter.is_empty() || candidates.is_empty() {
        return Ok(candidates.clone());
    }
    let compiled = metamesh_mlmd_filter::compile(filter, kind.filter_kind(), "n")?;
    let sql = format!(
        "SELECT 1 FROM mlmd_node n WHERE n.tenant = ? AND n.kind = ? AND n.id = ? AND ({})",
        compiled.where_sql
    );
    let mut stmt = q.conn.prepare_cached(&sql)?;
    let mut out = BTreeSet::new();
    for &id in candidates {
        let mut args = vec![
            rusqlite::types::Value::Text(q.tenant.to_owned()),
            rusqlite::types::Value::Integer(kind as i64),
            rusqlite::types::Value::Integer(id),
        ];
        args.extend(compiled.params.iter().cloned().map(sql_value));
        if stmt.exists(rusqlite::params_from_iter(args))? {
            out.insert(id);
        }
    }
    Ok(out)
}

/// Every type of kind `T`, by id, as MLMD's `FindTypes` gives them (no `external_id`, no
/// `base_type`; the built-in `mlmd.*` types included).
fn all_types<T: Type>(q: &Ctx<'_>) -> Result<Vec<T>> {
    let mut types: Vec<T> = q.messages(
        "SELECT proto FROM mlmd_type WHERE tenant = ?1 AND kind = ?2 ORDER BY id",
        params![q.tenant, T::KIND as i64],
    )?;
    for t in &mut types {
        t.set_external_id(None);
        t.set_base_type(None);
    }
    Ok(types)
}
