//! The merged configuration tree: the TOML file's values with environment overrides laid over
//! them, each value remembering where it came from.
//!
//! Environment values stay raw strings here ([`Value::Env`]); the deserializer (`de.rs`) reads
//! them as whatever type the key asks for, so `METAMESH_NODE__SHARD_GROUP=123` is the string
//! `"123"` and `METAMESH_NODE__ID=123` the integer 123.

use std::collections::BTreeMap;

use crate::error::{ConfigError, Origin};

/// Prefix of every environment variable that configures a node.
pub const ENV_PREFIX: &str = "METAMESH_";

/// Separator between nesting levels in an environment variable name.
pub const ENV_SEPARATOR: &str = "__";

/// The standard OpenTelemetry variable `telemetry.otlp_endpoint` falls back to.
pub const OTEL_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The top-level sections. Each exists in the tree even when nobody wrote it, so that a missing
/// required key is reported as `node.id` rather than as a missing `node` section.
pub(crate) const SECTIONS: &[&str] =
    &["node", "listen", "tls", "raft", "store", "policy", "telemetry", "audit", "mesh"];

/// Top-level keys that are not sections and can be set whole from one environment variable
/// without a separator (`METAMESH_PEERS`).
pub(crate) const TOP_LEVEL_VALUES: &[&str] = &["peers"];

/// One value of the tree with its origin.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The value itself.
    pub value: Value,
    /// Where it came from; carried into every error about it.
    pub origin: Origin,
}

/// Keys of a table, sorted so that errors come out in a stable order.
pub(crate) type Table = BTreeMap<String, Node>;

/// A TOML value, or a raw environment string whose type the key decides.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A TOML table, or one created to hold an environment override.
    Table(Table),
    /// A TOML array.
    Array(Vec<Node>),
    /// A TOML string.
    Str(String),
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML boolean.
    Bool(bool),
    /// Kept as text: no key takes a datetime, so it only ever appears in an error.
    Datetime(String),
    /// Untyped text from an environment variable.
    Env(String),
}

impl Node {
    /// Converts a parsed TOML value, marking every part of it with `origin`.
    pub fn from_toml(value: toml::Value, origin: &Origin) -> Node {
        let value = match value {
            toml::Value::String(s) => Value::Str(s),
            toml::Value::Integer(n) => Value::Int(n),
            toml::Value::Float(f) => Value::Float(f),
            toml::Value::Boolean(b) => Value::Bool(b),
            toml::Value::Datetime(d) => Value::Datetime(d.to_string()),
            toml::Value::Array(items) => Value::Array(items.into_iter().map(|v| Node::from_toml(v, origin)).collect()),
            toml::Value::Table(table) => Value::Table(table_from_toml(table, origin)),
        };
        Node { value, origin: origin.clone() }
    }

    /// How the value reads in an error message after "found".
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Table(_) => "a table".to_owned(),
            Value::Array(_) => "an array".to_owned(),
            Value::Str(s) | Value::Env(s) => format!("{s:?}"),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Datetime(d) => format!("the datetime {d}"),
        }
    }
}

fn table_from_toml(table: toml::Table, origin: &Origin) -> Table {
    table.into_iter().map(|(k, v)| (k, Node::from_toml(v, origin))).collect()
}

/// Builds the tree: the file's values, then the environment's overrides, then empty tables for
/// the sections nobody mentioned.
pub(crate) fn build(
    toml_text: &str,
    file: Option<&std::path::Path>,
    env: &[(String, String)],
    sections: &[&str],
) -> Result<Node, ConfigError> {
    let parsed: toml::Table = toml_text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
        file: file.map(ToOwned::to_owned),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let file_origin = Origin::File { path: file.map(ToOwned::to_owned) };
    let mut root = table_from_toml(parsed, &file_origin);
    for (var, raw) in env {
        if let Some(path) = env_key_path(var)? {
            set_from_env(&mut root, &path, var, raw)?;
        }
    }
    for section in sections {
        root.entry((*section).to_owned())
            .or_insert_with(|| Node { value: Value::Table(Table::new()), origin: Origin::Default });
    }
    otlp_fallback(&mut root, env);
    Ok(Node { value: Value::Table(root), origin: file_origin })
}

