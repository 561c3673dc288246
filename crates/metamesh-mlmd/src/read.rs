//! The read RPCs (every `Get*` of `ml_metadata.MetadataStoreService`), answered from one
//! tenant's rows with MLMD 1.17.1's results: the same nodes, in the same order, with the same
//! fields set, the same paging tokens and the same error codes.
//!
//! What MLMD does, as found against Google's engine (and kept here):
//!
//! - Lists without `options` return every match, by id. With `options`, a page of
//!   `max_result_size` (default 20; ≤ 0 is INVALID_ARGUMENT; the query never fetches more than
//!   101 rows, so a size above 100 gives at most 101 nodes and no token) ordered by `id`,
//!   `create_time` or `last_update_time` (ties by id, same direction) — see `read/list.rs`.
//! - `next_page_token` is a `ListOperationNextPageToken` in web-safe base64 without padding;
//!   one that does not decode or parse, or whose ordering differs from the request's, is
//!   INVALID_ARGUMENT.
//! - Lookups by id skip unknown ids; by-id node lookups and by-external-id lookups return each
//!   node once, by id; type lookups by id follow the request (duplicates kept); type lookups by
//!   external id are ordered by external id. An empty external id is INVALID_ARGUMENT.
//! - A missing type in `Get*Type` is NOT_FOUND, but in `Get*ByType` and `Get*ByTypeAndName` an
//!   empty answer. `GetContextsByArtifact`/`ByExecution` with no context is NOT_FOUND.
//! - Some answers leave fields out as MLMD does: `Get*Types` drop types' `external_id` (and
//!   MLMD's built-in `mlmd.*` types), `Get*TypesByExternalIds` and the types of
//!   `GetArtifactsByID` drop `base_type` (and execution types their `input_type`/`output_type`).
//! - `GetLineageSubgraph` returns nodes with their ids only — see `read/lineage.rs`.
//! - `GetLineageGraph` is UNIMPLEMENTED, as in MLMD 1.17.1 (`MetadataStore::GetLineageGraph`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use prost::Message;
use rusqlite::{params, Connection, OpenFlags};

use crate::pb;
use crate::store::{self, decode, Node, NodeKind, Type};
use crate::{Code, MlmdError, Result};

mod lineage;
mod list;

use list::Scope;

/// Every read RPC [`answer`] handles.
const READS: &[&str] = &[
    "GetArtifactType",
    "GetArtifactTypesByID",
    "GetArtifactTypes",
    "GetExecutionType",
    "GetExecutionTypesByID",
    "GetExecutionTypes",
    "GetContextType",
    "GetContextTypesByID",
    "GetContextTypes",
    "GetArtifacts",
    "GetExecutions",
    "GetContexts",
    "GetArtifactsByID",
    "GetExecutionsByID",
    "GetContextsByID",
    "GetArtifactsByType",
    "GetExecutionsByType",
    "GetContextsByType",
    "GetArtifactByTypeAndName",
    "GetExecutionByTypeAndName",
    "GetContextByTypeAndName",
    "GetArtifactsByURI",
    "GetEventsByExecutionIDs",
    "GetEventsByArtifactIDs",
    "GetArtifactsByExternalIds",
    "GetExecutionsByExternalIds",
    "GetContextsByExternalIds",
    "GetArtifactTypesByExternalIds",
    "GetExecutionTypesByExternalIds",
    "GetContextTypesByExternalIds",
    "GetContextsByArtifact",
    "GetContextsByExecution",
    "GetParentContextsByContext",
    "GetChildrenContextsByContext",
    "GetParentContextsByContexts",
    "GetChildrenContextsByContexts",
    "GetArtifactsByContext",
    "GetExecutionsByContext",
    "GetLineageGraph",
    "GetLineageSubgraph",
];

/// MLMD's built-in simple types, which `Get{Artifact,Execution}Types` never list.
const SIMPLE_TYPE_NAMES: &[&str] = &[
    "mlmd.Dataset",
    "mlmd.Model",
    "mlmd.Metrics",
    "mlmd.Statistics",
    "mlmd.Train",
    "mlmd.Transform",
    "mlmd.Process",
    "mlmd.Evaluate",
    "mlmd.Deploy",
];

/// Whether `rpc` is a read RPC handled by [`answer`] (the `Get*` methods of the service).
pub fn is_read(rpc: &str) -> bool {
    READS.contains(&rpc)
}

