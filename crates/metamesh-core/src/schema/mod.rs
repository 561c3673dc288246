//! Schema registry rules: which JSON Schema documents may be registered, how data written under
//! one version maps onto the next ([`Migration`]), and whether a new version is compatible with
//! the previous one under a [`Compatibility`] mode.
//!
//! Everything here is pure: no IO, no clock, no async. That matters twice over. Commands are
//! validated and re-applied on every replica, so the answer must not depend on the network; and a
//! schema that pulls a remote `$ref` would make validation depend on whatever that URL serves
//! today. Remote references are therefore rejected at registration instead of being resolved.
//!
//! - [`validate_schema_document`]: a schema is a valid JSON Schema whose root is an object schema.
//! - [`validate_migration`] / [`apply_migration`]: rename, default and drop steps on dotted paths.
//! - [`check_compatible`]: backward / forward / full / none, in the sense schema registries use.

mod compat;
mod migrate;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use jsonschema::Draft;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::kind::{Kind, TypeName};
use crate::tenant::TenantId;

pub use compat::check_compatible;
pub use migrate::{apply_migration, validate_migration};

/// One registered schema version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub tenant: TenantId,
    pub type_name: TypeName,
    pub version: u32,
    pub base_kind: Kind,
    pub compatibility: Compatibility,
    pub schema: serde_json::Value,
    pub migration: Migration,
    pub revision: u64,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// How a new schema version must relate to the previous one.
///
/// The names follow the schema registries people already know (Confluent's): *backward* means
/// readers on the new version can read data written under the old one, *forward* the reverse.
/// Backward is the default because it is what a metadata store needs most: existing entity
/// versions stay readable through the newest schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    /// Consumers using the new schema can read data written with the old one (after migration).
    #[default]
    Backward,
    /// Consumers using the old schema can read data written with the new one.
    Forward,
    /// Both backward and forward.
    Full,
    /// No check at all.
    None,
}

impl Compatibility {
    /// The wire spelling, identical to the serde representation.
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::Forward => "forward",
            Compatibility::Full => "full",
            Compatibility::None => "none",
        }
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compatibility mode string that is none of `backward`, `forward`, `full`, `none`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("unknown compatibility mode `{0}` (expected backward, forward, full or none)")]
pub struct ParseCompatibilityError(pub String);

impl FromStr for Compatibility {
    type Err = ParseCompatibilityError;

    /// Case-insensitive, so the upper-case spellings of other registries (`BACKWARD`) work too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "backward" => Ok(Compatibility::Backward),
            "forward" => Ok(Compatibility::Forward),
            "full" => Ok(Compatibility::Full),
            "none" => Ok(Compatibility::None),
            _ => Err(ParseCompatibilityError(s.to_owned())),
        }
    }
}

/// How data of schema version n-1 maps to version n: steps applied in order.
///
/// Migrations only move, default or remove fields. They are deliberately not a transformation
/// language: the compatibility check must be able to replay them on the *schema* (see
/// [`check_compatible`]), which is only tractable for this small set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Migration {
    pub steps: Vec<MigrationStep>,
}

/// One migration step. Field names are dotted paths into nested objects (`"address.city"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MigrationStep {
    /// Move the value at `from` to `to` (same parent object), overwriting `to`.
    Rename { from: String, to: String },
    /// Set `field` to `value` when it is absent (an explicit `null` counts as present).
    Default { field: String, value: Value },
    /// Remove `field`.
    Drop { field: String },
}

/// Why a new schema version is not compatible with the previous one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("incompatible schema change at `{field}`: {reason}")]
pub struct Incompatibility {
    /// Dotted path of the offending field; `[]` marks array items, `*` additional properties,
    /// and `(root)` the document itself.
    pub field: String,
    pub reason: String,
}

/// A schema document or migration that cannot be registered at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SchemaError {
    #[error("invalid JSON schema: {0}")]
    InvalidSchema(String),
    #[error("invalid migration: {0}")]
    InvalidMigration(String),
}

/// Keywords whose values are instance data, not subschemas: a `{"$ref": "http://…"}` inside an
/// `enum` is a value, not a reference, and must not be treated as one.
pub(crate) const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples"];

