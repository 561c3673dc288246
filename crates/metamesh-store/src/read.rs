//! Entity queries: by URN, versions, filtered listing with keyset pagination, search, documents
//! and their history, the types of a tenant, the change feed. Every read can be asked as of a
//! revision or a time.
//!
//! Cursors are opaque to clients. A listing cursor carries the revision the first page was read
//! at, so the following pages read the same snapshot even while writes continue.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use metamesh_core::query::AsOf;
use metamesh_core::schema::{apply_migration, SchemaVersion};
use metamesh_core::{
    CommandError, Document, EntityUrn, EntityVersion, Kind, ListFilter, PropertyOp, TenantId, TypeName, Urn,
};
use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::rows::{self, ENTITY_COLUMNS, ENTITY_FROM};
use crate::{Store, StoreError};

/// Largest page a listing returns.
pub const MAX_PAGE: usize = 1000;

/// One page of results and the cursor of the next one, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub entity: EntityVersion,
    /// bm25 relevance; lower is better, as SQLite reports it.
    pub score: f64,
    /// The matching text with the hit marked `«…»`.
    pub snippet: String,
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub revision: u64,
    pub tenant: String,
    pub urn: String,
    pub change: String,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    after: i64,
    rev: u64,
}

/// Where a [`Store::list_types`] page continues: after this type name, at the first page's
/// revision.
#[derive(Serialize, Deserialize)]
struct TypeCursor {
    after: String,
    rev: u64,
}

/// Where a [`Store::list_documents`] page continues: after this (title, version), in the order
/// title ascending, version descending.
#[derive(Serialize, Deserialize)]
struct DocumentCursor {
    title: String,
    version: u32,
}

/// Which documents of an entity [`Store::list_documents`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentFilter {
    /// Only the document with this title.
    pub title: Option<String>,
    /// Every version (the history) instead of only the latest version of each document.
    pub all_versions: bool,
    /// Also deleted documents: their tombstone versions and, with `all_versions`, the versions
    /// before the tombstone. Without it a document whose latest version is a tombstone is left
    /// out entirely, and so are tombstones in the middle of a history (a document deleted and
    /// written again).
    pub include_deleted: bool,
}

fn encode_cursor<T: Serialize>(c: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).expect("cursor serializes"))
}

fn decode_cursor<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, CommandError> {
    let bad =
        || CommandError::InvalidField { field: "page_token".into(), reason: "not a token this server issued".into() };
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The columns [`schema_row`] reads, in order.
const SCHEMA_COLUMNS: &str = "s.tenant, s.type_name, s.version, s.base_kind, s.compatibility, s.schema, s.migration,
     s.rev, s.at_ms, s.created_by";

/// A `schemas` row selected with [`SCHEMA_COLUMNS`]. Mirrors the registry's own decoding in
/// `schemas.rs`; a row that does not decode is corruption.
fn schema_row(r: &sqlx::sqlite::SqliteRow) -> Result<SchemaVersion, StoreError> {
    let (tenant, type_name, version): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    let corrupt = |what: &str| StoreError::Corrupt(format!("schema {tenant}/{type_name} v{version}: bad {what}"));
    let (base_kind, compatibility): (String, String) = (r.try_get(3)?, r.try_get(4)?);
    let (schema, migration): (String, String) = (r.try_get(5)?, r.try_get(6)?);
    Ok(SchemaVersion {
        tenant: TenantId::new(&tenant).map_err(|_| corrupt("tenant"))?,
        type_name: TypeName::new(&type_name).map_err(|_| corrupt("type name"))?,
        version: u32::try_from(version).map_err(|_| corrupt("version"))?,
        base_kind: base_kind.parse().map_err(|_| corrupt("base kind"))?,
        compatibility: compatibility.parse().map_err(|_| corrupt("compatibility"))?,
        schema: serde_json::from_str(&schema).map_err(|_| corrupt("schema"))?,
        migration: serde_json::from_str(&migration).map_err(|_| corrupt("migration"))?,
        revision: r.try_get::<i64, _>(7)? as u64,
        created_at_ms: r.try_get(8)?,
        created_by: r.try_get(9)?,
    })
}

fn check_limit(limit: usize) -> Result<i64, CommandError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(CommandError::InvalidField {
            field: "page_size".into(),
            reason: format!("must be 1 to {MAX_PAGE}"),
        });
    }
    Ok(limit as i64)
}

