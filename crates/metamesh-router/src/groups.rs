//! Connections to every shard group of the mesh map.
//!
//! One lazily connected mTLS channel per replica (the router's own certificate), shared by all
//! requests. A call goes to the group's *preferred* replica — the last one that answered — and,
//! when that replica is unreachable or answers UNAVAILABLE (no leader, shutting down), to the
//! next, healthy ones first. Any replica serves any request (followers forward writes to their
//! leader and take a read index for linearizable reads), so following leader changes needs no
//! leader discovery: a replica that stops answering is skipped, and one that answers becomes
//! preferred. A health task checks every replica with the gRPC health protocol and keeps
//! unhealthy ones at the back of the order.

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metamesh_config::{GroupMap, MeshMap};
use metamesh_core::TenantId;
use metamesh_node::{Authorized, PRINCIPAL_HEADER};
use rustls::ClientConfig;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Time allowed to open a connection to a replica.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for one health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// One replica of a group.
pub struct ReplicaConn {
    pub id: u64,
    pub addr: String,
    channel: Channel,
    healthy: AtomicBool,
}

impl ReplicaConn {
    /// Whether the last health check (or call) found it answering.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// One shard group.
pub struct Group {
    pub id: String,
    pub tenants: Vec<String>,
    pub replicas: Vec<ReplicaConn>,
    preferred: AtomicUsize,
}

impl Group {
    /// Replica indexes in the order to try: preferred, then healthy, then the rest.
    fn order(&self) -> Vec<usize> {
        let first = self.preferred.load(Ordering::Relaxed) % self.replicas.len();
        let mut order: Vec<usize> = (0..self.replicas.len()).map(|i| (first + i) % self.replicas.len()).collect();
        order[1..].sort_by_key(|&i| !self.replicas[i].healthy());
        order
    }
}

/// Every group of the mesh map.
pub struct Groups {
    pub map: MeshMap,
    groups: Vec<Group>,
    by_tenant: HashMap<String, usize>,
}

impl Groups {
    /// Channels to every replica of `map`, presenting `tls` (a router certificate).
    pub fn new(map: MeshMap, tls: Arc<ClientConfig>) -> anyhow::Result<Groups> {
        let mut groups = Vec::new();
        let mut by_tenant = HashMap::new();
        for (i, g) in map.groups.iter().enumerate() {
            groups.push(group(g, &tls)?);
            for t in &g.tenants {
                by_tenant.insert(t.clone(), i);
            }
        }
        Ok(Groups { map, groups, by_tenant })
    }

    pub fn all(&self) -> &[Group] {
        &self.groups
    }

    /// The group owning `tenant`: NOT_FOUND (as for any unknown tenant) when none does.
    pub fn of(&self, tenant: &TenantId) -> Result<&Group, Status> {
        self.owner(tenant.as_str())
            .ok_or_else(|| Status::not_found(format!("tenant `{tenant}` is owned by no shard group of the mesh")))
    }

    /// The group owning the tenant named `tenant`, if any.
    pub fn owner(&self, tenant: &str) -> Option<&Group> {
        self.by_tenant.get(tenant).map(|&i| &self.groups[i])
    }

    /// The group with id `id`.
    pub fn get(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The URNs of a request (`urns[i]` in errors), grouped by the shard group owning them, in
    /// request order within each group.
    pub fn by_group<'a>(&'a self, urns: &[String]) -> Result<Vec<(&'a Group, Vec<String>)>, Status> {
        let mut out: Vec<(&Group, Vec<String>)> = Vec::new();
        for (i, text) in urns.iter().enumerate() {
            let urn = metamesh_proto::convert::urn_at(&format!("urns[{i}]"), text)
                .map_err(metamesh_node::api::status::refused)?;
            let group = self.of(urn.entity.tenant())?;
            match out.iter_mut().find(|(g, _)| g.id == group.id) {
                Some((_, list)) => list.push(text.clone()),
                None => out.push((group, vec![text.clone()])),
            }
        }
        Ok(out)
    }

