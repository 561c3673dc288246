//! Policy directories for tests: the repository's model and roles (`policies/model.conf`,
//! `policies/global.csv`), plus the grants a test needs.

use std::path::Path;

use tempfile::TempDir;

/// The repository's casbin model.
pub const MODEL: &str = include_str!("../../../policies/model.conf");
/// The repository's global roles and grants.
pub const GLOBAL: &str = include_str!("../../../policies/global.csv");

/// A policy directory: the repository's model and roles, `global` appended to `global.csv`
/// (`g, <principal>, role:<r>, *` lines), and one file per `(tenant, lines)` in `tenants/`.
pub fn policy_dir(global: &str, tenants: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_policy(dir.path(), global, tenants);
    dir
}

/// Writes the files of [`policy_dir`] into `dir`.
pub fn write_policy(dir: &Path, global: &str, tenants: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("tenants")).expect("policy dir");
    std::fs::write(dir.join("model.conf"), MODEL).expect("model.conf");
    std::fs::write(dir.join("global.csv"), format!("{GLOBAL}\n# Test grants.\n{global}\n")).expect("global.csv");
    for (tenant, lines) in tenants {
        std::fs::write(dir.join("tenants").join(format!("{tenant}.csv")), lines).expect("tenant file");
    }
}

/// `global.csv` lines giving each principal every role in every tenant and on the mesh.
pub fn all_rights(principals: &[String]) -> String {
    let mut out = String::new();
    for p in principals {
        for role in ["admin", "mesh-admin", "compliance-auditor"] {
            out.push_str(&format!("g, {p}, role:{role}, *\n"));
        }
    }
    out
}
