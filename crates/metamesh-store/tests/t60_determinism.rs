//! Determinism: the same log applied to two stores gives byte-identical state, and closing and
//! reopening a store does not change it.

mod common;

use common::*;
use metamesh_core::command::SchemaSpec;
use metamesh_core::{Command, EdgeKind, EntitySpec, Kind, Proposal};
use metamesh_store::{Applied, Store, StoreOptions};
use proptest::prelude::*;
use serde_json::json;

const TENANTS: [&str; 3] = ["t0", "t1", "far"]; // `far` is never created: a remote tenant
const NAMES: [&str; 3] = ["n0", "n1", "n2"];

/// A dataset or run of a tenant by index.
fn urn(t: usize, kind: Kind, n: usize) -> String {
    format!("mm://{}/{}/{}", TENANTS[t], kind, NAMES[n])
}

#[derive(Clone, Debug)]
enum Op {
    Tenant(usize),
    /// variant: 0 base, 1 compatible (adds an optional field), 2 incompatible, 3 invalid document.
    Schema(usize, u8),
    /// variant: 0 free-form, 1 typed valid, 2 typed invalid, 3 free-form with text and tags,
    /// 4 expecting version 0.
    Put(usize, Kind, usize, u8),
    Delete(usize, Kind, usize),
    Doc(usize, Kind, usize, bool, u8),
    DeleteDoc(usize, Kind, usize, bool),
    /// (from tenant, from name, kind, to tenant, to name); kinds pick the end kinds.
    Edge(usize, usize, EdgeKind, usize, usize, bool),
}

fn table(variant: u8) -> serde_json::Value {
    let mut s = json!({
        "type": "object",
        "properties": {"location": {"type": "string"}, "rows": {"type": "integer", "minimum": 0}},
        "required": ["location"],
        "additionalProperties": false
    });
    match variant {
        1 => s["properties"]["note"] = json!({"type": "string"}),
        2 => s["properties"]["rows"] = json!({"type": "string"}),
        3 => s = json!({"type": "array"}),
        _ => {}
    }
    s
}

fn ends(kind: EdgeKind) -> (Kind, Kind) {
    match kind {
        EdgeKind::Consumed => (Kind::Dataset, Kind::Run),
        EdgeKind::Produced => (Kind::Run, Kind::Dataset),
        _ => (Kind::Dataset, Kind::Dataset),
    }
}

fn command(op: &Op) -> Command {
    match op {
        Op::Tenant(t) => create_tenant(TENANTS[*t]),
        Op::Schema(t, v) => Command::RegisterSchema(SchemaSpec {
            tenant: tenant(TENANTS[*t]),
            type_name: type_name("Table"),
            base_kind: Kind::Dataset,
            schema: table(*v),
            compatibility: None,
            migration: Default::default(),
        }),
        Op::Put(t, kind, n, v) => {
            let mut s = EntitySpec::new(eu(&urn(*t, *kind, *n)));
            match v {
                1 => {
                    s.type_name = Some(type_name("Table"));
                    s.properties = json!({"location": format!("s3://{n}"), "rows": n});
                }
                2 => {
                    s.type_name = Some(type_name("Table"));
                    s.properties = json!({"rows": -1});
                }
                3 => {
                    s.properties = json!({"n": n, "nested": {"k": [1, 2]}});
                    s.tags = ["gold".to_string(), format!("tag{n}")].into();
                    s.description = Some(format!("entity {n} in tenant {t}, with ünïcode text"));
                    s.owner = Some("team-a".into());
                    s.status = Some("active".into());
                }
                4 => s.expect_version = Some(0),
                _ => s.properties = json!({"v": v, "f": 0.5}),
            }
            Command::PutEntity(s)
        }
        Op::Delete(t, kind, n) => delete(&urn(*t, *kind, *n)),
        Op::Doc(t, kind, n, second, body) => {
            let title = if *second { "runbook" } else { "readme" };
            put_doc(&urn(*t, *kind, *n), title, &format!("# notes\n\nbody {body} of {title}"))
        }
        Op::DeleteDoc(t, kind, n, second) => Command::DeleteDocument {
            urn: eu(&urn(*t, *kind, *n)),
            title: if *second { "runbook" } else { "readme" }.into(),
        },
        Op::Edge(ft, fnm, kind, tt, tn, remove) => {
            let (fk, tk) = ends(*kind);
            let spec = edge_spec(&urn(*ft, fk, *fnm), *kind, &urn(*tt, tk, *tn));
            if *remove {
                Command::RemoveEdge(spec)
            } else {
                Command::AddEdge(spec)
            }
        }
    }
}

fn single_op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS.len();
    let own = 0..2usize;
    let n = 0..NAMES.len();
    let kind = prop::sample::select(vec![Kind::Dataset, Kind::Run]);
    let edge_kind = prop::sample::select(vec![EdgeKind::Consumed, EdgeKind::Produced, EdgeKind::DerivedFrom]);
    prop_oneof![
        1 => own.clone().prop_map(Op::Tenant),
        1 => (own.clone(), 0u8..4).prop_map(|(t, v)| Op::Schema(t, v)),
        6 => (t.clone(), kind.clone(), n.clone(), 0u8..5).prop_map(|(t, k, n, v)| Op::Put(t, k, n, v)),
        2 => (own.clone(), kind.clone(), n.clone()).prop_map(|(t, k, n)| Op::Delete(t, k, n)),
        2 => (own.clone(), kind.clone(), n.clone(), any::<bool>(), any::<u8>())
            .prop_map(|(t, k, n, s, b)| Op::Doc(t, k, n, s, b)),
        1 => (own.clone(), kind, n.clone(), any::<bool>()).prop_map(|(t, k, n, s)| Op::DeleteDoc(t, k, n, s)),
        5 => (t, n.clone(), edge_kind, own, n, prop::bool::weighted(0.2))
            .prop_map(|(ft, f, k, tt, tn, r)| Op::Edge(ft, f, k, tt, tn, r)),
    ]
}

