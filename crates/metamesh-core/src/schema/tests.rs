//! Table-driven tests for the schema registry rules, plus checks that tie the structural
//! compatibility answer to real validation with `jsonschema`.

use serde_json::{json, Value};

use super::*;
use Compatibility::{Backward as B, Forward as F, Full, None as N};

fn rename(from: &str, to: &str) -> MigrationStep {
    MigrationStep::Rename { from: from.into(), to: to.into() }
}
fn default(field: &str, value: Value) -> MigrationStep {
    MigrationStep::Default { field: field.into(), value }
}
fn drop(field: &str) -> MigrationStep {
    MigrationStep::Drop { field: field.into() }
}
fn mig(steps: Vec<MigrationStep>) -> Migration {
    Migration { steps }
}

/// An object schema with the given properties and required names.
fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}
/// The same, closed with `additionalProperties: false`.
fn closed(props: Value, required: &[&str]) -> Value {
    let mut schema = obj(props, required);
    schema["additionalProperties"] = json!(false);
    schema
}

struct Case {
    name: &'static str,
    mode: Compatibility,
    old: Value,
    new: Value,
    migration: Migration,
    /// `None` = compatible; `Some(field)` = incompatible at that field.
    expected: Option<&'static str>,
}

fn case(
    name: &'static str,
    mode: Compatibility,
    old: Value,
    new: Value,
    migration: Vec<MigrationStep>,
    expected: Option<&'static str>,
) -> Case {
    Case { name, mode, old, new, migration: mig(migration), expected }
}

fn realistic() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "model",
        "type": "object",
        "properties": {
            "framework": {"type": "string", "enum": ["pytorch", "tensorflow", "jax"]},
            "params": {"type": "integer", "minimum": 0},
            "accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 64}},
            "owner": {"$ref": "#/$defs/person"}
        },
        "required": ["framework"],
        "$defs": {"person": {"type": "object", "properties": {"email": {"type": "string"}}}}
    })
}

