//! `metamesh dev --dir DIR`: the whole mesh on this machine, in one process.
//!
//! Two shard groups of three replicas each (`s1`: fraud and platform, `s2`: growth) and a
//! router, with a generated CA and certificates, signed audit checkpoints, the repository's
//! example `policies/` (copied into DIR, where they can be edited live), and a seeded ML pipeline
//! that crosses tenants and groups: growth's raw signups → fraud's feature run → features →
//! training run → model → platform's deployment. Restarting with the same DIR keeps
//! everything. When ready it writes `DIR/dev.json`, the handle tests and tools read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use metamesh_proto::v1;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use serde_json::json;
use tonic::transport::Channel;

#[derive(Args)]
pub struct DevArgs {
    /// Where everything lives; created if missing, reused if present.
    #[arg(long, default_value = "target/metamesh-dev")]
    dir: PathBuf,
    /// Write dev.json and stop (for scripts that only need the mesh seeded).
    #[arg(long)]
    once: bool,
}

/// Tenants of the dev mesh, by shard group.
const GROUPS: &[(&str, &[&str])] = &[("s1", &["fraud", "platform"]), ("s2", &["growth"])];

/// The repository's policies, compiled in so that `metamesh dev` runs from anywhere.
const POLICY_FILES: &[(&str, &str)] = &[
    ("model.conf", include_str!("../../../policies/model.conf")),
    ("global.csv", include_str!("../../../policies/global.csv")),
    ("tenants/fraud.csv", include_str!("../../../policies/tenants/fraud.csv")),
    ("tenants/growth.csv", include_str!("../../../policies/tenants/growth.csv")),
    ("tenants/platform.csv", include_str!("../../../policies/tenants/platform.csv")),
];

fn write_policies(dir: &Path) {
    // Policies a developer changed in DIR are kept.
    if dir.join("model.conf").exists() {
        return;
    }
    for (name, text) in POLICY_FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
}

