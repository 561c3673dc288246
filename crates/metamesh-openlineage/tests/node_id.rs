//! Marquez node ids, parsed as `marquez.service.models.NodeId` parses them; the cases of
//! Marquez's own `NodeIdTest` first.

use metamesh_openlineage::{DatasetKey, JobKey, NodeId, NodeIdError};

const V: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

fn dataset(namespace: &str, name: &str) -> DatasetKey {
    DatasetKey { namespace: namespace.into(), name: name.into() }
}

fn job(namespace: &str, name: &str) -> JobKey {
    JobKey { namespace: namespace.into(), name: name.into() }
}

/// Parses `id`, checks it writes back unchanged, and returns it.
#[track_caller]
fn parsed(id: &str) -> NodeId {
    let node = NodeId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(node.to_string(), id);
    assert_eq!(id.parse::<NodeId>(), Ok(node.clone()));
    node
}

#[test]
fn marquez_node_id_test_jobs() {
    for (ns, name) in [("my-namespace", "my-job"), ("org://team", "my-job")] {
        assert_eq!(parsed(&format!("job:{ns}:{name}")), NodeId::Job(job(ns, name)));
        let versioned = parsed(&format!("job:{ns}:{name}#{V}"));
        assert_eq!(versioned, NodeId::JobVersion { job: job(ns, name), version: V.into() });
        assert_eq!(versioned.version(), Some(V));
        assert_eq!(versioned.without_version(), NodeId::Job(job(ns, name)));
    }
}

#[test]
fn marquez_node_id_test_datasets() {
    for (ns, name) in [
        ("my-namespace", "my-dataset"),
        ("gs://bucket", "/path/to/data"),
        ("postgresql://hostname:5432/database", "my_table"),
        ("my-namespace", "my_struct<a:bigint,b:bigint,c:string>"),
    ] {
        assert_eq!(parsed(&format!("dataset:{ns}:{name}")), NodeId::Dataset(dataset(ns, name)));
        assert_eq!(
            parsed(&format!("dataset:{ns}:{name}#{V}")),
            NodeId::DatasetVersion { dataset: dataset(ns, name), version: V.into() }
        );
    }
}

#[test]
fn marquez_node_id_test_dataset_fields() {
    for (ns, name, field) in [
        ("my-namespace", "my-dataset", "colA"),
        ("gs://bucket", "/path/to/data", "colA"),
        ("gs://bucket", "/path/to/data", "col_A"),
    ] {
        let node = parsed(&format!("datasetField:{ns}:{name}:{field}"));
        assert_eq!(node, NodeId::DatasetField { dataset: dataset(ns, name), field: field.into() });
        assert_eq!(node.version(), None);
        let node = parsed(&format!("datasetField:{ns}:{name}:{field}#{V}"));
        assert_eq!(
            node,
            NodeId::DatasetFieldVersion { dataset: dataset(ns, name), field: field.into(), version: V.into() }
        );
        assert_eq!(node.without_version(), NodeId::DatasetField { dataset: dataset(ns, name), field: field.into() });
    }
}

#[test]
fn uri_namespaces_keep_their_colons() {
    for (id, ns, name) in [
        ("dataset:s3://bucket:path/to/file.parquet", "s3://bucket", "path/to/file.parquet"),
        ("dataset:postgres://host:5432:db.schema.table", "postgres://host:5432", "db.schema.table"),
        ("dataset:postgres://host:5432/db:public.orders", "postgres://host:5432/db", "public.orders"),
        ("dataset:kafka://broker:9092,broker2:9093:topic", "kafka://broker:9092,broker2:9093", "topic"),
        ("dataset:hdfs://namenode:8020:/warehouse/t", "hdfs://namenode:8020", "/warehouse/t"),
        // Marquez's rule puts the colon after a scheme without `//` between namespace and name.
        ("dataset:bigquery:project.ds.table", "bigquery", "project.ds.table"),
        // The name is the rest of the id, colons and all.
        ("dataset:a:b:c", "a", "b:c"),
        ("dataset:file:/tmp/x:y", "file", "/tmp/x:y"),
    ] {
        assert_eq!(parsed(id), NodeId::Dataset(dataset(ns, name)), "{id}");
    }
    assert_eq!(
        parsed("datasetField:postgres://host:5432:db.t:col:a"),
        NodeId::DatasetField { dataset: dataset("postgres://host:5432", "db.t"), field: "col:a".into() }
    );
    // The field is the rest of the id, even when it starts with a colon.
    assert_eq!(
        parsed("datasetField:ns:t::x"),
        NodeId::DatasetField { dataset: dataset("ns", "t"), field: ":x".into() }
    );
    assert_eq!(parsed("job:airflow://host:8080:dag.task"), NodeId::Job(job("airflow://host:8080", "dag.task")));
    // Without extra separators a namespace may start with a digit, a name with "//".
    assert_eq!(parsed("dataset:1ns:name"), NodeId::Dataset(dataset("1ns", "name")));
    assert_eq!(parsed("dataset:ns://x"), NodeId::Dataset(dataset("ns", "//x")));
}

