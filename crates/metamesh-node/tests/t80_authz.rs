//! Authorization at the node's one enforcement point: every RPC family, for callers in their own
//! tenant, in another tenant, across tenants (discoverer), on the mesh, and nobody — and nothing
//! leaking through listings, search, lineage, watch or error text. Then a policy change, reloaded
//! without a restart.

mod common;

use std::time::Duration;

use common::*;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_proto::v1::schema_service_client::SchemaServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_proto::v1::watch_service_client::WatchServiceClient;
use metamesh_testkit::policy::write_policy;
use metamesh_tls::{MeshCa, Role};
use tonic::transport::Channel;
use tonic::Code;

/// The principals of the test and what the policy gives them.
const ROLES: &[(&str, &str)] = &[
    ("ops", "g, {ops}, role:mesh-admin, *"),
    ("dora", "g, {dora}, role:discoverer, *"),
    ("audrey", "g, {audrey}, role:compliance-auditor, *"),
];

struct Mesh {
    node: Node,
}

impl Mesh {
    async fn start() -> Mesh {
        let ca = MeshCa::generate(DOMAIN).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_policy(&dir.path().join("policies"), &global(&ca), &as_refs(&tenants(&ca, false)));
        let node = Node::start_with(ca, dir).await;
        Mesh { node }
    }

    async fn as_(&self, name: &str) -> Channel {
        self.node.channel(Role::Client, name).await
    }

    /// Rewrites the tenant files (`growth_links_fraud`: growth lets alice link into it) and
    /// reloads, as the watcher would.
    fn change_policy(&self, growth_links_fraud: bool) {
        let dir = self.node.authorizer.dir().to_owned();
        let ca = &self.node.ca;
        write_policy(&dir, &global(ca), &as_refs(&tenants(ca, growth_links_fraud)));
        self.node.authorizer.reload().expect("the new policy loads");
    }
}

fn id(ca: &MeshCa, name: &str) -> String {
    ca.spiffe_id(Role::Client, name)
}

fn global(ca: &MeshCa) -> String {
    ROLES.iter().map(|(n, line)| line.replace(&format!("{{{n}}}"), &id(ca, n)) + "\n").collect()
}

fn tenants(ca: &MeshCa, growth_links_fraud: bool) -> Vec<(&'static str, String)> {
    // lena reads both tenants.
    let fraud = format!(
        "g, {}, role:writer, fraud\ng, {}, role:reader, fraud\ng, {}, role:admin, fraud\ng, {}, role:reader, fraud\n",
        id(ca, "alice"),
        id(ca, "rita"),
        id(ca, "adam"),
        id(ca, "lena")
    );
    let mut growth = format!("g, {}, role:writer, growth\ng, {}, role:reader, growth\n", id(ca, "bob"), id(ca, "lena"));
    if growth_links_fraud {
        growth.push_str(&format!("g, {}, role:linker, growth\n", id(ca, "alice")));
    }
    vec![("fraud", fraud), ("growth", growth)]
}

fn as_refs<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(t, s)| (*t, s.as_str())).collect()
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

fn entity(urn: &str, description: &str) -> v1::PutEntityRequest {
    v1::PutEntityRequest {
        urn: urn.into(),
        properties_json: r#"{"secret_column":"card_number"}"#.into(),
        description: description.into(),
        tags: vec!["pii".into()],
        ..Default::default()
    }
}

