//! Conversions between wire types (`v1`) and domain types (`metamesh-core`), and the one mapping
//! of error categories to gRPC codes and HTTP statuses.
//!
//! Wire → domain conversions validate: a bad value becomes a [`CommandError`] naming the wire
//! field (`urn`, `properties_json`, `edges[2].kind`, …), never a panic. Empty strings mean
//! "absent" for optional text fields, as proto3 scalars cannot tell the two apart.

use metamesh_core::command::{edge_owner, SchemaSpec};
use metamesh_core::schema::{Compatibility, Migration, MigrationStep};
use metamesh_core::{
    AsOf, CommandError, Direction, Document, Edge, EdgeKind, EdgeSpec, EntitySpec, EntityUrn, EntityVersion, ErrorCode,
    Kind, ListFilter, PropertyFilter, PropertyOp, TenantId, TypeName, Urn,
};
use prost::Message;

use crate::v1;

/// The gRPC code of an error category.
pub fn grpc_code(code: ErrorCode) -> tonic::Code {
    match code {
        ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
        ErrorCode::NotFound => tonic::Code::NotFound,
        ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
        ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
        ErrorCode::Aborted => tonic::Code::Aborted,
        ErrorCode::OutOfRange => tonic::Code::OutOfRange,
        ErrorCode::Unimplemented => tonic::Code::Unimplemented,
    }
}

/// The HTTP status of an error category.
pub fn http_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidArgument | ErrorCode::OutOfRange | ErrorCode::Unimplemented => 400,
        ErrorCode::NotFound => 404,
        ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition | ErrorCode::Aborted => 409,
    }
}

fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidArgument => "invalid_argument",
        ErrorCode::NotFound => "not_found",
        ErrorCode::AlreadyExists => "already_exists",
        ErrorCode::FailedPrecondition => "failed_precondition",
        ErrorCode::Aborted => "aborted",
        ErrorCode::OutOfRange => "out_of_range",
        ErrorCode::Unimplemented => "unimplemented",
    }
}

/// A refused command as a gRPC status: the code of its category, its message, and an
/// `ErrorDetails` in the status details naming the field.
pub fn status(err: &CommandError) -> tonic::Status {
    let detail = error_detail(err);
    let message = detail.message.clone();
    let details = v1::ErrorDetails { errors: vec![detail] };
    tonic::Status::with_details(grpc_code(err.code()), message, details.encode_to_vec().into())
}

fn invalid(field: &str, reason: impl Into<String>) -> CommandError {
    CommandError::invalid(field, reason)
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn tenant(field: &str, s: &str) -> Result<TenantId, CommandError> {
    TenantId::new(s).map_err(|e| invalid(field, e.to_string()))
}

fn type_name(field: &str, s: &str) -> Result<Option<TypeName>, CommandError> {
    opt(s).map(|t| TypeName::new(&t).map_err(|e| invalid(field, e.to_string()))).transpose()
}

fn kind(field: &str, s: &str) -> Result<Kind, CommandError> {
    s.parse().map_err(|e: metamesh_core::kind::KindError| invalid(field, e.to_string()))
}

fn json(field: &str, s: &str) -> Result<serde_json::Value, CommandError> {
    serde_json::from_str(s).map_err(|e| invalid(field, format!("not valid JSON: {e}")))
}

/// An unversioned entity URN from a wire field.
pub fn entity_urn(field: &str, s: &str) -> Result<EntityUrn, CommandError> {
    let urn = Urn::parse(s)?;
    if urn.version.is_some() {
        return Err(invalid(field, format!("`{s}`: a version is not allowed here")));
    }
    Ok(urn.entity)
}

pub fn entity_spec(r: &v1::PutEntityRequest) -> Result<EntitySpec, CommandError> {
    let mut spec = EntitySpec::new(entity_urn("urn", &r.urn)?);
    spec.type_name = type_name("type_name", &r.type_name)?;
    spec.schema_version = r.schema_version;
    if !r.properties_json.is_empty() {
        spec.properties = json("properties_json", &r.properties_json)?;
    }
    spec.tags = r.tags.iter().cloned().collect();
    spec.owner = opt(&r.owner);
    spec.status = opt(&r.status);
    spec.description = opt(&r.description);
    spec.expect_version = r.expect_version;
    spec.validate()?;
    Ok(spec)
}

fn versioned(urn: &str, version: Option<u64>, field: &str) -> Result<Urn, CommandError> {
    let mut u = Urn::parse(urn)?;
    match (u.version, version) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(field, format!("`{urn}` names version {a} but the version field says {b}")))
        }
        (None, Some(0)) | (Some(0), _) => return Err(invalid(field, "versions start at 1")),
        (None, Some(v)) => u.version = Some(v),
        _ => {}
    }
    Ok(u)
}

