//! Entity writes, set-based.
//!
//! sqlx hands every statement to a worker thread, so a statement costs tens of microseconds no
//! matter how small. A put therefore reads the current state of all its entities in one query,
//! validates in Rust, and writes each table with one `INSERT … SELECT FROM json_each(?)`: a
//! batch of a thousand entities costs about as many statements as one entity.

use std::collections::HashMap;
use std::sync::Arc;

use metamesh_core::{CommandError, EntitySpec, EntityUrn, Outcome, TenantId, TypeName};
use sqlx::SqliteConnection;

use crate::apply::{record_change, Ctx, Res};
use crate::schemas::{self, check_properties};
use crate::search;
use metamesh_core::schema::SchemaVersion;

/// Schemas resolved during one put, by (tenant, type, requested version).
type Resolved = HashMap<(TenantId, TypeName, Option<u32>), (SchemaVersion, Arc<jsonschema::Validator>)>;

/// Writes a new version of each entity. The URNs must be distinct.
/// `batch_offset` is the index of `specs[0]` in the enclosing batch, if any, so that a refusal
/// names the failing element.
pub(crate) async fn put(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    specs: &[&EntitySpec],
    batch_offset: Option<usize>,
) -> Res<Vec<Outcome>> {
    let tag = |i: usize, f: crate::apply::Fail| match batch_offset {
        Some(offset) => crate::apply::at_index(offset + i, f),
        None => f,
    };
    for (i, s) in specs.iter().enumerate() {
        ctx.require_tenant(s.urn.tenant()).map_err(|f| tag(i, f))?;
    }

    // Intern every URN first (a refusal rolls this back with the rest), then read the node id
    // and current version of all of them in one round trip, as one JSON document: sqlx hands
    // rows over one at a time, a JSON string in one piece.
    let urns: Vec<String> = specs.iter().map(|s| s.urn.to_string()).collect();
    let urns_json = serde_json::to_string(&urns).expect("strings serialize");
    sqlx::query("INSERT OR IGNORE INTO nodes (urn) SELECT value FROM json_each(?)")
        .bind(&urns_json)
        .execute(&mut *conn)
        .await?;
    let state: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(id, version)) FROM (
             SELECT n.id AS id, v.version AS version
             FROM json_each(?) j
             JOIN nodes n ON n.urn = j.value
             LEFT JOIN versions v ON v.entity_id = n.id AND v.until_rev IS NULL
             ORDER BY j.key)",
    )
    .bind(&urns_json)
    .fetch_one(&mut *conn)
    .await?;
    let current: Vec<(i64, Option<i64>)> =
        serde_json::from_str(&state).map_err(|e| crate::StoreError::Corrupt(format!("entity state of a put: {e}")))?;
    if current.len() != specs.len() {
        return Err(crate::StoreError::Corrupt("node ids missing after insert".into()).into());
    }

    let mut resolved: Resolved = HashMap::new();
    let mut new_versions = Vec::with_capacity(specs.len());
    for (i, (spec, cur)) in specs.iter().zip(&current).enumerate() {
        let checked = check_spec(ctx, conn, spec, cur.1, &mut resolved).await.map_err(|f| tag(i, f))?;
        new_versions.push(checked);
    }

    // Rows as JSON arrays of columns, serialized straight from tuples.
    let mut headers: Vec<(i64, &str, &str, &str)> = Vec::new();
    let mut rows = Vec::with_capacity(specs.len());
    let mut tags: Vec<(i64, u64, &str)> = Vec::new();
    let mut changes: Vec<(&str, &str)> = Vec::with_capacity(specs.len());
    let mut outcomes = Vec::with_capacity(specs.len());
    let mut ids = Vec::with_capacity(specs.len());
    for (((spec, urn), &(id, version)), &(new_version, schema_version)) in
        specs.iter().zip(&urns).zip(&current).zip(&new_versions)
    {
        if version.is_none() {
            headers.push((id, spec.urn.tenant().as_str(), spec.urn.kind().as_str(), spec.urn.name()));
        }
        let tag_list: Vec<&String> = spec.tags.iter().collect();
        rows.push((
            id,
            new_version,
            spec.type_name.as_ref().map(|t| t.as_str()),
            schema_version,
            spec.properties.to_string(),
            serde_json::to_string(&tag_list).expect("strings serialize"),
            spec.owner.as_deref(),
            spec.status.as_deref(),
            spec.description.as_deref(),
        ));
        tags.extend(spec.tags.iter().map(|t| (id, new_version, t.as_str())));
        changes.push((spec.urn.tenant().as_str(), urn.as_str()));
        outcomes.push(Outcome::Entity { urn: spec.urn.clone(), version: new_version });
        ids.push(id);
    }

    if !headers.is_empty() {
        sqlx::query(
            "INSERT INTO entities (id, tenant, kind, name, created_rev, created_at_ms, created_by)
             SELECT value->>0, value->>1, value->>2, value->>3, ?, ?, ? FROM json_each(?)",
        )
        .bind(ctx.rev)
        .bind(ctx.at_ms)
        .bind(ctx.by)
        .bind(json(&headers))
        .execute(&mut *conn)
        .await?;
    }
    let ids_json = serde_json::to_string(&ids).expect("ints serialize");
    sqlx::query(
        "UPDATE versions SET until_rev = ? WHERE until_rev IS NULL AND entity_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ctx.rev)
    .bind(&ids_json)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO versions (entity_id, version, rev, until_rev, at_ms, by, type_name, schema_version,
                               properties, tags, owner, status, description, deleted)
         SELECT value->>0, value->>1, ?, NULL, ?, ?, value->>2, value->>3,
                value->>4, value->>5, value->>6, value->>7, value->>8, 0
         FROM json_each(?)",
    )
    .bind(ctx.rev)
    .bind(ctx.at_ms)
    .bind(ctx.by)
    .bind(json(&rows))
    .execute(&mut *conn)
    .await?;
    if !tags.is_empty() {
        sqlx::query(
            "INSERT INTO version_tags (entity_id, version, tag) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
        )
        .bind(json(&tags))
        .execute(&mut *conn)
        .await?;
    }
    search::reindex(conn, &ids).await?;
    sqlx::query(
        "INSERT INTO changes (rev, tenant, urn, change) SELECT ?, value->>0, value->>1, 'entity_version' FROM json_each(?)",
    )
    .bind(ctx.rev)
    .bind(json(&changes))
    .execute(&mut *conn)
    .await?;
    Ok(outcomes)
}

