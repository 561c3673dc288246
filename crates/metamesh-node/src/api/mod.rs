//! [`NodeApi`]: the state every service handler shares, and the steps they all take — who is
//! calling, proposing a write, picking a store for a read.

pub mod admin;
pub mod audit;
pub mod audit_feed;
pub mod authz;
pub mod caller;
pub mod catalog;
pub mod lineage;
pub mod mlmd;
pub mod outbox;
pub mod page;
pub mod schema;
pub mod search;
pub mod status;
pub mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metamesh_core::{AsOf, Command, Outcome, Proposal};
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_server::AdminServiceServer;
use metamesh_proto::v1::catalog_service_server::CatalogServiceServer;
use metamesh_proto::v1::lineage_service_server::LineageServiceServer;
use metamesh_proto::v1::schema_service_server::SchemaServiceServer;
use metamesh_proto::v1::search_service_server::SearchServiceServer;
use metamesh_proto::v1::watch_service_server::WatchServiceServer;
use metamesh_raft::{ReadConsistency, Replica};
use metamesh_store::Store;
use tonic::{Request, Status};

use crate::api::caller::Caller;

pub use authz::Authorized;

/// The client API of one shard node.
pub struct NodeApi {
    /// The replica this node runs: writes go through its Raft log, reads through its store.
    replica: Arc<Replica>,
    /// This node's Raft id, reported by Status.
    node_id: u64,
    /// The shard group the replica belongs to, stamped on tenants, change events and partial
    /// reasons so that answers merged by a router say where they came from.
    shard_group: String,
    /// When the API was created, for the uptime Status reports.
    started: Instant,
}

/// Every implemented `metamesh.v1` service over `api`, ready for
/// `Server::builder().add_routes(..)`.
pub fn services(api: Arc<NodeApi>) -> tonic::service::Routes {
    tonic::service::Routes::new(CatalogServiceServer::from_arc(api.clone()))
        .add_service(LineageServiceServer::from_arc(api.clone()))
        .add_service(SearchServiceServer::from_arc(api.clone()))
        .add_service(SchemaServiceServer::from_arc(api.clone()))
        .add_service(WatchServiceServer::from_arc(api.clone()))
        .add_service(v1::audit_service_server::AuditServiceServer::from_arc(api.clone()))
        .add_service(AdminServiceServer::from_arc(api.clone()))
        .add_service(mlmd::service(api))
}

/// What a committed write produced.
pub(crate) struct Written {
    /// The revision the change appeared at: for a retried request id, the first attempt's.
    pub revision: u64,
    /// The time the store recorded for the write's entry.
    pub at_ms: i64,
    pub outcome: Outcome,
}

impl NodeApi {
    pub fn new(replica: Arc<Replica>, node_id: u64, shard_group: impl Into<String>) -> NodeApi {
        NodeApi { replica, node_id, shard_group: shard_group.into(), started: Instant::now() }
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub fn shard_group(&self) -> &str {
        &self.shard_group
    }

    /// The caller of a request, as the authorization layer admitted it; every handler starts
    /// here. Without the layer's stamp the request is refused (see [`authz::authorized`]).
    pub(crate) fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        Ok(authz::authorized(request)?.caller)
    }

    /// Proposes `command` for `caller` and waits until it is applied here (on a follower too,
    /// so that the handler can read the result back from this replica's store).
    ///
    /// The time is read once, here, and travels in the proposal, so that every replica applies
    /// the same value. Stateless checks run before proposing, so a bad request costs no log
    /// entry. An empty `request_id` disables deduplication.
    pub(crate) async fn propose(&self, caller: &Caller, request_id: &str, command: Command) -> Result<Written, Status> {
        let proposal = Proposal {
            command,
            at_ms: now_ms(),
            principal: caller.principal.clone(),
            request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
            policy_digest: caller.policy_digest.clone(),
        };
        proposal.validate().map_err(status::refused)?;
        let reply = self.replica.write(proposal).await.map_err(status::write)?;
        // Handlers read what they wrote back from this replica. A follower forwarded the write:
        // the leader has applied it, this replica may not have yet.
        self.replica.read(ReadConsistency::MinRevision(reply.revision)).await.map_err(status::read)?;
        let applied = reply.applied.ok_or_else(|| status::internal(&"a command entry applied without a result"))?;
        let outcome = applied.result.map_err(status::refused)?;
        if let Some(first) = applied.duplicate_of {
            tracing::debug!(principal = %caller.principal, request_id, first, "retried write answered from its first result");
        }
        Ok(Written { revision: applied.duplicate_of.unwrap_or(reply.revision), at_ms: applied.at_ms, outcome })
    }

