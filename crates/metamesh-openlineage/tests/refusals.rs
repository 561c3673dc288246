//! Each required field missing, of the wrong type or out of bounds is refused on exactly that
//! field.

use metamesh_openlineage::{parse, parse_bytes, EventKind, Value, MAX_DATASETS, MAX_NAME_BYTES};
use serde_json::json;

fn run_event() -> Value {
    json!({
        "eventType": "START",
        "eventTime": "2024-11-26T13:05:25.547948+00:00",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": "01936893-9751-7b3c-8f76-8ac6d0e5f8a3",
            "facets": {"parent": {
                "run": {"runId": "01936893-9751-7a91-a2a0-a51101a3970c"},
                "job": {"namespace": "airflow", "name": "BQ"}
            }}
        },
        "job": {"namespace": "airflow", "name": "BQ.upload", "facets": {}},
        "inputs": [
            {"namespace": "gs://b", "name": "i0"},
            {"namespace": "gs://b", "name": "i1", "facets": {}, "inputFacets": {}},
            {"namespace": "gs://b", "name": "i2"},
            {"namespace": "gs://b", "name": "i3"}
        ],
        "outputs": [{"namespace": "bigquery", "name": "p.d.t", "facets": {}, "outputFacets": {}}]
    })
}

fn dataset_event() -> Value {
    json!({
        "eventTime": "2020-12-28T19:52:00.001+10:00",
        "dataset": {"namespace": "my-dataset-namespace", "name": "my-dataset-name", "facets": {}}
    })
}

fn job_event() -> Value {
    json!({
        "eventTime": "2020-12-28T19:52:00.001+10:00",
        "job": {"namespace": "my-scheduler-namespace", "name": "myjob"},
        "inputs": [{"namespace": "n", "name": "in"}]
    })
}

/// The parent of a dotted path (`inputs.3.namespace`: array indices as numbers) and its last key.
fn parent<'a>(value: &'a mut Value, path: &'a str) -> (&'a mut Value, &'a str) {
    let (parents, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut here = value;
    for key in parents.split('.').filter(|k| !k.is_empty()) {
        here = match key.parse::<usize>() {
            Ok(i) => &mut here[i],
            Err(_) => &mut here[key],
        };
    }
    (here, last)
}

fn without(mut value: Value, path: &str) -> Value {
    let (here, key) = parent(&mut value, path);
    assert!(here.as_object_mut().unwrap().remove(key).is_some(), "{path} was not there");
    value
}

fn with(mut value: Value, path: &str, new: Value) -> Value {
    let (here, key) = parent(&mut value, path);
    match key.parse::<usize>() {
        Ok(i) => here[i] = new,
        Err(_) => here[key] = new,
    }
    value
}

#[track_caller]
fn refused_on(value: &Value, field: &str) -> String {
    match parse(value) {
        Ok(_) => panic!("accepted, expected a refusal on {field}"),
        Err(e) => {
            assert_eq!(e.field, field, "{e}");
            assert!(!e.message.is_empty());
            e.message
        }
    }
}

#[test]
fn the_templates_are_accepted() {
    assert_eq!(parse(&run_event()).unwrap().kind, EventKind::Run);
    assert_eq!(parse(&dataset_event()).unwrap().kind, EventKind::Dataset);
    assert_eq!(parse(&job_event()).unwrap().kind, EventKind::Job);
}

#[test]
fn missing_required_fields() {
    for (path, field) in [
        ("eventTime", "eventTime"),
        ("run.runId", "run.runId"),
        ("job", "job"),
        ("job.namespace", "job.namespace"),
        ("job.name", "job.name"),
        ("inputs.3.namespace", "inputs[3].namespace"),
        ("inputs.0.name", "inputs[0].name"),
        ("outputs.0.namespace", "outputs[0].namespace"),
        ("run.facets.parent.run", "run.facets.parent.run"),
        ("run.facets.parent.run.runId", "run.facets.parent.run.runId"),
        ("run.facets.parent.job", "run.facets.parent.job"),
        ("run.facets.parent.job.namespace", "run.facets.parent.job.namespace"),
        ("run.facets.parent.job.name", "run.facets.parent.job.name"),
    ] {
        assert_eq!(refused_on(&without(run_event(), path), field), "missing", "{path}");
    }
    for (path, field) in
        [("eventTime", "eventTime"), ("dataset.namespace", "dataset.namespace"), ("dataset.name", "dataset.name")]
    {
        assert_eq!(refused_on(&without(dataset_event(), path), field), "missing", "{path}");
    }
    for (path, field) in
        [("eventTime", "eventTime"), ("job.name", "job.name"), ("inputs.0.namespace", "inputs[0].namespace")]
    {
        assert_eq!(refused_on(&without(job_event(), path), field), "missing", "{path}");
    }
    // `null` is missing too.
    refused_on(&with(run_event(), "run.runId", Value::Null), "run.runId");
    refused_on(&with(run_event(), "job", Value::Null), "job");
}

