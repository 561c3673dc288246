//! OpenLineage events in the state machine (`Command::OpenLineage`): deterministic across
//! replicas, stored once per event, run states that never go back in time, job-level lineage that
//! follows the latest terminal run, dataset versions made by completed runs, cross-tenant inputs
//! referenced through the outbox, refusals that write nothing, and one audit record per job.

mod common;

use common::*;
use metamesh_core::command::ForeignDataset;
use metamesh_core::{AsOf, Command, CommandError, Direction, Edge, EdgeKind, Outcome, Proposal};
use metamesh_store::openlineage::EventQuery;
use serde_json::{json, Value};

/// The job namespace of the events (the tenant is `acme`, as the fixture creates it).
const NS: &str = "sched";
/// The dataset namespace of the events.
const DB: &str = "postgres://db:5432";

fn run_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// An event time, `minute` minutes after 10:00 on 2024-05-01 (UTC).
fn at(minute: u32) -> String {
    format!("2024-05-01T10:{minute:02}:00Z")
}

/// `at(minute)` in milliseconds.
fn at_ms(minute: u32) -> i64 {
    1_714_557_600_000 + i64::from(minute) * 60_000
}

fn dataset(name: &str) -> Value {
    json!({"namespace": DB, "name": name})
}

/// A RunEvent of job `NS`/`job`.
fn run_event(kind: &str, minute: u32, run: u32, job: &str, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventType": kind,
        "eventTime": at(minute),
        "producer": "https://example.com/t95",
        "run": {"runId": run_id(run)},
        "job": {"namespace": NS, "name": job},
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn ol(events: Vec<Value>) -> Command {
    Command::OpenLineage { tenant: tenant("acme"), events: texts(&events), foreign: Vec::new() }
}

/// Events as the command carries them: JSON text.
fn texts(events: &[Value]) -> Vec<String> {
    events.iter().map(Value::to_string).collect()
}

fn job_urn(job: &str) -> String {
    format!("mm://acme/job/ol:{NS};{job}")
}

fn run_urn(run: u32) -> String {
    format!("mm://acme/run/ol:{}", run_id(run))
}

fn dataset_urn(name: &str) -> String {
    metamesh_core::openlineage::dataset_urn(&tenant("acme"), metamesh_core::Kind::Dataset, DB, name)
        .unwrap()
        .to_string()
}

async fn stored(s: &mut TestStore, cmd: Command) -> Vec<bool> {
    match s.ok(cmd).await {
        Outcome::OpenLineage { stored } => stored,
        other => panic!("expected an OpenLineage outcome, got {other:?}"),
    }
}

/// An edge as `(from, kind, to, from_column, to_column)`, entity URNs without versions.
type Shape = (String, EdgeKind, String, Option<String>, Option<String>);

/// The [`Shape`]s of edges, sorted.
fn shape(edges: &[Edge]) -> Vec<Shape> {
    let mut out: Vec<_> = edges
        .iter()
        .map(|e| {
            (e.from.entity.to_string(), e.kind, e.to.entity.to_string(), e.from_column.clone(), e.to_column.clone())
        })
        .collect();
    out.sort();
    out
}

/// Every live edge around `urn`, as [`shape`]s; the in-memory graph and SQLite must agree.
async fn edges_around(s: &TestStore, urn: &str) -> Vec<Shape> {
    let live = s.edges_of(&[eu(urn)], Direction::Both, &[], None).await.unwrap();
    let sql = s.edges_of_sql(&[eu(urn)], Direction::Both, &[], None).await.unwrap();
    assert_eq!(shape(&live), shape(&sql), "graph index and SQLite disagree around {urn}");
    shape(&live)
}

fn job_edge(from: &str, kind: EdgeKind, to: &str) -> Shape {
    (from.to_owned(), kind, to.to_owned(), None, None)
}

fn ol_props(v: &metamesh_core::EntityVersion) -> &Value {
    &v.properties["openlineage"]
}

async fn stored_events(s: &TestStore, tenant_name: &str) -> u64 {
    let q = EventQuery { tenant: tenant_name.into(), limit: 1000, ..Default::default() };
    s.openlineage_events(&q).await.unwrap().1
}

/// The current version of each of `urns`.
async fn versions(s: &TestStore, urns: &[String]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for u in urns {
        out.push((u.clone(), s.current(u).await.version));
    }
    out
}

/// How many versions `urn` has.
async fn count(s: &TestStore, urn: &str) -> usize {
    s.versions(&eu(urn), 0, 100).await.unwrap().len()
}

/// The export without bookkeeping that every apply writes (`revisions`, `changes`).
async fn state_without_bookkeeping(s: &TestStore) -> String {
    let all = s.export().await.unwrap();
    all.lines()
        .filter(|l| !l.starts_with("revisions\t") && !l.starts_with("changes\t"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A log that covers every mapping: a run in two events, a late event, a failed run, schemas,
/// a model, column lineage, a foreign input, a re-sent event and a refused command.
fn log() -> Vec<Command> {
    let schema = json!({"schema": {"fields": [{"name": "total", "type": "DOUBLE"}]},
                        "columnLineage": {"fields": {"total": {"inputFields": [
                            {"namespace": DB, "name": "orders", "field": "amount"}]}}}});
    let mut features = dataset("features");
    features["facets"] = schema;
    let mut model = dataset("scorer");
    model["facets"] = json!({"datasetType": {"datasetType": "MODEL"}});
    let start = run_event("START", 1, 1, "build", vec![dataset("orders")], vec![]);
    let mut foreign = ol(vec![run_event(
        "COMPLETE",
        9,
        3,
        "join",
        vec![json!({"namespace": "growth", "name": "raw.signups"})],
        vec![dataset("joined")],
    )]);
    if let Command::OpenLineage { foreign: f, .. } = &mut foreign {
        f.push(ForeignDataset { namespace: "growth".into(), name: "raw.signups".into(), tenant: tenant("other") });
    }
    vec![
        ol(vec![start.clone()]),
        ol(vec![run_event("COMPLETE", 3, 1, "build", vec![dataset("orders")], vec![features])]),
        ol(vec![start]),
        ol(vec![run_event("RUNNING", 2, 1, "build", vec![], vec![])]),
        ol(vec![
            run_event("START", 5, 2, "train", vec![dataset("features")], vec![]),
            run_event("FAIL", 6, 2, "train", vec![dataset("features")], vec![model]),
        ]),
        foreign,
        ol(vec![
            run_event("START", 10, 4, "build", vec![], vec![]),
            json!({"eventType": "START", "eventTime": at(10), "run": {"runId": run_id(5)}, "job": {"name": "x"}}),
        ]),
    ]
}

#[tokio::test]
async fn replicas_applying_the_same_events_hold_the_same_state() {
    let (mut one, mut two) = (TestStore::with_tenant().await, TestStore::with_tenant().await);
    for store in [&mut one, &mut two] {
        for command in log() {
            let _ = store.apply(command).await;
        }
    }
    let dump = one.export().await.unwrap();
    assert!(dump.lines().filter(|l| l.starts_with("ol_events\t")).count() >= 6, "the dump covers ol_events:\n{dump}");
    assert!(dump.contains("ol:sched;build"), "{dump}");
    assert_eq!(dump, two.export().await.unwrap());
    assert_eq!(one.digest().await.unwrap(), two.digest().await.unwrap());

    // The same log cut into one apply batch gives the same state too.
    let three = TestStore::with_tenant().await;
    let mut now = three.now_ms;
    let entries: Vec<(u64, Proposal)> = log()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let p = Proposal::new(c, now, PRINCIPAL);
            now += three.tick_ms;
            (i as u64 + 2, p)
        })
        .collect();
    three.store().apply_batch(entries, None).await.unwrap();
    assert_eq!(three.digest().await.unwrap(), one.digest().await.unwrap());
}

#[tokio::test]
async fn a_resent_event_is_stored_once_and_changes_nothing() {
    let mut s = TestStore::with_tenant().await;
    let events = vec![
        run_event("START", 1, 1, "build", vec![dataset("orders")], vec![dataset("features")]),
        run_event("COMPLETE", 2, 1, "build", vec![dataset("orders")], vec![dataset("features")]),
    ];
    assert_eq!(stored(&mut s, ol(events.clone())).await, [true, true]);
    let before = state_without_bookkeeping(&s).await;
    let urns = [job_urn("build"), run_urn(1), dataset_urn("orders"), dataset_urn("features")];
    let versions_before = versions(&s, &urns).await;
    let edges_before = edges_around(&s, &job_urn("build")).await;
    assert_eq!(edges_before.len(), 2, "{edges_before:?}");

    // Each event alone, and both again together: nothing new.
    assert_eq!(stored(&mut s, ol(vec![events[1].clone()])).await, [false]);
    assert_eq!(stored(&mut s, ol(events.clone())).await, [false, false]);
    assert_eq!(state_without_bookkeeping(&s).await, before, "a re-sent event changed the state");
    assert_eq!(versions(&s, &urns).await, versions_before);
    assert_eq!(edges_around(&s, &job_urn("build")).await, edges_before);
    assert_eq!(stored_events(&s, "acme").await, 2);

    // A new event beside a known one is stored alone.
    let other = run_event("RUNNING", 3, 9, "other", vec![], vec![]);
    assert_eq!(stored(&mut s, ol(vec![events[0].clone(), other])).await, [false, true]);
    assert_eq!(stored_events(&s, "acme").await, 3);
}

#[tokio::test]
async fn run_states_follow_the_events_and_never_go_back() {
    let mut s = TestStore::with_tenant().await;
    let mut start = run_event("START", 1, 1, "build", vec![], vec![]);
    start["run"]["facets"] = json!({"parent": {
        "run": {"runId": run_id(100)},
        "job": {"namespace": "airflow", "name": "dag"},
    }, "nominalTime": {"nominalStartTime": at(0)}});
    stored(&mut s, ol(vec![start])).await;
    let run = s.current(&run_urn(1)).await;
    assert_eq!(run.status.as_deref(), Some("RUNNING"));
    assert_eq!(ol_props(&run)["state"], "RUNNING");
    assert_eq!(ol_props(&run)["startedAt"], at_ms(1));
    assert_eq!(ol_props(&run)["parent"], json!({"runId": run_id(100), "job": {"namespace": "airflow", "name": "dag"}}));
    assert!(run.tags.contains(&"openlineage".to_owned()), "{:?}", run.tags);
    let job = s.current(&job_urn("build")).await;
    assert_eq!(job.status.as_deref(), Some("RUNNING"));
    assert_eq!(ol_props(&job)["latestRun"]["id"], run_id(1));

    // COMPLETE, without the parent facet: the parent stays, as do the other facets.
    stored(&mut s, ol(vec![run_event("COMPLETE", 4, 1, "build", vec![], vec![])])).await;
    let run = s.current(&run_urn(1)).await;
    assert_eq!(run.status.as_deref(), Some("COMPLETED"));
    assert_eq!(ol_props(&run)["state"], "COMPLETED");
    assert_eq!(
        (ol_props(&run)["startedAt"].clone(), ol_props(&run)["endedAt"].clone()),
        (json!(at_ms(1)), json!(at_ms(4)))
    );
    assert_eq!(ol_props(&run)["parent"]["runId"], run_id(100));
    assert_eq!(ol_props(&run)["facets"]["parent"]["job"]["name"], "dag");
    assert_eq!(ol_props(&run)["facets"]["nominalTime"]["nominalStartTime"], at(0));
    let job = s.current(&job_urn("build")).await;
    assert_eq!(job.status.as_deref(), Some("COMPLETED"));
    assert_eq!(ol_props(&job)["latestRun"]["state"], "COMPLETED");

    // A RUNNING event older than the COMPLETE arrives late: the run stays completed.
    let version = run.version;
    assert_eq!(stored(&mut s, ol(vec![run_event("RUNNING", 2, 1, "build", vec![], vec![])])).await, [true]);
    let run = s.current(&run_urn(1)).await;
    assert_eq!(run.status.as_deref(), Some("COMPLETED"));
    assert_eq!(ol_props(&run)["state"], "COMPLETED");
    assert_eq!(ol_props(&run)["transitionedAt"], at_ms(4));
    assert_eq!(run.version, version, "a stale event wrote a new version of the run");
    assert_eq!(s.current(&job_urn("build")).await.status.as_deref(), Some("COMPLETED"));

    // Terminal events arriving before the start: the state is the terminal one.
    stored(
        &mut s,
        ol(vec![run_event("FAIL", 8, 2, "build", vec![], vec![]), run_event("START", 7, 2, "build", vec![], vec![])]),
    )
    .await;
    let failed = s.current(&run_urn(2)).await;
    assert_eq!((failed.status.as_deref(), ol_props(&failed)["state"].as_str()), (Some("FAILED"), Some("FAILED")));
    assert_eq!(ol_props(&failed)["startedAt"], at_ms(7));
    assert_eq!(ol_props(&failed)["endedAt"], at_ms(8));
    // The job's latest run is the newest one.
    let job = s.current(&job_urn("build")).await;
    assert_eq!(ol_props(&job)["latestRun"]["id"], run_id(2));
    assert_eq!(job.status.as_deref(), Some("FAILED"));

    stored(
        &mut s,
        ol(vec![
            run_event("START", 10, 3, "build", vec![], vec![]),
            run_event("ABORT", 11, 3, "build", vec![], vec![]),
        ]),
    )
    .await;
    let aborted = s.current(&run_urn(3)).await;
    assert_eq!((aborted.status.as_deref(), ol_props(&aborted)["state"].as_str()), (Some("ABORTED"), Some("ABORTED")));
    assert_eq!(s.current(&job_urn("build")).await.status.as_deref(), Some("ABORTED"));
    // An older run's late event does not take over the job's latest run.
    stored(&mut s, ol(vec![run_event("OTHER", 9, 1, "build", vec![], vec![])])).await;
    assert_eq!(ol_props(&s.current(&job_urn("build")).await)["latestRun"]["id"], run_id(3));
}

#[tokio::test]
async fn job_edges_follow_the_latest_terminal_run() {
    let mut s = TestStore::with_tenant().await;
    let job = job_urn("build");
    // A started run does not change the job's lineage yet.
    stored(&mut s, ol(vec![run_event("START", 1, 1, "build", vec![dataset("a")], vec![dataset("out")])])).await;
    assert_eq!(edges_around(&s, &job).await, []);
    assert!(s.get_entity(&vu(&dataset_urn("a")), None).await.unwrap().is_some(), "an input is created");

    stored(&mut s, ol(vec![run_event("COMPLETE", 2, 1, "build", vec![dataset("a")], vec![dataset("out")])])).await;
    assert_eq!(
        edges_around(&s, &job).await,
        [
            job_edge(&dataset_urn("a"), EdgeKind::Consumed, &job),
            job_edge(&job, EdgeKind::Produced, &dataset_urn("out")),
        ]
    );
    let first_run = s.rev;
    let up = s.edges_of(&[eu(&dataset_urn("out"))], Direction::Upstream, &[EdgeKind::Produced], None).await.unwrap();
    assert_eq!(shape(&up), [job_edge(&job, EdgeKind::Produced, &dataset_urn("out"))]);

    // The next run reads `b` instead of `a`: the job's edge from `a` goes, one from `b` comes.
    stored(
        &mut s,
        ol(vec![
            run_event("START", 5, 2, "build", vec![dataset("b")], vec![dataset("out")]),
            run_event("COMPLETE", 6, 2, "build", vec![dataset("b")], vec![dataset("out")]),
        ]),
    )
    .await;
    assert_eq!(
        edges_around(&s, &job).await,
        [
            job_edge(&dataset_urn("b"), EdgeKind::Consumed, &job),
            job_edge(&job, EdgeKind::Produced, &dataset_urn("out")),
        ]
    );
    assert_eq!(edges_around(&s, &dataset_urn("a")).await, [], "the dropped input keeps no edge");
    let inputs = ol_props(&s.current(&job).await)["inputs"].clone();
    assert_eq!(inputs, json!([{"namespace": DB, "name": "b", "urn": dataset_urn("b")}]));
    // The history still knows: as of the first run, `a` fed the job.
    let then = s.edges_of(&[eu(&job)], Direction::Upstream, &[], Some(AsOf::Revision(first_run))).await.unwrap();
    assert_eq!(shape(&then), [job_edge(&dataset_urn("a"), EdgeKind::Consumed, &job)]);

    // A failed run with no outputs also ends the job's outputs.
    stored(&mut s, ol(vec![run_event("FAIL", 8, 3, "build", vec![dataset("b")], vec![])])).await;
    assert_eq!(edges_around(&s, &job).await, [job_edge(&dataset_urn("b"), EdgeKind::Consumed, &job)]);
}

#[tokio::test]
async fn completed_runs_version_their_outputs() {
    let mut s = TestStore::with_tenant().await;
    let mut features = dataset("features");
    features["facets"] = json!({
        "schema": {"fields": [
            {"name": "customer", "type": "VARCHAR", "description": "who"},
            {"name": "total", "type": "DOUBLE"},
        ]},
        "columnLineage": {"fields": {
            "total": {"inputFields": [{"namespace": DB, "name": "orders", "field": "amount",
                                       "transformationDescription": "sum of amount", "transformationType": "AGGREGATION"}]},
            "customer": {"inputFields": [{"namespace": DB, "name": "orders", "field": "customer_id"}],
                         "transformationDescription": "customer_id as is"},
        }},
        "documentation": {"description": "features per customer"},
    });
    let run = |n: u32, minute: u32| {
        vec![
            run_event("START", minute, n, "build", vec![dataset("orders")], vec![features.clone()]),
            run_event("COMPLETE", minute + 1, n, "build", vec![dataset("orders")], vec![features.clone()]),
        ]
    };
    let out = dataset_urn("features");
    stored(&mut s, ol(run(1, 1))).await;
    let first = s.current(&out).await;
    assert_eq!(ol_props(&first)["producedBy"], run_id(1));
    assert_eq!(
        ol_props(&first)["fields"],
        json!([
            {"name": "customer", "type": "VARCHAR", "description": "who"},
            {"name": "total", "type": "DOUBLE", "description": null},
        ])
    );
    assert_eq!(first.description.as_deref(), Some("features per customer"));
    assert_eq!(ol_props(&first)["namespace"], DB);
    let after_one = count(&s, &out).await;

    // Every COMPLETE makes exactly one version, produced by its run.
    stored(&mut s, ol(run(2, 5))).await;
    assert_eq!(count(&s, &out).await, after_one + 1);
    assert_eq!(ol_props(&s.current(&out).await)["producedBy"], run_id(2));
    // A started-only run makes none.
    stored(&mut s, ol(vec![run_event("START", 9, 3, "build", vec![], vec![features.clone()])])).await;
    assert_eq!(count(&s, &out).await, after_one + 1);
    // Nor does a failed one.
    stored(&mut s, ol(vec![run_event("FAIL", 10, 3, "build", vec![], vec![features.clone()])])).await;
    assert_eq!(count(&s, &out).await, after_one + 1);
    assert_eq!(ol_props(&s.current(&out).await)["producedBy"], run_id(2));

    // Column lineage: one `column` edge per input field, from the input's column to the output's
    // version the run produced.
    let current = s.current(&out).await.version;
    let columns = s.edges_of(&[eu(&out)], Direction::Upstream, &[EdgeKind::Column], None).await.unwrap();
    let orders = dataset_urn("orders");
    let of_current: Vec<Edge> = columns.iter().filter(|e| e.to.version == Some(current)).cloned().collect();
    assert_eq!(
        shape(&of_current),
        [
            (orders.clone(), EdgeKind::Column, out.clone(), Some("amount".into()), Some("total".into())),
            (orders.clone(), EdgeKind::Column, out.clone(), Some("customer_id".into()), Some("customer".into())),
        ]
    );
    let mut pairs: Vec<_> = shape(&columns);
    pairs.dedup();
    assert_eq!(pairs, shape(&of_current), "column edges of older versions name the same columns");
    // The transformation is the facet's description: the input field's, else the output field's.
    for e in &of_current {
        let want = if e.to_column.as_deref() == Some("total") { "sum of amount" } else { "customer_id as is" };
        assert_eq!(e.transformation.as_deref(), Some(want), "{e:?}");
    }

    // A MODEL dataset type makes a model entity (and no dataset of that name).
    let mut model = json!({"namespace": "mlflow", "name": "scorer"});
    model["facets"] = json!({"datasetType": {"datasetType": "model"}});
    stored(&mut s, ol(vec![run_event("COMPLETE", 20, 4, "train", vec![dataset("features")], vec![model.clone()])]))
        .await;
    let model_urn = "mm://acme/model/ol:mlflow;scorer";
    let m = s.current(model_urn).await;
    assert_eq!(ol_props(&m)["producedBy"], run_id(4));
    assert!(s.get_entity(&vu("mm://acme/dataset/ol:mlflow;scorer"), None).await.unwrap().is_none());
    assert_eq!(
        edges_around(&s, &job_urn("train")).await,
        [
            job_edge(&out, EdgeKind::Consumed, &job_urn("train")),
            job_edge(&job_urn("train"), EdgeKind::Produced, model_urn),
        ]
    );
    // Named again without the facet, it stays the same model.
    stored(
        &mut s,
        ol(vec![run_event("COMPLETE", 22, 5, "serve", vec![json!({"namespace": "mlflow", "name": "scorer"})], vec![])]),
    )
    .await;
    assert_eq!(edges_around(&s, &job_urn("serve")).await, [job_edge(model_urn, EdgeKind::Consumed, &job_urn("serve"))]);
}

#[tokio::test]
async fn a_foreign_input_is_referenced_in_its_tenant_and_queued() {
    let mut s = TestStore::with_tenant().await;
    let input = json!({"namespace": "growth", "name": "raw.signups"});
    let command = Command::OpenLineage {
        tenant: tenant("acme"),
        events: texts(&[
            run_event("START", 1, 1, "join", vec![input.clone()], vec![dataset("joined")]),
            run_event("COMPLETE", 2, 1, "join", vec![input], vec![dataset("joined")]),
        ]),
        foreign: vec![ForeignDataset {
            namespace: "growth".into(),
            name: "raw.signups".into(),
            tenant: tenant("other"),
        }],
    };
    assert_eq!(stored(&mut s, command).await, [true, true]);
    let remote = "mm://other/dataset/ol:growth;raw.signups";
    assert_eq!(
        edges_around(&s, &job_urn("join")).await,
        [
            job_edge(&job_urn("join"), EdgeKind::Produced, &dataset_urn("joined")),
            job_edge(remote, EdgeKind::Consumed, &job_urn("join")),
        ]
    );
    // Nothing of it is written here, in either tenant.
    assert!(s.get_entity(&vu("mm://acme/dataset/ol:growth;raw.signups"), None).await.unwrap().is_none());
    let queued = s.outbox(100).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].target.as_str(), "other");
    assert!(!queued[0].reference.removed);
    assert_eq!(queued[0].reference.edge.from.entity, eu(remote));
    assert_eq!(queued[0].reference.edge.to.entity, eu(&job_urn("join")));
    assert_eq!(queued[0].reference.edge.kind, EdgeKind::Consumed);
    assert_eq!(ol_props(&s.current(&job_urn("join")).await)["inputs"][0]["urn"], remote);

    // The next run no longer reads it: the removal is queued too.
    stored(&mut s, ol(vec![run_event("COMPLETE", 5, 2, "join", vec![dataset("local")], vec![dataset("joined")])]))
        .await;
    let queued = s.outbox(100).await.unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert!(queued[1].reference.removed);
    assert_eq!(queued[1].reference.edge.from.entity, eu(remote));
}