    /// The store, fresh enough for the request's `consistency`.
    pub(crate) async fn store(&self, consistency: Option<&v1::ReadConsistency>) -> Result<Arc<Store>, Status> {
        let mut store = None;
        for level in read_consistency(consistency) {
            store = Some(self.replica.read(level).await.map_err(status::read)?);
        }
        Ok(store.unwrap_or_else(|| self.replica.local_store()))
    }

    /// The store as it is on this replica now, for reading back what a write just applied here.
    pub(crate) fn local_store(&self) -> Arc<Store> {
        self.replica.local_store()
    }

    /// The revision a read at `as_of` is served at: the as-of point, or what this replica has
    /// applied (sampled after the read barrier, so a lower bound of what the read sees).
    pub(crate) async fn read_revision(&self, store: &Store, as_of: Option<AsOf>) -> Result<u64, Status> {
        let applied = self.replica.applied();
        Ok(match store.resolve_as_of(as_of).await.map_err(status::store)? {
            Some(r) => r.min(applied),
            None => applied,
        })
    }
}

/// The replica's consistency levels for a wire `ReadConsistency`, to be met in order.
///
/// Unset and linearizable read through the leader. A follower read waits for `min_revision`
/// locally, then, with `max_staleness_ms`, checks that this replica is confirmed current
/// within that bound (see [`ReadConsistency::MaxStaleness`]); with neither, it reads whatever
/// this replica has applied (an empty list).
pub fn read_consistency(c: Option<&v1::ReadConsistency>) -> Vec<ReadConsistency> {
    use v1::read_consistency::Mode;
    match c.and_then(|c| c.mode.as_ref()) {
        None | Some(Mode::Linearizable(_)) => vec![ReadConsistency::Linearizable],
        Some(Mode::Follower(f)) => {
            let revision = (f.min_revision > 0).then_some(ReadConsistency::MinRevision(f.min_revision));
            let staleness = (f.max_staleness_ms > 0)
                .then(|| ReadConsistency::MaxStaleness(Duration::from_millis(f.max_staleness_ms)));
            revision.into_iter().chain(staleness).collect()
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it; the store never lets time
/// run backwards anyway).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_modes() {
        use v1::read_consistency::{FollowerRead, Linearizable, Mode};
        let follower = |max_staleness_ms, min_revision| v1::ReadConsistency {
            mode: Some(Mode::Follower(FollowerRead { max_staleness_ms, min_revision })),
        };
        use ReadConsistency::{Linearizable as Lin, MaxStaleness, MinRevision};
        assert_eq!(read_consistency(None), [Lin]);
        assert_eq!(read_consistency(Some(&v1::ReadConsistency { mode: None })), [Lin]);
        let lin = v1::ReadConsistency { mode: Some(Mode::Linearizable(Linearizable {})) };
        assert_eq!(read_consistency(Some(&lin)), [Lin]);
        assert_eq!(read_consistency(Some(&follower(0, 7))), [MinRevision(7)]);
        let bound = MaxStaleness(Duration::from_millis(500));
        assert_eq!(read_consistency(Some(&follower(500, 0))), [bound]);
        assert_eq!(read_consistency(Some(&follower(500, 7))), [MinRevision(7), bound]);
        assert_eq!(read_consistency(Some(&follower(0, 0))), []);
    }
}
