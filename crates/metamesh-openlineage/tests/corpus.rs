//! Every event of `tests/corpus/openlineage` is accepted, with the content it holds.
//!
//! The corpus lives outside the repository (`/work/shared`, beside the work tree); a missing
//! corpus fails these tests instead of skipping them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use metamesh_openlineage::{
    column_lineage, column_lineage_dataset_inputs, parse, schema_fields, DatasetKey, Event, EventKind, InputField,
    JobKey, ParentRef, RunState, Value,
};

/// The sub-directories of the corpus, each of which must hold events.
const SOURCES: [&str; 6] =
    ["compat-airflow", "compat-cll", "compat-spark-bigquery", "marquez", "marquez-apples", "spec"];

/// The template's placeholders, filled as Marquez's `docker/seed.sh` would.
const TEMPLATE: &str = "marquez/metadata.template.json";

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/openlineage");
    assert!(dir.is_dir(), "the OpenLineage corpus is missing at {}", dir.display());
    dir
}

/// Every file under the corpus, by path relative to it (`marquez/event_full.json`).
fn corpus_files() -> BTreeMap<String, Value> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Value>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let name = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let mut text = std::fs::read_to_string(&path).unwrap();
            if name == TEMPLATE {
                text = fill_template(&text);
            }
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            out.insert(name, value);
        }
    }
    let root = corpus_dir();
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn fill_template(text: &str) -> String {
    let mut text = text.replace("{{RUN_START_TIME}}", "2024-05-01T10:00:00.000Z");
    for minutes in 1..=60 {
        text = text.replace(
            &format!("{{{{RUN_END_TIME_AFTER_{minutes}_MINUTES}}}}"),
            &format!("2024-05-01T{:02}:{:02}:00.000Z", 10 + minutes / 60, minutes % 60),
        );
    }
    assert!(!text.contains("{{"), "unfilled placeholder in the template");
    text
}

/// The events of one corpus file (the template is an array of them).
fn events_of(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    }
}

fn event(name: &str) -> Event {
    let files = corpus_files();
    let value = files.get(name).unwrap_or_else(|| panic!("{name} not in the corpus"));
    parse(value).unwrap()
}

fn job(namespace: &str, name: &str) -> JobKey {
    JobKey { namespace: namespace.into(), name: name.into() }
}

fn dataset(namespace: &str, name: &str) -> DatasetKey {
    DatasetKey { namespace: namespace.into(), name: name.into() }
}

#[test]
fn every_corpus_event_is_accepted() {
    let files = corpus_files();
    for source in SOURCES {
        assert!(files.keys().any(|f| f.starts_with(&format!("{source}/"))), "no file under {source}/");
    }
    assert!(files.len() >= 81, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, value) in &files {
        for (i, value) in events_of(value).into_iter().enumerate() {
            count += 1;
            if let Err(e) = parse(value) {
                failures.push(format!("{name}[{i}]: {e}"));
            }
            // parse_bytes agrees with parse on the same document.
            let bytes = serde_json::to_vec(value).unwrap();
            assert_eq!(metamesh_openlineage::parse_bytes(&bytes).ok(), parse(value).ok(), "{name}[{i}]");
        }
    }
    assert!(failures.is_empty(), "refused corpus events:\n{}", failures.join("\n"));
    assert_eq!(count, files.len() - 1 + 26, "the template holds 26 events");
}

/// The template unfilled is the one refusal, on purpose: `{{RUN_START_TIME}}` is no time.
#[test]
fn the_unfilled_template_is_refused_on_event_time() {
    let text = std::fs::read_to_string(corpus_dir().join(TEMPLATE)).unwrap();
    let Value::Array(events) = serde_json::from_str::<Value>(&text).unwrap() else { panic!("not an array") };
    for event in &events {
        assert_eq!(parse(event).unwrap_err().field, "eventTime");
    }
}

/// Marquez picks the kind from the `schemaURL` suffix; the fields present say the same.
#[test]
fn kinds_agree_with_marquez_schema_url_dispatch() {
    let mut seen = BTreeSet::new();
    for (name, value) in corpus_files() {
        for value in events_of(&value) {
            let Some(url) = value.get("schemaURL").and_then(Value::as_str) else { continue };
            let marquez = match &url[url.rfind('/').unwrap()..] {
                "/DatasetEvent" => EventKind::Dataset,
                "/JobEvent" => EventKind::Job,
                _ => EventKind::Run,
            };
            let kind = parse(value).unwrap().kind;
            assert_eq!(kind, marquez, "{name}");
            seen.insert(kind.as_str());
        }
    }
    assert_eq!(seen, BTreeSet::from(["RunEvent", "DatasetEvent", "JobEvent"]));
}

