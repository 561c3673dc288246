//! The write pipeline and the handlers of every command but entity puts (see `entities`).
//!
//! Everything here is synchronous: it runs inside one blocking task on the writer connection
//! (see `writer`), inside the transaction of a whole batch of log entries.

use std::cell::RefCell;
use std::collections::HashSet;

use metamesh_core::command::SchemaSpec;
use metamesh_core::{Command, CommandError, EntityUrn, Outcome, Proposal, TenantId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::json;

use crate::writer::{Cached, WriterConn};
use crate::{entities, graph, lineage, schemas, search, Store, StoreError, Validators};

/// The result of applying one log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub revision: u64,
    /// The time the store recorded for this revision (never before the previous one).
    pub at_ms: i64,
    /// The command's outcome, or why it was refused (in which case it wrote nothing).
    pub result: Result<Outcome, CommandError>,
    /// Set when the request id was seen before: the revision that first applied it.
    pub duplicate_of: Option<u64>,
}

/// A handler's failure: the command was refused, or the store failed.
pub(crate) enum Fail {
    Command(CommandError),
    Store(StoreError),
}

impl From<CommandError> for Fail {
    fn from(e: CommandError) -> Self {
        Fail::Command(e)
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Store(StoreError::Sqlite(e))
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(c) => Fail::Command(c),
            other => Fail::Store(other),
        }
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

/// What every handler needs to stamp its rows.
pub(crate) struct Ctx<'a> {
    pub validators: &'a Validators,
    pub rev: i64,
    pub at_ms: i64,
    pub by: &'a str,
    /// The tenants this shard owned before this command.
    pub tenants: &'a HashSet<String>,
    /// Tenants this command created: added to the writer's cache only if the command is applied
    /// (a refused command's tenant must not linger).
    pub created: RefCell<Vec<String>>,
    /// Changes to the live lineage graph, applied to the in-memory index after commit.
    pub graph: RefCell<Vec<graph::Delta>>,
}

impl Ctx<'_> {
    pub fn owns(&self, tenant: &TenantId) -> bool {
        self.tenants.contains(tenant.as_str()) || self.created.borrow().iter().any(|t| t == tenant.as_str())
    }

    pub fn require_tenant(&self, tenant: &TenantId) -> Res<()> {
        if self.owns(tenant) {
            Ok(())
        } else {
            Err(CommandError::UnknownTenant(tenant.clone()).into())
        }
    }
}

/// What applying a batch of entries produced: one [`Applied`] per entry, and the lineage graph
/// changes to publish once the transaction committed.
struct BatchResult {
    applied: Vec<Applied>,
    deltas: Vec<graph::Delta>,
}

impl Store {
    /// Applies `proposal` as revision `rev`. Revisions must increase; gaps are allowed (Raft
    /// log entries that are not commands, such as membership changes, take indexes too).
    pub async fn apply(&self, rev: u64, proposal: &Proposal) -> Result<Applied, StoreError> {
        self.apply_with_meta(rev, proposal, None).await
    }

    /// [`Store::apply`], also setting a `meta` key in the same transaction: the Raft state
    /// machine records its last applied log id and membership this way, so that they can never
    /// disagree with the state after a crash.
    pub async fn apply_with_meta(
        &self,
        rev: u64,
        proposal: &Proposal,
        meta: Option<(&str, &str)>,
    ) -> Result<Applied, StoreError> {
        let meta = meta.map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut applied = self.apply_batch(vec![(rev, proposal.clone())], meta).await?;
        Ok(applied.remove(0))
    }

