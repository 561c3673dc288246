//! Real `metamesh` processes on 127.0.0.1 ports: certificates from `metamesh certs`, one TOML
//! file per node, and kill/restart. Processes are killed when the fixture is dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_metamesh")
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Runs `metamesh certs` into `dir`.
pub fn certs(dir: &Path, args: &[&str]) {
    let out = Command::new(bin()).arg("certs").arg("--dir").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "metamesh certs failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub struct NodeProc {
    pub id: u64,
    pub config: PathBuf,
    pub client: SocketAddr,
    pub raft: SocketAddr,
    /// Extra environment of the process (on top of `METAMESH_LOG=info`).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl NodeProc {
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.config.with_extension("log")).unwrap();
        let child = Command::new(bin())
            .arg("node")
            .arg("--config")
            .arg(&self.config)
            .env("METAMESH_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct ProcessGroup {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
}

impl ProcessGroup {
    /// Writes certificates and configurations for `n` replicas of group `s1` and starts them.
    pub fn start(n: u64) -> ProcessGroup {
        ProcessGroup::start_with_env(n, |_| Vec::new())
    }

    /// Like [`ProcessGroup::start`], with extra environment variables for node `id` (1-based),
    /// for instance `METAMESH_LISTEN__METRICS` or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn start_with_env(n: u64, env: impl Fn(u64) -> Vec<(String, String)>) -> ProcessGroup {
        let dir = tempfile::tempdir().unwrap();
        let certs_dir = dir.path().join("certs");
        let mut args: Vec<String> = (1..=n).flat_map(|i| ["--node".to_owned(), format!("node-{i}")]).collect();
        args.extend(["--client".to_owned(), "alice".to_owned(), "--trust-domain".to_owned(), "test.mesh".to_owned()]);
        certs(&certs_dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        // The repository's model and roles; client `alice` holds every role everywhere.
        let policy_dir = dir.path().join("policies");
        std::fs::create_dir_all(policy_dir.join("tenants")).unwrap();
        std::fs::write(policy_dir.join("model.conf"), include_str!("../../../../policies/model.conf")).unwrap();
        let alice = "spiffe://test.mesh/client/alice";
        std::fs::write(
            policy_dir.join("global.csv"),
            format!(
                "{}\ng, {alice}, role:admin, *\ng, {alice}, role:mesh-admin, *\ng, {alice}, role:compliance-auditor, *\n",
                include_str!("../../../../policies/global.csv")
            ),
        )
        .unwrap();
        let addrs: Vec<(SocketAddr, SocketAddr)> = (0..n).map(|_| (free_addr(), free_addr())).collect();
        let peers: String = addrs
            .iter()
            .enumerate()
            .map(|(i, (client, raft))| {
                format!("[[peers]]\nid = {}\nraft_addr = \"{raft}\"\nclient_addr = \"{client}\"\n", i + 1)
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, raft)) in addrs.iter().enumerate() {
            let id = i as u64 + 1;
            let config = dir.path().join(format!("node-{id}.toml"));
            let text = format!(
                "[node]\nid = {id}\nshard_group = \"s1\"\ndata_dir = \"{data}\"\n\n\
                 [listen]\nclient = \"{client}\"\nraft = \"{raft}\"\nmetrics = \"off\"\n\n\
                 [tls]\nca = \"{c}/ca.pem\"\ncert = \"{c}/node-{id}.pem\"\nkey = \"{c}/node-{id}.key\"\n\
                 trust_domain = \"test.mesh\"\n\n\
                 [policy]\ndir = \"{policy}\"\n\n\
                 [raft]\nheartbeat_ms = 300\nelection_timeout_min_ms = 1200\nelection_timeout_max_ms = 2400\n\n{peers}",
                data = dir.path().join(format!("data-{id}")).display(),
                c = certs_dir.display(),
                policy = policy_dir.display(),
            );
            std::fs::write(&config, text).unwrap();
            let mut node = NodeProc { id, config, client: *client, raft: *raft, env: env(id), child: None };
            node.start();
            nodes.push(node);
        }
        ProcessGroup { dir, nodes }
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// mTLS client configuration for the named client certificate.
    pub fn client_tls(&self, name: &str) -> Arc<rustls::ClientConfig> {
        let c = self.certs_dir();
        metamesh_tls::Credentials::load(
            &c.join("ca.pem"),
            &c.join(format!("{name}.pem")),
            &c.join(format!("{name}.key")),
        )
        .unwrap()
        .client_config()
        .unwrap()
    }

    /// Waits until the node's client listener answers a health check over mTLS.
    pub async fn wait_serving(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(ch) = metamesh_tls::connect(self.nodes[i].client, self.client_tls("alice"), "127.0.0.1").await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
                if let Ok(r) = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await {
                    assert_eq!(
                        r.into_inner().status,
                        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                    );
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node {} never served; log:\n{}", self.nodes[i].id, self.nodes[i].log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The Python of the tests' venv (`$METAMESH_PYTHON`, else `target/py-venv` made by
/// tests/python/setup.sh), checked to import `modules` (e.g. `ml_metadata`); fails saying what
/// to do for the `what` tests when it is missing or lacks them.
pub fn venv_python(modules: &str, what: &str) -> PathBuf {
    let python = std::env::var_os("METAMESH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/py-venv/bin/python"));
    assert!(
        python.exists(),
        "no Python for the {what} tests at {}: run tests/python/setup.sh (it creates target/py-venv with \
         the clients of tests/python/requirements.txt), or set METAMESH_PYTHON",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        probe.status.success(),
        "{} cannot import {modules}: run tests/python/setup.sh\n{}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// A fresh directory `target/tmp/<suite>/<test>` for a test's outputs and logs, kept after it.
pub fn out_dir(suite: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(suite).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
