//! Cross-shard lineage through the router, on a local mesh of three shard groups (real Raft,
//! mTLS, SQLite; one replica per group by default): a generated lineage graph is loaded through
//! the router, the shard outboxes are left to deliver every cross-group reference, then
//! `LineageService/Expand` and `SearchService/Search` latencies are measured through the router.
//! Prints a markdown table (also written to `target/bench/router_lineage.md`); asserts nothing
//! about speed.
//!
//! The graph: W chains of D stages. Chain c has datasets `mm://<tenant>/dataset/c<c>-s<d>` for d
//! in 0..=D and runs `mm://<tenant>/run/c<c>-s<d>` for d in 0..D; run (c, d) `consumed` dataset
//! (c, d) and dataset (c+1 mod W, d) (fan-in 2) and `produced` dataset (c, d+1). Tenants t0..t5,
//! two per group; chains come in blocks of one tenant, and about 30 % of chains have another
//! tenant than chain c+1 (uniformly one of the five others), so that share of the second inputs
//! crosses tenants, four in five of those crossing groups. Every edge is stored by its run's
//! tenant; a cross-group edge reaches the other group as a remote reference through the shard
//! outbox, asynchronously.
//!
//! ```sh
//! cargo bench -p metamesh-router --bench lineage              # W=24,400, D=20: 1,000,400 nodes
//! MM_BENCH_SMOKE=1 cargo bench -p metamesh-router --bench lineage   # W=200, D=10, few queries
//! MM_BENCH_CHAINS=2000 MM_BENCH_STAGES=20 ...                  # scale (W, D)
//! MM_BENCH_REPLICAS=3 ...                                      # three replicas per group
//! MM_BENCH_QUERIES=2000 ...                                    # 10-hop expansions measured
//! MM_BENCH_LOAD=direct ...                                     # load into each group's leader
//! ```
//! (`METAMESH_BENCH_*` names are read too, as the other benches spell them.)

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use metamesh_testkit::policy::{all_rights, write_policy};
use tonic::transport::Channel;

const TENANTS: [&str; 6] = ["t0", "t1", "t2", "t3", "t4", "t5"];
const GROUPS: [(&str, &[&str]); 3] = [("g0", &["t0", "t1"]), ("g1", &["t2", "t3"]), ("g2", &["t4", "t5"])];
/// Entities per PutEntities and edges per AddEdges.
const BATCH: usize = 1_000;
/// Requests in flight per group while loading: one applying, one on the wire.
const IN_FLIGHT: usize = 2;
/// The writer and reader of everything (every role in every tenant).
const CLIENT: &str = "bench";

fn group_of(tenant: usize) -> usize {
    tenant / 2
}

fn env(name: &str) -> Option<String> {
    std::env::var(format!("MM_BENCH_{name}")).or_else(|_| std::env::var(format!("METAMESH_BENCH_{name}"))).ok()
}

fn env_usize(name: &str) -> Option<usize> {
    env(name).map(|v| v.replace(['_', ','], "").parse().unwrap_or_else(|_| panic!("MM_BENCH_{name}={v}: not a number")))
}

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A node of the model: (is a run, chain, stage).
type Node = (bool, usize, usize);

/// The generated graph; URNs and edges are derived on demand.
struct Graph {
    chains: usize,
    stages: usize,
    /// Tenant index of each chain.
    tenant: Vec<usize>,
}

impl Graph {
    fn generate(chains: usize, stages: usize, rng: &mut Rng) -> Graph {
        assert!(chains >= 2 && stages >= 1, "need at least 2 chains and 1 stage");
        let mut tenant = Vec::with_capacity(chains);
        let mut t = 0;
        for c in 0..chains {
            if c > 0 && rng.below(10) < 3 {
                t = (t + 1 + rng.below(TENANTS.len() - 1)) % TENANTS.len();
            }
            tenant.push(t);
        }
        Graph { chains, stages, tenant }
    }

