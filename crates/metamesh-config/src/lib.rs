//! Configuration of one `metamesh node` process (a replica of a shard group): one TOML file,
//! every value overridable by an environment variable, and errors that name the key.
//!
//! ```text
//! TOML text ──► tree (tree.rs) ◄── METAMESH_<SECTION>__<KEY> variables, OTEL_EXPORTER_OTLP_ENDPOINT
//!                  │  each value remembers its origin: file, variable, or default
//!                  ▼
//!          deserializer (de.rs) ──► NodeConfig (schema.rs) ──► rules across keys (validate.rs)
//! ```
//!
//! # Environment overrides
//!
//! A variable `METAMESH_<PATH>` sets the key whose dotted path, upper-cased with each `.` written
//! `__` (two underscores), is `<PATH>`: `METAMESH_RAFT__HEARTBEAT_MS=100` sets
//! `raft.heartbeat_ms`. The whole `[[peers]]` array is set at once by `METAMESH_PEERS`, written
//! as a TOML array. Variables override the file. Other `METAMESH_` variables without `__` (such as
//! `METAMESH_LOG`) belong to the binary and are ignored here; a variable with `__` that names no
//! key is an error, like an unknown key in the file. Values are read as the key's type:
//! `METAMESH_NODE__ID=2` is an integer, `METAMESH_NODE__SHARD_GROUP=2` the string "2".
//!
//! # Errors
//!
//! [`ConfigError`] names the key by dotted path and where the value came from:
//! `invalid value for raft.heartbeat_ms (from METAMESH_RAFT__HEARTBEAT_MS): expected an integer,
//! found "fast"`. Unknown keys are refused, so that a typo cannot silently leave a default in
//! place.
//!
//! This crate does no IO besides reading the one file in [`NodeConfig::load`]; it neither
//! creates directories nor opens certificates.

mod de;
mod error;
mod mesh;
mod router;
mod schema;
mod tree;
mod validate;

use std::path::Path;

pub use error::{ConfigError, Origin};
pub use mesh::{GroupMap, MeshMap, ReplicaAddr};
pub use router::{HttpSection, OpenLineageSection, RouterConfig, RouterListen, RouterSection, WitnessSection};
pub use schema::{
    AuditSection, ListenSection, MeshSection, NodeConfig, NodeSection, PeerConfig, PolicySection, RaftSection,
    StoreSection, Synchronous, TelemetrySection, TlsSection, DEFAULT_CLIENT_ADDR, DEFAULT_METRICS_ADDR,
    DEFAULT_RAFT_ADDR, DEFAULT_TRUST_DOMAIN, MAX_READERS, METRICS_OFF,
};
pub use tree::{env_var_for, ENV_PREFIX, ENV_SEPARATOR, OTEL_ENDPOINT_ENV};

impl NodeConfig {
    /// Reads the file at `path` and applies the process environment over it.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let env = process_env()?;
        NodeConfig::build(&text, Some(path), &env)
    }

    /// Parses `toml_text` and applies `env` over it, as [`NodeConfig::load`] does with the process
    /// environment. Later pairs win over earlier ones with the same name.
    pub fn load_from(
        toml_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<NodeConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        NodeConfig::build(toml_text, None, &env)
    }

    fn build(toml_text: &str, file: Option<&Path>, env: &[(String, String)]) -> Result<NodeConfig, ConfigError> {
        let tree = tree::build(toml_text, file, env, tree::SECTIONS)?;
        let config: NodeConfig = serde::Deserialize::deserialize(de::NodeDe { node: &tree, path: String::new() })
            .map_err(de::DeError::into_config_error)?;
        validate::validate(&config, &tree)?;
        Ok(config)
    }

    /// The other members of the Raft group: `peers` without this node's own entry.
    pub fn remote_peers(&self) -> impl Iterator<Item = &PeerConfig> {
        self.peers.iter().filter(move |p| p.id != self.node.id)
    }
}

/// The process environment, keeping only what this crate reads; a non-UTF-8 value of such a
/// variable is an error rather than silently skipped.
pub(crate) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) && name != OTEL_ENDPOINT_ENV {
            continue;
        }
        match value.into_string() {
            Ok(value) => env.push((name.to_owned(), value)),
            // `METAMESH_LOG` and the like are the binary's business, not a configuration key.
            Err(_) if !name.contains(ENV_SEPARATOR) && name != "METAMESH_PEERS" && name != OTEL_ENDPOINT_ENV => {}
            Err(_) => {
                let reason = "value is not valid utf-8".to_owned();
                return Err(ConfigError::EnvVar { var: name.to_owned(), reason });
            }
        }
    }
    Ok(env)
}
