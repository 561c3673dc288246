//! WatchService: the store's change feed as a resumable stream.
//!
//! Each watch is one task that pages through `changes_since` from its cursor, sends the events
//! a client asked for with the state they produced as payload, and then sleeps until the
//! replica applies something new (a wake-up from the Raft metrics channel, with an idle poll as
//! a safety net). It ends when the client goes away.
//!
//! Resuming: a revision's events are sent together and the last one says `revision_end`; a
//! client that resumes from the last revision it finished misses nothing and sees nothing
//! twice. When filters hide everything for a while, a PROGRESS event moves the resume point.
//!
//! Limits of the store's feed, which pages by revision only: one revision with more than
//! [`MAX_PAGE`] changes cannot be streamed, and the watch fails with RESOURCE_EXHAUSTED naming
//! it. Payloads are read back as of the event's revision; when one revision writes several
//! documents of one entity, they are paired with their events in title order. `time_ms` is
//! taken from the payload and is 0 for events without one (tenants, removed edges, progress).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use metamesh_core::{AsOf, Direction, EntityUrn, Kind, TenantId, TypeName};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::change_event::Payload;
use metamesh_proto::v1::watch_service_server::WatchService;
use metamesh_raft::Replica;
use metamesh_store::read::{Change, MAX_PAGE};
use metamesh_store::Store;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use metamesh_policy::Action;

use crate::api::{authz, status, NodeApi};

/// Changes read from the feed at a time.
pub const CHUNK: usize = 500;
/// How often an idle watch looks at the feed even without a wake-up.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Events buffered for a slow client before the watch waits for it.
const BUFFER: usize = 256;

/// What a watch asks for.
struct Filter {
    /// Who watches: events of tenants they may not `watch` are never sent (the policy snapshot
    /// of the request that opened the watch).
    authorized: authz::Authorized,
    /// Tenants; empty = all.
    tenants: HashSet<String>,
    /// Kinds of the entities a change touches; empty = all.
    kinds: Vec<Kind>,
    /// Change kinds; empty = all.
    changes: Vec<v1::ChangeKind>,
}

impl Filter {
    fn of(r: &v1::WatchRequest, authorized: authz::Authorized) -> Result<Filter, Status> {
        Ok(Filter {
            authorized,
            tenants: convert::tenant_ids("tenants", &r.tenants)
                .map_err(status::refused)?
                .into_iter()
                .map(|t| t.to_string())
                .collect(),
            kinds: convert::kinds("kinds", &r.kinds).map_err(status::refused)?,
            changes: convert::change_kinds("changes", &r.changes).map_err(status::refused)?,
        })
    }

    /// The cheap part of the filter, before any payload is read.
    fn wants(&self, tenant: &str, change: v1::ChangeKind) -> bool {
        (self.tenants.is_empty() || self.tenants.contains(tenant))
            && (self.changes.is_empty() || self.changes.contains(&change))
            && TenantId::new(tenant).is_ok_and(|t| self.authorized.may(Action::Watch, &t))
    }

    /// Whether the change touches an entity of a wanted kind: an edge by either end, anything
    /// else by its URN (tenant and schema changes touch no entity).
    fn touches_kinds(&self, urn: &str, payload: Option<&Payload>) -> bool {
        if self.kinds.is_empty() {
            return true;
        }
        let wanted = |u: &str| u.parse::<EntityUrn>().is_ok_and(|u| self.kinds.contains(&u.kind()));
        match payload {
            Some(Payload::Edge(e)) => wanted(&e.from_urn) || wanted(&e.to_urn),
            _ => wanted(urn),
        }
    }
}

#[tonic::async_trait]
impl WatchService for NodeApi {
    type WatchStream = ReceiverStream<Result<v1::ChangeEvent, Status>>;

