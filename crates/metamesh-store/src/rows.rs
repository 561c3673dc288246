//! Decoding stored rows into domain types. A row that does not decode is reported as
//! corruption, never unwrapped.

use metamesh_core::{EntityUrn, EntityVersion, TypeName};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::StoreError;

/// The columns [`entity`] reads, in order; `e` = entities, `n` = nodes, `v` = versions.
pub(crate) const ENTITY_COLUMNS: &str = "n.urn, v.version, v.type_name, v.schema_version, v.properties, v.tags,
     v.owner, v.status, v.description, v.deleted, e.created_at_ms, e.created_by, v.at_ms, v.by, v.rev, e.id";

/// The joins [`ENTITY_COLUMNS`] need.
pub(crate) const ENTITY_FROM: &str = "entities e JOIN nodes n ON n.id = e.id JOIN versions v ON v.entity_id = e.id";

pub(crate) fn entity(row: &SqliteRow) -> Result<(i64, EntityVersion), StoreError> {
    let urn: String = row.try_get(0)?;
    let corrupt = |w: &str| StoreError::Corrupt(format!("entity {urn}: bad {w}"));
    let type_name: Option<String> = row.try_get(2)?;
    let properties: String = row.try_get(4)?;
    let tags: String = row.try_get(5)?;
    let v = EntityVersion {
        urn: urn.parse::<EntityUrn>().map_err(|_| corrupt("urn"))?,
        version: row.try_get::<i64, _>(1)? as u64,
        type_name: type_name.map(|t| TypeName::new(&t)).transpose().map_err(|_| corrupt("type"))?,
        schema_version: row.try_get::<Option<i64>, _>(3)?.map(|v| v as u32),
        properties: serde_json::from_str(&properties).map_err(|_| corrupt("properties"))?,
        tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?,
        owner: row.try_get(6)?,
        status: row.try_get(7)?,
        description: row.try_get(8)?,
        deleted: row.try_get::<i64, _>(9)? != 0,
        created_at_ms: row.try_get(10)?,
        created_by: row.try_get(11)?,
        updated_at_ms: row.try_get(12)?,
        updated_by: row.try_get(13)?,
        revision: row.try_get::<i64, _>(14)? as u64,
    };
    Ok((row.try_get(15)?, v))
}
