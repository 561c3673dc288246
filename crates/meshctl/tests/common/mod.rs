//! A real single-replica shard group in a temp dir, its client API served over real mTLS on
//! 127.0.0.1 (`metamesh_testkit::api_node`), client certificate files on
//! disk, and a runner for the real `meshctl` binary pointed at it.
//!
//! The node runs on its own tokio runtime so that the tests themselves are plain synchronous
//! code that spawns `meshctl` processes and waits for them, as a user's shell would.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use metamesh_tls::{write_bundle, BundlePaths, MeshCa, Role};
use serde_json::Value;
use tempfile::TempDir;

#[allow(unused_imports)] // each test binary uses a different subset
pub use metamesh_testkit::api_node::{DOMAIN, SHARD};

/// Environment variables of meshctl that must not leak from the developer's shell into tests.
const MESHCTL_ENV: [&str; 9] = [
    "METAMESH_ADDR",
    "METAMESH_CA",
    "METAMESH_CERT",
    "METAMESH_KEY",
    "METAMESH_SERVER_NAME",
    "METAMESH_OUTPUT",
    "METAMESH_CONSISTENCY",
    "METAMESH_MAX_STALENESS",
    "METAMESH_LOG",
];

pub use metamesh_testkit::api_node::ApiNode as Node;

/// Writes `ca.pem`, `<name>.pem` and `<name>.key` for a client of `ca` into `dir`.
pub fn client_bundle(dir: &Path, ca: &MeshCa, name: &str) -> BundlePaths {
    let issued = ca.issue(Role::Client, name, Duration::from_secs(3600)).expect("issue");
    write_bundle(dir, ca, name, &issued).expect("write bundle")
}

/// What a `meshctl` run left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn of(output: Output) -> Run {
        Run {
            // A process killed by a signal has no code; -1 never matches an expected one.
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A `meshctl` command with a clean environment (no METAMESH_* from the caller's shell).
pub fn meshctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshctl"));
    for var in MESHCTL_ENV {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Run {
    Run::of(cmd.output().expect("run meshctl"))
}

/// A node on its own runtime, with alice's certificate files for the CLI.
pub struct Mesh {
    node: Option<Node>,
    runtime: tokio::runtime::Runtime,
    pub certs: BundlePaths,
    /// Scratch space for input files (and the certificates).
    pub dir: TempDir,
}

impl Mesh {
    pub fn start() -> Mesh {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let node = runtime.block_on(Node::start());
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = client_bundle(&dir.path().join("certs"), &node.ca, "alice");
        Mesh { node: Some(node), runtime, certs, dir }
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node")
    }

    /// `meshctl` aimed at the node as alice, configured through the environment as a user's
    /// shell profile would.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = meshctl();
        cmd.env("METAMESH_ADDR", self.node().addr.to_string())
            .env("METAMESH_CA", &self.certs.ca_cert)
            .env("METAMESH_CERT", &self.certs.cert)
            .env("METAMESH_KEY", &self.certs.key)
            .args(args);
        cmd
    }

    /// Runs `meshctl args…`, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args))
    }

    /// Runs `meshctl args…`, which must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "meshctl {args:?} failed: {r:#?}");
        r.stdout
    }

    /// Runs `meshctl --output json args…`, which must print one JSON document.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[&["--output", "json"], args].concat());
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
    }

    /// Runs `meshctl --output json args…`, which must print JSON lines.
    #[track_caller]
    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let out = self.ok(&[&["--output", "json"], args].concat());
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}"))).collect()
    }

    /// Runs `future` on the node's runtime (to drive the node directly).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Writes a scratch file and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // The replica's tasks and files belong to the node's runtime: stop it there.
        let _guard = self.runtime.enter();
        self.node.take();
    }
}
