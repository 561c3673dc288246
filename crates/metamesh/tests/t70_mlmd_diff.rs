//! MLMD wire compatibility, tested differentially: `tests/mlmd/suite.py` drives the real,
//! unmodified `ml-metadata` Python client (1.17.1) through one deterministic scenario covering
//! every public method of `MetadataStore`, against Google's own engine (the oracle,
//! `tests/mlmd/oracle_server.py`) and against metamesh; `tests/mlmd/compare.py` compares the
//! answers with ids and timestamps normalized away.
//!
//! - `oracle_runs_are_deterministic`: two fresh oracles, the same answers (the normalization
//!   leaves nothing run-dependent).
//! - `mesh_answers_like_the_oracle`: through the router over mutual TLS as `fraud-writer`,
//!   directly on a replica of fraud's shard group (a second mesh, so that fraud starts empty),
//!   and, concurrently with the router run, as writers of `growth` (another shard group) and of
//!   `platform` (fraud's own group): every run must answer like the oracle, so another tenant's
//!   node showing up in a listing is a failure.
//!
//! Needs the Python venv of `tests/python/setup.sh` (or `METAMESH_PYTHON`). Outputs and logs are
//! kept under `$CARGO_TARGET_TMPDIR/t70_mlmd_diff/<test>/` for a look after a failure.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::root;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};

/// One suite run: about 330 calls, a few seconds against the oracle.
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);
/// Diffs shown in a failure message (the names of further differing steps follow), and diff
/// lines shown per step.
const MAX_DIFF_STEPS: usize = 20;
const MAX_DIFF_LINES: usize = 30;

/// The dev mesh's layout (`metamesh dev`): fraud and platform share group s1, growth has s2.
const GROUPS: &[(&str, &[&str])] = &[("s1", &["fraud", "platform"]), ("s2", &["growth"])];

/// The repository's tenant policies, which make `<tenant>-writer` a writer of `<tenant>`.
const TENANT_POLICIES: &[(&str, &str)] = &[
    ("fraud", include_str!("../../../policies/tenants/fraud.csv")),
    ("growth", include_str!("../../../policies/tenants/growth.csv")),
    ("platform", include_str!("../../../policies/tenants/platform.csv")),
];

fn mlmd_script(name: &str) -> PathBuf {
    root().join("tests/mlmd").join(name)
}

/// The venv's Python, with `ml-metadata`.
fn python() -> PathBuf {
    common::venv_python("ml_metadata", "MLMD differential")
}

fn out_dir(test: &str) -> PathBuf {
    common::out_dir("t70_mlmd_diff", test)
}

