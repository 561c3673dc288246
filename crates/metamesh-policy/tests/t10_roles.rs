//! The shipped roles: every role × own / other tenant / mesh × every action gives the decision
//! the role table of `docs/policies.md` promises; default deny; discoverers see names only;
//! lineage into another tenant needs that tenant's grant; sensitivity markers.

mod common;

use std::collections::BTreeSet;

use common::*;
use metamesh_policy::{Action, Level, PolicySet, Reason, Resource, Visibility};

/// The role table: the actions of each role of `policies/global.csv`.
fn role_table() -> Vec<(&'static str, bool, Vec<Action>)> {
    use Action::*;
    let reader = vec![Read, Discover, Search, Watch, SchemaRead];
    let writer = [reader.clone(), vec![Write, Delete, Link]].concat();
    let admin = [writer.clone(), vec![SchemaWrite, AuditRead]].concat();
    // (role, assigned per tenant?, actions)
    vec![
        ("reader", true, reader),
        ("writer", true, writer),
        ("admin", true, admin),
        ("linker", true, vec![Link]),
        ("discoverer", false, vec![Discover, Search]),
        ("compliance-auditor", false, vec![AuditRead]),
        ("mesh-admin", false, vec![AdminRead, AdminWrite, TenantCreate]),
    ]
}

/// A policy where principal `holder-<role>` holds each role: tenant roles in `fraud` (with a
/// `growth` file that grants them nothing), mesh roles in `*`.
fn matrix_policy() -> (tempfile::TempDir, PolicySet) {
    let dir = tempfile::tempdir().unwrap();
    let mut global = repo_roles();
    let mut fraud = String::new();
    for (role, per_tenant, _) in role_table() {
        let line = |dom: &str| format!("g, {}, role:{role}, {dom}\n", principal(&format!("holder-{role}")));
        if per_tenant {
            fraud.push_str(&line("fraud"));
        } else {
            global.push_str(&line("*"));
        }
    }
    write_policy(dir.path(), &global, &[("fraud", &fraud), ("growth", "# nothing granted\n")]);
    let policy = PolicySet::load(dir.path()).unwrap();
    (dir, policy)
}