    async fn watch(&self, request: Request<v1::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let filter = Filter::of(&r, authorized)?;
        let from = r.from_revisions.get(&self.shard_group).copied().or(r.from_revision);
        let start = match from {
            Some(f) => f,
            None => self.local_store().applied_revision().await.map_err(status::store)?,
        };
        let (tx, rx) = mpsc::channel(BUFFER);
        let follower = Follower {
            replica: self.replica.clone(),
            shard: self.shard_group.clone(),
            filter,
            cursor: start,
            reported: start,
            tx,
        };
        tokio::spawn(follower.run());
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// One watch's task.
struct Follower {
    replica: Arc<Replica>,
    shard: String,
    filter: Filter,
    /// Every change up to this revision has been looked at.
    cursor: u64,
    /// The last revision the client was told about, by an event or a progress mark.
    reported: u64,
    tx: mpsc::Sender<Result<v1::ChangeEvent, Status>>,
}

impl Follower {
    async fn run(mut self) {
        let mut metrics = self.replica.raft.metrics();
        loop {
            let drained_at = self.replica.applied();
            match self.drain().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(status) => {
                    let _ = self.tx.send(Err(status)).await;
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = self.tx.closed() => return,
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            let _ = self.tx.send(Err(Status::unavailable("the replica is shutting down"))).await;
                            return;
                        }
                    }
                    _ = tokio::time::sleep(IDLE_POLL) => break,
                }
                // Metrics change for many reasons (heartbeats); only an apply is news here.
                if self.replica.applied() > drained_at {
                    break;
                }
            }
        }
    }

    /// Sends everything after the cursor; false when the client has gone.
    async fn drain(&mut self) -> Result<bool, Status> {
        loop {
            // The store is fetched again each time: installing a snapshot replaces it.
            let store = self.replica.local_store();
            // Read before the feed, so that every change up to it is in the feed's answer.
            let applied = store.applied_revision().await.map_err(status::store)?;
            let (chunk, full) = self.complete_revisions(&store).await?;
            let position = match (full, chunk.last()) {
                (true, Some(last)) => last.revision,
                (_, last) => applied.max(last.map_or(0, |c| c.revision)).max(self.cursor),
            };
            let mut rest = chunk.as_slice();
            while let Some(first) = rest.first() {
                let n = rest.iter().position(|c| c.revision != first.revision).unwrap_or(rest.len());
                let (one, tail) = rest.split_at(n);
                rest = tail;
                let events = self.events_of(&store, one).await?;
                let count = events.len();
                for (i, mut event) in events.into_iter().enumerate() {
                    event.revision_end = i + 1 == count;
                    if self.tx.send(Ok(event)).await.is_err() {
                        return Ok(false);
                    }
                    self.reported = first.revision;
                }
            }
            self.cursor = position;
            if full {
                continue;
            }
            if position > self.reported {
                let mut progress = convert::change_event(position, "", "", v1::ChangeKind::Progress, &self.shard);
                progress.revision_end = true;
                if self.tx.send(Ok(progress)).await.is_err() {
                    return Ok(false);
                }
                self.reported = position;
            }
            return Ok(true);
        }
    }

    /// The next changes after the cursor, cut after the last revision known to be complete;
    /// `full` when more may follow.
    async fn complete_revisions(&self, store: &Store) -> Result<(Vec<Change>, bool), Status> {
        let mut overflowing = 0;
        for limit in [CHUNK, MAX_PAGE] {
            let mut chunk = store.changes_since(self.cursor, limit).await.map_err(status::store)?;
            if chunk.len() < limit {
                return Ok((chunk, false));
            }
            // The last revision may go on past the chunk: keep it for the next read.
            overflowing = chunk[chunk.len() - 1].revision;
            let keep = chunk.iter().position(|c| c.revision == overflowing).unwrap_or(0);
            if keep > 0 {
                chunk.truncate(keep);
                return Ok((chunk, true));
            }
        }
        Err(Status::resource_exhausted(format!(
            "revision {overflowing} has more than {MAX_PAGE} changes, more than the change feed can page through \
             yet; watch from revision {overflowing} to skip it"
        )))
    }

    /// The wanted events of one revision's changes, with their payloads.
    async fn events_of(&self, store: &Store, changes: &[Change]) -> Result<Vec<v1::ChangeEvent>, Status> {
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut out = Vec::new();
        for c in changes {
            // Counted before filtering: the n-th change of an URN in a revision pairs with the
            // n-th matching row written at that revision.
            let nth = seen.entry((c.urn.as_str(), c.change.as_str())).or_default();
            let index = *nth;
            *nth += 1;
            let Some(kind) = convert::change_kind(&c.change) else {
                tracing::warn!(change = %c.change, revision = c.revision, "unknown change kind in the feed; skipped");
                continue;
            };
            if !self.filter.wants(&c.tenant, kind) {
                continue;
            }
            let payload = payload(store, c, kind, index, &self.shard).await?;
            if !self.filter.touches_kinds(&c.urn, payload.as_ref()) {
                continue;
            }
            let mut event = convert::change_event(c.revision, &c.tenant, &c.urn, kind, &self.shard);
            event.time_ms = match &payload {
                Some(Payload::Entity(e)) => e.updated_at_ms,
                Some(Payload::Edge(e)) if kind == v1::ChangeKind::EdgeAdded => e.created_at_ms,
                Some(Payload::Document(d)) => d.created_at_ms,
                Some(Payload::Schema(s)) => s.created_at_ms,
                _ => 0,
            };
            event.payload = payload;
            out.push(event);
        }
        Ok(out)
    }
}

