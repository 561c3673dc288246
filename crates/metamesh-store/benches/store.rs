//! Store benchmarks: prints figures, asserts nothing about speed.
//!
//! `cargo bench -p metamesh-store --bench store` — scale with `METAMESH_BENCH_NODES`
//! (default 100000 graph nodes); `METAMESH_BENCH_SMOKE=1` runs a small version in seconds;
//! `METAMESH_BENCH_ONLY=single,batch,openlineage,frontier` picks parts;
//! `METAMESH_BENCH_MERGE=1` adds this run's parts to an existing `target/bench/store.json`
//! instead of replacing it (`bench/run.sh` runs the frontier part, W8, in a process of its own,
//! so that its resident memory is one store's and not what the earlier parts left behind).
//!
//! - single: one `PutEntity` per revision (one transaction, one fsync each);
//! - batch: `Batch` commands of 1,000 `PutEntity` each;
//! - openlineage: `OpenLineage` commands as the router sends them (up to 500 events and
//!   512 KiB each) of the corpus replayed (`METAMESH_BENCH_OL_EVENTS`, default 20,000): the
//!   apply rate of one replica, which bounds the mesh's ingest rate;
//! - frontier: `edges_of` for 1,000 random nodes of a lineage graph (runs reading two datasets
//!   and writing one), both directions.

use std::time::{Duration, Instant};

use metamesh_core::{Command, Direction, EdgeKind, EdgeSpec, EntitySpec, EntityUrn, Kind, Proposal, TenantId};
use metamesh_store::{Store, StoreOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn urn(kind: Kind, i: usize) -> EntityUrn {
    EntityUrn::new(TenantId::new("bench").unwrap(), kind, format!("s3://lake/{kind}/{i:08}")).unwrap()
}

fn entity(kind: Kind, i: usize) -> Command {
    let mut spec = EntitySpec::new(urn(kind, i));
    spec.properties = serde_json::json!({ "rows": i, "format": "parquet", "owner_team": "bench" });
    spec.tags.insert("bench".into());
    spec.owner = Some("bench-owner".into());
    Command::PutEntity(spec)
}

struct Bench {
    store: Store,
    rev: u64,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new(synchronous_full: bool) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path().join("bench.sqlite"), StoreOptions { synchronous_full, readers: 4 }).await.unwrap();
        let mut b = Bench { store, rev: 0, _dir: dir };
        b.apply(Command::CreateTenant { tenant: TenantId::new("bench").unwrap() }).await;
        b
    }

    async fn apply(&mut self, command: Command) {
        self.rev += 1;
        let applied = self.store.apply(self.rev, &Proposal::new(command, self.rev as i64, "bench")).await.unwrap();
        if let Err(e) = applied.result {
            panic!("bench command refused: {e}");
        }
    }
}