pub fn edge_spec(e: &v1::EdgeSpec) -> Result<EdgeSpec, CommandError> {
    let kind: EdgeKind = e.kind.parse()?;
    let spec = EdgeSpec {
        from: versioned(&e.from_urn, e.from_version, "from_version")?,
        to: versioned(&e.to_urn, e.to_version, "to_version")?,
        kind,
        from_column: opt(&e.from_column),
        to_column: opt(&e.to_column),
        transformation: opt(&e.transformation),
    };
    spec.validate()?;
    Ok(spec)
}

pub fn as_of(a: Option<&v1::AsOf>) -> Option<AsOf> {
    match a.and_then(|a| a.point.as_ref()) {
        Some(v1::as_of::Point::Revision(r)) => Some(AsOf::Revision(*r)),
        Some(v1::as_of::Point::TimeMs(t)) => Some(AsOf::TimeMs(*t)),
        None => None,
    }
}

/// Unspecified means both directions.
pub fn direction(d: i32) -> Result<Direction, CommandError> {
    match v1::Direction::try_from(d) {
        Ok(v1::Direction::Upstream) => Ok(Direction::Upstream),
        Ok(v1::Direction::Downstream) => Ok(Direction::Downstream),
        Ok(v1::Direction::Both | v1::Direction::Unspecified) => Ok(Direction::Both),
        Err(_) => Err(invalid("direction", format!("unknown direction {d}"))),
    }
}

/// Property filters of a request, checked; errors name `property_filters[i]`.
pub fn property_filters(filters: &[v1::PropertyFilter]) -> Result<Vec<PropertyFilter>, CommandError> {
    let mut properties = Vec::with_capacity(filters.len());
    for (i, p) in filters.iter().enumerate() {
        let field = format!("property_filters[{i}]");
        let op = match v1::property_filter::Op::try_from(p.op) {
            Ok(v1::property_filter::Op::Eq) => PropertyOp::Eq,
            Ok(v1::property_filter::Op::Ne) => PropertyOp::Ne,
            Ok(v1::property_filter::Op::Lt) => PropertyOp::Lt,
            Ok(v1::property_filter::Op::Le) => PropertyOp::Le,
            Ok(v1::property_filter::Op::Gt) => PropertyOp::Gt,
            Ok(v1::property_filter::Op::Ge) => PropertyOp::Ge,
            _ => return Err(invalid(&format!("{field}.op"), "must be one of EQ, NE, LT, LE, GT, GE")),
        };
        let filter =
            PropertyFilter { path: p.path.clone(), op, value: json(&format!("{field}.value_json"), &p.value_json)? };
        filter.json_path()?;
        properties.push(filter);
    }
    Ok(properties)
}

pub fn list_filter(r: &v1::ListEntitiesRequest) -> Result<ListFilter, CommandError> {
    let properties = property_filters(&r.property_filters)?;
    Ok(ListFilter {
        tenant: opt(&r.tenant).map(|t| tenant("tenant", &t)).transpose()?,
        kind: opt(&r.kind).map(|k| kind("kind", &k)).transpose()?,
        type_name: type_name("type_name", &r.type_name)?,
        tags: r.tags.clone(),
        owner: opt(&r.owner),
        status: opt(&r.status),
        properties,
        include_deleted: r.include_deleted,
    })
}

pub fn compatibility(c: i32) -> Result<Option<Compatibility>, CommandError> {
    match v1::Compatibility::try_from(c) {
        Ok(v1::Compatibility::Unspecified) => Ok(None),
        Ok(v1::Compatibility::Backward) => Ok(Some(Compatibility::Backward)),
        Ok(v1::Compatibility::Forward) => Ok(Some(Compatibility::Forward)),
        Ok(v1::Compatibility::Full) => Ok(Some(Compatibility::Full)),
        Ok(v1::Compatibility::None) => Ok(Some(Compatibility::None)),
        Err(_) => Err(invalid("compatibility", format!("unknown compatibility {c}"))),
    }
}

