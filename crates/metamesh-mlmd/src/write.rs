//! The write RPCs (`Put*`): MLMD's rules, applied by the state machine on every replica.
//!
//! A refused request changes nothing: the store runs each command in a savepoint and rolls it
//! back on error, so a batch that fails half-way leaves no trace.

// MLMD marks `can_delete_fields` and `all_fields_match` deprecated; they are still honored.
#![allow(deprecated)]

use std::collections::BTreeMap;

use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::pb;
use crate::store::{self, decode, Node, NodeKind, Type};
use crate::{Code, MlmdError, Result};

/// Applies write RPC `rpc` (the method name, e.g. `PutArtifacts`) of `tenant` at time `at_ms`
/// and returns the encoded response.
pub fn apply(conn: &Connection, tenant: &str, at_ms: i64, rpc: &str, request: &[u8]) -> Result<Vec<u8>> {
    apply_with_mirrors(conn, tenant, at_ms, rpc, request).map(|(response, _)| response)
}

/// [`apply`], and what the write means for the mesh's own catalog and lineage ([`Mirror`]).
pub fn apply_with_mirrors(
    conn: &Connection,
    tenant: &str,
    at_ms: i64,
    rpc: &str,
    request: &[u8],
) -> Result<(Vec<u8>, Vec<Mirror>)> {
    let w = Writer { conn, tenant, at_ms, mirrors: Default::default() };
    let response = w.dispatch(rpc, request)?;
    Ok((response, w.mirrors.into_inner()))
}

/// A change of MLMD state as the mesh's catalog sees it: a node written (a new version of its
/// entity), or an event (a lineage edge between an artifact's and an execution's entities).
#[derive(Clone, Debug, PartialEq)]
pub enum Mirror {
    Node(MirrorNode),
    Event {
        artifact: MirrorRef,
        execution: MirrorRef,
        /// The artifact was read by the execution (an input event); else written by it.
        input: bool,
    },
}

/// Where an MLMD node lives in the catalog: its entity kind and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRef {
    /// `dataset`, `model` (artifacts, by their type's base type), `run` (executions),
    /// `experiment` (contexts).
    pub kind: &'static str,
    /// `mlmd:<type name>:<id>`: stable, since neither an id nor a node's type ever changes.
    pub name: String,
}

/// A node written, with what the catalog shows of it.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorNode {
    pub at: MirrorRef,
    pub id: i64,
    pub type_name: String,
    pub name: Option<String>,
    pub uri: Option<String>,
    pub state: Option<i32>,
    /// Int, double, string and bool properties and custom properties (`custom.<name>`).
    pub properties: Vec<(String, PropertyValue)>,
}

/// A scalar property value.
#[derive(Clone, Debug, PartialEq)]
pub enum PropertyValue {
    Int(i64),
    Double(f64),
    String(String),
    Bool(bool),
}

/// Where node `id` of `kind`, of type `type_name` with base type `base_type`, is in the catalog.
fn mirror_ref(kind: NodeKind, type_name: &str, base_type: Option<i32>, id: i64) -> MirrorRef {
    MirrorRef { kind: mesh_kind(kind, base_type), name: format!("mlmd:{type_name}:{id}") }
}

/// The catalog kind of an MLMD node kind (artifacts: by their type's base type).
fn mesh_kind(kind: NodeKind, base_type: Option<i32>) -> &'static str {
    match kind {
        NodeKind::Execution => "run",
        NodeKind::Context => "experiment",
        NodeKind::Artifact => match base_type {
            Some(b) if b == pb::artifact_type::SystemDefinedBaseType::Model as i32 => "model",
            _ => "dataset",
        },
    }
}

