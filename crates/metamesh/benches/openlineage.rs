//! OpenLineage through the router's HTTPS API: ingest rate of the corpus replayed many times
//! (one event per request, then the batch endpoint), and `GET /api/v1/lineage` at depth 20
//! once the mesh holds them all.
//!
//! A local mesh: two shard groups of three replicas (s1: fraud, platform; s2: growth; Raft over
//! loopback mTLS, fsynced logs, SQLite state), a router with its HTTPS listener; the client is
//! this process, over h2 with a bearer API key (the `admin` of the repository's policies). The
//! events are `tests/corpus/openlineage` (every file but the template), each copy with new
//! run ids and its jobs and datasets renamed into one of `PIPELINES` pipeline copies, so the
//! graph grows wide and runs pile up on every job as they would in production; plus chains of
//! 25 jobs alternating between fraud and growth (every edge between stages crosses tenants and
//! shard groups), from which lineage is asked at depth 20. Corpus namespaces map to `platform`
//! (the dev mesh's default tenant).
//!
//! ```sh
//! cargo bench -p metamesh --bench openlineage                        # 100,000 events
//! METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh --bench openlineage # seconds
//! METAMESH_BENCH_EVENTS=20000 METAMESH_BENCH_BATCH=1000 METAMESH_BENCH_SINGLE=1000 ...
//! ```
//! Prints a table and writes `target/bench/openlineage.json`. Asserts nothing about speed;
//! fails if the mesh refuses an event or a lineage answer is wrong.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use metamesh_openlineage::workload;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use serde_json::{json, Value};

