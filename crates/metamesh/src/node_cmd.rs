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

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use metamesh_config::NodeConfig;
use metamesh_node::{AuditFeed, AuthzLayer};
use metamesh_policy::{Authorizer, WatchOptions};
use metamesh_raft::{GrpcNetwork, RaftGrpc, Replica, ReplicaOptions};
use metamesh_store::StoreOptions;
use metamesh_telemetry::{Metrics, RaftSample, RpcLayer, TelemetryError, TelemetryOptions};
use metamesh_tls::{Credentials, PeerPolicy, CLIENT_API_ALPN, INTERNAL_ALPN};

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

async fn shutdown_signal() {
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

/// Runs a replica until `shutdown` completes.
pub async fn run_node(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tracing::info!(%config, "starting node");
    // Every client RPC is authorized by the policy in policy.dir; a node does not start without
    // a valid one, and follows changes to the files (a broken change keeps the policy in force).
    let authorizer = Authorizer::load(&config.policy.dir)
        .map_err(|e| anyhow::anyhow!("invalid policy in policy.dir {}: {e}", config.policy.dir.display()))?;
    tracing::info!(dir = %config.policy.dir.display(), digest = %authorizer.digest(), "loaded the policy");
    let _policy_watch = authorizer.watch(WatchOptions::default());
    let creds = Credentials::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    // Calls to other replicas (forwarded writes, read index, Raft) continue the caller's trace.
    let network =
        GrpcNetwork::new(creds.client_config()?).with_metadata_hook(Arc::new(metamesh_telemetry::inject_trace_context));
    let options = ReplicaOptions {
        heartbeat_ms: config.raft.heartbeat_ms,
        election_timeout_min_ms: config.raft.election_timeout_min_ms,
        election_timeout_max_ms: config.raft.election_timeout_max_ms,
        snapshot_every: config.raft.snapshot_every,
        max_payload_entries: config.raft.max_payload_entries,
        store: StoreOptions {
            synchronous_full: matches!(config.store.synchronous, metamesh_config::Synchronous::Full),
            readers: config.store.readers,
        },
        ..Default::default()
    };
    let replica = Replica::start(config.node.id, &config.node.data_dir, &options, network.clone())
        .await
        .with_context(|| format!("starting the replica in {}", config.node.data_dir.display()))?;
    let replica = Arc::new(replica.with_forwarder(Arc::new(network)));

    let raft_listener = tokio::net::TcpListener::bind(config.listen.raft)
        .await
        .with_context(|| format!("binding listen.raft {}", config.listen.raft))?;
    let client_listener = tokio::net::TcpListener::bind(config.listen.client)
        .await
        .with_context(|| format!("binding listen.client {}", config.listen.client))?;
    let metrics_listener = match config.listen.metrics {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding listen.metrics {addr}"))?)
        }
        None => None,
    };
    tracing::info!(
        raft = %config.listen.raft,
        client = %config.listen.client,
        metrics = %config.listen.metrics.map_or_else(|| metamesh_config::METRICS_OFF.to_owned(), |a| a.to_string()),
        "listening"
    );
    let metrics = Arc::new(Metrics::new(config.node.id, &config.node.shard_group));
    metrics.watch_snapshots(replica.dir().join("snapshots"));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let raft_incoming =
        metamesh_tls::incoming(raft_listener, creds.server_config(INTERNAL_ALPN)?, PeerPolicy::NodesOnly);
    // Heartbeats and votes come several times a second: their spans are debug-level.
    let raft_layer = RpcLayer::new(metrics.clone())
        .with_debug_spans(&["metamesh.raft.v1.RaftService/AppendEntries", "metamesh.raft.v1.RaftService/Vote"]);
    let raft_server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(raft_layer)
            .add_service(RaftGrpc::server(replica.raft.clone()))
            .serve_with_incoming_shutdown(raft_incoming, stopped(stop_rx.clone())),
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(metamesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Refusals and sensitive reads are recorded in the audit log through Raft.
    let (audit_feed, _audit_task) = AuditFeed::start(replica.clone());
    let checkpoints = match &config.audit.key {
        Some(path) => {
            let key = metamesh_audit::ShardKey::load(path)
                .map_err(|e| anyhow::anyhow!("audit.key {}: {e}", path.display()))?;
            tracing::info!(key_id = ?key.key_id(), every_ms = config.audit.checkpoint_every_ms, "signing audit checkpoints");
            Some(metamesh_node::api::audit_feed::start_checkpoints(
                replica.clone(),
                Arc::new(key),
                config.node.shard_group.clone(),
                std::time::Duration::from_millis(config.audit.checkpoint_every_ms),
            ))
        }
        None => {
            tracing::warn!("no audit.key: the audit log is protected by its hash chain alone (no signed checkpoints)");
            None
        }
    };
    let client_incoming =
        metamesh_tls::incoming(client_listener, creds.server_config(CLIENT_API_ALPN)?, PeerPolicy::AnyMeshMember);
    let routes = crate::api::routes(replica.clone(), &config).add_service(health_service).add_service(reflection);
    let client_layer = RpcLayer::new(metrics.clone()).with_debug_spans(&["grpc.health.v1.Health/Check"]);
    let client_server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(client_layer)
            .layer(AuthzLayer::new(authorizer.clone()).with_audit(audit_feed))
            .add_routes(routes)
            .serve_with_incoming_shutdown(client_incoming, stopped(stop_rx.clone())),
    );
    let raft_gauges = tokio::spawn(watch_raft(replica.clone(), metrics.clone(), stopped(stop_rx.clone())));
    let metrics_server = metrics_listener
        .map(|listener| tokio::spawn(metamesh_telemetry::serve_metrics(listener, metrics, stopped(stop_rx.clone()))));

    // The lowest configured voter bootstraps a new group; on later starts this is a no-op.
    let mut voters: Vec<(u64, String)> = config.peers.iter().map(|p| (p.id, p.raft_addr.clone())).collect();
    if !voters.iter().any(|(id, _)| *id == config.node.id) {
        voters.push((config.node.id, config.listen.raft.to_string()));
    }
    voters.sort();
    if voters.first().map(|(id, _)| *id) == Some(config.node.id) && replica.bootstrap(&voters).await? {
        tracing::info!(voters = ?voters, "bootstrapped a new shard group");
    }

    shutdown.await;
    if let Some(task) = checkpoints {
        task.abort();
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = raft_server.await;
    let _ = client_server.await;
    let _ = raft_gauges.await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    if let Ok(replica) = Arc::try_unwrap(replica) {
        replica.shutdown().await;
    }
    Ok(())
}

/// Feeds the Raft gauges from the replica's metrics channel until `stop` completes.
async fn watch_raft(replica: Arc<Replica>, metrics: Arc<Metrics>, stop: impl Future<Output = ()>) {
    let mut updates = replica.raft.metrics();
    tokio::pin!(stop);
    loop {
        let sample = {
            let m = updates.borrow_and_update();
            let membership = m.membership_config.membership();
            RaftSample {
                term: m.current_term,
                leader: m.current_leader,
                is_leader: m.state.is_leader(),
                last_log_index: m.last_log_index,
                last_applied: m.last_applied.map(|l| l.index),
                snapshot_index: m.snapshot.map(|l| l.index),
                purged_index: m.purged.map(|l| l.index),
                voters: membership.voter_ids().count(),
                learners: membership.learner_ids().count(),
                matched: m.replication.iter().flatten().map(|(id, l)| (*id, l.map(|l| l.index))).collect(),
            }
        };
        metrics.record_raft(&sample);
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            _ = &mut stop => return,
        }
    }
}