impl Writer<'_> {
    fn dispatch(&self, rpc: &str, request: &[u8]) -> Result<Vec<u8>> {
        let w = self;
        Ok(match rpc {
            "PutArtifactType" => {
                let r: pb::PutArtifactTypeRequest = decode(request)?;
                let flags = Flags::of(r.can_add_fields, r.can_omit_fields, r.can_delete_fields, r.all_fields_match)?;
                let id = w.put_type(r.artifact_type.unwrap_or_default(), flags)?;
                pb::PutArtifactTypeResponse { type_id: Some(id) }.encode_to_vec()
            }
            "PutExecutionType" => {
                let r: pb::PutExecutionTypeRequest = decode(request)?;
                let flags = Flags::of(r.can_add_fields, r.can_omit_fields, r.can_delete_fields, r.all_fields_match)?;
                let id = w.put_type(r.execution_type.unwrap_or_default(), flags)?;
                pb::PutExecutionTypeResponse { type_id: Some(id) }.encode_to_vec()
            }
            "PutContextType" => {
                let r: pb::PutContextTypeRequest = decode(request)?;
                let flags = Flags::of(r.can_add_fields, r.can_omit_fields, r.can_delete_fields, r.all_fields_match)?;
                let id = w.put_type(r.context_type.unwrap_or_default(), flags)?;
                pb::PutContextTypeResponse { type_id: Some(id) }.encode_to_vec()
            }
            "PutTypes" => {
                let r: pb::PutTypesRequest = decode(request)?;
                let flags = Flags::of(r.can_add_fields, r.can_omit_fields, r.can_delete_fields, r.all_fields_match)?;
                let mut out = pb::PutTypesResponse::default();
                for t in r.artifact_types {
                    out.artifact_type_ids.push(w.put_type(t, flags)?);
                }
                for t in r.execution_types {
                    out.execution_type_ids.push(w.put_type(t, flags)?);
                }
                for t in r.context_types {
                    out.context_type_ids.push(w.put_type(t, flags)?);
                }
                out.encode_to_vec()
            }
            "PutArtifacts" => {
                let r: pb::PutArtifactsRequest = decode(request)?;
                let check_time = r.options.and_then(|o| o.abort_if_latest_updated_time_changed).unwrap_or(false);
                let mask = mask_paths(r.update_mask);
                let mut ids = Vec::new();
                for a in r.artifacts {
                    ids.push(w.put_node(a, &mask, Upsert { check_update_time: check_time, ..Upsert::default() })?);
                }
                pb::PutArtifactsResponse { artifact_ids: ids }.encode_to_vec()
            }
            "PutExecutions" => {
                let r: pb::PutExecutionsRequest = decode(request)?;
                let mask = mask_paths(r.update_mask);
                let ids =
                    r.executions.into_iter().map(|e| w.put_node(e, &mask, Upsert::default())).collect::<Result<_>>()?;
                pb::PutExecutionsResponse { execution_ids: ids }.encode_to_vec()
            }
            "PutContexts" => {
                let r: pb::PutContextsRequest = decode(request)?;
                let mask = mask_paths(r.update_mask);
                let ids =
                    r.contexts.into_iter().map(|c| w.put_node(c, &mask, Upsert::default())).collect::<Result<_>>()?;
                pb::PutContextsResponse { context_ids: ids }.encode_to_vec()
            }
            "PutEvents" => {
                let r: pb::PutEventsRequest = decode(request)?;
                for e in r.events {
                    w.put_event(e)?;
                }
                pb::PutEventsResponse::default().encode_to_vec()
            }
            "PutExecution" => w.put_execution(decode(request)?)?.encode_to_vec(),
            "PutLineageSubgraph" => w.put_lineage_subgraph(decode(request)?)?.encode_to_vec(),
            "PutAttributionsAndAssociations" => {
                let r: pb::PutAttributionsAndAssociationsRequest = decode(request)?;
                for a in r.attributions {
                    w.attribute(require(a.context_id, "context_id")?, require(a.artifact_id, "artifact_id")?)?;
                }
                for a in r.associations {
                    w.associate(require(a.context_id, "context_id")?, require(a.execution_id, "execution_id")?)?;
                }
                pb::PutAttributionsAndAssociationsResponse::default().encode_to_vec()
            }
            "PutParentContexts" => {
                let r: pb::PutParentContextsRequest = decode(request)?;
                for p in r.parent_contexts {
                    w.put_parent_context(p)?;
                }
                pb::PutParentContextsResponse::default().encode_to_vec()
            }
            other => return Err(MlmdError::new(Code::Unimplemented, format!("`{other}` is not an MLMD write"))),
        })
    }
}

/// Whether `rpc` is a write handled by [`apply`].
pub fn is_write(rpc: &str) -> bool {
    rpc.starts_with("Put")
}

