//! Malformed policy directories are refused with file and line, and a refused policy never
//! replaces the one in force.

mod common;

use std::path::Path;

use common::*;
use metamesh_policy::{Action, Authorizer, PolicyErrors, PolicySet, Resource};

/// Loads a directory made of the repository's roles plus `global_extra` and one fraud file;
/// returns the problems as `relative/path:line: reason` strings.
fn problems(global_extra: &str, fraud: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), &format!("{}{global_extra}", repo_roles()), &[("fraud", fraud)]);
    match PolicySet::load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(errors) => render(dir.path(), &errors),
    }
}

fn render(dir: &Path, errors: &PolicyErrors) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            let file = e.file.strip_prefix(dir).unwrap().to_string_lossy();
            match e.line {
                Some(l) => format!("{file}:{l}: {}", e.reason),
                None => format!("{file}: {}", e.reason),
            }
        })
        .collect()
}

/// One problem, at `file_line` (a prefix: `global.csv:` for any line of it).
fn assert_one(got: Vec<String>, file_line: &str, reason_part: &str) {
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].starts_with(file_line), "`{}` is not at {file_line}", got[0]);
    assert!(got[0].contains(reason_part), "`{}` does not mention `{reason_part}`", got[0]);
}

const ALICE: &str = "spiffe://metamesh.local/client/alice";

#[test]
fn valid_directory_loads() {
    assert!(problems("", &format!("g, {ALICE}, role:writer, fraud\n")).is_empty());
}

#[test]
fn malformed_lines_name_file_and_line() {
    let fraud = format!("# comment\n\ng, {ALICE}, role:writer, fraud\np, {ALICE}, fraud, mm://fraud/*\n");
    assert_one(problems("", &fraud), "tenants/fraud.csv:4", "a `p` line has 5 fields");
    assert_one(problems("", "q, a, b\n"), "tenants/fraud.csv:1", "unknown line type `q`");
    assert_one(problems("", "g, a, role:writer\n"), "tenants/fraud.csv:1", "a `g` line has 4 fields");
    assert_one(problems("", "p, a, fraud, mm://fraud/*, wirte\n"), "tenants/fraud.csv:1", "unknown action `wirte`");
    assert_one(problems("g, x, role:raeder, *\n", ""), "global.csv:", "unknown role `role:raeder`");
    assert_one(problems("", "\n\ng, a, role:raeder, fraud\n"), "tenants/fraud.csv:3", "unknown role");
    assert_one(
        problems("", "g, role:reader, role:writer, fraud\n"),
        "tenants/fraud.csv:1",
        "roles are held by principals",
    );
    assert_one(problems("", "g, a, writer, fraud\n"), "tenants/fraud.csv:1", "`role:<name>`");
    assert_one(problems("", "p, *, fraud, *, read\n"), "tenants/fraud.csv:1", "`*` is not a principal");
    // Every problem is reported, in line order.
    let all = problems("", "x\ng, a, role:nope, fraud\np, a, fraud, *, nope\n");
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[0].starts_with("tenants/fraud.csv:1:") && all[2].starts_with("tenants/fraud.csv:3:"), "{all:#?}");
}

#[test]
fn tenant_files_grant_only_in_their_tenant() {
    assert_one(
        problems("", &format!("g, {ALICE}, role:writer, growth\n")),
        "tenants/fraud.csv:1",
        "grants only in its own tenant `fraud`",
    );
    assert_one(problems("", "p, a, growth, mm://growth/*, read\n"), "tenants/fraud.csv:1", "own tenant");
    assert_one(problems("", "p, a, *, *, read\n"), "tenants/fraud.csv:1", "own tenant");
    assert_one(problems("", "p, a, fraud, mm://growth/*, read\n"), "tenants/fraud.csv:1", "can never match");
    assert_one(problems("", "s, mm://growth/dataset/x\n"), "tenants/fraud.csv:1", "can never match");
    assert_one(problems("", "p, a, fraud, mm://*/*, read\n"), "tenants/fraud.csv:1", "its own tenant");
    // No mesh actions, directly or through a role.
    assert_one(problems("", "p, a, fraud, *, tenant.create\n"), "tenants/fraud.csv:1", "mesh action");
    assert_one(problems("", "g, a, role:mesh-admin, fraud\n"), "tenants/fraud.csv:1", "assign it in global.csv");
    // Shared roles are not redefined per tenant.
    assert_one(
        problems("", "p, role:writer, fraud, mm://fraud/*, audit.read\n"),
        "tenants/fraud.csv:1",
        "defined in global.csv",
    );
    // And global.csv names no single tenant.
    assert_one(problems("p, a, *, mm://fraud/*, read\n", ""), "global.csv:", "belong in tenants/fraud.csv");
    assert_one(problems("g, a, role:reader, fraud\n", ""), "global.csv:", "belong in tenants/fraud.csv");
}

