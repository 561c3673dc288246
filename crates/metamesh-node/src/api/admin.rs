//! AdminService: replication status, membership and snapshots of this node's shard group, and
//! the part of the shard map this node knows.
//!
//! Everything comes from the replica's Raft metrics, read in one place ([`RaftView`]) so that the
//! rest of the node never touches openraft's types. Membership changes are made by the leader:
//! a follower answers UNAVAILABLE naming it (in `x-metamesh-leader`), as for writes it cannot
//! forward. GetShardMap answers with this node's own group only; the map of the whole mesh
//! (every group, from the versioned mesh map file) is the router's (issue 5).

use std::collections::BTreeSet;
use std::time::Duration;

use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_server::AdminService;
use metamesh_raft::Replica;
use tonic::{Request, Response, Status};

use crate::api::{status, NodeApi};

/// How long TriggerSnapshot with `wait` waits for the snapshot.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(30);

/// What the admin replies need from the Raft metrics.
struct RaftView {
    role: v1::RaftRole,
    leader: Option<u64>,
    term: u64,
    last_log_index: u64,
    /// Last applied log index, which is also the shard revision (revisions are log indexes).
    applied: u64,
    snapshot: Option<u64>,
    membership: v1::Membership,
    /// Why Raft stopped, if it did.
    fatal: Option<String>,
}

impl RaftView {
    fn of(replica: &Replica) -> RaftView {
        let m = replica.raft.metrics().borrow().clone();
        let role = if m.state.is_leader() {
            v1::RaftRole::Leader
        } else if m.state.is_follower() {
            v1::RaftRole::Follower
        } else if m.state.is_candidate() {
            v1::RaftRole::Candidate
        } else if m.state.is_learner() {
            v1::RaftRole::Learner
        } else {
            v1::RaftRole::Shutdown
        };
        let config = m.membership_config.membership();
        // The API address of a member is not part of the Raft membership; it stays empty until
        // the mesh map provides it.
        let member = |id: u64| v1::Member {
            node_id: id,
            raft_addr: config.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default(),
            api_addr: String::new(),
        };
        let membership = v1::Membership {
            voters: config.voter_ids().map(member).collect(),
            learners: config.learner_ids().map(member).collect(),
            joint: config.get_joint_config().len() > 1,
            log_index: m.membership_config.log_id().map(|l| l.index).unwrap_or(0),
        };
        RaftView {
            role,
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied: m.last_applied.map(|l| l.index).unwrap_or(0),
            snapshot: m.snapshot.map(|l| l.index),
            membership,
            fatal: m.running_state.err().map(|e| e.to_string()),
        }
    }
}

#[tonic::async_trait]
impl AdminService for NodeApi {
    async fn status(&self, request: Request<v1::StatusRequest>) -> Result<Response<v1::StatusReply>, Status> {
        let _caller = self.caller(&request)?;
        let view = RaftView::of(&self.replica);
        let tenants = self.local_store().tenants().await.map_err(status::store)?;
        Ok(Response::new(v1::StatusReply {
            node_id: self.node_id,
            shard_group: self.shard_group.clone(),
            role: view.role as i32,
            leader_id: view.leader,
            term: view.term,
            last_log_index: view.last_log_index,
            // openraft 0.9 does not report the commit index; the applied index is a lower bound.
            committed_index: view.applied,
            applied_index: view.applied,
            applied_revision: view.applied,
            snapshot_index: view.snapshot,
            membership: Some(view.membership),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            build_version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }))
    }

