//! Compatibility between schema versions, as a conservative structural subsumption check.
//!
//! Deciding whether one JSON Schema admits every instance of another is intractable in general
//! (`oneOf`, `not`, `$ref` cycles, regex inclusion). A registry only needs a sound answer, so
//! [`subsumes`](Checker::subsumes) proves inclusion keyword by keyword for the common shapes of
//! entity-property schemas and reports everything it cannot prove as incompatible: a false
//! alarm costs a user a rewording of their schema, a false pass costs unreadable data.

use jsonschema::Draft;
use serde_json::{Map, Value};

use super::migrate::migrate_schema;
use super::{
    bound, compile, contains_ref, draft_of, is_unconstrained, list, property_schema, refs_local, render, types_of,
    Compatibility, Incompatibility, Migration, ALL_TYPES,
};

/// Checks that `new` may follow `old` under `mode`.
///
/// - backward: every instance valid under `old`, once `migration` is applied, is valid under
///   `new` — checked as `new` subsuming `old` with the migration replayed on the schema;
/// - forward: every instance valid under `new` is valid under `old` (data is never migrated
///   backwards, so the migration plays no part);
/// - full: both; none: always compatible.
///
/// Errors name the dotted path of the first offending field and why.
pub fn check_compatible(
    mode: Compatibility,
    old: &Value,
    new: &Value,
    migration: &Migration,
) -> Result<(), Incompatibility> {
    let backward = || {
        let migrated = migrate_schema(old, migration)?;
        Checker::new(new, &migrated, "new", "old").subsumes(new, &migrated, &mut Vec::new())
    };
    let forward = || Checker::new(old, new, "old", "new").subsumes(old, new, &mut Vec::new());
    match mode {
        Compatibility::None => Ok(()),
        Compatibility::Backward => backward(),
        Compatibility::Forward => forward(),
        Compatibility::Full => backward().and_then(|()| forward()),
    }
}

/// Keyword groups that are compared only for equality: their meaning does not depend on sibling
/// keywords, so when reader and writer carry the same group, the writer satisfies it and the
/// rest can be compared on its own. A group only on the writer is a further restriction of the
/// writer and can be ignored.
const OPAQUE_GROUPS: &[&[&str]] = &[
    &["allOf"],
    &["anyOf"],
    &["oneOf"],
    &["not"],
    &["if", "then", "else"],
    &["dependentRequired"],
    &["dependentSchemas"],
    &["dependencies"],
    &["propertyNames"],
    &["contains", "minContains", "maxContains"],
    // Annotations since 2019-09, but asserted by drafts 6 and 7.
    &["contentMediaType", "contentEncoding", "contentSchema"],
];

struct Checker {
    reader: &'static str,
    writer: &'static str,
    reader_draft: Draft,
    writer_draft: Draft,
    /// Whether a `$ref` means the same on both sides: both documents carry the same `$defs` /
    /// `definitions`, every reference points into them, and no nested `$id` moves the base.
    refs_stable: bool,
}

type Path = Vec<String>;

impl Checker {
    fn new(reader_root: &Value, writer_root: &Value, reader: &'static str, writer: &'static str) -> Self {
        let defs_equal = ["$defs", "definitions"].iter().all(|k| reader_root.get(k) == writer_root.get(k));
        Checker {
            reader,
            writer,
            reader_draft: draft_of(reader_root),
            writer_draft: draft_of(writer_root),
            refs_stable: defs_equal && refs_local(reader_root) && refs_local(writer_root),
        }
    }

    fn err(&self, path: &Path, reason: String) -> Result<(), Incompatibility> {
        Err(Incompatibility { field: render(path), reason })
    }

