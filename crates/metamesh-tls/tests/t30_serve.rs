//! tonic served through `incoming`: who gets in, who is refused, and that refusals neither stop
//! the server nor hold up other peers. Real TCP on 127.0.0.1, real TLS, real gRPC.

mod common;

use std::time::Duration;

use common::{check, creds, mesh_ca, HealthServer, DOMAIN};
use metamesh_tls::config::{anonymous_client_config, roots_from_pem};
use metamesh_tls::{connect, Credentials, MeshCa, PeerPolicy, Role, CLIENT_API_ALPN, INTERNAL_ALPN};
use tokio::io::AsyncWriteExt;
use tonic_health::pb::health_check_response::ServingStatus;

/// A refusal must be prompt: the server closes the connection, it does not leave the peer hanging.
#[track_caller]
fn assert_refused(result: &anyhow::Result<ServingStatus>) {
    match result {
        Ok(status) => panic!("expected a refusal, got {status:?}"),
        Err(e) => assert!(!e.to_string().contains("timed out"), "refusal was a hang: {e:#}"),
    }
}

#[tokio::test]
async fn mesh_client_is_served_and_seen_as_its_principal() {
    let ca = mesh_ca();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;

    let status = check(server.addr, creds(&ca, Role::Client, "alice").client_config().unwrap()).await.unwrap();

    assert_eq!(status, ServingStatus::Serving);
    assert_eq!(server.seen(), [format!("spiffe://{DOMAIN}/client/alice Client")]);
}

#[tokio::test]
async fn client_without_certificate_is_refused_and_server_keeps_serving() {
    let ca = mesh_ca();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;
    // Trusts the right CA, so only the missing client certificate can fail the handshake.
    let anonymous = anonymous_client_config(roots_from_pem(ca.cert_pem()).unwrap()).unwrap();

    let refused = check(server.addr, anonymous).await;
    let served = check(server.addr, creds(&ca, Role::Client, "bob").client_config().unwrap()).await;

    assert_refused(&refused);
    assert_eq!(served.unwrap(), ServingStatus::Serving);
    assert!(server.is_running());
    assert_eq!(server.seen(), [format!("spiffe://{DOMAIN}/client/bob Client")]);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let ca = mesh_ca();
    // Same trust domain and name: only the signature tells the impostor apart.
    let impostor_ca = MeshCa::generate(DOMAIN).unwrap();
    let forged = impostor_ca.issue(Role::Node, "n2", Duration::from_secs(3600)).unwrap();
    let forged = Credentials::from_pem(ca.cert_pem(), &forged.cert_pem, &forged.key_pem).unwrap();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;

    let refused = check(server.addr, forged.client_config().unwrap()).await;
    let served = check(server.addr, creds(&ca, Role::Node, "n2").client_config().unwrap()).await;

    assert_refused(&refused);
    assert_eq!(served.unwrap(), ServingStatus::Serving);
    assert_eq!(server.seen(), [format!("spiffe://{DOMAIN}/node/n2 Node")]);
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let ca = mesh_ca();
    let expired = ca.issue_expired(Role::Client, "old").unwrap();
    let expired = Credentials::from_pem(ca.cert_pem(), &expired.cert_pem, &expired.key_pem).unwrap();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;

    let refused = check(server.addr, expired.client_config().unwrap()).await;
    let served = check(server.addr, creds(&ca, Role::Client, "old").client_config().unwrap()).await;

    assert_refused(&refused);
    assert_eq!(served.unwrap(), ServingStatus::Serving);
    assert_eq!(server.seen(), [format!("spiffe://{DOMAIN}/client/old Client")]);
}

#[tokio::test]
async fn nodes_only_listener_refuses_clients_and_routers() {
    let ca = mesh_ca();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), INTERNAL_ALPN, PeerPolicy::NodesOnly).await;

    let client = check(server.addr, creds(&ca, Role::Client, "n2").client_config().unwrap()).await;
    let router = check(server.addr, creds(&ca, Role::Router, "n2").client_config().unwrap()).await;
    let node = check(server.addr, creds(&ca, Role::Node, "n2").client_config().unwrap()).await;

    assert_refused(&client);
    assert_refused(&router);
    assert_eq!(node.unwrap(), ServingStatus::Serving);
    assert!(server.is_running());
    assert_eq!(server.seen(), [format!("spiffe://{DOMAIN}/node/n2 Node")]);
}

#[tokio::test]
async fn stalled_handshakes_do_not_block_other_peers() {
    let ca = mesh_ca();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;
    // Peers that connect and never finish a ClientHello: one silent, one half-sent. Handshakes
    // done one at a time would wait out the server's 10 s handshake timeout on each.
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = std::time::Instant::now();
    let status = check(server.addr, creds(&ca, Role::Client, "carol").client_config().unwrap()).await.unwrap();

    assert_eq!(status, ServingStatus::Serving);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn server_certificate_must_match_the_dialled_name() {
    let ca = mesh_ca();
    let server = HealthServer::start(&creds(&ca, Role::Node, "n1"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;
    let config = creds(&ca, Role::Client, "dave").client_config().unwrap();

    let wrong_name = tokio::time::timeout(common::RPC_TIMEOUT, connect(server.addr, config.clone(), "n9.test.mesh"))
        .await
        .expect("connect timed out");
    let by_ip = tokio::time::timeout(common::RPC_TIMEOUT, connect(server.addr, config, "127.0.0.1"))
        .await
        .expect("connect timed out");

    assert!(wrong_name.is_err(), "connected to a server whose certificate does not name n9.test.mesh");
    assert!(by_ip.is_ok(), "{:?}", by_ip.err());
}

#[tokio::test]
async fn client_certificate_cannot_serve() {
    let ca = mesh_ca();
    // A client certificate lacks the serverAuth EKU, so dialers must refuse it as a server.
    let server =
        HealthServer::start(&creds(&ca, Role::Client, "mallory"), CLIENT_API_ALPN, PeerPolicy::AnyMeshMember).await;

    let result = check(server.addr, creds(&ca, Role::Client, "alice").client_config().unwrap()).await;

    assert_refused(&result);
    assert!(server.seen().is_empty());
}
