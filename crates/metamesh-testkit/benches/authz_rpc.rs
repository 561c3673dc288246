//! Authorization overhead per RPC: `GetEntity` latency through a node whose policy has 10,000
//! lines (100 tenant files of 100 grants), against the same node with a policy of a few lines.
//! Both go through the same layer; the difference is what the policy's size costs. Prints
//! figures; asserts nothing about speed.
//!
//! `cargo bench -p metamesh-testkit --bench authz_rpc` — `METAMESH_BENCH_SMOKE=1` for seconds.

use std::time::{Duration, Instant};

use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::api_node::{ApiNode, DOMAIN};
use metamesh_testkit::policy::{all_rights, write_policy};
use metamesh_tls::{MeshCa, Role};

/// The `p`-quantile in microseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    metamesh_testkit::bench::quantile_ms(sorted, p) * 1e3
}

async fn measure(lines: usize, calls: usize) -> serde_json::Value {
    let ca = MeshCa::generate(DOMAIN).unwrap();
    let alice = ca.spiffe_id(Role::Client, "alice");
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = Vec::new();
    let files = (lines / 100).max(1);
    for t in 0..files {
        let mut text = String::new();
        for j in 0..lines.min(100) {
            text.push_str(&format!("p, spiffe://{DOMAIN}/client/u{j}, t{t}, mm://t{t}/dataset/d{j}, read\n"));
        }
        tenants.push((format!("t{t}"), text));
    }
    let refs: Vec<(&str, &str)> = tenants.iter().map(|(t, s)| (t.as_str(), s.as_str())).collect();
    write_policy(&dir.path().join("policies"), &all_rights(&[alice]), &refs);
    let node = ApiNode::start_with(ca, dir).await;
    let mut client = CatalogServiceClient::new(node.alice().await);
    client.create_tenant(v1::CreateTenantRequest { name: "t0".into(), ..Default::default() }).await.unwrap();
    client.put_entity(v1::PutEntityRequest { urn: "mm://t0/dataset/d0".into(), ..Default::default() }).await.unwrap();
    let get = || v1::GetEntityRequest {
        urn: "mm://t0/dataset/d0".into(),
        consistency: Some(v1::ReadConsistency {
            mode: Some(v1::read_consistency::Mode::Follower(v1::read_consistency::FollowerRead::default())),
        }),
        ..Default::default()
    };
    for _ in 0..100 {
        client.get_entity(get()).await.unwrap();
    }
    let mut lat = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        client.get_entity(get()).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    let size = if lines == 0 { "the roles only".to_owned() } else { format!("+{lines} lines") };
    println!("GetEntity, policy {size:<16}  p50 {:>7.1} µs   p99 {:>7.1} µs", pct(&lat, 0.5), pct(&lat, 0.99));
    serde_json::json!({"policy_lines": lines, "calls": calls, "p50_us": pct(&lat, 0.5), "p99_us": pct(&lat, 0.99)})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::var("METAMESH_BENCH_SMOKE").is_ok();
    let calls = if smoke { 200 } else { 5000 };
    println!("authorization per RPC: one node, mTLS over loopback, local (follower) reads");
    let small = measure(0, calls).await;
    let large = measure(10_000, calls).await;
    metamesh_testkit::bench::save("authz_rpc", &serde_json::json!({"smoke": smoke, "small": small, "large": large}));
}
