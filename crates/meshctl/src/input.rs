//! Parsing what the user types into wire values: `@file` arguments, property filters,
//! consistency levels, times and versioned URNs.
//!
//! Everything here fails as a usage error (exit 2) naming the argument or file, before any
//! request is sent: a typo should never cost a round trip, let alone a write.

use std::io::Read;
use std::path::Path;

use metamesh_proto::v1;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::usage;

/// Text given inline, as `@path` (read from the file) or as `-` (read from stdin).
pub fn text_arg(value: &str, what: &str) -> anyhow::Result<String> {
    if value == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| usage(format!("cannot read {what} from stdin: {e}")))?;
        return Ok(text);
    }
    match value.strip_prefix('@') {
        Some(path) => read_file(Path::new(path), what),
        None => Ok(value.to_owned()),
    }
}

/// The contents of a file the user named, as a usage error naming it when unreadable.
pub fn read_file(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {what} file {}: {e}", path.display())))
}

/// A JSON document given as `JSON`, `@file` or `-`; checked to parse, returned compact.
pub fn json_arg(value: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    let text = text_arg(value, what)?;
    serde_json::from_str(&text).map_err(|e| usage(format!("{what} is not valid JSON: {e}")))
}

/// Properties (`--props`): a JSON object, as the compact text the wire carries.
pub fn properties_arg(value: &str) -> anyhow::Result<String> {
    let json = json_arg(value, "--props")?;
    if !json.is_object() {
        return Err(usage("--props must be a JSON object"));
    }
    Ok(json.to_string())
}

/// A migration (`--migration`) in the registry's JSON form (`{"steps":[{"op":"rename",…}]}`, see
/// docs/schema-registry.md), converted to the wire form by the one conversion in
/// `metamesh-proto`.
pub fn migration_arg(value: &str) -> anyhow::Result<v1::Migration> {
    let json = json_arg(value, "--migration")?;
    let migration: metamesh_core::schema::Migration =
        serde_json::from_value(json).map_err(|e| usage(format!("--migration is not a migration: {e}")))?;
    Ok(metamesh_proto::convert::migration_to_wire(&migration))
}

/// Splits `mm://t/k/n@7` into the unversioned URN and the version. A name cannot contain a raw
/// `@` (it is percent-encoded), so the last `@` followed by digits is the version.
pub fn split_version(urn: &str) -> (String, Option<u64>) {
    if let Some((base, v)) = urn.rsplit_once('@') {
        if let Ok(v) = v.parse::<u64>() {
            return (base.to_owned(), Some(v));
        }
    }
    (urn.to_owned(), None)
}

/// How fresh reads must be (`--consistency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Through the leader: sees every acknowledged write.
    Linearizable,
    /// Whatever the replica called has applied.
    Any,
    /// Once the replica called has applied this revision (read-your-writes).
    MinRevision(u64),
}

/// The wire consistency of `--consistency` (default linearizable) and `--max-staleness` (a
/// follower read bounded in staleness, which may be combined with `any` or `min-revision=N`
/// but contradicts `linearizable`).
pub fn read_consistency(
    consistency: Option<Consistency>,
    max_staleness_ms: Option<u64>,
) -> anyhow::Result<v1::ReadConsistency> {
    use v1::read_consistency::{FollowerRead, Linearizable, Mode};
    let follower =
        |min_revision| Mode::Follower(FollowerRead { max_staleness_ms: max_staleness_ms.unwrap_or(0), min_revision });
    let mode = match (consistency, max_staleness_ms) {
        (None | Some(Consistency::Linearizable), None) => Mode::Linearizable(Linearizable {}),
        (Some(Consistency::Linearizable), Some(_)) => {
            return Err(usage(
                "--max-staleness asks for a follower read; it cannot be combined with --consistency linearizable \
                 (METAMESH_CONSISTENCY)",
            ))
        }
        (None | Some(Consistency::Any), _) => follower(0),
        (Some(Consistency::MinRevision(r)), _) => follower(r),
    };
    Ok(v1::ReadConsistency { mode: Some(mode) })
}

/// clap parser for `--consistency linearizable|any|min-revision=N`.
pub fn consistency(s: &str) -> Result<Consistency, String> {
    match s {
        "linearizable" => Ok(Consistency::Linearizable),
        "any" => Ok(Consistency::Any),
        _ => match s.strip_prefix("min-revision=").map(str::parse::<u64>) {
            Some(Ok(r)) => Ok(Consistency::MinRevision(r)),
            _ => Err("expected linearizable, any or min-revision=N".into()),
        },
    }
}

/// clap parser for a duration in milliseconds: `250ms`, `2s`, `1m`, or a bare number of
/// milliseconds; at least 1 ms (0 would mean "no bound" on the wire).
pub fn duration_ms(s: &str) -> Result<u64, String> {
    let bad = || format!("expected a duration such as 250ms, 2s or 1m, got {s:?}");
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    if ms == 0 {
        return Err("must be at least 1ms".into());
    }
    Ok(ms)
}