fn require(v: Option<i64>, field: &str) -> Result<i64> {
    v.ok_or_else(|| MlmdError::invalid(format!("no {field} is given")))
}

/// The upsert flags of a type request.
#[derive(Clone, Copy)]
struct Flags {
    can_add_fields: bool,
    can_omit_fields: bool,
}

impl Flags {
    fn of(add: Option<bool>, omit: Option<bool>, delete: Option<bool>, all_match: Option<bool>) -> Result<Flags> {
        if delete.unwrap_or(false) {
            return Err(MlmdError::new(Code::Unimplemented, "Deleting fields is not supported."));
        }
        if !all_match.unwrap_or(true) {
            return Err(MlmdError::new(Code::Unimplemented, "Must match all fields."));
        }
        Ok(Flags { can_add_fields: add.unwrap_or(false), can_omit_fields: omit.unwrap_or(false) })
    }
}

/// Options of one node upsert.
#[derive(Clone, Copy, Default)]
struct Upsert {
    /// `abort_if_latest_updated_time_changed`: the stored update time must equal the given one.
    check_update_time: bool,
    /// Write a new update time even when nothing changed (`force_update_time`).
    force_update_time: bool,
}

fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}

struct Writer<'a> {
    conn: &'a Connection,
    tenant: &'a str,
    at_ms: i64,
    mirrors: std::cell::RefCell<Vec<Mirror>>,
}

