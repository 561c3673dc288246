//! Audit events a node decides itself — policy refusals and reads of sensitive resources — go
//! into the shard's audit log through Raft, like any change (`Command::Audit`), so that every
//! replica records them in the same chain.
//!
//! The authorization layer hands events over without waiting ([`AuditFeed::record`]); one task
//! per node proposes them. Repeated refusals of one principal (same action and tenant) within a
//! window are coalesced into one record with a count (`metamesh_audit::DenialCoalescer`): a
//! flood of refusals costs one record per window, not one per request. The first refusal of a
//! burst is proposed at once.
//!
//! What can be lost: events held in a window when the node stops, and events offered while the
//! queue is full (logged and counted, never blocking a request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metamesh_audit::{Decision, DenialCoalescer, Draft};
use metamesh_core::command::AuditEvent;
use metamesh_core::{Command, Proposal, TenantId};
use metamesh_raft::Replica;
use tokio::sync::mpsc;

use crate::api::caller::Caller;

/// How long identical refusals are coalesced.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Events queued for proposing before new ones are dropped.
const QUEUE: usize = 4096;
/// Distinct (principal, action, tenant) keys coalesced at once.
const MAX_KEYS: usize = 10_000;

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct AuditFeed {
    tx: mpsc::Sender<Draft>,
    dropped: Arc<AtomicU64>,
}

impl AuditFeed {
    /// Starts the proposing task for `replica`; it ends when every feed is dropped.
    pub fn start(replica: Arc<Replica>) -> (AuditFeed, tokio::task::JoinHandle<()>) {
        AuditFeed::start_with(move |draft| {
            let replica = replica.clone();
            async move { propose(&replica, draft).await }
        })
    }

    /// Starts a task that hands each event, once coalesced, to `send` (one at a time, in order):
    /// how a router records its refusals in the shard they concern.
    pub fn start_with<F, Fut>(send: F) -> (AuditFeed, tokio::task::JoinHandle<()>)
    where
        F: Fn(Draft) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(send, rx));
        (AuditFeed { tx, dropped: Arc::new(AtomicU64::new(0)) }, task)
    }

    /// Queues `event` of `caller`; never waits.
    pub fn record(&self, caller: &Caller, event: AuditEvent) {
        let decision = if event.allowed { Decision::Allow } else { Decision::Deny };
        let mut draft =
            Draft::new(crate::api::now_ms(), caller.principal.clone(), event.action, event.resource, decision)
                .policy(caller.policy_digest.clone().unwrap_or_default());
        draft.tenant = event.tenant.map(|t| t.to_string());
        if self.tx.try_send(draft).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = n, "audit queue full: an audit event was dropped");
        }
    }
}

async fn run<F, Fut>(send: F, mut rx: mpsc::Receiver<Draft>)
where
    F: Fn(Draft) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut coalescer = DenialCoalescer::new(WINDOW.as_millis() as i64, MAX_KEYS);
    let mut tick = tokio::time::interval(WINDOW / 4);
    loop {
        let ready = tokio::select! {
            received = rx.recv() => match received {
                Some(draft) => coalescer.offer(draft),
                None => {
                    for draft in coalescer.flush() {
                        send(draft).await;
                    }
                    return;
                }
            },
            _ = tick.tick() => coalescer.tick(crate::api::now_ms()),
        };
        for draft in ready {
            send(draft).await;
        }
    }
}

async fn propose(replica: &Replica, draft: Draft) {
    let event = AuditEvent {
        action: draft.action,
        tenant: draft.tenant.as_deref().and_then(|t| TenantId::new(t).ok()),
        resource: draft.resource,
        allowed: draft.decision == Decision::Allow,
        count: draft.count,
    };
    let proposal = Proposal {
        command: Command::Audit(event),
        at_ms: draft.at_ms,
        principal: draft.principal,
        request_id: None,
        policy_digest: Some(draft.policy_digest),
    };
    if let Err(e) = replica.write(proposal).await {
        tracing::warn!(error = %e, "an audit event could not be recorded");
    }
}

/// The leader's checkpoints of the audit log: every `every`, if this replica leads and records
/// were added since the last checkpoint, it signs one with the shard's key and proposes it
/// (`Command::AuditCheckpoint`); every replica checks the root against its own log. Runs until
/// the returned task is aborted.
pub fn start_checkpoints(
    replica: Arc<Replica>,
    key: Arc<metamesh_audit::ShardKey>,
    shard: String,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !replica.status().is_leader {
                continue;
            }
            let store = replica.local_store();
            let checkpoint = match store.audit_checkpoint(key.clone(), shard.clone(), crate::api::now_ms()).await {
                Ok(Some(cp)) => cp,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not make an audit checkpoint");
                    continue;
                }
            };
            let size = checkpoint.size;
            let proposal = Proposal::new(
                Command::AuditCheckpoint {
                    checkpoint: serde_json::to_value(&checkpoint).expect("checkpoints serialize"),
                },
                checkpoint.at_ms,
                format!("metamesh-node/{shard}"),
            );
            match replica.write(proposal).await {
                Ok(reply) => match reply.applied.map(|a| a.result) {
                    Some(Ok(_)) => tracing::info!(size, "signed an audit checkpoint"),
                    other => tracing::warn!(size, result = ?other, "an audit checkpoint was refused"),
                },
                Err(e) => tracing::warn!(error = %e, "an audit checkpoint could not be proposed"),
            }
        }
    })
}