/// clap parser for `--as-of-time`: milliseconds since the epoch, or an RFC 3339 time.
pub fn time_ms(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("expected milliseconds since the epoch or an RFC 3339 time: {e}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| "time out of range".into())
}

/// An as-of point from `--as-of-revision` / `--as-of-time` (at most one is set; clap enforces it).
pub fn as_of(revision: Option<u64>, time_ms: Option<i64>) -> Option<v1::AsOf> {
    use v1::as_of::Point;
    let point = match (revision, time_ms) {
        (Some(r), _) => Point::Revision(r),
        (None, Some(t)) => Point::TimeMs(t),
        (None, None) => return None,
    };
    Some(v1::AsOf { point: Some(point) })
}

/// Comparison operators of `--prop`, longest first so that `<=` is not read as `<`.
const OPS: [(&str, v1::property_filter::Op); 7] = [
    ("==", v1::property_filter::Op::Eq),
    ("!=", v1::property_filter::Op::Ne),
    ("<=", v1::property_filter::Op::Le),
    (">=", v1::property_filter::Op::Ge),
    ("=", v1::property_filter::Op::Eq),
    ("<", v1::property_filter::Op::Lt),
    (">", v1::property_filter::Op::Gt),
];

/// clap parser for `--prop 'path op value'`, e.g. `rows > 100`, `format = parquet`,
/// `metrics.auc>=0.9`. The value is JSON when it parses as JSON (`100`, `true`, `null`,
/// `"quoted"`), otherwise a bare string.
pub fn property_filter(s: &str) -> Result<v1::PropertyFilter, String> {
    let s = s.trim();
    let path_end = s.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))).unwrap_or(s.len());
    let (path, rest) = s.split_at(path_end);
    if path.is_empty() {
        return Err("expected 'path op value', e.g. 'rows > 100'".into());
    }
    let rest = rest.trim_start();
    let (op_text, op) = OPS
        .iter()
        .find(|(text, _)| rest.starts_with(text))
        .ok_or_else(|| format!("expected an operator (= != < <= > >=) after `{path}`"))?;
    let value = rest[op_text.len()..].trim();
    if value.is_empty() {
        return Err(format!("expected a value after `{path} {op_text}`"));
    }
    let value_json = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(v) => v.to_string(),
        Err(_) => serde_json::Value::String(value.to_owned()).to_string(),
    };
    Ok(v1::PropertyFilter { path: path.to_owned(), op: *op as i32, value_json })
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::property_filter::Op;

    #[test]
    fn property_filters_parse_paths_ops_and_values() {
        let f = property_filter("rows > 100").unwrap();
        assert_eq!((f.path.as_str(), f.op, f.value_json.as_str()), ("rows", Op::Gt as i32, "100"));
        let f = property_filter("metrics.auc>=0.9").unwrap();
        assert_eq!((f.path.as_str(), f.op, f.value_json.as_str()), ("metrics.auc", Op::Ge as i32, "0.9"));
        let f = property_filter("format = parquet").unwrap();
        assert_eq!((f.op, f.value_json.as_str()), (Op::Eq as i32, "\"parquet\""));
        let f = property_filter("owner != \"a b\"").unwrap();
        assert_eq!((f.op, f.value_json.as_str()), (Op::Ne as i32, "\"a b\""));
        assert_eq!(property_filter("x <= true").unwrap().op, Op::Le as i32);
        assert!(property_filter("> 3").is_err());
        assert!(property_filter("rows ~ 3").is_err());
        assert!(property_filter("rows >").is_err());
    }

    #[test]
    fn staleness_bounds() {
        use v1::read_consistency::{FollowerRead, Mode};
        assert_eq!((duration_ms("250ms"), duration_ms("2s"), duration_ms("1m")), (Ok(250), Ok(2000), Ok(60_000)));
        assert_eq!(duration_ms("1500"), Ok(1500));
        for bad in ["", "0", "0ms", "fast", "2h", "-1s", "1.5s"] {
            assert!(duration_ms(bad).is_err(), "{bad}");
        }
        let mode = |c, ms| read_consistency(c, ms).unwrap().mode.unwrap();
        let follower = |max_staleness_ms, min_revision| Mode::Follower(FollowerRead { max_staleness_ms, min_revision });
        assert!(matches!(mode(None, None), Mode::Linearizable(_)));
        assert_eq!(mode(None, Some(500)), follower(500, 0));
        assert_eq!(mode(Some(Consistency::Any), None), follower(0, 0));
        assert_eq!(mode(Some(Consistency::MinRevision(7)), Some(500)), follower(500, 7));
        assert!(read_consistency(Some(Consistency::Linearizable), Some(500)).is_err());
    }

    #[test]
    fn consistency_and_times() {
        assert_eq!(consistency("any"), Ok(Consistency::Any));
        assert_eq!(consistency("min-revision=42"), Ok(Consistency::MinRevision(42)));
        assert!(consistency("min-revision=x").is_err());
        assert!(consistency("eventual").is_err());
        assert_eq!(time_ms("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(time_ms("2023-11-14T22:13:20.123Z"), Ok(1_700_000_000_123));
        assert_eq!(time_ms("2023-11-14T23:13:20.123+01:00"), Ok(1_700_000_000_123));
        assert!(time_ms("yesterday").is_err());
    }

    #[test]
    fn versions_split_off_urns() {
        assert_eq!(split_version("mm://a/model/m@3"), ("mm://a/model/m".into(), Some(3)));
        assert_eq!(split_version("mm://a/model/m"), ("mm://a/model/m".into(), None));
        assert_eq!(split_version("mm://a/model/m@x"), ("mm://a/model/m@x".into(), None));
    }

    #[test]
    fn migrations_use_the_registry_json_form() {
        let m = migration_arg(r#"{"steps":[{"op":"rename","from":"a","to":"b"},{"op":"drop","field":"c"}]}"#).unwrap();
        assert_eq!(m.steps.len(), 2);
        assert!(migration_arg(r#"{"steps":[{"op":"explode"}]}"#).is_err());
    }
}
