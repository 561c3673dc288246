//! Migrations: checking them, applying them to property documents, and replaying them on a
//! schema so the backward-compatibility check can reason about *migrated* data.

use serde_json::{Map, Value};

use super::{property_schema, Incompatibility, Migration, MigrationStep, SchemaError};

/// Splits a dotted field path into its segments, or says what is wrong with it.
///
/// Segments must be non-empty (no `a..b`, no leading or trailing dot) and free of control
/// characters; anything else is a legal JSON object key. There is no escaping, so a key that
/// itself contains a dot cannot be addressed — an accepted limitation, since such keys are rare
/// in entity properties and escaping would make every path harder to read.
pub(crate) fn parse_path(path: &str) -> Result<Vec<&str>, String> {
    if path.is_empty() {
        return Err("field name is empty".into());
    }
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("field path `{path}` has an empty segment"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("field path `{}` contains a control character", path.escape_debug()));
    }
    Ok(segments)
}

/// Checks a migration's shape before it is stored.
///
/// Besides well-formed paths, a rename must not target itself (a no-op that usually hides a
/// typo) and must stay within one object (`a.b` → `a.c`, not `a.b` → `c`): moving a value
/// between objects would have to invent the target's parent objects, which the
/// compatibility check cannot describe precisely, so it is refused up front.
pub fn validate_migration(m: &Migration) -> Result<(), SchemaError> {
    for (index, step) in m.steps.iter().enumerate() {
        check_step(step)
            .map_err(|msg| SchemaError::InvalidMigration(format!("step {} ({}): {msg}", index + 1, step_name(step))))?;
    }
    Ok(())
}

fn step_name(step: &MigrationStep) -> &'static str {
    match step {
        MigrationStep::Rename { .. } => "rename",
        MigrationStep::Default { .. } => "default",
        MigrationStep::Drop { .. } => "drop",
    }
}

fn check_step(step: &MigrationStep) -> Result<(), String> {
    match step {
        MigrationStep::Rename { from, to } => {
            let from_path = parse_path(from)?;
            let to_path = parse_path(to)?;
            if from == to {
                return Err(format!("`{from}` is renamed onto itself"));
            }
            if from_path.split_last().map(|(_, parent)| parent) != to_path.split_last().map(|(_, parent)| parent) {
                return Err(format!(
                    "`{from}` and `{to}` are in different objects; a rename may only change the last segment"
                ));
            }
            Ok(())
        }
        MigrationStep::Default { field, .. } | MigrationStep::Drop { field } => parse_path(field).map(|_| ()),
    }
}

/// Applies `m` to one property document, step by step.
///
/// Steps never create intermediate objects: defaulting `address.city` when there is no
/// `address` leaves the document alone, because an invented `{"city": …}` could violate the
/// schema of `address` (its other required fields), turning valid data invalid. Steps whose
/// path is malformed, or runs through a non-object, are skipped, so applying an unvalidated
/// migration cannot panic. A non-object `props` is left untouched.
pub fn apply_migration(m: &Migration, props: &mut Value) {
    for step in &m.steps {
        match step {
            MigrationStep::Rename { from, to } => rename_value(props, from, to),
            MigrationStep::Default { field, value } => {
                if let Some((parent, name)) = parent_object(props, field) {
                    if !parent.contains_key(name) {
                        parent.insert(name.to_owned(), value.clone());
                    }
                }
            }
            MigrationStep::Drop { field } => {
                if let Some((parent, name)) = parent_object(props, field) {
                    parent.remove(name);
                }
            }
        }
    }
}

/// Moves the value at `from` to `to`, overwriting `to`. An absent `from` is a no-op.
fn rename_value(props: &mut Value, from: &str, to: &str) {
    if from == to {
        return;
    }
    let Some(value) = parent_object(props, from).and_then(|(parent, name)| parent.remove(name)) else {
        return;
    };
    let value = match parent_object(props, to) {
        Some((parent, name)) => {
            parent.insert(name.to_owned(), value);
            return;
        }
        None => value,
    };
    // Only reachable for an unvalidated cross-object rename whose target parent is missing:
    // put the value back rather than lose it.
    if let Some((parent, name)) = parent_object(props, from) {
        parent.insert(name.to_owned(), value);
    }
}