/// Checks that `schema` can be registered.
///
/// The document must pass its draft's meta-schema (jsonschema does that, and compiles it, so
/// anything the validator would choke on later is caught now), must name a bundled draft in
/// `$schema` if it names one, must have `"type": "object"` at the root (entity properties are
/// always an object), and must not reference remote documents: resolving them would be IO, and
/// would make a stored schema's meaning depend on a URL's current content.
pub fn validate_schema_document(schema: &Value) -> Result<(), SchemaError> {
    let invalid = |msg: String| Err(SchemaError::InvalidSchema(msg));
    let Some(root) = schema.as_object() else {
        return invalid("the root must be an object schema, not a bare boolean or value".into());
    };
    if Draft::default().detect(schema) == Draft::Unknown {
        let uri = root.get("$schema").and_then(Value::as_str).unwrap_or_default();
        return invalid(format!(
            "unsupported `$schema` `{uri}`: only the bundled drafts (4, 6, 7, 2019-09, 2020-12) can be used"
        ));
    }
    if let Some(reference) = find_remote_ref(schema) {
        return invalid(format!(
            "remote reference `{reference}` is not allowed: schemas must be self-contained (use `$defs`)"
        ));
    }
    // `offline()` makes the no-IO rule hold even if another crate in the build enables
    // jsonschema's resolver features; it also validates the document against its meta-schema.
    if let Err(err) = jsonschema::options().offline().build(schema) {
        let at = err.instance_path().to_string();
        return if at.is_empty() { invalid(err.to_string()) } else { invalid(format!("{err} (at `{at}`)")) };
    }
    match root.get("type") {
        Some(Value::String(t)) if t == "object" => Ok(()),
        _ => invalid("the root must declare `\"type\": \"object\"`".into()),
    }
}

/// The first `$ref`-like keyword whose target uses a scheme that would need IO to resolve.
fn find_remote_ref(schema: &Value) -> Option<String> {
    let mut found = None;
    any_keyword(schema, 0, &mut |key, value, _| match value {
        Value::String(target) if is_ref_keyword(key) && is_remote(target) => {
            found = Some(target.clone());
            true
        }
        _ => false,
    });
    found
}

/// Keywords whose value maps names to subschemas (the names themselves are not keywords).
const NAMED_SUBSCHEMAS: &[&str] =
    &["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"];

/// Calls `f(keyword, value, depth)` on every keyword of `schema` and of its subschemas (depth 0
/// is the root) until it returns `true`. Instance data (`enum`, `const`, …) is not descended
/// into, and property names are never mistaken for keywords: a property called `enum` or
/// `$ref` is a name, and what it maps to is a schema.
pub(crate) fn any_keyword(schema: &Value, depth: usize, f: &mut dyn FnMut(&str, &Value, usize) -> bool) -> bool {
    let Value::Object(map) = schema else {
        return false;
    };
    map.iter().any(|(key, value)| {
        if DATA_KEYWORDS.contains(&key.as_str()) {
            return false;
        }
        if f(key, value, depth) {
            return true;
        }
        match value {
            Value::Object(named) if NAMED_SUBSCHEMAS.contains(&key.as_str()) => {
                named.values().any(|sub| any_keyword(sub, depth + 1, f))
            }
            Value::Array(items) => items.iter().any(|sub| any_keyword(sub, depth + 1, f)),
            sub => any_keyword(sub, depth + 1, f),
        }
    })
}

/// Keywords that point at another schema by URI; all of them can name a remote document.
fn is_ref_keyword(key: &str) -> bool {
    matches!(key, "$ref" | "$dynamicRef" | "$recursiveRef")
}

fn is_remote(target: &str) -> bool {
    let lower = target.trim().to_ascii_lowercase();
    ["http:", "https:", "file:"].iter().any(|scheme| lower.starts_with(scheme))
}

