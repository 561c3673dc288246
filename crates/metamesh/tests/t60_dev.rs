//! `metamesh dev`, the real binary: `--once` seeds a mesh and writes `DIR/dev.json` (router
//! address, tenants, two shard groups of three replicas, the CA, every principal with its
//! certificate and key); running it again on the same directory keeps the data and writes no
//! second version of anything; a long-running start serves the seeded pipeline through the
//! router, whole for the admin and with other teams' nodes as placeholders for a tenant's
//! reader, and stops cleanly on SIGTERM.

#[path = "common/child.rs"]
mod child;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::{run_to_end, ChildGuard};
use common::bin;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use serde_json::Value;
use tonic::transport::Channel;

const SIGNUPS: &str = "mm://growth/dataset/signups";
const BUILD: &str = "mm://fraud/run/build-features-2026-11-26";
const FEATURES: &str = "mm://fraud/dataset/features%2Fcard_velocity";
const TRAIN: &str = "mm://fraud/run/train-2026-11-26";
const MODEL: &str = "mm://fraud/model/card-fraud-xgb";
const DEPLOY: &str = "mm://platform/deployment/scoring-eu";
const CHAIN: [&str; 6] = [SIGNUPS, BUILD, FEATURES, TRAIN, MODEL, DEPLOY];
const EDGES: [(&str, &str, &str); 5] = [
    (SIGNUPS, "consumed", BUILD),
    (BUILD, "produced", FEATURES),
    (FEATURES, "consumed", TRAIN),
    (TRAIN, "produced", MODEL),
    (MODEL, "deployed", DEPLOY),
];
const TENANTS: [&str; 3] = ["fraud", "growth", "platform"];

/// Six replicas, a router and the seeding, started from nothing in a debug build.
const ONCE_TIMEOUT: Duration = Duration::from_secs(180);

fn dev_command(dir: &Path, once: bool) -> Command {
    let mut c = Command::new(bin());
    c.arg("dev").arg("--dir").arg(dir).env("METAMESH_LOG", "warn,openraft=error");
    if once {
        c.arg("--once");
    }
    c
}

/// `metamesh dev --dir DIR --once`, which must succeed.
async fn run_once(dir: &Path, what: &'static str) {
    let (dir, log) = (dir.to_owned(), dir.with_extension(format!("{what}.log")));
    let (status, output) =
        tokio::task::spawn_blocking(move || run_to_end(what, dev_command(&dir, true), &log, ONCE_TIMEOUT))
            .await
            .unwrap();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{what}: `metamesh dev --once` exited with {s}; output:\n{output}"),
        None => panic!("{what}: `metamesh dev --once` still running after {ONCE_TIMEOUT:?}; output:\n{output}"),
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
}

fn path_of(v: &Value, what: &str) -> PathBuf {
    PathBuf::from(v.as_str().unwrap_or_else(|| panic!("{what} is not a path: {v}")))
}

/// Checks the shape of dev.json against what `metamesh dev` promises.
fn check_handle(handle: &Value) {
    let grpc = handle["router"]["grpc"].as_str().unwrap_or_else(|| panic!("no router.grpc: {handle:#}"));
    grpc.parse::<std::net::SocketAddr>().unwrap_or_else(|e| panic!("router.grpc {grpc:?} is not an address: {e}"));

    let tenants: BTreeSet<&str> =
        handle["tenants"].as_array().expect("tenants").iter().map(|t| t.as_str().expect("tenant name")).collect();
    for t in TENANTS {
        assert!(tenants.contains(t), "tenant {t} missing: {tenants:?}");
    }

    let shards = handle["shards"].as_array().unwrap_or_else(|| panic!("no shards: {handle:#}"));
    assert_eq!(shards.len(), 2, "{shards:#?}");
    let mut owned = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for s in shards {
        let replicas = s["replicas"].as_array().unwrap_or_else(|| panic!("no replicas: {s:#}"));
        assert_eq!(replicas.len(), 3, "{s:#}");
        for r in replicas {
            let addr = r["grpc"].as_str().unwrap_or_else(|| panic!("replica without grpc: {r}"));
            addr.parse::<std::net::SocketAddr>().unwrap_or_else(|e| panic!("replica grpc {addr:?}: {e}"));
            assert!(addrs.insert(addr.to_owned()), "replica address {addr} repeated");
        }
        for t in s["tenants"].as_array().expect("shard tenants") {
            assert!(owned.insert(t.as_str().unwrap().to_owned()), "tenant {t} owned by two shards");
        }
    }
    assert_eq!(owned.iter().map(String::as_str).collect::<BTreeSet<_>>(), tenants, "shards' tenants");

    let ca = path_of(&handle["ca"], "ca");
    assert!(ca.is_file(), "ca {} missing", ca.display());

    let principals = handle["principals"].as_object().unwrap_or_else(|| panic!("no principals: {handle:#}"));
    let mut names = vec!["admin".to_owned(), "auditor".to_owned()];
    for t in TENANTS {
        names.push(format!("{t}-writer"));
        names.push(format!("{t}-reader"));
    }
    for name in &names {
        let p = principals.get(name).unwrap_or_else(|| panic!("principal {name} missing: {:?}", principals.keys()));
        for file in ["cert", "key"] {
            let path = path_of(&p[file], &format!("principals.{name}.{file}"));
            assert!(path.is_file(), "principals.{name}.{file}: {} missing", path.display());
        }
    }
}