pub fn compatibility_to_wire(c: Compatibility) -> v1::Compatibility {
    match c {
        Compatibility::Backward => v1::Compatibility::Backward,
        Compatibility::Forward => v1::Compatibility::Forward,
        Compatibility::Full => v1::Compatibility::Full,
        Compatibility::None => v1::Compatibility::None,
    }
}

pub fn migration(m: Option<&v1::Migration>) -> Result<Migration, CommandError> {
    let mut steps = Vec::new();
    for (i, s) in m.map(|m| m.steps.as_slice()).unwrap_or_default().iter().enumerate() {
        let field = format!("migration.steps[{i}]");
        steps.push(match &s.step {
            Some(v1::migration_step::Step::Rename(r)) => {
                MigrationStep::Rename { from: r.from.clone(), to: r.to.clone() }
            }
            Some(v1::migration_step::Step::SetDefault(d)) => MigrationStep::Default {
                field: d.field.clone(),
                value: json(&format!("{field}.value_json"), &d.value_json)?,
            },
            Some(v1::migration_step::Step::Drop(d)) => MigrationStep::Drop { field: d.field.clone() },
            None => return Err(invalid(&field, "empty step")),
        });
    }
    Ok(Migration { steps })
}

pub fn migration_to_wire(m: &Migration) -> v1::Migration {
    use v1::migration_step::{Drop, Rename, SetDefault, Step};
    v1::Migration {
        steps: m
            .steps
            .iter()
            .map(|s| v1::MigrationStep {
                step: Some(match s {
                    MigrationStep::Rename { from, to } => Step::Rename(Rename { from: from.clone(), to: to.clone() }),
                    MigrationStep::Default { field, value } => {
                        Step::SetDefault(SetDefault { field: field.clone(), value_json: value.to_string() })
                    }
                    MigrationStep::Drop { field } => Step::Drop(Drop { field: field.clone() }),
                }),
            })
            .collect(),
    }
}

pub fn schema_spec(r: &v1::RegisterSchemaRequest) -> Result<SchemaSpec, CommandError> {
    let spec = SchemaSpec {
        tenant: tenant("tenant", &r.tenant)?,
        type_name: type_name("type_name", &r.type_name)?.ok_or_else(|| invalid("type_name", "must not be empty"))?,
        base_kind: kind("base_kind", &r.base_kind)?,
        schema: json("schema_json", &r.schema_json)?,
        compatibility: compatibility(r.compatibility)?,
        migration: migration(r.migration.as_ref())?,
    };
    metamesh_core::Command::RegisterSchema(spec.clone()).validate()?;
    Ok(spec)
}

pub fn entity_to_wire(e: &EntityVersion) -> v1::Entity {
    v1::Entity {
        urn: e.urn.to_string(),
        tenant: e.urn.tenant().to_string(),
        kind: e.urn.kind().to_string(),
        name: e.urn.name().to_owned(),
        version: e.version,
        type_name: e.type_name.as_ref().map(|t| t.to_string()).unwrap_or_default(),
        schema_version: e.schema_version.unwrap_or(0),
        properties_json: e.properties.to_string(),
        tags: e.tags.clone(),
        owner: e.owner.clone().unwrap_or_default(),
        status: e.status.clone().unwrap_or_default(),
        description: e.description.clone().unwrap_or_default(),
        created_at_ms: e.created_at_ms,
        created_by: e.created_by.clone(),
        revision: e.revision,
        deleted: e.deleted,
        updated_at_ms: e.updated_at_ms,
        updated_by: e.updated_by.clone(),
    }
}

