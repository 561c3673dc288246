//! A real `metamesh dev` process, for the tests that drive the whole mesh from outside with
//! real clients (t80_openlineage: the OpenLineage and Marquez clients; t90_web_ui: a browser).
//! Include it with `#[path = "common/dev_mesh.rs"] mod dev_mesh;` beside `child` and `common`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::child::{run_to_end, ChildGuard};
use super::common::{bin, tail};

/// Six replicas, a router and the seeding, started from nothing in a debug build.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// A running `metamesh dev` and its dev.json.
pub struct DevMesh {
    pub child: ChildGuard,
    pub json: PathBuf,
}

impl DevMesh {
    /// Starts `metamesh dev --dir <dir>/mesh`, waits for dev.json (which must name an API key
    /// and a certificate for each of `principals`) and for the router's HTTPS listener to
    /// accept connections.
    pub fn start(dir: &Path, principals: &[&str]) -> DevMesh {
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
        for who in principals {
            assert!(handle["api_keys"][who]["key"].is_string(), "dev.json has no api_keys.{who}.key: {handle:#}");
            assert!(handle["principals"][who]["cert"].is_string(), "dev.json has no principals.{who}.cert: {handle:#}");
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

    /// Runs `command` (a client script against this mesh) to its end, logging to `log`; returns
    /// its output, or panics with it — and with the mesh's, and `look` (where the artifacts
    /// are) — unless it exits 0 within `timeout` with the mesh still up.
    pub fn run(&mut self, name: &str, command: Command, log: &Path, timeout: Duration, look: &str) -> String {
        let (status, output) = run_to_end(name, command, log, timeout);
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
                "{name} failed ({s}){look}; full log {}:\n{}\n-- mesh output (tail):\n{}",
                log.display(),
                tail(&output, 150),
                tail(&self.child.log_text(), 40)
            ),
            None => panic!("{name} still running after {timeout:?}; output:\n{}", tail(&output, 80)),
        }
    }

    /// SIGTERM, and the mesh must stop cleanly.
    pub fn stop(mut self) {
        match self.child.terminate(Duration::from_secs(30)) {
            Some(s) if s.success() => {}
            Some(s) => panic!("metamesh dev exited with {s} on SIGTERM; output:\n{}", tail(&self.child.log_text(), 40)),
            None => panic!("metamesh dev did not stop within 30 s of SIGTERM"),
        }
    }
}