async fn setup(m: &Mesh) {
    let mut ops = CatalogServiceClient::new(m.as_("ops").await);
    for t in ["fraud", "growth"] {
        ops.create_tenant(v1::CreateTenantRequest { name: t.into(), ..Default::default() }).await.unwrap();
    }
    let mut alice = CatalogServiceClient::new(m.as_("alice").await);
    alice.put_entity(entity("mm://fraud/dataset/transactions", "card secrets of customers")).await.unwrap();
    let mut bob = CatalogServiceClient::new(m.as_("bob").await);
    bob.put_entity(entity("mm://growth/dataset/signups", "weekly signups")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_family_gets_the_policys_decision() {
    let m = Mesh::start().await;
    setup(&m).await;
    let tx = "mm://fraud/dataset/transactions";

    // Catalog writes: own tenant yes; a reader no; another tenant's writer is told the entity
    // does not exist (bob may not even discover fraud); a discoverer may know, so is forbidden.
    let put = |who: &'static str, urn: &'static str| {
        let m = &m;
        async move { code(CatalogServiceClient::new(m.as_(who).await).put_entity(entity(urn, "")).await) }
    };
    assert_eq!(put("alice", "mm://fraud/dataset/a").await, Code::Ok);
    assert_eq!(put("rita", "mm://fraud/dataset/b").await, Code::PermissionDenied);
    assert_eq!(put("bob", "mm://fraud/dataset/c").await, Code::NotFound);
    assert_eq!(put("dora", "mm://fraud/dataset/d").await, Code::PermissionDenied);
    assert_eq!(put("eve", "mm://fraud/dataset/e").await, Code::NotFound);
    assert_eq!(put("ops", "mm://fraud/dataset/f").await, Code::NotFound, "mesh admins hold no tenant data rights");

    // Catalog reads.
    let get = |who: &'static str, urn: &'static str| {
        let m = &m;
        async move {
            CatalogServiceClient::new(m.as_(who).await)
                .get_entity(v1::GetEntityRequest { urn: urn.into(), ..Default::default() })
                .await
        }
    };
    let read = get("rita", tx).await.unwrap().into_inner().entity.unwrap();
    assert!(read.properties_json.contains("card_number"));
    // Refused existence looks exactly like absence: same code, same message.
    let hidden = get("bob", tx).await.unwrap_err();
    let missing = get("alice", "mm://fraud/dataset/nothing-here").await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace(tx, "URN"),
        missing.message().replace("mm://fraud/dataset/nothing-here", "URN"),
        "a hidden entity and a missing one must be indistinguishable"
    );
    assert_eq!(code(get("dora", tx).await), Code::PermissionDenied);

    // Listings: a discoverer sees names and kinds only; another tenant's member nothing.
    let list = |who: &'static str| {
        let m = &m;
        async move {
            CatalogServiceClient::new(m.as_(who).await)
                .list_entities(v1::ListEntitiesRequest { tenant: "fraud".into(), ..Default::default() })
                .await
        }
    };
    let seen = list("dora").await.unwrap().into_inner().entities;
    assert!(seen.iter().any(|e| e.urn == tx));
    for e in &seen {
        assert!(!e.properties_json.contains("card"), "a discoverer saw properties: {e:?}");
        assert!(e.description.is_empty() && e.tags.is_empty() && e.created_by.is_empty(), "{e:?}");
    }
    assert!(list("rita").await.unwrap().into_inner().entities.iter().any(|e| e.description.contains("card")));
    assert_eq!(code(list("bob").await), Code::NotFound);
    let tenants = |who: &'static str| {
        let m = &m;
        async move {
            let reply = CatalogServiceClient::new(m.as_(who).await)
                .list_tenants(v1::ListTenantsRequest::default())
                .await
                .unwrap()
                .into_inner();
            reply.tenants.into_iter().map(|t| t.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(tenants("bob").await, ["growth"]);
    assert_eq!(tenants("dora").await, ["fraud", "growth"]);
    assert!(tenants("eve").await.is_empty());

    // Search: nothing of fraud for bob; a discoverer finds by name, never by description.
    let search = |who: &'static str, q: &'static str| {
        let m = &m;
        async move {
            let reply = SearchServiceClient::new(m.as_(who).await)
                .search(v1::SearchRequest { query: q.into(), ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            reply.hits
        }
    };
    assert!(search("bob", "card").await.is_empty());
    assert!(search("bob", "transactions").await.is_empty());
    assert_eq!(search("bob", "signups").await.len(), 1);
    assert!(search("dora", "secrets").await.is_empty(), "found through a description it may not read");
    let by_name = search("dora", "transactions").await;
    assert_eq!(by_name.len(), 1);
    let e = by_name[0].entity.as_ref().unwrap();
    assert!(e.description.is_empty() && !e.properties_json.contains("card"));
    assert!(by_name[0].snippet.is_empty());
    assert_eq!(search("rita", "secrets").await.len(), 1);
    // A filter on properties finds what a reader may read, and tells a discoverer nothing: it
    // cannot probe a value it may not see (nor an owner, tags or type).
    let probe = |who: &'static str, value: &'static str| {
        let m = &m;
        async move {
            SearchServiceClient::new(m.as_(who).await)
                .search(v1::SearchRequest {
                    property_filters: vec![v1::PropertyFilter {
                        path: "secret_column".into(),
                        op: v1::property_filter::Op::Eq as i32,
                        value_json: value.into(),
                    }],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .hits
        }
    };
    let found = probe("rita", r#""card_number""#).await;
    assert!(found.iter().any(|h| h.entity.as_ref().unwrap().urn == tx), "{found:?}");
    assert!(probe("rita", r#""iban""#).await.is_empty());
    assert!(probe("dora", r#""card_number""#).await.is_empty(), "a discoverer probed a property value");
    let scoped = SearchServiceClient::new(m.as_("bob").await)
        .search(v1::SearchRequest { query: "card".into(), tenants: vec!["fraud".into()], ..Default::default() })
        .await;
    assert_eq!(code(scoped), Code::NotFound);

    // Schema: admins register, readers read, strangers are told the tenant does not exist.
    let register = |who: &'static str| {
        let m = &m;
        async move {
            code(
                SchemaServiceClient::new(m.as_(who).await)
                    .register_schema(v1::RegisterSchemaRequest {
                        tenant: "fraud".into(),
                        type_name: "Table".into(),
                        base_kind: "dataset".into(),
                        schema_json: r#"{"type":"object"}"#.into(),
                        ..Default::default()
                    })
                    .await,
            )
        }
    };
    assert_eq!(register("alice").await, Code::PermissionDenied);
    assert_eq!(register("adam").await, Code::Ok);
    assert_eq!(register("bob").await, Code::NotFound);
    let types = SchemaServiceClient::new(m.as_("rita").await)
        .list_types(v1::ListTypesRequest { tenant: "fraud".into(), ..Default::default() })
        .await;
    assert_eq!(code(types), Code::Ok);

    // Admin: the mesh admin only.
    assert_eq!(code(AdminServiceClient::new(m.as_("ops").await).status(v1::StatusRequest {}).await), Code::Ok);
    let status = AdminServiceClient::new(m.as_("adam").await).status(v1::StatusRequest {}).await;
    assert_eq!(code(status), Code::PermissionDenied);
    let snapshot = AdminServiceClient::new(m.as_("alice").await)
        .trigger_snapshot(v1::TriggerSnapshotRequest { wait: false })
        .await;
    assert_eq!(code(snapshot), Code::PermissionDenied);

    // Audit: the compliance auditor verifies the shard's log; a tenant admin may not (it reads
    // only its tenant's records, through ListRecords).
    let audit = |who: &'static str| {
        let m = &m;
        async move {
            code(
                metamesh_proto::v1::audit_service_client::AuditServiceClient::new(m.as_(who).await)
                    .verify(v1::VerifyRequest::default())
                    .await,
            )
        }
    };
    assert_eq!(audit("audrey").await, Code::Ok);
    assert_eq!(audit("adam").await, Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_and_watch_respect_the_caller_and_policy_changes_apply_without_restart() {
    let m = Mesh::start().await;
    setup(&m).await;
    let digest = m.node.authorizer.digest();
    // Stored by its downstream end, growth.
    let edge = || v1::AddEdgesRequest {
        tenant: "growth".into(),
        edges: vec![v1::EdgeSpec {
            from_urn: "mm://fraud/dataset/transactions".into(),
            to_urn: "mm://growth/dataset/signups".into(),
            kind: "derived_from".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // Lineage into growth needs growth's grant: alice may not even know growth's entity.
    let mut alice = LineageServiceClient::new(m.as_("alice").await);
    assert_eq!(code(alice.add_edges(edge()).await), Code::NotFound);

    // Growth's team grants it in their file; the node picks it up without a restart.
    m.change_policy(true);
    assert_ne!(m.node.authorizer.digest(), digest, "the digest follows the files");
    alice.add_edges(edge()).await.unwrap();

    // rita reads fraud but not growth: the edge's far end is left out of her view; bob sees
    // growth's end but the fraud start is not his to read at all.
    let edges = |who: &'static str, urn: &'static str| {
        let m = &m;
        async move {
            LineageServiceClient::new(m.as_(who).await)
                .get_edges(v1::GetEdgesRequest { urns: vec![urn.into()], ..Default::default() })
                .await
        }
    };
    assert_eq!(edges("lena", "mm://fraud/dataset/transactions").await.unwrap().into_inner().edges.len(), 1);
    // alice may link into growth, not read it: she does not see what she linked to.
    assert!(edges("alice", "mm://fraud/dataset/transactions").await.unwrap().into_inner().edges.is_empty());
    assert!(edges("rita", "mm://fraud/dataset/transactions").await.unwrap().into_inner().edges.is_empty());
    assert_eq!(code(edges("bob", "mm://fraud/dataset/transactions").await), Code::NotFound);
    assert!(edges("bob", "mm://growth/dataset/signups").await.unwrap().into_inner().edges.is_empty());
    let expanded = LineageServiceClient::new(m.as_("rita").await)
        .expand(v1::ExpandRequest { urns: vec!["mm://fraud/dataset/transactions".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(expanded.nodes.iter().all(|n| !n.urn.contains("growth")), "{expanded:?}");
    assert!(expanded.remote_frontier.iter().all(|u| !u.contains("growth")));

    // Watch from the start: bob's stream carries growth's changes and never fraud's.
    let mut stream = WatchServiceClient::new(m.as_("bob").await)
        .watch(v1::WatchRequest { from_revision: Some(0), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut tenants_seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(Some(event))) = tokio::time::timeout_at(deadline, stream.message()).await {
        if !event.tenant.is_empty() {
            tenants_seen.insert(event.tenant.clone());
        }
        if tenants_seen.contains("growth") && event.revision >= m.node.replica.applied() {
            break;
        }
    }
    assert_eq!(tenants_seen.into_iter().collect::<Vec<_>>(), ["growth"]);

    // Revoking works the same way.
    m.change_policy(false);
    assert_eq!(m.node.authorizer.digest(), digest, "the same files give the same digest");
    let mut again = edge();
    again.edges[0].to_urn = "mm://growth/dataset/signups".into();
    again.edges[0].kind = "consumed".into();
    assert_eq!(code(alice.add_edges(again).await), Code::NotFound);
}

/// The audit records of the node's store (the state file, read directly).
fn audit_records(m: &Mesh) -> Vec<metamesh_audit::AuditRecord> {
    let conn = rusqlite::Connection::open(m.node.replica.local_store().path()).unwrap();
    metamesh_audit::sqlite::read_all(&conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_sensitive_reads_are_audited_and_a_flood_is_coalesced() {
    let m = Mesh::start().await;
    setup(&m).await;
    // Mark fraud's transactions sensitive.
    let dir = m.node.authorizer.dir().to_owned();
    let mut fraud = tenants(&m.node.ca, false).remove(0).1;
    fraud.push_str("s, mm://fraud/dataset/transactions\n");
    let growth = tenants(&m.node.ca, false).remove(1).1;
    write_policy(&dir, &global(&m.node.ca), &[("fraud", &fraud), ("growth", &growth)]);
    m.node.authorizer.reload().unwrap();
    let digest = m.node.authorizer.digest().to_string();

    // A flood of refusals: bob hammers fraud.
    let mut bob = CatalogServiceClient::new(m.as_("bob").await);
    for _ in 0..50 {
        let r = bob.get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/x".into(), ..Default::default() }).await;
        assert_eq!(code(r), Code::NotFound);
    }
    // A sensitive read by a reader.
    let mut rita = CatalogServiceClient::new(m.as_("rita").await);
    rita.get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/transactions".into(), ..Default::default() })
        .await
        .unwrap();

    let bob_id = id(&m.node.ca, "bob");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let records = audit_records(&m);
        let denied: u32 = records
            .iter()
            .filter(|r| r.principal == bob_id && r.decision == metamesh_audit::Decision::Deny)
            .map(|r| r.count)
            .sum();
        let sensitive = records.iter().find(|r| {
            r.decision == metamesh_audit::Decision::Allow && r.action == "read" && r.resource.contains("transactions")
        });
        if let (50, Some(sensitive)) = (denied, sensitive) {
            let deny_records: Vec<_> = records
                .iter()
                .filter(|r| r.principal == bob_id && r.decision == metamesh_audit::Decision::Deny)
                .collect();
            assert!(deny_records.len() <= 3, "a flood must be coalesced: {} records", deny_records.len());
            assert!(deny_records.iter().all(|r| r.action == "read" && r.tenant.as_deref() == Some("fraud")));
            assert!(deny_records.iter().all(|r| r.policy_digest == digest), "the policy in force is recorded");
            assert_eq!(sensitive.principal, id(&m.node.ca, "rita"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "denied {denied} of 50 recorded; sensitive read: {sensitive:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes are recorded with the digest too.
    let writes: Vec<_> = audit_records(&m).into_iter().filter(|r| r.action == "write").collect();
    assert!(writes.iter().any(|r| r.resource == "mm://fraud/dataset/transactions" && !r.policy_digest.is_empty()));
}

/// What each role may do, as `docs/policies.md` states it: (role, tenant-scoped, actions).
const ROLE_TABLE: &[(&str, bool, &[&str])] = &[
    ("rita", true, &["read", "discover", "search", "watch", "schema.read"]),
    ("alice", true, &["read", "discover", "search", "watch", "schema.read", "write", "delete", "link"]),
    (
        "adam",
        true,
        &[
            "read",
            "discover",
            "search",
            "watch",
            "schema.read",
            "write",
            "delete",
            "link",
            "schema.write",
            "audit.read",
        ],
    ),
    ("dora", false, &["discover", "search"]),
    ("audrey", false, &["audit.read"]),
    ("ops", false, &["admin.read", "admin.write", "tenant.create"]),
    ("eve", false, &[]),
];

/// One call of an RPC family on tenant `t` as `who`; returns its status code.
async fn family_call(m: &Mesh, family: &str, who: &str, t: &str) -> Code {
    let ch = m.as_(who).await;
    let seed = format!("mm://{t}/dataset/seed");
    match family {
        "catalog read" => code(
            CatalogServiceClient::new(ch).get_entity(v1::GetEntityRequest { urn: seed, ..Default::default() }).await,
        ),
        "catalog write" => code(
            CatalogServiceClient::new(ch)
                .put_entity(v1::PutEntityRequest { urn: format!("mm://{t}/dataset/by-{who}"), ..Default::default() })
                .await,
        ),
        "lineage read" => code(
            LineageServiceClient::new(ch)
                .get_edges(v1::GetEdgesRequest { urns: vec![seed], ..Default::default() })
                .await,
        ),
        "lineage write" => code(
            LineageServiceClient::new(ch)
                .add_edges(v1::AddEdgesRequest {
                    tenant: t.into(),
                    edges: vec![v1::EdgeSpec {
                        from_urn: seed,
                        to_urn: format!("mm://{t}/dataset/seed2"),
                        kind: "derived_from".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .await,
        ),
        "search" => code(
            SearchServiceClient::new(ch)
                .search(v1::SearchRequest { query: "seed".into(), tenants: vec![t.into()], ..Default::default() })
                .await,
        ),
        "watch" => code(
            WatchServiceClient::new(ch)
                .watch(v1::WatchRequest { from_revision: Some(0), tenants: vec![t.into()], ..Default::default() })
                .await,
        ),
        "schema read" => code(
            SchemaServiceClient::new(ch)
                .list_types(v1::ListTypesRequest { tenant: t.into(), ..Default::default() })
                .await,
        ),
        "schema write" => code(
            SchemaServiceClient::new(ch)
                .register_schema(v1::RegisterSchemaRequest {
                    tenant: t.into(),
                    type_name: "Matrix".into(),
                    base_kind: "dataset".into(),
                    schema_json: r#"{"type":"object"}"#.into(),
                    ..Default::default()
                })
                .await,
        ),
        "audit" => code(
            metamesh_proto::v1::audit_service_client::AuditServiceClient::new(ch)
                .list_records(v1::ListRecordsRequest {
                    filter: Some(v1::AuditFilter { tenant: t.into(), ..Default::default() }),
                    ..Default::default()
                })
                .await,
        ),
        "admin" => code(AdminServiceClient::new(ch).status(v1::StatusRequest {}).await),
        other => unreachable!("{other}"),
    }
}

/// Every role × (own tenant, other tenant) × every RPC family gets the decision the role table
/// gives: OK when allowed; when refused, PERMISSION_DENIED if the caller may discover the
/// resource and NOT_FOUND otherwise (so a refusal never reveals existence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix() {
    let m = Mesh::start().await;
    setup(&m).await;
    for (who, t) in [("alice", "fraud"), ("bob", "growth")] {
        let mut c = CatalogServiceClient::new(m.as_(who).await);
        for name in ["seed", "seed2"] {
            c.put_entity(v1::PutEntityRequest { urn: format!("mm://{t}/dataset/{name}"), ..Default::default() })
                .await
                .unwrap();
        }
    }
    let families: &[(&str, &str)] = &[
        ("catalog read", "read"),
        ("catalog write", "write"),
        ("lineage read", "read"),
        ("lineage write", "link"),
        ("search", "search"),
        ("watch", "watch"),
        ("schema read", "schema.read"),
        ("schema write", "schema.write"),
        ("audit", "audit.read"),
        ("admin", "admin.read"),
    ];
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for (who, scoped, actions) in ROLE_TABLE {
        for (scope, tenant) in [("own", "fraud"), ("other", "growth")] {
            let holds = |action: &str| actions.contains(&action) && (!scoped || scope == "own");
            for (family, action) in families {
                let expected = if holds(action) {
                    Code::Ok
                } else if *action == "admin.read" || holds("discover") {
                    Code::PermissionDenied
                } else {
                    Code::NotFound
                };
                let got = family_call(&m, family, who, tenant).await;
                cells += 1;
                if got != expected {
                    mismatches.push(format!("{who} ({scope} tenant) {family}: expected {expected:?}, got {got:?}"));
                }
            }
        }
    }
    assert_eq!(cells, 140);
    assert!(mismatches.is_empty(), "{} of {cells} cells differ:\n{}", mismatches.len(), mismatches.join("\n"));
}
