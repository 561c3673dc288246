//! Entity writes, set-based.
//!
//! A put reads the current state of all its entities in one query, validates in Rust
//! ([`check`]), and writes each table with one `INSERT … SELECT FROM json_each(?)` ([`write`]):
//! a batch of a thousand entities costs about as many statements as one entity, and SQLite
//! parses the rows in C. The same two steps serve puts coalesced from consecutive log entries
//! (see `apply`), each row carrying its own revision, time and principal.

use std::collections::HashMap;
use std::sync::Arc;

use metamesh_core::{CommandError, EntitySpec, EntityUrn, NodeDetails, Outcome, TenantId, TypeName};
use rusqlite::{params, Connection, OptionalExtension};

use crate::apply::{record_change, Ctx, Res};
use crate::graph::Delta;
use crate::schemas::{self, check_properties};
use crate::search;
use metamesh_core::schema::SchemaVersion;

/// Schemas resolved during one put, by (tenant, type, requested version).
type Resolved = HashMap<(TenantId, TypeName, Option<u32>), (SchemaVersion, Arc<jsonschema::Validator>)>;

/// Who wrote a version and when: the revision of the log entry, its time and principal. Puts of
/// one command share one stamp; puts coalesced from several log entries each have their own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp<'a> {
    pub rev: i64,
    pub at_ms: i64,
    pub by: &'a str,
}