#[test]
fn rules_that_can_never_match_are_refused() {
    for (line, why) in [
        ("p, a, fraud, mm://fraud/dataset/*, search", "checked on tenant resources"),
        ("p, a, fraud, mm://fraud, write", "checked on entity resources"),
        ("p, a, fraud, mesh, audit.read", "the mesh is in domain `*`"),
        ("p, a, fraud, mm://fraud/datasets/*, read", "unknown kind"),
        ("p, a, fraud, mm://fraud/dataset/a/b, read", "percent-encoded"),
        ("p, a, fraud, mm://fraud/dataset/a%3Ab, read", "canonical form `a:b`"),
        ("p, a, fraud, mm://fraud/dataset/a*b, read", "may only end"),
        ("p, a, fraud, mm://fraud/data*, read", "in the kind"),
        ("p, a, fraud, fraud/dataset/x, read", "neither `*`, `mesh` nor"),
    ] {
        assert_one(problems("", &format!("{line}\n")), "tenants/fraud.csv:1", why);
    }
}

#[test]
fn model_shape_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), &repo_roles(), &[]);
    let model = repo_file("model.conf");
    let bad = model.replace("r = sub, dom, obj, act", "r = sub, obj, act");
    std::fs::write(dir.path().join("model.conf"), &bad).unwrap();
    let errors = render(dir.path(), &PolicySet::load(dir.path()).unwrap_err());
    let line = bad.lines().position(|l| l.starts_with("r = ")).unwrap() + 1;
    assert!(errors[0].starts_with(&format!("model.conf:{line}: `r` must be")), "{errors:#?}");

    let bad = model.replace("urnMatch(", "urnMatches(");
    std::fs::write(dir.path().join("model.conf"), &bad).unwrap();
    let errors = render(dir.path(), &PolicySet::load(dir.path()).unwrap_err());
    assert!(errors[0].contains("matcher cannot be evaluated"), "{errors:#?}");

    std::fs::remove_file(dir.path().join("model.conf")).unwrap();
    let errors = render(dir.path(), &PolicySet::load(dir.path()).unwrap_err());
    assert!(errors[0].contains("model.conf: missing"), "{errors:#?}");
}

#[test]
fn warnings_do_not_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let fraud = format!(
        "g, {ALICE}, role:writer, fraud\ng, {ALICE}, role:writer, fraud\np, role:fraud-unused, fraud, *, read\n"
    );
    write_policy(dir.path(), &repo_roles(), &[("fraud", &fraud)]);
    let policy = PolicySet::load(dir.path()).unwrap();
    let warnings: Vec<String> = policy.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("fraud.csv:2: duplicate of line 1"), "{warnings:#?}");
    assert!(warnings[1].contains("fraud.csv:3: role `role:fraud-unused` is held by no one"), "{warnings:#?}");
}

#[test]
fn a_refused_policy_never_replaces_the_one_in_force() {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), &repo_roles(), &[("fraud", &format!("g, {ALICE}, role:writer, fraud\n"))]);
    let authz = Authorizer::load(dir.path()).unwrap();
    let before = authz.digest();
    let x = urn("mm://fraud/dataset/x");
    assert!(authz.check(ALICE, Action::Write, &Resource::Entity(&x)).allowed);

    // A valid change that would revoke alice, next to a broken line.
    let fraud = dir.path().join("tenants/fraud.csv");
    std::fs::write(&fraud, "# alice leaves\np, bob, fraud, mm://fraud/*\n").unwrap();
    let errors = authz.reload().unwrap_err();
    assert_eq!(errors.first().file, fraud);
    assert_eq!(errors.first().line, Some(2));
    assert_eq!(authz.digest(), before);
    assert!(authz.check(ALICE, Action::Write, &Resource::Entity(&x)).allowed, "the previous policy stays in force");
    assert_eq!(authz.last_error(), Some(errors));

    std::fs::write(&fraud, "# alice leaves\n").unwrap();
    let after = authz.reload().unwrap();
    assert_ne!(after, before);
    assert_eq!(authz.digest(), after);
    assert!(!authz.check(ALICE, Action::Write, &Resource::Entity(&x)).allowed);
    assert_eq!(authz.last_error(), None);
}