/// Marquez's rule, even where it is not what the writer meant: a colon followed by a digit
/// never separates, so `ns` + `1a:b` reads as `ns:1a` + `b`.
#[test]
fn colons_before_digits_never_separate() {
    assert_eq!(parsed("dataset:ns:1a:b"), NodeId::Dataset(dataset("ns:1a", "b")));
    assert_eq!(
        NodeId::Dataset(dataset("ns", "1a:b")).to_string().parse::<NodeId>(),
        Ok(NodeId::Dataset(dataset("ns:1a", "b")))
    );
}

#[test]
fn runs() {
    let id = "3f5e83fa-3480-44ff-99c5-ff943904e5e8";
    assert_eq!(parsed(&format!("run:{id}")), NodeId::Run(id.into()));
    assert_eq!(NodeId::parse(&format!("run:{}", id.to_uppercase())), Ok(NodeId::Run(id.into())));
    for bad in
        ["run:x", "run:3f5e83fa348044ff99c5ff943904e5e8", &format!("run:af5e83fa-3480-44ff-99c5-ff943904e5e8#{V}")]
    {
        assert_eq!(NodeId::parse(bad), Err(NodeIdError::Uuid { part: "run id" }), "{bad}");
    }
    // The colon after `run` is followed by a digit, so Marquez's matcher skips it.
    for bad in [format!("run:{id}#{V}"), format!("run:{id}:x")] {
        assert_eq!(NodeId::parse(&bad), Err(NodeIdError::Ambiguous { kind: "run", expected: 2 }), "{bad}");
    }
    assert_eq!(NodeId::parse("run:"), Err(NodeIdError::TooFewParts { kind: "run", expected: 2 }));
}

#[test]
fn refusals() {
    use NodeIdError::*;
    let ambiguous = |kind, expected| Ambiguous { kind, expected };
    for (id, error) in [
        ("", Prefix),
        ("Dataset:ns:name", Prefix),
        ("datasetfield:ns:name:f", Prefix),
        ("dataset", Prefix),
        ("datasets:ns:name", Prefix),
        ("dataset:ns:name\n", Prefix),
        ("job:ns\r:name", Prefix),
        ("dataset:ns:na\u{2028}me", Prefix),
        ("dataset:ns", TooFewParts { kind: "dataset", expected: 3 }),
        ("job:ns:", TooFewParts { kind: "job", expected: 3 }),
        ("datasetField:ns:name", TooFewParts { kind: "datasetField", expected: 4 }),
        // Marquez's plain split would drop the trailing ':' or cut at the '#'.
        ("dataset:ns:name:", ambiguous("dataset", 3)),
        ("dataset:ns:name::", ambiguous("dataset", 3)),
        ("dataset:ns#x", ambiguous("dataset", 3)),
        ("dataset:ns:name#", ambiguous("dataset", 3)),
        // Marquez would read namespace `a`, name `b`.
        ("dataset:1ns:a:b", ambiguous("dataset", 3)),
        ("dataset://ns:a:b", ambiguous("dataset", 3)),
        // Marquez's matcher finds too few separating colons and throws.
        ("dataset:ns:1:2", ambiguous("dataset", 3)),
        ("datasetField:ns:t:1:2", ambiguous("datasetField", 4)),
        ("dataset::name", Empty { part: "namespace" }),
        ("job:ns:#aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Empty { part: "name" }),
        ("datasetField:ns::f", Empty { part: "name" }),
        ("datasetField:ns:t:#aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Empty { part: "field" }),
        ("datasetField:ns:t:", TooFewParts { kind: "datasetField", expected: 4 }),
        ("dataset:ns:name#v1", Uuid { part: "version" }),
        ("dataset:ns:name#aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee#x", Uuid { part: "version" }),
        ("dataset:a#b:c", Version),
    ] {
        assert_eq!(NodeId::parse(id), Err(error), "{id:?}");
    }
}

#[test]
fn errors_read_well() {
    assert_eq!(
        NodeIdError::Prefix.to_string(),
        "node id must start with 'dataset:', 'datasetField:', 'job:' or 'run:' and hold no line break"
    );
    assert_eq!(
        NodeId::parse("dataset:ns").unwrap_err().to_string(),
        "a dataset node id needs 3 parts separated by ':'"
    );
}