/// Answers read RPC `rpc` (the method name, e.g. `GetArtifacts`) for `tenant`: the request
/// and the response encoded. Blocking. An unknown `rpc` is UNIMPLEMENTED.
pub fn answer(conn: &Connection, tenant: &str, rpc: &str, request: &[u8]) -> Result<Vec<u8>> {
    let q = Ctx { conn, tenant };
    Ok(match rpc {
        // Types.
        "GetArtifactType" => {
            let r: pb::GetArtifactTypeRequest = decode(request)?;
            pb::GetArtifactTypeResponse { artifact_type: Some(q.type_by_name(r.type_name, r.type_version)?) }
                .encode_to_vec()
        }
        "GetExecutionType" => {
            let r: pb::GetExecutionTypeRequest = decode(request)?;
            pb::GetExecutionTypeResponse { execution_type: Some(q.type_by_name(r.type_name, r.type_version)?) }
                .encode_to_vec()
        }
        "GetContextType" => {
            let r: pb::GetContextTypeRequest = decode(request)?;
            pb::GetContextTypeResponse { context_type: Some(q.type_by_name(r.type_name, r.type_version)?) }
                .encode_to_vec()
        }
        "GetArtifactTypesByID" => {
            let r: pb::GetArtifactTypesByIdRequest = decode(request)?;
            pb::GetArtifactTypesByIdResponse { artifact_types: q.types_by_id(&r.type_ids)? }.encode_to_vec()
        }
        "GetExecutionTypesByID" => {
            let r: pb::GetExecutionTypesByIdRequest = decode(request)?;
            pb::GetExecutionTypesByIdResponse { execution_types: q.types_by_id(&r.type_ids)? }.encode_to_vec()
        }
        "GetContextTypesByID" => {
            let r: pb::GetContextTypesByIdRequest = decode(request)?;
            pb::GetContextTypesByIdResponse { context_types: q.types_by_id(&r.type_ids)? }.encode_to_vec()
        }
        "GetArtifactTypes" => {
            let _: pb::GetArtifactTypesRequest = decode(request)?;
            pb::GetArtifactTypesResponse { artifact_types: q.listed_types(true)? }.encode_to_vec()
        }
        "GetExecutionTypes" => {
            let _: pb::GetExecutionTypesRequest = decode(request)?;
            pb::GetExecutionTypesResponse { execution_types: q.listed_types(true)? }.encode_to_vec()
        }
        "GetContextTypes" => {
            let _: pb::GetContextTypesRequest = decode(request)?;
            pb::GetContextTypesResponse { context_types: q.listed_types(false)? }.encode_to_vec()
        }
        "GetArtifactTypesByExternalIds" => {
            let r: pb::GetArtifactTypesByExternalIdsRequest = decode(request)?;
            pb::GetArtifactTypesByExternalIdsResponse { artifact_types: q.types_by_external_id(r.external_ids)? }
                .encode_to_vec()
        }
        "GetExecutionTypesByExternalIds" => {
            let r: pb::GetExecutionTypesByExternalIdsRequest = decode(request)?;
            pb::GetExecutionTypesByExternalIdsResponse { execution_types: q.types_by_external_id(r.external_ids)? }
                .encode_to_vec()
        }
        "GetContextTypesByExternalIds" => {
            let r: pb::GetContextTypesByExternalIdsRequest = decode(request)?;
            pb::GetContextTypesByExternalIdsResponse { context_types: q.types_by_external_id(r.external_ids)? }
                .encode_to_vec()
        }

        // Lists.
        "GetArtifacts" => {
            let r: pb::GetArtifactsRequest = decode(request)?;
            let (artifacts, next_page_token) = q.list(Scope::All, r.options.as_ref())?;
            pb::GetArtifactsResponse { artifacts, next_page_token: non_empty(next_page_token) }.encode_to_vec()
        }
        "GetExecutions" => {
            let r: pb::GetExecutionsRequest = decode(request)?;
            let (executions, next_page_token) = q.list(Scope::All, r.options.as_ref())?;
            pb::GetExecutionsResponse { executions, next_page_token: non_empty(next_page_token) }.encode_to_vec()
        }
        "GetContexts" => {
            let r: pb::GetContextsRequest = decode(request)?;
            let (contexts, next_page_token) = q.list(Scope::All, r.options.as_ref())?;
            pb::GetContextsResponse { contexts, next_page_token: non_empty(next_page_token) }.encode_to_vec()
        }
        "GetArtifactsByType" => {
            let r: pb::GetArtifactsByTypeRequest = decode(request)?;
            let (artifacts, next_page_token) =
                q.by_type::<pb::Artifact, pb::ArtifactType>(r.type_name, r.type_version, r.options.as_ref())?;
            pb::GetArtifactsByTypeResponse { artifacts, next_page_token }.encode_to_vec()
        }
        "GetExecutionsByType" => {
            let r: pb::GetExecutionsByTypeRequest = decode(request)?;
            let (executions, next_page_token) =
                q.by_type::<pb::Execution, pb::ExecutionType>(r.type_name, r.type_version, r.options.as_ref())?;
            pb::GetExecutionsByTypeResponse { executions, next_page_token }.encode_to_vec()
        }
        "GetContextsByType" => {
            let r: pb::GetContextsByTypeRequest = decode(request)?;
            let (contexts, next_page_token) =
                q.by_type::<pb::Context, pb::ContextType>(r.type_name, r.type_version, r.options.as_ref())?;
            pb::GetContextsByTypeResponse { contexts, next_page_token }.encode_to_vec()
        }
        "GetArtifactsByContext" => {
            let r: pb::GetArtifactsByContextRequest = decode(request)?;
            let (artifacts, next_page_token) = q.by_context(r.context_id.unwrap_or_default(), r.options.as_ref())?;
            pb::GetArtifactsByContextResponse { artifacts, next_page_token: non_empty(next_page_token) }.encode_to_vec()
        }
        "GetExecutionsByContext" => {
            let r: pb::GetExecutionsByContextRequest = decode(request)?;
            let (executions, next_page_token) = q.by_context(r.context_id.unwrap_or_default(), r.options.as_ref())?;
            pb::GetExecutionsByContextResponse {
                executions,
                next_page_token: non_empty(next_page_token),
                transaction_options: None,
            }
            .encode_to_vec()
        }

        // Nodes by key.
        "GetArtifactsByID" => {
            let r: pb::GetArtifactsByIdRequest = decode(request)?;
            let artifacts: Vec<pb::Artifact> = q.nodes_by_id(&r.artifact_ids)?;
            let artifact_types =
                if r.populate_artifact_types.unwrap_or(false) { q.types_of(&artifacts)? } else { Vec::new() };
            pb::GetArtifactsByIdResponse { artifacts, artifact_types }.encode_to_vec()
        }
        "GetExecutionsByID" => {
            let r: pb::GetExecutionsByIdRequest = decode(request)?;
            pb::GetExecutionsByIdResponse { executions: q.nodes_by_id(&r.execution_ids)? }.encode_to_vec()
        }
        "GetContextsByID" => {
            let r: pb::GetContextsByIdRequest = decode(request)?;
            pb::GetContextsByIdResponse { contexts: q.nodes_by_id(&r.context_ids)? }.encode_to_vec()
        }
        "GetArtifactByTypeAndName" => {
            let r: pb::GetArtifactByTypeAndNameRequest = decode(request)?;
            let artifact =
                q.by_type_and_name::<pb::Artifact, pb::ArtifactType>(r.type_name, r.type_version, r.artifact_name)?;
            pb::GetArtifactByTypeAndNameResponse { artifact }.encode_to_vec()
        }
        "GetExecutionByTypeAndName" => {
            let r: pb::GetExecutionByTypeAndNameRequest = decode(request)?;
            let execution =
                q.by_type_and_name::<pb::Execution, pb::ExecutionType>(r.type_name, r.type_version, r.execution_name)?;
            pb::GetExecutionByTypeAndNameResponse { execution }.encode_to_vec()
        }
        "GetContextByTypeAndName" => {
            let r: pb::GetContextByTypeAndNameRequest = decode(request)?;
            let context =
                q.by_type_and_name::<pb::Context, pb::ContextType>(r.type_name, r.type_version, r.context_name)?;
            pb::GetContextByTypeAndNameResponse { context }.encode_to_vec()
        }
        "GetArtifactsByExternalIds" => {
            let r: pb::GetArtifactsByExternalIdsRequest = decode(request)?;
            pb::GetArtifactsByExternalIdsResponse { artifacts: q.nodes_by_external_id(r.external_ids)? }.encode_to_vec()
        }
        "GetExecutionsByExternalIds" => {
            let r: pb::GetExecutionsByExternalIdsRequest = decode(request)?;
            pb::GetExecutionsByExternalIdsResponse { executions: q.nodes_by_external_id(r.external_ids)? }
                .encode_to_vec()
        }
        "GetContextsByExternalIds" => {
            let r: pb::GetContextsByExternalIdsRequest = decode(request)?;
            pb::GetContextsByExternalIdsResponse { contexts: q.nodes_by_external_id(r.external_ids)? }.encode_to_vec()
        }
        "GetArtifactsByURI" => {
            if has_top_level_field(request, 1) {
                return Err(MlmdError::invalid(
                    "The request contains deprecated field `uri`. Please upgrade the client library version above \
                     0.21.0.",
                ));
            }
            let r: pb::GetArtifactsByUriRequest = decode(request)?;
            pb::GetArtifactsByUriResponse { artifacts: q.artifacts_by_uri(r.uris)? }.encode_to_vec()
        }

        // Edges.
        "GetEventsByExecutionIDs" => {
            let r: pb::GetEventsByExecutionIDsRequest = decode(request)?;
            pb::GetEventsByExecutionIDsResponse { events: q.events(NodeKind::Execution, &r.execution_ids)? }
                .encode_to_vec()
        }
        "GetEventsByArtifactIDs" => {
            let r: pb::GetEventsByArtifactIDsRequest = decode(request)?;
            pb::GetEventsByArtifactIDsResponse { events: q.events(NodeKind::Artifact, &r.artifact_ids)? }
                .encode_to_vec()
        }
        "GetContextsByArtifact" => {
            let r: pb::GetContextsByArtifactRequest = decode(request)?;
            pb::GetContextsByArtifactResponse { contexts: q.contexts_of(NodeKind::Artifact, r.artifact_id)? }
                .encode_to_vec()
        }
        "GetContextsByExecution" => {
            let r: pb::GetContextsByExecutionRequest = decode(request)?;
            pb::GetContextsByExecutionResponse { contexts: q.contexts_of(NodeKind::Execution, r.execution_id)? }
                .encode_to_vec()
        }
        "GetParentContextsByContext" => {
            let r: pb::GetParentContextsByContextRequest = decode(request)?;
            let contexts = q.linked_contexts(Link::Parents, r.context_id.unwrap_or_default())?;
            pb::GetParentContextsByContextResponse { contexts }.encode_to_vec()
        }
        "GetChildrenContextsByContext" => {
            let r: pb::GetChildrenContextsByContextRequest = decode(request)?;
            let contexts = q.linked_contexts(Link::Children, r.context_id.unwrap_or_default())?;
            pb::GetChildrenContextsByContextResponse { contexts }.encode_to_vec()
        }
        "GetParentContextsByContexts" => {
            let r: pb::GetParentContextsByContextsRequest = decode(request)?;
            let contexts = q
                .linked_contexts_map(Link::Parents, &r.context_ids)?
                .into_iter()
                .map(|(id, parent_contexts)| {
                    (id, pb::get_parent_contexts_by_contexts_response::ParentContextsPerChild { parent_contexts })
                })
                .collect();
            pb::GetParentContextsByContextsResponse { contexts }.encode_to_vec()
        }
        "GetChildrenContextsByContexts" => {
            let r: pb::GetChildrenContextsByContextsRequest = decode(request)?;
            let contexts = q
                .linked_contexts_map(Link::Children, &r.context_ids)?
                .into_iter()
                .map(|(id, children_contexts)| {
                    (
                        id,
                        pb::get_children_contexts_by_contexts_response::ChildrenContextsPerParent { children_contexts },
                    )
                })
                .collect();
            pb::GetChildrenContextsByContextsResponse { contexts }.encode_to_vec()
        }

        // Lineage.
        "GetLineageSubgraph" => {
            let r: pb::GetLineageSubgraphRequest = decode(request)?;
            pb::GetLineageSubgraphResponse { lineage_subgraph: Some(lineage::subgraph(&q, r)?) }.encode_to_vec()
        }
        "GetLineageGraph" => {
            let _: pb::GetLineageGraphRequest = decode(request)?;
            return Err(MlmdError::new(Code::Unimplemented, "GetLineageGraph is not implemented."));
        }
        other => return Err(MlmdError::new(Code::Unimplemented, format!("`{other}` is not an MLMD read"))),
    })
}