    /// Runs `call` on a replica of `group`, trying the next one while a replica is unreachable
    /// or UNAVAILABLE. The last error is returned when none answers.
    pub async fn call<T, F, Fut>(&self, group: &Group, call: F) -> Result<T, Status>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = Status::unavailable(format!("shard group {} has no replicas", group.id));
        for i in group.order() {
            let replica = &group.replicas[i];
            match call(replica.channel.clone()).await {
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tracing::debug!(group = %group.id, replica = replica.id, %status, "replica unavailable; trying the next");
                    replica.healthy.store(false, Ordering::Relaxed);
                    last = Status::unavailable(format!(
                        "shard group {}: replica {} ({}): {}",
                        group.id,
                        replica.id,
                        replica.addr,
                        status.message()
                    ));
                }
                done => {
                    replica.healthy.store(true, Ordering::Relaxed);
                    group.preferred.store(i, Ordering::Relaxed);
                    return done;
                }
            }
        }
        Err(last)
    }

    /// The channels of `group` in the order to try (for the generic proxy, which needs the raw
    /// channel); report the outcome with [`Groups::answered`] / [`Groups::failed`].
    pub fn channels(&self, group: &Group) -> Vec<(usize, Channel)> {
        group.order().into_iter().map(|i| (i, group.replicas[i].channel.clone())).collect()
    }

    pub fn answered(&self, group: &Group, i: usize) {
        group.replicas[i].healthy.store(true, Ordering::Relaxed);
        group.preferred.store(i, Ordering::Relaxed);
    }

    pub fn failed(&self, group: &Group, i: usize) {
        group.replicas[i].healthy.store(false, Ordering::Relaxed);
    }

    /// Checks every replica's health every `every` until the task is aborted.
    pub fn start_health_checks(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let groups = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for g in &groups.groups {
                    for r in &g.replicas {
                        let mut client = tonic_health::pb::health_client::HealthClient::new(r.channel.clone());
                        let check = client.check(tonic_health::pb::HealthCheckRequest { service: String::new() });
                        let ok = matches!(
                            tokio::time::timeout(HEALTH_TIMEOUT, check).await,
                            Ok(Ok(reply)) if reply.get_ref().status
                                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                        );
                        if ok != r.healthy() {
                            tracing::info!(group = %g.id, replica = r.id, addr = %r.addr, healthy = ok, "replica health changed");
                        }
                        r.healthy.store(ok, Ordering::Relaxed);
                    }
                }
            }
        })
    }
}

fn group(g: &GroupMap, tls: &Arc<ClientConfig>) -> anyhow::Result<Group> {
    let mut replicas = Vec::new();
    for r in &g.replicas {
        let addr: SocketAddr = r
            .grpc
            .to_socket_addrs()
            .map_err(|e| anyhow::anyhow!("group {} replica {}: cannot resolve {}: {e}", g.id, r.id, r.grpc))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("group {} replica {}: {} has no address", g.id, r.id, r.grpc))?;
        let host = r.grpc.rsplit_once(':').map_or(r.grpc.as_str(), |(h, _)| h);
        let connector = metamesh_tls::MeshConnector::new(addr, tls.clone(), host)?;
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_with_connector_lazy(connector);
        replicas.push(ReplicaConn { id: r.id, addr: r.grpc.clone(), channel, healthy: AtomicBool::new(true) });
    }
    Ok(Group { id: g.id.clone(), tenants: g.tenants.clone(), replicas, preferred: AtomicUsize::new(0) })
}

/// The partial reason of a group that did not answer.
pub fn unavailable(group: &str, status: &Status) -> metamesh_proto::v1::PartialReason {
    metamesh_proto::convert::partial_reason(
        "SHARD_UNAVAILABLE",
        format!("shard group {group} did not answer: {}", status.message()),
        group,
    )
}

/// A request to a shard on behalf of the caller: the caller's principal in
/// [`PRINCIPAL_HEADER`] (nodes accept it from a router certificate only, and enforce the policy
/// again), and the current trace context.
pub fn on_behalf<T>(authorized: &Authorized, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let principal = authorized.caller.principal.parse().unwrap_or_else(|_| {
        // A principal comes from a certificate or a validated header: visible ASCII. Anything
        // else is refused by the node as an invalid header rather than sent as someone else.
        tonic::metadata::MetadataValue::from_static("")
    });
    request.metadata_mut().insert(PRINCIPAL_HEADER, principal);
    metamesh_telemetry::inject_trace_context(request.metadata_mut());
    request
}
