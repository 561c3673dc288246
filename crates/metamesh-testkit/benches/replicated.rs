//! Replicated writes on a 3-replica shard group over loopback gRPC with mutual TLS, every log
//! append fsynced. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p metamesh-testkit --bench replicated` — `METAMESH_BENCH_SMOKE=1` for a
//! seconds-long run; `METAMESH_BENCH_STATE_SYNC=full` to fsync the state file's commits too (by
//! default only the Raft log is fsynced before an acknowledgement, as in a configured node);
//! `METAMESH_BENCH_ONLY=w3` (any of `w1,w2,w3,w7`) to run some parts alone, e.g. under a profiler.

use std::sync::Arc;
use std::time::Instant;

use metamesh_core::{Command, EntitySpec, EntityUrn, Proposal, TenantId};
use metamesh_raft::Replica;
use metamesh_testkit::bench::quantile_ms as pct;
use metamesh_testkit::{test_options, ShardGroup};
use serde_json::json;

fn urn(i: usize) -> EntityUrn {
    format!("mm://bench/dataset/d{i:09}").parse().unwrap()
}

fn put(i: usize) -> Command {
    let mut spec = EntitySpec::new(urn(i));
    spec.properties = serde_json::json!({ "rows": i, "format": "parquet" });
    spec.tags.insert("bench".into());
    Command::PutEntity(spec)
}

fn proposal(command: Command, i: usize) -> Proposal {
    Proposal::new(command, 1_700_000_000_000 + i as i64, "bench")
}

async fn write(r: &Replica, p: Proposal) {
    let reply = r.write(p).await.expect("a write");
    assert!(reply.applied.expect("a command").result.is_ok());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::var("METAMESH_BENCH_SMOKE").is_ok();
    let full = std::env::var("METAMESH_BENCH_STATE_SYNC").is_ok_and(|v| v == "full");
    let (singles, clients, per_client, batches) = if smoke { (100, 8, 10, 3) } else { (2000, 64, 100, 30) };
    let only = std::env::var("METAMESH_BENCH_ONLY").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p.trim() == part));
    let mut options = test_options();
    options.store.synchronous_full = full;
    println!(
        "replicated bench: 3 replicas, loopback gRPC + mTLS, log fsync on, state sync {}",
        if full { "FULL" } else { "NORMAL" }
    );

    let mut g = ShardGroup::start_with(3, options.clone()).await;
    g.write(Command::CreateTenant { tenant: TenantId::new("bench").unwrap() }).await;
    let leader = g.replica(g.wait_for_leader().await);
    let mut next = 0usize;

    // W1: one client, sequential single-entity writes.
    let w1 = if runs("w1") {
        let mut lat = Vec::with_capacity(singles);
        let t = Instant::now();
        for _ in 0..singles {
            let p = proposal(put(next), next);
            next += 1;
            let s = Instant::now();
            write(&leader, p).await;
            lat.push(s.elapsed());
        }
        let el = t.elapsed();
        lat.sort();
        let w1 = json!({"n": singles, "ops_per_s": singles as f64 / el.as_secs_f64(),
                        "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99)});
        println!(
            "W1 sequential single puts   {:>8.0} writes/s   p50 {:.2} ms   p99 {:.2} ms",
            singles as f64 / el.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
        w1
    } else {
        serde_json::Value::Null
    };

    // W2: concurrent clients.
    let w2 = if runs("w2") {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let r: Arc<Replica> = leader.clone();
            let base = next + c * per_client;
            tasks.push(tokio::spawn(async move {
                for i in 0..per_client {
                    write(&r, proposal(put(base + i), base + i)).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        next += clients * per_client;
        let el = t.elapsed();
        let w2 = json!({"clients": clients, "n": clients * per_client,
                        "entities_per_s": (clients * per_client) as f64 / el.as_secs_f64()});
        println!(
            "W2 {clients} concurrent clients    {:>8.0} entities/s",
            (clients * per_client) as f64 / el.as_secs_f64()
        );
        w2
    } else {
        serde_json::Value::Null
    };

    // W3: batches of 1,000.
    let w3 = if runs("w3") {
        let prepared: Vec<Proposal> = (0..batches)
            .map(|b| {
                let commands = (0..1000).map(|i| put(next + b * 1000 + i)).collect();
                proposal(Command::Batch { commands }, next + b * 1000)
            })
            .collect();
        next += batches * 1000;
        let t = Instant::now();
        for p in prepared {
            write(&leader, p).await;
        }
        let el = t.elapsed();
        let w3 = json!({"batches": batches, "batch": 1000, "entities_per_s": (batches * 1000) as f64 / el.as_secs_f64(),
                        "ms_per_batch": el.as_secs_f64() * 1e3 / batches as f64});
        println!("W3 batches of 1,000          {:>8.0} entities/s", (batches * 1000) as f64 / el.as_secs_f64());
        w3
    } else {
        serde_json::Value::Null
    };

    // W7: leader failover, kill -> first acknowledged write through a survivor.
    if !runs("w7") {
        return;
    }
    drop(leader);
    let old = g.wait_for_leader().await;
    let t = Instant::now();
    g.kill(old).await;
    let killed_ms = t.elapsed().as_secs_f64() * 1e3;
    g.wait_for_leader().await;
    let elected_ms = t.elapsed().as_secs_f64() * 1e3;
    let survivor = g.ids()[0];
    g.write_via(survivor, put(next)).await;
    let failover_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "W7 failover                  {failover_ms:>8.0} ms from kill to first acknowledged write \
         (old leader stopped at {killed_ms:.0} ms, new leader at {elected_ms:.0} ms)"
    );
    if only.is_some() {
        return;
    }
    metamesh_testkit::bench::save(
        "replicated",
        &json!({"replicas": 3, "state_sync": if full { "FULL" } else { "NORMAL" }, "smoke": smoke,
                "w1": w1, "w2": w2, "w3": w3, "w7": {"failover_ms": failover_ms, "stopped_ms": killed_ms, "elected_ms": elected_ms}}),
    );
}
