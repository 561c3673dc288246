//! `metamesh router --config FILE`: a federating router (stateless; run several side by side).

use std::path::PathBuf;

use clap::Args;
use metamesh_config::RouterConfig;
use metamesh_telemetry::TelemetryOptions;

#[derive(Args)]
pub struct RouterArgs {
    /// The router's TOML configuration (keys overridable by METAMESH_<SECTION>__<KEY>).
    #[arg(long, env = "METAMESH_ROUTER_CONFIG")]
    config: PathBuf,
}

pub async fn run(args: RouterArgs) -> anyhow::Result<()> {
    let config = RouterConfig::load(&args.config)?;
    let log_filter = std::env::var("METAMESH_LOG").unwrap_or_else(|_| config.telemetry.log.clone());
    let telemetry = metamesh_telemetry::init(&TelemetryOptions {
        log_filter,
        otlp_endpoint: config.telemetry.otlp_endpoint.clone(),
        node_id: 0,
        shard_group: format!("router/{}", config.router.id),
        service_name: "metamesh-router",
    })?;
    let result = metamesh_router::run_router(config, crate::node_cmd::shutdown_signal()).await;
    telemetry.shutdown().await;
    result
}