/// Takes `telemetry.otlp_endpoint` from the standard OpenTelemetry variable when neither the
/// file nor a `METAMESH_` variable set it, so that a node follows the same convention as every
/// other OpenTelemetry-instrumented process. An empty value counts as unset, as the OpenTelemetry
/// specification says.
fn otlp_fallback(root: &mut Table, env: &[(String, String)]) {
    let Some((var, url)) = env.iter().rev().find(|(var, url)| var == OTEL_ENDPOINT_ENV && !url.is_empty()) else {
        return;
    };
    if let Some(Node { value: Value::Table(telemetry), .. }) = root.get_mut("telemetry") {
        telemetry
            .entry("otlp_endpoint".to_owned())
            .or_insert_with(|| Node { value: Value::Env(url.clone()), origin: Origin::Env { var: var.clone() } });
    }
}

/// The key path an environment variable sets, or `None` when the variable is not a configuration
/// override (no `METAMESH_` prefix, or a single word such as `METAMESH_LOG` that belongs to the
/// binary rather than to the file).
fn env_key_path(var: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
        return Ok(None);
    };
    if !rest.contains(ENV_SEPARATOR) {
        let key = rest.to_ascii_lowercase();
        return Ok(TOP_LEVEL_VALUES.contains(&key.as_str()).then(|| vec![key]));
    }
    let segments: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::EnvVar {
            var: var.to_owned(),
            reason: format!("empty key between `{ENV_SEPARATOR}` separators"),
        });
    }
    Ok(Some(segments))
}

/// Lays one environment value over the tree, creating the tables on its way.
fn set_from_env(root: &mut Table, path: &[String], var: &str, raw: &str) -> Result<(), ConfigError> {
    let origin = Origin::Env { var: var.to_owned() };
    let (leaf, parents) = path.split_last().expect("an override names at least one key");
    let mut table = root;
    for (depth, segment) in parents.iter().enumerate() {
        let node = table
            .entry(segment.clone())
            .or_insert_with(|| Node { value: Value::Table(Table::new()), origin: origin.clone() });
        table = match &mut node.value {
            Value::Table(t) => t,
            other => {
                let key = path[..=depth].join(".");
                let hint = match other {
                    Value::Array(_) => format!(", set the whole array with {}", env_var_for(&key)),
                    _ => String::new(),
                };
                return Err(ConfigError::Invalid {
                    key: path.join("."),
                    origin,
                    reason: format!("{key} is not a table{hint}"),
                });
            }
        };
    }
    table.insert(leaf.clone(), Node { value: Value::Env(raw.to_owned()), origin });
    Ok(())
}

/// The environment variable that sets a key: `raft.heartbeat_ms` → `METAMESH_RAFT__HEARTBEAT_MS`.
/// Keys inside an array (`peers[1].id`) are set with the whole array (`METAMESH_PEERS`).
pub fn env_var_for(key: &str) -> String {
    let key = key.split('[').next().unwrap_or(key);
    format!("{ENV_PREFIX}{}", key.split('.').map(str::to_ascii_uppercase).collect::<Vec<_>>().join(ENV_SEPARATOR))
}

/// Finds a value by dotted path (`raft.heartbeat_ms`, `peers[1].id`); `None` when nobody set it.
pub(crate) fn lookup<'a>(root: &'a Node, key: &str) -> Option<&'a Node> {
    let mut node = root;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (segment, None),
        };
        node = match &node.value {
            Value::Table(t) => t.get(name)?,
            _ => return None,
        };
        if let Some(i) = index {
            node = match &node.value {
                Value::Array(items) => items.get(i)?,
                _ => return None,
            };
        }
    }
    Some(node)
}

/// Where the value of `key` came from.
pub(crate) fn origin_of(root: &Node, key: &str) -> Origin {
    lookup(root, key).map_or(Origin::Default, |n| n.origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_follow_the_key() {
        assert_eq!(env_var_for("raft.heartbeat_ms"), "METAMESH_RAFT__HEARTBEAT_MS");
        assert_eq!(env_var_for("peers[1].id"), "METAMESH_PEERS");
        assert_eq!(env_var_for("node.id"), "METAMESH_NODE__ID");
    }

    #[test]
    fn only_prefixed_separated_names_are_overrides() {
        assert_eq!(env_key_path("PATH").unwrap(), None);
        assert_eq!(env_key_path("METAMESH_LOG").unwrap(), None);
        assert_eq!(env_key_path("METAMESH_PEERS").unwrap(), Some(vec!["peers".to_owned()]));
        assert_eq!(
            env_key_path("METAMESH_RAFT__HEARTBEAT_MS").unwrap(),
            Some(vec!["raft".into(), "heartbeat_ms".into()])
        );
        assert!(env_key_path("METAMESH_RAFT____X").is_err());
    }
}