impl Writer<'_> {
    /// MLMD's type upsert: a new (name, version) is created; an existing one is returned as it
    /// is, or widened (`can_add_fields`) / narrowed in the request only (`can_omit_fields`).
    fn put_type<T: Type>(&self, mut t: T, flags: Flags) -> Result<i64> {
        let name = t.name().unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(MlmdError::invalid("No type name is specified."));
        }
        for (p, ty) in t.properties() {
            if *ty == pb::PropertyType::Unknown as i32 {
                return Err(MlmdError::invalid(format!("Property `{p}` of type `{name}` has type UNKNOWN.")));
            }
        }
        let version = t.version().unwrap_or_default().to_owned();
        let Some(mut stored) = store::find_type::<T>(self.conn, self.tenant, &name, &version)? else {
            if let Some(id) = t.id() {
                return Err(MlmdError::invalid(format!("Type `{name}` does not exist; an id ({id}) is given for it.")));
            }
            let id = store::next_id(self.conn, self.tenant, "type")?;
            t.set_id(id);
            if t.version() == Some("") {
                t.clear_version();
            }
            store::save_type(self.conn, self.tenant, &t)?;
            return Ok(id);
        };
        let id = stored.id().unwrap_or_default();
        if t.id().is_some_and(|given| given != id) {
            return Err(MlmdError::invalid(format!(
                "Given type id {} is different from the existing type's id {id} of `{name}`.",
                t.id().unwrap_or_default()
            )));
        }
        let mut changed = false;
        for (p, ty) in stored.properties() {
            match t.properties().get(p) {
                Some(given) if given != ty => {
                    return Err(MlmdError::exists(format!(
                        "Type `{name}` already exists with a different type for property `{p}`."
                    )))
                }
                Some(_) => {}
                None if flags.can_omit_fields => {}
                None => {
                    return Err(MlmdError::exists(format!(
                    "Type `{name}` already exists with different properties (`{p}` is omitted; set can_omit_fields)."
                )))
                }
            }
        }
        let added: Vec<(String, i32)> = t
            .properties()
            .iter()
            .filter(|(p, _)| !stored.properties().contains_key(*p))
            .map(|(p, ty)| (p.clone(), *ty))
            .collect();
        if !added.is_empty() {
            if !flags.can_add_fields {
                return Err(MlmdError::exists(format!(
                    "Type `{name}` already exists with different properties (`{}` is new; set can_add_fields).",
                    added[0].0
                )));
            }
            stored.properties_mut().extend(added);
            changed = true;
        }
        if let Some(b) = t.base_type() {
            if stored.base_type().unwrap_or(0) != b {
                return Err(MlmdError::new(
                    Code::Unimplemented,
                    format!("Changing the base_type of existing type `{name}` is not supported."),
                ));
            }
        }
        if let Some(x) = t.external_id().filter(|x| !x.is_empty()) {
            if stored.external_id() != Some(x) {
                stored.set_external_id(Some(x.to_owned()));
                changed = true;
            }
        }
        // As in MLMD, an upsert never changes a stored type's description.
        if changed {
            store::save_type(self.conn, self.tenant, &stored)?;
        }
        Ok(id)
    }

    /// Saves node `n`, of type `type_name` with base type `base_type`, and notes its mirror.
    fn save<N: Node>(&self, n: &N, type_name: &str, base_type: Option<i32>) -> Result<()> {
        store::save_node(self.conn, self.tenant, n)?;
        let id = n.id().unwrap_or_default();
        let mut properties = Vec::new();
        for (prefix, props) in [("", n.properties()), ("custom.", n.custom_properties())] {
            for (name, v) in props {
                use pb::value::Value as V;
                let value = match &v.value {
                    Some(V::IntValue(i)) => PropertyValue::Int(*i),
                    Some(V::DoubleValue(d)) => PropertyValue::Double(*d),
                    Some(V::StringValue(s)) => PropertyValue::String(s.clone()),
                    Some(V::BoolValue(b)) => PropertyValue::Bool(*b),
                    _ => continue,
                };
                properties.push((format!("{prefix}{name}"), value));
            }
        }
        self.mirrors.borrow_mut().push(Mirror::Node(MirrorNode {
            at: mirror_ref(N::KIND, type_name, base_type, id),
            id,
            type_name: type_name.to_owned(),
            name: n.name().map(str::to_owned),
            uri: n.uri().map(str::to_owned),
            state: n.state(),
            properties,
        }));
        Ok(())
    }

    /// The catalog place of node `id` of `kind`, looked up.
    fn mirror_ref_of(&self, kind: NodeKind, id: i64) -> Result<MirrorRef> {
        let type_id: i64 = self
            .conn
            .prepare_cached("SELECT type_id FROM mlmd_node WHERE tenant = ?1 AND kind = ?2 AND id = ?3")?
            .query_row(params![self.tenant, kind as i64, id], |r| r.get(0))?;
        let (type_name, _, base_type) = type_shape(self.conn, self.tenant, kind, type_id)?.unwrap_or_default();
        Ok(mirror_ref(kind, &type_name, base_type, id))
    }

    /// Checks `n`'s properties against its type: each must be declared, with a value of the
    /// declared type. Returns the type's shape.
    fn check_properties<N: Node>(&self, n: &N, type_id: i64) -> Result<Shape> {
        let shape = type_shape(self.conn, self.tenant, N::KIND, type_id)?
            .ok_or_else(|| MlmdError::not_found(format!("Cannot find {} type with id {type_id}.", N::KIND.name())))?;
        let (name, declared, _) = &shape;
        for (p, v) in n.properties() {
            let Some(want) = declared.get(p) else {
                return Err(MlmdError::invalid(format!(
                    "Found unknown property `{p}` (not declared by type `{name}`)."
                )));
            };
            if value_type(v) != Some(*want) {
                return Err(MlmdError::invalid(format!("Found unmatched property type of `{p}` (type `{name}`).")));
            }
        }
        for (p, v) in n.custom_properties() {
            if v.value.is_none() {
                return Err(MlmdError::invalid(format!("Custom property `{p}` has no value.")));
            }
        }
        Ok(shape)
    }

    /// Inserts (no id) or updates (id) node `n`; returns its id.
    fn put_node<N: Node>(&self, mut n: N, mask: &[String], opts: Upsert) -> Result<i64> {
        let Some(id) = n.id() else {
            // A mask plays no part in an insert.
            let type_id = n
                .type_id()
                .ok_or_else(|| MlmdError::invalid(format!("No type_id is given for the {}.", N::KIND.name())))?;
            if N::KIND == NodeKind::Context && n.name().unwrap_or_default().is_empty() {
                return Err(MlmdError::invalid("Context name should not be empty."));
            }
            let (type_name, _, base_type) = self.check_properties(&n, type_id)?;
            let id = store::next_id(self.conn, self.tenant, N::KIND.name())?;
            n.set_id(id);
            n.fill_uri();
            n.set_type_name(Some(type_name.clone()));
            n.set_times(self.at_ms, self.at_ms);
            self.save(&n, &type_name, base_type)?;
            return Ok(id);
        };
        let stored: N = store::get_node(self.conn, self.tenant, id)?
            .ok_or_else(|| MlmdError::invalid(format!("Cannot find {} with id {id} to update.", N::KIND.name())))?;
        let stored_type = stored.type_id().unwrap_or_default();
        if n.type_id().is_some_and(|t| t != stored_type) && mask.is_empty() {
            return Err(MlmdError::invalid(format!(
                "The {} with id {id} has type_id {stored_type}; its type cannot change.",
                N::KIND.name()
            )));
        }
        if opts.check_update_time && n.update_time() != stored.update_time() {
            return Err(MlmdError::new(
                Code::FailedPrecondition,
                format!("`abort_if_latest_updated_time_changed` is set, and the stored {} with id {id} has a different last_update_time_since_epoch.", N::KIND.name()),
            ));
        }
        let mut next = if mask.is_empty() {
            let mut next = n;
            next.set_type_id(stored_type);
            // MLMD keeps an artifact's uri as a column: one without a uri has "".
            next.fill_uri();
            next
        } else {
            masked(&stored, &n, mask)?
        };
        let (type_name, _, base_type) = self.check_properties(&next, stored_type)?;
        next.set_type_name(Some(type_name.clone()));
        next.set_times(stored.create_time().unwrap_or_default(), stored.update_time().unwrap_or_default());
        if next == stored && !opts.force_update_time {
            return Ok(id);
        }
        next.set_times(stored.create_time().unwrap_or_default(), self.at_ms.max(stored.update_time().unwrap_or(0)));
        self.save(&next, &type_name, base_type)?;
        Ok(id)
    }

    fn put_event(&self, mut e: pb::Event) -> Result<()> {
        let artifact = e.artifact_id.ok_or_else(|| MlmdError::invalid("No artifact id is specified."))?;
        let execution = e.execution_id.ok_or_else(|| MlmdError::invalid("No execution id is specified."))?;
        let ty = e.r#type.unwrap_or(0);
        if ty == pb::event::Type::Unknown as i32 {
            return Err(MlmdError::invalid("No event type is specified."));
        }
        if !store::node_exists(self.conn, self.tenant, NodeKind::Artifact, artifact)? {
            return Err(MlmdError::invalid(format!("No artifact with the given id {artifact}.")));
        }
        if !store::node_exists(self.conn, self.tenant, NodeKind::Execution, execution)? {
            return Err(MlmdError::invalid(format!("No execution with the given id {execution}.")));
        }
        let duplicate = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM mlmd_event WHERE tenant = ?1 AND artifact_id = ?2 AND execution_id = ?3 AND type = ?4",
            )?
            .query_row(params![self.tenant, artifact, execution, ty], |_| Ok(()))
            .optional()?;
        if duplicate.is_some() {
            return Err(MlmdError::exists(format!(
                "An event of type {ty} between artifact {artifact} and execution {execution} already exists."
            )));
        }
        let ms = *e.milliseconds_since_epoch.get_or_insert(self.at_ms);
        let id = store::next_id(self.conn, self.tenant, "event")?;
        self.conn
            .prepare_cached(
                "INSERT INTO mlmd_event (tenant, id, artifact_id, execution_id, type, ms, proto)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![self.tenant, id, artifact, execution, ty, ms, e.encode_to_vec()])?;
        use pb::event::Type as T;
        let input = [T::Input, T::DeclaredInput, T::InternalInput].iter().any(|t| *t as i32 == ty);
        let mirror = Mirror::Event {
            artifact: self.mirror_ref_of(NodeKind::Artifact, artifact)?,
            execution: self.mirror_ref_of(NodeKind::Execution, execution)?,
            input,
        };
        self.mirrors.borrow_mut().push(mirror);
        Ok(())
    }

    fn attribute(&self, context: i64, artifact: i64) -> Result<()> {
        self.link("mlmd_attribution", "artifact_id", context, NodeKind::Artifact, artifact)
    }

    fn associate(&self, context: i64, execution: i64) -> Result<()> {
        self.link("mlmd_association", "execution_id", context, NodeKind::Execution, execution)
    }

    /// An attribution or association; one that exists already is kept (MLMD ignores it).
    fn link(&self, table: &str, column: &str, context: i64, kind: NodeKind, node: i64) -> Result<()> {
        if !store::node_exists(self.conn, self.tenant, NodeKind::Context, context)? {
            return Err(MlmdError::invalid(format!("No context with the given id {context}.")));
        }
        if !store::node_exists(self.conn, self.tenant, kind, node)? {
            return Err(MlmdError::invalid(format!("No {} with the given id {node}.", kind.name())));
        }
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {table} (tenant, context_id, {column}) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"
            ))?
            .execute(params![self.tenant, context, node])?;
        Ok(())
    }

    fn put_parent_context(&self, p: pb::ParentContext) -> Result<()> {
        let child = require(p.child_id, "child_id")?;
        let parent = require(p.parent_id, "parent_id")?;
        for id in [child, parent] {
            if !store::node_exists(self.conn, self.tenant, NodeKind::Context, id)? {
                return Err(MlmdError::invalid(format!("No context with the given id {id}.")));
            }
        }
        if child == parent {
            return Err(MlmdError::invalid(format!("A context ({child}) cannot be its own parent.")));
        }
        // A cycle: the child is already an ancestor of the parent.
        let cycle = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE up(id) AS (
                   SELECT ?2
                   UNION SELECT p.parent_id FROM mlmd_parent_context p JOIN up ON p.child_id = up.id WHERE p.tenant = ?1
                 ) SELECT 1 FROM up WHERE id = ?3",
            )?
            .query_row(params![self.tenant, parent, child], |_| Ok(()))
            .optional()?;
        if cycle.is_some() {
            return Err(MlmdError::invalid(format!(
                "Making context {parent} a parent of context {child} would close a cycle."
            )));
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO mlmd_parent_context (tenant, child_id, parent_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![self.tenant, child, parent])?;
        if inserted == 0 {
            return Err(MlmdError::exists(format!("Context {parent} is already a parent of context {child}.")));
        }
        Ok(())
    }

    /// A context given by a put_execution/put_lineage_subgraph: reused by (type, name) when
    /// asked and it exists, else upserted.
    fn context(&self, c: pb::Context, reuse: bool, force_reuse: bool) -> Result<i64> {
        if force_reuse {
            if let Some(id) = c.id {
                if !store::node_exists(self.conn, self.tenant, NodeKind::Context, id)? {
                    return Err(MlmdError::invalid(format!("Cannot find context with id {id} to reuse.")));
                }
                // Reused as stored: the request's fields are not written.
                return Ok(id);
            }
        }
        if reuse && c.id.is_none() {
            if let (Some(t), Some(name)) = (c.type_id, c.name.as_deref()) {
                if let Some(found) = store::find_node::<pb::Context>(self.conn, self.tenant, t, name)? {
                    return Ok(found.id.unwrap_or_default());
                }
            }
        }
        self.put_node(c, &[], Upsert::default())
    }

    /// An artifact given by a put_execution/put_lineage_subgraph: reused by external id when
    /// asked and it exists, else upserted.
    fn artifact(&self, mut a: pb::Artifact, reuse_by_external_id: bool) -> Result<i64> {
        if reuse_by_external_id && a.id.is_none() {
            if let Some(x) = a.external_id.as_deref().filter(|x| !x.is_empty()) {
                if let Some(found) = store::find_node_by_external_id::<pb::Artifact>(self.conn, self.tenant, x)? {
                    // Reused, and updated with what the request gives.
                    a.id = found.id;
                }
            }
        }
        self.put_node(a, &[], Upsert::default())
    }

    fn put_execution(&self, r: pb::PutExecutionRequest) -> Result<pb::PutExecutionResponse> {
        let opts = r.options.unwrap_or_default();
        let execution = r.execution.ok_or_else(|| MlmdError::invalid("No execution is given."))?;
        let upsert = Upsert { force_update_time: opts.force_update_time.unwrap_or(false), ..Upsert::default() };
        let execution_id = self.put_node(execution, &[], upsert)?;
        let mut artifact_ids = Vec::new();
        for pair in r.artifact_event_pairs {
            let artifact_id = match pair.artifact {
                Some(a) => self.artifact(a, opts.reuse_artifact_if_already_exist_by_external_id.unwrap_or(false))?,
                None => pair.event.as_ref().and_then(|e| e.artifact_id).ok_or_else(|| {
                    MlmdError::invalid("An artifact_event_pair has neither an artifact nor an event naming one.")
                })?,
            };
            if let Some(mut e) = pair.event {
                if e.artifact_id.is_some_and(|a| a != artifact_id) {
                    return Err(MlmdError::invalid(format!(
                        "The event's artifact_id {} is not the pair's artifact {artifact_id}.",
                        e.artifact_id.unwrap_or_default()
                    )));
                }
                if e.execution_id.is_some_and(|x| x != execution_id) {
                    return Err(MlmdError::invalid(format!(
                        "The event's execution_id {} is not the execution {execution_id}.",
                        e.execution_id.unwrap_or_default()
                    )));
                }
                e.artifact_id = Some(artifact_id);
                e.execution_id = Some(execution_id);
                self.put_event(e)?;
            }
            artifact_ids.push(artifact_id);
        }
        let force = opts.force_reuse_context.unwrap_or(false);
        let reuse = opts.reuse_context_if_already_exist.unwrap_or(false) || force;
        let mut context_ids = Vec::new();
        for c in r.contexts {
            let context_id = self.context(c, reuse, force)?;
            self.associate(context_id, execution_id)?;
            for a in &artifact_ids {
                self.attribute(context_id, *a)?;
            }
            context_ids.push(context_id);
        }
        Ok(pb::PutExecutionResponse { execution_id: Some(execution_id), artifact_ids, context_ids })
    }

    fn put_lineage_subgraph(&self, r: pb::PutLineageSubgraphRequest) -> Result<pb::PutLineageSubgraphResponse> {
        let opts = r.options.unwrap_or_default();
        let mut out = pb::PutLineageSubgraphResponse::default();
        for c in r.contexts {
            out.context_ids.push(self.context(c, opts.reuse_context_if_already_exist.unwrap_or(false), false)?);
        }
        for a in r.artifacts {
            out.artifact_ids
                .push(self.artifact(a, opts.reuse_artifact_if_already_exist_by_external_id.unwrap_or(false))?);
        }
        for e in r.executions {
            out.execution_ids.push(self.put_node(e, &[], Upsert::default())?);
        }
        for (i, edge) in r.event_edges.into_iter().enumerate() {
            let mut e = edge.event.unwrap_or_default();
            // An end is given by its index in the request, or else by the event's own id.
            let index = |v: Option<i32>, given: Option<i64>, ids: &[i64], what: &str| -> Result<i64> {
                let Some(v) = v else {
                    return given.ok_or_else(|| MlmdError::invalid(format!("event_edges[{i}] has no {what}_index.")));
                };
                let id = usize::try_from(v).ok().and_then(|v| ids.get(v).copied()).ok_or_else(|| {
                    MlmdError::new(Code::OutOfRange, format!("event_edges[{i}].{what}_index {v} is out of range."))
                })?;
                if given.is_some_and(|g| g != id) {
                    return Err(MlmdError::invalid(format!(
                        "event_edges[{i}].event.{what}_id is not the node at its {what}_index."
                    )));
                }
                Ok(id)
            };
            let artifact_id = index(edge.artifact_index, e.artifact_id, &out.artifact_ids, "artifact")?;
            let execution_id = index(edge.execution_index, e.execution_id, &out.execution_ids, "execution")?;
            e.artifact_id = Some(artifact_id);
            e.execution_id = Some(execution_id);
            self.put_event(e)?;
        }
        for c in &out.context_ids {
            for a in &out.artifact_ids {
                self.attribute(*c, *a)?;
            }
            for x in &out.execution_ids {
                self.associate(*c, *x)?;
            }
        }
        Ok(out)
    }
}

