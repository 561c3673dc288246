//! The in-memory live lineage graph answers current-state frontiers; SQLite answers as-of ones.
//! Both must agree after any sequence of edge writes — including refused batches, which must not
//! leak into the index — and after the store is reopened (the index is rebuilt from the file).

mod common;

use common::*;
use metamesh_core::{Command, Direction, EdgeKind, EntityUrn, Kind};
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
    Reopen,
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn memory_graph_equals_sql(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut s = TestStore::with_tenant().await;
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
                        assert!(matches!(e, metamesh_core::CommandError::InBatch { index: 1, .. }), "{e}");
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