pub fn edge_to_wire(e: &Edge) -> v1::Edge {
    let spec = EdgeSpec::new(e.from.clone(), e.kind, e.to.clone());
    v1::Edge {
        from_urn: e.from.entity.to_string(),
        from_version: e.from.version,
        to_urn: e.to.entity.to_string(),
        to_version: e.to.version,
        kind: e.kind.to_string(),
        from_column: e.from_column.clone().unwrap_or_default(),
        to_column: e.to_column.clone().unwrap_or_default(),
        transformation: e.transformation.clone().unwrap_or_default(),
        revision: e.revision,
        created_at_ms: e.created_at_ms,
        created_by: e.created_by.clone(),
        tenant: edge_owner(&spec).to_string(),
    }
}

pub fn document_to_wire(d: &Document) -> v1::Document {
    v1::Document {
        entity_urn: d.urn.to_string(),
        title: d.title.clone(),
        version: d.version,
        body_markdown: d.body.clone(),
        created_at_ms: d.created_at_ms,
        created_by: d.created_by.clone(),
        revision: d.revision,
        deleted: d.deleted,
    }
}

pub fn schema_version_to_wire(s: &metamesh_core::schema::SchemaVersion) -> v1::SchemaVersion {
    v1::SchemaVersion {
        tenant: s.tenant.to_string(),
        type_name: s.type_name.to_string(),
        version: s.version,
        base_kind: s.base_kind.to_string(),
        schema_json: s.schema.to_string(),
        compatibility: compatibility_to_wire(s.compatibility) as i32,
        migration: Some(migration_to_wire(&s.migration)),
        created_at_ms: s.created_at_ms,
        created_by: s.created_by.clone(),
        revision: s.revision,
    }
}

// ---------------------------------------------------------------------------------------------
// Used by the node's gRPC services (`metamesh-node`). The store's own result types (search hits,
// change-feed rows, expansions) are passed in as their parts: this crate does not depend on the
// store, so that the wire layer stays usable by clients that never open a shard.
// ---------------------------------------------------------------------------------------------

/// Names the element a stateless refusal came from: `entities[2]` turns a `tags` error into one
/// about `entities[2].tags`. A URN error, which names no field of its own, becomes one about
/// `<prefix>.urn`.
pub fn in_element(prefix: &str, err: CommandError) -> CommandError {
    match err {
        CommandError::InvalidField { field, reason } => {
            CommandError::InvalidField { field: format!("{prefix}.{field}"), reason }
        }
        CommandError::TooLarge { field, limit, actual } => {
            CommandError::TooLarge { field: format!("{prefix}.{field}"), limit, actual }
        }
        CommandError::InvalidUrn(e) => invalid(&format!("{prefix}.urn"), e.to_string()),
        other => other,
    }
}

/// A URN, with or without `@<version>`, from a wire field; a parse failure names `field`.
pub fn urn_at(field: &str, s: &str) -> Result<Urn, CommandError> {
    Urn::parse(s).map_err(|e| invalid(field, e.to_string()))
}

/// An unversioned URN from a wire field; a parse failure or a version names `field`.
pub fn entity_urn_at(field: &str, s: &str) -> Result<EntityUrn, CommandError> {
    let urn = urn_at(field, s)?;
    if urn.version.is_some() {
        return Err(invalid(field, format!("`{s}`: a version is not allowed here")));
    }
    Ok(urn.entity)
}

/// A tenant name from a wire field (required).
pub fn tenant_id(field: &str, s: &str) -> Result<TenantId, CommandError> {
    tenant(field, s)
}

/// A type name from a wire field (required).
pub fn required_type_name(field: &str, s: &str) -> Result<TypeName, CommandError> {
    type_name(field, s)?.ok_or_else(|| invalid(field, "must not be empty"))
}

/// Tenant names from a repeated wire field; an error names the element (`tenants[1]`).
pub fn tenant_ids(field: &str, names: &[String]) -> Result<Vec<TenantId>, CommandError> {
    names.iter().enumerate().map(|(i, n)| tenant(&format!("{field}[{i}]"), n)).collect()
}

/// Entity kinds from a repeated wire field; an error names the element (`kinds[0]`).
pub fn kinds(field: &str, names: &[String]) -> Result<Vec<Kind>, CommandError> {
    names.iter().enumerate().map(|(i, k)| kind(&format!("{field}[{i}]"), k)).collect()
}

