//! Shared fixture of the store's integration tests: a store on a real SQLite file in a temp
//! directory, a revision counter and a controllable clock, plus small builders for commands.
#![allow(dead_code)]

use std::ops::Deref;

use metamesh_core::command::SchemaSpec;
use metamesh_core::{
    Command, CommandError, EdgeKind, EdgeSpec, EntitySpec, EntityUrn, Kind, Outcome, Proposal, TenantId, TypeName, Urn,
};
use metamesh_store::{Applied, Store, StoreOptions};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const PRINCIPAL: &str = "tester";
/// The clock starts here and advances by [`TestStore::tick_ms`] after every apply.
pub const START_MS: i64 = 1_700_000_000_000;

pub struct TestStore {
    pub dir: TempDir,
    store: Option<Store>,
    /// The last revision applied through this fixture.
    pub rev: u64,
    /// The time the next proposal carries.
    pub now_ms: i64,
    /// How far the clock moves after each apply.
    pub tick_ms: i64,
}

impl Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }
}

impl TestStore {
    pub async fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("shard.sqlite"), StoreOptions::default()).await.expect("open store");
        TestStore { dir, store: Some(store), rev: 0, now_ms: START_MS, tick_ms: 1000 }
    }

    /// A store with tenant `acme` created (revision 1).
    pub async fn with_tenant() -> TestStore {
        let mut s = TestStore::new().await;
        s.ok(create_tenant("acme")).await;
        s
    }

    pub fn store(&self) -> &Store {
        self
    }

    /// Applies `cmd` as the next revision, by [`PRINCIPAL`], at the clock's time.
    pub async fn apply(&mut self, cmd: Command) -> Applied {
        let p = Proposal::new(cmd, self.now_ms, PRINCIPAL);
        self.apply_proposal(p).await
    }

    /// Applies a proposal as the next revision; the clock advances afterwards.
    pub async fn apply_proposal(&mut self, p: Proposal) -> Applied {
        let rev = self.rev + 1;
        let applied = self.store().apply(rev, &p).await.unwrap_or_else(|e| panic!("apply at {rev} failed: {e}"));
        assert_eq!(applied.revision, rev);
        self.rev = rev;
        self.now_ms += self.tick_ms;
        applied
    }

    /// Applies with an explicit principal and request id.
    pub async fn apply_as(&mut self, principal: &str, request_id: Option<&str>, cmd: Command) -> Applied {
        let mut p = Proposal::new(cmd, self.now_ms, principal);
        p.request_id = request_id.map(str::to_owned);
        self.apply_proposal(p).await
    }

    /// Applies `cmd`, panicking with the error if it is refused.
    pub async fn ok(&mut self, cmd: Command) -> Outcome {
        let shown = format!("{cmd:?}");
        match self.apply(cmd).await.result {
            Ok(o) => o,
            Err(e) => panic!("command refused: {e}\n{shown}"),
        }
    }

    /// Applies `cmd`, panicking if it is accepted.
    pub async fn err(&mut self, cmd: Command) -> CommandError {
        let shown = format!("{cmd:?}");
        match self.apply(cmd).await.result {
            Ok(o) => panic!("command accepted: {o:?}\n{shown}"),
            Err(e) => e,
        }
    }

    /// Applies `cmd`, asserting it is refused and that it changed nothing but the revision log.
    pub async fn refused(&mut self, cmd: Command) -> CommandError {
        let before = self.state_without_revisions().await;
        let e = self.err(cmd).await;
        let after = self.state_without_revisions().await;
        assert_eq!(before, after, "refused command ({e}) changed state");
        e
    }

    /// Closes the store (checkpointing the WAL) and opens the same file again.
    pub async fn reopen(&mut self) {
        let store = self.store.take().expect("store is open");
        store.close().await;
        let store =
            Store::open(self.dir.path().join("shard.sqlite"), StoreOptions::default()).await.expect("reopen store");
        self.store = Some(store);
    }

    /// Closes the store, keeping its directory (and file).
    pub async fn close_keep_dir(mut self) -> TempDir {
        if let Some(s) = self.store.take() {
            s.close().await;
        }
        self.dir
    }

    pub async fn close(mut self) {
        if let Some(s) = self.store.take() {
            s.close().await;
        }
    }

    /// The export without the `revisions` lines: what a refused command must not change.
    pub async fn state_without_revisions(&self) -> String {
        let all = self.export().await.expect("export");
        all.lines().filter(|l| !l.starts_with("revisions\t")).map(|l| format!("{l}\n")).collect()
    }

    /// The current version of an entity (panics if absent).
    pub async fn current(&self, urn: &str) -> metamesh_core::EntityVersion {
        self.get_entity(&vu(urn), None).await.expect("get_entity").unwrap_or_else(|| panic!("{urn} not found"))
    }

    /// Puts an entity with no type and the given properties; returns the new version.
    pub async fn put_props(&mut self, urn: &str, properties: Value) -> u64 {
        let mut s = spec(urn);
        s.properties = properties;
        version_of(self.ok(Command::PutEntity(s)).await)
    }
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("tenant")
}

