//! Cross-shard lineage through the router, on a real local mesh: two shard groups of three
//! replicas (s1: fraud, platform; s2: growth), real mTLS and Raft, the outbox delivering
//! remote references between them.
//!
//! The chain crosses three tenants and the groups twice:
//! `fraud/dataset/raw → growth/run/featurize → growth/dataset/features → platform/run/train
//! → platform/model/churn`.

use std::time::{Duration, Instant};

use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::transport::Channel;

const RAW: &str = "mm://fraud/dataset/raw";
const FEATURIZE: &str = "mm://growth/run/featurize";
const FEATURES: &str = "mm://growth/dataset/features";
const TRAIN: &str = "mm://platform/run/train";
const MODEL: &str = "mm://platform/model/churn";

/// `all` holds every role everywhere; `fraud-reader` reads fraud and may only discover the rest.
fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud", "platform"]), ("s2", &["growth"])], 3);
    spec.policy = std::sync::Arc::new(|dir: &std::path::Path| {
        let all = LocalMesh::principal("all");
        let reader = LocalMesh::principal("fraud-reader");
        let global = format!(
            "{}g, {reader}, role:discoverer, *\n",
            metamesh_testkit::policy::all_rights(std::slice::from_ref(&all))
        );
        metamesh_testkit::policy::write_policy(
            dir,
            &global,
            &[("fraud", &format!("g, {reader}, role:reader, fraud\n"))],
        );
    });
    spec
}

