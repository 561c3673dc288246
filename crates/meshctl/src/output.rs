//! How results are printed: aligned tables for people, JSON for programs.
//!
//! JSON output is one compact document per result on one line, so that a listing or a stream
//! is JSON lines (`jq` reads both; so does a script reading line by line). Tables are
//! borderless with aligned columns, like `kubectl get`, so that `grep` and `awk` still work on
//! them. Times are RFC 3339 (UTC) in tables and milliseconds since the epoch in JSON, as on the
//! wire.

use comfy_table::presets::NOTHING;
use comfy_table::Table;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The output format (`--output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON document per result (JSON lines for listings and streams).
    Json,
}

/// A borderless table with these column headers and rows.
pub fn table<R: IntoIterator<Item = Vec<String>>>(header: &[&str], rows: R) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    // Two spaces between columns and none before the first, so the left edge stays flush.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// A two-column `field  value` table, for one record.
pub fn record(rows: Vec<(&str, String)>) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    for (k, v) in rows {
        table.add_row(vec![k.to_owned(), v]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// Prints a table on stdout, without trailing blanks.
pub fn print_table(table: &Table) {
    println!("{}", table.trim_fmt());
}

/// Prints one JSON document on one line of stdout.
pub fn print_json(value: &Value) {
    println!("{value}");
}

/// A wire time (ms since the epoch) as RFC 3339 UTC; empty for 0 (unset).
pub fn time(ms: i64) -> String {
    if ms == 0 {
        return String::new();
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A list as one cell: comma separated.
pub fn list(items: &[String]) -> String {
    items.join(",")
}

/// An optional number as a cell; empty when absent.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(0), "");
        assert_eq!(time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn tables_align_without_borders() {
        let t = table(&["URN", "VERSION"], vec![vec!["mm://a/dataset/long-name".into(), "1".into()]]);
        let text = t.trim_fmt();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("URN "), "{text}");
        assert_eq!(lines[0].find("VERSION"), lines[1].find('1'), "{text}");
    }
}
