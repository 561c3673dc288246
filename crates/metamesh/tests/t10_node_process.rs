//! `metamesh certs` and `metamesh node` as real processes.

mod common;

use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_processes_serve_over_mutual_tls() {
    let group = ProcessGroup::start(3);
    for i in 0..3 {
        group.wait_serving(i).await;
    }
    // The group formed: node 1 bootstrapped it and a leader was elected.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !group.nodes.iter().any(|n| n.log().contains("bootstrapped a new shard group")) {
        assert!(std::time::Instant::now() < deadline, "no node bootstrapped the group");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A client without a certificate is refused at the handshake.
    let roots = metamesh_tls::config::load_roots(&group.certs_dir().join("ca.pem")).unwrap();
    let anonymous = metamesh_tls::config::anonymous_client_config(roots).unwrap();
    let refused = match metamesh_tls::connect(group.nodes[0].client, anonymous, "127.0.0.1").await {
        Err(_) => true,
        Ok(ch) => tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
}

#[test]
fn a_bad_config_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[node]\nid = 1\nshard_group = \"s1\"\ndata_dir = \"d\"\n[raft]\nheartbeat_ms = \"fast\"\n",
    )
    .unwrap();
    let out = Command::new(bin()).arg("node").arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("raft.heartbeat_ms"), "{stderr}");

    let out = Command::new(bin())
        .arg("node")
        .arg("--config")
        .arg(&config)
        .env("METAMESH_RAFT__HEARTBEAT_MS", "100")
        .env("METAMESH_LISTEN__CLIENT", "not-an-address")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen.client") && stderr.contains("METAMESH_LISTEN__CLIENT"), "{stderr}");
}

#[test]
fn certs_reuses_its_ca_and_refuses_an_empty_request() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &["--node", "node-1"]);
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    certs(dir.path(), &["--client", "bob"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(), ca, "the CA was replaced");
    assert!(dir.path().join("bob.pem").exists() && dir.path().join("node-1.key").exists());
    let out = Command::new(bin()).arg("certs").arg("--dir").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to issue"));
}