/// `x` is whatever `#/definitions/X` says: in draft 7 its sibling keywords are ignored.
fn draft7_ref() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "x": {"$ref": "#/definitions/X", "properties": {"a": {"type": "string"}}, "required": ["a"]}
        },
        "definitions": {"X": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    })
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let s = || json!({"type": "string"});
    let num = json!({"type": "number"});
    let int = json!({"type": "integer"});
    let addr = |city: Value| obj(json!({"address": closed(json!({"city": city, "zip": {"type": "string"}}), &["zip"])}), &[]);
    vec![
        case("identical schemas are fully compatible", Full, realistic(), realistic(), vec![], None),
        case("none accepts anything", N, obj(json!({}), &[]), json!({"type": "object", "required": ["x"], "additionalProperties": false}), vec![], None),
        // required fields
        case("new requires a field old did not", B, obj(json!({"a": s(), "b": s()}), &["a"]), obj(json!({"a": s(), "b": s()}), &["a", "b"]), vec![], Some("b")),
        case("default makes a new required field safe", B, obj(json!({"a": s(), "b": s()}), &["a"]), obj(json!({"a": s(), "b": s()}), &["a", "b"]), vec![default("b", json!("x"))], None),
        case("default of the wrong type does not", B, obj(json!({"p": int.clone()}), &[]), obj(json!({"p": int.clone()}), &["p"]), vec![default("p", json!("high"))], Some("p")),
        case("open old schema: b may already hold anything", B, obj(json!({"a": s()}), &[]), obj(json!({"a": s(), "b": s()}), &["b"]), vec![default("b", json!("x"))], Some("b")),
        case("forward: new requires more", F, obj(json!({"a": s()}), &[]), obj(json!({"a": s()}), &["a"]), vec![], None),
        case("forward: new drops a requirement", F, obj(json!({"a": s()}), &["a"]), obj(json!({"a": s()}), &[]), vec![], Some("a")),
        case("backward: new drops a requirement", B, obj(json!({"a": s()}), &["a"]), obj(json!({"a": s()}), &[]), vec![], None),
        // types
        case("number narrowed to integer", B, obj(json!({"n": num.clone()}), &[]), obj(json!({"n": int.clone()}), &[]), vec![], Some("n")),
        case("integer widened to number", B, obj(json!({"n": int.clone()}), &[]), obj(json!({"n": num.clone()}), &[]), vec![], None),
        case("forward: integer in new, number in old", F, obj(json!({"n": num.clone()}), &[]), obj(json!({"n": int.clone()}), &[]), vec![], None),
        case("nullable removed", B, obj(json!({"x": {"type": ["string", "null"]}}), &[]), obj(json!({"x": s()}), &[]), vec![], Some("x")),
        case("forward: nullable added", F, obj(json!({"x": s()}), &[]), obj(json!({"x": {"type": ["string", "null"]}}), &[]), vec![], Some("x")),
        case("untyped property gains a type", B, obj(json!({"x": {}}), &[]), obj(json!({"x": s()}), &[]), vec![], Some("x")),
        // enum and const
        case("enum value removed", B, obj(json!({"e": {"enum": ["a", "b", "c"]}}), &[]), obj(json!({"e": {"enum": ["a", "b"]}}), &[]), vec![], Some("e")),
        case("enum value added", B, obj(json!({"e": {"enum": ["a", "b"]}}), &[]), obj(json!({"e": {"enum": ["a", "b", "c"]}}), &[]), vec![], None),
        case("forward: enum value added", F, obj(json!({"e": {"enum": ["a", "b"]}}), &[]), obj(json!({"e": {"enum": ["a", "b", "c"]}}), &[]), vec![], Some("e")),
        case("enum added where there was none", B, obj(json!({"e": s()}), &[]), obj(json!({"e": {"type": "string", "enum": ["a"]}}), &[]), vec![], Some("e")),
        case("const changed", Full, obj(json!({"v": {"const": 1}}), &[]), obj(json!({"v": {"const": 2}}), &[]), vec![], Some("v")),
        case("enum narrowed to a member const", F, obj(json!({"v": {"enum": [1, 2]}}), &[]), obj(json!({"v": {"const": 2}}), &[]), vec![], None),
        // content model
        case("closed new schema, old had a field", B, obj(json!({"a": s(), "legacy": s()}), &[]), closed(json!({"a": s()}), &[]), vec![], Some("legacy")),
        case("closed new schema, old was open", B, obj(json!({"a": s()}), &[]), closed(json!({"a": s()}), &[]), vec![], Some("*")),
        case("closed, field dropped by the migration", B, closed(json!({"a": s(), "legacy": s()}), &["legacy"]), closed(json!({"a": s()}), &[]), vec![drop("legacy")], None),
        case("forward: old open, new closed", F, obj(json!({"a": s()}), &[]), closed(json!({"a": s()}), &[]), vec![], None),
        case("closed model gains an optional field", B, closed(json!({"a": s()}), &[]), closed(json!({"a": s(), "b": s()}), &[]), vec![], None),
        case("... but not forward", Full, closed(json!({"a": s()}), &[]), closed(json!({"a": s(), "b": s()}), &[]), vec![], Some("b")),
        case("unconstrained new property in an open model", B, obj(json!({"a": s()}), &[]), obj(json!({"a": s(), "b": {"description": "free"}}), &[]), vec![], None),
        case("typed additionalProperties narrowed", B, json!({"type": "object", "additionalProperties": num.clone()}), json!({"type": "object", "additionalProperties": int.clone()}), vec![], Some("*")),
        // numbers
        case("minimum tightened", B, obj(json!({"n": {"type": "number", "minimum": 0}}), &[]), obj(json!({"n": {"type": "number", "minimum": 1}}), &[]), vec![], Some("n")),
        case("forward: minimum tightened", F, obj(json!({"n": {"type": "number", "minimum": 0}}), &[]), obj(json!({"n": {"type": "number", "minimum": 1}}), &[]), vec![], None),
        case("maximum made exclusive", B, obj(json!({"n": {"type": "number", "maximum": 1}}), &[]), obj(json!({"n": {"type": "number", "exclusiveMaximum": 1}}), &[]), vec![], Some("n")),
        case("exclusive bound relaxed to inclusive", B, obj(json!({"n": {"type": "number", "exclusiveMinimum": 0}}), &[]), obj(json!({"n": {"type": "number", "minimum": 0}}), &[]), vec![], None),
        case("draft 4 boolean exclusiveMinimum", B, obj(json!({"n": {"type": "number", "minimum": 0}}), &[]), obj(json!({"n": {"type": "number", "minimum": 0, "exclusiveMinimum": true}}), &[]), vec![], Some("n")),
        case("maximum added", B, obj(json!({"n": num.clone()}), &[]), obj(json!({"n": {"type": "number", "maximum": 10}}), &[]), vec![], Some("n")),
        case("multipleOf added", B, obj(json!({"n": int.clone()}), &[]), obj(json!({"n": {"type": "integer", "multipleOf": 2}}), &[]), vec![], Some("n")),
        case("multipleOf relaxed to a divisor", B, obj(json!({"n": {"type": "integer", "multipleOf": 4}}), &[]), obj(json!({"n": {"type": "integer", "multipleOf": 2}}), &[]), vec![], None),
        case("multipleOf 0.5 holds for integers", B, obj(json!({"n": int.clone()}), &[]), obj(json!({"n": {"type": "number", "multipleOf": 0.5}}), &[]), vec![], None),
        // strings
        case("minLength tightened", B, obj(json!({"s": {"type": "string", "minLength": 1}}), &[]), obj(json!({"s": {"type": "string", "minLength": 2}}), &[]), vec![], Some("s")),
        case("maxLength relaxed", B, obj(json!({"s": {"type": "string", "maxLength": 5}}), &[]), obj(json!({"s": {"type": "string", "maxLength": 9}}), &[]), vec![], None),
        case("forward: maxLength relaxed", F, obj(json!({"s": {"type": "string", "maxLength": 5}}), &[]), obj(json!({"s": {"type": "string", "maxLength": 9}}), &[]), vec![], Some("s")),
        case("pattern added", B, obj(json!({"s": s()}), &[]), obj(json!({"s": {"type": "string", "pattern": "^a"}}), &[]), vec![], Some("s")),
        case("pattern changed", B, obj(json!({"s": {"type": "string", "pattern": "^a"}}), &[]), obj(json!({"s": {"type": "string", "pattern": "^b"}}), &[]), vec![], Some("s")),
        case("pattern removed", B, obj(json!({"s": {"type": "string", "pattern": "^a"}}), &[]), obj(json!({"s": s()}), &[]), vec![], None),
        // arrays
        case("items narrowed", B, obj(json!({"t": {"type": "array", "items": s()}}), &[]), obj(json!({"t": {"type": "array", "items": {"type": "string", "maxLength": 3}}}), &[]), vec![], Some("t[]")),
        case("items widened", B, obj(json!({"t": {"type": "array", "items": int.clone()}}), &[]), obj(json!({"t": {"type": "array", "items": num.clone()}}), &[]), vec![], None),
        case("forward: items widened", F, obj(json!({"t": {"type": "array", "items": int.clone()}}), &[]), obj(json!({"t": {"type": "array", "items": num.clone()}}), &[]), vec![], Some("t[]")),
        case("uniqueItems added", B, obj(json!({"t": {"type": "array"}}), &[]), obj(json!({"t": {"type": "array", "uniqueItems": true}}), &[]), vec![], Some("t")),
        case("minItems tightened", B, obj(json!({"t": {"type": "array"}}), &[]), obj(json!({"t": {"type": "array", "minItems": 1}}), &[]), vec![], Some("t")),
        // nesting and migrations
        case("nested type narrowed", B, addr(num.clone()), addr(int.clone()), vec![], Some("address.city")),
        case("nested required field dropped", B, addr(s()), obj(json!({"address": closed(json!({"city": s()}), &[])}), &[]), vec![drop("address.zip")], None),
        case("nested rename", B, addr(s()), obj(json!({"address": obj(json!({"town": s(), "zip": s()}), &["zip", "town"])}), &[]), vec![rename("address.city", "address.town"), default("address.town", json!("?"))], None),
        case("rename of a required field", B, closed(json!({"owner": s()}), &["owner"]), closed(json!({"maintainer": s()}), &["maintainer"]), vec![rename("owner", "maintainer")], None),
        case("the same change without the rename", B, closed(json!({"owner": s()}), &["owner"]), closed(json!({"maintainer": s()}), &["maintainer"]), vec![], Some("maintainer")),
        case("rename of an optional field in an open model", B, obj(json!({"owner": s()}), &[]), obj(json!({"maintainer": s()}), &[]), vec![rename("owner", "maintainer")], Some("maintainer")),
        case("drop of a field new still requires", B, obj(json!({"a": s()}), &["a"]), obj(json!({"a": s()}), &["a"]), vec![drop("a")], Some("a")),
        case("cross-object rename is refused", B, addr(s()), addr(s()), vec![rename("address.city", "city")], Some("address.city")),
        // things beyond proof
        case("changed $ref", B, realistic(), { let mut n = realistic(); n["properties"]["owner"]["$ref"] = json!("#/$defs/other"); n["$defs"]["other"] = json!({}); n }, vec![], Some("owner")),
        case("same $ref, other change compatible", B, realistic(), { let mut n = realistic(); n["properties"]["params"] = json!({"type": "number"}); n }, vec![], None),
        case("same $ref, changed $defs", B, realistic(), { let mut n = realistic(); n["$defs"]["person"]["required"] = json!(["email"]); n }, vec![], Some("owner")),
        case("anyOf changed", B, obj(json!({"x": {"anyOf": [s(), int.clone()]}}), &[]), obj(json!({"x": {"anyOf": [s(), num.clone()]}}), &[]), vec![], Some("x")),
        case("anyOf on old side only, provable per branch", B, obj(json!({"x": {"anyOf": [s(), {"type": "null"}]}}), &[]), obj(json!({"x": {"type": ["string", "null"]}}), &[]), vec![], None),
        case("allOf added", B, obj(json!({"x": s()}), &[]), obj(json!({"x": {"allOf": [s()]}}), &[]), vec![], Some("x")),
        case("patternProperties on old exempt names from additionalProperties", B, json!({"type": "object", "patternProperties": {"^d": int.clone()}, "additionalProperties": s()}), obj(json!({"d": s()}), &[]), vec![], Some("d")),
        case("... and a migration does not forget that", B, json!({"type": "object", "properties": {"a": s()}, "patternProperties": {"^d": int.clone()}, "additionalProperties": s()}), obj(json!({"a": s(), "d": s()}), &[]), vec![default("a", json!("x"))], Some("d")),
        case("draft 7: siblings of $ref are inert, a migration must not trust them", B, draft7_ref(), { let mut n = draft7_ref(); n["properties"]["x"] = json!({"properties": {"b": s()}, "required": ["b"]}); n }, vec![rename("x.a", "x.b")], Some("x.b")),
        case("patternProperties added", B, obj(json!({}), &[]), json!({"type": "object", "patternProperties": {"^x": s()}}), vec![], Some("(root)")),
    ]
}

