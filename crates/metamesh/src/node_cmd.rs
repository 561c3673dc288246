//! `metamesh node --config FILE`: one replica of a shard group.
//!
//! Two TLS listeners: the Raft listener (replica-to-replica; node certificates of this mesh
//! only) and the client listener (any certificate of this mesh: the `metamesh.v1` services,
//! gRPC health and reflection). Any replica serves clients: followers forward writes to the
//! leader and take a read index from it for linearizable reads. The replica with the lowest id among the configured
//! voters bootstraps the group on its first start; the others wait to be contacted.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use metamesh_config::NodeConfig;
use metamesh_raft::{GrpcNetwork, RaftGrpc, Replica, ReplicaOptions};
use metamesh_store::StoreOptions;
use metamesh_tls::{Credentials, PeerPolicy, CLIENT_API_ALPN, INTERNAL_ALPN};

#[derive(Args)]
pub struct NodeArgs {
    /// The node's TOML configuration (every key can be overridden by METAMESH_<SECTION>__<KEY>).
    #[arg(long, env = "METAMESH_CONFIG")]
    config: PathBuf,
}

pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    run_node(config, shutdown_signal()).await
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
    let creds = Credentials::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let network = GrpcNetwork::new(creds.client_config()?);
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
    tracing::info!(raft = %config.listen.raft, client = %config.listen.client, "listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let raft_incoming =
        metamesh_tls::incoming(raft_listener, creds.server_config(INTERNAL_ALPN)?, PeerPolicy::NodesOnly);
    let raft_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RaftGrpc::server(replica.raft.clone()))
            .serve_with_incoming_shutdown(raft_incoming, stopped(stop_rx.clone())),
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(metamesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let client_incoming =
        metamesh_tls::incoming(client_listener, creds.server_config(CLIENT_API_ALPN)?, PeerPolicy::AnyMeshMember);
    let routes = crate::api::routes(replica.clone(), &config).add_service(health_service).add_service(reflection);
    let client_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(client_incoming, stopped(stop_rx.clone())),
    );

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
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = raft_server.await;
    let _ = client_server.await;
    if let Ok(replica) = Arc::try_unwrap(replica) {
        replica.shutdown().await;
    }
    Ok(())
}