/// Edge kinds from a repeated wire field; an error names the element (`kinds[0]`).
pub fn edge_kinds(field: &str, names: &[String]) -> Result<Vec<EdgeKind>, CommandError> {
    names
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.parse::<EdgeKind>().map_err(|_| invalid(&format!("{field}[{i}]"), format!("unknown edge kind `{k}`")))
        })
        .collect()
}

/// The entity writes of a `PutEntities` batch; an error names the element (`entities[3].urn`).
pub fn entity_specs(items: &[v1::PutEntityRequest]) -> Result<Vec<EntitySpec>, CommandError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let prefix = format!("entities[{i}]");
            if !item.request_id.is_empty() {
                return Err(invalid(&format!("{prefix}.request_id"), "must be empty: the batch has one request id"));
            }
            entity_spec(item).map_err(|e| in_element(&prefix, e))
        })
        .collect()
}

/// The edges of an `AddEdges`/`RemoveEdges` request; an error names the element and, for URNs,
/// which end (`edges[1].to_urn`).
pub fn edge_specs(edges: &[v1::EdgeSpec]) -> Result<Vec<EdgeSpec>, CommandError> {
    edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let prefix = format!("edges[{i}]");
            urn_at(&format!("{prefix}.from_urn"), &e.from_urn)?;
            urn_at(&format!("{prefix}.to_urn"), &e.to_urn)?;
            edge_spec(e).map_err(|err| in_element(&prefix, err))
        })
        .collect()
}

/// The candidate of a `CheckCompatibility` dry run, checked like a registration.
pub fn check_schema_spec(r: &v1::CheckCompatibilityRequest) -> Result<SchemaSpec, CommandError> {
    schema_spec(&v1::RegisterSchemaRequest {
        request_id: String::new(),
        tenant: r.tenant.clone(),
        type_name: r.type_name.clone(),
        base_kind: r.base_kind.clone(),
        schema_json: r.schema_json.clone(),
        compatibility: r.compatibility,
        migration: r.migration.clone(),
    })
}

/// One refusal as the machine-readable detail clients read (also inside [`status`]).
pub fn error_detail(err: &CommandError) -> v1::ErrorDetail {
    v1::ErrorDetail {
        code: code_name(err.code()).to_owned(),
        field: err.field().unwrap_or_default().to_owned(),
        message: err.to_string(),
    }
}

/// What a search asks for, split into what the store filters on (`filter`: at most one tenant
/// and one kind) and the sets it cannot express (`tenants`, `kinds`: checked on each hit when
/// they hold more than one value; empty = no restriction).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchScope {
    pub filter: ListFilter,
    pub tenants: Vec<TenantId>,
    pub kinds: Vec<Kind>,
}

impl SearchScope {
    /// Whether a hit passes the filters the store could not apply.
    pub fn admits(&self, e: &EntityVersion) -> bool {
        (self.tenants.is_empty() || self.tenants.contains(e.urn.tenant()))
            && (self.kinds.is_empty() || self.kinds.contains(&e.urn.kind()))
    }
}

pub fn search_scope(r: &v1::SearchRequest) -> Result<SearchScope, CommandError> {
    let tenants = tenant_ids("tenants", &r.tenants)?;
    let kinds = kinds("kinds", &r.kinds)?;
    let filter = ListFilter {
        tenant: if tenants.len() == 1 { tenants.first().cloned() } else { None },
        kind: if kinds.len() == 1 { kinds.first().copied() } else { None },
        type_name: type_name("type_name", &r.type_name)?,
        tags: r.tags.clone(),
        owner: opt(&r.owner),
        status: None,
        properties: property_filters(&r.property_filters)?,
        include_deleted: r.include_deleted,
    };
    Ok(SearchScope { filter, tenants, kinds })
}

/// A search hit. The store ranks with bm25 (lower is better); the wire promises "higher is
/// better", so the score is negated. The store marks matches with `«…»`; the wire snippet is
/// plain text, so the marks are removed.
pub fn search_hit_to_wire(entity: &EntityVersion, bm25: f64, snippet: &str) -> v1::SearchHit {
    v1::SearchHit { entity: Some(entity_to_wire(entity)), score: -bm25, snippet: snippet.replace(['«', '»'], "") }
}