#[tokio::test]
async fn a_bad_event_or_a_foreign_tenant_is_refused_and_writes_nothing() {
    let mut s = TestStore::with_tenant().await;
    let good = run_event("START", 1, 1, "build", vec![dataset("a")], vec![]);
    let mut bad = run_event("COMPLETE", 2, 1, "build", vec![], vec![]);
    bad["job"].as_object_mut().unwrap().remove("namespace");
    let e = s.refused(ol(vec![good.clone(), bad])).await;
    assert!(matches!(&e, CommandError::InvalidField { field, .. } if field == "events[1].job.namespace"), "{e:?}");
    assert!(e.to_string().contains("events[1].job.namespace"), "{e}");
    // Nothing at all: no stored event (the first, valid one included), no entity.
    assert_eq!(stored_events(&s, "acme").await, 0);
    let dump = s.export().await.unwrap();
    assert!(!dump.lines().any(|l| l.starts_with("ol_events\t") || l.starts_with("nodes\t")), "{dump}");
    assert!(s.get_entity(&vu(&job_urn("build")), None).await.unwrap().is_none());

    // A tenant this shard does not own.
    let e = s
        .refused(Command::OpenLineage {
            tenant: tenant("other"),
            events: texts(std::slice::from_ref(&good)),
            foreign: Vec::new(),
        })
        .await;
    assert!(matches!(e, CommandError::UnknownTenant(ref t) if t.as_str() == "other"), "{e:?}");
    assert_eq!(stored_events(&s, "other").await, 0);

    // The valid event alone is accepted afterwards: the refusals left nothing that dedups it.
    assert_eq!(stored(&mut s, ol(vec![good])).await, [true]);
}