    async fn add_learner(
        &self,
        request: Request<v1::AddLearnerRequest>,
    ) -> Result<Response<v1::MembershipReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let node = r.node.ok_or_else(|| status::invalid("node", "must be set"))?;
        if node.raft_addr.trim().is_empty() {
            return Err(status::invalid("node.raft_addr", "must not be empty"));
        }
        self.replica.add_learner(node.node_id, &node.raft_addr, r.wait_caught_up).await.map_err(status::write)?;
        Ok(Response::new(v1::MembershipReply { membership: Some(RaftView::of(&self.replica).membership) }))
    }

    /// Removes a learner. A voter is refused (FAILED_PRECONDITION: demote it with
    /// ChangeMembership first), an id that is not a member is NOT_FOUND.
    async fn remove_learner(
        &self,
        request: Request<v1::RemoveLearnerRequest>,
    ) -> Result<Response<v1::MembershipReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        self.replica.remove_learner(r.node_id).await.map_err(|e| status::membership(e, "node_id"))?;
        Ok(Response::new(v1::MembershipReply { membership: Some(RaftView::of(&self.replica).membership) }))
    }

    /// Replaces the voters. Removed voters stay learners with `retain_as_learners`, else leave
    /// the group; a new voter that is neither a voter nor a learner is FAILED_PRECONDITION.
    async fn change_membership(
        &self,
        request: Request<v1::ChangeMembershipRequest>,
    ) -> Result<Response<v1::MembershipReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.voters.is_empty() {
            return Err(status::invalid("voters", "must name at least one voter"));
        }
        let voters: BTreeSet<u64> = r.voters.into_iter().collect();
        self.replica
            .change_membership(voters, r.retain_as_learners)
            .await
            .map_err(|e| status::membership(e, "voters"))?;
        Ok(Response::new(v1::MembershipReply { membership: Some(RaftView::of(&self.replica).membership) }))
    }

    async fn trigger_snapshot(
        &self,
        request: Request<v1::TriggerSnapshotRequest>,
    ) -> Result<Response<v1::TriggerSnapshotReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let target = self.replica.applied();
        self.replica.raft.trigger().snapshot().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot trigger a snapshot");
            Status::unavailable("raft is shutting down")
        })?;
        if !r.wait {
            return Ok(Response::new(v1::TriggerSnapshotReply { snapshot_index: None }));
        }
        let done = self
            .replica
            .raft
            .wait(Some(SNAPSHOT_WAIT))
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= target), "snapshot built")
            .await
            .map_err(|e| Status::deadline_exceeded(format!("snapshot not built within {SNAPSHOT_WAIT:?}: {e}")))?;
        Ok(Response::new(v1::TriggerSnapshotReply { snapshot_index: done.snapshot.map(|s| s.index) }))
    }

    async fn health(&self, request: Request<v1::HealthRequest>) -> Result<Response<v1::HealthReply>, Status> {
        let _caller = self.caller(&request)?;
        let view = RaftView::of(&self.replica);
        let raft_ok = view.fatal.is_none() && view.leader.is_some();
        let raft_detail = match (&view.fatal, view.leader) {
            (Some(e), _) => format!("stopped: {e}"),
            (None, None) => "no leader known".to_owned(),
            (None, Some(l)) => format!("{} in term {}, leader {l}", view.role.as_str_name(), view.term),
        };
        let (store_ok, store_detail) = match self.local_store().applied_revision().await {
            Ok(rev) => (true, format!("applied revision {rev}")),
            Err(e) => {
                tracing::error!(error = %e, "store health check failed");
                (false, "cannot read the store".to_owned())
            }
        };
        let (outbox_pending, oldest) = self.local_store().outbox_backlog().await.map_err(status::store)?;
        let outbox_lag_ms = oldest.map_or(0, |at| (crate::api::now_ms() - at).max(0) as u64);
        Ok(Response::new(v1::HealthReply {
            serving: raft_ok && store_ok,
            components: vec![
                v1::ComponentHealth { name: "raft".into(), ok: raft_ok, detail: raft_detail },
                v1::ComponentHealth { name: "store".into(), ok: store_ok, detail: store_detail },
            ],
            outbox_pending,
            outbox_lag_ms,
            policy_digest: String::new(),
        }))
    }

    /// This node's view: one group, its members (voters first, then learners) and the tenants
    /// its store owns. `map_version` is empty, as a node holds no mesh map file; which member
    /// leads and which are learners is in Status.
    async fn get_shard_map(
        &self,
        request: Request<v1::GetShardMapRequest>,
    ) -> Result<Response<v1::GetShardMapReply>, Status> {
        let _caller = self.caller(&request)?;
        let view = RaftView::of(&self.replica);
        let tenants = self.local_store().tenants().await.map_err(status::store)?;
        let group = v1::ShardGroup {
            id: self.shard_group.clone(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            members: view.membership.voters.into_iter().chain(view.membership.learners).collect(),
        };
        Ok(Response::new(v1::GetShardMapReply { map_version: String::new(), groups: vec![group] }))
    }
}
