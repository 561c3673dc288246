//! Running a router: what `metamesh router --config FILE` and `metamesh dev` do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metamesh_config::{MeshMap, RouterConfig};
use metamesh_node::AuthzLayer;
use metamesh_policy::{Authorizer, WatchOptions};
use metamesh_proto::v1::admin_service_server::AdminServiceServer;
use metamesh_proto::v1::audit_service_server::AuditServiceServer;
use metamesh_proto::v1::catalog_service_server::CatalogServiceServer;
use metamesh_proto::v1::lineage_service_server::LineageServiceServer;
use metamesh_proto::v1::search_service_server::SearchServiceServer;
use metamesh_telemetry::{Metrics, RpcLayer};
use metamesh_tls::{Credentials, PeerPolicy, CLIENT_API_ALPN};
use tonic::service::Routes;

use crate::api::{RouterApi, FORWARDED};
use crate::groups::Groups;
use crate::proxy::Proxy;

/// What a started router exposes to its owner (tests, `metamesh dev`).
pub struct RouterHandle {
    pub groups: Arc<Groups>,
}

/// Runs a router until `shutdown` completes.
pub async fn run_router(config: RouterConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let map = MeshMap::load(&config.router.mesh)
        .map_err(|e| anyhow::anyhow!("router.mesh {}: {e}", config.router.mesh.display()))?;
    tracing::info!(id = %config.router.id, mesh_version = map.version, groups = map.groups.len(), "starting router");
    let authorizer = Authorizer::load(&config.policy.dir)
        .map_err(|e| anyhow::anyhow!("invalid policy in policy.dir {}: {e}", config.policy.dir.display()))?;
    let _policy_watch = authorizer.watch(WatchOptions::default());
    let creds = Credentials::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let groups = Arc::new(Groups::new(map, creds.client_config()?)?);
    let health_task = groups.start_health_checks(Duration::from_millis(config.router.health_every_ms));

    let listener = tokio::net::TcpListener::bind(config.listen.grpc)
        .await
        .with_context(|| format!("binding listen.grpc {}", config.listen.grpc))?;
    let http_listener = match config.listen.http {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding listen.http {addr}"))?)
        }
        None => None,
    };
    let api_keys = match &config.http.api_keys {
        Some(path) => crate::http::ApiKeys::load(path).context("http.api_keys")?,
        None => crate::http::ApiKeys::default(),
    };
    let namespaces = crate::http::Namespaces::new(&config.openlineage)?;
    let metrics_listener = match config.listen.metrics {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding listen.metrics {addr}"))?)
        }
        None => None,
    };
    tracing::info!(grpc = %config.listen.grpc, "router listening");
    let metrics = Arc::new(Metrics::new(0, &format!("router/{}", config.router.id)));
    // The witness of every shard's signed checkpoints (groups with an `audit_key` in the map).
    let witness = Arc::new(
        crate::witness::WitnessTask::from_map(groups.clone(), config.witness.state.clone())
            .context("witness: the mesh map's audit_key files and witness.state")?,
    );
    let witness_task = witness.clone().start(Duration::from_millis(config.witness.every_ms.unwrap_or(60_000)));
    let api = Arc::new(RouterApi { groups: groups.clone(), router_id: config.router.id.clone(), witness });
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(metamesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(metamesh_proto::ML_METADATA_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut routes = Routes::new(CatalogServiceServer::from_arc(api.clone()))
        .add_service(LineageServiceServer::from_arc(api.clone()))
        .add_service(SearchServiceServer::from_arc(api.clone()))
        .add_service(AdminServiceServer::from_arc(api.clone()))
        .add_service(AuditServiceServer::from_arc(api.clone()))
        .add_service(health_service)
        .add_service(reflection);
    let proxy = Proxy { groups: groups.clone() };
    let mut router = std::mem::take(routes.axum_router_mut());
    for path in FORWARDED {
        router = router.route_service(path, proxy.clone());
    }
    // MLMD: every RPC, to the shard of the caller's home tenant (resolved by the authz layer).
    router = router.route_service("/ml_metadata.MetadataStoreService/{*method}", proxy.clone());
    *routes.axum_router_mut() = router;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The router's own refusals are recorded by the shard they concern.
    let (refusals, _refusals_task) = crate::refusals::start(groups.clone());
    let http_server = match http_listener {
        Some(listener) => {
            tracing::info!(http = %listener.local_addr()?, api_keys = api_keys.len(), "router HTTPS API listening");
            let state = Arc::new(crate::http::HttpState {
                groups: groups.clone(),
                api: api.clone(),
                authorizer: authorizer.clone(),
                keys: api_keys,
                namespaces,
                refusals: refusals.clone(),
                max_body: config.http.max_body_bytes.unwrap_or(crate::http::DEFAULT_MAX_BODY),
                sessions: Default::default(),
                placeholder_key: crate::http::random_key(),
            });
            let app = crate::http::routes(state);
            Some(tokio::spawn(crate::http::serve(listener, creds.http_server_config()?, app, stop_rx.clone())))
        }
        None => None,
    };
    let incoming = metamesh_tls::incoming(listener, creds.server_config(CLIENT_API_ALPN)?, PeerPolicy::AnyMeshMember);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(RpcLayer::new(metrics.clone()).with_debug_spans(&["grpc.health.v1.Health/Check"]))
            .layer(AuthzLayer::new(authorizer.clone()).with_audit(refusals))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())),
    );
    let metrics_server = metrics_listener
        .map(|listener| tokio::spawn(metamesh_telemetry::serve_metrics(listener, metrics, stopped(stop_rx.clone()))));
    shutdown.await;
    tracing::info!("router shutting down");
    health_task.abort();
    witness_task.abort();
    let _ = stop_tx.send(true);
    let _ = server.await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    if let Some(server) = http_server {
        let _ = server.await;
    }
    Ok(())
}