#[test]
fn marquez_full_event() {
    let e = event("marquez/event_full.json");
    assert_eq!(e.kind, EventKind::Run);
    assert_eq!(e.event_type, Some(RunState::Complete));
    assert!(e.event_type.unwrap().is_terminal());
    assert_eq!(e.event_time_ms, 1_609_185_061_641);
    assert_eq!(e.producer, "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client");
    let run = e.run.unwrap();
    assert_eq!(run.run_id, "ea041791-68bc-4ae1-bd89-4c8106a157e4");
    assert_eq!(
        run.parent,
        Some(ParentRef {
            run_id: "3f5e83fa-3480-44ff-99c5-ff943904e5e8".into(),
            job: job("my-scheduler-namespace", "myjob.mytask"),
        })
    );
    assert!(run.facets.contains_key("nominalTime") && run.facets.contains_key("additionalProp1"));
    let job_ref = e.job.unwrap();
    assert_eq!(job_ref.key, job("my-scheduler-namespace", "myjob.mytask"));
    assert_eq!(job_ref.facets["sql"]["query"].as_str().map(|q| q.starts_with("SELECT")), Some(true));
    assert_eq!((e.inputs.len(), e.outputs.len()), (1, 1));
    let input = &e.inputs[0];
    assert_eq!(input.key, dataset("my-datasource-namespace", "instance.schema.table"));
    let fields = schema_fields(&input.facets);
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (fields[0].name.as_str(), fields[0].r#type.as_deref(), fields[0].description.as_deref()),
        ("column1", Some("VARCHAR"), Some("string"))
    );
    let input_facets: BTreeSet<_> = input.input_facets.keys().map(String::as_str).collect();
    assert_eq!(input_facets, BTreeSet::from(["dataQualityAssertions", "dataQualityMetrics"]));
    assert!(e.outputs[0].output_facets.contains_key("outputStatistics"));
    assert!(e.outputs[0].input_facets.is_empty());
    assert_eq!(e.dataset, None);
}

#[test]
fn marquez_required_only_events_and_their_times() {
    let only = event("marquez/event_required_only.json");
    assert_eq!((only.kind, only.event_type), (EventKind::Run, None));
    assert_eq!(only.job.unwrap().key, job("my-namespace", "myjob"));
    assert!(only.inputs.is_empty() && only.outputs.is_empty());
    assert_eq!(only.event_time_ms, 1_609_185_061_641);
    // "2020-12-28T19:51:01.641499Z" and the same without a zone: both UTC, cut to the ms.
    assert_eq!(event("marquez/event_required_nanoseconds.json").event_time_ms, 1_609_185_061_641);
    assert_eq!(event("marquez/event_required_no_timezone.json").event_time_ms, 1_609_185_061_641);
    // "2020-12-28T19:52:00.001+10:00"
    let simple = event("marquez/event_simple.json");
    assert_eq!(simple.event_time_ms, 1_609_149_120_001);
    assert_eq!((simple.inputs.len(), simple.outputs.len()), (2, 1));
    assert_eq!(simple.outputs[0].key, dataset("my-datasource-namespace", "instance.schema.output-1"));
    assert_eq!(event("marquez/event_without_schema_url.json").outputs, simple.outputs);
}

#[test]
fn marquez_unicode_and_uri_namespaces() {
    assert_eq!(event("marquez/event_unicode.json").job.unwrap().key.name, "myjob.buggy_task🕷");
    let e = event("marquez/event_namespace_naming.json");
    assert_eq!(e.inputs[0].key, dataset("s3://blob-source", "instance.schema.table"));
    assert_eq!(e.outputs[0].key, dataset("s3://blob-sink", "instance.schema.table"));
    let listener = event("marquez/listener_1.json");
    assert_eq!(listener.event_type, Some(RunState::Running));
    assert_eq!(listener.inputs[1].key, dataset("file.localhost", "file://localhost/in_file2.txt"));
}

