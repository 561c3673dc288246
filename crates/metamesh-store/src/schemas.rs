//! The schema registry: numbered JSON-Schema versions per (tenant, type), compatibility checks on
//! registration, validation of writes, and migrations for reading old data through new schemas.

use std::sync::Arc;

use metamesh_core::command::SchemaSpec;
use metamesh_core::schema::{self, Compatibility, SchemaVersion};
use metamesh_core::{CommandError, TenantId, TypeName};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::Sqlite;

use crate::apply::{Ctx, Res};
use crate::{Store, StoreError, Validators};

type Row = (String, String, i64, String, String, String, String, i64, i64, String);

const COLUMNS: &str = "tenant, type_name, version, base_kind, compatibility, schema, migration, rev, at_ms, created_by";

fn decode(r: Row) -> Result<SchemaVersion, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("schema {}/{} v{}: bad {what}", r.0, r.1, r.2));
    Ok(SchemaVersion {
        tenant: TenantId::new(&r.0).map_err(|_| corrupt("tenant"))?,
        type_name: TypeName::new(&r.1).map_err(|_| corrupt("type name"))?,
        version: r.2 as u32,
        base_kind: r.3.parse().map_err(|_| corrupt("base kind"))?,
        compatibility: r.4.parse().map_err(|_| corrupt("compatibility"))?,
        schema: serde_json::from_str(&r.5).map_err(|_| corrupt("schema"))?,
        migration: serde_json::from_str(&r.6).map_err(|_| corrupt("migration"))?,
        revision: r.7 as u64,
        created_at_ms: r.8,
        created_by: r.9,
    })
}

/// The query behind [`load`] and [`load_in`].
const LOAD: &str = "SELECT tenant, type_name, version, base_kind, compatibility, schema, migration, rev, at_ms,
     created_by FROM schemas WHERE tenant = ?1 AND type_name = ?2
     AND (?3 IS NULL OR version = ?3) AND (?4 IS NULL OR rev <= ?4)
     ORDER BY version DESC LIMIT 1";

/// [`load`] on the writer's connection, inside the apply transaction.
pub(crate) fn load_in(
    conn: &Connection,
    tenant: &TenantId,
    type_name: &TypeName,
    version: Option<u32>,
) -> Result<Option<SchemaVersion>, StoreError> {
    let row: Option<Row> = conn
        .prepare_cached(LOAD)?
        .query_row(params![tenant.as_str(), type_name.as_str(), version.map(i64::from), None::<i64>], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .optional()?;
    row.map(decode).transpose()
}

/// Loads a version (`None` = the latest) of a type.
pub(crate) async fn load<'c, E>(
    exec: E,
    tenant: &TenantId,
    type_name: &TypeName,
    version: Option<u32>,
    max_rev: Option<u64>,
) -> Result<Option<SchemaVersion>, StoreError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let row: Option<Row> = sqlx::query_as(LOAD)
        .bind(tenant.as_str())
        .bind(type_name.as_str())
        .bind(version.map(i64::from))
        .bind(max_rev.map(|r| r as i64))
        .fetch_optional(exec)
        .await?;
    row.map(decode).transpose()
}

/// All versions of a type, oldest first.
pub(crate) async fn list<'c, E>(
    exec: E,
    tenant: &TenantId,
    type_name: &TypeName,
) -> Result<Vec<SchemaVersion>, StoreError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let sql = format!("SELECT {COLUMNS} FROM schemas WHERE tenant = ? AND type_name = ? ORDER BY version");
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(tenant.as_str()).bind(type_name.as_str()).fetch_all(exec).await?;
    rows.into_iter().map(decode).collect()
}

/// What registering a spec would do: the version it gets, the mode it is checked under, and
/// whether it creates that version (false when it equals the latest version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub version: u32,
    pub mode: Compatibility,
    pub creates: bool,
}

