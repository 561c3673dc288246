//! Wire messages as JSON documents for `--output json`.
//!
//! The generated prost types carry no serde derives (metamesh-proto is the one place wire types
//! are defined, and it does not pick a JSON mapping), so the CLI writes its own: field names as
//! in the proto, enums by name, `properties_json` and other embedded JSON parsed into real JSON
//! so that `jq .entity.properties.rows` works, times in milliseconds as on the wire.

use metamesh_proto::v1;
use serde_json::{json, Value};

/// Embedded JSON text as a value; text that does not parse stays a string rather than failing
/// the whole output.
fn embedded(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

pub fn entity(e: &v1::Entity) -> Value {
    json!({
        "urn": e.urn,
        "tenant": e.tenant,
        "kind": e.kind,
        "name": e.name,
        "version": e.version,
        "type_name": e.type_name,
        "schema_version": e.schema_version,
        "properties": embedded(&e.properties_json),
        "tags": e.tags,
        "owner": e.owner,
        "status": e.status,
        "description": e.description,
        "created_at_ms": e.created_at_ms,
        "created_by": e.created_by,
        "updated_at_ms": e.updated_at_ms,
        "updated_by": e.updated_by,
        "revision": e.revision,
        "deleted": e.deleted,
    })
}

pub fn tenant(t: &v1::Tenant) -> Value {
    json!({
        "name": t.name,
        "display_name": t.display_name,
        "description": t.description,
        "owner": t.owner,
        "shard_group": t.shard_group,
        "created_at_ms": t.created_at_ms,
        "created_by": t.created_by,
        "revision": t.revision,
    })
}

pub fn document(d: &v1::Document) -> Value {
    json!({
        "entity_urn": d.entity_urn,
        "title": d.title,
        "version": d.version,
        "body_markdown": d.body_markdown,
        "created_at_ms": d.created_at_ms,
        "created_by": d.created_by,
        "revision": d.revision,
        "deleted": d.deleted,
    })
}

pub fn edge(e: &v1::Edge) -> Value {
    json!({
        "from_urn": e.from_urn,
        "from_version": e.from_version,
        "to_urn": e.to_urn,
        "to_version": e.to_version,
        "kind": e.kind,
        "from_column": e.from_column,
        "to_column": e.to_column,
        "transformation": e.transformation,
        "revision": e.revision,
        "created_at_ms": e.created_at_ms,
        "created_by": e.created_by,
        "tenant": e.tenant,
    })
}

pub fn lineage_node(n: &v1::LineageNode) -> Value {
    json!({
        "urn": n.urn,
        "tenant": n.tenant,
        "kind": n.kind,
        "name": n.name,
        "placeholder": n.placeholder,
        "depth": n.depth,
        "type_name": n.type_name,
        "status": n.status,
        "deleted": n.deleted,
    })
}

pub fn partial_reasons(reasons: &[v1::PartialReason]) -> Value {
    reasons.iter().map(|r| json!({"code": r.code, "detail": r.detail, "shard": r.shard})).collect()
}

pub fn error_details(problems: &[v1::ErrorDetail]) -> Value {
    problems.iter().map(|p| json!({"code": p.code, "field": p.field, "message": p.message})).collect()
}

/// A compatibility enum value by its lowercase name (`backward`), as the CLI accepts it.
pub fn compatibility_name(c: i32) -> String {
    v1::Compatibility::try_from(c)
        .map(|c| c.as_str_name().trim_start_matches("COMPATIBILITY_").to_ascii_lowercase())
        .unwrap_or_else(|_| c.to_string())
}

pub fn migration(m: Option<&v1::Migration>) -> Value {
    use v1::migration_step::Step;
    let steps: Vec<Value> = m
        .map(|m| m.steps.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| match &s.step {
            Some(Step::Rename(r)) => json!({"op": "rename", "from": r.from, "to": r.to}),
            Some(Step::SetDefault(d)) => json!({"op": "default", "field": d.field, "value": embedded(&d.value_json)}),
            Some(Step::Drop(d)) => json!({"op": "drop", "field": d.field}),
            None => Value::Null,
        })
        .collect();
    json!({ "steps": steps })
}

pub fn schema_version(s: &v1::SchemaVersion) -> Value {
    json!({
        "tenant": s.tenant,
        "type_name": s.type_name,
        "version": s.version,
        "base_kind": s.base_kind,
        "schema": embedded(&s.schema_json),
        "compatibility": compatibility_name(s.compatibility),
        "migration": migration(s.migration.as_ref()),
        "created_at_ms": s.created_at_ms,
        "created_by": s.created_by,
        "revision": s.revision,
    })
}

/// A change kind by its short lowercase name (`entity_version`).
pub fn change_name(c: i32) -> String {
    v1::ChangeKind::try_from(c)
        .map(|c| c.as_str_name().trim_start_matches("CHANGE_KIND_").to_ascii_lowercase())
        .unwrap_or_else(|_| c.to_string())
}

pub fn change_event(e: &v1::ChangeEvent) -> Value {
    use v1::change_event::Payload;
    let mut doc = json!({
        "revision": e.revision,
        "time_ms": e.time_ms,
        "tenant": e.tenant,
        "urn": e.urn,
        "change": change_name(e.change),
        "shard": e.shard,
        "revision_end": e.revision_end,
    });
    let payload = match &e.payload {
        Some(Payload::Entity(x)) => Some(("entity", entity(x))),
        Some(Payload::Edge(x)) => Some(("edge", edge(x))),
        Some(Payload::Document(x)) => Some(("document", document(x))),
        Some(Payload::Schema(x)) => Some(("schema", schema_version(x))),
        Some(Payload::TenantInfo(x)) => Some(("tenant_info", tenant(x))),
        None => None,
    };
    if let (Some((key, value)), Some(map)) = (payload, doc.as_object_mut()) {
        map.insert(key.to_owned(), value);
    }
    doc
}

/// A Raft role by its short lowercase name (`leader`).
pub fn role_name(r: i32) -> String {
    v1::RaftRole::try_from(r)
        .map(|r| r.as_str_name().trim_start_matches("RAFT_ROLE_").to_ascii_lowercase())
        .unwrap_or_else(|_| r.to_string())
}

pub fn membership(m: Option<&v1::Membership>) -> Value {
    let Some(m) = m else { return Value::Null };
    let members = |ms: &[v1::Member]| -> Value {
        ms.iter().map(|m| json!({"node_id": m.node_id, "raft_addr": m.raft_addr, "api_addr": m.api_addr})).collect()
    };
    json!({
        "voters": members(&m.voters),
        "learners": members(&m.learners),
        "joint": m.joint,
        "log_index": m.log_index,
    })
}

pub fn shard_map(m: &v1::GetShardMapReply) -> Value {
    let groups: Vec<Value> = m
        .groups
        .iter()
        .map(|g| {
            let members: Vec<Value> = g
                .members
                .iter()
                .map(|m| json!({"node_id": m.node_id, "raft_addr": m.raft_addr, "api_addr": m.api_addr}))
                .collect();
            json!({"id": g.id, "tenants": g.tenants, "members": members})
        })
        .collect();
    json!({"map_version": m.map_version, "groups": groups})
}

pub fn status(s: &v1::StatusReply) -> Value {
    json!({
        "node_id": s.node_id,
        "shard_group": s.shard_group,
        "role": role_name(s.role),
        "leader_id": s.leader_id,
        "term": s.term,
        "last_log_index": s.last_log_index,
        "committed_index": s.committed_index,
        "applied_index": s.applied_index,
        "applied_revision": s.applied_revision,
        "snapshot_index": s.snapshot_index,
        "membership": membership(s.membership.as_ref()),
        "tenants": s.tenants,
        "build_version": s.build_version,
        "uptime_ms": s.uptime_ms,
    })
}

pub fn health(h: &v1::HealthReply) -> Value {
    let components: Vec<Value> =
        h.components.iter().map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail})).collect();
    json!({
        "serving": h.serving,
        "components": components,
        "outbox_pending": h.outbox_pending,
        "outbox_lag_ms": h.outbox_lag_ms,
        "policy_digest": h.policy_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_embedded_as_json() {
        let e = v1::Entity { properties_json: r#"{"rows":5}"#.into(), ..Default::default() };
        assert_eq!(entity(&e)["properties"]["rows"], 5);
        let bad = v1::Entity { properties_json: "{oops".into(), ..Default::default() };
        assert_eq!(entity(&bad)["properties"], "{oops");
    }

    #[test]
    fn enums_by_short_name() {
        assert_eq!(compatibility_name(v1::Compatibility::Backward as i32), "backward");
        assert_eq!(change_name(v1::ChangeKind::EdgeAdded as i32), "edge_added");
        assert_eq!(role_name(v1::RaftRole::Leader as i32), "leader");
    }
}