#[derive(Clone, Debug)]
struct Step {
    ops: Vec<Op>, // more than one: a batch
    principal: u8,
    request_id: Option<u8>,
    dt: i64,
}

fn step() -> impl Strategy<Value = Step> {
    let ops = prop_oneof![4 => single_op().prop_map(|o| vec![o]), 1 => prop::collection::vec(single_op(), 0..5)];
    (ops, 0u8..2, prop::option::weighted(0.3, 0u8..3), -2000i64..5000)
        .prop_map(|(ops, principal, request_id, dt)| Step { ops, principal, request_id, dt })
}

fn proposals(steps: &[Step]) -> Vec<Proposal> {
    let mut at = START_MS;
    // The log always starts by creating the first tenant, so that most commands have a target.
    let mut out = vec![Proposal::new(create_tenant("t0"), at, "alice")];
    for s in steps {
        at += s.dt;
        let command = match s.ops.as_slice() {
            [one] => command(one),
            many => Command::Batch { commands: many.iter().map(command).collect() },
        };
        let mut p = Proposal::new(command, at, ["alice", "bob"][s.principal as usize]);
        p.request_id = s.request_id.map(|r| format!("req-{r}"));
        out.push(p);
    }
    out
}

async fn replay(log: &[Proposal], opts: StoreOptions) -> (tempfile::TempDir, Store, Vec<Applied>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("replica.sqlite"), opts).await.unwrap();
    let mut applied = Vec::new();
    for (i, p) in log.iter().enumerate() {
        // Revisions with gaps, as Raft log indexes may have.
        applied.push(store.apply(2 * i as u64 + 1, p).await.unwrap());
    }
    (dir, store, applied)
}

async fn check_determinism(steps: Vec<Step>) {
    let log = proposals(&steps);
    let (_da, a, applied_a) = replay(&log, StoreOptions::default()).await;
    let (_db, b, applied_b) = replay(&log, StoreOptions { synchronous_full: false, readers: 1 }).await;
    assert_eq!(applied_a, applied_b, "same outcomes");
    let export = a.export().await.unwrap();
    assert_eq!(export, b.export().await.unwrap(), "same state");
    assert_eq!(a.digest().await.unwrap(), b.digest().await.unwrap());
    assert_eq!(a.applied_revision().await.unwrap(), 2 * log.len() as u64 - 1);

    // Closing and reopening does not change the state.
    let path = a.path().to_owned();
    a.close().await;
    let a = Store::open(&path, StoreOptions::default()).await.unwrap();
    assert_eq!(a.export().await.unwrap(), export, "same state after reopening");
    a.close().await;
    b.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replicas_reach_identical_state(steps in prop::collection::vec(step(), 0..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check_determinism(steps));
    }
}

/// A fixed log that exercises every kind of row, so the property above is not vacuous: it
/// writes tenants, schemas, entities, tags, documents, edges (local and remote), changes and
/// search rows, and two replicas agree on all of them.
#[tokio::test]
async fn a_full_log_replays_identically() {
    let steps: Vec<Step> = [
        Op::Tenant(1),
        Op::Schema(0, 0),
        Op::Put(0, Kind::Dataset, 0, 1),
        Op::Put(0, Kind::Dataset, 1, 3),
        Op::Put(0, Kind::Run, 0, 0),
        Op::Put(0, Kind::Dataset, 0, 2), // refused: schema violation
        Op::Schema(0, 1),
        Op::Schema(0, 2), // refused: incompatible
        Op::Doc(0, Kind::Dataset, 1, false, 7),
        Op::Edge(0, 0, EdgeKind::Consumed, 0, 0, false),
        Op::Edge(2, 1, EdgeKind::Consumed, 0, 0, false), // remote upstream end
        Op::Edge(0, 0, EdgeKind::Produced, 0, 1, false),
        Op::Edge(0, 0, EdgeKind::DerivedFrom, 0, 1, false),
        Op::Edge(0, 1, EdgeKind::DerivedFrom, 0, 0, false), // refused: cycle
        Op::Delete(0, Kind::Dataset, 1),
        Op::Edge(0, 0, EdgeKind::DerivedFrom, 0, 1, true),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, op)| Step { ops: vec![op], principal: (i % 2) as u8, request_id: None, dt: 1000 })
    .collect();
    let mut steps = steps;
    steps[2].request_id = Some(1);
    let retry = Step { dt: -500, ..steps[2].clone() };
    steps.push(retry);
    let log = proposals(&steps);
    let (_da, a, applied) = replay(&log, StoreOptions::default()).await;
    let refused = applied.iter().filter(|x| x.result.is_err()).count();
    let duplicates = applied.iter().filter(|x| x.duplicate_of.is_some()).count();
    assert_eq!(refused, 3, "{applied:#?}");
    assert_eq!(duplicates, 1, "{applied:#?}");
    let export = a.export().await.unwrap();
    for table in [
        "revisions",
        "tenants",
        "schemas",
        "nodes",
        "entities",
        "versions",
        "version_tags",
        "documents",
        "edges",
        "changes",
        "search",
    ] {
        assert!(export.lines().any(|l| l.starts_with(&format!("{table}\t"))), "no {table} rows:\n{export}");
    }
    let (_db, b, _) = replay(&log, StoreOptions::default()).await;
    assert_eq!(b.export().await.unwrap(), export);
    a.close().await;
    b.close().await;
}
