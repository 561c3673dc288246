//! `metamesh policy check|test`: exit codes and `file:line` messages, on the repository's own
//! `policies/` and on broken copies of it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn metamesh(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metamesh")).args(args).arg(dir).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A copy of the repository's `policies/` to break.
fn copy_of_repo() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&repo_policies(), dir.path());
    dir
}

fn append(path: &Path, lines: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(lines);
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_repository_policy_checks_and_passes_its_tests() {
    let out = metamesh(&["policy", "check"], &repo_policies());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(": ok: 5 files"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("digest ") && l.len() == "digest ".len() + 64), "{stdout}");
    assert!(stderr.is_empty(), "no warnings expected: {stderr}");

    let out = metamesh(&["policy", "test"], &repo_policies());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let summary = stdout.lines().last().unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
}

#[test]
fn check_reports_every_problem_with_file_and_line() {
    let dir = copy_of_repo();
    let fraud = dir.path().join("tenants/fraud.csv");
    let lines = std::fs::read_to_string(&fraud).unwrap().lines().count();
    append(&fraud, "g, spiffe://metamesh.local/client/dave, role:wrtier, fraud\np, x, growth, mm://growth/*, read\n");
    let out = metamesh(&["policy", "check"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let fraud = fraud.display();
    assert!(stderr.contains(&format!("{fraud}:{}: unknown role `role:wrtier`", lines + 1)), "{stderr}");
    assert!(
        stderr.contains(&format!("{fraud}:{}: a tenant file grants only in its own tenant", lines + 2)),
        "{stderr}"
    );
    assert!(stderr.contains("error: 2 problem(s)"), "{stderr}");
    assert!(!stdout.contains("ok"), "{stdout}");
}

#[test]
fn check_prints_warnings_and_passes() {
    let dir = copy_of_repo();
    let growth = dir.path().join("tenants/growth.csv");
    let first = std::fs::read_to_string(&growth).unwrap().lines().find(|l| l.starts_with("g,")).unwrap().to_owned();
    append(&growth, &format!("{first}\n"));
    let out = metamesh(&["policy", "check"], dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("growth.csv:") && stderr.contains(": warning: duplicate of line"), "{stderr}");
}

#[test]
fn test_fails_on_a_failed_assertion_naming_its_line() {
    let dir = copy_of_repo();
    std::fs::write(
        dir.path().join("tests/extra.toml"),
        concat!(
            "# bob is growth's\n",
            "allow = [\"bob read mm://growth/*\"]\n",
            "deny = [\n",
            "  \"bob read mm://growth/dataset/*\",\n",
            "]\n\n[principals]\n",
            "bob = \"spiffe://metamesh.local/client/bob\"\n",
        ),
    )
    .unwrap();
    let out = metamesh(&["policy", "test"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let file = dir.path().join("tests/extra.toml");
    let want = format!("{}:4: FAIL deny `bob read mm://growth/dataset/*`", file.display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stdout.lines().last().unwrap().ends_with(" passed, 1 failed"), "{stdout}");
}

#[test]
fn test_refuses_malformed_assertion_files() {
    let dir = copy_of_repo();
    let file = dir.path().join("tests/extra.toml");
    std::fs::write(&file, "allow = [\n  \"alcie read mm://fraud/*\",\n]\n").unwrap();
    let out = metamesh(&["policy", "test"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "{}:2: allow `alcie read mm://fraud/*`: `alcie` is not in [principals]",
            file.display()
        )),
        "{stderr}"
    );

    std::fs::write(&file, "allow = [\"a b\"\n").unwrap();
    let out = metamesh(&["policy", "test"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains(&format!("{}:", file.display())), "{stderr}");

    std::fs::write(&file, "alow = []\n").unwrap();
    let out = metamesh(&["policy", "test"], dir.path());
    assert_eq!(out.status.code(), Some(1), "unknown keys are refused");

    // No assertion file at all is a failure, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_metamesh"))
        .args(["policy", "test", "--tests"])
        .arg(empty.path())
        .arg(repo_policies())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no assertion files"), "{stderr}");
}

#[test]
fn test_fails_when_the_policy_does_not_load() {
    let dir = copy_of_repo();
    append(&dir.path().join("global.csv"), "p, role:reader, *, *, raed\n");
    let out = metamesh(&["policy", "test"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("global.csv:") && stderr.contains("unknown action `raed`"), "{stderr}");
    assert!(!stdout.contains("passed"), "{stdout}");
}
