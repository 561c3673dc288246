//! The `/metrics` endpoint: plain HTTP/1.1 on its own listener.
//!
//! Plain HTTP because Prometheus scrapers rarely hold mesh certificates; the figures carry no
//! tenant data. Bind it to an address only the monitoring network reaches.

use std::future::Future;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

/// Serves `GET /metrics` (the registry, rendered at each request) on `listener` until
/// `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], metrics.render()) }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