const PIPELINES: usize = 20;
const CHAIN_STAGES: usize = 25;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(format!("METAMESH_BENCH_{name}")).ok().map(|v| {
        v.replace(['_', ','], "").parse().unwrap_or_else(|_| panic!("METAMESH_BENCH_{name}={v}: not a number"))
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// Chain `c`: its stages alternate between fraud (even) and growth (odd).
fn chain(c: usize) -> Vec<Value> {
    workload::chain(c, CHAIN_STAGES, |s| if s % 2 == 0 { "fraud" } else { "growth" }.to_owned())
}

/// An h2 connection to the router's HTTPS API.
#[derive(Clone)]
struct Client {
    send: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    base: String,
    auth: String,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, ca: &Path, key: &str) -> Client {
        let roots = metamesh_tls::config::load_roots(ca).expect("the CA");
        let mut config = (*metamesh_tls::config::anonymous_client_config(roots).expect("a client config")).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("router reachable");
        tcp.set_nodelay(true).expect("nodelay");
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
        let (send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        Client { send, base: format!("https://{addr}"), auth: format!("Bearer {key}") }
    }

    /// One request; a 503 (retryable, as OpenLineage clients treat it) is sent again.
    async fn call(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        for _ in 0..20 {
            let answer = self.call_once(method, path, body.clone()).await;
            if answer.0 != 503 {
                return answer;
            }
            eprintln!("503 from {path}: {}; retrying", answer.1.to_string().chars().take(200).collect::<String>());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.call_once(method, path, body).await
    }

    async fn call_once(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a request");
        self.send.ready().await.expect("connection ready");
        let response = self.send.send_request(request).await.expect("an answer");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let smoke = std::env::var_os("METAMESH_BENCH_SMOKE").is_some();
    let total = env_usize("EVENTS").unwrap_or(if smoke { 1_500 } else { 100_000 });
    let singles = env_usize("SINGLE").unwrap_or(if smoke { 100 } else { 2_000 });
    let batch = env_usize("BATCH").unwrap_or(500);
    let concurrency = env_usize("CONCURRENCY").unwrap_or(4);
    let iterations = env_usize("ITERATIONS").unwrap_or(if smoke { 20 } else { 500 });
    let chains = env_usize("CHAINS").unwrap_or(if smoke { 2 } else { 20 });

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut spec = MeshSpec::new(&[("s1", &["fraud", "platform"]), ("s2", &["growth"])], 3);
    spec.clients = vec!["admin".into()];
    spec.openlineage_default_tenant = Some("platform".into());
    spec.policy = Arc::new(|dir: &Path| {
        let admin = LocalMesh::principal("admin");
        metamesh_testkit::policy::write_policy(dir, &metamesh_testkit::policy::all_rights(&[admin]), &[]);
    });
    let mesh = LocalMesh::start(dir.path(), spec).await.expect("the mesh starts");
    let key = mesh.api_key("admin").expect("admin's API key");
    let mut client = Client::connect(mesh.layout.router_http, &mesh.dir.join("certs/ca.pem"), &key).await;

    let corpus_dir = root().join("tests/corpus/openlineage");
    let corpus = workload::read_corpus(&corpus_dir).expect("the corpus");
    assert!(corpus.len() > 50, "the corpus at {} holds {} events", corpus_dir.display(), corpus.len());
    let mut events: Vec<Value> = (0..chains).flat_map(chain).collect();
    let mut k = 0;
    while events.len() < total {
        events.extend(workload::corpus_copy(&corpus, k, PIPELINES));
        k += 1;
    }
    events.truncate(total.max(chains * CHAIN_STAGES * 2));
    let bodies: Vec<Vec<u8>> = events.iter().map(|e| serde_json::to_vec(e).expect("JSON")).collect();
    println!(
        "openlineage bench: {} events ({} corpus events x {k} copies into {PIPELINES} pipelines, {chains} chains of {CHAIN_STAGES} stages), 2 shard groups x 3 replicas",
        bodies.len(),
        corpus.len()
    );
    // The chains first, so that lineage has its long paths whatever the sizes.
    let (chain_bodies, rest) = bodies.split_at(chains * CHAIN_STAGES * 2);
    let mut done = 0usize;

    // 1. One event per request, one at a time: the latency a client sees.
    let single_n = singles.min(rest.len());
    let mut latencies = Vec::with_capacity(single_n);
    let started = Instant::now();
    for body in &rest[..single_n] {
        let t = Instant::now();
        let (status, answer) = client.call("POST", "/api/v1/lineage", Some(body.clone())).await;
        assert_eq!(status, 201, "a single event refused: {answer}");
        latencies.push(t.elapsed());
    }
    let single_rate = single_n as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    done += single_n;

    // 2. One event per request, `concurrency` in flight.
    let conc_n = singles.min(rest.len() - done);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for part in rest[done..done + conc_n].chunks(conc_n.div_ceil(concurrency).max(1)) {
        let (mut client, part) = (client.clone(), part.to_vec());
        tasks.spawn(async move {
            for body in part {
                let (status, answer) = client.call("POST", "/api/v1/lineage", Some(body)).await;
                assert_eq!(status, 201, "a single event refused: {answer}");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a sender");
    }
    let conc_rate = conc_n as f64 / started.elapsed().as_secs_f64();
    done += conc_n;

    // 3. The batch endpoint: the chains, then everything else, `concurrency` batches in flight.
    let batch_bodies: Vec<Vec<u8>> = chain_bodies.iter().chain(&rest[done..]).cloned().collect();
    let batches: Vec<Vec<u8>> = batch_bodies
        .chunks(batch)
        .map(|c| {
            let mut out = b"[".to_vec();
            for (i, b) in c.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b);
            }
            out.push(b']');
            out
        })
        .collect();
    // The chains must be in before the rest runs in parallel with them: their order matters.
    let chain_batches = chain_bodies.len().div_ceil(batch);
    for b in &batches[..chain_batches] {
        let (status, answer) = client.call("POST", "/api/v1/lineage/batch", Some(b.clone())).await;
        assert_eq!(status, 200, "a batch refused: {answer}");
    }
    let started = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(batches[chain_batches..].to_vec()));
    let mut batch_latencies = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (mut client, queue) = (client.clone(), queue.clone());
        tasks.spawn(async move {
            let mut seen = Vec::new();
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else { return seen };
                let t = Instant::now();
                let (mut status, mut answer) = client.call("POST", "/api/v1/lineage/batch", Some(body.clone())).await;
                // A partial success whose failures are all retryable (a shard group briefly
                // without a leader) is sent again, as a client would: stored events are skipped.
                for _ in 0..10 {
                    let retryable = answer["results"]
                        .as_array()
                        .is_some_and(|r| r.iter().all(|r| r["status"] == "success" || r["code"] == 503));
                    if status != 207 || !retryable {
                        break;
                    }
                    eprintln!("207 with retryable failures; sending the batch again");
                    (status, answer) = client.call("POST", "/api/v1/lineage/batch", Some(body.clone())).await;
                }
                let failed: Vec<&Value> = answer["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["status"] != "success")
                    .take(3)
                    .collect();
                assert_eq!(
                    status, 200,
                    "a batch refused: {} of {}; first: {failed:?}",
                    answer["failed"], answer["received"]
                );
                seen.push(t.elapsed());
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        batch_latencies.extend(r.expect("a sender"));
    }
    let batch_n = batch_bodies.len() - chain_bodies.len();
    let batch_rate = batch_n as f64 / started.elapsed().as_secs_f64();
    batch_latencies.sort();

    // 4. Lineage at depth 20 from the chains' early datasets (each answer crosses tenants and
    //    shard groups at every stage), then from corpus datasets.
    let mut lineage = Vec::with_capacity(iterations);
    let mut nodes_seen = 0usize;
    for i in 0..iterations {
        let (c, s) = (i % chains, (i / chains) % 5 + 1);
        let ns = if (s - 1) % 2 == 0 { "fraud" } else { "growth" };
        let path = format!("/api/v1/lineage?nodeId=dataset:{ns}:chain{c}.d{s}&depth=20");
        let t = Instant::now();
        let (status, answer) = client.call("GET", &path, None).await;
        lineage.push(t.elapsed());
        assert_eq!(status, 200, "{path}: {answer}");
        let graph = answer["graph"].as_array().expect("a graph");
        // Marquez's walk starts at the dataset's writer, stage s-1, and reaches the jobs up to
        // 20 stages away, with their datasets: each job's output, and the input of the lowest
        // (stage 0 reads nothing).
        let (first, lowest) = (s - 1, (s - 1).saturating_sub(20));
        let jobs = (first + 20).min(CHAIN_STAGES - 1) - lowest + 1;
        let datasets = jobs + usize::from(lowest > 0);
        assert_eq!(graph.len(), jobs + datasets, "{path}: {} nodes", graph.len());
        nodes_seen += graph.len();
    }
    lineage.sort();
    let (status, corpus_answer) =
        client.call("GET", "/api/v1/lineage?nodeId=job:grandmas.kitchen:gather_apples.p0&depth=20", None).await;

    let report = json!({
        "events": bodies.len(),
        "single": {"events": single_n, "per_s": single_rate, "p50_ms": percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                   "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1e3},
        "single_concurrent": {"events": conc_n, "concurrency": concurrency, "per_s": conc_rate},
        "batch": {"events": batch_n, "batch": batch, "concurrency": concurrency, "per_s": batch_rate,
                  "p50_ms": percentile(&batch_latencies, 0.5).as_secs_f64() * 1e3},
        "lineage_depth20": {"iterations": iterations, "nodes": nodes_seen / iterations.max(1),
                            "p50_ms": percentile(&lineage, 0.5).as_secs_f64() * 1e3,
                            "p99_ms": percentile(&lineage, 0.99).as_secs_f64() * 1e3},
    });
    println!("\n| workload | figure |\n|---|---|");
    println!(
        "| single events, 1 in flight | {single_rate:.0} events/s, p50 {}, p99 {} |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    println!("| single events, {concurrency} in flight | {conc_rate:.0} events/s |");
    println!(
        "| batch endpoint, {batch}/batch, {concurrency} in flight | **{batch_rate:.0} events/s** (p50 {} per batch) |",
        ms(percentile(&batch_latencies, 0.5))
    );
    println!(
        "| /api/v1/lineage depth 20 ({} nodes, a tenant crossing at every stage) after {} events | p50 {}, p99 {} |",
        nodes_seen / iterations.max(1),
        bodies.len(),
        ms(percentile(&lineage, 0.5)),
        ms(percentile(&lineage, 0.99))
    );
    println!("(corpus job lineage: status {status}, {} nodes)", corpus_answer["graph"].as_array().map_or(0, Vec::len));
    metamesh_testkit::bench::save("openlineage", &report);
    mesh.shutdown().await;
}