#[test]
fn compatibility_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let got = check_compatible(c.mode, &c.old, &c.new, &c.migration);
        let ok = match (&got, c.expected) {
            (Ok(()), None) => true,
            (Err(e), Some(field)) => e.field == field,
            _ => false,
        };
        if !ok {
            failures.push(format!("{} ({}): expected {:?}, got {got:?}", c.name, c.mode, c.expected));
        }
    }
    assert!(failures.is_empty(), "{} failing case(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn unprovable_changes_say_so() {
    for c in cases()
        .into_iter()
        .filter(|c| ["changed $ref", "anyOf changed", "allOf added", "same $ref, changed $defs"].contains(&c.name))
    {
        let err = check_compatible(c.mode, &c.old, &c.new, &c.migration).unwrap_err();
        assert!(err.reason.starts_with("cannot prove compatibility of"), "{}: {err}", c.name);
    }
    let err = check_compatible(
        B,
        &obj(json!({"n": {"type": "number"}}), &[]),
        &obj(json!({"n": {"type": "integer"}}), &[]),
        &Migration::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "incompatible schema change at `n`: type narrowed: the old schema allows `number` but the new schema only allows `integer`");
}

/// A small deterministic generator (xorshift), so failures reproduce without a seed file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn name(&mut self, names: &[&'static str]) -> &'static str {
        names[self.below(names.len())]
    }
}