#[test]
fn an_event_of_no_kind_is_refused_on_run() {
    for value in [json!({}), json!({"eventTime": "2020-12-28T19:51:01.641Z", "run": null, "inputs": []})] {
        let message = refused_on(&value, "run");
        assert!(message.starts_with("missing: an event needs run and job"), "{message}");
    }
    // Without `run`, a RunEvent is a JobEvent (its inputs and outputs kept).
    let job_event = parse(&without(run_event(), "run")).unwrap();
    assert_eq!((job_event.kind, job_event.inputs.len()), (EventKind::Job, 4));
}

#[test]
fn wrong_json_types() {
    let cases = [
        ("run", json!("x"), "run"),
        ("run", json!([]), "run"),
        ("run.runId", json!(42), "run.runId"),
        ("run.facets", json!([]), "run.facets"),
        ("run.facets.parent", json!("p"), "run.facets.parent"),
        ("run.facets.parent.run", json!(1), "run.facets.parent.run"),
        ("run.facets.parent.run.runId", json!(true), "run.facets.parent.run.runId"),
        ("run.facets.parent.job.name", json!({}), "run.facets.parent.job.name"),
        ("job", json!(true), "job"),
        ("job.namespace", json!(1), "job.namespace"),
        ("job.name", json!(["a"]), "job.name"),
        ("job.facets", json!("f"), "job.facets"),
        ("eventTime", json!(1_609_185_061_641_i64), "eventTime"),
        ("eventType", json!(1), "eventType"),
        ("producer", json!({}), "producer"),
        ("inputs", json!({}), "inputs"),
        ("outputs", json!("o"), "outputs"),
        ("inputs.1", json!("i"), "inputs[1]"),
        ("inputs.3.namespace", json!(3), "inputs[3].namespace"),
        ("outputs.0.name", json!(null), "outputs[0].name"),
        ("inputs.1.facets", json!([]), "inputs[1].facets"),
        ("inputs.1.inputFacets", json!(1.5), "inputs[1].inputFacets"),
        ("outputs.0.outputFacets", json!("s"), "outputs[0].outputFacets"),
    ];
    for (path, value, field) in cases {
        refused_on(&with(run_event(), path, value), field);
    }
    for (path, value, field) in [
        ("dataset", json!(7), "dataset"),
        ("dataset.namespace", json!(7), "dataset.namespace"),
        ("dataset.name", json!([]), "dataset.name"),
        ("dataset.facets", json!(0), "dataset.facets"),
    ] {
        refused_on(&with(dataset_event(), path, value), field);
    }
    assert_eq!(
        refused_on(&with(job_event(), "job.namespace", json!(1)), "job.namespace"),
        "must be a string, not a number"
    );
}

#[test]
fn bad_values() {
    for id in ["not-a-uuid", "", "3f5e83fa348044ff99c5ff943904e5e8", "{3f5e83fa-3480-44ff-99c5-ff943904e5e8}"] {
        let message = refused_on(&with(run_event(), "run.runId", json!(id)), "run.runId");
        assert!(message.starts_with("must be a UUID"), "{message}");
    }
    refused_on(&with(run_event(), "run.facets.parent.run.runId", json!("x")), "run.facets.parent.run.runId");
    for state in ["complete", "Start", "DONE", ""] {
        let message = refused_on(&with(run_event(), "eventType", json!(state)), "eventType");
        assert!(message.contains("START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"), "{message}");
    }
    for time in ["yesterday", "2020-12-28", "2020-12-28 19:51:01Z", "2020-02-30T00:00:00Z", "{{RUN_START_TIME}}"] {
        refused_on(&with(run_event(), "eventTime", json!(time)), "eventTime");
    }
    for (path, field) in [
        ("job.namespace", "job.namespace"),
        ("job.name", "job.name"),
        ("inputs.2.name", "inputs[2].name"),
        ("outputs.0.namespace", "outputs[0].namespace"),
        ("run.facets.parent.job.namespace", "run.facets.parent.job.namespace"),
    ] {
        assert_eq!(refused_on(&with(run_event(), path, json!("")), field), "must not be empty");
    }
    refused_on(&with(dataset_event(), "dataset.name", json!("")), "dataset.name");
}

