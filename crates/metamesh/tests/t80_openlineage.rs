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
#[path = "common/dev_mesh.rs"]
mod dev_mesh;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use child::run_to_end;
use common::root;
use dev_mesh::DevMesh;

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

/// Runs a script of tests/openlineage with `--dev <dev.json>`; panics with its output unless
/// it exits 0.
fn run_script(mesh: &mut DevMesh, dir: &Path, name: &str, extra: &[&str]) -> String {
    let mut command = Command::new(python());
    command
        .arg(script(name))
        .arg("--dev")
        .arg(&mesh.json)
        .args(extra)
        .current_dir(dir) // no stray openlineage.yml
        .env("PYTHONUNBUFFERED", "1")
        .env("METAMESH_OL_CORPUS", corpus());
    let log = dir.join(format!("{name}.log"));
    mesh.run(name, command, &log, CHECK_TIMEOUT, "")
}

/// The principals the scripts act as.
const PRINCIPALS: &[&str] = &["admin", "fraud-writer", "growth-writer", "fraud-reader", "growth-reader"];

fn lock() -> std::sync::MutexGuard<'static, ()> {
    MESH.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn clients_against_the_dev_mesh() {
    let _one_mesh = lock();
    python(); // fail before starting anything
    let dir = out_dir("clients");
    let mut mesh = DevMesh::start(&dir, PRINCIPALS);
    let output = run_script(&mut mesh, &dir, "check.py", &[]);
    println!("{output}");
    mesh.stop();
}

#[test]
fn corpus_replays_through_the_intake() {
    let _one_mesh = lock();
    let _ = (python(), corpus());
    let dir = out_dir("corpus");
    let mut mesh = DevMesh::start(&dir, PRINCIPALS);
    let output = run_script(&mut mesh, &dir, "replay_corpus.py", &[]);
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