fn pool() -> Vec<Value> {
    json!([null, true, false, 0, 1, -1, 2, 4, 10, 11, 0.5, 1.0, "", "a", "b", "c", "x", "?", "ab",
        "abcdefghij", "high", [], ["a"], ["a", "a"], [1, 2.5], {}, {"zip": "1"}, {"city": "x", "zip": "2"}])
    .as_array()
    .cloned()
    .unwrap()
}

/// A value shaped by `schema` most of the time and arbitrary otherwise; validity is decided by
/// the real validator afterwards, so the generator only has to make valid values likely.
fn sample(rng: &mut Rng, schema: &Value, depth: usize) -> Value {
    let values = pool();
    let Some(map) = schema.as_object() else {
        return rng.pick(&values).clone();
    };
    if depth > 3 || rng.chance(8) {
        return rng.pick(&values).clone();
    }
    if let Some(Value::Array(options)) = map.get("enum") {
        return rng.pick(options).clone();
    }
    if let Some(c) = map.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(branches)) = map.get("anyOf") {
        let branch = rng.pick(branches).clone();
        return sample(rng, &branch, depth + 1);
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["object", "array", "string", "integer", "number", "null"],
    };
    match *rng.pick(&types) {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, sub) in props {
                    if !rng.chance(4) {
                        out.insert(name.clone(), sample(rng, sub, depth + 1));
                    }
                }
            }
            if rng.chance(4) {
                let extra = rng.pick(&["a", "b", "c", "d", "legacy", "owner", "maintainer", "town"]).to_string();
                let fallback = json!({});
                let sub = map.get("additionalProperties").unwrap_or(&fallback);
                out.insert(extra, sample(rng, sub, depth + 1));
            }
            Value::Object(out)
        }
        "array" => {
            let items = map.get("items").cloned().unwrap_or(json!({}));
            Value::Array((0..rng.below(3)).map(|_| sample(rng, &items, depth + 1)).collect())
        }
        "string" => rng.pick(&["", "a", "b", "x", "ab", "abcdefghij"]).to_string().into(),
        "integer" => rng.pick(&[-1, 0, 1, 2, 4, 10, 11]).to_owned().into(),
        "number" => rng.pick(&[-1.0, 0.0, 0.5, 1.0, 2.0, 10.5]).to_owned().into(),
        "boolean" => rng.chance(2).into(),
        _ => Value::Null,
    }
}

