//! The in-memory live lineage graph answers current-state frontiers, and holds the details
//! (type, status, tombstone) of every entity's live version; SQLite answers as-of ones. Both must
//! agree after any sequence of edge and entity writes — including refused batches, which must
//! not leak into the index, and puts coalesced into one set-based write — and after the store is
//! reopened (the index is rebuilt from the file).

mod common;

use common::*;
use metamesh_core::{Command, Direction, EdgeKind, EntityUrn, Kind, Proposal};
use proptest::prelude::*;

const DATASETS: usize = 5;
const RUNS: usize = 3;

fn dataset(i: usize) -> String {
    // Dataset 4 belongs to a tenant of another shard: a remote end.
    if i == 4 {
        "mm://other/dataset/d4".to_owned()
    } else {
        format!("mm://acme/dataset/d{i}")
    }
}

fn run(i: usize) -> String {
    format!("mm://acme/run/r{i}")
}

#[derive(Clone, Debug)]
enum Op {
    /// dataset -consumed-> run, or run -produced-> dataset
    Link {
        dataset: usize,
        run: usize,
        consumed: bool,
    },
    Unlink {
        dataset: usize,
        run: usize,
        consumed: bool,
    },
    /// dataset -derived_from-> dataset (may be refused as a cycle)
    Derive(usize, usize),
    /// A batch of two links whose second element is refused: nothing of it may remain.
    RefusedBatch {
        dataset: usize,
        run: usize,
    },
    /// A new version of a local entity: a status (or none), a type (datasets only) or none;
    /// refused when the entity is deleted.
    Put {
        entity: usize,
        status: Option<u8>,
        typed: bool,
    },
    /// Several puts applied as one batch of entries (written as one set-based put); a put of a
    /// deleted entity is refused alone.
    PutRun(Vec<(usize, Option<u8>)>),
    Delete(usize),
    /// A batch of two puts whose second is refused (a version conflict): the first one's new
    /// details must not reach the index.
    RefusedPuts {
        entity: usize,
        status: u8,
    },
    Reopen,
}

/// The local entities: datasets 0..4 and the runs.
fn local(i: usize) -> String {
    if i < 4 {
        dataset(i)
    } else {
        run(i - 4)
    }
}

const LOCAL: usize = 4 + RUNS;

fn put_with(i: usize, status: Option<u8>, typed: bool) -> metamesh_core::EntitySpec {
    let mut spec = spec(&local(i));
    spec.status = status.map(|s| format!("s{s}"));
    if typed && i < 4 {
        spec.type_name = Some(type_name("Table"));
    }
    spec
}

fn link(dataset_i: usize, run_i: usize, consumed: bool) -> (String, EdgeKind, String) {
    if consumed {
        (dataset(dataset_i), EdgeKind::Consumed, run(run_i))
    } else {
        (run(run_i), EdgeKind::Produced, dataset(dataset_i))
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..DATASETS, 0..RUNS, any::<bool>()).prop_map(|(dataset, run, consumed)| Op::Link { dataset, run, consumed }),
        2 => (0..DATASETS, 0..RUNS, any::<bool>()).prop_map(|(dataset, run, consumed)| Op::Unlink { dataset, run, consumed }),
        2 => (0..4usize, 0..4usize).prop_map(|(a, b)| Op::Derive(a, b)),
        1 => (0..4usize, 0..RUNS).prop_map(|(dataset, run)| Op::RefusedBatch { dataset, run }),
        2 => (0..LOCAL, prop::option::of(0..3u8), any::<bool>())
            .prop_map(|(entity, status, typed)| Op::Put { entity, status, typed }),
        1 => prop::collection::vec((0..LOCAL, prop::option::of(0..3u8)), 2..5).prop_map(Op::PutRun),
        1 => (0..LOCAL).prop_map(Op::Delete),
        1 => (0..LOCAL, 0..3u8).prop_map(|(entity, status)| Op::RefusedPuts { entity, status }),
        1 => Just(Op::Reopen),
    ]
}