    /// Applies several entries in one transaction (one commit, one fsync), each in its own
    /// savepoint: a refused command is rolled back alone and the others stand. `meta`, if
    /// given, is written in the same transaction. Either every entry is applied or, on a
    /// [`StoreError`], none is.
    pub async fn apply_batch(
        &self,
        entries: Vec<(u64, Proposal)>,
        meta: Option<(String, String)>,
    ) -> Result<Vec<Applied>, StoreError> {
        let validators = self.validators.clone();
        let creates = entries.iter().any(|(_, p)| creates_tenant(&p.command));
        if creates {
            self.forget_tenants();
        }
        let small = entries.iter().map(|(_, p)| weight(&p.command)).sum::<usize>() <= SMALL_APPLY;
        let apply = move |w: &mut WriterConn| {
            apply_entries(w, &validators, &entries, meta.as_ref().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        let done = if small { self.writer.run_here(apply).await } else { self.writer.run(apply).await };
        if creates {
            self.forget_tenants();
        }
        let done = done?;
        if !done.deltas.is_empty() {
            self.graph.write().expect("graph poisoned").apply(done.deltas);
        }
        Ok(done.applied)
    }
}

/// Applies of at most this many commands run on the calling thread ([`Writer::run_here`]): a
/// single put applies in about 0.1 ms, less than the two thread switches of a trip through the
/// blocking pool cost on the reference machine.
///
/// [`Writer::run_here`]: crate::writer::Writer::run_here
const SMALL_APPLY: usize = 4;

/// The commands a command stands for.
fn weight(command: &Command) -> usize {
    match command {
        Command::Batch { commands } => commands.len(),
        _ => 1,
    }
}

fn creates_tenant(command: &Command) -> bool {
    match command {
        Command::CreateTenant { .. } => true,
        Command::Batch { commands } => commands.iter().any(creates_tenant),
        _ => false,
    }
}

fn apply_entries(
    w: &mut WriterConn,
    validators: &Validators,
    entries: &[(u64, Proposal)],
    meta: Option<(&str, &str)>,
) -> Result<BatchResult, StoreError> {
    let mut state = w.take_cached()?;
    let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = BatchResult { applied: Vec::with_capacity(entries.len()), deltas: Vec::new() };
    let mut i = 0;
    while i < entries.len() {
        let run = put_run_len(&entries[i..]);
        if run >= 2 {
            out.applied.extend(apply_put_run(&tx, validators, &mut state, &entries[i..i + run], &mut out.deltas)?);
            i += run;
        } else {
            let (rev, proposal) = &entries[i];
            out.applied.push(apply_one(&tx, validators, &mut state, *rev, proposal, &mut out.deltas)?);
            i += 1;
        }
    }
    if let Some((key, value)) = meta {
        set_meta(&tx, key, value)?;
    }
    tx.commit()?;
    w.cached = Some(state);
    Ok(out)
}

/// Most entries coalesced into one set-based put.
const MAX_PUT_RUN: usize = 1_000;

/// How many entries from the start of `entries` are single-entity puts that can be written
/// together: distinct URNs (a second put of one URN must see the first) and distinct request
/// ids (a retry must see the first attempt's outcome).
fn put_run_len(entries: &[(u64, Proposal)]) -> usize {
    let mut urns = HashSet::new();
    let mut requests = HashSet::new();
    let mut n = 0;
    for (_, p) in entries.iter().take(MAX_PUT_RUN) {
        let Command::PutEntity(spec) = &p.command else { break };
        if !urns.insert(&spec.urn) {
            break;
        }
        if let Some(id) = &p.request_id {
            if !requests.insert((&p.principal, id)) {
                break;
            }
        }
        n += 1;
    }
    n
}

/// Applies consecutive single-entity puts (see [`put_run_len`]) as one set-based write, each row
/// stamped with its own entry's revision, time and principal. The result is the same as
/// applying them one by one — replicas cut apply batches differently and must still agree: each
/// entry is checked on its own, a refused one writes nothing but its revision record.
fn apply_put_run(
    conn: &Connection,
    validators: &Validators,
    state: &mut Cached,
    entries: &[(u64, Proposal)],
    deltas: &mut Vec<graph::Delta>,
) -> Result<Vec<Applied>, StoreError> {
    let mut applied: Vec<Applied> = Vec::with_capacity(entries.len());
    // Entries still to be written: index into `entries`, and the spec.
    let mut pending: Vec<(usize, &metamesh_core::EntitySpec)> = Vec::new();
    for (i, (rev, proposal)) in entries.iter().enumerate() {
        let rev = *rev;
        let at_ms = state.advance(rev, proposal.at_ms)?;
        // The result is filled in below: a duplicate's first outcome, a refusal, or the put's.
        let mut entry = Applied {
            revision: rev,
            at_ms,
            result: Err(CommandError::invalid("command", "not applied")),
            duplicate_of: None,
        };
        if let Some((first_rev, outcome)) = first_attempt(conn, proposal)? {
            entry.result = Ok(outcome);
            entry.duplicate_of = Some(first_rev);
        } else if let Err(e) = proposal.validate() {
            entry.result = Err(e);
        } else if let Command::PutEntity(spec) = &proposal.command {
            pending.push((i, spec));
        }
        applied.push(entry);
    }
    let specs: Vec<&metamesh_core::EntitySpec> = pending.iter().map(|(_, s)| *s).collect();
    let owns = |t: &TenantId| state.tenants.contains(t.as_str());
    let checked = entities::check(validators, &owns, conn, &specs).map_err(store_failure)?;
    let mut rows = Vec::with_capacity(pending.len());
    let mut written = Vec::with_capacity(pending.len());
    for ((i, spec), c) in pending.into_iter().zip(checked) {
        match c {
            Ok(c) => {
                let (rev, proposal) = &entries[i];
                let stamp = entities::Stamp { rev: *rev as i64, at_ms: applied[i].at_ms, by: &proposal.principal };
                rows.push((spec, c, stamp));
                written.push(i);
            }
            Err(e) => applied[i].result = Err(e),
        }
    }
    if !rows.is_empty() {
        let outcomes = entities::write(conn, rows, deltas).map_err(store_failure)?;
        for (i, outcome) in written.into_iter().zip(outcomes) {
            crate::audit::record(conn, &mut state.chain, &entries[i].1, applied[i].at_ms)?;
            applied[i].result = Ok(outcome);
        }
    }
    for (a, (_, proposal)) in applied.iter().zip(entries) {
        let (ok, outcome, request_id) = match (&a.result, a.duplicate_of) {
            (Ok(_), Some(first)) => (true, json!({ "duplicate_of": first }).to_string(), None),
            (Ok(o), None) => {
                (true, serde_json::to_string(o).expect("outcomes serialize"), proposal.request_id.as_deref())
            }
            (Err(e), _) => (false, json!({ "error": e.to_string() }).to_string(), None),
        };
        record_revision(conn, a.revision, a.at_ms, &proposal.principal, request_id, ok, &outcome)?;
    }
    Ok(applied)
}

/// A handler failure where only a store failure is possible.
fn store_failure(f: Fail) -> StoreError {
    match f {
        Fail::Store(e) => e,
        Fail::Command(e) => StoreError::Invalid(e),
    }
}

/// The revision and outcome that first applied this proposal's request id, if any.
fn first_attempt(conn: &Connection, proposal: &Proposal) -> Result<Option<(u64, Outcome)>, StoreError> {
    let Some(id) = &proposal.request_id else { return Ok(None) };
    let first: Option<(i64, String)> = conn
        .prepare_cached("SELECT rev, outcome FROM revisions WHERE principal = ? AND request_id = ? AND ok = 1")?
        .query_row(params![proposal.principal, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    first
        .map(|(rev, outcome)| {
            serde_json::from_str(&outcome)
                .map(|o| (rev as u64, o))
                .map_err(|e| StoreError::Corrupt(format!("outcome of revision {rev}: {e}")))
        })
        .transpose()
}

/// Records an entry's revision: who, when, and its outcome (a request id only on success).
fn record_revision(
    conn: &Connection,
    rev: u64,
    at_ms: i64,
    principal: &str,
    request_id: Option<&str>,
    ok: bool,
    outcome: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO revisions (rev, at_ms, principal, request_id, ok, outcome) VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![rev as i64, at_ms, principal, request_id, ok, outcome])?;
    Ok(())
}

fn apply_one(
    conn: &Connection,
    validators: &Validators,
    state: &mut Cached,
    rev: u64,
    proposal: &Proposal,
    deltas: &mut Vec<graph::Delta>,
) -> Result<Applied, StoreError> {
    let at_ms = state.advance(rev, proposal.at_ms)?;
    let record = |ok: bool, outcome: String, request_id: Option<&str>| {
        record_revision(conn, rev, at_ms, &proposal.principal, request_id, ok, &outcome)
    };

    if let Some((first_rev, parsed)) = first_attempt(conn, proposal)? {
        record(true, json!({ "duplicate_of": first_rev }).to_string(), None)?;
        return Ok(Applied { revision: rev, at_ms, result: Ok(parsed), duplicate_of: Some(first_rev) });
    }

    let ctx = Ctx {
        validators,
        rev: rev as i64,
        at_ms,
        by: &proposal.principal,
        tenants: &state.tenants,
        created: RefCell::new(Vec::new()),
        graph: RefCell::new(Vec::new()),
    };
    let result = match proposal.validate() {
        Err(e) => Err(e),
        Ok(()) => {
            conn.prepare_cached("SAVEPOINT command")?.execute([])?;
            match execute(&ctx, conn, &proposal.command) {
                Ok(outcome) => {
                    conn.prepare_cached("RELEASE command")?.execute([])?;
                    Ok(outcome)
                }
                Err(Fail::Command(e)) => {
                    conn.prepare_cached("ROLLBACK TO command")?.execute([])?;
                    conn.prepare_cached("RELEASE command")?.execute([])?;
                    Err(e)
                }
                Err(Fail::Store(e)) => return Err(e),
            }
        }
    };
    match &result {
        Ok(outcome) => {
            crate::audit::record(conn, &mut state.chain, proposal, at_ms)?;
            let text = serde_json::to_string(outcome).expect("outcomes serialize");
            record(true, text, proposal.request_id.as_deref())?;
            deltas.extend(ctx.graph.into_inner());
            state.tenants.extend(ctx.created.into_inner());
        }
        Err(e) => {
            let text = json!({ "error": e.to_string() }).to_string();
            record(false, text, None)?;
        }
    }
    Ok(Applied { revision: rev, at_ms, result, duplicate_of: None })
}

fn execute(ctx: &Ctx<'_>, conn: &Connection, command: &Command) -> Res<Outcome> {
    match command {
        Command::Batch { commands } => {
            let mut outcomes = Vec::with_capacity(commands.len());
            let mut i = 0;
            while i < commands.len() {
                // Consecutive entity puts are written set-based, a chunk at a time; a URN seen
                // twice ends the chunk so that the second put sees the first.
                let mut seen = std::collections::HashSet::new();
                let mut chunk = Vec::new();
                while let Some(Command::PutEntity(spec)) = commands.get(i) {
                    if !seen.insert(&spec.urn) {
                        break;
                    }
                    chunk.push(spec);
                    i += 1;
                }
                if !chunk.is_empty() {
                    let offset = i - chunk.len();
                    let done = entities::put(ctx, conn, &chunk, Some(offset))?;
                    outcomes.extend(done);
                    continue;
                }
                let one = execute(ctx, conn, &commands[i]).map_err(|e| at_index(i, e))?;
                outcomes.push(one);
                i += 1;
            }
            Ok(Outcome::Batch { outcomes })
        }
        Command::CreateTenant { tenant } => create_tenant(ctx, conn, tenant),
        Command::RegisterSchema(spec) => register_schema(ctx, conn, spec),
        Command::PutEntity(spec) => Ok(entities::put(ctx, conn, &[spec], None)?.remove(0)),
        Command::DeleteEntity { urn, expect_version } => entities::delete(ctx, conn, urn, *expect_version),
        Command::PutDocument { urn, title, body } => put_document(ctx, conn, urn, title, Some(body)),
        Command::DeleteDocument { urn, title } => put_document(ctx, conn, urn, title, None),
        Command::AddEdge(e) => lineage::add_edge(ctx, conn, e),
        Command::RemoveEdge(e) => lineage::remove_edge(ctx, conn, e),
        // The record itself is written with every applied command's (see `audit`).
        Command::Erase { urn, properties, documents } => entities::erase(ctx, conn, urn, properties, documents),
        Command::Audit(_) => Ok(Outcome::Audited),
        Command::DeliverReferences { origin, refs } => lineage::deliver_references(ctx, conn, origin, refs),
        Command::OutboxDelivered { ids } => lineage::outbox_delivered(conn, ids),
        Command::Mlmd { tenant, rpc, request } => crate::mlmd::apply(ctx, conn, tenant, rpc, request),
        Command::OpenLineage { tenant, events, foreign } => {
            crate::openlineage::apply(ctx, conn, tenant, events, foreign)
        }
        Command::AuditCheckpoint { checkpoint } => {
            let cp: metamesh_audit::Checkpoint = serde_json::from_value(checkpoint.clone())
                .map_err(|e| CommandError::invalid("checkpoint", format!("not a checkpoint: {e}")))?;
            metamesh_audit::sqlite::insert_checkpoint(conn, &cp)
                .map_err(|e| CommandError::invalid("checkpoint", format!("not stored: {e}")))?;
            Ok(Outcome::Audited)
        }
    }
}

/// Names batch element `i` in a refusal.
pub(crate) fn at_index(i: usize, f: Fail) -> Fail {
    match f {
        Fail::Command(e) => Fail::Command(e.in_batch(i)),
        other => other,
    }
}

fn create_tenant(ctx: &Ctx<'_>, conn: &Connection, tenant: &TenantId) -> Res<Outcome> {
    let done = conn
        .prepare_cached(
            "INSERT INTO tenants (name, rev, at_ms, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )?
        .execute(params![tenant.as_str(), ctx.rev, ctx.at_ms, ctx.by])?;
    if done == 0 {
        return Err(CommandError::TenantExists(tenant.clone()).into());
    }
    ctx.created.borrow_mut().push(tenant.to_string());
    record_change(ctx, conn, tenant.as_str(), &format!("mm://{tenant}"), "tenant")?;
    Ok(Outcome::Tenant { tenant: tenant.clone() })
}

fn register_schema(ctx: &Ctx<'_>, conn: &Connection, spec: &SchemaSpec) -> Res<Outcome> {
    ctx.require_tenant(&spec.tenant)?;
    let plan = schemas::register(ctx, conn, spec)?;
    if plan.creates {
        let urn = format!("mm://{}/type/{}", spec.tenant, spec.type_name);
        record_change(ctx, conn, spec.tenant.as_str(), &urn, "schema")?;
    }
    Ok(Outcome::Schema { tenant: spec.tenant.clone(), type_name: spec.type_name.clone(), version: plan.version })
}

fn put_document(ctx: &Ctx<'_>, conn: &Connection, urn: &EntityUrn, title: &str, body: Option<&str>) -> Res<Outcome> {
    ctx.require_tenant(urn.tenant())?;
    let (id, _) = entities::live_id(conn, urn)?;
    let prev: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT version, deleted FROM documents WHERE entity_id = ? AND title = ? AND until_rev IS NULL",
        )?
        .query_row(params![id, title], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let version = match (prev, body) {
        (None | Some((_, 1)), None) => return Err(CommandError::NotFound(format!("{urn} document `{title}`")).into()),
        (None, Some(_)) => 1,
        (Some((v, _)), _) => v + 1,
    };
    conn.prepare_cached("UPDATE documents SET until_rev = ? WHERE entity_id = ? AND title = ? AND until_rev IS NULL")?
        .execute(params![ctx.rev, id, title])?;
    conn.prepare_cached(
        "INSERT INTO documents (entity_id, title, version, rev, until_rev, at_ms, by, body, deleted)
         VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
    )?
    .execute(params![id, title, version, ctx.rev, ctx.at_ms, ctx.by, body.unwrap_or(""), body.is_none()])?;
    search::reindex(conn, &[id])?;
    record_change(ctx, conn, urn.tenant().as_str(), &urn.to_string(), "document")?;
    Ok(Outcome::Document { urn: urn.clone(), title: title.to_owned(), version: version as u32 })
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

impl Store {
    /// Sets a `meta` key on its own (for log entries that carry no command).
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer.run(move |w| Ok(set_meta(&w.conn, &key, &value)?)).await
    }

    /// A `meta` value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.readers).await?)
    }

    /// Writes a consistent copy of the whole store to `path` (`VACUUM INTO`) and returns the
    /// value of `meta_key` at that instant. Applies wait meanwhile, so the copy and the value
    /// describe the same state. The copy is fsynced before this returns.
    pub async fn snapshot_into(&self, path: &std::path::Path, meta_key: &str) -> Result<Option<String>, StoreError> {
        let target =
            path.to_str().ok_or_else(|| StoreError::Corrupt(format!("non-UTF-8 path {}", path.display())))?.to_owned();
        let key = meta_key.to_owned();
        self.writer
            .run(move |w| {
                let value: Option<String> =
                    w.conn.query_row("SELECT value FROM meta WHERE key = ?", [&key], |r| r.get(0)).optional()?;
                w.conn.execute("VACUUM INTO ?", [&target])?;
                std::fs::File::open(&target)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| StoreError::Corrupt(format!("syncing snapshot {target}: {e}")))?;
                // The log before this state may now be purged; make sure the state itself is
                // on disk even when commits are not fsynced (`synchronous = NORMAL`).
                w.conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
                Ok(value)
            })
            .await
    }
}

pub(crate) fn record_change(ctx: &Ctx<'_>, conn: &Connection, tenant: &str, urn: &str, change: &str) -> Res<()> {
    conn.prepare_cached("INSERT INTO changes (rev, tenant, urn, change) VALUES (?, ?, ?, ?)")?
        .execute(params![ctx.rev, tenant, urn, change])?;
    Ok(())
}
