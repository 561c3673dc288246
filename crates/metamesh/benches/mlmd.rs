//! MLMD (`ml_metadata.MetadataStoreService`) with the real `ml-metadata` Python client, in one
//! run against three targets: metamesh's router over mutual TLS (a local mesh: one shard group
//! of three replicas, Raft and SQLite, holding tenant `fraud`, the client `fraud-writer` whose
//! only writable tenant it is), the oracle (Google's C++ engine behind gRPC,
//! `tests/mlmd/oracle_server.py`, in-memory SQLite) and MLMD's engine in the client's own process
//! on a SQLite file (no network; durable like the mesh's store). `tests/mlmd/bench.py` runs the
//! same client code against each: put_artifacts one per call and batched (the load of 100k
//! artifacts), get_artifacts with a property filter over them, get_lineage_subgraph 10 hops —
//! and prints a table per workload with the ratios mesh ÷ oracle and mesh ÷ in-process (also
//! written to `target/bench/mlmd.md` and `mlmd.json`). Asserts nothing about speed; fails when
//! a target fails or answers wrongly.
//!
//! ```sh
//! cargo bench -p metamesh --bench mlmd                          # 1,000 single puts, 100k artifacts
//! METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh --bench mlmd   # tiny sizes, seconds
//! METAMESH_BENCH_SINGLE=500 METAMESH_BENCH_ARTIFACTS=20000 METAMESH_BENCH_ITERATIONS=100 ...
//! METAMESH_BENCH_BATCH=1000 ...                                  # artifacts per batched put
//! METAMESH_BENCH_REPLICAS=1 ...                                  # replicas in the shard group
//! ```
//! Needs the Python venv of `tests/python/setup.sh` (or `METAMESH_PYTHON`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use metamesh_testkit::mesh::{LocalMesh, MeshSpec};

/// The writer of `fraud` (and of nothing else) in the repository's tenant policies.
const CLIENT: &str = "fraud-writer";
const FRAUD_POLICY: &str = include_str!("../../../policies/tenants/fraud.csv");

fn env(name: &str) -> Option<String> {
    std::env::var(format!("METAMESH_BENCH_{name}")).or_else(|_| std::env::var(format!("MM_BENCH_{name}"))).ok()
}

fn env_usize(name: &str) -> Option<usize> {
    env(name).map(|v| {
        v.replace(['_', ','], "").parse().unwrap_or_else(|_| panic!("METAMESH_BENCH_{name}={v}: not a number"))
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The Python with `ml-metadata`: `$METAMESH_PYTHON`, else the venv of tests/python/setup.sh.
fn python() -> PathBuf {
    let python = std::env::var_os("METAMESH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/py-venv/bin/python"));
    assert!(
        python.exists(),
        "no Python for the MLMD bench at {}: run tests/python/setup.sh (it creates target/py-venv with \
         ml-metadata), or set METAMESH_PYTHON to a python that has ml-metadata==1.17.1",
        python.display()
    );
    python
}

/// A child process killed (SIGKILL) and reaped when dropped, whatever happened.
struct Proc(Option<Child>);

impl Proc {
    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.0.as_mut().expect("running").wait();
        self.0 = None;
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The oracle on a free port. It also stops by itself when its stdin (held here) closes, so
/// it cannot outlive the bench even when the bench is killed.
struct Oracle {
    port: u16,
    // Dropped first: closing stdin asks the oracle to stop; the Proc then makes sure it did.
    _stdin: ChildStdin,
    _proc: Proc,
}

impl Oracle {
    fn start(log: &Path) -> Oracle {
        let mut child = Command::new(python())
            .arg(root().join("tests/mlmd/oracle_server.py"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("oracle log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting the oracle with {}: {e}", python().display()));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let proc = Proc(Some(child));
        // The first line says where it listens; the rest is drained so that it never blocks.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port = line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse::<u16>().ok()).unwrap_or_else(|| {
            panic!(
                "the oracle did not say LISTENING <port> (got {line:?}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        Oracle { port, _stdin: stdin, _proc: proc }
    }
}

fn main() {
    let started = Instant::now();
    let smoke = env("SMOKE").is_some_and(|v| !v.is_empty() && v != "0");
    let replicas = env_usize("REPLICAS").unwrap_or(3) as u64;
    let python = python();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // The mesh: fraud alone on one group; `fraud-writer` writes fraud and nothing else.
    let mut spec = MeshSpec::new(&[("s1", &["fraud"])], replicas);
    spec.clients = vec![CLIENT.to_owned()];
    spec.policy = Arc::new(|dir: &Path| metamesh_testkit::policy::write_policy(dir, "", &[("fraud", FRAUD_POLICY)]));
    let t = Instant::now();
    let mesh = runtime.block_on(LocalMesh::start(&dir.path().join("mesh"), spec)).expect("starting the mesh");
    let router = mesh.layout.router_grpc;
    eprintln!("mesh up in {:.1} s: 1 shard group × {replicas} replica(s), router {router}", t.elapsed().as_secs_f64());
    let oracle = Oracle::start(&dir.path().join("oracle.log"));
    eprintln!("oracle on 127.0.0.1:{}", oracle.port);

    let certs = mesh.dir.join("certs");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let out = target.canonicalize().unwrap_or(target).join("bench");
    let mut command = Command::new(&python);
    command
        .arg(root().join("tests/mlmd/bench.py"))
        .arg("--target")
        .arg(format!("mesh={router}:tls"))
        .arg("--target")
        .arg(format!("oracle=127.0.0.1:{}", oracle.port))
        .arg("--target")
        .arg(format!("in-process=sqlite:{}", dir.path().join("inproc.sqlite").display()))
        .arg("--ca")
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join(format!("{CLIENT}.pem")))
        .arg("--key")
        .arg(certs.join(format!("{CLIENT}.key")))
        .arg("--save")
        .arg(&out);
    if smoke {
        command.arg("--smoke");
    }
    for (var, flag) in
        [("SINGLE", "--n-single"), ("ARTIFACTS", "--n-artifacts"), ("BATCH", "--batch"), ("ITERATIONS", "--iterations")]
    {
        if let Some(n) = env_usize(var) {
            command.arg(flag).arg(n.to_string());
        }
    }
    // Its output streams through; the mesh keeps serving on the runtime's threads meanwhile.
    let mut bench =
        Proc(Some(command.stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("starting bench.py: {e}"))));
    let status = bench.wait().expect("waiting for bench.py");

    drop(oracle);
    runtime.block_on(mesh.shutdown());
    eprintln!("whole bench {:.0} s; tables in {}", started.elapsed().as_secs_f64(), out.join("mlmd.md").display());
    if !status.success() {
        eprintln!("bench.py failed ({status})");
        std::process::exit(1);
    }
}