/// The object holding the last segment of `path`, and that segment; `None` when the path is
/// malformed or an intermediate value is missing or not an object.
fn parent_object<'v, 'p>(props: &'v mut Value, path: &'p str) -> Option<(&'v mut Map<String, Value>, &'p str)> {
    let segments = parse_path(path).ok()?;
    let (last, parents) = segments.split_last()?;
    let mut node = props.as_object_mut()?;
    for segment in parents {
        node = node.get_mut(*segment)?.as_object_mut()?;
    }
    Some((node, last))
}

/// Keywords kept on a schema node a migration edits. Everything else is removed because it
/// could describe the data *before* the step and be false after it (an object-level `enum`, a
/// `minProperties` a drop breaks, an `allOf` requiring a renamed field, a `patternProperties`
/// the new name happens to match). Removing a constraint only widens the schema, so the result
/// over-approximates the migrated data: the check may reject more, never accept wrongly.
const KEPT_ON_EDIT: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "$defs",
    "definitions",
    "$schema",
    "$id",
    "id",
    "title",
    "description",
    "$comment",
];

/// Describes data of the `old` schema after `m` has been applied to it.
///
/// Every instance valid under `old`, once migrated, is valid under the result (the result may
/// admit more). Per step, on the object that holds the field:
/// - rename `a` → `b`: `b` gets `a`'s schema — or the union with `b`'s previous schema when `a`
///   is optional, since an absent `a` leaves any existing `b` alone — and `a`'s `required`
///   status; `a` becomes `false` (never present);
/// - default `f`: `f` becomes required, with the union of its previous schema and the default;
/// - drop `f`: `f` becomes `false` and is no longer required.
///
/// The error names the offending field when the migration itself is invalid.
pub(crate) fn migrate_schema(old: &Value, m: &Migration) -> Result<Value, Incompatibility> {
    let mut schema = old.clone();
    for step in &m.steps {
        let field = match step {
            MigrationStep::Rename { from, .. } => from,
            MigrationStep::Default { field, .. } | MigrationStep::Drop { field } => field,
        };
        check_step(step)
            .map_err(|msg| Incompatibility { field: field.clone(), reason: format!("invalid migration: {msg}") })?;
        let segments = parse_path(field).map_err(|reason| Incompatibility { field: field.clone(), reason })?;
        let Some((parents, name)) = segments.split_last().map(|(l, p)| (p, *l)) else {
            continue;
        };
        let Some(node) = edit_node(&mut schema, parents) else {
            // The parent object can never be present, so the step never changes any data.
            continue;
        };
        // Read the field schemas from the stripped node: with a `$ref` (before 2019-09) its
        // `properties` and `required` siblings were inert and must not be trusted.
        strip_for_edit(node);
        let before = Value::Object(node.clone());
        let mut properties = take_properties(node);
        match step {
            MigrationStep::Rename { to, .. } => {
                let target = parse_path(to).ok().and_then(|p| p.last().copied()).unwrap_or(name);
                let from_required = is_required(&before, name);
                let moved = property_schema(&before, name);
                let target_schema = if from_required { moved } else { union(moved, property_schema(&before, target)) };
                properties.insert(target.to_owned(), target_schema);
                properties.insert(name.to_owned(), Value::Bool(false));
                set_required(node, name, false);
                if from_required {
                    set_required(node, target, true);
                }
            }
            MigrationStep::Default { value, .. } => {
                let mut constant = Map::new();
                constant.insert("const".into(), value.clone());
                let schema = union(property_schema(&before, name), Value::Object(constant));
                properties.insert(name.to_owned(), schema);
                set_required(node, name, true);
            }
            MigrationStep::Drop { .. } => {
                properties.insert(name.to_owned(), Value::Bool(false));
                set_required(node, name, false);
            }
        }
        node.insert("properties".into(), Value::Object(properties));
    }
    Ok(schema)
}

