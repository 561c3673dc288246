//! MLMD (`ml_metadata.MetadataStoreService`) on a real local mesh, through the router and on
//! replicas directly: the home tenant, isolation between tenants (on one shard group and on two),
//! the policy and the audit log, a refused write that changes nothing, and writes that survive
//! the loss of the leader. (The differential suite against Google's engine, with the real
//! Python client, is `crates/metamesh/tests/t70_mlmd_diff.rs`.)

use std::time::{Duration, Instant};

use metamesh_proto::ml_metadata as pb;
use metamesh_proto::ml_metadata::metadata_store_service_client::MetadataStoreServiceClient;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::transport::Channel;
use tonic::Code;

type Client = MetadataStoreServiceClient<Channel>;

/// s1 holds fraud and platform, s2 growth. `<tenant>-writer` writes its tenant;
/// `fraud-reader` reads fraud; `all` holds every role everywhere (several home tenants).
fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud", "platform"]), ("s2", &["growth"])], 3);
    spec.policy = std::sync::Arc::new(|dir: &std::path::Path| {
        let all = LocalMesh::principal("all");
        let tenant = |t: &str| {
            format!(
                "g, {}, role:writer, {t}\ng, {}, role:reader, {t}\n",
                LocalMesh::principal(&format!("{t}-writer")),
                LocalMesh::principal(&format!("{t}-reader"))
            )
        };
        let (fraud, platform, growth) = (tenant("fraud"), tenant("platform"), tenant("growth"));
        metamesh_testkit::policy::write_policy(
            dir,
            &metamesh_testkit::policy::all_rights(std::slice::from_ref(&all)),
            &[("fraud", &fraud), ("platform", &platform), ("growth", &growth)],
        );
    });
    spec
}

fn model_type() -> pb::ArtifactType {
    pb::ArtifactType {
        name: Some("Model".into()),
        properties: [("layers".to_owned(), pb::PropertyType::Int as i32)].into(),
        ..Default::default()
    }
}

fn int(v: i64) -> pb::Value {
    pb::Value { value: Some(pb::value::Value::IntValue(v)) }
}

/// Puts type `Model` and one artifact named `name`; returns (type id, artifact id).
async fn put_model(c: &mut Client, name: &str) -> Result<(i64, i64), tonic::Status> {
    let type_id = c
        .put_artifact_type(pb::PutArtifactTypeRequest { artifact_type: Some(model_type()), ..Default::default() })
        .await?
        .into_inner()
        .type_id
        .expect("type id");
    let artifact = pb::Artifact {
        type_id: Some(type_id),
        name: Some(name.into()),
        uri: Some(format!("s3://models/{name}")),
        properties: [("layers".to_owned(), int(3))].into(),
        ..Default::default()
    };
    let ids = c
        .put_artifacts(pb::PutArtifactsRequest { artifacts: vec![artifact], ..Default::default() })
        .await?
        .into_inner()
        .artifact_ids;
    Ok((type_id, ids[0]))
}

