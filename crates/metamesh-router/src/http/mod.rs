//! The router's HTTPS API (DESIGN §9): OpenLineage ingestion (`POST /api/v1/lineage`, `…/batch`)
//! and the Marquez-shaped reads (`GET /api/v1/lineage`, namespaces, datasets, jobs, runs,
//! search, events). docs/openlineage.md is the user's side of it.
//!
//! Pipeline of a request: TCP → TLS ([`serve`]: ALPN `h2` and `http/1.1`, a client certificate
//! optional) → hyper's HTTP/1.1-or-h2 connection → [`routes`] → a handler, which
//! authenticates ([`auth`]: certificate or bearer API key), checks the policy itself (the same
//! casbin snapshot as the gRPC layer; nodes check again), and calls the shards over gRPC on
//! behalf of the caller (`groups::on_behalf`) or the router's own lineage/search handlers.

pub mod auth;
pub mod error;
mod ingest;
mod marquez;
mod mesh;
pub mod session;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use metamesh_node::{AuditFeed, Authorized};
use metamesh_policy::{Action, Authorizer, Resource};
use metamesh_tls::Identity;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::RouterApi;
use crate::groups::Groups;
use auth::Peer;
pub use auth::{hash_key, ApiKeys};
use error::ApiError;
pub use ingest::Namespaces;

/// A shard's catalog service, as the handlers call it.
type CatalogClient = metamesh_proto::v1::catalog_service_client::CatalogServiceClient<tonic::transport::Channel>;

/// Largest request body by default, after decompression.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Everything a handler needs.
pub struct HttpState {
    pub groups: Arc<Groups>,
    pub api: Arc<RouterApi>,
    pub authorizer: Authorizer,
    pub keys: ApiKeys,
    pub namespaces: Namespaces,
    /// Where refusals are recorded (the shard of the tenant concerned).
    pub refusals: AuditFeed,
    pub max_body: usize,
    /// The web UI's signed-in browsers.
    pub sessions: session::Sessions,
    /// Keys the opaque ids of placeholders in lineage answers (random per process), so that the
    /// same hidden node has the same id across requests without its URN being derivable.
    pub placeholder_key: [u8; 32],
}

impl HttpState {
    /// The caller of a request, with the policy snapshot it is judged by.
    fn authorize(
        &self,
        method: &axum::http::Method,
        headers: &axum::http::HeaderMap,
        peer: &Peer,
    ) -> Result<Authorized, ApiError> {
        let mut caller = match self.session_principal(method, headers) {
            Some(principal) => metamesh_node::Caller {
                peer: metamesh_tls::Identity::without_certificate(&principal),
                principal,
                forwarded: false,
                policy_digest: None,
            },
            None => auth::authenticate(&self.keys, headers, peer)?,
        };
        let policy = self.authorizer.snapshot();
        caller.policy_digest = Some(policy.digest().to_string());
        Ok(Authorized { caller, policy, tenants: Vec::new() })
    }

    /// Sends `request` on the caller's behalf to the catalog service of the group owning
    /// `tenant`, and returns its answer.
    async fn catalog<T, R, F, Fut>(
        &self,
        who: &Authorized,
        tenant: &metamesh_core::TenantId,
        request: T,
        call: F,
    ) -> Result<R, tonic::Status>
    where
        T: Clone,
        F: Fn(CatalogClient, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let group = self.groups.of(tenant)?;
        let reply = self
            .groups
            .call(group, |ch| call(CatalogClient::new(ch), crate::groups::on_behalf(who, request.clone())))
            .await?;
        Ok(reply.into_inner())
    }

