//! Shared fixtures: a mesh CA, credentials per role, and a tonic health server served through
//! `metamesh_tls::incoming` that records the principal of every request it answers.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use metamesh_tls::{connect, incoming, Credentials, MeshCa, PeerInfo, PeerPolicy, Role};
use rustls::ClientConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Long enough for any handshake on loopback, short enough that a hang fails the test quickly
/// (and shorter than the server's 10 s handshake timeout, so serialized handshakes show).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// The trust domain of the test mesh.
pub const DOMAIN: &str = "test.mesh";

pub fn mesh_ca() -> MeshCa {
    MeshCa::generate(DOMAIN).expect("generate ca")
}

/// Credentials for a fresh certificate of `role`/`name`, valid for an hour.
pub fn creds(ca: &MeshCa, role: Role, name: &str) -> Credentials {
    let issued = ca.issue(role, name, Duration::from_secs(3600)).expect("issue");
    Credentials::from_pem(ca.cert_pem(), &issued.cert_pem, &issued.key_pem).expect("credentials")
}

/// A health server on 127.0.0.1 behind our acceptor; stops when dropped.
pub struct HealthServer {
    pub addr: SocketAddr,
    /// `principal role` of every request that reached the service, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl HealthServer {
    pub async fn start(creds: &Credentials, alpn: &[&[u8]], policy: PeerPolicy) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let config = creds.server_config(alpn).expect("server config");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        // Refuses requests without PeerInfo, so a broken `Connected` impl fails every RPC.
        let interceptor = move |request: Request<()>| {
            let peer = request.extensions().get::<PeerInfo>().ok_or_else(|| Status::unauthenticated("no peer"))?;
            record.lock().unwrap().push(format!("{} {:?}", peer.identity.principal, peer.identity.role));
            Ok(request)
        };
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(InterceptedService::new(health, interceptor))
                .serve_with_incoming(incoming(listener, config, policy)),
        );
        HealthServer { addr, seen, task }
    }

    /// Whether the server is still serving (its task has not ended, with or without error).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Dials `addr` as `localhost` with `config` and asks for the overall health.
pub async fn check(addr: SocketAddr, config: Arc<ClientConfig>) -> anyhow::Result<ServingStatus> {
    tokio::time::timeout(RPC_TIMEOUT, async {
        let channel = connect(addr, config, "localhost").await?;
        let response = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await?;
        Ok(response.into_inner().status())
    })
    .await
    .context("health check timed out")?
}