async fn put(ch: &Channel, urn: &str) {
    CatalogServiceClient::new(ch.clone())
        .put_entity(v1::PutEntityRequest {
            request_id: format!("put {urn}"),
            urn: urn.into(),
            status: "active".into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("put {urn}: {s}"));
}

async fn link(ch: &Channel, from: &str, kind: &str, to: &str) {
    LineageServiceClient::new(ch.clone())
        .add_edges(v1::AddEdgesRequest {
            request_id: format!("link {from} {to}"),
            tenant: String::new(),
            edges: vec![v1::EdgeSpec {
                from_urn: from.into(),
                to_urn: to.into(),
                kind: kind.into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap_or_else(|s| panic!("link {from} -> {to}: {s}"));
}

async fn expand(ch: &Channel, urn: &str, direction: v1::Direction, as_of: Option<i64>) -> v1::ExpandReply {
    LineageServiceClient::new(ch.clone())
        .expand(v1::ExpandRequest {
            urns: vec![urn.into()],
            direction: direction as i32,
            max_depth: 10,
            as_of: as_of.map(|t| v1::AsOf { point: Some(v1::as_of::Point::TimeMs(t)) }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("expand {urn}: {s}"))
        .into_inner()
}

fn urns(reply: &v1::ExpandReply) -> Vec<&str> {
    reply.nodes.iter().map(|n| n.urn.as_str()).collect()
}

fn edges(reply: &v1::ExpandReply) -> Vec<String> {
    let mut e: Vec<String> = reply.edges.iter().map(|e| format!("{} -> {}", e.from_urn, e.to_urn)).collect();
    e.sort();
    e
}

/// Downstream from `urn` until `want` appears (the outbox delivers asynchronously).
async fn downstream_until(ch: &Channel, urn: &str, want: &str) -> v1::ExpandReply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = expand(ch, urn, v1::Direction::Downstream, None).await;
        if urns(&reply).contains(&want) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{want} never appeared downstream of {urn}: {reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pipeline(ch: &Channel) -> i64 {
    for u in [RAW, FEATURIZE, FEATURES, TRAIN, MODEL] {
        put(ch, u).await;
    }
    link(ch, RAW, "consumed", FEATURIZE).await;
    link(ch, FEATURIZE, "produced", FEATURES).await;
    let before_train = metamesh_now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    link(ch, FEATURES, "consumed", TRAIN).await;
    link(ch, TRAIN, "produced", MODEL).await;
    before_train
}

fn metamesh_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

const CHAIN: [&str; 4] = [
    "mm://fraud/dataset/raw -> mm://growth/run/featurize",
    "mm://growth/dataset/features -> mm://platform/run/train",
    "mm://growth/run/featurize -> mm://growth/dataset/features",
    "mm://platform/run/train -> mm://platform/model/churn",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_across_three_tenants_and_two_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let all = mesh.router("all").await;
    let before_train = pipeline(&all).await;

    // Downstream needs the remote references the outbox delivers (fraud's raw data is used
    // by growth's run, an edge stored on s2).
    let down = downstream_until(&all, RAW, MODEL).await;
    assert_eq!(urns(&down), [RAW, FEATURIZE, FEATURES, TRAIN, MODEL], "{down:?}");
    assert_eq!(edges(&down), CHAIN);
    assert!(!down.partial, "{:?}", down.partial_reasons);
    assert!(down.nodes.iter().all(|n| !n.placeholder && n.status == "active"), "{down:?}");
    assert_eq!(down.nodes.iter().map(|n| n.depth).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);

    let up = expand(&all, MODEL, v1::Direction::Upstream, None).await;
    assert_eq!(edges(&up), CHAIN);
    assert!(!up.partial, "{:?}", up.partial_reasons);

    // As of a time before growth's features were used for training: no training run.
    let then = expand(&all, RAW, v1::Direction::Downstream, Some(before_train)).await;
    assert_eq!(urns(&then), [RAW, FEATURIZE, FEATURES], "{then:?}");

    // As of a revision per shard: s2 at its first revision (its tenant, no edges yet) and s1
    // now — the walk crosses into s2 and finds nothing there.
    let per_shard = |revisions: &[(&str, u64)]| {
        let all = all.clone();
        let revisions: std::collections::HashMap<String, u64> =
            revisions.iter().map(|(g, r)| (g.to_string(), *r)).collect();
        async move {
            LineageServiceClient::new(all)
                .expand(v1::ExpandRequest {
                    urns: vec![RAW.into()],
                    direction: v1::Direction::Downstream as i32,
                    max_depth: 10,
                    shard_revisions: revisions,
                    ..Default::default()
                })
                .await
        }
    };
    let early = per_shard(&[("s2", 1)]).await.unwrap().into_inner();
    assert_eq!(urns(&early), [RAW, FEATURIZE], "{early:?}");
    let unknown = per_shard(&[("s9", 1)]).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{unknown:?}");

    // A reader of fraud alone sees the rest of the chain as placeholders: URN, kind, tenant.
    let reader = mesh.router("fraud-reader").await;
    let seen = expand(&reader, RAW, v1::Direction::Downstream, None).await;
    assert_eq!(urns(&seen), [RAW, FEATURIZE, FEATURES, TRAIN, MODEL]);
    for e in &seen.edges {
        // An edge touching a node the reader may not read says nothing of who wrote it.
        assert!(e.created_by.is_empty(), "{e:?}");
    }
    assert!(down.edges.iter().all(|e| !e.created_by.is_empty()), "{down:?}");
    for n in &seen.nodes {
        assert_eq!(n.placeholder, n.tenant != "fraud", "{n:?}");
        if n.placeholder {
            assert!(n.status.is_empty() && n.type_name.is_empty(), "a placeholder carries details: {n:?}");
        }
    }

    // With s2 down the answer is partial, says which group is missing, and keeps what s1 knows.
    mesh.stop_group("s2").await;
    let cut = expand(&all, RAW, v1::Direction::Downstream, None).await;
    assert!(cut.partial);
    assert!(
        cut.partial_reasons.iter().any(|r| r.code == "SHARD_UNAVAILABLE" && r.shard == "s2"),
        "{:?}",
        cut.partial_reasons
    );
    assert_eq!(urns(&cut), [RAW, FEATURIZE]);
    mesh.start_group("s2").await.unwrap();
    mesh.shutdown().await;
}

async fn outbox_pending(mesh: &LocalMesh, group: &str) -> u64 {
    let mut total = 0;
    for id in 1..=3 {
        let Some(ch) = mesh.replica(group, id, mesh.client_tls("ops")).await else { continue };
        if let Ok(h) = AdminServiceClient::new(ch).health(v1::HealthRequest {}).await {
            total = total.max(h.into_inner().outbox_pending);
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_delivery_survives_the_target_down_and_leader_changes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let all = mesh.router("all").await;
    for u in [FEATURES, TRAIN] {
        put(&all, u).await;
    }
    // growth (s2) is down while platform (s1) records that its run used growth's features.
    mesh.stop_group("s2").await;
    link(&all, FEATURES, "consumed", TRAIN).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(outbox_pending(&mesh, "s1").await, 1, "the reference waits in s1's outbox");

    // A leader change on s1 (its replicas stop one after the other and come back), then s2
    // comes back: the new leader delivers.
    for id in 1..=3 {
        mesh.stop_node("s1", id).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        mesh.start_node("s1", id).unwrap();
    }
    mesh.start_group("s2").await.unwrap();
    let down = downstream_until(&all, FEATURES, TRAIN).await;
    assert_eq!(edges(&down), ["mm://growth/dataset/features -> mm://platform/run/train"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox_pending(&mesh, "s1").await != 0 {
        assert!(Instant::now() < deadline, "s1's outbox never emptied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A leader change on s2 too, then the same edge written again and removed and re-added:
    // s2 ends with exactly one live copy.
    mesh.stop_node("s2", 1).await;
    mesh.start_node("s2", 1).unwrap();
    link(&all, FEATURES, "consumed", TRAIN).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let reply = LineageServiceClient::new(all.clone())
            .get_edges(v1::GetEdgesRequest {
                urns: vec![FEATURES.into()],
                direction: v1::Direction::Downstream as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // s2 elects a leader again after its replica's restart.
        if !reply.partial || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The router merges both shards' copies; ask s2 alone to count its own.
    assert_eq!(reply.edges.len(), 1, "{reply:?}");
    let s2 = mesh.replica("s2", 2, mesh.client_tls("all")).await.expect("s2 replica 2 is up");
    let own = LineageServiceClient::new(s2)
        .get_edges(v1::GetEdgesRequest {
            urns: vec![FEATURES.into()],
            direction: v1::Direction::Downstream as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.edges.len(), 1, "one remote reference on s2, not one per delivery: {own:?}");
    mesh.shutdown().await;
}