fn tls_of(handle: &Value, who: &str) -> Arc<rustls::ClientConfig> {
    let p = &handle["principals"][who];
    metamesh_tls::Credentials::load(
        &path_of(&handle["ca"], "ca"),
        &path_of(&p["cert"], "cert"),
        &path_of(&p["key"], "key"),
    )
    .unwrap()
    .client_config()
    .unwrap()
}

fn router_addr(handle: &Value) -> std::net::SocketAddr {
    handle["router"]["grpc"].as_str().unwrap().parse().unwrap()
}

async fn expand(ch: &Channel) -> Result<v1::ExpandReply, tonic::Status> {
    LineageServiceClient::new(ch.clone())
        .expand(v1::ExpandRequest {
            urns: vec![DEPLOY.into()],
            direction: v1::Direction::Upstream as i32,
            max_depth: 10,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Connects to the router as `who` and waits until an upstream expansion of the deployment
/// answers; returns the channel and that first answer.
async fn wait_for_router(handle: &Value, who: &str, dev: &mut ChildGuard) -> (Channel, v1::ExpandReply) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = dev.exited() {
            panic!("metamesh dev exited with {status}; output:\n{}", dev.log_text());
        }
        let last = match metamesh_tls::connect(router_addr(handle), tls_of(handle, who), "127.0.0.1").await {
            Ok(ch) => match expand(&ch).await {
                Ok(reply) => return (ch, reply),
                Err(s) => format!("expand: {s}"),
            },
            Err(e) => format!("connect: {e}"),
        };
        assert!(Instant::now() < deadline, "the router never answered ({last}); output:\n{}", dev.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until a (re)started `metamesh dev` has written dev.json.
async fn wait_for_handle(path: &Path, dev: &mut ChildGuard) -> Value {
    let deadline = Instant::now() + ONCE_TIMEOUT;
    loop {
        if let Some(status) = dev.exited() {
            panic!("metamesh dev exited with {status}; output:\n{}", dev.log_text());
        }
        // Written in one `fs::write`, which may still be under way: parse until it is whole.
        if let Some(handle) = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
            return handle;
        }
        assert!(Instant::now() < deadline, "no {} after {ONCE_TIMEOUT:?}; output:\n{}", path.display(), dev.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn node<'a>(reply: &'a v1::ExpandReply, urn: &str) -> &'a v1::LineageNode {
    reply.nodes.iter().find(|n| n.urn == urn).unwrap_or_else(|| panic!("{urn} missing from {reply:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_once_writes_the_handle_and_a_restart_keeps_the_seeded_mesh() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mesh");
    let json = dir.join("dev.json");

    run_once(&dir, "first").await;
    let first = read_json(&json);
    check_handle(&first);

    // The same directory again: certificates, ports and data are reused, the seed writes
    // nothing new.
    run_once(&dir, "second").await;
    let second = read_json(&json);
    check_handle(&second);
    assert_eq!(first["router"], second["router"], "the router moved on restart");
    assert_eq!(first["shards"], second["shards"], "the replicas moved on restart");

    // A third start that keeps running: a fresh dev.json says it is seeded and ready.
    std::fs::remove_file(&json).unwrap();
    let mut dev = ChildGuard::spawn("metamesh dev", dev_command(&dir, false), &dir.with_extension("serve.log"));
    let handle = wait_for_handle(&json, &mut dev).await;
    check_handle(&handle);
    assert_eq!(handle["router"], first["router"]);

    let (admin, whole) = wait_for_router(&handle, "admin", &mut dev).await;
    let urns: Vec<&str> = whole.nodes.iter().map(|n| n.urn.as_str()).collect();
    assert_eq!(urns.len(), 6, "nodes: {urns:?}");
    assert_eq!(urns.iter().collect::<BTreeSet<_>>(), CHAIN.iter().collect::<BTreeSet<_>>(), "{whole:#?}");
    assert!(!whole.partial, "partial answer: {:?}", whole.partial_reasons);
    assert!(whole.remote_frontier.is_empty(), "{:?}", whole.remote_frontier);
    assert_eq!(node(&whole, DEPLOY).depth, 0);
    assert_eq!(node(&whole, SIGNUPS).depth, 5, "{whole:#?}");
    assert!(whole.nodes.iter().all(|n| !n.placeholder), "the admin sees everything: {whole:#?}");
    let edges: BTreeSet<(&str, &str, &str)> =
        whole.edges.iter().map(|e| (e.from_urn.as_str(), e.kind.as_str(), e.to_urn.as_str())).collect();
    assert_eq!(whole.edges.len(), 5, "{:#?}", whole.edges);
    assert_eq!(edges, EDGES.into_iter().collect::<BTreeSet<_>>());

    // Three seeding runs, one version of everything.
    let mut catalog = CatalogServiceClient::new(admin.clone());
    for urn in CHAIN {
        let entity = catalog
            .get_entity(v1::GetEntityRequest { urn: urn.into(), ..Default::default() })
            .await
            .unwrap_or_else(|s| panic!("get {urn}: {s}"))
            .into_inner()
            .entity
            .unwrap_or_else(|| panic!("get {urn}: no entity"));
        assert_eq!(entity.version, 1, "{urn} was written again by a later seeding run: {entity:#?}");
    }

    // The MLMD run, seeded once, through the MLMD API as fraud's writer.
    {
        use metamesh_proto::ml_metadata as pb;
        let writer =
            metamesh_tls::connect(router_addr(&handle), tls_of(&handle, "fraud-writer"), "127.0.0.1").await.unwrap();
        let mut mlmd = pb::metadata_store_service_client::MetadataStoreServiceClient::new(writer);
        let artifacts = mlmd.get_artifacts(pb::GetArtifactsRequest::default()).await.unwrap().into_inner().artifacts;
        let mut uris: Vec<&str> = artifacts.iter().map(|a| a.uri()).collect();
        uris.sort();
        assert_eq!(uris, ["s3://fraud/tfx/examples/span-42", "s3://fraud/tfx/models/7"], "{artifacts:#?}");
        let executions = mlmd.get_executions(pb::GetExecutionsRequest::default()).await.unwrap().into_inner();
        assert_eq!(executions.executions.len(), 1, "{executions:#?}");
    }

    // fraud's reader reads fraud, and only discovers growth's and platform's nodes.
    let reader =
        metamesh_tls::connect(router_addr(&handle), tls_of(&handle, "fraud-reader"), "127.0.0.1").await.unwrap();
    let seen = expand(&reader).await.unwrap();
    assert_eq!(seen.nodes.len(), 6, "{seen:#?}");
    for n in &seen.nodes {
        let foreign = n.tenant != "fraud";
        assert_eq!(n.placeholder, foreign, "placeholder of {} ({}) for fraud-reader: {n:#?}", n.urn, n.tenant);
        if foreign {
            assert!(n.type_name.is_empty() && n.status.is_empty(), "a placeholder shows details: {n:#?}");
        }
    }
    assert!(node(&seen, SIGNUPS).placeholder && node(&seen, DEPLOY).placeholder);
    assert_eq!(node(&seen, TRAIN).status, "COMPLETED", "{seen:#?}");

    drop((admin, reader, catalog));
    let status = tokio::task::spawn_blocking(move || {
        let status = dev.terminate(Duration::from_secs(30));
        (status, dev.log_text())
    })
    .await
    .unwrap();
    match status {
        (Some(s), _) if s.success() => {}
        (Some(s), log) => panic!("metamesh dev exited with {s} on SIGTERM; output:\n{log}"),
        (None, log) => panic!("metamesh dev did not stop within 30 s of SIGTERM; output:\n{log}"),
    }
}