async fn assert_agree(s: &TestStore) {
    let all: Vec<EntityUrn> = (0..DATASETS).map(dataset).chain((0..RUNS).map(run)).map(|u| eu(&u)).collect();
    let frontiers: Vec<Vec<EntityUrn>> =
        vec![all.clone(), all[..2].to_vec(), all[4..].to_vec(), vec![all[0].clone(), all[6].clone()]];
    for frontier in &frontiers {
        for direction in [Direction::Upstream, Direction::Downstream, Direction::Both] {
            for kinds in [vec![], vec![EdgeKind::Consumed], vec![EdgeKind::DerivedFrom, EdgeKind::Produced]] {
                let memory = s.store().edges_of(frontier, direction, &kinds, None).await.unwrap();
                let sql = s.store().edges_of_sql(frontier, direction, &kinds, None).await.unwrap();
                assert_eq!(memory, sql, "{direction:?} {kinds:?} {frontier:?}");
            }
        }
    }
    // Details: the index holds those of every entity's live version, and nothing for the remote
    // end; the reads that use it agree with SQLite.
    let everything: Vec<EntityUrn> = all.iter().cloned().chain([eu("mm://acme/dataset/missing")]).collect();
    let sql = s.store().node_details_sql(&everything, None).await.unwrap();
    assert_eq!(sql.len(), LOCAL, "every local entity exists: {sql:?}");
    assert_eq!(s.store().node_details_in_memory(&everything), sql);
    assert_eq!(s.store().node_details(&everything, None).await.unwrap(), sql);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn memory_graph_equals_sql(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut s = TestStore::with_tenant().await;
            s.ok(register("acme", "Table", Kind::Dataset, serde_json::json!({"type": "object"}))).await;
            for i in 0..4 {
                s.ok(put(&dataset(i))).await;
            }
            for i in 0..RUNS {
                s.ok(put(&run(i))).await;
            }
            for op in ops {
                match op {
                    Op::Link { dataset, run, consumed } => {
                        let (a, k, b) = link(dataset, run, consumed);
                        s.apply(add_edge(&a, k, &b)).await;
                    }
                    Op::Unlink { dataset, run, consumed } => {
                        let (a, k, b) = link(dataset, run, consumed);
                        s.apply(remove_edge(&a, k, &b)).await;
                    }
                    Op::Derive(a, b) => {
                        s.apply(add_edge(&dataset(a), EdgeKind::DerivedFrom, &dataset(b))).await;
                    }
                    Op::RefusedBatch { dataset: d, run: r } => {
                        let (a, k, b) = link(d, r, true);
                        // Refused while executing (the end does not exist), after the first
                        // element has written its edge inside the transaction.
                        let bad = add_edge("mm://acme/dataset/missing", EdgeKind::Consumed, &run(0));
                        let e = s.refused(Command::Batch { commands: vec![add_edge(&a, k, &b), bad] }).await;
                        // (Its first element is refused itself when an end was deleted.)
                        assert!(matches!(e, metamesh_core::CommandError::InBatch { .. }), "{e}");
                    }
                    Op::Put { entity, status, typed } => {
                        // Refused when the entity is deleted; either way the index agrees.
                        s.apply(Command::PutEntity(put_with(entity, status, typed))).await;
                    }
                    Op::PutRun(puts) => {
                        let mut entries = Vec::new();
                        for (entity, status) in puts {
                            s.rev += 1;
                            let command = Command::PutEntity(put_with(entity, status, false));
                            entries.push((s.rev, Proposal::new(command, s.now_ms, PRINCIPAL)));
                        }
                        let applied = s.store().apply_batch(entries, None).await.unwrap();
                        s.now_ms += s.tick_ms;
                        assert_eq!(applied.len(), applied.iter().map(|a| a.revision).collect::<std::collections::HashSet<_>>().len());
                    }
                    Op::Delete(entity) => {
                        // Refused when the entity is already deleted; either way the index agrees.
                        s.apply(delete(&local(entity))).await;
                    }
                    Op::RefusedPuts { entity, status } => {
                        let mut conflict = put_with((entity + 1) % LOCAL, None, false);
                        conflict.expect_version = Some(999);
                        let puts = vec![Command::PutEntity(put_with(entity, Some(status), true)), Command::PutEntity(conflict)];
                        s.refused(Command::Batch { commands: puts }).await;
                    }
                    Op::Reopen => s.reopen().await,
                }
                assert_agree(&s).await;
            }
        });
    }
}

#[tokio::test]
async fn as_of_frontiers_use_history_and_current_ones_the_index() {
    let mut s = TestStore::with_tenant().await;
    s.ok(put(&dataset(0))).await;
    s.ok(put(&run(0))).await;
    s.ok(add_edge(&dataset(0), EdgeKind::Consumed, &run(0))).await;
    let linked = s.store().applied_revision().await.unwrap();
    s.ok(remove_edge(&dataset(0), EdgeKind::Consumed, &run(0))).await;
    let frontier = [eu(&run(0))];
    let now = s.store().edges_of(&frontier, Direction::Upstream, &[], None).await.unwrap();
    assert!(now.is_empty(), "removed edge still in the live graph: {now:?}");
    let then = s
        .store()
        .edges_of(&frontier, Direction::Upstream, &[], Some(metamesh_core::AsOf::Revision(linked)))
        .await
        .unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].from.entity.kind(), Kind::Dataset);
    assert_eq!(then[0].from.version, Some(1), "local ends are pinned to their version");
}