/// The schema an object schema applies to its property `name`.
///
/// With `patternProperties` the answer depends on regex matching, which this module does not
/// do; `true` stands in for it, which is always a safe over-approximation of the writer side.
pub(crate) fn property_schema(schema: &Value, name: &str) -> Value {
    let Some(map) = schema.as_object() else {
        // `false` admits no object, so no property either; anything else admits any value.
        return Value::Bool(schema != &Value::Bool(false));
    };
    if let Some(declared) = map.get("properties").and_then(|p| p.get(name)) {
        return declared.clone();
    }
    if map.contains_key("patternProperties") {
        return Value::Bool(true);
    }
    map.get("additionalProperties").cloned().unwrap_or(Value::Bool(true))
}

/// `true`, or an object with no keyword that constrains anything. Unknown keywords count as
/// constraints here (they merely make the answer more conservative); `contentEncoding` and
/// friends too, since drafts 6 and 7 assert them.
pub(crate) fn is_unconstrained(schema: &Value) -> bool {
    const ANNOTATIONS: &[&str] = &[
        "$schema",
        "$id",
        "id",
        "$anchor",
        "$dynamicAnchor",
        "$recursiveAnchor",
        "$vocabulary",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
    ];
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

/// The draft a stored document is read with. An unknown `$schema` cannot pass registration; the
/// default is only a fallback so that the checks never fail on it.
pub(crate) fn draft_of(root: &Value) -> Draft {
    match Draft::default().detect(root) {
        Draft::Unknown => Draft::default(),
        draft => draft,
    }
}

/// A validator for a self-contained subschema, without any chance of IO.
pub(crate) fn compile(schema: &Value, draft: Draft) -> Option<jsonschema::Validator> {
    if contains_ref(schema) {
        return None;
    }
    jsonschema::options().with_draft(draft).offline().build(schema).ok()
}

/// Whether the schema uses any reference keyword, i.e. cannot be judged on its own.
pub(crate) fn contains_ref(schema: &Value) -> bool {
    any_keyword(schema, 0, &mut |key, _, _| is_ref_keyword(key))
}

/// Whether every reference in the document is a JSON pointer into `$defs`/`definitions` and no
/// subschema below the root declares an `$id` (which would rebase its references).
pub(crate) fn refs_local(root: &Value) -> bool {
    !any_keyword(root, 0, &mut |key, value, depth| match (key, value) {
        ("$ref", Value::String(target)) => !(target.starts_with("#/$defs/") || target.starts_with("#/definitions/")),
        ("$dynamicRef" | "$recursiveRef", _) => true,
        ("$id" | "id", Value::String(_)) => depth > 0,
        _ => false,
    })
}

/// Every JSON type a `type` keyword can name (`integer` is a subset of `number`).
pub(crate) const ALL_TYPES: &[&str] = &["null", "boolean", "object", "array", "number", "string"];

/// A field path for messages: `address.city`, `tags[]` for array items, `*` for additional
/// properties, `(root)` for the document itself.
pub(crate) fn render(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && segment != "[]" {
            out.push('.');
        }
        out.push_str(segment);
    }
    if out.is_empty() {
        "(root)".into()
    } else {
        out
    }
}

pub(crate) fn list(types: &[String]) -> String {
    types.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
}

/// The instance types a schema admits; every type when `type` is absent or malformed.
pub(crate) fn types_of(schema: &Map<String, Value>) -> Vec<String> {
    let owned = |ts: &[&str]| ts.iter().map(|t| (*t).to_owned()).collect();
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        _ => owned(ALL_TYPES),
    }
}

/// The tightest lower (or upper) numeric bound and whether it is exclusive, covering both the
/// draft 4 boolean `exclusiveMinimum` and the later numeric one.
pub(crate) fn bound(schema: &Map<String, Value>, lower: bool) -> Option<(f64, bool)> {
    let (inclusive, exclusive) = if lower { ("minimum", "exclusiveMinimum") } else { ("maximum", "exclusiveMaximum") };
    let mut best: Option<(f64, bool)> = None;
    let mut consider = |value: f64, excl: bool| {
        let stronger = best.is_none_or(|(b, bx)| {
            let beyond = if lower { value > b } else { value < b };
            beyond || (value == b && excl && !bx)
        });
        if stronger {
            best = Some((value, excl));
        }
    };
    let legacy_exclusive = schema.get(exclusive) == Some(&Value::Bool(true));
    if let Some(v) = schema.get(inclusive).and_then(Value::as_f64) {
        consider(v, legacy_exclusive);
    }
    if let Some(v) = schema.get(exclusive).and_then(Value::as_f64) {
        consider(v, true);
    }
    best
}