/// The name and declared properties of type `id` of `kind`.
type Shape = (String, BTreeMap<String, i32>, Option<i32>);

/// The name, declared properties and base type of type `id` of `kind`.
fn type_shape(conn: &Connection, tenant: &str, kind: NodeKind, id: i64) -> Result<Option<Shape>> {
    fn shape<T: Type>(t: T) -> Shape {
        (t.name().unwrap_or_default().to_owned(), t.properties().clone(), t.base_type())
    }
    Ok(match kind {
        NodeKind::Artifact => store::get_type::<pb::ArtifactType>(conn, tenant, id)?.map(shape),
        NodeKind::Execution => store::get_type::<pb::ExecutionType>(conn, tenant, id)?.map(shape),
        NodeKind::Context => store::get_type::<pb::ContextType>(conn, tenant, id)?.map(shape),
    })
}

/// The PropertyType of a value (None when unset).
fn value_type(v: &pb::Value) -> Option<i32> {
    use pb::value::Value as V;
    Some(match v.value.as_ref()? {
        V::IntValue(_) => pb::PropertyType::Int,
        V::DoubleValue(_) => pb::PropertyType::Double,
        V::StringValue(_) => pb::PropertyType::String,
        V::StructValue(_) => pb::PropertyType::Struct,
        V::ProtoValue(_) => pb::PropertyType::Proto,
        V::BoolValue(_) => pb::PropertyType::Boolean,
    } as i32)
}