/// Rows handed to SQLite as one JSON array.
fn json<T: serde::Serialize>(rows: &T) -> String {
    serde_json::to_string(rows).expect("rows serialize")
}

/// Checks one spec against the current state; returns its new version and schema version.
async fn check_spec(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    spec: &EntitySpec,
    current_version: Option<i64>,
    resolved: &mut Resolved,
) -> Res<(u64, Option<u32>)> {
    let actual = current_version.unwrap_or(0) as u64;
    if let Some(expected) = spec.expect_version {
        if expected != actual {
            return Err(CommandError::VersionConflict { urn: spec.urn.to_string(), expected, actual }.into());
        }
    }
    let schema_version = match &spec.type_name {
        None => None,
        Some(t) => {
            let key = (spec.urn.tenant().clone(), t.clone(), spec.schema_version);
            if !resolved.contains_key(&key) {
                let found = schemas::load(&mut *conn, spec.urn.tenant(), t, spec.schema_version, None).await?;
                let s = match (found, spec.schema_version) {
                    (Some(s), _) => s,
                    // A type with versions, but not this one; an unknown type stays an unknown
                    // type whatever version was asked for.
                    (None, Some(version))
                        if schemas::load(&mut *conn, spec.urn.tenant(), t, None, None).await?.is_some() =>
                    {
                        return Err(CommandError::UnknownSchemaVersion { type_name: t.clone(), version }.into())
                    }
                    (None, _) => {
                        return Err(CommandError::UnknownType {
                            tenant: spec.urn.tenant().clone(),
                            type_name: t.clone(),
                        }
                        .into())
                    }
                };
                let v = ctx.store.validator(&s)?;
                resolved.insert(key.clone(), (s, v));
            }
            let (s, v) = &resolved[&key];
            if s.base_kind != spec.urn.kind() {
                return Err(CommandError::KindMismatch {
                    type_name: t.clone(),
                    expected: s.base_kind,
                    actual: spec.urn.kind(),
                }
                .into());
            }
            check_properties(v, s, &spec.properties)?;
            Some(s.version)
        }
    };
    Ok((actual + 1, schema_version))
}

/// Writes a tombstone version: a copy of the current version marked deleted.
pub(crate) async fn delete(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    urn: &EntityUrn,
    expect: Option<u64>,
) -> Res<Outcome> {
    ctx.require_tenant(urn.tenant())?;
    let (id, version) = live_id(conn, urn).await?;
    if let Some(expected) = expect {
        if expected != version as u64 {
            return Err(CommandError::VersionConflict { urn: urn.to_string(), expected, actual: version as u64 }.into());
        }
    }
    sqlx::query("UPDATE versions SET until_rev = ? WHERE entity_id = ? AND until_rev IS NULL")
        .bind(ctx.rev)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO versions (entity_id, version, rev, until_rev, at_ms, by, type_name, schema_version,
                               properties, tags, owner, status, description, deleted)
         SELECT entity_id, version + 1, ?, NULL, ?, ?, type_name, schema_version,
                properties, tags, owner, status, description, 1
         FROM versions WHERE entity_id = ? AND version = ?",
    )
    .bind(ctx.rev)
    .bind(ctx.at_ms)
    .bind(ctx.by)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO version_tags (entity_id, version, tag) SELECT entity_id, version + 1, tag FROM version_tags WHERE entity_id = ? AND version = ?")
        .bind(id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    search::reindex(conn, &[id]).await?;
    record_change(ctx, conn, urn.tenant().as_str(), &urn.to_string(), "entity_deleted").await?;
    Ok(Outcome::Entity { urn: urn.clone(), version: version as u64 + 1 })
}

/// The id and current version of a live (existing, not deleted) entity.
pub(crate) async fn live_id(conn: &mut SqliteConnection, urn: &EntityUrn) -> Res<(i64, i64)> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT e.id, v.version, v.deleted FROM nodes n JOIN entities e ON e.id = n.id
         JOIN versions v ON v.entity_id = e.id AND v.until_rev IS NULL WHERE n.urn = ?",
    )
    .bind(urn.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Err(CommandError::NotFound(urn.to_string()).into()),
        Some((_, _, 1)) => Err(CommandError::Deleted(urn.to_string()).into()),
        Some((id, version, _)) => Ok((id, version)),
    }
}