/// Walks `parents` down `properties`, making each node editable, and returns the last one.
/// `None` when some node on the way is `false`: that object is never present.
fn edit_node<'v>(schema: &'v mut Value, parents: &[&str]) -> Option<&'v mut Map<String, Value>> {
    let mut node = as_editable(schema)?;
    for segment in parents {
        strip_for_edit(node);
        let child = property_schema(&Value::Object(node.clone()), segment);
        let mut properties = take_properties(node);
        properties.insert((*segment).to_owned(), child);
        node.insert("properties".into(), Value::Object(properties));
        let slot = node.get_mut("properties")?.as_object_mut()?.get_mut(*segment)?;
        node = as_editable(slot)?;
    }
    Some(node)
}

/// `true` and non-schema values become `{}` (same meaning for `true`; a widening otherwise).
fn as_editable(schema: &mut Value) -> Option<&mut Map<String, Value>> {
    match schema {
        Value::Bool(false) => None,
        Value::Object(_) => schema.as_object_mut(),
        _ => {
            *schema = Value::Object(Map::new());
            schema.as_object_mut()
        }
    }
}

fn strip_for_edit(node: &mut Map<String, Value>) {
    // Before 2019-09 a `$ref` makes its siblings inert; once it is gone they would start to
    // constrain, narrowing the schema, so such a node is reset to an unconstrained one.
    let by_reference = ["$ref", "$dynamicRef", "$recursiveRef"].iter().any(|k| node.contains_key(*k));
    // `patternProperties` exempts matching names from `additionalProperties`; without it the
    // latter would cover more names, so it has to go too.
    let patterns = node.contains_key("patternProperties");
    node.retain(|key, _| KEPT_ON_EDIT.contains(&key.as_str()));
    if by_reference {
        node.retain(|key, _| !matches!(key.as_str(), "type" | "properties" | "required"));
    }
    if by_reference || patterns {
        node.remove("additionalProperties");
    }
}

/// Removes and returns the node's `properties` (empty if missing); the caller puts it back.
fn take_properties(node: &mut Map<String, Value>) -> Map<String, Value> {
    match node.remove("properties") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn is_required(schema: &Value, name: &str) -> bool {
    schema.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|v| v.as_str() == Some(name)))
}

fn set_required(node: &mut Map<String, Value>, name: &str, required: bool) {
    let mut list: Vec<Value> = match node.remove("required") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    list.retain(|v| v.as_str() != Some(name));
    if required {
        list.push(Value::String(name.to_owned()));
    }
    // Draft 4 forbids an empty `required`; leaving it out means the same.
    if !list.is_empty() {
        node.insert("required".into(), Value::Array(list));
    }
}