/// `stored` with the fields named by `paths` taken from `given`: `properties.NAME` and
/// `custom_properties.NAME` one property at a time (removed when `given` lacks it), whole
/// `properties`/`custom_properties`, or a top-level field by name. The id, type and times
/// cannot be masked in.
fn masked<N: Node>(stored: &N, given: &N, paths: &[String]) -> Result<N> {
    // Fields are copied through the encoded form: a top-level field of a node message is
    // replaced by clearing it in `stored` and merging `given`'s value for it.
    let mut next = stored.clone();
    let mut plain: Vec<&str> = Vec::new();
    for path in paths {
        if let Some(name) = path.strip_prefix("properties.") {
            copy_prop(given.properties(), next.properties_mut(), name);
        } else if let Some(name) = path.strip_prefix("custom_properties.") {
            copy_prop(given.custom_properties(), next.custom_properties_mut(), name);
        } else if path == "properties" {
            *next.properties_mut() = given.properties().clone();
        } else if path == "custom_properties" {
            *next.custom_properties_mut() = given.custom_properties().clone();
        } else if matches!(
            path.as_str(),
            "id" | "type_id" | "type" | "create_time_since_epoch" | "last_update_time_since_epoch"
        ) {
            continue;
        } else {
            plain.push(path);
        }
    }
    if plain.is_empty() {
        return Ok(next);
    }
    let descriptor = field_numbers::<N>();
    let mut numbers = Vec::new();
    for p in plain {
        // MLMD ignores a path it does not know.
        if let Some((_, n)) = descriptor.iter().find(|(name, _)| *name == p) {
            numbers.push(*n);
        }
    }
    let strip = |bytes: Vec<u8>, keep: bool| -> Result<Vec<u8>> { filter_fields(&bytes, &numbers, keep) };
    let base = strip(next.encode_to_vec(), false)?;
    let taken = strip(given.encode_to_vec(), true)?;
    let mut merged = N::decode(base.as_slice())?;
    merged.merge(taken.as_slice())?;
    Ok(merged)
}

fn copy_prop(from: &store::Props, to: &mut store::Props, name: &str) {
    match from.get(name) {
        Some(v) => {
            to.insert(name.to_owned(), v.clone());
        }
        None => {
            to.remove(name);
        }
    }
}

/// Top-level scalar fields of each node message that a mask may name.
fn field_numbers<N: Node>() -> &'static [(&'static str, u32)] {
    match N::KIND {
        NodeKind::Artifact => &[("name", 7), ("uri", 3), ("external_id", 11), ("state", 6), ("system_metadata", 12)],
        NodeKind::Execution => &[("name", 6), ("external_id", 10), ("last_known_state", 3), ("system_metadata", 11)],
        NodeKind::Context => &[("name", 3), ("external_id", 9), ("system_metadata", 10)],
    }
}

/// The fields of an encoded message whose numbers are (`keep`) or are not (`!keep`) in `numbers`.
fn filter_fields(bytes: &[u8], numbers: &[u32], keep: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (number, raw) in store::top_level_fields(bytes)? {
        if numbers.contains(&number) == keep {
            out.extend_from_slice(raw);
        }
    }
    Ok(out)
}