/// Asserts the claim behind an `Ok`: instances valid under the writer (migrated, for backward)
/// validate under the reader. Returns how many instances were actually exercised.
fn assert_samples_agree(
    rng: &mut Rng,
    mode: Compatibility,
    old: &Value,
    new: &Value,
    m: &Migration,
    label: &str,
) -> usize {
    let old_v = jsonschema::validator_for(old).unwrap();
    let new_v = jsonschema::validator_for(new).unwrap();
    let mut exercised = 0;
    for i in 0..200 {
        let instance = sample(rng, if i % 2 == 0 { old } else { new }, 0);
        if matches!(mode, B | Full) && old_v.is_valid(&instance) {
            let mut migrated = instance.clone();
            apply_migration(m, &mut migrated);
            assert!(new_v.is_valid(&migrated), "{label}: {instance} (migrated: {migrated}) is valid under old {old} but not under new {new} after {m:?}");
            exercised += 1;
        }
        if matches!(mode, F | Full) && new_v.is_valid(&instance) {
            assert!(old_v.is_valid(&instance), "{label}: {instance} is valid under new {new} but not under old {old}");
            exercised += 1;
        }
    }
    exercised
}

#[test]
fn compatible_cases_hold_for_real_instances() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for c in cases().into_iter().filter(|c| c.expected.is_none() && c.mode != N) {
        let exercised = assert_samples_agree(&mut rng, c.mode, &c.old, &c.new, &c.migration, c.name);
        assert!(exercised >= 5, "{}: only {exercised} sample instances were valid", c.name);
    }
}

