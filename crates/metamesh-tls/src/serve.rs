//! Serving tonic over our own rustls acceptor.
//!
//! tonic's built-in TLS offers only `h2` and hands handlers raw certificates; we need `http/1.1`
//! on the client API and a mesh identity on every request. So the pipeline is ours:
//!
//! accept TCP → TLS handshake in its own task (client certificate verified by rustls against the
//! mesh CA) → [`identify`] the peer → check the listener's [`PeerPolicy`] → yield a [`TlsConn`]
//! to `tonic::transport::Server::serve_with_incoming`, whose [`Connected`] impl puts a
//! [`PeerInfo`] into every request's extensions.
//!
//! A connection that fails any step is logged at debug level and dropped; it is never yielded as
//! an error, because tonic stops serving on accept errors it does not consider transient.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;

use crate::identity::{identify, Identity, PeerRole};

/// How long a peer may take to complete the handshake before it is dropped, so that idle
/// half-open connections do not pin memory forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes may be in flight; past it the listener stops accepting (the kernel
/// backlog queues the rest) instead of spawning without bound.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// How long to pause accepting after an accept error that is not about one connection (out of
/// file descriptors, say): retrying at once would spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// How long to wait for our close_notify to be sent to a peer refused by policy.
const REFUSAL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Which verified mesh members a listener lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Any certificate from the mesh CA: the client API, where authorization decides later.
    AnyMeshMember,
    /// Node certificates only: the internal Raft port, which clients and routers never use.
    NodesOnly,
}

impl PeerPolicy {
    /// Whether a peer with this identity may use the listener.
    pub fn admits(self, identity: &Identity) -> bool {
        match self {
            PeerPolicy::AnyMeshMember => true,
            PeerPolicy::NodesOnly => identity.role == PeerRole::Node,
        }
    }
}

/// What a handler knows about the connection a request came on.
///
/// Read it with `request.extensions().get::<PeerInfo>()` or [`peer_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The verified peer's principal and role.
    pub identity: Identity,
    /// The peer's TCP address (for logs; never for authorization).
    pub remote_addr: SocketAddr,
}

/// The peer of the connection `request` arrived on, when it was served through [`incoming`].
pub fn peer_info<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
    request.extensions().get::<PeerInfo>()
}

/// A TLS connection whose peer has been verified, identified and admitted.
#[derive(Debug)]
pub struct TlsConn {
    /// The encrypted stream.
    stream: TlsStream<TcpStream>,
    /// Who is on the other end, handed to tonic per request.
    peer: PeerInfo,
}

impl TlsConn {
    /// Who is on the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// The protocol agreed by ALPN (`h2` or `http/1.1`), if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.stream.get_ref().1.alpn_protocol()
    }

    /// The underlying TLS stream.
    pub fn into_inner(self) -> TlsStream<TcpStream> {
        self.stream
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The admitted connections of `listener`, for `Server::serve_with_incoming`.
///
/// Handshakes run concurrently in their own tasks, so a slow or hostile peer delays nobody
/// else. The stream never yields an error (the `Result` is what tonic's signature wants) and
/// ends only when dropped; dropping it closes the listener and aborts pending handshakes.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    policy: PeerPolicy,
) -> impl Stream<Item = Result<TlsConn, io::Error>> + Send + 'static {
    Incoming { listener, acceptor: TlsAcceptor::from(config), policy, handshakes: JoinSet::new(), backoff: None }
}

/// The stream behind [`incoming`]: polls the listener and the handshake tasks in turn.
struct Incoming {
    /// Where TCP connections come from.
    listener: TcpListener,
    /// Performs the TLS handshake with the listener's config.
    acceptor: TlsAcceptor,
    /// Who is admitted after the handshake.
    policy: PeerPolicy,
    /// Handshakes in flight; each yields a connection or `None` when it was refused.
    handshakes: JoinSet<Option<TlsConn>>,
    /// Set while accepting is paused after a resource error.
    backoff: Option<Pin<Box<Sleep>>>,
}

impl Stream for Incoming {
    type Item = Result<TlsConn, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.poll_accept(cx);
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(conn)))) => return Poll::Ready(Some(Ok(conn))),
                Poll::Ready(Some(Ok(None))) => {}
                Poll::Ready(Some(Err(e))) => tracing::warn!(error = %e, "tls handshake task failed"),
                // Nothing in flight: the listener (or the backoff timer) holds our waker.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
            // A finished handshake freed a slot: accept more before waiting.
            this.poll_accept(cx);
        }
    }
}

impl Incoming {
    /// Accepts every connection ready now (up to the handshake limit), spawning a handshake for
    /// each. Leaves a waker registered with the listener or the backoff timer unless at the limit,
    /// in which case the handshake set holds it.
    fn poll_accept(&mut self, cx: &mut Context<'_>) {
        while self.handshakes.len() < MAX_PENDING_HANDSHAKES {
            if let Some(backoff) = &mut self.backoff {
                if backoff.as_mut().poll(cx).is_pending() {
                    return;
                }
                self.backoff = None;
            }
            match self.listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, remote_addr))) => {
                    let acceptor = self.acceptor.clone();
                    self.handshakes.spawn(handshake(acceptor, tcp, remote_addr, self.policy));
                }
                Poll::Ready(Err(e)) if is_per_connection(&e) => {
                    tracing::debug!(error = %e, "accept failed for one connection");
                }
                Poll::Ready(Err(e)) => {
                    tracing::warn!(error = %e, pause_ms = ACCEPT_ERROR_BACKOFF.as_millis() as u64, "accept failed");
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_BACKOFF)));
                }
                Poll::Pending => return,
            }
        }
    }
}

/// Accept errors that concern one connection only, after which accepting goes on at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Handshakes with one peer, identifies it and applies the policy; `None` if it is refused.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote_addr: SocketAddr,
    policy: PeerPolicy,
) -> Option<TlsConn> {
    // Failing to set nodelay only costs latency; not a reason to refuse the peer.
    let _ = tcp.set_nodelay(true);
    let mut stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote_addr, error = %e, "tls handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%remote_addr, "tls handshake timed out");
            return None;
        }
    };
    // The verifier requires a client certificate, so a finished handshake always has one; the
    // check stays in case a caller passes a config that does not.
    let Some(leaf) = stream.get_ref().1.peer_certificates().and_then(|certs| certs.first()) else {
        tracing::debug!(%remote_addr, "peer presented no certificate");
        return None;
    };
    let identity = match identify(leaf) {
        Ok(identity) => identity,
        Err(e) => {
            tracing::debug!(%remote_addr, error = %e, "cannot identify peer");
            return None;
        }
    };
    if !policy.admits(&identity) {
        tracing::debug!(%remote_addr, principal = %identity.principal, ?policy, "peer refused by listener policy");
        // Say goodbye properly so the peer sees a closed connection rather than a reset.
        let _ = tokio::time::timeout(REFUSAL_SHUTDOWN_TIMEOUT, stream.shutdown()).await;
        return None;
    }
    tracing::debug!(%remote_addr, principal = %identity.principal, "peer admitted");
    Some(TlsConn { stream, peer: PeerInfo { identity, remote_addr } })
}
