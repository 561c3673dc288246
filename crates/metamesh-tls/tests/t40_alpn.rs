//! ALPN on our listeners: the client API offers h2 and http/1.1, the internal port h2 only.
//! Driven with tokio-rustls directly, so the protocol seen is the one negotiated, not inferred.

mod common;

use std::sync::Arc;

use common::{creds, mesh_ca, RPC_TIMEOUT};
use futures_util::StreamExt;
use metamesh_tls::{incoming, PeerPolicy, Role, TlsConn, CLIENT_API_ALPN, INTERNAL_ALPN};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// What one client handshake negotiated, seen from both ends; `Err` if the handshake failed.
type Negotiated = Result<(Option<Vec<u8>>, Option<Vec<u8>>), String>;

/// Starts a listener with `server_alpn`, connects a client offering `client_alpn`, and reports
/// the protocol each side ended up with.
async fn negotiate(server_alpn: &[&[u8]], client_alpn: &[&[u8]]) -> Negotiated {
    let ca = mesh_ca();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_config = creds(&ca, Role::Node, "n1").server_config(server_alpn).unwrap();
    // The stream does its work only when polled, as tonic polls it: drive it from a task.
    let (first_conn, server_side) = tokio::sync::oneshot::channel::<TlsConn>();
    let driver = tokio::spawn(async move {
        let mut conns = Box::pin(incoming(listener, server_config, PeerPolicy::AnyMeshMember));
        if let Some(conn) = conns.next().await {
            let _ = first_conn.send(conn.expect("stream yielded an error"));
        }
    });

    let mut client_config = (*creds(&ca, Role::Client, "py").client_config().unwrap()).clone();
    client_config.alpn_protocols = client_alpn.iter().map(|p| p.to_vec()).collect();
    let connector = TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = tokio::time::timeout(RPC_TIMEOUT, connector.connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .expect("client handshake timed out");
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            driver.abort();
            return Err(e.to_string());
        }
    };
    let client_alpn = client.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);

    let conn = tokio::time::timeout(RPC_TIMEOUT, server_side)
        .await
        .expect("server never yielded the connection")
        .expect("stream ended");
    driver.abort();
    assert_eq!(conn.peer().identity.principal.as_str(), ca.spiffe_id(Role::Client, "py"));
    Ok((client_alpn, conn.alpn_protocol().map(<[u8]>::to_vec)))
}

#[tokio::test]
async fn client_api_negotiates_http1_for_http1_only_clients() {
    let (client, server) = negotiate(CLIENT_API_ALPN, &[b"http/1.1"]).await.unwrap();

    assert_eq!(client.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(server.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn client_api_prefers_h2_when_offered() {
    let (client, server) = negotiate(CLIENT_API_ALPN, &[b"http/1.1", b"h2"]).await.unwrap();

    assert_eq!(client.as_deref(), Some(&b"h2"[..]));
    assert_eq!(server.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn internal_listener_refuses_http1() {
    let refused = negotiate(INTERNAL_ALPN, &[b"http/1.1"]).await;
    let (client, _) = negotiate(INTERNAL_ALPN, &[b"h2"]).await.unwrap();

    assert!(refused.is_err(), "internal listener negotiated {refused:?}");
    assert_eq!(client.as_deref(), Some(&b"h2"[..]));
}