/// Random schema edits: whenever the checker says compatible, real validation must agree.
/// This is what keeps the structural rules honest beyond the hand-written table.
#[test]
fn random_schema_edits_never_pass_wrongly() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut passed, mut exercised) = (0, 0);
    for round in 0..1500 {
        let old = random_object(&mut rng, 0);
        let new = mutate(&mut rng, &old, 0);
        let steps = (0..rng.below(3)).map(|_| random_step(&mut rng)).collect();
        let m = mig(steps);
        for mode in [B, F] {
            if check_compatible(mode, &old, &new, &m).is_ok() {
                passed += 1;
                exercised += assert_samples_agree(&mut rng, mode, &old, &new, &m, &format!("round {round}"));
            }
        }
    }
    eprintln!("fuzz: {passed} compatible pairs, {exercised} instances");
    assert!(
        passed > 150 && exercised > 5000,
        "too few compatible pairs to mean anything: {passed} pairs, {exercised} instances"
    );
}

fn random_property(rng: &mut Rng, depth: usize) -> Value {
    let mut p = match rng.below(if depth == 0 { 11 } else { 9 }) {
        0 => json!({"type": "string"}),
        1 => json!({"type": "integer"}),
        2 => json!({"type": "number"}),
        3 => json!({"type": ["string", "null"]}),
        4 => json!({}),
        5 => json!({"enum": ["a", "b", 1]}),
        6 => json!({"const": "a"}),
        7 => json!({"type": "array", "items": random_property(rng, depth + 1)}),
        8 => json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
        _ => random_object(rng, depth + 1),
    };
    if let Some(map) = p.as_object_mut() {
        let extras = [
            ("minimum", json!(0)),
            ("maximum", json!(10)),
            ("exclusiveMinimum", json!(0)),
            ("multipleOf", json!(2)),
            ("minLength", json!(1)),
            ("maxLength", json!(3)),
            ("pattern", json!("^a")),
            ("minItems", json!(1)),
            ("uniqueItems", json!(true)),
        ];
        for _ in 0..rng.below(3) {
            let (k, v) = rng.pick(&extras);
            map.insert((*k).into(), v.clone());
        }
    }
    p
}

fn random_object(rng: &mut Rng, depth: usize) -> Value {
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    for name in ["a", "b", "c"] {
        if !rng.chance(3) {
            props.insert(name.into(), random_property(rng, depth));
            if rng.chance(3) {
                required.push(json!(name));
            }
        }
    }
    let mut schema = json!({"type": "object", "properties": props, "required": required});
    match rng.below(4) {
        0 => schema["additionalProperties"] = json!(false),
        1 => schema["additionalProperties"] = json!({"type": "string"}),
        _ => {}
    }
    // Object-level constraints a migration can invalidate (they must not survive it).
    let object_level = [
        ("minProperties", json!(2)),
        ("maxProperties", json!(1)),
        ("dependentRequired", json!({"a": ["b"]})),
        ("patternProperties", json!({"^d": {"type": "integer"}})),
        ("allOf", json!([{"required": ["a"]}])),
        ("propertyNames", json!({"maxLength": 1})),
    ];
    if rng.chance(3) {
        let (k, v) = rng.pick(&object_level);
        schema[*k] = v.clone();
    }
    schema
}

fn mutate(rng: &mut Rng, old: &Value, depth: usize) -> Value {
    let mut new = old.clone();
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
            0 => new["properties"][rng.name(&["a", "b", "c", "d"])] = random_property(rng, depth),
            1 => {
                new["properties"].as_object_mut().map(|p| p.remove(rng.name(&["a", "b", "c"])));
            }
            2 => new["required"] = json!([rng.name(&["a", "b", "c", "d"])]),
            3 => new["required"] = json!([]),
            4 => {
                new.as_object_mut().map(|m| m.remove("additionalProperties"));
            }
            5 => new["additionalProperties"] = json!(false),
            _ => {
                let name = rng.name(&["a", "b", "c"]);
                let sub = new["properties"].get(name).cloned().unwrap_or(Value::Null);
                if sub.get("properties").is_some() {
                    new["properties"][name] = mutate(rng, &sub, depth + 1);
                }
            }
        }
    }
    new
}

fn random_step(rng: &mut Rng) -> MigrationStep {
    match rng.below(5) {
        0 => rename(rng.name(&["a", "b", "c"]), rng.name(&["b", "c", "d"])),
        1 => default(rng.name(&["a", "b", "c", "d"]), rng.pick(&pool()).clone()),
        2 => drop(rng.name(&["a", "b", "c"])),
        3 => rename("a.b", "a.d"),
        _ => default("a.c", json!("x")),
    }
}