/// Read-only connections to a shard's SQLite file, reused (a small pool behind a mutex) and
/// opened lazily. Each call runs in its own read transaction, so it sees one snapshot.
pub struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Most idle connections a [`Reader`] keeps.
const MAX_IDLE: usize = 8;

impl Reader {
    /// A reader of the SQLite file at `path` (nothing is opened yet).
    pub fn new(path: PathBuf) -> Reader {
        Reader { path, idle: Mutex::new(Vec::new()) }
    }

    /// Answers read RPC `rpc` for `tenant` (see [`answer`]). Blocking: the caller runs it on a
    /// blocking thread.
    pub fn call(&self, tenant: &str, rpc: &str, request: &[u8]) -> Result<Vec<u8>> {
        if !is_read(rpc) {
            return Err(MlmdError::new(Code::Unimplemented, format!("`{rpc}` is not an MLMD read")));
        }
        let conn = match self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            Some(c) => c,
            None => self.open()?,
        };
        let out = Self::in_snapshot(&conn, tenant, rpc, request);
        if !matches!(&out, Err(e) if e.code == Code::Internal) {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        out
    }

    fn in_snapshot(conn: &Connection, tenant: &str, rpc: &str, request: &[u8]) -> Result<Vec<u8>> {
        let tx = conn.unchecked_transaction()?;
        let out = answer(&tx, tenant, rpc, request);
        drop(tx);
        out
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }
}