impl<'a> Stamp<'a> {
    pub fn of(ctx: &Ctx<'a>) -> Stamp<'a> {
        Stamp { rev: ctx.rev, at_ms: ctx.at_ms, by: ctx.by }
    }
}

/// A put that passed its checks: what [`write`] needs.
pub(crate) struct Checked {
    /// The node id, if the URN was interned before.
    id: Option<i64>,
    /// Whether the entity already exists (has a version).
    exists: bool,
    version: u64,
    schema_version: Option<u32>,
    /// Whether the current version is live with the same description and tags: the search
    /// index (name, description, tags, documents) then stays as it is.
    same_index_text: bool,
}

/// Writes a new version of each entity, all or nothing: the first refused spec refuses the
/// command. The URNs must be distinct. `batch_offset` is the index of `specs[0]` in the
/// enclosing batch, if any, so that a refusal names the failing element.
pub(crate) fn put(
    ctx: &Ctx<'_>,
    conn: &Connection,
    specs: &[&EntitySpec],
    batch_offset: Option<usize>,
) -> Res<Vec<Outcome>> {
    let checked = check(ctx.validators, &|t| ctx.owns(t), conn, specs)?;
    let mut ok = Vec::with_capacity(specs.len());
    for (i, c) in checked.into_iter().enumerate() {
        match c {
            Ok(c) => ok.push(c),
            Err(e) => {
                let f = crate::apply::Fail::Command(e);
                return Err(match batch_offset {
                    Some(offset) => crate::apply::at_index(offset + i, f),
                    None => f,
                });
            }
        }
    }
    let stamp = Stamp::of(ctx);
    let rows: Vec<(&EntitySpec, Checked, Stamp<'_>)> =
        specs.iter().zip(ok).map(|(spec, c)| (*spec, c, stamp)).collect();
    write(conn, rows, &mut ctx.graph.borrow_mut())
}

/// What a put needs of an entity's current version: node id, version, deleted, description,
/// tags (all null when the URN is new).
type CurrentRow = (Option<i64>, Option<i64>, Option<i64>, Option<String>, Option<String>);

/// Checks each put against the current state, independently: one result per spec. Reads the
/// state of all of them in one query; writes nothing (a refused put must leave no trace, not
/// even an interned URN). The URNs must be distinct.
pub(crate) fn check(
    validators: &crate::Validators,
    owns: &dyn Fn(&TenantId) -> bool,
    conn: &Connection,
    specs: &[&EntitySpec],
) -> Res<Vec<Result<Checked, CommandError>>> {
    let urns: Vec<String> = specs.iter().map(|s| s.urn.to_string()).collect();
    let state: String = conn
        .prepare_cached(
            "SELECT json_group_array(json_array(id, version, deleted, description, tags)) FROM (
                 SELECT n.id AS id, v.version AS version, v.deleted AS deleted, v.description AS description,
                        v.tags AS tags
                 FROM json_each(?) j
                 LEFT JOIN nodes n ON n.urn = j.value
                 LEFT JOIN versions v ON v.entity_id = n.id AND v.until_rev IS NULL
                 ORDER BY j.key)",
        )?
        .query_row([json(&urns)], |r| r.get(0))?;
    let current: Vec<CurrentRow> =
        serde_json::from_str(&state).map_err(|e| crate::StoreError::Corrupt(format!("entity state of a put: {e}")))?;
    if current.len() != specs.len() {
        return Err(crate::StoreError::Corrupt("entity state of a put: rows missing".into()).into());
    }
    let mut resolved: Resolved = HashMap::new();
    let mut out = Vec::with_capacity(specs.len());
    for (spec, (id, version, deleted, description, tags)) in specs.iter().zip(current) {
        let result = if !owns(spec.urn.tenant()) {
            Err(CommandError::UnknownTenant(spec.urn.tenant().clone()))
        } else {
            match check_spec(validators, conn, spec, version, &mut resolved) {
                Ok((version_new, schema_version)) => {
                    let same_index_text = deleted == Some(0)
                        && description == spec.description
                        && tags.is_some_and(|t| t == json(&spec.tags));
                    Ok(Checked { id, exists: version.is_some(), version: version_new, schema_version, same_index_text })
                }
                Err(crate::apply::Fail::Command(e)) => Err(e),
                Err(store) => return Err(store),
            }
        };
        out.push(result);
    }
    Ok(out)
}

/// Writes checked puts, each table with one statement over all rows, and records each new
/// version's details for the lineage index (`graph.rs`; applied once the transaction commits).
pub(crate) fn write(
    conn: &Connection,
    rows: Vec<(&EntitySpec, Checked, Stamp<'_>)>,
    deltas: &mut Vec<Delta>,
) -> Res<Vec<Outcome>> {
    // Intern the URNs not seen before, then learn their ids.
    let fresh: Vec<String> =
        rows.iter().filter(|(_, c, _)| c.id.is_none()).map(|(s, _, _)| s.urn.to_string()).collect();
    let mut fresh_ids: HashMap<String, i64> = HashMap::new();
    if !fresh.is_empty() {
        let fresh_json = json(&fresh);
        conn.prepare_cached("INSERT OR IGNORE INTO nodes (urn) SELECT value FROM json_each(?)")?
            .execute([&fresh_json])?;
        let text: String = conn
            .prepare_cached(
                "SELECT json_group_array(json_array(n.urn, n.id)) FROM json_each(?) j JOIN nodes n ON n.urn = j.value",
            )?
            .query_row([&fresh_json], |r| r.get(0))?;
        let pairs: Vec<(String, i64)> =
            serde_json::from_str(&text).map_err(|e| crate::StoreError::Corrupt(format!("node ids of a put: {e}")))?;
        fresh_ids.extend(pairs);
    }

    // Rows as JSON arrays of columns, serialized straight from tuples.
    let mut headers: Vec<(i64, &str, &str, &str, i64, i64, &str)> = Vec::new();
    let mut versions: Vec<(i64, &Checked, &Stamp<'_>, &EntitySpec)> = Vec::with_capacity(rows.len());
    let mut reindex = Vec::new();
    let mut closes: Vec<(i64, i64)> = Vec::new();
    let mut tags: Vec<(i64, u64, &str)> = Vec::new();
    let mut changes: Vec<(i64, &str, String)> = Vec::with_capacity(rows.len());
    let mut outcomes = Vec::with_capacity(rows.len());
    for (spec, c, stamp) in &rows {
        let urn = spec.urn.to_string();
        let id = match c.id {
            Some(id) => id,
            None => *fresh_ids
                .get(&urn)
                .ok_or_else(|| crate::StoreError::Corrupt(format!("node id of {urn} missing after insert")))?,
        };
        if c.exists {
            closes.push((id, stamp.rev));
        } else {
            headers.push((
                id,
                spec.urn.tenant().as_str(),
                spec.urn.kind().as_str(),
                spec.urn.name(),
                stamp.rev,
                stamp.at_ms,
                stamp.by,
            ));
        }
        versions.push((id, c, stamp, spec));
        tags.extend(spec.tags.iter().map(|t| (id, c.version, t.as_str())));
        outcomes.push(Outcome::Entity { urn: spec.urn.clone(), version: c.version });
        changes.push((stamp.rev, spec.urn.tenant().as_str(), urn));
        if !c.same_index_text {
            reindex.push(id);
        }
    }

    if !headers.is_empty() {
        conn.prepare_cached(
            "INSERT INTO entities (id, tenant, kind, name, created_rev, created_at_ms, created_by)
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 FROM json_each(?)",
        )?
        .execute([json(&headers)])?;
    }
    if !closes.is_empty() {
        conn.prepare_cached(
            "UPDATE versions SET until_rev = j.value->>1 FROM json_each(?) j
             WHERE versions.entity_id = j.value->>0 AND versions.until_rev IS NULL",
        )?
        .execute([json(&closes)])?;
    }
    // One statement per row: properties can be large, and bound as they are they are copied
    // once (through one JSON array they would be escaped, then parsed again).
    let mut insert = conn.prepare_cached(
        "INSERT INTO versions (entity_id, version, rev, until_rev, at_ms, by, type_name, schema_version,
                               properties, tags, owner, status, description, deleted)
         VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
    )?;
    for (id, c, stamp, spec) in versions {
        insert.execute(rusqlite::params![
            id,
            c.version,
            stamp.rev,
            stamp.at_ms,
            stamp.by,
            spec.type_name.as_ref().map(|t| t.as_str()),
            c.schema_version,
            spec.properties.to_string(),
            json(&spec.tags),
            spec.owner.as_deref(),
            spec.status.as_deref(),
            spec.description.as_deref(),
        ])?;
        let details = NodeDetails { type_name: spec.type_name.clone(), status: spec.status.clone(), deleted: false };
        deltas.push(Delta::Details(Box::new((spec.urn.clone(), details))));
    }
    if !tags.is_empty() {
        conn.prepare_cached(
            "INSERT INTO version_tags (entity_id, version, tag) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
        )?
        .execute([json(&tags)])?;
    }
    if !reindex.is_empty() {
        search::reindex(conn, &reindex)?;
    }
    conn.prepare_cached(
        "INSERT INTO changes (rev, tenant, urn, change)
         SELECT value->>0, value->>1, value->>2, 'entity_version' FROM json_each(?)",
    )?
    .execute([json(&changes)])?;
    Ok(outcomes)
}

/// Rows handed to SQLite as one JSON array.
fn json<T: serde::Serialize>(rows: &T) -> String {
    serde_json::to_string(rows).expect("rows serialize")
}

/// Checks one spec against the current state; returns its new version and schema version.
fn check_spec(
    validators: &crate::Validators,
    conn: &Connection,
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
                let found = schemas::load_in(conn, spec.urn.tenant(), t, spec.schema_version)?;
                let s = match (found, spec.schema_version) {
                    (Some(s), _) => s,
                    // A type with versions, but not this one; an unknown type stays an unknown
                    // type whatever version was asked for.
                    (None, Some(version)) if schemas::load_in(conn, spec.urn.tenant(), t, None)?.is_some() => {
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
                let v = schemas::validator(validators, &s)?;
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
pub(crate) fn delete(ctx: &Ctx<'_>, conn: &Connection, urn: &EntityUrn, expect: Option<u64>) -> Res<Outcome> {
    ctx.require_tenant(urn.tenant())?;
    let (id, version) = live_id(conn, urn)?;
    if let Some(expected) = expect {
        if expected != version as u64 {
            return Err(CommandError::VersionConflict { urn: urn.to_string(), expected, actual: version as u64 }.into());
        }
    }
    conn.prepare_cached("UPDATE versions SET until_rev = ? WHERE entity_id = ? AND until_rev IS NULL")?
        .execute(params![ctx.rev, id])?;
    conn.prepare_cached(
        "INSERT INTO versions (entity_id, version, rev, until_rev, at_ms, by, type_name, schema_version,
                               properties, tags, owner, status, description, deleted)
         SELECT entity_id, version + 1, ?, NULL, ?, ?, type_name, schema_version,
                properties, tags, owner, status, description, 1
         FROM versions WHERE entity_id = ? AND version = ?",
    )?
    .execute(params![ctx.rev, ctx.at_ms, ctx.by, id, version])?;
    conn.prepare_cached(
        "INSERT INTO version_tags (entity_id, version, tag)
         SELECT entity_id, version + 1, tag FROM version_tags WHERE entity_id = ? AND version = ?",
    )?
    .execute(params![id, version])?;
    search::reindex(conn, &[id])?;
    record_change(ctx, conn, urn.tenant().as_str(), &urn.to_string(), "entity_deleted")?;
    ctx.graph.borrow_mut().push(Delta::Deleted(urn.clone()));
    Ok(Outcome::Entity { urn: urn.clone(), version: version as u64 + 1 })
}

/// The id and current version of a live (existing, not deleted) entity.
pub(crate) fn live_id(conn: &Connection, urn: &EntityUrn) -> Res<(i64, i64)> {
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT e.id, v.version, v.deleted FROM nodes n JOIN entities e ON e.id = n.id
             JOIN versions v ON v.entity_id = e.id AND v.until_rev IS NULL WHERE n.urn = ?",
        )?
        .query_row([urn.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    match row {
        None => Err(CommandError::NotFound(urn.to_string()).into()),
        Some((_, _, 1)) => Err(CommandError::Deleted(urn.to_string()).into()),
        Some((id, version, _)) => Ok((id, version)),
    }
}

/// Erases personal data of an entity (GDPR): the named top-level properties from every version
/// and the bodies of the named documents in every version (titles stay, so that the history
/// still shows a document existed). The one sanctioned rewrite of history; the search index is
/// rebuilt from what remains, and the change feed announces it.
pub(crate) fn erase(
    ctx: &Ctx<'_>,
    conn: &Connection,
    urn: &EntityUrn,
    properties: &[String],
    documents: &[String],
) -> Res<Outcome> {
    ctx.require_tenant(urn.tenant())?;
    let id: Option<i64> = conn
        .prepare_cached("SELECT e.id FROM nodes n JOIN entities e ON e.id = n.id WHERE n.urn = ?")?
        .query_row([urn.to_string()], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Err(CommandError::NotFound(urn.to_string()).into()) };
    let versions: Vec<(i64, String)> = conn
        .prepare_cached("SELECT version, properties FROM versions WHERE entity_id = ? ORDER BY version")?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut erased_versions = 0;
    for (version, text) in versions {
        let mut value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| crate::StoreError::Corrupt(format!("properties of {urn}@{version}: {e}")))?;
        let Some(object) = value.as_object_mut() else { continue };
        let before = object.len();
        for p in properties {
            object.remove(p);
        }
        if object.len() != before {
            erased_versions += 1;
            conn.prepare_cached("UPDATE versions SET properties = ? WHERE entity_id = ? AND version = ?")?
                .execute(params![value.to_string(), id, version])?;
        }
    }
    let mut erased_documents = 0;
    for title in documents {
        erased_documents += conn
            .prepare_cached("UPDATE documents SET body = '' WHERE entity_id = ? AND title = ? AND body != ''")?
            .execute(params![id, title])?;
    }
    search::reindex(conn, &[id])?;
    record_change(ctx, conn, urn.tenant().as_str(), &urn.to_string(), "entity_erased")?;
    tracing::info!(%urn, erased_versions, erased_documents, "erased personal data");
    Ok(Outcome::Erased { urn: urn.clone(), versions: erased_versions, documents: erased_documents as u64 })
}
