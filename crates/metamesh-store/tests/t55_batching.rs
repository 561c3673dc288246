//! Replicas cut the same log into different apply batches (the leader applies what committed
//! together, a follower what arrived together), and the store coalesces runs of single-entity
//! puts inside a batch into one set-based write. Whatever the cut, the outcome of every entry
//! and the resulting state must be exactly those of applying the entries one by one.

mod common;

use common::*;
use metamesh_core::{Command, Kind, Proposal};
use metamesh_store::{Applied, Store, StoreOptions};
use proptest::prelude::*;
use serde_json::json;

/// One generated log entry.
#[derive(Clone, Debug)]
enum Op {
    Put { tenant: usize, name: usize, typed: bool, valid: bool, expect: Option<u64> },
    Delete { name: usize },
    Tenant,
    Schema,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..3usize, 0..6usize, any::<bool>(), prop::bool::weighted(0.85), prop::option::weighted(0.15, 0..3u64))
            .prop_map(|(tenant, name, typed, valid, expect)| Op::Put { tenant, name, typed, valid, expect }),
        1 => (0..6usize).prop_map(|name| Op::Delete { name }),
        1 => Just(Op::Tenant),
        1 => Just(Op::Schema),
    ]
}

/// Tenant 0 exists from the start, tenant 1 is created by an `Op::Tenant`, tenant 2 never.
const TENANTS: [&str; 3] = ["acme", "beta", "nope"];

fn command(op: &Op) -> Command {
    match op {
        Op::Put { tenant, name, typed, valid, expect } => {
            let urn = format!("mm://{}/dataset/d{name}", TENANTS[*tenant]);
            let mut s = spec(&urn);
            s.tags.insert(format!("t{name}"));
            s.description = Some(format!("dataset number {name}"));
            if *typed {
                s.type_name = Some(type_name("Table"));
                s.properties = if *valid { json!({"location": urn, "rows": name}) } else { json!({"rows": -1}) };
            } else {
                s.properties = json!({"n": name});
            }
            s.expect_version = *expect;
            Command::PutEntity(s)
        }
        Op::Delete { name } => delete(&format!("mm://acme/dataset/d{name}")),
        Op::Tenant => create_tenant("beta"),
        Op::Schema => register("acme", "Table", Kind::Dataset, table_schema()),
    }
}

/// The entries: principal and request id vary so that retries (same principal and id) occur.
fn proposals(ops: &[(Op, u8, Option<u8>, i64)]) -> Vec<(u64, Proposal)> {
    ops.iter()
        .enumerate()
        .map(|(i, (op, who, req, skew))| {
            let mut p = Proposal::new(command(op), START_MS + 1_000 * i as i64 + skew, format!("user{}", who % 2));
            p.request_id = req.map(|r| format!("req-{}", r % 4));
            (i as u64 + 2, p)
        })
        .collect()
}

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.sqlite"), StoreOptions::default()).await.unwrap();
    store.apply(1, &Proposal::new(create_tenant("acme"), START_MS, PRINCIPAL)).await.unwrap();
    (dir, store)
}

fn summary(a: &[Applied]) -> Vec<String> {
    a.iter().map(|a| format!("{} {} {:?} {:?}", a.revision, a.at_ms, a.result, a.duplicate_of)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_cut_into_batches_gives_the_one_by_one_result(
        ops in prop::collection::vec(
            (op(), any::<u8>(), prop::option::weighted(0.3, any::<u8>()), -3_000i64..3_000),
            1..40,
        ),
        cuts in prop::collection::vec(1..12usize, 1..20),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let entries = proposals(&ops);
            let (_d1, one) = fresh().await;
            let mut expected = Vec::new();
            for (rev, p) in &entries {
                expected.push(one.apply(*rev, p).await.unwrap());
            }
            let (_d2, cut) = fresh().await;
            let mut got = Vec::new();
            let mut rest = entries.clone();
            let mut sizes = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                let batch: Vec<_> = rest.drain(..n).collect();
                got.extend(cut.apply_batch(batch, None).await.unwrap());
            }
            prop_assert_eq!(summary(&got), summary(&expected));
            prop_assert_eq!(cut.export().await.unwrap(), one.export().await.unwrap());
            // The audit chains are identical too: same records, same hashes.
            let head = |d: &tempfile::TempDir| metamesh_audit::sqlite::verify_file(&d.path().join("s.sqlite"), &[]).unwrap();
            let (a, b) = (head(&_d1), head(&_d2));
            prop_assert_eq!((a.records, a.head), (b.records, b.head));
            Ok(())
        })?;
    }
}
