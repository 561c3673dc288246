//! A deterministic dump of the whole state, table by table in key order. Two replicas that
//! applied the same log produce identical dumps; tests and operators compare their digests.

use sqlx::Row;

use crate::{Store, StoreError};

/// Tables in dump order with the key they are ordered by.
const TABLES: &[(&str, &str)] = &[
    ("revisions", "rev"),
    ("tenants", "name"),
    ("schemas", "tenant, type_name, version"),
    ("nodes", "id"),
    ("entities", "id"),
    ("versions", "entity_id, version"),
    ("version_tags", "entity_id, version, tag"),
    ("documents", "entity_id, title, version"),
    ("edges", "id"),
    ("changes", "seq"),
    ("mlmd_seq", "tenant, space"),
    ("mlmd_type", "tenant, id"),
    ("mlmd_node", "tenant, kind, id"),
    ("mlmd_property", "tenant, kind, node_id, is_custom, name"),
    ("mlmd_event", "tenant, id"),
    ("mlmd_attribution", "tenant, context_id, artifact_id"),
    ("mlmd_association", "tenant, context_id, execution_id"),
    ("mlmd_parent_context", "tenant, child_id, parent_id"),
    ("ol_events", "seq"),
];

/// Columns holding encoded messages (MLMD's `proto`): dumped as hex, JSON holds no blobs.
const BLOB_COLUMNS: &[&str] = &["proto", "digest"];

impl Store {
    /// The dump: one line per row, `table<TAB>json array of the columns`.
    pub async fn export(&self) -> Result<String, StoreError> {
        let mut out = String::new();
        for (table, order) in TABLES {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(*table)
                .fetch_all(&self.readers)
                .await?;
            let columns: Vec<String> = columns
                .into_iter()
                .map(|c| if BLOB_COLUMNS.contains(&c.as_str()) { format!("hex({c})") } else { c })
                .collect();
            let sql = format!("SELECT json_array({}) FROM {table} ORDER BY {order}", columns.join(", "));
            for row in sqlx::query(&sql).fetch_all(&self.readers).await? {
                out.push_str(table);
                out.push('\t');
                out.push_str(&row.try_get::<String, _>(0)?);
                out.push('\n');
            }
        }
        let fts =
            sqlx::query("SELECT json_array(rowid, name, description, tags, documents) FROM search ORDER BY rowid")
                .fetch_all(&self.readers)
                .await?;
        for row in fts {
            out.push_str("search\t");
            out.push_str(&row.try_get::<String, _>(0)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// blake3 of [`Store::export`], hex.
    pub async fn digest(&self) -> Result<String, StoreError> {
        Ok(blake3::hash(self.export().await?.as_bytes()).to_hex().to_string())
    }
}