/// The people of the dev mesh and their roles (as the example policies grant them).
fn principals() -> Vec<(String, &'static str, Vec<&'static str>)> {
    let mut out = vec![
        ("admin".to_owned(), "*", vec!["admin", "mesh-admin"]),
        ("auditor".to_owned(), "*", vec!["compliance-auditor"]),
    ];
    for (_, tenants) in GROUPS {
        for t in *tenants {
            out.push((format!("{t}-writer"), t, vec!["writer", "discoverer"]));
            out.push((format!("{t}-reader"), t, vec!["reader", "discoverer"]));
        }
    }
    out
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let mut spec = MeshSpec::new(GROUPS, 3);
    spec.clients = principals().into_iter().map(|(n, _, _)| n).collect();
    spec.checkpoint_every_ms = Some(10_000);
    spec.policy = Arc::new(write_policies);
    // OpenLineage events whose job namespace names no tenant go to the platform team.
    spec.openlineage_default_tenant = Some("platform".into());
    println!("metamesh dev: starting 2 shard groups x 3 replicas and a router in {}", args.dir.display());
    let mesh = LocalMesh::start(&args.dir, spec).await.context("starting the mesh")?;
    let admin = mesh.router("admin").await;
    seed(&admin).await.context("seeding the demo pipeline")?;
    seed_mlmd(&mesh.router("fraud-writer").await).await.context("seeding the MLMD pipeline run")?;
    let handle = dev_json(&mesh);
    let path = mesh.dir.join("dev.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&handle)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let certs = mesh.dir.join("certs");
    println!("\nready. handle: {}", path.display());
    println!(
        "  router (gRPC, mTLS): {}   (also MLMD's ml_metadata.MetadataStoreService: docs/mlmd.md)",
        mesh.layout.router_grpc
    );
    println!(
        "  router (HTTPS: OpenLineage POST /api/v1/lineage, Marquez API GET /api/v1/...): https://{}   (docs/openlineage.md)",
        mesh.layout.router_http
    );
    println!(
        "  web UI: https://{}/   (sign in with an API key from dev.json's api_keys, or a client certificate: docs/web-ui.md)",
        mesh.layout.router_http
    );
    for (g, tenants) in GROUPS {
        let addrs: Vec<String> =
            mesh.layout.nodes.iter().filter(|n| n.group == *g).map(|n| n.client.to_string()).collect();
        println!("  shard group {g} ({}): {}", tenants.join(", "), addrs.join(", "));
    }
    println!("  CA: {}   certificates: {}", certs.join("ca.pem").display(), certs.display());
    println!("  policies (reloaded on change): {}", mesh.dir.join("policies").display());
    println!("\ntry:");
    println!(
        "  cargo run -p meshctl -- --addr {} --ca {} --cert {} --key {} lineage mm://platform/deployment/scoring-eu --direction upstream --depth 10",
        mesh.layout.router_grpc,
        certs.join("ca.pem").display(),
        certs.join("admin.pem").display(),
        certs.join("admin.key").display()
    );
    if args.once {
        mesh.shutdown().await;
        return Ok(());
    }
    println!("\nCtrl-C stops the mesh (the data stays in {}).", mesh.dir.display());
    crate::node_cmd::shutdown_signal().await;
    mesh.shutdown().await;
    Ok(())
}

fn dev_json(mesh: &LocalMesh) -> serde_json::Value {
    let certs = mesh.dir.join("certs");
    let shards: Vec<serde_json::Value> = GROUPS
        .iter()
        .map(|(g, tenants)| {
            let replicas: Vec<serde_json::Value> = mesh
                .layout
                .nodes
                .iter()
                .filter(|n| n.group == *g)
                .map(|n| json!({"id": n.id, "grpc": n.client.to_string()}))
                .collect();
            json!({"id": g, "tenants": tenants, "replicas": replicas})
        })
        .collect();
    let mut people = serde_json::Map::new();
    let mut keys = serde_json::Map::new();
    for (name, tenant, roles) in principals() {
        keys.insert(
            name.clone(),
            json!({
                "key": mesh.api_key(&name).unwrap_or_default(),
                "principal": LocalMesh::principal(&name),
                "tenant": tenant,
                "roles": roles,
            }),
        );
        people.insert(
            name.clone(),
            json!({
                "principal": LocalMesh::principal(&name),
                "cert": certs.join(format!("{name}.pem")),
                "key": certs.join(format!("{name}.key")),
                "tenant": tenant,
                "roles": roles,
            }),
        );
    }
    let tenants: Vec<&str> = GROUPS.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    json!({
        "router": {"grpc": mesh.layout.router_grpc.to_string(), "http": format!("https://{}", mesh.layout.router_http)},
        "tenants": tenants,
        "shards": shards,
        "ca": certs.join("ca.pem"),
        "mesh_map": mesh.dir.join("mesh.toml"),
        "policies": mesh.dir.join("policies"),
        "principals": people,
        // Bearer API keys of the router's HTTPS API, standing for the principals of the same name.
        "api_keys": keys,
    })
}

async fn put(
    ch: &Channel,
    urn: &str,
    status: &str,
    description: &str,
    properties: serde_json::Value,
) -> anyhow::Result<()> {
    v1::catalog_service_client::CatalogServiceClient::new(ch.clone())
        .put_entity(v1::PutEntityRequest {
            request_id: format!("dev-seed:{urn}"),
            urn: urn.into(),
            status: status.into(),
            description: description.into(),
            properties_json: properties.to_string(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("put {urn}"))?;
    Ok(())
}

/// The demo pipeline, written through the router with request ids: a restart writes nothing.
/// A TFX-style run through the MLMD API, as fraud's writer (home tenant `fraud`): examples in,
/// a model out, in a pipeline context. Written once: a restart finds the context and stops.
async fn seed_mlmd(fraud: &Channel) -> anyhow::Result<()> {
    use metamesh_proto::ml_metadata as pb;
    let mut c = pb::metadata_store_service_client::MetadataStoreServiceClient::new(fraud.clone());
    let found = c
        .get_context_by_type_and_name(pb::GetContextByTypeAndNameRequest {
            type_name: Some("Pipeline".into()),
            context_name: Some("card-fraud-tfx".into()),
            ..Default::default()
        })
        .await?
        .into_inner();
    if found.context.is_some() {
        return Ok(());
    }
    let int = pb::PropertyType::Int as i32;
    let types = c
        .put_types(pb::PutTypesRequest {
            artifact_types: vec![
                pb::ArtifactType {
                    name: Some("Examples".into()),
                    properties: [("span".to_owned(), int)].into(),
                    base_type: Some(pb::artifact_type::SystemDefinedBaseType::Dataset as i32),
                    ..Default::default()
                },
                pb::ArtifactType {
                    name: Some("Model".into()),
                    base_type: Some(pb::artifact_type::SystemDefinedBaseType::Model as i32),
                    ..Default::default()
                },
            ],
            execution_types: vec![pb::ExecutionType { name: Some("Trainer".into()), ..Default::default() }],
            context_types: vec![pb::ContextType { name: Some("Pipeline".into()), ..Default::default() }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let pair = |type_id: i64, uri: &str, event: pb::event::Type, span: Option<i64>| {
        pb::put_execution_request::ArtifactAndEvent {
            artifact: Some(pb::Artifact {
                type_id: Some(type_id),
                uri: Some(uri.into()),
                properties: span
                    .map(|s| [("span".to_owned(), pb::Value { value: Some(pb::value::Value::IntValue(s)) })].into())
                    .unwrap_or_default(),
                state: Some(pb::artifact::State::Live as i32),
                ..Default::default()
            }),
            event: Some(pb::Event { r#type: Some(event as i32), ..Default::default() }),
        }
    };
    c.put_execution(pb::PutExecutionRequest {
        execution: Some(pb::Execution {
            type_id: Some(types.execution_type_ids[0]),
            name: Some("trainer-2026-11-26".into()),
            last_known_state: Some(pb::execution::State::Complete as i32),
            ..Default::default()
        }),
        artifact_event_pairs: vec![
            pair(types.artifact_type_ids[0], "s3://fraud/tfx/examples/span-42", pb::event::Type::Input, Some(42)),
            pair(types.artifact_type_ids[1], "s3://fraud/tfx/models/7", pb::event::Type::Output, None),
        ],
        contexts: vec![pb::Context {
            type_id: Some(types.context_type_ids[0]),
            name: Some("card-fraud-tfx".into()),
            ..Default::default()
        }],
        ..Default::default()
    })
    .await?;
    Ok(())
}

async fn seed(admin: &Channel) -> anyhow::Result<()> {
    const SIGNUPS: &str = "mm://growth/dataset/signups";
    const BUILD: &str = "mm://fraud/run/build-features-2026-11-26";
    const FEATURES: &str = "mm://fraud/dataset/features%2Fcard_velocity";
    const TRAIN: &str = "mm://fraud/run/train-2026-11-26";
    const MODEL: &str = "mm://fraud/model/card-fraud-xgb";
    const DEPLOY: &str = "mm://platform/deployment/scoring-eu";
    put(admin, SIGNUPS, "", "Daily signups exported from the product database.", json!({"rows": 1_200_000})).await?;
    put(admin, BUILD, "COMPLETED", "Nightly Spark job joining transactions with signups.", json!({})).await?;
    put(admin, FEATURES, "", "Card velocity features per card and hour.", json!({"rows": 98_000_000})).await?;
    put(admin, TRAIN, "COMPLETED", "XGBoost training run.", json!({"gpu": false})).await?;
    put(admin, MODEL, "", "Card-fraud classifier.", json!({"auc": 0.947, "framework": "xgboost"})).await?;
    put(admin, DEPLOY, "serving", "EU scoring service.", json!({"replicas": 6, "region": "eu-west-1"})).await?;
    let mut lineage = v1::lineage_service_client::LineageServiceClient::new(admin.clone());
    for (from, kind, to) in [
        (SIGNUPS, "consumed", BUILD),
        (BUILD, "produced", FEATURES),
        (FEATURES, "consumed", TRAIN),
        (TRAIN, "produced", MODEL),
        (MODEL, "deployed", DEPLOY),
    ] {
        lineage
            .add_edges(v1::AddEdgesRequest {
                request_id: format!("dev-seed:{from}->{to}"),
                tenant: String::new(),
                edges: vec![v1::EdgeSpec {
                    from_urn: from.into(),
                    to_urn: to.into(),
                    kind: kind.into(),
                    ..Default::default()
                }],
            })
            .await
            .with_context(|| format!("link {from} -> {to}"))?;
    }
    Ok(())
}