/// 1,000 random datasets and runs of the bench graph.
fn random_frontier(next: &mut impl FnMut() -> u64, half: usize) -> Vec<EntityUrn> {
    (0..1000)
        .map(|_| {
            let i = (next() % half as u64) as usize;
            if next() % 2 == 0 {
                urn(Kind::Dataset, i)
            } else {
                urn(Kind::Run, i)
            }
        })
        .collect()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let smoke = std::env::var("METAMESH_BENCH_SMOKE").is_ok();
    let nodes = if smoke { 10_000 } else { env_usize("METAMESH_BENCH_NODES", 100_000) };
    let singles = if smoke { 300 } else { 3_000 };
    let batches = if smoke { 5 } else { 50 };
    let only = std::env::var("METAMESH_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    println!("metamesh-store bench (nodes={nodes}, smoke={smoke})");

    if run("single") {
        // What one sqlx statement costs here: its worker-thread round trip bounds single puts.
        let b = Bench::new(false).await;
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            b.store.applied_revision().await.unwrap();
        }
        println!("statement    sqlx round trip      {:>7.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    // The engine alone, beside MLMD's in-process engine in the suite's table (`single_full`,
    // `batch` in store.json): MLMD is one SQLite file; the replicated rows are three.
    let mut report = serde_json::json!({"smoke": smoke});
    for full in [true, false].into_iter().filter(|_| run("single")) {
        let mut b = Bench::new(full).await;
        let mut lat = Vec::with_capacity(singles);
        let t = Instant::now();
        for i in 0..singles {
            let s = Instant::now();
            b.apply(entity(Kind::Dataset, i)).await;
            lat.push(s.elapsed());
        }
        let el = t.elapsed();
        lat.sort();
        let (per_s, p50, p99) = (
            singles as f64 / el.as_secs_f64(),
            pct(&lat, 0.5).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
        );
        println!(
            "single put   synchronous={:<6} {per_s:>9.0} ops/s   p50 {p50:>7.3} ms   p99 {p99:>7.3} ms",
            if full { "FULL" } else { "NORMAL" },
        );
        report[if full { "single_full" } else { "single_normal" }] =
            serde_json::json!({"n": singles, "ops_per_s": per_s, "p50_ms": p50, "p99_ms": p99});
    }

    let mut b = Bench::new(true).await;
    let prepared: Vec<Command> = (0..batches)
        .filter(|_| run("batch"))
        .map(|n| Command::Batch { commands: (0..1000).map(|i| entity(Kind::Model, n * 1000 + i)).collect() })
        .collect();
    let t = Instant::now();
    for batch in prepared {
        b.apply(batch).await;
    }
    let el = t.elapsed();
    if run("batch") {
        let (per_s, ms) = ((batches * 1000) as f64 / el.as_secs_f64(), el.as_secs_f64() * 1e3 / batches as f64);
        println!("batch put    1000/batch          {per_s:>9.0} entities/s ({batches} batches, {ms:.1} ms/batch)");
        report["batch"] =
            serde_json::json!({"batches": batches, "batch": 1000, "entities_per_s": per_s, "ms_per_batch": ms});
    }

    if run("openlineage") {
        let total = if smoke { 1_500 } else { env_usize("METAMESH_BENCH_OL_EVENTS", 20_000) };
        report["openlineage"] = serde_json::json!({"events": total, "events_per_s": openlineage(total).await});
    }

    if !run("frontier") {
        save(&report);
        return;
    }
    // The lineage graph: half datasets, half runs; run i reads datasets i and i+1 (fan-in 2)
    // and writes dataset i+2.
    let mut g = Bench::new(false).await;
    let half = nodes / 2;
    let t = Instant::now();
    for chunk in (0..half).collect::<Vec<_>>().chunks(1000) {
        let mut commands: Vec<Command> = chunk.iter().map(|&i| entity(Kind::Dataset, i)).collect();
        commands.extend(chunk.iter().map(|&i| entity(Kind::Run, i)));
        g.apply(Command::Batch { commands }).await;
    }
    let load = t.elapsed();
    let t = Instant::now();
    let mut edges = 0;
    for chunk in (0..half.saturating_sub(2)).collect::<Vec<_>>().chunks(500) {
        let mut commands = Vec::with_capacity(chunk.len() * 3);
        for &i in chunk {
            let run = urn(Kind::Run, i).at(1);
            commands.push(Command::AddEdge(EdgeSpec::new(
                urn(Kind::Dataset, i).at(1),
                EdgeKind::Consumed,
                run.clone(),
            )));
            commands.push(Command::AddEdge(EdgeSpec::new(
                urn(Kind::Dataset, i + 1).at(1),
                EdgeKind::Consumed,
                run.clone(),
            )));
            commands.push(Command::AddEdge(EdgeSpec::new(run, EdgeKind::Produced, urn(Kind::Dataset, i + 2).at(1))));
        }
        edges += commands.len();
        g.apply(Command::Batch { commands }).await;
    }
    let link = t.elapsed();
    println!(
        "graph build  {nodes} nodes in {:.1} s, {edges} edges in {:.1} s ({:.0} edges/s)",
        load.as_secs_f64(),
        link.as_secs_f64(),
        edges as f64 / link.as_secs_f64()
    );

    // Deterministic pseudo-random frontiers (xorshift), so runs are comparable.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rounds = if smoke { 10 } else { 50 };
    let mut lat = Vec::with_capacity(rounds);
    let mut returned = 0;
    for _ in 0..rounds {
        let frontier = random_frontier(&mut next, half);
        let s = Instant::now();
        let found = g.store.edges_of(&frontier, Direction::Both, &[], None).await.unwrap();
        lat.push(s.elapsed());
        returned += found.len();
    }
    lat.sort();
    println!(
        "frontier     1000 nodes, both    p50 {:>7.3} ms   p99 {:>7.3} ms   ({} edges/answer, in-memory graph)",
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        returned / rounds
    );

    // The same frontiers as of the current revision: answered by SQLite from the history.
    let head = Some(metamesh_core::AsOf::Revision(g.rev));
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let frontier = random_frontier(&mut next, half);
        let s = Instant::now();
        g.store.edges_of(&frontier, Direction::Both, &[], head).await.unwrap();
        lat.push(s.elapsed());
    }
    lat.sort();
    println!(
        "frontier     1000 nodes, as-of   p50 {:>7.3} ms   p99 {:>7.3} ms   (SQLite history)",
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
    );

    // Ten hops downstream from single nodes, through `expand`.
    let mut lat = Vec::with_capacity(rounds);
    let mut reached = 0;
    for _ in 0..rounds {
        let start = urn(Kind::Dataset, (next() % half as u64) as usize);
        let req = metamesh_store::ExpandRequest {
            start: vec![start],
            start_depths: vec![],
            direction: Direction::Downstream,
            kinds: vec![],
            max_depth: 10,
            max_nodes: 100_000,
            as_of: None,
        };
        let s = Instant::now();
        reached += g.store.expand(&req).await.unwrap().nodes.len();
        lat.push(s.elapsed());
    }
    lat.sort();
    println!(
        "expand       10 hops downstream  p50 {:>7.3} ms   p99 {:>7.3} ms   ({} nodes/answer)",
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        reached / rounds
    );

    // What the graph costs: this process's resident memory with the store open (one store, its
    // in-memory graph index, the bench's own few MB), then bytes on disk per entity at rest,
    // once the store is closed (its WAL checkpointed and truncated): a WAL's size while open
    // is how far checkpoints lag the writes, not what the data takes.
    let rss_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let Bench { store, _dir: dir, .. } = g;
    store.close().await;
    let disk: u64 =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    println!(
        "footprint    {nodes} entities, {edges} edges: {:.0} bytes/entity on disk, resident {:.0} MB",
        disk as f64 / nodes as f64,
        rss_kib as f64 / 1024.0
    );
    report["footprint"] = serde_json::json!({"entities": nodes, "edges": edges, "disk_bytes": disk,
        "disk_bytes_per_entity": disk as f64 / nodes as f64, "rss_mb": rss_kib as f64 / 1024.0});
    save(&report);
}

/// Writes `target/bench/store.json` (this crate cannot use the test kit's helper: the kit
/// depends on it).
fn save(report: &serde_json::Value) {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
    .join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let path = dir.join("store.json");
    let mut merged = report.clone();
    if std::env::var_os("METAMESH_BENCH_MERGE").is_some() {
        let earlier = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let (Some(serde_json::Value::Object(mut earlier)), serde_json::Value::Object(now)) = (earlier, report) {
            earlier.extend(now.clone());
            merged = serde_json::Value::Object(earlier);
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&merged).expect("JSON")).expect("store.json");
}

/// Applies the OpenLineage workload (`metamesh_openlineage::workload`) to one store, in
/// commands cut as the router cuts them.
async fn openlineage(total: usize) -> f64 {
    use metamesh_openlineage::workload;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = workload::read_corpus(&root.join("tests/corpus/openlineage")).expect("the corpus");
    let mut events: Vec<serde_json::Value> = (0..20).flat_map(|c| workload::chain(c, 25, |_| "bench".into())).collect();
    let mut k = 0;
    while events.len() < total {
        events.extend(workload::corpus_copy(&corpus, k, 20));
        k += 1;
    }
    events.truncate(total);
    let texts: Vec<String> = events.iter().map(|e| serde_json::to_string(e).expect("JSON")).collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut commands = Vec::new();
    let (mut part, mut size) = (Vec::new(), 0usize);
    for text in texts {
        if !part.is_empty() && (part.len() == 500 || size + text.len() > 512 * 1024) {
            commands.push(std::mem::take(&mut part));
            size = 0;
        }
        size += text.len();
        part.push(text);
    }
    commands.push(part);
    let n_commands = commands.len();
    let tenant = TenantId::new("bench").unwrap();
    let mut b = Bench::new(true).await;
    let t = Instant::now();
    for events in commands {
        b.apply(Command::OpenLineage { tenant: tenant.clone(), events, foreign: Vec::new() }).await;
    }
    let el = t.elapsed();
    println!(
        "openlineage  {total} events in {n_commands} commands ({:.1} KiB/event)   {:>7.0} events/s",
        bytes as f64 / total as f64 / 1024.0,
        total as f64 / el.as_secs_f64()
    );
    total as f64 / el.as_secs_f64()
}