pub fn type_name(name: &str) -> TypeName {
    TypeName::new(name).expect("type name")
}

/// An entity URN (no version).
pub fn eu(s: &str) -> EntityUrn {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A URN, possibly with a version.
pub fn vu(s: &str) -> Urn {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn create_tenant(name: &str) -> Command {
    Command::CreateTenant { tenant: tenant(name) }
}

pub fn spec(urn: &str) -> EntitySpec {
    EntitySpec::new(eu(urn))
}

pub fn put(urn: &str) -> Command {
    Command::PutEntity(spec(urn))
}

pub fn put_typed(urn: &str, ty: &str, properties: Value) -> Command {
    let mut s = spec(urn);
    s.type_name = Some(type_name(ty));
    s.properties = properties;
    Command::PutEntity(s)
}

pub fn delete(urn: &str) -> Command {
    Command::DeleteEntity { urn: eu(urn), expect_version: None }
}

pub fn edge_spec(from: &str, kind: EdgeKind, to: &str) -> EdgeSpec {
    EdgeSpec::new(vu(from), kind, vu(to))
}

pub fn add_edge(from: &str, kind: EdgeKind, to: &str) -> Command {
    Command::AddEdge(edge_spec(from, kind, to))
}

pub fn remove_edge(from: &str, kind: EdgeKind, to: &str) -> Command {
    Command::RemoveEdge(edge_spec(from, kind, to))
}

pub fn put_doc(urn: &str, title: &str, body: &str) -> Command {
    Command::PutDocument { urn: eu(urn), title: title.into(), body: body.into() }
}

pub fn schema_spec(tenant_name: &str, ty: &str, base_kind: Kind, schema: Value) -> SchemaSpec {
    SchemaSpec {
        tenant: tenant(tenant_name),
        type_name: type_name(ty),
        base_kind,
        schema,
        compatibility: None,
        migration: Default::default(),
    }
}

pub fn register(tenant_name: &str, ty: &str, base_kind: Kind, schema: Value) -> Command {
    Command::RegisterSchema(schema_spec(tenant_name, ty, base_kind, schema))
}

/// The `Table` schema of the tests: a closed object with a required `location` and optional
/// non-negative `rows` and `format`.
pub fn table_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "rows": {"type": "integer", "minimum": 0},
            "format": {"type": "string", "enum": ["parquet", "csv", "delta"]}
        },
        "required": ["location"],
        "additionalProperties": false
    })
}

pub fn version_of(o: Outcome) -> u64 {
    match o {
        Outcome::Entity { version, .. } => version,
        other => panic!("expected an entity outcome, got {other:?}"),
    }
}

pub fn edge_changed(o: Outcome) -> bool {
    match o {
        Outcome::Edge { changed } => changed,
        other => panic!("expected an edge outcome, got {other:?}"),
    }
}

/// URNs of a list of entity versions, as strings.
pub fn urns_of<'a>(items: impl IntoIterator<Item = &'a metamesh_core::EntityVersion>) -> Vec<String> {
    items.into_iter().map(|e| e.urn.to_string()).collect()
}