    fn unprovable(&self, path: &Path, keyword: &str) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        self.err(
            path,
            format!("cannot prove compatibility of `{keyword}` (it differs between the {wr} and {rd} schemas)"),
        )
    }

    /// A subschema may be judged by its text alone when its references cannot have changed.
    fn refs_safe(&self, schema: &Value) -> bool {
        self.refs_stable || !contains_ref(schema)
    }

    /// Proves that every instance valid under `writer` is valid under `reader`, or names the
    /// first place where that cannot be shown.
    fn subsumes(&self, reader: &Value, writer: &Value, path: &mut Path) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        if writer == &Value::Bool(false) || is_unconstrained(reader) {
            return Ok(());
        }
        if reader == writer && self.refs_safe(reader) {
            return Ok(());
        }
        if reader == &Value::Bool(false) {
            return self.err(path, format!("the {wr} schema allows a value here but the {rd} schema allows none"));
        }
        let empty = Map::new();
        let (Some(r), Some(w)) = (reader.as_object(), writer.as_object().or(writer.as_bool().map(|_| &empty))) else {
            return self.unprovable(path, "a non-schema value");
        };
        let (mut r, mut w) = (r.clone(), w.clone());

        if w.contains_key("enum") || w.contains_key("const") {
            if let Some(verdict) = self.check_writer_values(reader, writer, &w, path) {
                return verdict;
            }
        }
        self.strip_references(&mut r, &mut w, path)?;
        // Their meaning depends on every sibling keyword, so only whole-schema equality (above)
        // can vouch for them.
        for keyword in ["unevaluatedProperties", "unevaluatedItems"] {
            if r.contains_key(keyword) {
                return self.unprovable(path, keyword);
            }
        }
        for group in OPAQUE_GROUPS {
            let in_reader = group.iter().any(|k| r.contains_key(*k));
            if !in_reader {
                continue;
            }
            let same = group.iter().all(|k| r.get(*k) == w.get(*k) && r.get(*k).is_none_or(|v| self.refs_safe(v)));
            if !same {
                return self.unprovable(path, group[0]);
            }
            for k in *group {
                r.remove(*k);
                w.remove(*k);
            }
        }
        match self.check_keywords(&r, &w, path) {
            Ok(()) => Ok(()),
            Err(direct) => self.check_writer_branches(reader, &w, path).unwrap_or(Err(direct)),
        }
    }

    /// A writer restricted to listed values is included exactly when each value (that the writer
    /// itself accepts) passes the reader — decided by real validation. `None` when the reader
    /// cannot be compiled on its own (it has references), leaving it to the structural check.
    fn check_writer_values(
        &self,
        reader: &Value,
        writer: &Value,
        w: &Map<String, Value>,
        path: &Path,
    ) -> Option<Result<(), Incompatibility>> {
        let (rd, wr) = (self.reader, self.writer);
        let mut values: Vec<&Value> =
            w.get("enum").and_then(Value::as_array).map(|e| e.iter().collect()).unwrap_or_default();
        if let Some(c) = w.get("const") {
            values = if values.is_empty() || values.contains(&c) { vec![c] } else { Vec::new() };
        }
        let reader_validator = compile(reader, self.reader_draft)?;
        let writer_validator = compile(writer, self.writer_draft);
        let rejected = values
            .into_iter()
            .find(|v| writer_validator.as_ref().is_none_or(|wv| wv.is_valid(v)) && !reader_validator.is_valid(v));
        Some(match rejected {
            None => Ok(()),
            Some(v) => {
                self.err(path, format!("value {v} is allowed by the {wr} schema but rejected by the {rd} schema"))
            }
        })
    }

    /// Removes a `$ref` both sides share when references are stable (the writer then satisfies
    /// it by construction); any other reference is beyond this check.
    fn strip_references(
        &self,
        r: &mut Map<String, Value>,
        w: &mut Map<String, Value>,
        path: &Path,
    ) -> Result<(), Incompatibility> {
        for keyword in ["$dynamicRef", "$recursiveRef"] {
            if r.contains_key(keyword) || w.contains_key(keyword) {
                return self.unprovable(path, keyword);
            }
        }
        match (r.get("$ref"), w.get("$ref")) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) if a == b && self.refs_stable => {
                r.remove("$ref");
                w.remove("$ref");
                Ok(())
            }
            (Some(a), Some(b)) if a == b => self.err(
                path,
                "cannot prove compatibility of `$ref` (the definitions it may point to differ between the schemas)"
                    .into(),
            ),
            _ => self.unprovable(path, "$ref"),
        }
    }

    /// For a writer with `anyOf`/`oneOf`, inclusion of every branch also proves inclusion.
    fn check_writer_branches(
        &self,
        reader: &Value,
        w: &Map<String, Value>,
        path: &mut Path,
    ) -> Option<Result<(), Incompatibility>> {
        let branches = w.get("anyOf").or_else(|| w.get("oneOf"))?.as_array()?;
        Some(branches.iter().try_for_each(|branch| self.subsumes(reader, branch, path)))
    }

    fn check_keywords(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        path: &mut Path,
    ) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        for keyword in ["enum", "const"] {
            if let Some(allowed) = r.get(keyword) {
                let allowed: Vec<&Value> = match allowed {
                    Value::Array(items) if keyword == "enum" => items.iter().collect(),
                    other => vec![other],
                };
                let written: Option<Vec<&Value>> = match (w.get("const"), w.get("enum")) {
                    (Some(c), _) => Some(vec![c]),
                    (None, Some(Value::Array(items))) => Some(items.iter().collect()),
                    _ => None,
                };
                match written {
                    None => {
                        return self.err(
                            path,
                            format!("the {rd} schema restricts values with `{keyword}` but the {wr} schema does not"),
                        )
                    }
                    Some(values) => {
                        if let Some(v) = values.iter().find(|v| !allowed.contains(v)) {
                            return self.err(
                                path,
                                format!(
                                    "value {v} is allowed by the {wr} schema but not by the {rd} schema's `{keyword}`"
                                ),
                            );
                        }
                    }
                }
            }
        }
        let w_types = types_of(w);
        self.check_type(r, &w_types, path)?;
        let may = |t: &str| w_types.iter().any(|wt| wt == t || (t == "number" && wt == "integer"));
        if may("number") {
            self.check_numbers(r, w, &w_types, path)?;
        }
        if may("string") {
            self.check_strings(r, w, path)?;
        }
        if may("array") {
            self.check_arrays(r, w, path)?;
        }
        if may("object") {
            self.check_objects(r, w, path)?;
        }
        Ok(())
    }

    fn check_type(&self, r: &Map<String, Value>, w_types: &[String], path: &Path) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        if !r.contains_key("type") {
            return Ok(());
        }
        let r_types = types_of(r);
        if w_types.len() == ALL_TYPES.len() && r_types.len() < ALL_TYPES.len() {
            return self.err(
                path,
                format!(
                    "type narrowed: the {wr} schema accepts any type here but the {rd} schema only allows {}",
                    list(&r_types)
                ),
            );
        }
        for t in w_types {
            let accepted = r_types.contains(t) || (t == "integer" && r_types.iter().any(|rt| rt == "number"));
            if !accepted {
                return self.err(
                    path,
                    format!(
                        "type narrowed: the {wr} schema allows `{t}` but the {rd} schema only allows {}",
                        list(&r_types)
                    ),
                );
            }
        }
        Ok(())
    }

    fn check_numbers(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        w_types: &[String],
        path: &Path,
    ) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        for (lower, kw) in [(true, "minimum"), (false, "maximum")] {
            let Some((rb, r_excl)) = bound(r, lower) else {
                continue;
            };
            let ok = bound(w, lower).is_some_and(|(wb, w_excl)| {
                let tighter = if lower { wb > rb } else { wb < rb };
                tighter || (wb == rb && (w_excl || !r_excl))
            });
            if !ok {
                let op = match (lower, r_excl) {
                    (true, false) => ">=",
                    (true, true) => ">",
                    (false, false) => "<=",
                    (false, true) => "<",
                };
                return self.err(
                    path,
                    format!(
                        "{kw} tightened: the {rd} schema requires {op} {rb}, which the {wr} schema does not guarantee"
                    ),
                );
            }
        }
        if let Some(rm) = r.get("multipleOf").and_then(Value::as_f64) {
            // Writer values are multiples of `wm` (1 for integers); they are multiples of `rm`
            // when `wm / rm` is a whole number (in floating point, as validators compute it).
            let divides = |wm: f64| {
                let ratio = wm / rm;
                ratio >= 1.0 && ratio.fract() == 0.0
            };
            let integers_only = w_types.iter().all(|t| t == "integer");
            let ok =
                (integers_only && divides(1.0)) || w.get("multipleOf").and_then(Value::as_f64).is_some_and(divides);
            if !ok {
                return self
                    .err(path, format!("multipleOf added or changed: the {rd} schema requires multiples of {rm}"));
            }
        }
        Ok(())
    }

    fn check_strings(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        path: &Path,
    ) -> Result<(), Incompatibility> {
        let rd = self.reader;
        self.check_count(r, w, "minLength", "maxLength", path)?;
        for keyword in ["pattern", "format"] {
            if let Some(rp) = r.get(keyword) {
                if w.get(keyword) != Some(rp) {
                    let change = if w.contains_key(keyword) { "changed" } else { "added" };
                    return self.err(path, format!("{keyword} {change}: the {rd} schema requires {keyword} {rp}"));
                }
            }
        }
        Ok(())
    }

    /// `min`/`max` count bounds (lengths, item and property counts): the writer's range must lie
    /// inside the reader's. A missing minimum is 0, a missing maximum unbounded.
    fn check_count(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        min: &str,
        max: &str,
        path: &Path,
    ) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
        if let Some(rmin) = get(r, min) {
            if get(w, min).unwrap_or(0.0) < rmin {
                return self.err(
                    path,
                    format!("{min} tightened: the {rd} schema requires {min} {rmin}, which the {wr} schema does not guarantee"),
                );
            }
        }
        if let Some(rmax) = get(r, max) {
            if get(w, max).is_none_or(|wmax| wmax > rmax) {
                return self.err(
                    path,
                    format!("{max} tightened: the {rd} schema requires {max} {rmax}, which the {wr} schema does not guarantee"),
                );
            }
        }
        Ok(())
    }

    fn check_arrays(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        path: &mut Path,
    ) -> Result<(), Incompatibility> {
        let rd = self.reader;
        self.check_count(r, w, "minItems", "maxItems", path)?;
        if r.get("uniqueItems") == Some(&Value::Bool(true)) && w.get("uniqueItems") != Some(&Value::Bool(true)) {
            return self.err(path, format!("uniqueItems added: the {rd} schema requires unique items"));
        }
        // Tuple forms make `items` positional, so they are only accepted unchanged; on the
        // writer alone they are widened away (any item allowed).
        let tuple = |m: &Map<String, Value>| {
            m.contains_key("prefixItems")
                || m.contains_key("additionalItems")
                || m.get("items").is_some_and(Value::is_array)
        };
        let tuple_keys = ["prefixItems", "additionalItems", "items"];
        if tuple(r) {
            let same = tuple_keys.iter().all(|k| r.get(*k) == w.get(*k) && r.get(*k).is_none_or(|v| self.refs_safe(v)));
            return if same { Ok(()) } else { self.unprovable(path, "prefixItems") };
        }
        let w_items = if tuple(w) { &Value::Bool(true) } else { w.get("items").unwrap_or(&Value::Bool(true)) };
        let r_items = r.get("items").unwrap_or(&Value::Bool(true));
        path.push("[]".into());
        let verdict = self.subsumes(r_items, w_items, path);
        path.pop();
        verdict
    }

    fn check_objects(
        &self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        path: &mut Path,
    ) -> Result<(), Incompatibility> {
        let (rd, wr) = (self.reader, self.writer);
        let names = |m: &Map<String, Value>, k: &str| -> Vec<String> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let w_required = names(w, "required");
        for name in names(r, "required") {
            if !w_required.contains(&name) {
                path.push(name.clone());
                let verdict = self.err(
                    path,
                    format!("the {rd} schema requires `{name}` but the {wr} schema does not guarantee it is present"),
                );
                path.pop();
                return verdict;
            }
        }
        self.check_count(r, w, "minProperties", "maxProperties", path)?;
        if let Some(patterns) = r.get("patternProperties") {
            if w.get("patternProperties") != Some(patterns) || !self.refs_safe(patterns) {
                return self.unprovable(path, "patternProperties");
            }
        }
        let writer = Value::Object(w.clone());
        let empty = Map::new();
        let r_props = r.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let w_props = w.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        for (name, r_schema) in r_props {
            let w_schema = property_schema(&writer, name);
            path.push(name.clone());
            let verdict = self.subsumes(r_schema, &w_schema, path).map_err(|mut e| {
                let undeclared = w_props.get(name).is_none_or(|d| d == &Value::Bool(true));
                if undeclared && is_unconstrained(&w_schema) && e.field == render(path) {
                    e.reason.push_str(&format!(
                        " (`{name}` is unconstrained in the {wr} schema: an open object's undeclared properties may \
                         hold any value; declare it there or set `additionalProperties: false`)"
                    ));
                }
                e
            });
            path.pop();
            verdict?;
        }
        let Some(r_additional) = r.get("additionalProperties") else {
            return Ok(());
        };
        if is_unconstrained(r_additional) {
            return Ok(());
        }
        for (name, w_schema) in w_props.iter().filter(|(n, _)| !r_props.contains_key(*n)) {
            path.push(name.clone());
            let verdict = if r_additional == &Value::Bool(false) && w_schema != &Value::Bool(false) {
                self.err(
                    path,
                    format!(
                        "the {wr} schema allows property `{name}` but the {rd} schema forbids additional properties"
                    ),
                )
            } else {
                self.subsumes(r_additional, w_schema, path)
            };
            path.pop();
            verdict?;
        }
        let w_additional = if w.contains_key("patternProperties") {
            &Value::Bool(true)
        } else {
            w.get("additionalProperties").unwrap_or(&Value::Bool(true))
        };
        path.push("*".into());
        let verdict = if r_additional == &Value::Bool(false) && w_additional != &Value::Bool(false) {
            self.err(path, format!("the {wr} schema allows additional properties but the {rd} schema forbids them"))
        } else {
            self.subsumes(r_additional, w_additional, path)
        };
        path.pop();
        verdict
    }
}
