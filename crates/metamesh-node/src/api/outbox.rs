//! Delivery of cross-shard lineage references (DESIGN §6).
//!
//! An edge with one end in another shard's tenant is queued in the shard's outbox in the same
//! transaction that writes it (`metamesh-store`). On the leader, this task reads the oldest
//! entries, sends them to a replica of the group owning each target tenant
//! (`LineageService/DeliverReferences`, presenting this node's certificate), and, once that group
//! has committed them, removes them from the outbox through Raft (`Command::OutboxDelivered`).
//!
//! Delivery is at least once: a leader that fails between the two steps leaves the entries
//! queued, and the next leader sends them again; the receiving shard skips ids it has applied
//! (its inbox keeps the highest id per origin), so nothing is duplicated. Entries of one target
//! group go in id order; a group that cannot be reached is retried with a growing pause
//! (up to [`MAX_BACKOFF`]) while other groups still get theirs. The backlog and the age of the
//! oldest entry are reported by `AdminService/Health` and as metrics.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metamesh_config::MeshMap;
use metamesh_core::{Command, Proposal};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_raft::Replica;
use rustls::ClientConfig;
use tonic::transport::Channel;

/// Entries read per round.
const BATCH: usize = 512;
/// Pause between rounds when there is nothing to send or this node does not lead.
const IDLE: Duration = Duration::from_millis(200);
/// Longest pause before retrying a group that could not be reached.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Time allowed for one delivery call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the task needs.
pub struct OutboxOptions {
    /// This node's shard group (the origin named in deliveries).
    pub shard_group: String,
    /// The mesh map file, re-read when a target tenant is not in the map held.
    pub mesh_map: PathBuf,
    /// This node's TLS client configuration (its node certificate).
    pub tls: Arc<ClientConfig>,
    /// Where the backlog is exported (`metamesh_outbox_pending`, `metamesh_outbox_lag`).
    pub metrics: Option<Arc<metamesh_telemetry::Metrics>>,
}

/// Starts the delivery task; it runs until aborted.
pub fn start(replica: Arc<Replica>, options: OutboxOptions) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(replica, options))
}

struct Target {
    /// Replica addresses of the group, and which one answered last.
    addrs: Vec<String>,
    current: usize,
    channel: Option<Channel>,
    /// Not before this instant (after a failure).
    retry_at: Option<Instant>,
    backoff: Duration,
}

