//! Full-text search with SQLite FTS5 over the current state of live entities: names,
//! descriptions, tags, and document titles and bodies.
//!
//! User text never reaches FTS5's query syntax: each word is quoted, so `a OR b`, `"`, `*` or
//! `NEAR(` are searched as words, not operators. The last word matches as a prefix, which is
//! what a search box typed into expects.

use metamesh_core::CommandError;
use rusqlite::Connection;

use crate::apply::Res;

/// Rebuilds the search rows of these entities from their current versions and documents.
pub(crate) fn reindex(conn: &Connection, ids: &[i64]) -> Res<()> {
    let ids_json = serde_json::to_string(ids).expect("ints serialize");
    conn.prepare_cached("DELETE FROM search WHERE rowid IN (SELECT value FROM json_each(?))")?.execute([&ids_json])?;
    // The unicode61 tokenizer splits on punctuation, so `s3://bucket/events` is found by
    // `bucket` and by `events`.
    conn.prepare_cached(
        "INSERT INTO search (rowid, name, description, tags, documents)
         SELECT e.id, e.name, ifnull(v.description, ''),
                (SELECT ifnull(group_concat(value, ' '), '') FROM json_each(v.tags)),
                (SELECT ifnull(group_concat(d.title || ' ' || d.body, ' '), '') FROM documents d
                  WHERE d.entity_id = e.id AND d.until_rev IS NULL AND d.deleted = 0)
         FROM json_each(?) j
         JOIN entities e ON e.id = j.value
         JOIN versions v ON v.entity_id = e.id AND v.until_rev IS NULL AND v.deleted = 0",
    )?
    .execute([&ids_json])?;
    Ok(())
}

/// Turns free text into a safe FTS5 query: every word quoted, the last one a prefix.
pub(crate) fn fts_query(text: &str) -> Result<String, CommandError> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return Err(CommandError::InvalidField {
            field: "query".into(),
            reason: "must contain at least one letter or digit".into(),
        });
    }
    if words.len() > 32 {
        return Err(CommandError::TooLarge { field: "query".into(), limit: 32, actual: words.len() });
    }
    let mut q = words.join(" ");
    q.push('*');
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_quoted() {
        assert_eq!(fts_query("fraud model").unwrap(), "\"fraud\" \"model\"*");
        assert_eq!(fts_query("a OR b").unwrap(), "\"a\" \"OR\" \"b\"*");
        assert_eq!(fts_query("NEAR(x\"y").unwrap(), "\"NEAR\" \"x\" \"y\"*");
        assert_eq!(fts_query("s3://bucket/käse").unwrap(), "\"s3\" \"bucket\" \"käse\"*");
        assert!(fts_query("  ::// ").is_err());
    }
}