/// A tenant as the store's tenant list knows it: its name. Display name, description and owner
/// are not stored yet; the creation fields are filled by callers that know them.
pub fn tenant_to_wire(name: &TenantId, shard_group: &str) -> v1::Tenant {
    v1::Tenant { name: name.to_string(), shard_group: shard_group.to_owned(), ..Default::default() }
}

/// The wire kind of a change-feed row's `change` column; `None` for a value this version does
/// not know (a newer store), which callers skip rather than misreport.
pub fn change_kind(change: &str) -> Option<v1::ChangeKind> {
    Some(match change {
        "entity_version" => v1::ChangeKind::EntityVersion,
        "entity_deleted" => v1::ChangeKind::EntityDeleted,
        "edge_added" => v1::ChangeKind::EdgeAdded,
        "edge_removed" => v1::ChangeKind::EdgeRemoved,
        "document" => v1::ChangeKind::Document,
        "schema" => v1::ChangeKind::Schema,
        "tenant" => v1::ChangeKind::Tenant,
        _ => return None,
    })
}

/// The change kinds a watch asks for; unspecified and unknown values are refused, naming the
/// element (`changes[1]`).
pub fn change_kinds(field: &str, values: &[i32]) -> Result<Vec<v1::ChangeKind>, CommandError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v1::ChangeKind::try_from(v) {
            Ok(v1::ChangeKind::Unspecified) => Err(invalid(&format!("{field}[{i}]"), "must not be unspecified")),
            Ok(k) => Ok(k),
            Err(_) => Err(invalid(&format!("{field}[{i}]"), format!("unknown change kind {v}"))),
        })
        .collect()
}

/// A change-feed row as a wire event, without its payload (the feed row does not carry one; the
/// caller reads it from the store) and without `revision_end` (which depends on its neighbours).
pub fn change_event(revision: u64, tenant: &str, urn: &str, change: v1::ChangeKind, shard: &str) -> v1::ChangeEvent {
    v1::ChangeEvent {
        revision,
        time_ms: 0,
        tenant: tenant.to_owned(),
        urn: urn.to_owned(),
        change: change as i32,
        payload: None,
        shard: shard.to_owned(),
        revision_end: false,
    }
}

/// A node of an expansion. `details` are the node's at the read point when this shard owns
/// it; a node of another shard carries only what its URN says.
pub fn lineage_node(urn: &EntityUrn, depth: u32, details: Option<&metamesh_core::NodeDetails>) -> v1::LineageNode {
    v1::LineageNode {
        urn: urn.to_string(),
        tenant: urn.tenant().to_string(),
        kind: urn.kind().to_string(),
        name: urn.name().to_owned(),
        placeholder: false,
        depth,
        type_name: details.and_then(|e| e.type_name.as_ref()).map(|t| t.to_string()).unwrap_or_default(),
        status: details.and_then(|e| e.status.clone()).unwrap_or_default(),
        deleted: details.is_some_and(|e| e.deleted),
    }
}

/// A partial reason with a stable code.
pub fn partial_reason(code: &str, detail: impl Into<String>, shard: &str) -> v1::PartialReason {
    v1::PartialReason { code: code.to_owned(), detail: detail.into(), shard: shard.to_owned() }
}

