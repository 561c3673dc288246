//! Policy directories in temporary directories, built from the repository's model and roles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use metamesh_core::{EntityUrn, TenantId};

/// The repository's `policies/`.
pub fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

pub fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(repo_policies().join(rel)).unwrap()
}

/// The role definitions of the repository's `global.csv` (its `p` lines), without its
/// assignments and markers.
pub fn repo_roles() -> String {
    repo_file("global.csv").lines().filter(|l| l.starts_with("p,")).map(|l| format!("{l}\n")).collect()
}

/// Writes a policy directory: the repository's model, `global` as global.csv, and tenant files.
pub fn write_policy(dir: &Path, global: &str, tenants: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    std::fs::write(dir.join("model.conf"), repo_file("model.conf")).unwrap();
    std::fs::write(dir.join("global.csv"), global).unwrap();
    for (tenant, text) in tenants {
        std::fs::write(dir.join("tenants").join(format!("{tenant}.csv")), text).unwrap();
    }
}

pub fn principal(name: &str) -> String {
    format!("spiffe://metamesh.local/client/{name}")
}

pub fn urn(text: &str) -> EntityUrn {
    text.parse().unwrap()
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}
