//! Dialling a mesh listener: tonic channels over TCP + rustls with our client certificate.
//!
//! tonic's own TLS would need its TLS feature (and its provider choice); a custom connector keeps
//! the one ring-backed [`ClientConfig`] of [`crate::config`] in charge.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use crate::config::ALPN_H2;
use crate::TlsError;

/// How long [`connect`] waits for TCP and TLS before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connector for `Endpoint::connect_with_connector`: dials one address and performs the TLS
/// handshake, checking the server's certificate against `server_name`.
///
/// The URI tonic passes in is ignored: the address was resolved by the caller, and the server
/// name to verify is not necessarily the URI's host.
#[derive(Clone)]
pub struct MeshConnector {
    /// Where to dial.
    addr: SocketAddr,
    /// The TLS client, offering `h2` only.
    tls: TlsConnector,
    /// The name the server's certificate must carry (DNS or IP SAN).
    server_name: ServerName<'static>,
}

impl MeshConnector {
    /// A connector for `addr`, verifying the server as `server_name` (a DNS name or IP address).
    ///
    /// The config's ALPN list is replaced by `h2` alone: tonic speaks nothing else, and a server
    /// that chose `http/1.1` would break the connection after the handshake.
    pub fn new(addr: SocketAddr, config: Arc<ClientConfig>, server_name: &str) -> Result<MeshConnector, TlsError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::InvalidServerName(server_name.to_owned()))?;
        let config = if config.alpn_protocols == [ALPN_H2] {
            config
        } else {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![ALPN_H2.to_vec()];
            Arc::new(config)
        };
        Ok(MeshConnector { addr, tls: TlsConnector::from(config), server_name })
    }
}

impl tower_service::Service<Uri> for MeshConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let (addr, tls, server_name) = (self.addr, self.tls.clone(), self.server_name.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            // Failing to set nodelay only costs latency.
            let _ = tcp.set_nodelay(true);
            let stream = tls.connect(server_name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// Opens a gRPC channel to the mesh listener at `addr`, verifying it as `server_name` and
/// presenting the certificate in `config`.
///
/// With TLS 1.3 the server checks our certificate after our side of the handshake is done, so a
/// refused certificate may surface as a failed first RPC rather than a failed connect.
pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>, server_name: &str) -> Result<Channel, TlsError> {
    let connector = MeshConnector::new(addr, config, server_name)?;
    // The scheme is `http` on purpose: with `https`, tonic would try to add its own TLS layer
    // on top of ours if any crate in the build enabled tonic's TLS features.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| TlsError::Connect { addr, source })?
        .connect_timeout(CONNECT_TIMEOUT);
    endpoint.connect_with_connector(connector).await.map_err(|source| TlsError::Connect { addr, source })
}