/// `Some(token)` unless it is empty (MLMD sets the field only then, except in `Get*ByType`).
fn non_empty(token: Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty())
}

/// Whether the encoded message has field `number` at its top level (an unknown field too).
fn has_top_level_field(buf: &[u8], number: u32) -> bool {
    crate::store::top_level_fields(buf).is_ok_and(|fields| fields.iter().any(|(n, _)| *n == number))
}

/// Parents or children of a context.
#[derive(Clone, Copy)]
enum Link {
    Parents,
    Children,
}

/// Type-specific trimming of what some reads leave out.
trait ReadType: Type {
    /// Clears the fields MLMD's lookups by external id do not fill (`base_type`, and an
    /// execution type's `input_type`/`output_type`).
    fn trim_for_external_lookup(&mut self) {
        self.set_base_type(None);
    }
}

impl ReadType for pb::ArtifactType {}
impl ReadType for pb::ContextType {}
impl ReadType for pb::ExecutionType {
    fn trim_for_external_lookup(&mut self) {
        self.base_type = None;
        self.input_type = None;
        self.output_type = None;
    }
}

/// One read: a connection and the tenant whose rows it sees.
pub(crate) struct Ctx<'a> {
    conn: &'a Connection,
    tenant: &'a str,
}

impl Ctx<'_> {
    /// Decodes every row's first column (an encoded message).
    fn messages<M: Message + Default>(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<M>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(args)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let bytes: Vec<u8> = row.get(0)?;
            out.push(M::decode(bytes.as_slice())?);
        }
        Ok(out)
    }

    /// Every row's first column, an integer.
    fn ids(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ----- Types -----

    fn type_by_name<T: Type>(&self, name: Option<String>, version: Option<String>) -> Result<T> {
        let name = name.unwrap_or_default();
        let version = version.unwrap_or_default();
        store::find_type::<T>(self.conn, self.tenant, &name, &version)?.ok_or_else(|| {
            let shown = if version.is_empty() { "nullopt" } else { version.as_str() };
            MlmdError::not_found(format!("No type found for query, name: `{name}`, version: `{shown}`"))
        })
    }

    fn types_by_id<T: Type>(&self, ids: &[i64]) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for &id in ids {
            if let Some(t) = store::get_type::<T>(self.conn, self.tenant, id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Every type of kind `T`, by id, as MLMD lists them: without `external_id`.
    fn listed_types<T: Type>(&self, hide_simple: bool) -> Result<Vec<T>> {
        let mut types: Vec<T> = self.messages(
            "SELECT proto FROM mlmd_type WHERE tenant = ?1 AND kind = ?2 ORDER BY id",
            params![self.tenant, T::KIND as i64],
        )?;
        if hide_simple {
            types.retain(|t| !SIMPLE_TYPE_NAMES.contains(&t.name().unwrap_or_default()));
        }
        for t in &mut types {
            t.set_external_id(None);
        }
        Ok(types)
    }

    fn types_by_external_id<T: ReadType>(&self, external_ids: Vec<String>) -> Result<Vec<T>> {
        check_external_ids(&external_ids)?;
        let wanted: BTreeSet<String> = external_ids.into_iter().collect();
        let mut out = Vec::new();
        // By external id, as MLMD's index returns them.
        for x in &wanted {
            let found: Vec<T> = self.messages(
                "SELECT proto FROM mlmd_type WHERE tenant = ?1 AND kind = ?2 AND external_id = ?3",
                params![self.tenant, T::KIND as i64, x],
            )?;
            for mut t in found {
                t.trim_for_external_lookup();
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The types of `artifacts` (in order of first use), for `populate_artifact_types`: without
    /// `base_type`, as MLMD gives them.
    fn types_of(&self, artifacts: &[pb::Artifact]) -> Result<Vec<pb::ArtifactType>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for a in artifacts {
            let Some(id) = a.type_id else { continue };
            if seen.insert(id) {
                if let Some(mut t) = store::get_type::<pb::ArtifactType>(self.conn, self.tenant, id)? {
                    t.base_type = None;
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    // ----- Nodes -----

    fn nodes_by_id<N: Node>(&self, ids: &[i64]) -> Result<Vec<N>> {
        let ids: BTreeSet<i64> = ids.iter().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(n) = store::get_node::<N>(self.conn, self.tenant, id)? {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn nodes_by_external_id<N: Node>(&self, external_ids: Vec<String>) -> Result<Vec<N>> {
        check_external_ids(&external_ids)?;
        let mut found = BTreeMap::new();
        for x in &external_ids {
            if let Some(n) = store::find_node_by_external_id::<N>(self.conn, self.tenant, x)? {
                found.insert(n.id().unwrap_or_default(), n);
            }
        }
        Ok(found.into_values().collect())
    }

    fn artifacts_by_uri(&self, uris: Vec<String>) -> Result<Vec<pb::Artifact>> {
        // MLMD walks a hash set of the URIs; here, the request's order (without repeats), and
        // each URI's artifacts by id. An artifact without a URI has the URI ''.
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for uri in uris {
            if !seen.insert(uri.clone()) {
                continue;
            }
            let sql = if uri.is_empty() {
                "SELECT proto FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND (uri IS NULL OR uri = ?3) ORDER BY id"
            } else {
                "SELECT proto FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND uri = ?3 ORDER BY id"
            };
            out.extend(self.messages::<pb::Artifact>(sql, params![self.tenant, NodeKind::Artifact as i64, uri])?);
        }
        Ok(out)
    }

    fn by_type_and_name<N: Node, T: Type>(
        &self,
        type_name: Option<String>,
        type_version: Option<String>,
        name: Option<String>,
    ) -> Result<Option<N>> {
        let version = type_version.unwrap_or_default();
        let Some(t) = store::find_type::<T>(self.conn, self.tenant, type_name.as_deref().unwrap_or(""), &version)?
        else {
            return Ok(None);
        };
        let Some(type_id) = t.id() else { return Ok(None) };
        store::find_node::<N>(self.conn, self.tenant, type_id, name.as_deref().unwrap_or(""))
    }

    /// Nodes in `scope`: every one by id without `options`, else a page and its token.
    fn list<N: Node>(
        &self,
        scope: Scope,
        options: Option<&pb::ListOperationOptions>,
    ) -> Result<(Vec<N>, Option<String>)> {
        match options {
            Some(o) => {
                let (nodes, token) = list::page::<N>(self, scope, o)?;
                Ok((nodes, Some(token)))
            }
            None => Ok((list::all::<N>(self, scope)?, None)),
        }
    }

    /// `Get*ByType`: nothing (and no option checked) when the type or its nodes are missing;
    /// with `options`, the token field is set even when empty, as MLMD does.
    fn by_type<N: Node, T: Type>(
        &self,
        type_name: Option<String>,
        type_version: Option<String>,
        options: Option<&pb::ListOperationOptions>,
    ) -> Result<(Vec<N>, Option<String>)> {
        let version = type_version.unwrap_or_default();
        let Some(t) = store::find_type::<T>(self.conn, self.tenant, type_name.as_deref().unwrap_or(""), &version)?
        else {
            return Ok((Vec::new(), None));
        };
        let scope = Scope::Type(t.id().unwrap_or_default());
        if list::is_empty(self, N::KIND, scope)? {
            return Ok((Vec::new(), None));
        }
        self.list(scope, options)
    }

    /// `Get{Artifacts,Executions}ByContext`: nothing (and no option checked) when the context
    /// has no such node.
    fn by_context<N: Node>(
        &self,
        context_id: i64,
        options: Option<&pb::ListOperationOptions>,
    ) -> Result<(Vec<N>, Option<String>)> {
        let scope = Scope::Context(context_id);
        if list::is_empty(self, N::KIND, scope)? {
            return Ok((Vec::new(), None));
        }
        self.list(scope, options)
    }

    // ----- Edges -----

    /// The events of the given artifacts (or executions): by node id, then by event id.
    fn events(&self, by: NodeKind, ids: &[i64]) -> Result<Vec<pb::Event>> {
        let sql = match by {
            NodeKind::Artifact => "SELECT proto FROM mlmd_event WHERE tenant = ?1 AND artifact_id = ?2 ORDER BY id",
            _ => "SELECT proto FROM mlmd_event WHERE tenant = ?1 AND execution_id = ?2 ORDER BY id",
        };
        let ids: BTreeSet<i64> = ids.iter().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.messages::<pb::Event>(sql, params![self.tenant, id])?);
        }
        Ok(out)
    }

    /// The contexts of an artifact (or execution), by id; none is NOT_FOUND.
    fn contexts_of(&self, kind: NodeKind, id: Option<i64>) -> Result<Vec<pb::Context>> {
        let id = id.unwrap_or_default();
        let ids = self.context_ids_of(kind, id)?;
        if ids.is_empty() {
            return Err(MlmdError::not_found(format!("No contexts found for {}_id: {id}", kind.name())));
        }
        self.nodes_by_id(&ids)
    }

    /// The ids of the contexts an artifact is attributed to (or an execution associated with).
    fn context_ids_of(&self, kind: NodeKind, id: i64) -> Result<Vec<i64>> {
        let sql = match kind {
            NodeKind::Artifact => {
                "SELECT context_id FROM mlmd_attribution WHERE tenant = ?1 AND artifact_id = ?2 ORDER BY context_id"
            }
            _ => "SELECT context_id FROM mlmd_association WHERE tenant = ?1 AND execution_id = ?2 ORDER BY context_id",
        };
        self.ids(sql, params![self.tenant, id])
    }

    fn linked_ids(&self, link: Link, id: i64) -> Result<Vec<i64>> {
        let sql = match link {
            Link::Parents => {
                "SELECT parent_id FROM mlmd_parent_context WHERE tenant = ?1 AND child_id = ?2 ORDER BY parent_id"
            }
            Link::Children => {
                "SELECT child_id FROM mlmd_parent_context WHERE tenant = ?1 AND parent_id = ?2 ORDER BY child_id"
            }
        };
        self.ids(sql, params![self.tenant, id])
    }

    fn linked_contexts(&self, link: Link, id: i64) -> Result<Vec<pb::Context>> {
        let ids = self.linked_ids(link, id)?;
        self.nodes_by_id(&ids)
    }

    /// For each of `ids` that has any, its parents (or children), by id. No id is
    /// INVALID_ARGUMENT, as in MLMD.
    fn linked_contexts_map(&self, link: Link, ids: &[i64]) -> Result<BTreeMap<i64, Vec<pb::Context>>> {
        if ids.is_empty() {
            return Err(MlmdError::invalid("Given context_ids is empty."));
        }
        let mut out = BTreeMap::new();
        for &id in ids.iter().collect::<BTreeSet<_>>() {
            let linked = self.linked_contexts(link, id)?;
            if !linked.is_empty() {
                out.insert(id, linked);
            }
        }
        Ok(out)
    }
}

/// MLMD refuses a lookup by external id that contains an empty one.
fn check_external_ids(ids: &[String]) -> Result<()> {
    if ids.iter().any(|x| x.is_empty()) {
        return Err(MlmdError::invalid("Invalid argument because at least one empty external_id exists."));
    }
    Ok(())
}