/// A one-shard expansion as the wire reply: nodes ordered by depth then URN; `truncated` (the
/// node limit stopped the walk) and a non-empty remote frontier (nodes another shard must
/// expand) both make the answer partial, each with its reason.
pub fn expansion_to_wire(
    nodes: &[(EntityUrn, u32)],
    edges: &[Edge],
    remote_frontier: &[EntityUrn],
    truncated: bool,
    details: &std::collections::HashMap<EntityUrn, metamesh_core::NodeDetails>,
    shard: &str,
) -> v1::ExpandReply {
    let mut sorted: Vec<&(EntityUrn, u32)> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.to_string().cmp(&b.0.to_string())));
    let mut partial_reasons = Vec::new();
    if truncated {
        partial_reasons.push(partial_reason("MAX_NODES", "the node limit was reached before the depth limit", shard));
    }
    if !remote_frontier.is_empty() {
        partial_reasons.push(partial_reason(
            "REMOTE_FRONTIER",
            format!("{} nodes belong to tenants of other shards; expand them there", remote_frontier.len()),
            shard,
        ));
    }
    v1::ExpandReply {
        nodes: sorted.into_iter().map(|(u, d)| lineage_node(u, *d, details.get(u))).collect(),
        edges: edges.iter().map(edge_to_wire).collect(),
        partial: !partial_reasons.is_empty(),
        partial_reasons,
        remote_frontier: remote_frontier.iter().map(|u| u.to_string()).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// The audit log (`AuditService`): records, checkpoints and inclusion proofs of `metamesh-audit`.
// Both directions: the node sends them, and `meshctl` rebuilds a `metamesh_audit::ProofBundle`
// from a reply so that the offline `check-proof` accepts it byte for byte.
// ---------------------------------------------------------------------------------------------

/// A decision on the wire.
pub fn decision_to_wire(d: metamesh_audit::Decision) -> v1::Decision {
    match d {
        metamesh_audit::Decision::Allow => v1::Decision::Allow,
        metamesh_audit::Decision::Deny => v1::Decision::Deny,
    }
}

/// A wire decision filter at `field`: `None` for unspecified (either), refused when unknown.
pub fn decision_filter(field: &str, d: i32) -> Result<Option<metamesh_audit::Decision>, CommandError> {
    match v1::Decision::try_from(d) {
        Ok(v1::Decision::Unspecified) => Ok(None),
        Ok(v1::Decision::Allow) => Ok(Some(metamesh_audit::Decision::Allow)),
        Ok(v1::Decision::Deny) => Ok(Some(metamesh_audit::Decision::Deny)),
        Err(_) => Err(invalid(field, format!("{d} is not a decision (1 = allow, 2 = deny)"))),
    }
}

/// An audit record of shard group `shard` on the wire.
pub fn audit_record_to_wire(r: &metamesh_audit::AuditRecord, shard: &str) -> v1::AuditRecord {
    v1::AuditRecord {
        seq: r.seq,
        time_ms: r.at_ms,
        principal: r.principal.clone(),
        tenant: r.tenant.clone().unwrap_or_default(),
        action: r.action.clone(),
        resource: r.resource.clone(),
        decision: decision_to_wire(r.decision) as i32,
        policy_digest: r.policy_digest.clone(),
        request_id: r.request_id.clone().unwrap_or_default(),
        request_digest: r.request_digest.to_vec(),
        prev_hash: r.prev_hash.to_vec(),
        hash: r.hash.to_vec(),
        shard: shard.to_owned(),
        count: r.count,
    }
}

fn hash32(field: &str, bytes: &[u8]) -> Result<metamesh_audit::Hash, CommandError> {
    bytes.try_into().map_err(|_| invalid(field, format!("{} bytes, expected 32", bytes.len())))
}

/// A wire audit record as `metamesh-audit` holds it, for checking its hash offline. Empty
/// `tenant` and `request_id` are absent (the store never records empty ones).
pub fn audit_record(field: &str, r: &v1::AuditRecord) -> Result<metamesh_audit::AuditRecord, CommandError> {
    let at = |f: &str| format!("{field}.{f}");
    Ok(metamesh_audit::AuditRecord {
        seq: r.seq,
        at_ms: r.time_ms,
        principal: r.principal.clone(),
        tenant: opt(&r.tenant),
        action: r.action.clone(),
        resource: r.resource.clone(),
        decision: decision_filter(&at("decision"), r.decision)?
            .ok_or_else(|| invalid(&at("decision"), "unspecified"))?,
        count: r.count,
        policy_digest: r.policy_digest.clone(),
        request_id: opt(&r.request_id),
        request_digest: hash32(&at("request_digest"), &r.request_digest)?,
        prev_hash: hash32(&at("prev_hash"), &r.prev_hash)?,
        hash: hash32(&at("hash"), &r.hash)?,
    })
}

/// A signed checkpoint on the wire; `public_key` is the signer's key when the sender has it
/// (DER SubjectPublicKeyInfo), else empty.
pub fn checkpoint_to_wire(cp: &metamesh_audit::Checkpoint, public_key: Vec<u8>) -> v1::SignedCheckpoint {
    v1::SignedCheckpoint {
        tree_size: cp.size,
        root_hash: cp.root.to_vec(),
        signature: cp.signature.to_vec(),
        public_key,
        time_ms: cp.at_ms,
        shard: cp.shard.clone(),
        key_id: cp.key_id.0.to_vec(),
    }
}

/// A wire checkpoint as `metamesh-audit` holds it (its signature is not checked here).
pub fn checkpoint(field: &str, cp: &v1::SignedCheckpoint) -> Result<metamesh_audit::Checkpoint, CommandError> {
    let at = |f: &str| format!("{field}.{f}");
    Ok(metamesh_audit::Checkpoint {
        shard: cp.shard.clone(),
        size: cp.tree_size,
        root: hash32(&at("root_hash"), &cp.root_hash)?,
        at_ms: cp.time_ms,
        key_id: metamesh_audit::KeyId(hash32(&at("key_id"), &cp.key_id)?),
        signature: cp
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| invalid(&at("signature"), format!("{} bytes, expected 64", cp.signature.len())))?,
    })
}