async fn run(replica: Arc<Replica>, options: OutboxOptions) {
    let mut map: Option<MeshMap> = None;
    let mut targets: HashMap<String, Target> = HashMap::new();
    loop {
        tokio::time::sleep(IDLE).await;
        if let Some(metrics) = &options.metrics {
            // Every replica exports the backlog it holds (the same on all once applied).
            if let Ok((pending, oldest)) = replica.local_store().outbox_backlog().await {
                let lag = oldest.map_or(0, |at| (crate::api::now_ms() - at).max(0) as u64);
                metrics.record_outbox(pending, lag);
            }
        }
        if !replica.status().is_leader {
            continue;
        }
        let pending = match replica.local_store().outbox(BATCH).await {
            Ok(p) if p.is_empty() => continue,
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                continue;
            }
        };
        // Group by target group, keeping id order; a tenant missing from the map re-reads it.
        let mut by_group: BTreeMap<String, Vec<v1::RemoteReference>> = BTreeMap::new();
        for entry in &pending {
            let tenant = entry.target.as_str();
            if map.as_ref().and_then(|m| m.group_of(tenant)).is_none() {
                match MeshMap::load(&options.mesh_map) {
                    Ok(m) => map = Some(m),
                    Err(e) => tracing::warn!(error = %e, "cannot read the mesh map for outbox delivery"),
                }
            }
            let Some(group) = map.as_ref().and_then(|m| m.group_of(tenant)) else {
                tracing::warn!(tenant, "outbox entry for a tenant no shard group of the mesh map owns; kept");
                continue;
            };
            let target = targets.entry(group.id.clone()).or_insert_with(|| Target {
                addrs: Vec::new(),
                current: 0,
                channel: None,
                retry_at: None,
                backoff: IDLE,
            });
            let addrs: Vec<String> = group.replicas.iter().map(|r| r.grpc.clone()).collect();
            if target.addrs != addrs {
                target.addrs = addrs;
                target.current = 0;
                target.channel = None;
            }
            by_group.entry(group.id.clone()).or_default().push(convert::remote_ref_to_wire(&entry.reference));
        }
        let mut delivered = Vec::new();
        for (group, refs) in by_group {
            let target = targets.get_mut(&group).expect("target registered above");
            if target.retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            let ids: Vec<u64> = refs.iter().map(|r| r.id).collect();
            match send(target, &options, refs).await {
                Ok(reply) => {
                    tracing::debug!(%group, applied = reply.applied, skipped = reply.skipped, "delivered lineage references");
                    target.retry_at = None;
                    target.backoff = IDLE;
                    delivered.extend(ids);
                }
                Err(e) => {
                    target.backoff = (target.backoff * 2).min(MAX_BACKOFF);
                    target.retry_at = Some(Instant::now() + target.backoff);
                    tracing::warn!(%group, error = %e, retry_in = ?target.backoff, "cannot deliver lineage references");
                }
            }
        }
        if delivered.is_empty() {
            continue;
        }
        let proposal = Proposal {
            command: Command::OutboxDelivered { ids: delivered },
            at_ms: crate::api::now_ms(),
            principal: format!("node:{}", options.shard_group),
            request_id: None,
            policy_digest: None,
        };
        if let Err(e) = replica.write(proposal).await {
            // The entries stay queued and are sent again: the receiver skips them.
            tracing::warn!(error = %e, "cannot record delivered outbox entries");
        }
    }
}

/// Sends `refs` to the group, trying each replica once, starting with the last that answered.
async fn send(
    target: &mut Target,
    options: &OutboxOptions,
    refs: Vec<v1::RemoteReference>,
) -> Result<v1::DeliverReferencesReply, String> {
    let request = v1::DeliverReferencesRequest { origin: options.shard_group.clone(), refs };
    let mut last_error = String::from("no replicas");
    for _ in 0..target.addrs.len() {
        let channel = match &target.channel {
            Some(c) => c.clone(),
            None => match dial(&target.addrs[target.current], &options.tls).await {
                Ok(c) => {
                    target.channel = Some(c.clone());
                    c
                }
                Err(e) => {
                    last_error = e;
                    target.current = (target.current + 1) % target.addrs.len();
                    continue;
                }
            },
        };
        let mut client = LineageServiceClient::new(channel);
        match tokio::time::timeout(CALL_TIMEOUT, client.deliver_references(request.clone())).await {
            Ok(Ok(reply)) => return Ok(reply.into_inner()),
            Ok(Err(status)) if is_refusal(&status) => {
                // The group answered and refused: another replica would say the same.
                return Err(format!("{}: {}", target.addrs[target.current], status.message()));
            }
            Ok(Err(status)) => last_error = format!("{}: {status}", target.addrs[target.current]),
            Err(_) => last_error = format!("{}: no answer within {CALL_TIMEOUT:?}", target.addrs[target.current]),
        }
        target.channel = None;
        target.current = (target.current + 1) % target.addrs.len();
    }
    Err(last_error)
}

fn is_refusal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::PermissionDenied | tonic::Code::FailedPrecondition
    )
}

async fn dial(addr: &str, tls: &Arc<ClientConfig>) -> Result<Channel, String> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr).await.map_err(|e| format!("{addr}: {e}"))?.collect();
    let first = *resolved.first().ok_or_else(|| format!("{addr}: no address"))?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    metamesh_tls::connect(first, tls.clone(), host).await.map_err(|e| format!("{addr}: {e}"))
}
