//! The write pipeline and the handlers of every command but entity puts (see `entities`).

use metamesh_core::command::SchemaSpec;
use metamesh_core::{Command, CommandError, EntityUrn, Outcome, Proposal, TenantId};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

use crate::{entities, lineage, schemas, search, Store, StoreError};

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

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Store(StoreError::Db(e))
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
    pub store: &'a Store,
    pub rev: i64,
    pub at_ms: i64,
    pub by: &'a str,
    /// The tenants this shard owns, read once per apply (every command checks them; a
    /// statement costs a thread round trip). A refused apply drops the context with its
    /// transaction, so a tenant created by a refused batch does not linger here.
    pub tenants: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Changes to the live lineage graph, applied to the in-memory index after commit.
    pub graph: std::sync::Mutex<Vec<crate::graph::Delta>>,
}

impl Ctx<'_> {
    pub fn owns(&self, tenant: &TenantId) -> bool {
        self.tenants.lock().expect("tenant cache poisoned").contains(tenant.as_str())
    }

    pub fn require_tenant(&self, tenant: &TenantId) -> Res<()> {
        if self.owns(tenant) {
            Ok(())
        } else {
            Err(CommandError::UnknownTenant(tenant.clone()).into())
        }
    }
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
        let mut conn = self.writer.lock().await;
        let mut tx = conn.begin().await?;
        if let Some((key, value)) = meta {
            set_meta(&mut tx, key, value).await?;
        }
        let (last_rev, last_at): (i64, i64) =
            sqlx::query_as("SELECT ifnull(max(rev), 0), ifnull(max(at_ms), 0) FROM revisions")
                .fetch_one(&mut *tx)
                .await?;
        if rev as i64 <= last_rev || rev > i64::MAX as u64 {
            return Err(StoreError::OutOfOrder { last: last_rev as u64, given: rev });
        }
        let at_ms = proposal.at_ms.max(last_at);
        let record = |ok: bool, outcome: String, request_id: Option<&str>| {
            sqlx::query(
                "INSERT INTO revisions (rev, at_ms, principal, request_id, ok, outcome) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(rev as i64)
            .bind(at_ms)
            .bind(proposal.principal.clone())
            .bind(request_id.map(str::to_owned))
            .bind(ok)
            .bind(outcome)
        };

        if let Some(id) = &proposal.request_id {
            let first: Option<(i64, String)> =
                sqlx::query_as("SELECT rev, outcome FROM revisions WHERE principal = ? AND request_id = ? AND ok = 1")
                    .bind(&proposal.principal)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((first_rev, outcome)) = first {
                let parsed: Outcome = serde_json::from_str(&outcome)
                    .map_err(|e| StoreError::Corrupt(format!("outcome of revision {first_rev}: {e}")))?;
                record(true, json!({ "duplicate_of": first_rev }).to_string(), None).execute(&mut *tx).await?;
                tx.commit().await?;
                return Ok(Applied { revision: rev, at_ms, result: Ok(parsed), duplicate_of: Some(first_rev as u64) });
            }
        }

        let tenants: Vec<String> = sqlx::query_scalar("SELECT name FROM tenants").fetch_all(&mut *tx).await?;
        let tenants = std::sync::Mutex::new(tenants.into_iter().collect());
        let ctx = Ctx {
            store: self,
            rev: rev as i64,
            at_ms,
            by: &proposal.principal,
            tenants,
            graph: std::sync::Mutex::new(Vec::new()),
        };
        let result = match proposal.validate() {
            Err(e) => Err(e),
            Ok(()) => {
                let mut sp = tx.begin().await?;
                match execute(&ctx, &mut sp, &proposal.command).await {
                    Ok(outcome) => {
                        sp.commit().await?;
                        Ok(outcome)
                    }
                    Err(Fail::Command(e)) => {
                        sp.rollback().await?;
                        Err(e)
                    }
                    Err(Fail::Store(e)) => return Err(e),
                }
            }
        };
        match &result {
            Ok(outcome) => {
                let text = serde_json::to_string(outcome).expect("outcomes serialize");
                record(true, text, proposal.request_id.as_deref()).execute(&mut *tx).await?;
            }
            Err(e) => {
                let text = json!({ "error": e.to_string() }).to_string();
                record(false, text, None).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        if result.is_ok() {
            let deltas = std::mem::take(&mut *ctx.graph.lock().expect("graph deltas poisoned"));
            if !deltas.is_empty() {
                self.graph.write().expect("graph poisoned").apply(deltas);
            }
        }
        Ok(Applied { revision: rev, at_ms, result, duplicate_of: None })
    }
}

async fn execute(ctx: &Ctx<'_>, conn: &mut SqliteConnection, command: &Command) -> Res<Outcome> {
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
                    let done = entities::put(ctx, conn, &chunk, Some(offset)).await?;
                    outcomes.extend(done);
                    continue;
                }
                let one = Box::pin(execute(ctx, conn, &commands[i])).await.map_err(|e| at_index(i, e))?;
                outcomes.push(one);
                i += 1;
            }
            Ok(Outcome::Batch { outcomes })
        }
        Command::CreateTenant { tenant } => create_tenant(ctx, conn, tenant).await,
        Command::RegisterSchema(spec) => register_schema(ctx, conn, spec).await,
        Command::PutEntity(spec) => Ok(entities::put(ctx, conn, &[spec], None).await?.remove(0)),
        Command::DeleteEntity { urn, expect_version } => entities::delete(ctx, conn, urn, *expect_version).await,
        Command::PutDocument { urn, title, body } => put_document(ctx, conn, urn, title, Some(body)).await,
        Command::DeleteDocument { urn, title } => put_document(ctx, conn, urn, title, None).await,
        Command::AddEdge(e) => lineage::add_edge(ctx, conn, e).await,
        Command::RemoveEdge(e) => lineage::remove_edge(ctx, conn, e).await,
    }
}

