//! Running a whole replica: what `metamesh node --config FILE` does, as a library function so
//! that `metamesh dev` and tests run real nodes in one process.
//!
//! Two TLS listeners: the Raft listener (replica-to-replica; node certificates of this mesh
//! only) and the client listener (any certificate of this mesh: the `metamesh.v1` services,
//! gRPC health and reflection), behind the authorization layer; a third, plain-HTTP listener
//! serves Prometheus `/metrics` unless `listen.metrics` is "off". Background tasks: the audit
//! feed, signed checkpoints (with `audit.key`), and outbox delivery of cross-shard lineage
//! references (with `mesh.map`). The lowest configured voter bootstraps a new group.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use metamesh_config::NodeConfig;
use metamesh_policy::{Authorizer, WatchOptions};
use metamesh_raft::{GrpcNetwork, RaftGrpc, Replica, ReplicaOptions};
use metamesh_store::StoreOptions;
use metamesh_telemetry::{Metrics, RaftSample, RpcLayer};
use metamesh_tls::{Credentials, PeerPolicy, CLIENT_API_ALPN, INTERNAL_ALPN};

use crate::api::outbox::OutboxOptions;
use crate::{services, AuditFeed, AuthzLayer, NodeApi};

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
        .register_encoded_file_descriptor_set(metamesh_proto::ML_METADATA_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Refusals and sensitive reads are recorded in the audit log through Raft.
    let (audit_feed, _audit_task) = AuditFeed::start(replica.clone());
    let checkpoints = match &config.audit.key {
        Some(path) => {
            let key = metamesh_audit::ShardKey::load(path)
                .map_err(|e| anyhow::anyhow!("audit.key {}: {e}", path.display()))?;
            tracing::info!(key_id = ?key.key_id(), every_ms = config.audit.checkpoint_every_ms, "signing audit checkpoints");
            Some(crate::api::audit_feed::start_checkpoints(
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
    // Edges into other shards' tenants are delivered from the outbox (on the leader).
    let outbox = match &config.mesh.map {
        Some(map) => Some(crate::api::outbox::start(
            replica.clone(),
            OutboxOptions {
                shard_group: config.node.shard_group.clone(),
                mesh_map: map.clone(),
                tls: creds.client_config()?,
                metrics: Some(metrics.clone()),
            },
        )),
        None => {
            tracing::info!("no mesh.map: edges into other shards' tenants stay in the outbox");
            None
        }
    };
    let client_incoming =
        metamesh_tls::incoming(client_listener, creds.server_config(CLIENT_API_ALPN)?, PeerPolicy::AnyMeshMember);
    let api = NodeApi::new(replica.clone(), config.node.id, config.node.shard_group.clone());
    let routes = services(Arc::new(api)).add_service(health_service).add_service(reflection);
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
    for task in [checkpoints, outbox].into_iter().flatten() {
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