    /// The principal of the request's session cookie, when it may stand for the caller: no
    /// `Authorization` header (a bearer key always wins) and a read (sessions never write).
    fn session_principal(&self, method: &axum::http::Method, headers: &axum::http::HeaderMap) -> Option<String> {
        if headers.contains_key(axum::http::header::AUTHORIZATION)
            || !(method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        {
            return None;
        }
        self.sessions.principal(session::token(headers)?)
    }

    /// Refuses (403, recorded in the tenant's audit log) unless the caller holds `action` on
    /// `resource` of `tenant`.
    fn require(&self, who: &Authorized, action: Action, resource: &Resource<'_>, tenant: &str) -> Result<(), ApiError> {
        if who.policy.check(&who.caller.principal, action, resource).allowed {
            return Ok(());
        }
        let named = match resource {
            Resource::Entity(urn) => urn.to_string(),
            Resource::Tenant(t) => format!("mm://{t}"),
            Resource::Mesh => "mesh".to_owned(),
        };
        self.refusals.record(
            &who.caller,
            metamesh_core::command::AuditEvent {
                action: action.as_str().to_owned(),
                tenant: metamesh_core::TenantId::new(tenant).ok(),
                resource: named.clone(),
                allowed: false,
                count: 1,
            },
        );
        Err(ApiError::forbidden(format!("`{}` may not {} {named}", who.caller.principal, action.as_str())))
    }
}

/// The authenticated caller of a request, with the policy snapshot it is judged by: the first
/// extractor of every handler (401 when the request carries no credentials).
pub(crate) struct Who(pub Authorized);

impl axum::extract::FromRequestParts<Arc<HttpState>> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<HttpState>,
    ) -> Result<Who, ApiError> {
        let peer = parts.extensions.get::<Peer>().cloned().unwrap_or(Peer(None));
        state.authorize(&parts.method, &parts.headers, &peer).map(Who)
    }
}

/// The API's routes.
pub fn routes(state: Arc<HttpState>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/lineage", post(ingest::one).get(marquez::lineage))
        .route("/api/v1/lineage/batch", post(ingest::batch))
        .route("/api/v1/column-lineage", get(marquez::column_lineage))
        .route("/api/v1/namespaces", get(marquez::namespaces))
        .route("/api/v1/namespaces/{namespace}", get(marquez::namespace))
        .route("/api/v1/namespaces/{namespace}/datasets", get(marquez::datasets))
        .route("/api/v1/namespaces/{namespace}/datasets/{dataset}", get(marquez::dataset))
        .route("/api/v1/namespaces/{namespace}/datasets/{dataset}/versions", get(marquez::dataset_versions))
        .route("/api/v1/namespaces/{namespace}/jobs", get(marquez::jobs))
        .route("/api/v1/namespaces/{namespace}/jobs/{job}", get(marquez::job))
        .route("/api/v1/namespaces/{namespace}/jobs/{job}/runs", get(marquez::job_runs))
        .route("/api/v1/jobs/runs/{run}", get(marquez::run))
        .route("/api/v1/runs/{run}", get(marquez::run))
        .route("/api/v1/search", get(marquez::search))
        .route("/api/v1/events/lineage", get(marquez::events))
        .route("/api/mesh/v1/lineage", get(marquez::mesh_lineage))
        .route("/api/mesh/v1/whoami", get(mesh::whoami))
        .route("/api/mesh/v1/session", post(session::sign_in).delete(session::sign_out))
        .route("/api/mesh/v1/search", get(mesh::search))
        .route("/api/mesh/v1/entity", get(mesh::entity))
        .route("/api/mesh/v1/audit/records", get(mesh::audit_records))
        .route("/api/mesh/v1/audit/verify", get(mesh::audit_verify))
        .route("/api/mesh/v1/audit/export", get(mesh::audit_export))
        .route("/", get(ui::index))
        .route("/favicon.svg", get(ui::favicon))
        .route("/ui/{file}", get(ui::file))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(
            |uri: axum::http::Uri| async move { ApiError::not_found(format!("no such endpoint: {}", uri.path())) },
        )
        .layer(axum::middleware::map_response(ui::security_headers))
        .with_state(state)
}

/// A fresh random 32-byte key.
pub fn random_key() -> [u8; 32] {
    use rand_core::RngCore;
    let mut key = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut key);
    key
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` over TLS until `stop` turns true. Each connection is HTTP/1.1
/// or h2, as ALPN agreed; a client certificate, if presented, must chain to the mesh CA.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let (acceptor, app, mut stop) = (acceptor.clone(), app.clone(), stop.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "https handshake failed"),
                Err(_) => return tracing::debug!(%remote, "https handshake timed out"),
            };
            let identity: Option<Identity> = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|der| metamesh_tls::identify(der.as_ref()).ok());
            let peer = Peer(identity);
            let service = hyper::service::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer.clone());
                let mut app = app.clone();
                async move { tower_service::Service::call(&mut app, request.map(axum::body::Body::new)).await }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                done = conn.as_mut() => if let Err(e) = done {
                    tracing::debug!(%remote, error = %e, "https connection ended with an error");
                },
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// Completes when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