/// Names batch element `i` in a refusal.
pub(crate) fn at_index(i: usize, f: Fail) -> Fail {
    match f {
        Fail::Command(e) => Fail::Command(e.in_batch(i)),
        other => other,
    }
}

async fn create_tenant(ctx: &Ctx<'_>, conn: &mut SqliteConnection, tenant: &TenantId) -> Res<Outcome> {
    let done =
        sqlx::query("INSERT INTO tenants (name, rev, at_ms, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(ctx.rev)
            .bind(ctx.at_ms)
            .bind(ctx.by)
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(CommandError::TenantExists(tenant.clone()).into());
    }
    ctx.tenants.lock().expect("tenant cache poisoned").insert(tenant.to_string());
    record_change(ctx, conn, tenant.as_str(), &format!("mm://{tenant}"), "tenant").await?;
    Ok(Outcome::Tenant { tenant: tenant.clone() })
}

async fn register_schema(ctx: &Ctx<'_>, conn: &mut SqliteConnection, spec: &SchemaSpec) -> Res<Outcome> {
    ctx.require_tenant(&spec.tenant)?;
    let plan = schemas::register(ctx, conn, spec).await?;
    if plan.creates {
        let urn = format!("mm://{}/type/{}", spec.tenant, spec.type_name);
        record_change(ctx, conn, spec.tenant.as_str(), &urn, "schema").await?;
    }
    Ok(Outcome::Schema { tenant: spec.tenant.clone(), type_name: spec.type_name.clone(), version: plan.version })
}

async fn put_document(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    urn: &EntityUrn,
    title: &str,
    body: Option<&str>,
) -> Res<Outcome> {
    ctx.require_tenant(urn.tenant())?;
    let (id, _) = entities::live_id(conn, urn).await?;
    let prev: Option<(i64, i64)> = sqlx::query_as(
        "SELECT version, deleted FROM documents WHERE entity_id = ? AND title = ? AND until_rev IS NULL",
    )
    .bind(id)
    .bind(title)
    .fetch_optional(&mut *conn)
    .await?;
    let version = match (prev, body) {
        (None | Some((_, 1)), None) => return Err(CommandError::NotFound(format!("{urn} document `{title}`")).into()),
        (None, Some(_)) => 1,
        (Some((v, _)), _) => v + 1,
    };
    sqlx::query("UPDATE documents SET until_rev = ? WHERE entity_id = ? AND title = ? AND until_rev IS NULL")
        .bind(ctx.rev)
        .bind(id)
        .bind(title)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO documents (entity_id, title, version, rev, until_rev, at_ms, by, body, deleted)
         VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(title)
    .bind(version)
    .bind(ctx.rev)
    .bind(ctx.at_ms)
    .bind(ctx.by)
    .bind(body.unwrap_or(""))
    .bind(body.is_none())
    .execute(&mut *conn)
    .await?;
    search::reindex(conn, &[id]).await?;
    record_change(ctx, conn, urn.tenant().as_str(), &urn.to_string(), "document").await?;
    Ok(Outcome::Document { urn: urn.clone(), title: title.to_owned(), version: version as u32 })
}

async fn set_meta(conn: &mut SqliteConnection, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Sets a `meta` key on its own (for log entries that carry no command).
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().await;
        set_meta(&mut conn, key, value).await?;
        Ok(())
    }

    /// A `meta` value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.readers).await?)
    }

    /// Writes a consistent copy of the whole store to `path` (`VACUUM INTO`) and returns the
    /// value of `meta_key` at that instant. Applies wait meanwhile, so the copy and the value
    /// describe the same state.
    pub async fn snapshot_into(&self, path: &std::path::Path, meta_key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.writer.lock().await;
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(meta_key)
            .fetch_optional(&mut *conn)
            .await?;
        let target = path.to_str().ok_or_else(|| StoreError::Corrupt(format!("non-UTF-8 path {}", path.display())))?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&mut *conn).await?;
        Ok(value)
    }
}

pub(crate) async fn record_change(
    ctx: &Ctx<'_>,
    conn: &mut SqliteConnection,
    tenant: &str,
    urn: &str,
    change: &str,
) -> Res<()> {
    sqlx::query("INSERT INTO changes (rev, tenant, urn, change) VALUES (?, ?, ?, ?)")
        .bind(ctx.rev)
        .bind(tenant)
        .bind(urn)
        .bind(change)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
