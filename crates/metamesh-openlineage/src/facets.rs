//! Reading the facets we map onto our model, from the facets map of a dataset.
//!
//! Pure and lenient: facets are kept as sent by [`crate::parse`], so these helpers skip what
//! does not have the expected shape (a field without a name, an input field without a
//! namespace) instead of failing; a facet that is absent or malformed yields nothing.

use serde_json::{Map, Value};

use crate::event::DatasetKey;

/// One column of a dataset, from the `schema` facet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The column's name; a nested field's name is dotted after its parents (`address.street`).
    pub name: String,
    /// The type as the producer wrote it (`VARCHAR`, `integer`, `struct`), if any.
    pub r#type: Option<String>,
    /// The column's description, if any.
    pub description: Option<String>,
}

/// Where one output column comes from, from the `columnLineage` facet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnLineage {
    /// The output dataset's column.
    pub field: String,
    /// The input columns it is computed from, in the facet's order.
    pub inputs: Vec<InputField>,
}

/// A column of some dataset, as an input of column lineage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputField {
    pub dataset: DatasetKey,
    pub field: String,
}

/// Nested schema fields deeper than this are ignored: a struct 32 levels deep is already
/// beyond any real schema, and the walk is recursive.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// The columns of the `schema` facet (`fields[].name/type/description`), in order.
///
/// Nested fields (`fields[].fields`, SchemaDatasetFacet 1-1-0, for structs) are flattened:
/// each follows its parent, named `parent.child`, down to [`MAX_SCHEMA_DEPTH`] levels.
/// Entries without a string `name` are skipped with their children; a non-string `type` or
/// `description` reads as absent.
pub fn schema_fields(facets: &Map<String, Value>) -> Vec<Field> {
    let mut out = Vec::new();
    if let Some(fields) = facets.get("schema").and_then(|s| s.get("fields")) {
        flatten(fields, "", 1, &mut out);
    }
    out
}

fn flatten(fields: &Value, prefix: &str, depth: usize, out: &mut Vec<Field>) {
    let Some(items) = fields.as_array() else { return };
    for item in items {
        let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
        let name = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        out.push(Field { name: name.clone(), r#type: string(item, "type"), description: string(item, "description") });
        if depth < MAX_SCHEMA_DEPTH {
            if let Some(children) = item.get("fields") {
                flatten(children, &name, depth + 1, out);
            }
        }
    }
}

/// The column lineage of the `columnLineage` facet (`fields.<output column>.inputFields[]`
/// with `namespace`, `name`, `field`), sorted by output column (JSON object order is not
/// something to rely on).
///
/// Input fields missing any of the three strings are skipped; an output column left with no
/// inputs is still listed. `transformations` are not read. The dataset-wide inputs of
/// ColumnLineageDatasetFacet 1-2-0 (`dataset[]`) are not mixed in here: see
/// [`column_lineage_dataset_inputs`].
pub fn column_lineage(facets: &Map<String, Value>) -> Vec<ColumnLineage> {
    let Some(fields) = facets.get("columnLineage").and_then(|c| c.get("fields")).and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<ColumnLineage> = fields
        .iter()
        .map(|(field, lineage)| ColumnLineage {
            field: field.clone(),
            inputs: input_fields(lineage.get("inputFields")),
        })
        .collect();
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

/// The dataset-wide inputs of the `columnLineage` facet (`dataset[]`, ColumnLineageDatasetFacet
/// 1-2-0): input columns that affect every output column without being copied into one (filter,
/// join and group-by keys, the INDIRECT transformations). Empty for older producers.
pub fn column_lineage_dataset_inputs(facets: &Map<String, Value>) -> Vec<InputField> {
    input_fields(facets.get("columnLineage").and_then(|c| c.get("dataset")))
}

fn input_fields(list: Option<&Value>) -> Vec<InputField> {
    let Some(items) = list.and_then(Value::as_array) else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            Some(InputField {
                dataset: DatasetKey { namespace: string(item, "namespace")?, name: string(item, "name")? },
                field: string(item, "field")?,
            })
        })
        .collect()
}

/// The `datasetType` facet's `datasetType` (`TABLE`, `VIEW`, `MODEL`, `FILE`...), upper-cased;
/// `None` when absent, not a string or blank.
pub fn dataset_type(facets: &Map<String, Value>) -> Option<String> {
    let text = facets.get("datasetType")?.get("datasetType")?.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_uppercase())
}

fn string(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn nested_schema_fields_are_flattened_with_dots() {
        let facets = map(json!({"schema": {"fields": [
            {"name": "id", "type": "INT64"},
            {"name": "address", "type": "STRUCT", "description": "where", "fields": [
                {"name": "street", "type": "STRING"},
                {"type": "STRING"},
                {"name": "geo", "fields": [{"name": "lat", "type": 5}]}
            ]},
            "not an object",
        ]}}));
        let names: Vec<_> = schema_fields(&facets).into_iter().map(|f| (f.name, f.r#type, f.description)).collect();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            names,
            [
                ("id".into(), s("INT64"), None),
                ("address".into(), s("STRUCT"), s("where")),
                ("address.street".into(), s("STRING"), None),
                ("address.geo".into(), None, None),
                ("address.geo.lat".into(), None, None),
            ]
        );
    }

    #[test]
    fn deep_schemas_stop_at_the_limit() {
        let mut field = json!({"name": "leaf"});
        for _ in 0..100 {
            field = json!({"name": "n", "fields": [field]});
        }
        let fields = schema_fields(&map(json!({"schema": {"fields": [field]}})));
        assert_eq!(fields.len(), MAX_SCHEMA_DEPTH);
    }

    #[test]
    fn malformed_facets_yield_nothing() {
        for facets in [
            json!({}),
            json!({"schema": 1, "columnLineage": [], "datasetType": {"datasetType": 7}}),
            json!({"schema": {"fields": {}}, "columnLineage": {"fields": []}, "datasetType": {"datasetType": "  "}}),
        ] {
            let facets = map(facets);
            assert!(schema_fields(&facets).is_empty());
            assert!(column_lineage(&facets).is_empty());
            assert!(column_lineage_dataset_inputs(&facets).is_empty());
            assert_eq!(dataset_type(&facets), None);
        }
    }

    #[test]
    fn column_lineage_reads_fields_and_dataset_inputs() {
        let facets = map(json!({"columnLineage": {
            "fields": {
                "b": {"inputFields": [{"namespace": "s3://x", "name": "in", "field": "b1"}, {"name": "in", "field": "b2"}]},
                "a": {"inputFields": [{"namespace": "s3://x", "name": "in", "field": "a1", "transformations": []}]},
                "c": {}
            },
            "dataset": [{"namespace": "s3://x", "name": "in", "field": "key"}]
        }}));
        let input = |field: &str| InputField {
            dataset: DatasetKey { namespace: "s3://x".into(), name: "in".into() },
            field: field.into(),
        };
        assert_eq!(
            column_lineage(&facets),
            [
                ColumnLineage { field: "a".into(), inputs: vec![input("a1")] },
                ColumnLineage { field: "b".into(), inputs: vec![input("b1")] },
                ColumnLineage { field: "c".into(), inputs: vec![] },
            ]
        );
        assert_eq!(column_lineage_dataset_inputs(&facets), [input("key")]);
    }

    #[test]
    fn dataset_type_is_upper_cased() {
        assert_eq!(dataset_type(&map(json!({"datasetType": {"datasetType": " model "}}))), Some("MODEL".into()));
    }
}
