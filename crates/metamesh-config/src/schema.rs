//! The configuration of one `metamesh node` process: its sections, keys and defaults.
//!
//! `docs/configuration.md` documents every key for operators; keep the two in step.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Everything one replica of a shard group needs to start.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Who this replica is and where its state lives.
    pub node: NodeSection,
    /// The addresses this process binds.
    #[serde(default)]
    pub listen: ListenSection,
    /// The certificates every listener and outgoing connection uses.
    pub tls: TlsSection,
    /// The members of the shard group's Raft group. May list this node itself (so that every
    /// replica can share one block); empty for a single-node group.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Raft timing and log compaction.
    #[serde(default)]
    pub raft: RaftSection,
    /// The SQLite state machine.
    #[serde(default)]
    pub store: StoreSection,
    /// Where the access policies are read from.
    #[serde(default)]
    pub policy: PolicySection,
    /// Logs, traces and metrics export.
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// Signed checkpoints of the audit log.
    #[serde(default)]
    pub audit: AuditSection,
    /// The mesh map, for delivering cross-shard lineage references.
    #[serde(default)]
    pub mesh: MeshSection,
}

/// `[mesh]`: where the mesh map is. Without one, edges into other shards' tenants wait in the
/// outbox (downstream lineage from those tenants does not see them until they are delivered).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshSection {
    /// The mesh map file (`mesh.toml`), re-read when delivery finds a tenant it does not know.
    pub map: Option<PathBuf>,
}

/// `[audit]`: signed checkpoints of the shard's audit log. Without a key the log is protected by
/// its hash chain alone.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// The shard's Ed25519 signing key (PKCS#8 PEM, `metamesh certs --shard-key`); every replica
    /// of the group holds the same one. The leader signs checkpoints with it.
    pub key: Option<PathBuf>,
    /// How often the leader checkpoints the audit log (if records were added); at least 100.
    pub checkpoint_every_ms: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection { key: None, checkpoint_every_ms: 60_000 }
    }
}

/// `[node]`: the replica's identity.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Raft node id, unique within the shard group and never reused; at least 1.
    pub id: u64,
    /// The shard group (one Raft group) this replica belongs to; a lowercase DNS label so it can
    /// appear in host names, metrics labels and file names.
    pub shard_group: String,
    /// Directory holding the SQLite state and the Raft log. This crate checks only that it is
    /// named; creating it is the node's job.
    pub data_dir: PathBuf,
}

/// `[listen]`: bind addresses. Each is an IP address and port; port 0 lets the OS choose.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSection {
    /// gRPC and HTTP for clients and the router.
    #[serde(deserialize_with = "socket_addr")]
    pub client: SocketAddr,
    /// Raft traffic between replicas of the group; never for clients.
    #[serde(deserialize_with = "socket_addr")]
    pub raft: SocketAddr,
    /// Prometheus scrape endpoint; `None` (written `"off"`) disables it.
    #[serde(deserialize_with = "optional_socket_addr")]
    pub metrics: Option<SocketAddr>,
}

/// Default `listen.client`.
pub const DEFAULT_CLIENT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7400));
/// Default `listen.raft`.
pub const DEFAULT_RAFT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7401));
/// Default `listen.metrics`.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7402));
/// The value of `listen.metrics` that disables the metrics listener.
pub const METRICS_OFF: &str = "off";

impl Default for ListenSection {
    fn default() -> Self {
        ListenSection { client: DEFAULT_CLIENT_ADDR, raft: DEFAULT_RAFT_ADDR, metrics: Some(DEFAULT_METRICS_ADDR) }
    }
}

/// `[tls]`: this node's certificate and the mesh's certificate authority.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM file of the CA that signs every certificate of the mesh (peers, routers, clients).
    pub ca: PathBuf,
    /// PEM file of this node's certificate chain.
    pub cert: PathBuf,
    /// PEM file of this node's private key.
    pub key: PathBuf,
    /// SPIFFE trust domain: principals come from URI SANs `spiffe://<trust_domain>/…`.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
}

/// Default `tls.trust_domain`.
pub const DEFAULT_TRUST_DOMAIN: &str = "metamesh.local";

fn default_trust_domain() -> String {
    DEFAULT_TRUST_DOMAIN.to_owned()
}

/// `[[peers]]`: one member of the Raft group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The member's `node.id`.
    pub id: u64,
    /// `host:port` of its Raft listener, as reachable from this node.
    pub raft_addr: String,
    /// `host:port` of its client listener; followers tell clients where the leader is.
    pub client_addr: String,
}

/// `[raft]`: timing and log compaction. Timings are milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSection {
    /// How often the leader reassures followers; must be below the election timeouts.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout; must exceed `heartbeat_ms`.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout; must exceed `election_timeout_min_ms` so
    /// that replicas do not all time out together.
    pub election_timeout_max_ms: u64,
    /// Log entries applied between two snapshots; bounds the log kept on disk and replayed.
    pub snapshot_every: u64,
    /// Most log entries sent in one append request (requests are also cut at 1,024 commands, so
    /// that one is sent within a heartbeat even when entries are large batches).
    pub max_payload_entries: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        RaftSection {
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every: 10_000,
            max_payload_entries: 64,
        }
    }
}

