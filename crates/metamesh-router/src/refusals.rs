//! The router's refusals go into the audit log of the shard they concern.
//!
//! The router enforces the policy before forwarding (defence in depth), so a request it refuses
//! never reaches a node — and every denial must still be recorded (DESIGN §8). The
//! authorization layer hands this sink its events without waiting; a task coalesces repeated
//! refusals of one principal (it is a node's `AuditFeed` with another sender) and sends each event to the shard
//! group owning its tenant (`AuditService/RecordEvent`, which only routers may call), where it
//! is written through Raft under the refused caller's principal. Events about the mesh as a
//! whole go to the first group of the map.
//!
//! What can be lost: events queued when the router stops, events offered while the queue is
//! full, and events for a group that stays unreachable for every retry (logged).

use std::sync::Arc;
use std::time::Duration;

use metamesh_audit::{Decision, Draft};
use metamesh_node::AuditFeed;
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;

use crate::groups::Groups;

/// Sending attempts per event.
const ATTEMPTS: usize = 3;

/// Starts the sink the router's authorization layer writes to: a node's audit feed (same queue,
/// same coalescing) whose events go to the shard they concern instead of through a local Raft.
pub fn start(groups: Arc<Groups>) -> (AuditFeed, tokio::task::JoinHandle<()>) {
    AuditFeed::start_with(move |draft| {
        let groups = groups.clone();
        async move { send(&groups, draft).await }
    })
}

async fn send(groups: &Groups, draft: Draft) {
    let group = match draft.tenant.as_deref().and_then(|t| groups.owner(t)) {
        Some(g) => g,
        None => match groups.all().first() {
            Some(g) => g,
            None => return,
        },
    };
    let request = v1::RecordEventRequest {
        principal: draft.principal,
        tenant: draft.tenant.unwrap_or_default(),
        action: draft.action,
        resource: draft.resource,
        allowed: draft.decision == Decision::Allow,
        count: draft.count,
        policy_digest: draft.policy_digest,
    };
    for attempt in 1..=ATTEMPTS {
        let sent = groups
            .call(group, |ch| {
                let mut r = tonic::Request::new(request.clone());
                metamesh_telemetry::inject_trace_context(r.metadata_mut());
                async move { AuditServiceClient::new(ch).record_event(r).await }
            })
            .await;
        match sent {
            Ok(_) => return,
            Err(status) if attempt == ATTEMPTS => {
                tracing::warn!(group = %group.id, %status, "a router audit event could not be recorded");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await,
        }
    }
}
