//! The web UI in a real browser: headless Chromium driven by selenium (`tests/web/check_ui.py`)
//! against a real `metamesh dev` process, over the router's HTTPS listener.
//!
//! The script writes its data first (as fraud-writer: an entity full of script-injection
//! payloads with meshctl, a 1,201-node fan-out through the OpenLineage batch endpoint, a job
//! with a columnLineage facet), then checks, through the DOM ids and classes of the UI's
//! contract: signing in with API keys (and a wrong one), search → entity → lineage across
//! fraud, growth and platform, expansion, pan and zoom, the same by keyboard, the payloads
//! staying text, the large graph grouped and drawn within 10 s, column lineage in the
//! column-level view, placeholders without names for fraud-reader (and no audit), the
//! auditor's audit page and export, and no browser console errors.
//!
//! Needs Debian's `chromium` and `chromium-driver` (tests/web/setup.sh installs them) and
//! selenium in the venv of tests/python/setup.sh (or `METAMESH_PYTHON`); it fails, saying so,
//! when they are missing. `METAMESH_CHROMIUM`, `METAMESH_CHROMEDRIVER` and `METAMESH_MESHCTL`
//! override where the browser, its driver and meshctl are (meshctl is otherwise built here
//! with cargo, into the same target directory and profile as this test).
//!
//! Screenshots of every step (`FAILED-<step>.png` and `.html` on a failure), the browser
//! console and chromedriver's log are kept in `$CARGO_TARGET_TMPDIR/t90_web_ui/<test>/artifacts/`,
//! the mesh's directory and logs beside them.

#[path = "common/child.rs"]
mod child;
mod common;
#[path = "common/dev_mesh.rs"]
mod dev_mesh;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use child::run_to_end;
use common::{bin, root, tail};
use dev_mesh::DevMesh;

/// check_ui.py: the data, a browser and about thirty steps (the waits are bounded inside).
const CHECK_TIMEOUT: Duration = Duration::from_secs(900);
/// Building meshctl when nothing of it is built yet.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

const SETUP_HINT: &str = "run tests/web/setup.sh (it installs Debian's chromium and chromium-driver) and \
                          tests/python/setup.sh (selenium in target/py-venv)";

fn out_dir(test: &str) -> PathBuf {
    common::out_dir("t90_web_ui", test)
}

/// `name` in `$PATH`, or `None`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The browser and its driver: `$METAMESH_CHROMIUM` / `$METAMESH_CHROMEDRIVER`, else `chromium`
/// and `chromedriver` on the PATH. Fails (never skips) when either is missing.
fn browser() -> (PathBuf, PathBuf) {
    let find = |var: &str, name: &str| -> PathBuf {
        let found = match std::env::var_os(var) {
            Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
            None => which(name),
        };
        found.unwrap_or_else(|| panic!("no `{name}` for the web UI tests (PATH, or ${var}): {SETUP_HINT}"))
    };
    let chromium = find("METAMESH_CHROMIUM", "chromium");
    let chromedriver = find("METAMESH_CHROMEDRIVER", "chromedriver");
    // The driver must run (a Chromium update without its driver leaves a broken pair).
    let out = Command::new(&chromedriver).arg("--version").output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            panic!("{} --version failed: {}\n{SETUP_HINT}", chromedriver.display(), String::from_utf8_lossy(&o.stderr))
        }
        Err(e) => panic!("cannot run {}: {e}\n{SETUP_HINT}", chromedriver.display()),
    }
    (chromium, chromedriver)
}

/// The venv's Python, with selenium and requests.
fn python() -> PathBuf {
    common::venv_python("selenium, requests", "web UI")
}

/// meshctl: `$METAMESH_MESHCTL`, else built now by cargo beside this test's `metamesh` (same
/// target directory, same profile; a no-op when it is up to date).
fn meshctl(dir: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("METAMESH_MESHCTL") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "METAMESH_MESHCTL={} is not a file", p.display());
        return p;
    }
    let metamesh = Path::new(bin());
    let profile_dir = metamesh.parent().expect("the metamesh binary's directory");
    let exe = profile_dir.join(format!("meshctl{}", std::env::consts::EXE_SUFFIX));
    // <target>/<profile>/metamesh, or <target>/<triple>/<profile>/metamesh when cross-building.
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_owned();
    let mut target_dir = profile_dir.parent().expect("the target directory").to_path_buf();
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
    command.current_dir(root()).args(["build", "--quiet", "-p", "meshctl"]);
    if target_dir.join("CACHEDIR.TAG").exists() || target_dir.join(".rustc_info.json").exists() {
        // The usual layout.
    } else if let Some(up) = target_dir.parent().filter(|up| up.join("CACHEDIR.TAG").exists()) {
        let triple = target_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        command.args(["--target", &triple]);
        target_dir = up.to_path_buf();
    }
    command.arg("--target-dir").arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let log = dir.join("build-meshctl.log");
    let (status, output) = run_to_end("cargo build -p meshctl", command, &log, BUILD_TIMEOUT);
    match status {
        Some(s) if s.success() => {}
        other => panic!("building meshctl failed ({other:?}):\n{}", tail(&output, 60)),
    }
    assert!(exe.is_file(), "cargo built meshctl, but {} is not there", exe.display());
    exe
}

#[test]
fn browser_checks_the_web_ui() {
    // Everything that may be missing is checked before anything starts.
    let (chromium, chromedriver) = browser();
    let python = python();
    let script = root().join("tests/web/check_ui.py");
    assert!(script.is_file(), "{} is missing", script.display());
    let dir = out_dir("ui");
    let meshctl = meshctl(&dir);
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    let started = Instant::now();
    let mut mesh = DevMesh::start(&dir, &["admin", "auditor", "fraud-writer", "fraud-reader"]);
    println!("metamesh dev ready in {:.1} s", started.elapsed().as_secs_f64());

    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg("--dev")
        .arg(&mesh.json)
        .arg("--meshctl")
        .arg(&meshctl)
        .arg("--out")
        .arg(&artifacts)
        .arg("--chromium")
        .arg(&chromium)
        .arg("--chromedriver")
        .arg(&chromedriver)
        .current_dir(&dir)
        .env("PYTHONUNBUFFERED", "1");
    let log = dir.join("check_ui.log");
    let look = format!("; screenshots, page source and console in {}", artifacts.display());
    println!("{}", mesh.run("check_ui.py", command, &log, CHECK_TIMEOUT, &look));
    mesh.stop();
    println!("the web UI checks took {:.1} s with the mesh", started.elapsed().as_secs_f64());
}