#[cfg(test)]
mod document_tests {
    use serde_json::json;

    use super::*;

    fn rejected(schema: Value) -> String {
        match validate_schema_document(&schema) {
            Err(SchemaError::InvalidSchema(msg)) => msg,
            other => panic!("{schema} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn compatibility_parses_and_prints() {
        for mode in [Compatibility::Backward, Compatibility::Forward, Compatibility::Full, Compatibility::None] {
            assert_eq!(mode.as_str().parse::<Compatibility>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_str());
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(mode.as_str()));
        }
        assert_eq!("FULL".parse::<Compatibility>(), Ok(Compatibility::Full));
        assert_eq!(Compatibility::default(), Compatibility::Backward);
        let err = "sideways".parse::<Compatibility>().unwrap_err();
        assert_eq!(err.to_string(), "unknown compatibility mode `sideways` (expected backward, forward, full or none)");
    }

    #[test]
    fn accepts_a_realistic_schema() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "dataset",
            "type": "object",
            "properties": {
                "format": {"type": "string", "enum": ["parquet", "csv", "delta"]},
                "rows": {"type": "integer", "minimum": 0},
                "location": {"type": "string", "format": "uri"},
                "columns": {"type": "array", "items": {"$ref": "#/$defs/column"}},
                "examples": {"enum": [{"$ref": "https://example.com/not-a-reference"}]}
            },
            "required": ["format"],
            "additionalProperties": false,
            "$defs": {
                "column": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "dtype": {"type": "string"}},
                    "required": ["name"]
                }
            }
        });
        assert_eq!(validate_schema_document(&schema), Ok(()));
        let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"});
        assert_eq!(validate_schema_document(&draft7), Ok(()));
    }

    #[test]
    fn rejects_invalid_json_schema() {
        let msg = rejected(json!({"type": 5}));
        assert!(msg.contains("(at `/type`)"), "{msg}");
        rejected(json!({"type": "object", "properties": {"a": {"minimum": "zero"}}}));
    }

    #[test]
    fn rejects_non_object_roots() {
        for schema in
            [json!(true), json!("object"), json!({"type": "string"}), json!({}), json!({"type": ["object", "null"]})]
        {
            let msg = rejected(schema);
            assert!(msg.contains("root"), "{msg}");
        }
    }

    #[test]
    fn rejects_remote_references() {
        for target in [
            "https://example.com/s.json",
            "http://example.com/s.json#/x",
            "file:///etc/schema.json",
            "HTTPS://EXAMPLE.COM/",
        ] {
            let schema = json!({"type": "object", "properties": {"a": {"items": {"$ref": target}}}});
            let msg = rejected(schema);
            assert_eq!(
                msg,
                format!("remote reference `{target}` is not allowed: schemas must be self-contained (use `$defs`)")
            );
        }
        // A property that happens to be called like a data keyword is still a schema.
        let msg = rejected(json!({"type": "object", "properties": {"enum": {"$ref": "https://x.io/s"}}}));
        assert!(msg.starts_with("remote reference `https://x.io/s`"), "{msg}");
        // A relative reference against a remote base would be fetched too: refused offline.
        let msg = rejected(json!({
            "$id": "https://example.com/root.json",
            "type": "object",
            "properties": {"a": {"$ref": "other.json"}}
        }));
        assert!(msg.contains("cannot fetch https://example.com/other.json"), "{msg}");
    }

    #[test]
    fn rejects_unknown_meta_schemas() {
        let msg = rejected(json!({"$schema": "https://example.com/my-meta", "type": "object"}));
        assert!(msg.starts_with("unsupported `$schema`"), "{msg}");
    }

    #[test]
    fn error_messages_render_as_documented() {
        let err = SchemaError::InvalidMigration("step 1 (drop): field name is empty".into());
        assert_eq!(err.to_string(), "invalid migration: step 1 (drop): field name is empty");
        let err = Incompatibility { field: "address.city".into(), reason: "type narrowed".into() };
        assert_eq!(err.to_string(), "incompatible schema change at `address.city`: type narrowed");
    }
}