#[test]
fn an_event_type_is_only_checked_on_run_events() {
    assert!(parse(&with(job_event(), "eventType", json!("whatever"))).is_ok());
    assert!(parse(&with(dataset_event(), "eventType", json!(5))).is_ok());
}

#[test]
fn names_are_at_most_1024_bytes() {
    let spider = "🕷".repeat(MAX_NAME_BYTES / 4);
    assert_eq!(spider.len(), MAX_NAME_BYTES);
    let event = parse(&with(run_event(), "job.name", json!(spider))).unwrap();
    assert_eq!(event.job.unwrap().key.name, spider);
    let over = format!("{spider}x");
    for (path, field) in [
        ("job.name", "job.name"),
        ("job.namespace", "job.namespace"),
        ("inputs.3.namespace", "inputs[3].namespace"),
        ("outputs.0.name", "outputs[0].name"),
        ("run.facets.parent.job.name", "run.facets.parent.job.name"),
    ] {
        let message = refused_on(&with(run_event(), path, json!(over)), field);
        assert_eq!(message, "at most 1024 bytes, not 1025");
    }
    refused_on(&with(dataset_event(), "dataset.namespace", json!(over)), "dataset.namespace");
}

#[test]
fn at_most_1000_inputs_and_outputs() {
    let datasets =
        |n: usize| Value::Array((0..n).map(|i| json!({"namespace": "n", "name": format!("d{i}")})).collect());
    let event =
        parse(&with(with(run_event(), "inputs", datasets(MAX_DATASETS)), "outputs", datasets(MAX_DATASETS))).unwrap();
    assert_eq!((event.inputs.len(), event.outputs.len()), (MAX_DATASETS, MAX_DATASETS));
    assert_eq!(
        refused_on(&with(run_event(), "inputs", datasets(MAX_DATASETS + 1)), "inputs"),
        "at most 1000 datasets, not 1001"
    );
    refused_on(&with(run_event(), "outputs", datasets(MAX_DATASETS + 1)), "outputs");
    refused_on(&with(job_event(), "outputs", datasets(MAX_DATASETS + 1)), "outputs");
}

#[test]
fn errors_display_as_field_then_message() {
    let error = parse(&without(run_event(), "run.runId")).unwrap_err();
    assert_eq!(error.to_string(), "run.runId: missing");
    let boxed: Box<dyn std::error::Error> = Box::new(error);
    assert_eq!(boxed.to_string(), "run.runId: missing");
}

#[test]
fn the_body_itself() {
    for body in [&b"{"[..], b"", b"not json", b"{\"run\": }"] {
        let error = parse_bytes(body).unwrap_err();
        assert_eq!(error.field, "body");
        assert!(error.message.starts_with("not valid JSON"), "{error}");
    }
    for body in [&b"[]"[..], b"[{}]", b"null", b"\"event\"", b"42"] {
        let error = parse_bytes(body).unwrap_err();
        assert_eq!(error.field, "body", "{error}");
        assert!(error.message.starts_with("must be a JSON object"), "{error}");
    }
    assert_eq!(parse_bytes(&serde_json::to_vec(&run_event()).unwrap()).unwrap().kind, EventKind::Run);
}

#[test]
fn leniency() {
    // No schemaURL, no producer, no eventType, unknown top-level fields and facets.
    let mut event = run_event();
    let top = event.as_object_mut().unwrap();
    top.remove("schemaURL");
    top.remove("producer");
    top.remove("eventType");
    top.insert("somethingNew".into(), json!({"x": [1, 2]}));
    let event = with(event, "job.facets", json!({"myFacet": {"a": 1}, "description": "a facet that is a string"}));
    let event = parse(&event).unwrap();
    assert_eq!((event.event_type, event.producer.as_str()), (None, ""));
    let facets = event.job.unwrap().facets;
    assert_eq!(facets["myFacet"]["a"], 1);
    assert_eq!(facets["description"], "a facet that is a string");
}

#[test]
fn refused_values_are_quoted_short() {
    let long = "x".repeat(100_000);
    let message = refused_on(&with(run_event(), "run.runId", json!(long)), "run.runId");
    assert!(message.len() < 200, "{}", message.len());
}