impl RaftSection {
    /// `heartbeat_ms` as a duration.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// `election_timeout_min_ms` as a duration.
    pub fn election_timeout_min(&self) -> Duration {
        Duration::from_millis(self.election_timeout_min_ms)
    }

    /// `election_timeout_max_ms` as a duration.
    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms)
    }
}

/// `[store]`: the SQLite state machine.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// SQLite `synchronous` pragma for the state file.
    pub synchronous: Synchronous,
    /// Read-only connections in the pool serving queries; 1 to 64.
    pub readers: u32,
}

/// Most read connections `store.readers` allows.
pub const MAX_READERS: u32 = 64;

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { synchronous: Synchronous::Normal, readers: 4 }
    }
}

/// How hard SQLite pushes each commit to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Sync every commit of the state file too (the Raft log is always synced).
    Full,
    /// Sync the state file at WAL checkpoints only (the default): a power failure may lose its
    /// latest commits, which Raft re-applies from the synced log; a process crash loses nothing.
    Normal,
}

impl Synchronous {
    /// The value as written in the file, and as SQLite's pragma accepts it.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

/// `[policy]`: casbin model and policies.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Directory with the model and policy files, loaded at start and reloaded on change.
    pub dir: PathBuf,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection { dir: PathBuf::from("policies") }
    }
}

/// `[telemetry]`: logs and OpenTelemetry export.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// `tracing` env-filter directives, e.g. `info,metamesh_raft=debug`.
    pub log: String,
    /// OTLP collector URL; `None` disables export. When unset here, the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable is used.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection { log: "info".to_owned(), otlp_endpoint: None }
    }
}

/// Reads an IP socket address with a message operators can act on (serde's own says only
/// "invalid socket address syntax").
fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| serde::de::Error::custom("expected an IP address and port such as 127.0.0.1:7400"))
}

/// Like [`socket_addr`], or `"off"` for none.
fn optional_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text == METRICS_OFF {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!("expected an IP address and port such as 127.0.0.1:7402, or {METRICS_OFF:?}"))
    })
}

/// A one-line summary for the startup log. Paths are shown (they are not secrets; the key file's
/// contents never pass through here); the OTLP endpoint loses any user name, password and query,
/// which may carry credentials.
impl fmt::Display for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NodeConfig { node, listen, tls, peers, raft, store, policy, telemetry, audit, mesh } = self;
        write!(f, "node id={} shard_group={} data_dir={}", node.id, node.shard_group, node.data_dir.display())?;
        let metrics = listen.metrics.map_or_else(|| METRICS_OFF.to_owned(), |a| a.to_string());
        write!(f, "; listen client={} raft={} metrics={metrics}", listen.client, listen.raft)?;
        write!(
            f,
            "; tls ca={} cert={} key={} trust_domain={}",
            tls.ca.display(),
            tls.cert.display(),
            tls.key.display(),
            tls.trust_domain
        )?;
        let peers: Vec<String> = peers.iter().map(|p| format!("{}@{}", p.id, p.raft_addr)).collect();
        write!(f, "; peers=[{}]", peers.join(", "))?;
        write!(
            f,
            "; raft heartbeat_ms={} election_timeout_ms={}..{} snapshot_every={} max_payload_entries={}",
            raft.heartbeat_ms,
            raft.election_timeout_min_ms,
            raft.election_timeout_max_ms,
            raft.snapshot_every,
            raft.max_payload_entries
        )?;
        write!(f, "; store synchronous={} readers={}", store.synchronous.as_str(), store.readers)?;
        write!(f, "; policy dir={}", policy.dir.display())?;
        match &audit.key {
            Some(key) => write!(f, "; audit key={} checkpoint_every_ms={}", key.display(), audit.checkpoint_every_ms)?,
            None => write!(f, "; audit key=none")?,
        }
        if let Some(map) = &mesh.map {
            write!(f, "; mesh map={}", map.display())?;
        }
        let otlp = telemetry.otlp_endpoint.as_deref().map_or_else(|| "off".to_owned(), redact_url);
        write!(f, "; telemetry log={:?} otlp_endpoint={otlp}", telemetry.log)
    }
}

/// `https://user:secret@host:4317/v1?token=x` → `https://***@host:4317/v1?***`.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => tail.to_owned(),
    };
    let tail = tail.split('#').next().unwrap_or_default();
    if scheme.is_empty() {
        format!("{host}{tail}")
    } else {
        format!("{scheme}://{host}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(redact_url("https://collector:4317"), "https://collector:4317");
        assert_eq!(redact_url("https://u:p@collector:4317/v1?token=x"), "https://***@collector:4317/v1?***");
        assert_eq!(redact_url("http://collector/x#frag"), "http://collector/x");
    }
}