/// A schema admitting exactly what either argument admits, simplified where it is obvious.
pub(crate) fn union(a: Value, b: Value) -> Value {
    match (a, b) {
        (a, b) if a == b => a,
        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
        (Value::Bool(false), other) | (other, Value::Bool(false)) => other,
        (a, b) => {
            let mut map = Map::new();
            map.insert("anyOf".into(), Value::Array(vec![a, b]));
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rename(from: &str, to: &str) -> MigrationStep {
        MigrationStep::Rename { from: from.into(), to: to.into() }
    }
    fn default(field: &str, value: Value) -> MigrationStep {
        MigrationStep::Default { field: field.into(), value }
    }
    fn drop(field: &str) -> MigrationStep {
        MigrationStep::Drop { field: field.into() }
    }

    #[test]
    fn validate_migration_accepts_well_formed_steps() {
        let m = Migration { steps: vec![rename("a", "b"), rename("x.y", "x.z"), default("x.w", json!(1)), drop("c")] };
        assert_eq!(validate_migration(&m), Ok(()));
        assert_eq!(validate_migration(&Migration::default()), Ok(()));
    }

    #[test]
    fn validate_migration_rejects_bad_steps() {
        let cases = [
            (drop(""), "step 1 (drop): field name is empty"),
            (drop("a..b"), "step 1 (drop): field path `a..b` has an empty segment"),
            (default(".a", json!(1)), "step 1 (default): field path `.a` has an empty segment"),
            (drop("a."), "step 1 (drop): field path `a.` has an empty segment"),
            (drop("a\nb"), "step 1 (drop): field path `a\\nb` contains a control character"),
            (rename("a", "a"), "step 1 (rename): `a` is renamed onto itself"),
            (rename("a", ""), "step 1 (rename): field name is empty"),
            (
                rename("address.city", "city"),
                "step 1 (rename): `address.city` and `city` are in different objects; a rename may only change the last segment",
            ),
        ];
        for (step, message) in cases {
            let err = validate_migration(&Migration { steps: vec![step] }).unwrap_err();
            assert_eq!(err, SchemaError::InvalidMigration(message.into()));
        }
        let later = Migration { steps: vec![drop("ok"), drop("")] };
        assert!(validate_migration(&later).unwrap_err().to_string().contains("step 2"));
    }

    #[test]
    fn apply_migration_table() {
        #[rustfmt::skip]
        let cases = [
            ("rename moves a value", vec![rename("a", "b")], json!({"a": 1}), json!({"b": 1})),
            ("rename of an absent field leaves the target", vec![rename("a", "b")], json!({"b": 2}), json!({"b": 2})),
            ("rename overwrites the target", vec![rename("a", "b")], json!({"a": 1, "b": 2}), json!({"b": 1})),
            ("default fills an absent field", vec![default("a", json!("x"))], json!({}), json!({"a": "x"})),
            ("default keeps a present field", vec![default("a", json!("x"))], json!({"a": 1}), json!({"a": 1})),
            ("null counts as present", vec![default("a", json!("x"))], json!({"a": null}), json!({"a": null})),
            ("drop removes", vec![drop("a")], json!({"a": 1, "b": 2}), json!({"b": 2})),
            ("drop of an absent field", vec![drop("a")], json!({"b": 2}), json!({"b": 2})),
            ("nested rename", vec![rename("addr.city", "addr.town")], json!({"addr": {"city": "x"}}), json!({"addr": {"town": "x"}})),
            ("nested default", vec![default("addr.city", json!("?"))], json!({"addr": {}}), json!({"addr": {"city": "?"}})),
            ("no intermediate objects are created", vec![default("addr.city", json!("?"))], json!({}), json!({})),
            ("paths through non-objects are skipped", vec![drop("addr.city")], json!({"addr": "x"}), json!({"addr": "x"})),
            ("non-object documents are untouched", vec![drop("a")], json!([{"a": 1}]), json!([{"a": 1}])),
            ("steps apply in order", vec![rename("a", "b"), default("a", json!(0)), drop("c")], json!({"a": 1, "c": 3}), json!({"a": 0, "b": 1})),
            ("malformed paths are skipped", vec![drop("a..b"), rename("a", "a")], json!({"a": 1}), json!({"a": 1})),
            ("unvalidated cross-object rename keeps the value", vec![rename("a.b", "c.d")], json!({"a": {"b": 1}}), json!({"a": {"b": 1}})),
            ("unvalidated cross-object rename into an existing object", vec![rename("a.b", "c")], json!({"a": {"b": 1}}), json!({"a": {}, "c": 1})),
        ];
        for (name, steps, mut props, expected) in cases {
            apply_migration(&Migration { steps }, &mut props);
            assert_eq!(props, expected, "{name}");
        }
    }

    #[test]
    fn migrations_serialize_with_an_op_tag() {
        let m = Migration { steps: vec![rename("a", "b"), default("c", json!(1)), drop("d")] };
        let wire = json!({"steps": [
            {"op": "rename", "from": "a", "to": "b"},
            {"op": "default", "field": "c", "value": 1},
            {"op": "drop", "field": "d"},
        ]});
        assert_eq!(serde_json::to_value(&m).unwrap(), wire);
        assert_eq!(serde_json::from_value::<Migration>(wire).unwrap(), m);
    }

    #[test]
    fn migrated_schema_describes_migrated_data() {
        let old = json!({
            "type": "object",
            "properties": {"owner": {"type": "string"}, "legacy": {"type": "integer"}, "n": {"type": "integer"}},
            "required": ["owner", "legacy"],
            "minProperties": 2,
            "additionalProperties": false
        });
        let m = Migration { steps: vec![rename("owner", "maintainer"), drop("legacy"), default("n", json!(0))] };
        let migrated = migrate_schema(&old, &m).unwrap();
        assert_eq!(
            migrated,
            json!({
                "type": "object",
                "properties": {
                    "owner": false, "maintainer": {"type": "string"}, "legacy": false,
                    "n": {"anyOf": [{"type": "integer"}, {"const": 0}]}
                },
                "required": ["maintainer", "n"],
                "additionalProperties": false
            })
        );
    }
}