    fn nodes(&self) -> usize {
        self.chains * (2 * self.stages + 1)
    }

    fn edges(&self) -> usize {
        self.chains * self.stages * 3
    }

    fn next(&self, c: usize) -> usize {
        (c + 1) % self.chains
    }

    fn prev(&self, c: usize) -> usize {
        (c + self.chains - 1) % self.chains
    }

    fn dataset(&self, c: usize, s: usize) -> String {
        format!("mm://{}/dataset/c{c}-s{s}", TENANTS[self.tenant[c]])
    }

    fn run(&self, c: usize, s: usize) -> String {
        format!("mm://{}/run/c{c}-s{s}", TENANTS[self.tenant[c]])
    }

    /// Chains whose tenant differs from their neighbour's, and of those, whose group does.
    fn crossings(&self) -> (usize, usize) {
        let tenants = (0..self.chains).filter(|&c| self.tenant[c] != self.tenant[self.next(c)]).count();
        let groups =
            (0..self.chains).filter(|&c| group_of(self.tenant[c]) != group_of(self.tenant[self.next(c)])).count();
        (tenants, groups)
    }

    /// The entities of chain `c`.
    fn entities(&self, c: usize) -> impl Iterator<Item = v1::PutEntityRequest> + '_ {
        let datasets = (0..=self.stages).map(move |s| (self.dataset(c, s), s));
        let runs = (0..self.stages).map(move |s| (self.run(c, s), s));
        datasets.chain(runs).map(move |(urn, s)| v1::PutEntityRequest {
            urn,
            status: "active".into(),
            properties_json: format!(r#"{{"chain":{c},"stage":{s}}}"#),
            ..Default::default()
        })
    }

    /// The edges of chain `c`, all stored by its tenant (the run end's).
    fn chain_edges(&self, c: usize) -> impl Iterator<Item = v1::EdgeSpec> + '_ {
        let edge = |from: String, kind: &str, to: String| v1::EdgeSpec {
            from_urn: from,
            to_urn: to,
            kind: kind.into(),
            ..Default::default()
        };
        (0..self.stages).flat_map(move |s| {
            [
                edge(self.dataset(c, s), "consumed", self.run(c, s)),
                edge(self.dataset(self.next(c), s), "consumed", self.run(c, s)),
                edge(self.run(c, s), "produced", self.dataset(c, s + 1)),
            ]
        })
    }

    fn neighbours(&self, (is_run, c, s): Node, downstream: bool) -> Vec<Node> {
        match (is_run, downstream) {
            (false, true) if s < self.stages => vec![(true, c, s), (true, self.prev(c), s)],
            (true, true) => vec![(false, c, s + 1)],
            (false, false) if s > 0 => vec![(true, c, s - 1)],
            (true, false) => vec![(false, c, s), (false, self.next(c), s)],
            _ => Vec::new(),
        }
    }

    /// How many nodes a walk of `depth` hops from these datasets reaches: what an answer must
    /// hold when it is not cut at `max_nodes`.
    fn reach(&self, starts: &[(usize, usize)], downstream: bool, depth: u32) -> usize {
        let mut frontier: Vec<Node> = starts.iter().map(|&(c, s)| (false, c, s)).collect();
        let mut seen: HashSet<Node> = frontier.iter().copied().collect();
        for _ in 0..depth {
            let mut next = Vec::new();
            for n in frontier {
                next.extend(self.neighbours(n, downstream).into_iter().filter(|m| seen.insert(*m)));
            }
            frontier = next;
        }
        seen.len()
    }
}