#[test]
fn role_matrix() {
    let (_dir, policy) = matrix_policy();
    let (own_entity, other_entity) = (urn("mm://fraud/dataset/transactions"), urn("mm://growth/model/churn"));
    let (own, other) = (tenant("fraud"), tenant("growth"));
    let resources = [
        ("own entity", Resource::Entity(&own_entity), Some(true)),
        ("own tenant", Resource::Tenant(&own), Some(true)),
        ("other entity", Resource::Entity(&other_entity), Some(false)),
        ("other tenant", Resource::Tenant(&other), Some(false)),
        ("mesh", Resource::Mesh, None),
    ];
    let mut checked = 0;
    for (role, per_tenant, actions) in role_table() {
        let who = principal(&format!("holder-{role}"));
        for action in Action::ALL {
            for (name, resource, own_tenant) in &resources {
                // An action is only ever checked on its levels (the node never asks for
                // `search` on an entity): the matrix covers exactly those.
                if !action.levels().contains(&resource.level()) {
                    continue;
                }
                let in_scope = match own_tenant {
                    Some(own) => !per_tenant || *own,
                    // The mesh: only roles held across tenants.
                    None => !per_tenant,
                };
                let want = in_scope && actions.contains(&action);
                let got = policy.check(&who, action, resource);
                assert_eq!(got.allowed, want, "role {role}, action {action}, {name}: {:?}", got.reason);
                assert_eq!(got.digest, policy.digest());
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} cases");
}

#[test]
fn default_deny() {
    let (_dir, policy) = matrix_policy();
    let resource_urn = urn("mm://fraud/dataset/transactions");
    let t = tenant("fraud");
    for who in [principal("stranger"), String::new(), "role:admin".to_owned(), "*".to_owned()] {
        for action in Action::ALL {
            for resource in [Resource::Entity(&resource_urn), Resource::Tenant(&t), Resource::Mesh] {
                let d = policy.check(&who, action, &resource);
                assert!(!d.allowed, "`{who}` {action} {resource}");
                let want_reason = if who.is_empty() || who.starts_with("role:") {
                    matches!(d.reason, Reason::NotAPrincipal)
                } else {
                    matches!(d.reason, Reason::NoGrant { .. })
                };
                assert!(want_reason, "`{who}`: {:?}", d.reason);
            }
        }
    }
    // A tenant without a file: only global roles reach it.
    let unknown = urn("mm://payments/dataset/x");
    assert!(!policy.check(&principal("holder-writer"), Action::Read, &Resource::Entity(&unknown)).allowed);
    assert!(policy.check(&principal("holder-discoverer"), Action::Discover, &Resource::Entity(&unknown)).allowed);
}

#[test]
fn discoverer_sees_names_only() {
    let (_dir, policy) = matrix_policy();
    let catalog = principal("holder-discoverer");
    for u in ["mm://fraud/dataset/transactions", "mm://growth/model/churn", "mm://payments/run/r1"] {
        let u = urn(u);
        assert_eq!(policy.visibility(&catalog, &u), Visibility::DiscoverOnly, "{u}");
        for action in [Action::Read, Action::Write, Action::Link, Action::Delete] {
            assert!(!policy.check(&catalog, action, &Resource::Entity(&u)).allowed, "{action} {u}");
        }
    }
    let (fraud, growth) = (urn("mm://fraud/dataset/transactions"), urn("mm://growth/model/churn"));
    assert_eq!(policy.visibility(&principal("holder-reader"), &fraud), Visibility::Full);
    assert_eq!(policy.visibility(&principal("holder-reader"), &growth), Visibility::Hidden);
    assert_eq!(policy.visibility(&principal("stranger"), &fraud), Visibility::Hidden);
}

#[test]
fn lineage_into_another_tenant_needs_its_grant() {
    let dir = tempfile::tempdir().unwrap();
    let fraud = format!("g, {}, role:writer, fraud\ng, {}, role:writer, fraud\n", principal("etl"), principal("other"));
    let growth_without = "# no grants\n".to_owned();
    let growth_with = format!("g, {}, role:linker, growth\n", principal("etl"));
    let (signups, run) = (urn("mm://growth/dataset/signups"), urn("mm://fraud/run/r1"));

    write_policy(dir.path(), &repo_roles(), &[("fraud", &fraud), ("growth", &growth_without)]);
    let policy = PolicySet::load(dir.path()).unwrap();
    // Inside fraud: both ends in the writer's tenant.
    assert!(policy.check_edge(&principal("etl"), &urn("mm://fraud/dataset/a"), &run).allowed);
    let d = policy.check_edge(&principal("etl"), &signups, &run);
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::NoGrant { action: Action::Link, object: signups.to_string() });
    // Either direction.
    assert!(!policy.check_edge(&principal("etl"), &run, &signups).allowed);

    write_policy(dir.path(), &repo_roles(), &[("fraud", &fraud), ("growth", &growth_with)]);
    let policy = PolicySet::load(dir.path()).unwrap();
    assert!(policy.check_edge(&principal("etl"), &signups, &run).allowed);
    assert!(policy.check_edge(&principal("etl"), &run, &signups).allowed);
    // The grant is `link` only, and for `etl` only.
    assert!(!policy.check(&principal("etl"), Action::Read, &Resource::Entity(&signups)).allowed);
    assert!(!policy.check_edge(&principal("other"), &signups, &run).allowed);
}

#[test]
fn sensitivity_markers() {
    let dir = tempfile::tempdir().unwrap();
    let global = format!("{}s, mm://*/deployment/*\n", repo_roles());
    let fraud = "s, mm://fraud/dataset/transactions\ns, mm://fraud/model/pii%2F*\n";
    write_policy(dir.path(), &global, &[("fraud", fraud), ("growth", "")]);
    let policy = PolicySet::load(dir.path()).unwrap();
    let sensitive = |u: &str| policy.is_sensitive(&Resource::Entity(&urn(u)));
    assert!(sensitive("mm://fraud/dataset/transactions"));
    assert!(!sensitive("mm://fraud/dataset/transactions2"));
    assert!(sensitive("mm://fraud/model/pii%2Fscore"));
    assert!(!sensitive("mm://fraud/model/score"));
    assert!(sensitive("mm://growth/deployment/eu"));
    assert!(sensitive("mm://payments/deployment/eu"));
    // A tenant's markers are its own.
    assert!(!sensitive("mm://growth/dataset/transactions"));
    assert!(!policy.is_sensitive(&Resource::Tenant(&tenant("fraud"))));
    // Decisions carry the flag, allowed or not.
    let u = urn("mm://fraud/dataset/transactions");
    let d = policy.check(&principal("stranger"), Action::Read, &Resource::Entity(&u));
    assert!(!d.allowed && d.sensitive);
}

#[test]
fn the_repository_policy_loads_and_its_tests_pass() {
    let policy = PolicySet::load(&repo_policies()).unwrap();
    assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
    let report = metamesh_policy::run_tests(&policy, &repo_policies().join("tests")).unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(report.passed() > 30);
    // The dev mesh's tenants (`metamesh dev`) each have a file.
    let tenants: BTreeSet<String> = std::fs::read_dir(repo_policies().join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".csv").to_owned())
        .collect();
    assert_eq!(tenants, BTreeSet::from(["fraud".to_owned(), "growth".to_owned(), "platform".to_owned()]));
}

#[test]
fn levels_of_actions_are_consistent_with_the_model() {
    // Every action has at least one level, and mesh actions are checked on the mesh or tenants.
    for a in Action::ALL {
        if a.is_mesh_action() {
            assert!(a.levels().iter().all(|l| *l != Level::Entity), "{a}");
        }
    }
}
