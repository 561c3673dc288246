//! The router's HTTPS listener (OpenLineage intake, Marquez-shaped reads) driven by the real,
//! unmodified Python clients, `openlineage-python` and `marquez-python` (tests/python/setup.sh
//! installs them into target/py-venv), against a real `metamesh dev` process:
//!
//! - `clients_against_the_dev_mesh`: `tests/openlineage/check.py` emits a two-tenant pipeline
//!   with client certificates, again with API keys and gzip (nothing may change), compares
//!   `GET /api/v1/lineage` with a reference model of Marquez (`tests/openlineage/marquez_model.py`),
//!   reads datasets, jobs and runs with marquez-python, and checks refusals (401, 403, 422/400) and
//!   what a reader of another tenant sees.
//! - `corpus_replays_through_the_intake`: every event of `tests/corpus/openlineage/**` through
//!   `POST /api/v1/lineage` as `admin` (`tests/openlineage/replay_corpus.py`): each is accepted
//!   unless listed there as a deliberate refusal, and two of Marquez's own pipelines answer
//!   lineage like the model.
//! - `marquez_model_unit_tests`: the model itself, on Marquez's "apples" story and hand-made cases.
//!
//! Needs the venv of tests/python/setup.sh (or `METAMESH_PYTHON`). Outputs, logs and the mesh's
//! directory are kept under `$CARGO_TARGET_TMPDIR/t80_openlineage/<test>/` for a look after a
//! failure.

#[path = "common/child.rs"]
mod child;
mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use child::{run_to_end, ChildGuard};
use common::{bin, root, tail};
use serde_json::Value;

/// Six replicas, a router and the seeding, started from nothing in a debug build.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// check.py: about a hundred requests, and up to 30 s for cross-shard edges to arrive.
const CHECK_TIMEOUT: Duration = Duration::from_secs(600);

/// One dev mesh at a time: each is seven processes' worth of threads.
static MESH: Mutex<()> = Mutex::new(());

fn script(name: &str) -> PathBuf {
    root().join("tests/openlineage").join(name)
}

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/openlineage");
    assert!(dir.is_dir(), "the OpenLineage corpus is missing: {} (tests/corpus/openlineage)", dir.display());
    dir.canonicalize().unwrap()
}

/// The venv's Python, with the clients.
fn python() -> PathBuf {
    common::venv_python("openlineage.client, marquez_client, requests", "OpenLineage")
}

fn out_dir(test: &str) -> PathBuf {
    common::out_dir("t80_openlineage", test)
}

/// A running `metamesh dev` and its dev.json.
struct DevMesh {
    child: ChildGuard,
    json: PathBuf,
}

impl DevMesh {
    /// Starts `metamesh dev --dir <dir>/mesh`, waits for dev.json and for the router's HTTPS
    /// listener to accept connections.
    fn start(dir: &Path) -> DevMesh {
        let mesh = dir.join("mesh");
        let json = mesh.join("dev.json");
        let mut command = Command::new(bin());
        command.arg("dev").arg("--dir").arg(&mesh).env("METAMESH_LOG", "warn,openraft=error");
        let mut child = ChildGuard::spawn("metamesh dev", command, &dir.join("mesh.log"));

        let deadline = Instant::now() + START_TIMEOUT;
        let handle = loop {
            if let Some(status) = child.exited() {
                panic!("metamesh dev exited with {status}; output:\n{}", tail(&child.log_text(), 80));
            }
            // Written in one `fs::write`, which may still be under way: parse until it is whole.
            if let Some(v) = std::fs::read(&json).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "no {} after {START_TIMEOUT:?}; output:\n{}",
                json.display(),
                tail(&child.log_text(), 80)
            );
            std::thread::sleep(Duration::from_millis(200));
        };

        let url = handle["router"]["http"]
            .as_str()
            .unwrap_or_else(|| panic!("dev.json has no router.http URL (the HTTPS listener): {:#}", handle["router"]));
        let addr: SocketAddr = url
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("router.http {url:?} is not an https:// URL"))
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("router.http {url:?}: not host:port: {e}"));
        for who in ["admin", "fraud-writer", "growth-writer", "fraud-reader", "growth-reader"] {
            assert!(handle["api_keys"][who]["key"].is_string(), "dev.json has no api_keys.{who}.key: {handle:#}");
        }
        loop {
            if let Some(status) = child.exited() {
                panic!("metamesh dev exited with {status}; output:\n{}", tail(&child.log_text(), 80));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the HTTPS listener {addr} never accepted a connection; output:\n{}",
                tail(&child.log_text(), 80)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        DevMesh { child, json }
    }

    /// Runs a script of tests/openlineage with `--dev <dev.json>`; panics with its output unless
    /// it exits 0.
    fn run(&mut self, dir: &Path, name: &str, extra: &[&str]) -> String {
        let mut command = Command::new(python());
        command
            .arg(script(name))
            .arg("--dev")
            .arg(&self.json)
            .args(extra)
            .current_dir(dir) // no stray openlineage.yml
            .env("PYTHONUNBUFFERED", "1")
            .env("METAMESH_OL_CORPUS", corpus());
        let log = dir.join(format!("{name}.log"));
        let (status, output) = run_to_end(name, command, &log, CHECK_TIMEOUT);
        if let Some(status) = self.child.exited() {
            panic!(
                "metamesh dev died during {name} ({status}); {name} said:\n{}\nmesh output:\n{}",
                tail(&output, 60),
                tail(&self.child.log_text(), 60)
            );
        }
        match status {
            Some(s) if s.success() => output,
            Some(s) => panic!(
                "{name} failed ({s}); full log {}:\n{}\n-- mesh output (tail):\n{}",
                log.display(),
                tail(&output, 150),
                tail(&self.child.log_text(), 40)
            ),
            None => panic!("{name} still running after {CHECK_TIMEOUT:?}; output:\n{}", tail(&output, 80)),
        }
    }

    /// SIGTERM, and the mesh must stop cleanly.
    fn stop(mut self) {
        match self.child.terminate(Duration::from_secs(30)) {
            Some(s) if s.success() => {}
            Some(s) => panic!("metamesh dev exited with {s} on SIGTERM; output:\n{}", tail(&self.child.log_text(), 40)),
            None => panic!("metamesh dev did not stop within 30 s of SIGTERM"),
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    MESH.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn clients_against_the_dev_mesh() {
    let _one_mesh = lock();
    python(); // fail before starting anything
    let dir = out_dir("clients");
    let mut mesh = DevMesh::start(&dir);
    let output = mesh.run(&dir, "check.py", &[]);
    println!("{output}");
    mesh.stop();
}

#[test]
fn corpus_replays_through_the_intake() {
    let _one_mesh = lock();
    let _ = (python(), corpus());
    let dir = out_dir("corpus");
    let mut mesh = DevMesh::start(&dir);
    let output = mesh.run(&dir, "replay_corpus.py", &[]);
    println!("{output}");
    mesh.stop();
}

#[test]
fn marquez_model_unit_tests() {
    let dir = out_dir("model");
    let mut command = Command::new(python());
    command.arg(script("test_marquez_model.py")).arg("-v").env("METAMESH_OL_CORPUS", corpus()).current_dir(&dir);
    let (status, output) =
        run_to_end("test_marquez_model.py", command, &dir.join("model.log"), Duration::from_secs(120));
    match status {
        Some(s) if s.success() => println!("{output}"),
        other => panic!("the Marquez model's unit tests failed ({other:?}):\n{output}"),
    }
}