/// Cuts an iterator into vectors of `n`.
fn chunks<I: Iterator>(mut it: I, n: usize) -> impl Iterator<Item = Vec<I::Item>> {
    std::iter::from_fn(move || {
        let chunk: Vec<I::Item> = it.by_ref().take(n).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// Batches of one tenant's items, with the tenant.
type Batches<'g, T> = Box<dyn Iterator<Item = (usize, Vec<T>)> + Send + 'g>;

/// Per group, its tenants' batches in order (a batch holds one tenant).
fn per_group<'g, T: 'g, F, I>(graph: &'g Graph, items: F) -> Vec<Batches<'g, T>>
where
    F: Fn(usize) -> I + Copy + Send + 'g,
    I: Iterator<Item = T> + Send + 'g,
{
    (0..GROUPS.len())
        .map(|g| {
            let batches = (0..TENANTS.len()).filter(move |&t| group_of(t) == g).flat_map(move |t| {
                let chains = (0..graph.chains).filter(move |&c| graph.tenant[c] == t);
                chunks(chains.flat_map(items), BATCH).map(move |b| (t, b))
            });
            Box::new(batches) as Batches<'g, T>
        })
        .collect()
}

/// Sends every group's batches on its channel, `IN_FLIGHT` at a time per group, all groups at
/// once, printing progress; returns the time it took.
async fn phase<T, F, Fut>(
    what: &'static str,
    total: usize,
    channels: &[Channel],
    batches: Vec<Batches<'_, T>>,
    quiet: bool,
    send: F,
) -> Duration
where
    F: Fn(Channel, usize, usize, Vec<T>) -> Fut + Copy,
    Fut: Future<Output = usize>,
{
    let done = Arc::new(AtomicUsize::new(0));
    let tick = ticker(what, total, done.clone(), quiet);
    let t = Instant::now();
    let groups = channels.iter().zip(batches).enumerate().map(|(g, (ch, it))| {
        futures_util::stream::iter(
            it.enumerate().map(move |(i, (t, batch))| send(ch.clone(), g * 1_000_000 + i, t, batch)),
        )
        .buffer_unordered(IN_FLIGHT)
        .for_each(|n| {
            done.fetch_add(n, Ordering::Relaxed);
            async {}
        })
    });
    futures_util::future::join_all(groups).await;
    let took = t.elapsed();
    tick.abort();
    assert_eq!(done.load(Ordering::Relaxed), total);
    println!("{what}: {total} in {:.1} s = {:.0} {what}/s", took.as_secs_f64(), total as f64 / took.as_secs_f64());
    took
}

async fn put_entities(ch: Channel, id: usize, _tenant: usize, entities: Vec<v1::PutEntityRequest>) -> usize {
    let n = entities.len();
    let request = v1::PutEntitiesRequest { request_id: format!("bench:put:{id}"), entities };
    CatalogServiceClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .put_entities(request)
        .await
        .unwrap_or_else(|s| panic!("PutEntities batch {id}: {s}"));
    n
}

async fn add_edges(ch: Channel, id: usize, tenant: usize, edges: Vec<v1::EdgeSpec>) -> usize {
    let n = edges.len();
    let request = v1::AddEdgesRequest { request_id: format!("bench:link:{id}"), tenant: TENANTS[tenant].into(), edges };
    LineageServiceClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .add_edges(request)
        .await
        .unwrap_or_else(|s| panic!("AddEdges batch {id}: {s}"));
    n
}

/// Prints progress every 15 s while a phase runs (not in smoke runs).
fn ticker(what: &'static str, total: usize, done: Arc<AtomicUsize>, quiet: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(15)).await;
            if !quiet {
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / start.elapsed().as_secs_f64();
                eprintln!("  … {n}/{total} {what} ({rate:.0}/s)");
            }
        }
    })
}

/// Waits until no replica of any group holds an undelivered outbox entry.
async fn drain_outboxes(admins: &[(String, Vec<AdminServiceClient<Channel>>)], quiet: bool) {
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let mut pending = Vec::new();
        for (group, clients) in admins {
            let mut most = 0;
            for c in clients {
                let h =
                    c.clone().health(v1::HealthRequest {}).await.unwrap_or_else(|s| panic!("health of {group}: {s}"));
                most = most.max(h.into_inner().outbox_pending);
            }
            pending.push((group.as_str(), most));
        }
        if pending.iter().all(|(_, n)| *n == 0) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(3600), "outboxes not empty after an hour: {pending:?}");
        if !quiet && last_print.elapsed() > Duration::from_secs(15) {
            eprintln!("  … outbox pending {pending:?}");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Latency and answer size of one query.
#[derive(Clone, Copy)]
struct Sample {
    latency: Duration,
    size: usize,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// One row of the figures: count, mean size, p50, p99 (ms).
struct Row {
    name: String,
    count: usize,
    mean_size: f64,
    p50: f64,
    p99: f64,
}

fn row(name: impl Into<String>, samples: &[Sample]) -> Option<Row> {
    if samples.is_empty() {
        return None;
    }
    let mut lat: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    lat.sort();
    Some(Row {
        name: name.into(),
        count: samples.len(),
        mean_size: samples.iter().map(|s| s.size).sum::<usize>() as f64 / samples.len() as f64,
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
    })
}

/// A latency target of the issue.
struct Target {
    text: &'static str,
    p50_ms: f64,
    p99_ms: f64,
}

/// Answers whose size disagrees with the model, and answers partial for another reason than
/// the node limit.
#[derive(Default)]
struct Checks {
    wrong: usize,
    first_wrong: Option<String>,
    partial: usize,
    first_partial: Option<String>,
}

/// A query: start datasets, direction (downstream?), hops.
type Query = (Vec<(usize, usize)>, bool, u32);

struct Expander {
    /// Through the router.
    client: LineageServiceClient<Channel>,
    /// A replica of each group, called directly: what one shard's part of a walk costs.
    direct: Vec<LineageServiceClient<Channel>>,
    checks: Checks,
}

const MAX_NODES: u32 = 1_000;

fn expand_request(graph: &Graph, starts: &[(usize, usize)], downstream: bool, depth: u32) -> v1::ExpandRequest {
    v1::ExpandRequest {
        urns: starts.iter().map(|&(c, s)| graph.dataset(c, s)).collect(),
        direction: if downstream { v1::Direction::Downstream } else { v1::Direction::Upstream } as i32,
        max_depth: depth,
        max_nodes: MAX_NODES,
        ..Default::default()
    }
}

impl Expander {
    async fn expand(&mut self, graph: &Graph, starts: &[(usize, usize)], downstream: bool, depth: u32) -> Sample {
        let request = expand_request(graph, starts, downstream, depth);
        let t = Instant::now();
        let reply = self.client.expand(request).await.unwrap_or_else(|s| panic!("expand {starts:?}: {s}")).into_inner();
        let latency = t.elapsed();
        let want = graph.reach(starts, downstream, depth).min(MAX_NODES as usize);
        if reply.nodes.len() != want {
            self.checks.wrong += 1;
            self.checks.first_wrong.get_or_insert_with(|| {
                format!("{starts:?} downstream={downstream} depth={depth}: {} nodes, want {want}", reply.nodes.len())
            });
        }
        if reply.partial_reasons.iter().any(|r| r.code != "MAX_NODES") {
            self.checks.partial += 1;
            self.checks.first_partial.get_or_insert_with(|| format!("{starts:?}: {:?}", reply.partial_reasons));
        }
        Sample { latency, size: reply.nodes.len() }
    }

    /// The same query sent to the first start's group alone (its starts in that group only):
    /// the local part of the walk and the remote frontier, no router.
    async fn expand_direct(&mut self, graph: &Graph, (starts, downstream, depth): &Query) -> Sample {
        let group = group_of(graph.tenant[starts[0].0]);
        let starts: Vec<(usize, usize)> =
            starts.iter().copied().filter(|&(c, _)| group_of(graph.tenant[c]) == group).collect();
        let request = expand_request(graph, &starts, *downstream, *depth);
        let t = Instant::now();
        let reply =
            self.direct[group].expand(request).await.unwrap_or_else(|s| panic!("direct expand {starts:?}: {s}"));
        Sample { latency: t.elapsed(), size: reply.into_inner().nodes.len() }
    }
}

/// `n` searches for chain names through the router (after 5 unmeasured), or why there are none.
async fn search(reader: Channel, rng: &mut Rng, chains: usize, n: usize) -> Result<Vec<Sample>, String> {
    let mut client = SearchServiceClient::new(reader).max_decoding_message_size(64 << 20);
    let mut found = Vec::new();
    for i in 0..n + 5 {
        let request =
            v1::SearchRequest { query: format!("c{}", rng.below(chains)), page_size: 20, ..Default::default() };
        let t = Instant::now();
        match client.search(request).await {
            Ok(reply) if i >= 5 => found.push(Sample { latency: t.elapsed(), size: reply.into_inner().hits.len() }),
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::Unimplemented => return Err("n/a (unimplemented)".into()),
            Err(s) => return Err(format!("n/a (error: {:?} {})", s.code(), s.message())),
        }
    }
    Ok(found)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let smoke = env("SMOKE").is_some_and(|v| v != "0");
    let chains = env_usize("CHAINS").unwrap_or(if smoke { 200 } else { 24_400 });
    let stages = env_usize("STAGES").unwrap_or(if smoke { 10 } else { 20 });
    let replicas = env_usize("REPLICAS").unwrap_or(1) as u64;
    let queries = env_usize("QUERIES").unwrap_or(if smoke { 100 } else { 1_000 });
    let (large_queries, searches) = ((queries / 5).max(10), (queries / 2).max(20));
    let direct = env("LOAD").is_some_and(|v| v == "direct");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let graph = Graph::generate(chains, stages, &mut rng);
    let (cross_tenant, cross_group) = graph.crossings();
    let header = format!(
        "router lineage bench: {} groups × {replicas} replica(s), W={chains} chains × D={stages} stages = {} nodes, \
         {} edges; {:.1} % of fan-in edges cross tenants, {:.1} % cross groups; loaded {}",
        GROUPS.len(),
        graph.nodes(),
        graph.edges(),
        100.0 * cross_tenant as f64 / chains as f64,
        100.0 * cross_group as f64 / chains as f64,
        if direct { "into each group's leader" } else { "through the router" },
    );
    println!("{header}");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = MeshSpec::new(&GROUPS, replicas);
    spec.policy =
        Arc::new(|dir: &std::path::Path| write_policy(dir, &all_rights(&[LocalMesh::principal(CLIENT)]), &[]));
    let t = Instant::now();
    let mesh = LocalMesh::start(dir.path(), spec).await.expect("mesh");
    println!("mesh up in {:.1} s", t.elapsed().as_secs_f64());

    // Admin clients on every replica (the outbox backlog), and the load channels.
    let ops = mesh.client_tls("ops");
    let mut admins = Vec::new();
    let mut channels = Vec::new();
    for (group, _) in GROUPS {
        let mut clients = Vec::new();
        for id in 1..=replicas {
            let ch = mesh.replica(group, id, ops.clone()).await.expect("replica up");
            clients.push(AdminServiceClient::new(ch));
        }
        channels.push(if direct {
            let status = clients[0].clone().status(v1::StatusRequest {}).await.expect("status").into_inner();
            let leader = status.leader_id.unwrap_or(1);
            mesh.replica(group, leader, mesh.client_tls(CLIENT)).await.expect("leader up")
        } else {
            mesh.router(CLIENT).await
        });
        admins.push((group.to_string(), clients));
    }

    // Load: every entity first (an edge's local ends must exist), then every edge.
    let entities = per_group(&graph, |c| graph.entities(c));
    let entity_time = phase("entities", graph.nodes(), &channels, entities, smoke, put_entities).await;
    let edges = per_group(&graph, |c| graph.chain_edges(c));
    let edge_time = phase("edges", graph.edges(), &channels, edges, smoke, add_edges).await;
    let t = Instant::now();
    drain_outboxes(&admins, smoke).await;
    let drain_time = t.elapsed();
    let remote = cross_group * stages;
    println!("outboxes empty {:.1} s after the last edge ({remote} remote references)", drain_time.as_secs_f64());

    // Queries, one at a time, through the router.
    let reader = mesh.router(CLIENT).await;
    let mut direct = Vec::new();
    for (group, _) in GROUPS {
        let ch = mesh.replica(group, 1, mesh.client_tls(CLIENT)).await.expect("replica up");
        direct.push(LineageServiceClient::new(ch).max_decoding_message_size(64 << 20));
    }
    let mut ex = Expander {
        client: LineageServiceClient::new(reader.clone()).max_decoding_message_size(64 << 20),
        direct,
        checks: Checks::default(),
    };
    for i in 0..20 {
        let c = rng.below(chains);
        ex.expand(&graph, &[(c, rng.below(stages + 1))], i % 2 == 0, 10).await;
    }
    let (mut down, mut up) = (Vec::new(), Vec::new());
    let mut asked: Vec<Query> = Vec::new();
    for i in 0..queries {
        let start = (rng.below(chains), rng.below(stages + 1));
        if i % 2 == 0 {
            down.push(ex.expand(&graph, &[start], true, 10).await);
        } else {
            up.push(ex.expand(&graph, &[start], false, 10).await);
        }
        asked.push((vec![start], i % 2 == 0, 10));
    }
    // Large answers: 50 hops from stage 0 downstream (or stage D upstream), from as many starts
    // (spread over the chains) as make about 1,000 nodes.
    let one = graph.reach(&[(0, 0)], true, 50);
    let k = ((1_000.0 / one as f64).round() as usize).clamp(1, chains);
    let mut large = Vec::new();
    for i in 0..large_queries {
        let c0 = rng.below(chains);
        let downstream = i % 2 == 0;
        let stage = if downstream { 0 } else { stages };
        let starts: Vec<(usize, usize)> = (0..k).map(|j| ((c0 + j * chains / k) % chains, stage)).collect();
        large.push(ex.expand(&graph, &starts, downstream, 50).await);
        asked.push((starts, downstream, 50));
    }
    // The same queries on one shard, for comparison.
    let (mut direct_small, mut direct_large) = (Vec::new(), Vec::new());
    for q in &asked {
        let sample = ex.expand_direct(&graph, q).await;
        if q.2 == 10 {
            direct_small.push(sample)
        } else {
            direct_large.push(sample)
        }
    }
    let all: Vec<Sample> = down.iter().chain(&up).chain(&large).copied().collect();
    let small: Vec<Sample> = all.iter().filter(|s| s.size <= 50).copied().collect();
    let middle: Vec<Sample> = all.iter().filter(|s| s.size > 50 && s.size < 900).copied().collect();
    let big: Vec<Sample> = all.iter().filter(|s| s.size >= 900).copied().collect();

    let found = search(reader, &mut rng, chains, searches).await;
    mesh.shutdown().await;

    // The figures.
    let small_target = Target { text: "p50 ≤ 2.5 ms, p99 ≤ 10 ms", p50_ms: 2.5, p99_ms: 10.0 };
    let large_target = Target { text: "p99 ≤ 50 ms", p50_ms: f64::INFINITY, p99_ms: 50.0 };
    let figures = |r: Option<Row>| {
        r.map(|r| serde_json::json!({"count": r.count, "mean_nodes": r.mean_size, "p50_ms": r.p50, "p99_ms": r.p99}))
    };
    let json = serde_json::json!({
        "smoke": smoke, "groups": GROUPS.len(), "replicas": replicas, "chains": chains, "stages": stages,
        "nodes": graph.nodes(), "edges": graph.edges(),
        "load": {"entities_per_s": graph.nodes() as f64 / entity_time.as_secs_f64(),
                 "edges_per_s": graph.edges() as f64 / edge_time.as_secs_f64(),
                 "outbox_drain_s": drain_time.as_secs_f64()},
        "down10": figures(row("", &down)), "up10": figures(row("", &up)),
        "small": figures(row("", &small)), "large": figures(row("", &large)),
        "direct_small": figures(row("", &direct_small)),
        "search": found.as_ref().ok().and_then(|f| figures(row("", f))),
    });
    let mut rows = vec![
        (row("Expand 10 hops downstream (all answers)", &down), None),
        (row("Expand 10 hops upstream (all answers)", &up), None),
        (row(format!("Expand 50 hops from stage 0 / D, {k} start(s)"), &large), None),
        (row("answers ≤ 50 nodes (all expansions)", &small), Some(small_target)),
        (row("answers 51–899 nodes", &middle), None),
        (row("answers ≥ 900 nodes", &big), Some(large_target)),
        (row("(no router) the 10-hop queries on the start's group only", &direct_small), None),
        (row("(no router) the 50-hop queries on the first start's group only", &direct_large), None),
    ];
    if let Ok(found) = &found {
        rows.push((row("Search \"c<n>\", page_size 20 (size = hits)", found), None));
    }
    let mut table = String::new();
    table.push_str(&format!("{header}\n\n"));
    table.push_str("| load | count | seconds | rate |\n|---|---|---|---|\n");
    for (rpc, n, what, took) in
        [("PutEntities", graph.nodes(), "entities", entity_time), ("AddEdges", graph.edges(), "edges", edge_time)]
    {
        let (secs, rate) = (took.as_secs_f64(), n as f64 / took.as_secs_f64());
        table.push_str(&format!("| {rpc}, batches of {BATCH} | {n} {what} | {secs:.1} | {rate:.0} {what}/s |\n"));
    }
    table.push_str(&format!(
        "| outbox drain after the last edge | {remote} remote references | {:.1} | — |\n\n",
        drain_time.as_secs_f64()
    ));
    table.push_str("| query (through the router) | count | mean nodes | p50 ms | p99 ms | target | met |\n");
    table.push_str("|---|---|---|---|---|---|---|\n");
    for (r, target) in rows {
        let Some(r) = r else { continue };
        let (target, met) = match target {
            Some(t) if r.p50 <= t.p50_ms && r.p99 <= t.p99_ms => (t.text, "yes"),
            Some(t) => (t.text, "**no**"),
            None => ("—", ""),
        };
        table.push_str(&format!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {target} | {met} |\n",
            r.name, r.count, r.mean_size, r.p50, r.p99
        ));
    }
    if let Err(note) = &found {
        table.push_str(&format!("| Search \"c<n>\", page_size 20 | — | — | {note} | | — | |\n"));
    }
    let checked = down.len() + up.len() + large.len() + 20;
    table.push_str(&format!(
        "\nanswers checked against the generated graph: {} of {checked} have the expected number of nodes{}; \
         {} partial for another reason than max_nodes{}\n",
        checked - ex.checks.wrong,
        ex.checks.first_wrong.map(|w| format!(" (first wrong: {w})")).unwrap_or_default(),
        ex.checks.partial,
        ex.checks.first_partial.map(|p| format!(" (first: {p})")).unwrap_or_default(),
    ));
    table.push_str(&format!("whole run {:.0} s\n", started.elapsed().as_secs_f64()));
    println!("\n{table}");
    let out = metamesh_testkit::bench::out_dir();
    std::fs::write(out.join("router_lineage.md"), &table).expect("router_lineage.md");
    println!("written to {}", out.join("router_lineage.md").display());
    metamesh_testkit::bench::save("router_lineage", &json);
}
