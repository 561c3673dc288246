//! Dialling the node: certificate files, address resolution, the mTLS channel, and the
//! per-service clients every command uses.
//!
//! Configuration problems are found before dialling and reported as usage errors naming the
//! file and the flag that set it, because "cannot read certs/alice.pem (--cert, METAMESH_CERT)"
//! is something a user can fix and a TLS stack trace is not. Failing to reach the node is
//! reported separately (exit 3) so scripts can retry.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::schema_service_client::SchemaServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_proto::v1::watch_service_client::WatchServiceClient;
use metamesh_tls::{Credentials, TlsError};
use rustls::ClientConfig;
use tokio::sync::OnceCell;
use tonic::transport::Channel;

use crate::cli::Global;
use crate::error::{rustls_cause, usage, Unreachable};
use crate::input;
use crate::output::Output;

/// Largest reply accepted: a full page of entities with large properties exceeds tonic's 4 MiB
/// default (1,000 × up to 256 KiB).
const MAX_REPLY_BYTES: usize = 512 * 1024 * 1024;

/// What every command gets: the node's channel (dialled on first use) and the global output
/// and read settings.
///
/// Dialling waits for the first client so that a command checks its own arguments and files
/// first: a typo in `import data.jsonl` is a usage error even when the node is down.
pub struct Ctx {
    /// `--addr`.
    addr: String,
    /// The name the node's certificate must carry.
    server_name: String,
    /// Our certificate and the mesh CA.
    tls: Arc<ClientConfig>,
    /// The channel, once dialled.
    channel: OnceCell<Channel>,
    /// `--output`.
    pub output: Output,
    /// `--consistency` and `--max-staleness`, for every read that takes a consistency.
    consistency: v1::ReadConsistency,
}

impl Ctx {
    /// Checks the address and loads the credentials the global flags name; does not dial.
    pub fn new(global: &Global) -> anyhow::Result<Ctx> {
        let tls = credentials(global)?
            .client_config()
            .map_err(|e| usage(format!("unusable client certificate or key: {e}")))?;
        let (host, _port) = split_host_port(&global.addr)?;
        let server_name = global.server_name.clone().unwrap_or_else(|| host.to_owned());
        let consistency = input::read_consistency(global.consistency, global.max_staleness)?;
        Ok(Ctx {
            addr: global.addr.clone(),
            server_name,
            tls,
            channel: OnceCell::new(),
            output: global.output,
            consistency,
        })
    }

    /// The channel to the node, dialled on first use.
    async fn channel(&self) -> anyhow::Result<Channel> {
        self.channel.get_or_try_init(|| self.dial()).await.cloned()
    }

    async fn dial(&self) -> anyhow::Result<Channel> {
        let mut last = None;
        // A name may resolve to several addresses (`localhost`: ::1 and 127.0.0.1); the first
        // that answers wins.
        for addr in resolve(&self.addr).await? {
            match metamesh_tls::connect(addr, self.tls.clone(), &self.server_name).await {
                Ok(channel) => return Ok(channel),
                Err(e @ TlsError::InvalidServerName(_)) => {
                    return Err(usage(format!("{e} (--server-name, METAMESH_SERVER_NAME)")))
                }
                Err(e) => {
                    if let Some(tls) = rustls_cause(&e) {
                        // The node answered but the handshake failed: retrying will not help,
                        // the certificates or the expected name must change.
                        return Err(usage(format!(
                            "tls handshake with {addr} failed: {tls} (check --ca and --server-name)"
                        )));
                    }
                    last = Some(e)
                }
            }
        }
        let err = last.map(anyhow::Error::new).unwrap_or_else(|| anyhow::anyhow!("no address"));
        Err(err.context(Unreachable(format!("node {} is unreachable", self.addr))))
    }

    /// The consistency to put into read requests.
    pub fn consistency(&self) -> Option<v1::ReadConsistency> {
        Some(self.consistency)
    }

    pub async fn catalog(&self) -> anyhow::Result<CatalogServiceClient<Channel>> {
        Ok(CatalogServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    pub async fn lineage(&self) -> anyhow::Result<LineageServiceClient<Channel>> {
        Ok(LineageServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    pub async fn search(&self) -> anyhow::Result<SearchServiceClient<Channel>> {
        Ok(SearchServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    pub async fn schema(&self) -> anyhow::Result<SchemaServiceClient<Channel>> {
        Ok(SchemaServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    pub async fn watch(&self) -> anyhow::Result<WatchServiceClient<Channel>> {
        Ok(WatchServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }

    pub async fn admin(&self) -> anyhow::Result<AdminServiceClient<Channel>> {
        Ok(AdminServiceClient::new(self.channel().await?))
    }

    pub async fn audit(&self) -> anyhow::Result<AuditServiceClient<Channel>> {
        Ok(AuditServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_REPLY_BYTES))
    }
}

/// The credentials in `--ca`, `--cert` and `--key`, each checked to exist first so that the
/// error names the flag as well as the file.
fn credentials(global: &Global) -> anyhow::Result<Credentials> {
    let cert =
        global.cert.as_ref().ok_or_else(|| usage("no client certificate: pass --cert FILE or set METAMESH_CERT"))?;
    let key = global.key.as_ref().ok_or_else(|| usage("no client key: pass --key FILE or set METAMESH_KEY"))?;
    check_file(&global.ca, "ca certificate", "--ca, METAMESH_CA")?;
    check_file(cert, "client certificate", "--cert, METAMESH_CERT")?;
    check_file(key, "client key", "--key, METAMESH_KEY")?;
    Credentials::load(&global.ca, cert, key).map_err(|e| usage(e.to_string()))
}

/// Fails with a usage error naming `path`, what it is and where it came from, unless it is a
/// readable file.
fn check_file(path: &Path, what: &str, source: &str) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(usage(format!("{what} {} is not a file ({source})", path.display()))),
        Err(e) => Err(usage(format!("cannot read {what} {}: {e} ({source})", path.display()))),
    }
}

/// `host:port` split; the host without IPv6 brackets (it is also the default server name).
fn split_host_port(addr: &str) -> anyhow::Result<(&str, u16)> {
    let bad = || usage(format!("--addr {addr:?} is not host:port"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Every address `addr` resolves to; an unresolvable name is unreachable (exit 3), as DNS
/// failures are usually transient.
async fn resolve(addr: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(anyhow::Error::new)
        .with_context(|| Unreachable(format!("cannot resolve {addr}")))?
        .collect();
    if addrs.is_empty() {
        return Err(anyhow::Error::new(Unreachable(format!("{addr} resolves to no address"))));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:7400").unwrap(), ("127.0.0.1", 7400));
        assert_eq!(split_host_port("[::1]:7400").unwrap(), ("::1", 7400));
        assert_eq!(split_host_port("node-1.mesh:7400").unwrap(), ("node-1.mesh", 7400));
        assert!(split_host_port("127.0.0.1").is_err());
        assert!(split_host_port(":7400").is_err());
    }
}
