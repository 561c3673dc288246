//! The configuration of one `metamesh router` process: one TOML file, every key overridable by
//! `METAMESH_<SECTION>__<KEY>` as for nodes (`docs/configuration.md`).
//!
//! ```toml
//! [router]
//! id = "r1"
//! mesh = "mesh.toml"              # the mesh map (see `MeshMap`)
//! [listen]
//! grpc = "127.0.0.1:7300"
//! http = "127.0.0.1:7301"         # or "off"
//! metrics = "127.0.0.1:7302"      # or "off"
//! [tls]                            # a router certificate (`metamesh certs router`)
//! ca = "certs/ca.pem"
//! cert = "certs/router.pem"
//! key = "certs/router.key"
//! [policy]
//! dir = "policies"
//! [witness]                       # signed audit checkpoints of every shard (groups with audit_key)
//! state = "witness.json"          # kept across restarts; none = in memory
//! every_ms = 60000
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::error::ConfigError;
use crate::schema::{PolicySection, TelemetrySection, TlsSection, METRICS_OFF};

const SECTIONS: &[&str] = &["router", "listen", "tls", "policy", "telemetry", "witness", "http", "openlineage"];

/// Everything a router needs to start.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    pub router: RouterSection,
    #[serde(default)]
    pub listen: RouterListen,
    pub tls: TlsSection,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub telemetry: TelemetrySection,
    #[serde(default)]
    pub witness: WitnessSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub openlineage: OpenLineageSection,
}

/// The HTTPS listener (`listen.http`): OpenLineage ingestion, the Marquez-shaped API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// A TOML file of API keys, stored as SHA-256 hashes (docs/openlineage.md): callers that
    /// hold no certificate send `Authorization: Bearer <key>`. None: certificates only.
    pub api_keys: Option<PathBuf>,
    /// Largest request body accepted, after gzip decompression (bytes).
    pub max_body_bytes: Option<usize>,
}

/// Which tenant owns what OpenLineage names (docs/openlineage.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenLineageSection {
    /// Job namespace → tenant. A namespace not listed belongs to the tenant of the same name.
    pub namespaces: std::collections::BTreeMap<String, String>,
    /// Dataset namespace → tenant, for the inputs of a job: an input whose namespace is listed
    /// (or is a tenant's name) and belongs to another tenant is referenced there. Outputs
    /// always belong to the producing job's tenant.
    pub datasets: std::collections::BTreeMap<String, String>,
    /// The tenant of a job namespace that nothing maps; none: such events are refused (403).
    pub default_tenant: Option<String>,
}

/// `[router]`: identity and the mesh map.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// A name for logs and metrics.
    #[serde(default = "default_router_id")]
    pub id: String,
    /// The mesh map file.
    pub mesh: PathBuf,
    /// How often each replica's health is checked, in milliseconds.
    #[serde(default = "default_health_ms")]
    pub health_every_ms: u64,
}

fn default_router_id() -> String {
    "router".to_owned()
}

fn default_health_ms() -> u64 {
    1_000
}

/// `[listen]`: the router's listeners.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterListen {
    /// gRPC (`metamesh.v1`) over mutual TLS.
    #[serde(deserialize_with = "addr")]
    pub grpc: SocketAddr,
    /// HTTPS (JSON API, health), HTTP/1.1 and h2; `"off"` for none.
    #[serde(deserialize_with = "optional_addr")]
    pub http: Option<SocketAddr>,
    /// Prometheus `/metrics` over plain HTTP; `"off"` for none.
    #[serde(deserialize_with = "optional_addr")]
    pub metrics: Option<SocketAddr>,
}

impl Default for RouterListen {
    fn default() -> Self {
        RouterListen {
            grpc: "127.0.0.1:7300".parse().expect("valid address"),
            http: Some("127.0.0.1:7301".parse().expect("valid address")),
            metrics: None,
        }
    }
}

/// `[witness]`: where the router keeps the checkpoints it witnessed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessSection {
    /// A JSON file the witness state is saved to and restored from; none keeps it in memory.
    pub state: Option<PathBuf>,
    /// How often every shard's latest checkpoint is fetched and checked, in milliseconds.
    pub every_ms: Option<u64>,
}

fn addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| serde::de::Error::custom("expected an IP address and port such as 127.0.0.1:7300"))
}

fn optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text == METRICS_OFF {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!("expected an IP address and port such as 127.0.0.1:7301, or {METRICS_OFF:?}"))
    })
}

impl RouterConfig {
    /// Reads the file at `path` and applies the process environment over it.
    pub fn load(path: &Path) -> Result<RouterConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        RouterConfig::build(&text, Some(path), &crate::process_env()?)
    }

    /// Parses `toml_text` with `env` over it.
    pub fn load_from(
        toml_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RouterConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        RouterConfig::build(toml_text, None, &env)
    }

    fn build(toml_text: &str, file: Option<&Path>, env: &[(String, String)]) -> Result<RouterConfig, ConfigError> {
        let tree = crate::tree::build(toml_text, file, env, SECTIONS)?;
        let config: RouterConfig = Deserialize::deserialize(crate::de::NodeDe { node: &tree, path: String::new() })
            .map_err(crate::de::DeError::into_config_error)?;
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_owned(),
            origin: crate::tree::origin_of(&tree, key),
            reason,
        };
        for (key, path) in [
            ("router.mesh", &config.router.mesh),
            ("tls.ca", &config.tls.ca),
            ("tls.cert", &config.tls.cert),
            ("tls.key", &config.tls.key),
            ("policy.dir", &config.policy.dir),
        ] {
            crate::validate::non_empty_path(path).map_err(|reason| invalid(key, reason))?;
        }
        if config.http.max_body_bytes.is_some_and(|n| n < 1024) {
            return Err(invalid(
                "http.max_body_bytes",
                format!("at least 1024, found {:?}", config.http.max_body_bytes),
            ));
        }
        if config.witness.every_ms.is_some_and(|ms| ms < 50) {
            return Err(invalid("witness.every_ms", format!("at least 50, found {:?}", config.witness.every_ms)));
        }
        if config.router.health_every_ms < 50 {
            return Err(invalid(
                "router.health_every_ms",
                format!("at least 50, found {}", config.router.health_every_ms),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[router]\nmesh = \"mesh.toml\"\n[tls]\nca = \"ca.pem\"\ncert = \"r.pem\"\nkey = \"r.key\"\n";

    #[test]
    fn defaults_and_overrides() {
        let c = RouterConfig::load_from(MIN, []).unwrap();
        assert_eq!(c.listen.grpc.port(), 7300);
        assert_eq!(c.router.id, "router");
        let c = RouterConfig::load_from(MIN, [("METAMESH_LISTEN__HTTP".to_owned(), "off".to_owned())]).unwrap();
        assert_eq!(c.listen.http, None);
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = RouterConfig::load_from(&MIN.replace("[router]", "[router]\ncolour = 1"), []).unwrap_err();
        assert_eq!(e.key(), Some("router.colour"), "{e}");
        let e = RouterConfig::load_from(&format!("{MIN}[listen]\ngrpc = \"nowhere\"\n"), []).unwrap_err();
        assert_eq!(e.key(), Some("listen.grpc"), "{e}");
        let e = RouterConfig::load_from(&MIN.replace("mesh = \"mesh.toml\"\n", ""), []).unwrap_err();
        assert_eq!(e.key(), Some("router.mesh"), "{e}");
    }
}