fn tail(path: &Path, lines: usize) -> String {
    common::tail(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

/// A child process killed (SIGKILL) and reaped when dropped, whatever happened.
struct Proc {
    child: Option<Child>,
}

impl Proc {
    fn new(child: Child) -> Proc {
        Proc { child: Some(child) }
    }

    /// Waits up to `timeout` for the process to exit; `None` (and killed) when it does not.
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    self.kill();
                    return None;
                }
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The oracle: Google's MLMD engine over an in-memory SQLite, on a free port. It also stops by
/// itself when its stdin (held here) closes, so it cannot outlive the test.
struct Oracle {
    port: u16,
    // Dropped first: closing stdin asks the oracle to stop; the Proc then makes sure it did.
    _stdin: ChildStdin,
    _proc: Proc,
}

impl Oracle {
    fn start(dir: &Path, label: &str) -> Oracle {
        let log = dir.join(format!("{label}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(python())
            .arg(mlmd_script("oracle_server.py"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the oracle with {}: {e}", python().display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let proc = Proc::new(child);
        // The first line says where it listens; the rest is drained so it never blocks.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port =
            line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse::<u16>().ok()).unwrap_or_else(|| {
                panic!("{label} did not say LISTENING <port> (got {line:?}); log:\n{}", tail(&log, 40))
            });
        Oracle { port, _stdin: stdin, _proc: proc }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Where and as whom a suite run connects.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    /// CA, certificate and key (PEM files); plain gRPC when `None`.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Target {
    fn plain(addr: SocketAddr) -> Target {
        Target { addr, tls: None }
    }

    /// As client `name` of `mesh` (its certificate issued by LocalMesh::start, see `spec`).
    fn client(mesh: &LocalMesh, addr: SocketAddr, name: &str) -> Target {
        let certs = mesh.dir.join("certs");
        let files = (certs.join("ca.pem"), certs.join(format!("{name}.pem")), certs.join(format!("{name}.key")));
        for f in [&files.0, &files.1, &files.2] {
            assert!(f.is_file(), "{} missing", f.display());
        }
        Target { addr, tls: Some(files) }
    }
}

/// Runs suite.py against `target` (blocking); its JSON goes to `DIR/<label>.json`, its stderr to
/// `DIR/<label>.log`. Errors name what went wrong, with the end of the log.
fn run_suite(dir: &Path, label: &str, target: &Target, extra: &[&str]) -> Result<PathBuf, String> {
    let json = dir.join(format!("{label}.json"));
    let log = dir.join(format!("{label}.log"));
    let mut command = Command::new(python());
    command
        .arg(mlmd_script("suite.py"))
        .args(["--host", &target.addr.ip().to_string(), "--port", &target.addr.port().to_string()])
        .args(extra);
    if let Some((ca, cert, key)) = &target.tls {
        command.arg("--ca").arg(ca).arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&json).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .map_err(|e| format!("{label}: starting suite.py: {e}"))?;
    let mut proc = Proc::new(child);
    match proc.wait(SUITE_TIMEOUT) {
        Some(status) if status.success() => Ok(json),
        Some(status) => Err(format!("{label}: suite.py exited with {status}; its log ends with:\n{}", tail(&log, 40))),
        None => Err(format!(
            "{label}: suite.py still running after {SUITE_TIMEOUT:?} (killed); its log ends with:\n{}",
            tail(&log, 40)
        )),
    }
}

/// compare.py `expected` `actual`: `Err` with its report when they differ.
fn compare(expected: &Path, actual: &Path) -> Result<(), String> {
    let out = Command::new(python())
        .arg(mlmd_script("compare.py"))
        .arg(expected)
        .arg(actual)
        .args(["--max-steps", &MAX_DIFF_STEPS.to_string(), "--max-lines", &MAX_DIFF_LINES.to_string()])
        .output()
        .map_err(|e| format!("running compare.py: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(format!("{} differs from {}:\n{text}", actual.display(), expected.display())),
        _ => Err(format!("compare.py {} {} failed ({}):\n{text}", expected.display(), actual.display(), out.status)),
    }
}

/// The oracle's answers: a fresh oracle, one suite run.
fn oracle_run(dir: &Path, label: &str) -> Result<PathBuf, String> {
    let oracle = Oracle::start(dir, &format!("{label}-server"));
    let result = run_suite(dir, label, &Target::plain(oracle.addr()), &[]);
    drop(oracle);
    result
}

#[test]
fn oracle_runs_are_deterministic() {
    let dir = out_dir("oracle_runs_are_deterministic");
    // Two fresh oracles, side by side.
    let runs: Vec<_> = ["oracle-1", "oracle-2"]
        .into_iter()
        .map(|label| {
            let dir = dir.clone();
            std::thread::spawn(move || oracle_run(&dir, label))
        })
        .collect();
    let outputs: Vec<PathBuf> =
        runs.into_iter().map(|r| r.join().expect("suite thread").unwrap_or_else(|e| panic!("{e}"))).collect();
    // The scenario really ran: many steps, every client method (the suite's own guard checks
    // that coverage too, and exits 2 when it fails).
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&outputs[0]).unwrap()).unwrap();
    let steps = doc["steps"].as_array().expect("steps");
    assert!(steps.len() > 300, "only {} steps in {}", steps.len(), outputs[0].display());
    assert!(doc["methods_called"].as_array().expect("methods_called").len() >= 49, "{:#}", doc["methods_called"]);
    let errors = steps.iter().filter(|s| s["result"].get("error").is_some()).count();
    assert!(errors < steps.len() / 3, "{errors} of {} steps failed against the oracle", steps.len());
    assert!(
        steps.iter().all(|s| s["result"].get("crash").is_none()),
        "the client choked on an oracle answer: see {}",
        dir.join("oracle-1.log").display()
    );
    if let Err(e) = compare(&outputs[0], &outputs[1]) {
        panic!(
            "two runs against fresh oracles differ, so the suite's normalization leaves something run-dependent:\n{e}"
        );
    }
}

/// The dev mesh's groups (or some of them), the repository's policies, and certificates for
/// the writers of its tenants.
fn spec(groups: &[(&str, &[&str])]) -> MeshSpec {
    let mut spec = MeshSpec::new(groups, 3);
    spec.clients = groups.iter().flat_map(|(_, tenants)| tenants.iter().map(|t| format!("{t}-writer"))).collect();
    spec.policy = Arc::new(|dir: &Path| metamesh_testkit::policy::write_policy(dir, "", TENANT_POLICIES));
    spec
}

async fn start_mesh(dir: PathBuf, groups: &'static [(&'static str, &'static [&'static str])]) -> LocalMesh {
    LocalMesh::start(&dir, spec(groups)).await.unwrap_or_else(|e| panic!("starting a mesh in {}: {e:#}", dir.display()))
}

/// The client address of replica `id` of `group`.
fn replica_addr(mesh: &LocalMesh, group: &str, id: u64) -> SocketAddr {
    mesh.layout
        .nodes
        .iter()
        .find(|n| n.group == group && n.id == id)
        .unwrap_or_else(|| panic!("no replica {id} of {group} in {:?}", mesh.layout.nodes))
        .client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_answers_like_the_oracle() {
    let dir = out_dir("mesh_answers_like_the_oracle");
    let tmp = tempfile::tempdir().unwrap();
    python();

    // (a) The oracle's answers, while the meshes start.
    let oracle = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || oracle_run(&dir, "oracle"))
    };
    // The dev layout for the router and isolation runs; a second mesh, fraud's group alone, for
    // the run on a replica (each run needs its tenant empty).
    let (mesh, local) =
        tokio::join!(start_mesh(tmp.path().join("mesh"), GROUPS), start_mesh(tmp.path().join("local"), &GROUPS[..1]));
    let expected = oracle.await.unwrap().unwrap_or_else(|e| panic!("the oracle run failed: {e}"));

    // (b) fraud's writer through the router, and (d) at the same time the writers of growth
    // (group s2) and of platform (fraud's group s1), under prefixes of their own so that a node
    // of theirs leaking into fraud's answers (or the other way round) shows by name.
    // (c) fraud's writer directly on replica 1 of fraud's group (leader or follower: either
    // must answer alike), in the second mesh.
    let router = mesh.layout.router_grpc;
    let runs = [
        ("router-fraud", Target::client(&mesh, router, "fraud-writer"), ""),
        ("router-growth", Target::client(&mesh, router, "growth-writer"), "growth_"),
        ("router-platform", Target::client(&mesh, router, "platform-writer"), "platform_"),
        ("replica-fraud", Target::client(&local, replica_addr(&local, "s1", 1), "fraud-writer"), ""),
    ];
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(label, target, prefix)| {
            let dir = dir.clone();
            let handle =
                tokio::task::spawn_blocking(move || run_suite(&dir, label, &target, &[&format!("--prefix={prefix}")]));
            (label, handle)
        })
        .collect();
    let mut failures = Vec::new();
    // The first run that differs from the oracle is shown in full; a later one that differs in
    // exactly the same way is only named (not a tenant-isolation problem, the same bug).
    let mut shown: Option<(&str, PathBuf)> = None;
    for (label, handle) in handles {
        let actual = match handle.await.unwrap() {
            Ok(actual) => actual,
            Err(e) => {
                failures.push(format!("--- {label}: {e}"));
                continue;
            }
        };
        let Err(diff) = compare(&expected, &actual) else { continue };
        match &shown {
            Some((first, path)) if compare(path, &actual).is_ok() => {
                failures.push(format!("--- {label}: differs from the oracle exactly like {first}"))
            }
            _ => {
                failures.push(format!("--- {label}: {diff}"));
                shown.get_or_insert((label, actual));
            }
        }
    }

    mesh.shutdown().await;
    local.shutdown().await;
    assert!(
        failures.is_empty(),
        "metamesh's MLMD answers differ from the oracle's ({} of 4 runs; outputs in {}):\n{}",
        failures.len(),
        dir.display(),
        failures.join("\n")
    );
}
