//! MLMD writes in the state machine (`Command::Mlmd`): deterministic across replicas, all or
//! nothing, confined to their tenant, and mirrored into the catalog in the same transaction.

mod common;

use common::*;
use metamesh_core::{Command, CommandError, ErrorCode, Outcome, TenantId};
use metamesh_mlmd::pb;
use prost::Message;

fn mlmd(tenant: &str, rpc: &str, request: impl Message) -> Command {
    Command::Mlmd { tenant: TenantId::new(tenant).unwrap(), rpc: rpc.into(), request: request.encode_to_vec() }
}

fn artifact(type_id: i64, name: &str) -> pb::Artifact {
    pb::Artifact {
        type_id: Some(type_id),
        name: Some(name.into()),
        properties: [("rows".to_owned(), pb::Value { value: Some(pb::value::Value::IntValue(7)) })].into(),
        ..Default::default()
    }
}

fn dataset_type() -> pb::PutArtifactTypeRequest {
    pb::PutArtifactTypeRequest {
        artifact_type: Some(pb::ArtifactType {
            name: Some("Table".into()),
            properties: [("rows".to_owned(), pb::PropertyType::Int as i32)].into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The log both replicas apply: types, artifacts, an execution with events, a refused write.
fn log() -> Vec<Command> {
    let put = |names: &[&str]| pb::PutArtifactsRequest {
        artifacts: names.iter().map(|n| artifact(10, n)).collect(),
        ..Default::default()
    };
    vec![
        mlmd("acme", "PutArtifactType", dataset_type()),
        mlmd("acme", "PutArtifacts", put(&["a", "b"])),
        mlmd(
            "acme",
            "PutExecutionType",
            pb::PutExecutionTypeRequest {
                execution_type: Some(pb::ExecutionType { name: Some("Job".into()), ..Default::default() }),
                ..Default::default()
            },
        ),
        mlmd(
            "acme",
            "PutExecution",
            pb::PutExecutionRequest {
                execution: Some(pb::Execution { type_id: Some(11), ..Default::default() }),
                artifact_event_pairs: vec![pb::put_execution_request::ArtifactAndEvent {
                    artifact: Some(artifact(10, "c")),
                    event: Some(pb::Event { r#type: Some(pb::event::Type::Output as i32), ..Default::default() }),
                }],
                ..Default::default()
            },
        ),
        // Refused: "a" exists in its type.
        mlmd("acme", "PutArtifacts", put(&["d", "a"])),
    ]
}

#[tokio::test]
async fn replicas_applying_the_same_log_hold_the_same_mlmd_state() {
    let (mut one, mut two) = (TestStore::with_tenant().await, TestStore::with_tenant().await);
    for store in [&mut one, &mut two] {
        for command in log() {
            let _ = store.apply(command).await;
        }
    }
    let dump = one.export().await.unwrap();
    assert!(dump.lines().any(|l| l.starts_with("mlmd_node\t")), "the dump covers MLMD's tables");
    assert_eq!(dump, two.export().await.unwrap());
}

#[tokio::test]
async fn a_refused_mlmd_write_changes_nothing_and_says_why() {
    let mut s = TestStore::with_tenant().await;
    let commands = log();
    for c in &commands[..4] {
        s.ok(c.clone()).await;
    }
    let e = s.refused(commands[4].clone()).await;
    assert!(matches!(&e, CommandError::Mlmd { code: ErrorCode::AlreadyExists, .. }), "{e:?}");
    assert!(e.to_string().contains('a'), "{e}");
    // The next artifact gets the next id: the refused batch consumed none ("d" was rolled back).
    let Outcome::Mlmd { response } = s
        .ok(mlmd(
            "acme",
            "PutArtifacts",
            pb::PutArtifactsRequest { artifacts: vec![artifact(10, "d")], ..Default::default() },
        ))
        .await
    else {
        panic!("not an MLMD outcome")
    };
    assert_eq!(pb::PutArtifactsResponse::decode(response.as_slice()).unwrap().artifact_ids, [4]);
}

#[tokio::test]
async fn mlmd_writes_stay_in_their_tenant_and_are_mirrored() {
    let mut s = TestStore::with_tenant().await;
    // A tenant this shard does not own.
    let e = s.refused(mlmd("other", "PutArtifactType", dataset_type())).await;
    assert!(matches!(e, CommandError::UnknownTenant(_)), "{e:?}");
    for c in &log()[..4] {
        s.ok(c.clone()).await;
    }
    let dump = s.export().await.unwrap();
    for name in ["mlmd:Table:1", "mlmd:Table:2", "mlmd:Table:3", "mlmd:Job:1"] {
        assert!(dump.contains(&format!("\"{name}\"")), "{name} is not in the catalog:\n{dump}");
    }
    // The output event is a `produced` edge from the run to the artifact.
    let edge = dump.lines().find(|l| l.starts_with("edges\t")).expect("an edge");
    assert!(edge.contains("mm://acme/run/mlmd:Job:1") && edge.contains("mm://acme/dataset/mlmd:Table:3"), "{edge}");
    assert!(edge.contains("produced"), "{edge}");
}