/// An inclusion proof with its record and checkpoint on the wire.
pub fn proof_to_wire(b: &metamesh_audit::ProofBundle, shard: &str) -> v1::GetInclusionProofReply {
    v1::GetInclusionProofReply {
        record: Some(audit_record_to_wire(&b.record, shard)),
        tree_size: b.proof.size,
        hashes: b.proof.path.iter().map(|h| h.to_vec()).collect(),
        checkpoint: Some(checkpoint_to_wire(&b.checkpoint, Vec::new())),
    }
}

/// The [`metamesh_audit::ProofBundle`] of a GetInclusionProof reply: what `check-proof` reads.
pub fn proof_bundle(r: &v1::GetInclusionProofReply) -> Result<metamesh_audit::ProofBundle, CommandError> {
    let record = audit_record("record", r.record.as_ref().ok_or_else(|| invalid("record", "missing"))?)?;
    let checkpoint = checkpoint("checkpoint", r.checkpoint.as_ref().ok_or_else(|| invalid("checkpoint", "missing"))?)?;
    let path =
        r.hashes.iter().enumerate().map(|(i, h)| hash32(&format!("hashes[{i}]"), h)).collect::<Result<Vec<_>, _>>()?;
    let proof = metamesh_audit::InclusionProof { seq: record.seq, size: r.tree_size, path };
    Ok(metamesh_audit::ProofBundle { record, checkpoint, proof })
}

/// An outbox entry as sent to the shard owning its other end.
pub fn remote_ref_to_wire(r: &metamesh_core::command::RemoteRef) -> v1::RemoteReference {
    let e = &r.edge;
    v1::RemoteReference {
        id: r.id,
        edge: Some(v1::EdgeSpec {
            from_urn: e.from.entity.to_string(),
            from_version: e.from.version,
            to_urn: e.to.entity.to_string(),
            to_version: e.to.version,
            kind: e.kind.to_string(),
            from_column: e.from_column.clone().unwrap_or_default(),
            to_column: e.to_column.clone().unwrap_or_default(),
            transformation: e.transformation.clone().unwrap_or_default(),
        }),
        removed: r.removed,
        created_at_ms: e.created_at_ms,
        created_by: e.created_by.clone(),
    }
}

/// Delivered references, checked; an error names the element (`refs[3].edge`).
pub fn remote_refs(refs: &[v1::RemoteReference]) -> Result<Vec<metamesh_core::command::RemoteRef>, CommandError> {
    refs.iter()
        .enumerate()
        .map(|(i, r)| {
            let prefix = format!("refs[{i}]");
            let wire = r.edge.as_ref().ok_or_else(|| CommandError::invalid(format!("{prefix}.edge"), "missing"))?;
            let spec = edge_spec(wire).map_err(|err| in_element(&format!("{prefix}.edge"), err))?;
            Ok(metamesh_core::command::RemoteRef {
                id: r.id,
                edge: Edge {
                    from: spec.from,
                    to: spec.to,
                    kind: spec.kind,
                    from_column: spec.from_column,
                    to_column: spec.to_column,
                    transformation: spec.transformation,
                    revision: 0,
                    created_at_ms: r.created_at_ms,
                    created_by: r.created_by.clone(),
                },
                removed: r.removed,
            })
        })
        .collect()
}
