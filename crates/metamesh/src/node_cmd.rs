//! `metamesh node --config FILE`: one replica of a shard group.
//!
//! Two TLS listeners: the Raft listener (replica-to-replica; node certificates of this mesh
//! only) and the client listener (any certificate of this mesh: the `metamesh.v1` services,
//! gRPC health and reflection). Any replica serves clients: followers forward writes to the
//! leader and take a read index from it for linearizable reads. The replica with the lowest id among the configured
//! voters bootstraps the group on its first start; the others wait to be contacted.
//!
//! Telemetry (`metamesh-telemetry`, see `docs/telemetry.md`): logs filtered by `METAMESH_LOG`
//! or `telemetry.log`; spans exported over OTLP when `telemetry.otlp_endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) is set; one span and one latency sample per RPC on both gRPC
//! listeners, continuing the caller's W3C trace context, which calls to other replicas carry
//! on; and, unless `listen.metrics` is "off", a third listener serving Prometheus `GET /metrics`
//! over plain HTTP (no tenant data; bind it where only monitoring reaches).

use std::path::PathBuf;

use clap::Args;
use metamesh_config::NodeConfig;
use metamesh_node::run_node;
use metamesh_telemetry::{TelemetryError, TelemetryOptions};

#[derive(Args)]
pub struct NodeArgs {
    /// The node's TOML configuration (every key can be overridden by METAMESH_<SECTION>__<KEY>).
    #[arg(long, env = "METAMESH_CONFIG")]
    config: PathBuf,
}

/// The variable that overrides `telemetry.log`, as it sets the log filter of every subcommand.
const LOG_ENV: &str = "METAMESH_LOG";

pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let (log_filter, filter_source) = match std::env::var(LOG_ENV) {
        Ok(filter) if !filter.is_empty() => (filter, LOG_ENV),
        _ => (config.telemetry.log.clone(), "telemetry.log"),
    };
    let telemetry = metamesh_telemetry::init(&TelemetryOptions {
        log_filter,
        otlp_endpoint: config.telemetry.otlp_endpoint.clone(),
        node_id: config.node.id,
        shard_group: config.node.shard_group.clone(),
        service_name: metamesh_telemetry::SERVICE_NAME,
    })
    .map_err(|e| match e {
        e @ TelemetryError::LogFilter { .. } => anyhow::Error::new(e).context(filter_source),
        e => anyhow::Error::new(e).context("starting telemetry"),
    })?;
    let result = run_node(config, shutdown_signal()).await;
    // Flush the spans of the shutdown itself too.
    telemetry.shutdown().await;
    result
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