/// The state a change produced, read as of its revision; `None` when it cannot be told (a
/// deleted document, a row from a newer store).
async fn payload(
    store: &Store,
    c: &Change,
    kind: v1::ChangeKind,
    nth: usize,
    shard: &str,
) -> Result<Option<Payload>, Status> {
    use v1::ChangeKind as K;
    let rev = c.revision;
    let at = Some(AsOf::Revision(rev));
    let entity = c.urn.parse::<EntityUrn>().ok();
    Ok(match (kind, entity) {
        (K::EntityVersion | K::EntityDeleted, Some(urn)) => {
            let e = store.get_entity(&urn.unversioned(), at).await.map_err(status::store)?;
            e.filter(|e| e.revision == rev).map(|e| Payload::Entity(convert::entity_to_wire(&e)))
        }
        (K::Document, Some(urn)) => {
            let docs = store.documents(&urn, at).await.map_err(status::store)?;
            let d = docs.into_iter().filter(|d| d.revision == rev).nth(nth);
            d.map(|d| Payload::Document(convert::document_to_wire(&d)))
        }
        (K::EdgeAdded, Some(urn)) => {
            let edges = store.edges_of(&[urn], Direction::Downstream, &[], at).await.map_err(status::store)?;
            let e = edges.into_iter().filter(|e| e.revision == rev).nth(nth);
            e.map(|e| Payload::Edge(convert::edge_to_wire(&e)))
        }
        (K::EdgeRemoved, Some(urn)) => {
            let frontier = [urn];
            let before = Some(AsOf::Revision(rev.saturating_sub(1)));
            let was = store.edges_of(&frontier, Direction::Downstream, &[], before).await.map_err(status::store)?;
            let is = store.edges_of(&frontier, Direction::Downstream, &[], at).await.map_err(status::store)?;
            let e = was.into_iter().filter(|e| !is.contains(e)).nth(nth);
            e.map(|e| Payload::Edge(convert::edge_to_wire(&e)))
        }
        (K::Schema, _) => {
            let prefix = format!("mm://{}/type/", c.tenant);
            let names =
                TenantId::new(&c.tenant).ok().zip(c.urn.strip_prefix(&prefix).and_then(|t| TypeName::new(t).ok()));
            match names {
                Some((tenant, type_name)) => {
                    let versions = store.schema_versions(&tenant, &type_name).await.map_err(status::store)?;
                    let s = versions.into_iter().find(|s| s.revision == rev);
                    s.map(|s| Payload::Schema(convert::schema_version_to_wire(&s)))
                }
                None => None,
            }
        }
        (K::Tenant, _) => TenantId::new(&c.tenant)
            .ok()
            .map(|t| Payload::TenantInfo(v1::Tenant { revision: rev, ..convert::tenant_to_wire(&t, shard) })),
        _ => None,
    })
}