/// SQL that keeps the rows of `alias` (a table with `rev`/`until_rev`) live at `rev`, or
/// currently live when `rev` is `None`. The revision is an integer, so inlining it is safe, and
/// a literal lets SQLite use the partial index on live rows.
pub(crate) fn live(alias: &str, rev: Option<u64>) -> String {
    match rev {
        None => format!("{alias}.until_rev IS NULL"),
        Some(r) => format!("{alias}.rev <= {r} AND ({alias}.until_rev IS NULL OR {alias}.until_rev > {r})"),
    }
}

impl Store {
    /// The revision an as-of point denotes; `None` means "current".
    pub async fn resolve_as_of(&self, as_of: Option<AsOf>) -> Result<Option<u64>, StoreError> {
        match as_of {
            None => Ok(None),
            Some(AsOf::Revision(r)) => Ok(Some(r)),
            Some(AsOf::TimeMs(t)) => {
                let rev: i64 = sqlx::query_scalar("SELECT ifnull(max(rev), 0) FROM revisions WHERE at_ms <= ?")
                    .bind(t)
                    .fetch_one(&self.readers)
                    .await?;
                Ok(Some(rev as u64))
            }
        }
    }

    /// Tenants this shard owns.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let generation = {
            let cached = self.tenants.lock().expect("tenants poisoned");
            if let Some(list) = &cached.1 {
                return Ok(list.clone());
            }
            cached.0
        };
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM tenants ORDER BY name").fetch_all(&self.readers).await?;
        let list: Vec<TenantId> = names
            .iter()
            .map(|n| TenantId::new(n).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        let mut cached = self.tenants.lock().expect("tenants poisoned");
        // Kept only if no apply that creates a tenant started meanwhile.
        if cached.0 == generation {
            cached.1 = Some(list.clone());
        }
        Ok(list)
    }

    /// Drops the cached tenant list (an apply is creating one).
    pub(crate) fn forget_tenants(&self) {
        let mut cached = self.tenants.lock().expect("tenants poisoned");
        cached.0 += 1;
        cached.1 = None;
    }

    /// An entity: the version the URN names, else the current one (at `as_of`). A deleted
    /// entity is returned as its tombstone (`deleted: true`).
    pub async fn get_entity(&self, urn: &Urn, as_of: Option<AsOf>) -> Result<Option<EntityVersion>, StoreError> {
        let rev = self.resolve_as_of(as_of).await?;
        let cond = match (urn.version, rev) {
            (Some(v), None) => format!("v.version = {v}"),
            (Some(v), Some(r)) => format!("v.version = {v} AND v.rev <= {r}"),
            (None, rev) => live("v", rev),
        };
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM {ENTITY_FROM} WHERE n.urn = ? AND {cond}");
        let row = sqlx::query(&sql).bind(urn.entity.to_string()).fetch_optional(&self.readers).await?;
        row.map(|r| rows::entity(&r).map(|(_, e)| e)).transpose()
    }

    /// The current (or as-of) versions of many entities in one query, keyed by URN; entities
    /// that do not exist at that point are absent.
    pub async fn get_entities(
        &self,
        urns: &[EntityUrn],
        as_of: Option<AsOf>,
    ) -> Result<std::collections::HashMap<EntityUrn, EntityVersion>, StoreError> {
        if urns.is_empty() {
            return Ok(Default::default());
        }
        let rev = self.resolve_as_of(as_of).await?;
        let sql = format!(
            "SELECT {ENTITY_COLUMNS} FROM {ENTITY_FROM} WHERE n.urn IN (SELECT value FROM json_each(?)) AND {}",
            live("v", rev)
        );
        let texts: Vec<String> = urns.iter().map(|u| u.to_string()).collect();
        let rows = sqlx::query(&sql)
            .bind(serde_json::to_string(&texts).expect("strings serialize"))
            .fetch_all(&self.readers)
            .await?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let (_, e) = rows::entity(r)?;
            out.insert(e.urn.clone(), e);
        }
        Ok(out)
    }

    /// An entity read through a newer schema version of its type: the migrations of each later
    /// version are applied to its properties in order.
    pub async fn get_entity_as_schema(
        &self,
        urn: &Urn,
        as_of: Option<AsOf>,
        schema_version: u32,
    ) -> Result<Option<EntityVersion>, StoreError> {
        let Some(mut e) = self.get_entity(urn, as_of).await? else { return Ok(None) };
        let (Some(type_name), Some(stored)) = (e.type_name.clone(), e.schema_version) else {
            return Err(CommandError::InvalidField {
                field: "read_schema_version".into(),
                reason: format!("{} has no type", e.urn),
            }
            .into());
        };
        if schema_version < stored {
            return Err(CommandError::InvalidField {
                field: "read_schema_version".into(),
                reason: format!(
                    "{} is stored at schema v{stored}; cannot read it through older v{schema_version}",
                    e.urn
                ),
            }
            .into());
        }
        let versions = self.schema_versions(e.urn.tenant(), &type_name).await?;
        if !versions.iter().any(|s| s.version == schema_version) {
            return Err(CommandError::UnknownSchemaVersion { type_name, version: schema_version }.into());
        }
        for s in versions.iter().filter(|s| s.version > stored && s.version <= schema_version) {
            apply_migration(&s.migration, &mut e.properties);
        }
        e.schema_version = Some(schema_version);
        Ok(Some(e))
    }

    /// Versions of an entity, oldest first, after version `after`.
    pub async fn versions(&self, urn: &EntityUrn, after: u64, limit: usize) -> Result<Vec<EntityVersion>, StoreError> {
        let limit = check_limit(limit)?;
        let sql = format!(
            "SELECT {ENTITY_COLUMNS} FROM {ENTITY_FROM} WHERE n.urn = ? AND v.version > ? ORDER BY v.version LIMIT ?"
        );
        let found =
            sqlx::query(&sql).bind(urn.to_string()).bind(after as i64).bind(limit).fetch_all(&self.readers).await?;
        found.iter().map(|r| rows::entity(r).map(|(_, e)| e)).collect()
    }

    /// Entities matching `filter`, in creation order, one page at a time. `page_token` is the
    /// `next` of the previous page; it pins the revision of the first page.
    pub async fn list_entities(
        &self,
        filter: &ListFilter,
        as_of: Option<AsOf>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<EntityVersion>, StoreError> {
        let limit = check_limit(limit)?;
        let (after, rev) = match page_token {
            Some(t) => {
                let c: Cursor = decode_cursor(t)?;
                (c.after, c.rev)
            }
            // Pin the snapshot to a revision that has happened: a cursor pinned to a future
            // revision would let later writes into later pages.
            None => {
                let applied = self.applied_revision().await?;
                (0, self.resolve_as_of(as_of).await?.map_or(applied, |r| r.min(applied)))
            }
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {ENTITY_COLUMNS} FROM {ENTITY_FROM} WHERE "));
        q.push(live("v", Some(rev)));
        q.push(" AND e.id > ").push_bind(after);
        push_filter(&mut q, filter)?;
        q.push(" ORDER BY e.id LIMIT ").push_bind(limit + 1);
        let found = q.build().fetch_all(&self.readers).await?;
        let mut items = Vec::with_capacity(found.len());
        let mut last = after;
        for r in found.iter().take(limit as usize) {
            let (id, e) = rows::entity(r)?;
            last = id;
            items.push(e);
        }
        let next = (found.len() > limit as usize).then(|| encode_cursor(&Cursor { after: last, rev }));
        Ok(Page { items, next })
    }

    /// Full-text search over live entities, best first. `page_token` continues a search.
    pub async fn search(
        &self,
        text: &str,
        filter: &ListFilter,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<SearchHit>, StoreError> {
        let limit = check_limit(limit)?;
        let fts = crate::search::fts_query(text)?;
        let offset = match page_token {
            Some(t) => decode_cursor::<Cursor>(t)?.after,
            None => 0,
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ENTITY_COLUMNS}, bm25(search) AS score, snippet(search, -1, '«', '»', '…', 12)
             FROM search JOIN {ENTITY_FROM} WHERE search MATCH "
        ));
        q.push_bind(fts);
        q.push(" AND e.id = search.rowid AND v.until_rev IS NULL");
        push_filter(&mut q, filter)?;
        q.push(" ORDER BY score, e.id LIMIT ").push_bind(limit + 1).push(" OFFSET ").push_bind(offset);
        let found = q.build().fetch_all(&self.readers).await?;
        let mut items = Vec::with_capacity(found.len());
        for r in found.iter().take(limit as usize) {
            let (_, entity) = rows::entity(r)?;
            let snippet: String = r.try_get(17)?;
            let snippet = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            items.push(SearchHit { entity, score: r.try_get(16)?, snippet });
        }
        let next = (found.len() > limit as usize).then(|| encode_cursor(&Cursor { after: offset + limit, rev: 0 }));
        Ok(Page { items, next })
    }

    /// The live documents of an entity (at `as_of`), by title.
    pub async fn documents(&self, urn: &EntityUrn, as_of: Option<AsOf>) -> Result<Vec<Document>, StoreError> {
        let rev = self.resolve_as_of(as_of).await?;
        let sql = format!(
            "SELECT d.title, d.version, d.body, d.deleted, d.at_ms, d.by, d.rev FROM documents d
             JOIN nodes n ON n.id = d.entity_id WHERE n.urn = ? AND {} AND d.deleted = 0 ORDER BY d.title",
            live("d", rev)
        );
        let found = sqlx::query(&sql).bind(urn.to_string()).fetch_all(&self.readers).await?;
        found
            .iter()
            .map(|r| {
                Ok(Document {
                    urn: urn.clone(),
                    title: r.try_get(0)?,
                    version: r.try_get::<i64, _>(1)? as u32,
                    body: r.try_get(2)?,
                    deleted: r.try_get::<i64, _>(3)? != 0,
                    created_at_ms: r.try_get(4)?,
                    created_by: r.try_get(5)?,
                    revision: r.try_get::<i64, _>(6)? as u64,
                })
            })
            .collect()
    }

    /// The documents of an entity (at `as_of`), one page at a time, ordered by title and then
    /// version, newest first: the latest version of each document, or with
    /// [`DocumentFilter::all_versions`] every version, the history. `page_token` is the `next`
    /// of the previous page. Document versions are immutable and a new one sorts before the
    /// versions it follows, so paging is stable while writes continue.
    pub async fn list_documents(
        &self,
        urn: &EntityUrn,
        filter: &DocumentFilter,
        as_of: Option<AsOf>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<Document>, StoreError> {
        let limit = check_limit(limit)?;
        let after: Option<DocumentCursor> = page_token.map(decode_cursor).transpose()?;
        let rev = self.resolve_as_of(as_of).await?;
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT d.title, d.version, d.body, d.deleted, d.at_ms, d.by, d.rev FROM documents d
             JOIN nodes n ON n.id = d.entity_id WHERE n.urn = ",
        );
        q.push_bind(urn.to_string()).push(" AND ");
        match (filter.all_versions, rev) {
            (false, rev) => q.push(live("d", rev)),
            (true, Some(r)) => q.push(format!("d.rev <= {r}")),
            (true, None) => q.push("1"),
        };
        if let Some(title) = &filter.title {
            q.push(" AND d.title = ").push_bind(title.clone());
        }
        if let Some(c) = after {
            q.push(" AND (d.title > ").push_bind(c.title.clone());
            q.push(" OR (d.title = ").push_bind(c.title).push(" AND d.version < ").push_bind(i64::from(c.version));
            q.push("))");
        }
        if !filter.include_deleted {
            q.push(" AND d.deleted = 0");
            if filter.all_versions {
                // The history of a document that is deleted (at `rev`) goes with it.
                q.push(format!(
                    " AND NOT EXISTS (SELECT 1 FROM documents t WHERE t.entity_id = d.entity_id
                      AND t.title = d.title AND t.deleted = 1 AND {})",
                    live("t", rev)
                ));
            }
        }
        q.push(" ORDER BY d.title, d.version DESC LIMIT ").push_bind(limit + 1);
        let found = q.build().fetch_all(&self.readers).await?;
        let mut items = Vec::with_capacity(found.len());
        for r in found.iter().take(limit as usize) {
            items.push(Document {
                urn: urn.clone(),
                title: r.try_get(0)?,
                version: r.try_get::<i64, _>(1)? as u32,
                body: r.try_get(2)?,
                deleted: r.try_get::<i64, _>(3)? != 0,
                created_at_ms: r.try_get(4)?,
                created_by: r.try_get(5)?,
                revision: r.try_get::<i64, _>(6)? as u64,
            });
        }
        let next = match (found.len() > limit as usize, items.last()) {
            (true, Some(last)) => {
                Some(encode_cursor(&DocumentCursor { title: last.title.clone(), version: last.version }))
            }
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// The types registered in `tenant`: the latest schema version of each (at `as_of`), by
    /// type name, one page at a time; with `base_kind`, only types of that kind. `page_token`
    /// is the `next` of the previous page; it pins the revision of the first page, so a type
    /// registered meanwhile cannot shift the pages.
    ///
    /// An unknown tenant (or one created after `as_of`) is `UnknownTenant`; a tenant without
    /// types is an empty page.
    pub async fn list_types(
        &self,
        tenant: &TenantId,
        base_kind: Option<Kind>,
        as_of: Option<AsOf>,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<SchemaVersion>, StoreError> {
        let limit = check_limit(limit)?;
        let (after, rev) = match page_token {
            Some(t) => {
                let c: TypeCursor = decode_cursor(t)?;
                (c.after, c.rev)
            }
            None => {
                let applied = self.applied_revision().await?;
                (String::new(), self.resolve_as_of(as_of).await?.map_or(applied, |r| r.min(applied)))
            }
        };
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tenants WHERE name = ? AND rev <= ?")
            .bind(tenant.as_str())
            .bind(rev as i64)
            .fetch_optional(&self.readers)
            .await?;
        if known.is_none() {
            return Err(CommandError::UnknownTenant(tenant.clone()).into());
        }
        // The primary key (tenant, type_name, version) serves both the scan by type name and
        // the latest-version lookup of each type.
        let sql = format!(
            "SELECT {SCHEMA_COLUMNS} FROM schemas s
             WHERE s.tenant = ?1 AND s.type_name > ?2 AND (?3 IS NULL OR s.base_kind = ?3)
               AND s.version = (SELECT max(l.version) FROM schemas l
                                WHERE l.tenant = s.tenant AND l.type_name = s.type_name AND l.rev <= ?4)
             ORDER BY s.type_name LIMIT ?5"
        );
        let found = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(&after)
            .bind(base_kind.map(Kind::as_str))
            .bind(rev as i64)
            .bind(limit + 1)
            .fetch_all(&self.readers)
            .await?;
        let items = found.iter().take(limit as usize).map(schema_row).collect::<Result<Vec<_>, _>>()?;
        let next = match (found.len() > limit as usize, items.last()) {
            (true, Some(last)) => Some(encode_cursor(&TypeCursor { after: last.type_name.to_string(), rev })),
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// Changes after revision `after`, oldest first: the feed behind `watch`.
    pub async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let limit = check_limit(limit)?;
        let found: Vec<(i64, i64, String, String, String)> =
            sqlx::query_as("SELECT seq, rev, tenant, urn, change FROM changes WHERE rev > ? ORDER BY seq LIMIT ?")
                .bind(after as i64)
                .bind(limit)
                .fetch_all(&self.readers)
                .await?;
        Ok(found
            .into_iter()
            .map(|(seq, rev, tenant, urn, change)| Change {
                seq: seq as u64,
                revision: rev as u64,
                tenant,
                urn,
                change,
            })
            .collect())
    }
}

fn push_filter(q: &mut QueryBuilder<'_, Sqlite>, f: &ListFilter) -> Result<(), StoreError> {
    if !f.include_deleted {
        q.push(" AND v.deleted = 0");
    }
    if let Some(t) = &f.tenant {
        q.push(" AND e.tenant = ").push_bind(t.to_string());
    }
    if let Some(k) = f.kind {
        q.push(" AND e.kind = ").push_bind(k.as_str());
    }
    if let Some(t) = &f.type_name {
        q.push(" AND v.type_name = ").push_bind(t.to_string());
    }
    if let Some(o) = &f.owner {
        q.push(" AND v.owner = ").push_bind(o.clone());
    }
    if let Some(s) = &f.status {
        q.push(" AND v.status = ").push_bind(s.clone());
    }
    for tag in &f.tags {
        q.push(" AND EXISTS (SELECT 1 FROM version_tags t WHERE t.entity_id = v.entity_id AND t.version = v.version AND t.tag = ")
            .push_bind(tag.clone())
            .push(")");
    }
    for p in &f.properties {
        let path = p.json_path()?;
        q.push(" AND json_extract(v.properties, ").push_bind(path).push(")");
        match (&p.value, p.op) {
            (serde_json::Value::Null, PropertyOp::Eq) => {
                q.push(" IS NULL");
            }
            (serde_json::Value::Null, _) => {
                q.push(" IS NOT NULL");
            }
            (v, op) => {
                q.push(" ").push(op.sql()).push(" ");
                match v {
                    serde_json::Value::Bool(b) => q.push_bind(i64::from(*b)),
                    serde_json::Value::Number(n) if n.is_i64() => q.push_bind(n.as_i64()),
                    serde_json::Value::Number(n) => q.push_bind(n.as_f64()),
                    serde_json::Value::String(s) => q.push_bind(s.clone()),
                    _ => unreachable!("json_path refused arrays and objects"),
                };
            }
        }
    }
    Ok(())
}