#[test]
fn marquez_dataset_and_job_events() {
    let d = event("marquez/event_dataset_event.json");
    assert_eq!(d.kind, EventKind::Dataset);
    assert_eq!((d.run.is_none(), d.job.is_none(), d.event_type), (true, true, None));
    let ds = d.dataset.unwrap();
    assert_eq!(ds.key, dataset("my-dataset-namespace", "my-dataset-name"));
    let fields = schema_fields(&ds.facets);
    assert_eq!(fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["col_a"]);
    assert_eq!(fields[0].r#type.as_deref(), Some("VARCHAR"));

    // A JobEvent's eventType ("COMPLETE" here) is not part of the shape: ignored.
    let j = event("marquez/event_job_event.json");
    assert_eq!((j.kind, j.event_type, j.run.is_none()), (EventKind::Job, None, true));
    assert_eq!(j.job.unwrap().key, job("my-scheduler-namespace", "myjob"));
    assert_eq!(j.inputs[0].facets["documentation"]["description"], "input documentation");
    assert_eq!(j.outputs[0].key.name, "instance.schema.output-1");
}

#[test]
fn marquez_large_event_keeps_unknown_facets() {
    let e = event("marquez/event_large.json");
    assert_eq!(e.outputs[0].facets.len(), 11);
    let run = e.run.unwrap();
    assert_eq!(run.parent.unwrap().run_id, "3f5e83fa-3480-44ff-99c5-ff943904e5e8");
    // The parent facet is kept as sent too, with the Spark plan nested inside it.
    assert!(run.facets["parent"].get("spark.logicalPlan").is_some());
}

#[test]
fn marquez_seed_template_events() {
    let files = corpus_files();
    let events: Vec<Event> = events_of(&files[TEMPLATE]).into_iter().map(|v| parse(v).unwrap()).collect();
    assert_eq!(events.len(), 26);
    let jobs: BTreeSet<_> = events.iter().map(|e| e.job.as_ref().unwrap().key.clone()).collect();
    assert_eq!(jobs.len(), 13);
    assert!(jobs.iter().all(|j| j.namespace == "food_delivery"));
    let mut states: BTreeMap<String, Vec<RunState>> = BTreeMap::new();
    for e in &events {
        states.entry(e.run.as_ref().unwrap().run_id.clone()).or_default().push(e.event_type.unwrap());
    }
    assert_eq!(states.len(), 13);
    assert!(states.values().all(|s| s == &[RunState::Start, RunState::Complete]));
    let delivery = events.iter().find(|e| e.job.as_ref().unwrap().key.name == "etl_delivery_7_days").unwrap();
    assert_eq!((delivery.inputs.len(), delivery.outputs.len()), (5, 1));
    // RUN_END_TIME_AFTER_8_MINUTES of etl_menus, filled as 10:08.
    assert_eq!(events[1].event_time_ms - events[0].event_time_ms, 8 * 60 * 1000);
}

#[test]
fn marquez_apples_story() {
    let e = event("marquez-apples/8_apple_filling.json");
    assert_eq!(e.job.unwrap().key, job("grandmas.kitchen", "prepare_apple_filling"));
    let inputs: Vec<_> = e.inputs.iter().map(|d| d.key.clone()).collect();
    assert_eq!(
        inputs,
        [dataset("grandmas.kitchen", "apples"), dataset("grandmas.kitchen", "cinnamon"), dataset("cupboard", "sugar")]
    );
    assert_eq!(e.outputs[0].key, dataset("grandmas.kitchen", "apple.filling"));
    assert_eq!(e.event_time_ms, 1_602_738_000_000); // 2020-10-15T15:00:00.000+10:00
}

#[test]
fn spec_examples() {
    // A RunEvent that also carries `dataset`: the run decides, the dataset is ignored.
    let full = event("spec/example_full_event.json");
    assert_eq!((full.kind, full.dataset.is_none()), (EventKind::Run, true));
    assert_eq!(full.run.unwrap().run_id, "f69a6e9b-9bac-3c9a-9cf6-eacb70ecc9a9");
    assert_eq!(full.job.unwrap().facets["sql"]["query"], "SELECT 1");

    let run = event("spec/serde_example_run_event.json");
    assert_eq!((run.kind, run.event_type), (EventKind::Run, Some(RunState::Start)));
    assert_eq!(run.event_time_ms, 1_635_936_832_427); // 2021-11-03T10:53:52.427343, no zone

    let job_event = event("spec/serde_example_job_event.json");
    assert_eq!(job_event.kind, EventKind::Job);
    assert_eq!(schema_fields(&job_event.outputs[0].facets)[0].name, "a");

    let ds = event("spec/serde_example_dataset_event.json");
    assert_eq!(ds.kind, EventKind::Dataset);
    let names: Vec<_> = schema_fields(&ds.dataset.unwrap().facets).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn airflow_parent_runs_and_column_lineage() {
    let e = event("compat-airflow/line_03.json");
    assert_eq!(e.event_type, Some(RunState::Complete));
    assert_eq!(e.job.unwrap().key, job("airflow", "BQ.upload"));
    let run = e.run.unwrap();
    assert_eq!(run.run_id, "01936893-9751-7b3c-8f76-8ac6d0e5f8a3");
    assert_eq!(
        run.parent,
        Some(ParentRef { run_id: "01936893-9751-7a91-a2a0-a51101a3970c".into(), job: job("airflow", "BQ") })
    );
    let inputs: Vec<_> = e.inputs.iter().map(|d| d.key.clone()).collect();
    assert_eq!(inputs, [dataset("gs://mock-bucket", "copied.csv"), dataset("gs://mock-bucket", "test.csv")]);
    let output = &e.outputs[0];
    assert_eq!(output.key, dataset("bigquery", "mock-project.test.upload"));
    // Schema fields with an empty nested `fields` list.
    let names: Vec<_> = schema_fields(&output.facets).into_iter().map(|f| (f.name, f.r#type.unwrap())).collect();
    assert_eq!(
        names,
        [("a", "INTEGER"), ("b", "INTEGER"), ("c", "INTEGER"), ("d", "INTEGER")].map(|(n, t)| (n.into(), t.into()))
    );
    let lineage = column_lineage(&output.facets);
    assert_eq!(lineage.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    assert_eq!(
        lineage[2].inputs,
        [
            InputField { dataset: dataset("gs://mock-bucket", "copied.csv"), field: "c".into() },
            InputField { dataset: dataset("gs://mock-bucket", "test.csv"), field: "c".into() },
        ]
    );
    // Facet 1-2-0 with an empty dataset-wide list.
    assert!(output.facets["columnLineage"]["dataset"].is_array());
    assert!(column_lineage_dataset_inputs(&output.facets).is_empty());

    // The whole DAG run: every task run's parent is the DAG's run.
    let files = corpus_files();
    let runs: Vec<Event> =
        (13..=32).map(|i| parse(&files[&format!("compat-airflow/line_{i:02}.json")]).unwrap()).collect();
    let root = "01936898-5bd1-70bf-9ca2-4953116e45e1";
    for e in &runs {
        let run = e.run.as_ref().unwrap();
        match &run.parent {
            None => assert_eq!(run.run_id, root),
            Some(p) => assert_eq!((p.run_id.as_str(), &p.job), (root, &job("airflow", "gcs_hook"))),
        }
    }
    assert_eq!(runs.iter().filter(|e| e.event_type == Some(RunState::Start)).count(), 10);
}

#[test]
fn spark_column_level_lineage() {
    let e = event("compat-cll/5.json");
    assert_eq!(e.event_type, Some(RunState::Start));
    assert_eq!(
        e.job.unwrap().key.name,
        "open_lineage_integration_create_table.execute_create_hive_table_as_select_command.default_tbl1"
    );
    assert_eq!(e.run.unwrap().parent.unwrap().run_id, "019127de-fd25-7707-bfa4-3ec02693a531");
    assert_eq!(e.inputs.len(), 2);
    let output = &e.outputs[0];
    assert_eq!(output.key, dataset("file", "/tmp/cll_test/tbl1"));
    let names: Vec<_> = schema_fields(&output.facets).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["ident", "trans", "agg"]);
    let lineage = column_lineage(&output.facets);
    assert_eq!(lineage.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["agg", "ident", "trans"]);
    let source =
        |n: &str, f: &str| InputField { dataset: dataset("file", &format!("/tmp/cll_test/{n}")), field: f.into() };
    assert_eq!(
        lineage[0].inputs,
        [
            source("cll_source1", "a"),
            source("cll_source1", "b"),
            source("cll_source2", "c"),
            source("cll_source2", "a")
        ]
    );
    assert_eq!(lineage[1].inputs.len(), 3);
    // A RUNNING event of the same run reports output statistics.
    let running = event("compat-cll/7.json");
    assert_eq!(running.event_type, Some(RunState::Running));
    assert!(running.outputs[0].output_facets.contains_key("outputStatistics"));
}

#[test]
fn spark_on_bigquery() {
    let e = event("compat-spark-bigquery/1729097631761.json");
    assert_eq!(e.event_type, Some(RunState::Complete));
    assert_eq!(e.job.unwrap().key, job("default", "shakespeare_on_spark.adaptive_spark_plan.outputs_1729097570970"));
    assert_eq!(e.event_time_ms, 1_729_097_631_761);
    let input = &e.inputs[0];
    assert_eq!(input.key, dataset("bigquery", "bigquery-public-data.samples.shakespeare"));
    let fields = schema_fields(&input.facets);
    assert_eq!(fields[0].name, "word");
    assert_eq!(fields[1].r#type.as_deref(), Some("long"));
    let lineage = column_lineage(&e.outputs[0].facets);
    let outputs: Vec<_> = lineage.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(outputs, ["sum(word_count)", "word"]);
    assert_eq!(lineage[1].inputs[1].field, "word");
    assert_eq!(e.outputs[0].output_facets["outputStatistics"]["rowCount"], 1);
}
