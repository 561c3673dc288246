//! The mesh map: which shard group owns which tenant, and where its replicas listen.
//!
//! One TOML file, versioned like the policies and kept beside them (`mesh.toml`). Routers read
//! it to route and fan out; nodes read it to deliver cross-shard lineage references.
//!
//! ```toml
//! version = 3                      # increases with every change
//! [[groups]]
//! id = "s1"
//! tenants = ["fraud", "platform"]
//! audit_key = "keys/s1.pub.pem"    # optional: the shard's checkpoint key, for witnesses
//! replicas = [{ id = 1, grpc = "127.0.0.1:7101" }, { id = 2, grpc = "127.0.0.1:7111" }]
//! ```
//!
//! A tenant belongs to exactly one group; group ids and tenant names are DNS labels; a group has
//! at least one replica and its replica ids are distinct. Relative paths are relative to the
//! file's directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ConfigError, Origin};
use crate::validate::dns_label;

/// The whole map.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshMap {
    /// Increases with every change; a router logs it and reports it in `GetShardMap`.
    pub version: u64,
    /// The shard groups.
    pub groups: Vec<GroupMap>,
}

/// One shard group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMap {
    /// The group's id (`node.shard_group` of its replicas).
    pub id: String,
    /// The tenants it owns.
    pub tenants: Vec<String>,
    /// Its replicas' client listeners.
    pub replicas: Vec<ReplicaAddr>,
    /// The public key its checkpoints are signed with (SPKI PEM), if witnesses should check them.
    #[serde(default)]
    pub audit_key: Option<PathBuf>,
}

/// One replica's client address.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaAddr {
    /// Its Raft node id.
    pub id: u64,
    /// `host:port` of its client (gRPC) listener.
    pub grpc: String,
}

impl MeshMap {
    /// Reads and checks the map at `path`; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<MeshMap, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut map = MeshMap::parse(&text, Some(path))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for g in &mut map.groups {
            if let Some(key) = &mut g.audit_key {
                if key.is_relative() {
                    *key = base.join(&*key);
                }
            }
        }
        Ok(map)
    }

    /// Parses and checks map text (`file` only names it in errors).
    pub fn parse(text: &str, file: Option<&Path>) -> Result<MeshMap, ConfigError> {
        let origin = Origin::File { path: file.map(ToOwned::to_owned) };
        let map: MeshMap = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.map(ToOwned::to_owned),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: String, reason: String| ConfigError::Invalid { key, origin: origin.clone(), reason };
        if map.groups.is_empty() {
            return Err(invalid("groups".into(), "the mesh needs at least one shard group".into()));
        }
        let mut owner: HashMap<&str, &str> = HashMap::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, g) in map.groups.iter().enumerate() {
            dns_label(&g.id).map_err(|r| invalid(format!("groups[{i}].id"), format!("{r}, found {:?}", g.id)))?;
            if let Some(first) = ids.insert(&g.id, i) {
                return Err(invalid(format!("groups[{i}].id"), format!("{:?} is also groups[{first}].id", g.id)));
            }
            if g.replicas.is_empty() {
                return Err(invalid(format!("groups[{i}].replicas"), "a group needs at least one replica".into()));
            }
            for (j, r) in g.replicas.iter().enumerate() {
                if r.id == 0 {
                    return Err(invalid(format!("groups[{i}].replicas[{j}].id"), "must be at least 1".into()));
                }
                if g.replicas[..j].iter().any(|o| o.id == r.id) {
                    return Err(invalid(format!("groups[{i}].replicas[{j}].id"), format!("{} is repeated", r.id)));
                }
                if r.grpc.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                    return Err(invalid(
                        format!("groups[{i}].replicas[{j}].grpc"),
                        format!("expected host:port, found {:?}", r.grpc),
                    ));
                }
            }
            for (j, t) in g.tenants.iter().enumerate() {
                dns_label(t).map_err(|r| invalid(format!("groups[{i}].tenants[{j}]"), format!("{r}, found {t:?}")))?;
                if let Some(other) = owner.insert(t, &g.id) {
                    return Err(invalid(
                        format!("groups[{i}].tenants[{j}]"),
                        format!("tenant {t:?} is already owned by group {other:?}"),
                    ));
                }
            }
        }
        Ok(map)
    }

    /// The group owning `tenant`.
    pub fn group_of(&self, tenant: &str) -> Option<&GroupMap> {
        self.groups.iter().find(|g| g.tenants.iter().any(|t| t == tenant))
    }

    /// The group with id `id`.
    pub fn group(&self, id: &str) -> Option<&GroupMap> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// Every tenant of the mesh, in map order.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flat_map(|g| g.tenants.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version = 2
[[groups]]
id = "s1"
tenants = ["fraud", "platform"]
replicas = [{ id = 1, grpc = "127.0.0.1:7101" }, { id = 2, grpc = "127.0.0.1:7111" }]
[[groups]]
id = "s2"
tenants = ["growth"]
replicas = [{ id = 1, grpc = "localhost:7201" }]
"#;

    #[test]
    fn reads_groups_and_owners() {
        let map = MeshMap::parse(GOOD, None).unwrap();
        assert_eq!(map.version, 2);
        assert_eq!(map.group_of("growth").unwrap().id, "s2");
        assert_eq!(map.group_of("platform").unwrap().id, "s1");
        assert!(map.group_of("nobody").is_none());
        assert_eq!(map.tenants().collect::<Vec<_>>(), ["fraud", "platform", "growth"]);
    }

    fn error(text: &str) -> String {
        MeshMap::parse(text, None).unwrap_err().to_string()
    }

    #[test]
    fn mistakes_name_the_key() {
        assert!(error(&GOOD.replace("\"growth\"", "\"fraud\"")).contains("groups[1].tenants[0]"));
        assert!(error(&GOOD.replace("id = \"s2\"", "id = \"s1\"")).contains("groups[1].id"));
        assert!(error(&GOOD.replace("localhost:7201", "localhost")).contains("groups[1].replicas[0].grpc"));
        assert!(error(&GOOD.replace("id = 2,", "id = 1,")).contains("groups[0].replicas[1].id"));
        assert!(error(&GOOD.replace("\"growth\"", "\"Growth!\"")).contains("groups[1].tenants[0]"));
        assert!(error(&GOOD.replace("version = 2", "version = 2\ncolour = 1")).contains("colour"));
        assert!(error("version = 1\ngroups = []").contains("groups"));
    }
}