#[tokio::test]
async fn each_job_of_a_command_gets_one_audit_record() {
    let mut s = TestStore::with_tenant().await;
    stored(
        &mut s,
        ol(vec![
            run_event("START", 1, 1, "build", vec![], vec![]),
            run_event("COMPLETE", 2, 1, "build", vec![], vec![]),
            run_event("START", 3, 2, "train", vec![], vec![]),
        ]),
    )
    .await;
    s.refused(ol(vec![json!({"eventTime": at(4), "run": {"runId": run_id(3)}, "job": {"namespace": NS}})])).await;
    let conn = rusqlite::Connection::open(s.dir.path().join("shard.sqlite")).unwrap();
    let records: Vec<(String, String, String)> = metamesh_audit::sqlite::read_all(&conn)
        .unwrap()
        .into_iter()
        .map(|r| (r.principal, r.action, r.resource))
        .collect();
    let want = vec![
        (PRINCIPAL.to_owned(), "tenant.create".to_owned(), "mm://acme".to_owned()),
        (PRINCIPAL.to_owned(), "write".to_owned(), format!("{}#openlineage", job_urn("build"))),
        (PRINCIPAL.to_owned(), "write".to_owned(), format!("{}#openlineage", job_urn("train"))),
    ];
    assert_eq!(records, want);
    assert!(metamesh_audit::sqlite::verify_file(&s.dir.path().join("shard.sqlite"), &[]).is_ok());
}