/// The one decision behind both `register` and the `check_schema` dry run.
fn plan(latest: Option<&SchemaVersion>, spec: &SchemaSpec) -> Result<Plan, CommandError> {
    let Some(prev) = latest else {
        if !spec.migration.steps.is_empty() {
            return Err(CommandError::invalid("migration", "the first version of a type has nothing to migrate from"));
        }
        return Ok(Plan { version: 1, mode: spec.compatibility.unwrap_or_default(), creates: true });
    };
    if prev.base_kind != spec.base_kind {
        return Err(CommandError::KindMismatch {
            type_name: spec.type_name.clone(),
            expected: prev.base_kind,
            actual: spec.base_kind,
        });
    }
    let mode = spec.compatibility.unwrap_or(prev.compatibility);
    if prev.schema == spec.schema && spec.migration.steps.is_empty() && mode == prev.compatibility {
        return Ok(Plan { version: prev.version, mode, creates: false });
    }
    schema::check_compatible(mode, &prev.schema, &spec.schema, &spec.migration)
        .map_err(|source| CommandError::IncompatibleSchema { type_name: spec.type_name.clone(), source })?;
    Ok(Plan { version: prev.version + 1, mode, creates: true })
}

/// Registers `spec` as the next version, after checking it against the latest one.
/// Registering a schema equal to the latest (with no migration) returns the latest version.
pub(crate) fn register(ctx: &Ctx<'_>, conn: &Connection, spec: &SchemaSpec) -> Res<Plan> {
    let latest = load_in(conn, &spec.tenant, &spec.type_name, None)?;
    let plan = plan(latest.as_ref(), spec)?;
    if !plan.creates {
        return Ok(plan);
    }
    conn.prepare_cached(&format!("INSERT INTO schemas ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))?.execute(
        params![
            spec.tenant.as_str(),
            spec.type_name.as_str(),
            i64::from(plan.version),
            spec.base_kind.as_str(),
            plan.mode.as_str(),
            spec.schema.to_string(),
            serde_json::to_string(&spec.migration).expect("migrations serialize"),
            ctx.rev,
            ctx.at_ms,
            ctx.by,
        ],
    )?;
    Ok(plan)
}

/// The compiled validator of a schema version, from the cache.
pub(crate) fn validator(cache: &Validators, s: &SchemaVersion) -> Result<Arc<jsonschema::Validator>, StoreError> {
    let key = (s.tenant.to_string(), s.type_name.to_string(), s.version);
    let mut cache = cache.lock().expect("validator cache poisoned");
    if let Some(v) = cache.get(&key) {
        return Ok(v.clone());
    }
    let v = Arc::new(jsonschema::validator_for(&s.schema).map_err(|e| {
        StoreError::Corrupt(format!("stored schema {}/{} v{} does not compile: {e}", s.tenant, s.type_name, s.version))
    })?);
    cache.insert(key, v.clone());
    Ok(v)
}

impl Store {
    /// A schema version (`None` = latest).
    pub async fn schema(
        &self,
        tenant: &TenantId,
        type_name: &TypeName,
        version: Option<u32>,
    ) -> Result<Option<SchemaVersion>, StoreError> {
        load(&self.readers, tenant, type_name, version, None).await
    }

    /// Every version of a type, oldest first.
    pub async fn schema_versions(
        &self,
        tenant: &TenantId,
        type_name: &TypeName,
    ) -> Result<Vec<SchemaVersion>, StoreError> {
        list(&self.readers, tenant, type_name).await
    }

    /// Dry run of a registration: the version it would get (the latest one if it is identical
    /// to it), or why it would be refused. Writes nothing.
    pub async fn check_schema(&self, spec: &SchemaSpec) -> Result<u32, StoreError> {
        metamesh_core::Command::RegisterSchema(spec.clone()).validate()?;
        if !self.tenants().await?.contains(&spec.tenant) {
            return Err(CommandError::UnknownTenant(spec.tenant.clone()).into());
        }
        let latest = load(&self.readers, &spec.tenant, &spec.type_name, None, None).await?;
        Ok(plan(latest.as_ref(), spec)?.version)
    }
}

/// Checks `properties` against a schema version, naming the first failing path.
pub(crate) fn check_properties(
    validator: &jsonschema::Validator,
    s: &SchemaVersion,
    properties: &serde_json::Value,
) -> Result<(), CommandError> {
    if let Err(e) = validator.validate(properties) {
        let mut message = e.to_string();
        if message.len() > 300 {
            let mut cut = 300;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let path = e.instance_path().as_str();
        return Err(CommandError::SchemaViolation {
            type_name: s.type_name.clone(),
            version: s.version,
            path: if path.is_empty() { "/".to_owned() } else { path.to_owned() },
            message,
        });
    }
    Ok(())
}