async fn names(c: &mut Client) -> Vec<String> {
    let mut out: Vec<String> = c
        .get_artifacts(pb::GetArtifactsRequest::default())
        .await
        .expect("get_artifacts")
        .into_inner()
        .artifacts
        .into_iter()
        .map(|a| a.name.unwrap_or_default())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_the_home_tenant_decides() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let mut fraud = Client::new(mesh.router("fraud-writer").await);
    let mut platform = Client::new(mesh.router("platform-writer").await);
    let mut growth = Client::new(mesh.router("growth-writer").await);

    // Each tenant's ids are its own, whatever the others hold (fraud and platform share s1):
    // as in a fresh MLMD store, the first type is 10 (after MLMD's nine built-in types) and the
    // first artifact 1.
    assert_eq!(put_model(&mut fraud, "fraud-model").await.unwrap(), (10, 1));
    assert_eq!(put_model(&mut platform, "platform-model").await.unwrap(), (10, 1));
    assert_eq!(put_model(&mut growth, "growth-model").await.unwrap(), (10, 1));
    let (_, second) = put_model(&mut fraud, "fraud-model-2").await.unwrap();
    assert_eq!(second, 2);

    assert_eq!(names(&mut fraud).await, ["fraud-model", "fraud-model-2"]);
    assert_eq!(names(&mut platform).await, ["platform-model"]);
    assert_eq!(names(&mut growth).await, ["growth-model"]);
    // By id, too: platform's artifact 2 does not exist.
    let by_id = platform
        .get_artifacts_by_id(pb::GetArtifactsByIdRequest { artifact_ids: vec![1, 2], ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .artifacts;
    assert_eq!(by_id.iter().map(|a| a.name().to_owned()).collect::<Vec<_>>(), ["platform-model"]);

    // A principal that may write in several tenants must say which.
    let mut all = Client::new(mesh.router("all").await);
    let ambiguous = all.get_artifacts(pb::GetArtifactsRequest::default()).await.unwrap_err();
    assert_eq!(ambiguous.code(), Code::FailedPrecondition, "{ambiguous:?}");
    assert!(ambiguous.message().contains("x-metamesh-tenant"), "{ambiguous:?}");
    let mut chosen = tonic::Request::new(pb::GetArtifactsRequest::default());
    chosen.metadata_mut().insert("x-metamesh-tenant", "growth".parse().unwrap());
    let seen = all.get_artifacts(chosen).await.unwrap().into_inner().artifacts;
    assert_eq!(seen.iter().map(|a| a.name().to_owned()).collect::<Vec<_>>(), ["growth-model"]);

    // A reader reads and may not write; the refused write changes nothing.
    let mut reader = Client::new(mesh.router("fraud-reader").await);
    assert_eq!(names(&mut reader).await, ["fraud-model", "fraud-model-2"]);
    let refused = put_model(&mut reader, "sneaky").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(names(&mut fraud).await, ["fraud-model", "fraud-model-2"]);

    // Team-local use: a replica of s1 answers for its tenant the same.
    let replica = mesh.replica("s1", 2, mesh.client_tls("fraud-writer")).await.expect("s1-2 up");
    assert_eq!(names(&mut Client::new(replica)).await, ["fraud-model", "fraud-model-2"]);
    // A replica of another group does not own fraud: NOT_FOUND, for reads and writes alike,
    // never an empty store.
    let elsewhere = mesh.replica("s2", 1, mesh.client_tls("fraud-writer")).await.expect("s2-1 up");
    let mut elsewhere = Client::new(elsewhere);
    let read = elsewhere.get_artifacts(pb::GetArtifactsRequest::default()).await.unwrap_err();
    assert_eq!(read.code(), Code::NotFound, "{read:?}");
    let write = put_model(&mut elsewhere, "lost").await.unwrap_err();
    assert_eq!(write.code(), Code::NotFound, "{write:?}");
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_change_nothing_and_writes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let mut fraud = Client::new(mesh.router("fraud-writer").await);
    let (type_id, _) = put_model(&mut fraud, "m1").await.unwrap();

    // A batch whose second artifact has an undeclared property: INVALID_ARGUMENT, and the
    // first artifact is not written either.
    let good = pb::Artifact { type_id: Some(type_id), name: Some("ok".into()), ..Default::default() };
    let bad = pb::Artifact {
        type_id: Some(type_id),
        name: Some("bad".into()),
        properties: [("depth".to_owned(), int(1))].into(),
        ..Default::default()
    };
    let refused = fraud
        .put_artifacts(pb::PutArtifactsRequest { artifacts: vec![good, bad], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("depth"), "{refused:?}");
    // A duplicate name in the type: ALREADY_EXISTS.
    let dup = pb::Artifact { type_id: Some(type_id), name: Some("m1".into()), ..Default::default() };
    let exists =
        fraud.put_artifacts(pb::PutArtifactsRequest { artifacts: vec![dup], ..Default::default() }).await.unwrap_err();
    assert_eq!(exists.code(), Code::AlreadyExists, "{exists:?}");
    // An unknown type: NOT_FOUND.
    let orphan = pb::Artifact { type_id: Some(99), ..Default::default() };
    let missing = fraud
        .put_artifacts(pb::PutArtifactsRequest { artifacts: vec![orphan], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert_eq!(names(&mut fraud).await, ["m1"]);
    // The next artifact still gets id 2: refused writes consumed no id.
    let next = fraud
        .put_artifacts(pb::PutArtifactsRequest {
            artifacts: vec![pb::Artifact { type_id: Some(type_id), name: Some("m2".into()), ..Default::default() }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .artifact_ids;
    assert_eq!(next, [2]);

    // Every write is in fraud's audit log under the writer's principal, naming the RPC.
    let s1 = mesh.replica("s1", 1, mesh.client_tls("all")).await.expect("s1 up");
    let records = AuditServiceClient::new(s1)
        .list_records(v1::ListRecordsRequest {
            filter: Some(v1::AuditFilter {
                principal: LocalMesh::principal("fraud-writer"),
                tenant: "fraud".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    let resources: Vec<&str> = records.iter().map(|r| r.resource.as_str()).collect();
    assert!(resources.contains(&"mm://fraud#mlmd=PutArtifactType"), "{resources:?}");
    assert_eq!(resources.iter().filter(|r| **r == "mm://fraud#mlmd=PutArtifacts").count(), 2, "{resources:?}");
    mesh.shutdown().await;
}

async fn leader_of(mesh: &LocalMesh, group: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for id in 1..=3 {
            if let Some(ch) = mesh.replica(group, id, mesh.client_tls("all")).await {
                if let Ok(status) = AdminServiceClient::new(ch).status(v1::StatusRequest {}).await {
                    if let Some(leader) = status.into_inner().leader_id {
                        return leader;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader in {group}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_leader_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let mut fraud = Client::new(mesh.router("fraud-writer").await);
    let (type_id, _) = put_model(&mut fraud, "before").await.unwrap();

    let leader = leader_of(&mesh, "s1").await;
    mesh.stop_node("s1", leader).await;
    // The router moves on to the survivors; the write waits for the new leader (retried
    // inside with the same request id) rather than failing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match fraud
            .put_artifacts(pb::PutArtifactsRequest {
                artifacts: vec![pb::Artifact {
                    type_id: Some(type_id),
                    name: Some("after".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
        {
            Ok(r) => break r.into_inner().artifact_ids,
            Err(s) if s.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("write after the leader stopped: {s:?}"),
        }
    };
    assert_eq!(after, [2]);
    assert_eq!(names(&mut fraud).await, ["after", "before"]);
    // The old leader comes back and catches up: it answers the same.
    mesh.start_node("s1", leader).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(ch) = mesh.replica("s1", leader, mesh.client_tls("fraud-writer")).await {
            if let Ok(r) = Client::new(ch).get_artifacts(pb::GetArtifactsRequest::default()).await {
                if r.into_inner().artifacts.len() == 2 {
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "replica {leader} did not catch up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlmd_nodes_appear_in_the_catalog_and_lineage() {
    use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
    use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let mut fraud = Client::new(mesh.router("fraud-writer").await);
    let types = fraud
        .put_types(pb::PutTypesRequest {
            artifact_types: vec![
                pb::ArtifactType {
                    name: Some("Examples".into()),
                    base_type: Some(pb::artifact_type::SystemDefinedBaseType::Dataset as i32),
                    ..Default::default()
                },
                // Base type MODEL: a model in the catalog (an artifact without one is a dataset).
                pb::ArtifactType {
                    base_type: Some(pb::artifact_type::SystemDefinedBaseType::Model as i32),
                    ..model_type()
                },
            ],
            execution_types: vec![pb::ExecutionType { name: Some("Trainer".into()), ..Default::default() }],
            context_types: vec![pb::ContextType { name: Some("Pipeline".into()), ..Default::default() }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (examples_t, model_t) = (types.artifact_type_ids[0], types.artifact_type_ids[1]);
    let event = |t: pb::event::Type| pb::Event { r#type: Some(t as i32), ..Default::default() };
    let put = fraud
        .put_execution(pb::PutExecutionRequest {
            execution: Some(pb::Execution { type_id: Some(types.execution_type_ids[0]), ..Default::default() }),
            artifact_event_pairs: vec![
                pb::put_execution_request::ArtifactAndEvent {
                    artifact: Some(pb::Artifact {
                        type_id: Some(examples_t),
                        uri: Some("s3://data/train".into()),
                        ..Default::default()
                    }),
                    event: Some(event(pb::event::Type::Input)),
                },
                pb::put_execution_request::ArtifactAndEvent {
                    artifact: Some(pb::Artifact {
                        type_id: Some(model_t),
                        name: Some("churn".into()),
                        properties: [("layers".to_owned(), int(4))].into(),
                        ..Default::default()
                    }),
                    event: Some(event(pb::event::Type::Output)),
                },
            ],
            contexts: vec![pb::Context {
                type_id: Some(types.context_type_ids[0]),
                name: Some("nightly".into()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.artifact_ids, [1, 2]);

    let all = mesh.router("all").await;
    let model = CatalogServiceClient::new(all.clone())
        .get_entity(v1::GetEntityRequest { urn: "mm://fraud/model/mlmd:Model:2".into(), ..Default::default() })
        .await
        .expect("the MLMD model in the catalog")
        .into_inner()
        .entity
        .expect("entity");
    let properties: serde_json::Value = serde_json::from_str(&model.properties_json).unwrap();
    assert_eq!(properties["mlmd"]["name"], "churn", "{properties}");
    assert_eq!(properties["mlmd"]["properties"]["layers"], 4, "{properties}");
    assert_eq!(model.description, "churn");

    // Lineage from the model upstream: the trainer run and the examples it read.
    let graph = LineageServiceClient::new(all)
        .expand(v1::ExpandRequest {
            urns: vec![model.urn.clone()],
            direction: v1::Direction::Upstream as i32,
            max_depth: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds: Vec<String> = graph.nodes.iter().map(|n| format!("{}:{}", n.kind, n.name)).collect();
    kinds.sort();
    assert_eq!(kinds, ["dataset:mlmd:Examples:1", "model:mlmd:Model:2", "run:mlmd:Trainer:1"], "{graph:?}");
    assert_eq!(graph.edges.len(), 2, "{graph:?}");
    mesh.shutdown().await;
}
