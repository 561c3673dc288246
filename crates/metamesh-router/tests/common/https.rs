//! What the HTTPS API's tests share (t80_http, t85_web_api): a local mesh laid out like the dev
//! mesh (its tenants, principals and the repository's `policies/`), a small HTTPS client (hyper
//! over tokio-rustls, one connection per request, HTTP/1.1 or h2 as ALPN agreed) and OpenLineage
//! events. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The repository's policies, as `metamesh dev` writes them.
pub const POLICY_FILES: &[(&str, &str)] = &[
    ("model.conf", include_str!("../../../../policies/model.conf")),
    ("global.csv", include_str!("../../../../policies/global.csv")),
    ("tenants/fraud.csv", include_str!("../../../../policies/tenants/fraud.csv")),
    ("tenants/growth.csv", include_str!("../../../../policies/tenants/growth.csv")),
    ("tenants/platform.csv", include_str!("../../../../policies/tenants/platform.csv")),
];

/// The dev mesh's people this test uses (each gets a certificate and an API key).
pub const CLIENTS: &[&str] = &["admin", "fraud-writer", "fraud-reader", "growth-writer", "growth-reader"];

pub const H2: &[u8] = b"h2";
pub const HTTP1: &[u8] = b"http/1.1";

pub fn write_policies(dir: &Path) {
    for (name, text) in POLICY_FILES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
}

/// The dev mesh's layout (s1: fraud and platform, s2: growth), one replica per group, no
/// default tenant for OpenLineage namespaces.
pub fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud", "platform"]), ("s2", &["growth"])], 1);
    spec.clients = CLIENTS.iter().map(|c| c.to_string()).collect();
    spec.policy = Arc::new(write_policies);
    spec
}

// ---------------------------------------------------------------------------------------------
// A small HTTPS client: one TLS connection per request, HTTP/1.1 or h2 as ALPN agreed.

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub tls: Arc<rustls::ClientConfig>,
    pub bearer: Option<String>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub alpn: Option<Vec<u8>>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the status, showing the body if it is another.
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        self
    }
}

pub fn with_alpn(config: &rustls::ClientConfig, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut config = config.clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Trusts the mesh CA, presents no certificate.
pub fn anonymous_tls(mesh: &LocalMesh, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let roots = metamesh_tls::config::load_roots(&mesh.dir.join("certs").join("ca.pem")).unwrap();
    with_alpn(&metamesh_tls::config::anonymous_client_config(roots).unwrap(), alpn)
}

/// Presents client `name`'s certificate (as `metamesh_tls::Credentials` loads it).
pub fn cert_tls(mesh: &LocalMesh, name: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let certs = mesh.dir.join("certs");
    let creds = metamesh_tls::Credentials::load(
        &certs.join("ca.pem"),
        &certs.join(format!("{name}.pem")),
        &certs.join(format!("{name}.key")),
    )
    .unwrap();
    with_alpn(&creds.client_config().unwrap(), alpn)
}

impl Client {
    /// Client `name` by its API key, over a connection without a certificate.
    pub fn key(mesh: &LocalMesh, name: &str) -> Client {
        Client {
            addr: mesh.layout.router_http,
            tls: anonymous_tls(mesh, &[H2, HTTP1]),
            bearer: Some(mesh.api_key(name).unwrap()),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("127.0.0.1")?.to_owned();
        let tls = TlsConnector::from(self.tls.clone()).connect(name, tcp).await?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let h2 = alpn.as_deref() == Some(H2);
        let uri = if h2 { format!("https://{}{path}", self.addr) } else { path.to_owned() };
        let mut request = Request::builder().method(method).uri(uri);
        if !h2 {
            request = request.header("host", self.addr.to_string());
        }
        if let Some(key) = &self.bearer {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let io = TokioIo::new(tls);
        let response = if h2 {
            let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            sender.send_request(request).await?
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            sender.send_request(request).await?
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, alpn, headers, body })
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Vec::new()).await.unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
    }

    pub async fn post_bytes(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        self.send(Method::POST, path, headers, body).await.unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_bytes(path, &[("content-type", "application/json")], serde_json::to_vec(body).unwrap()).await
    }
}

// ---------------------------------------------------------------------------------------------
// Events.

pub fn run_id(n: u32) -> String {
    format!("11111111-2222-4333-8444-{n:012}")
}

pub fn at(minute: u32) -> String {
    format!("2024-05-01T10:{minute:02}:00Z")
}

pub fn ds(namespace: &str, name: &str) -> Value {
    json!({"namespace": namespace, "name": name})
}

pub fn event(kind: &str, minute: u32, run: u32, ns: &str, job: &str, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventType": kind,
        "eventTime": at(minute),
        "producer": "https://example.com/t80",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id(run)},
        "job": {"namespace": ns, "name": job},
        "inputs": inputs,
        "outputs": outputs,
    })
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// How many events the caller may read (`totalCount` of `/api/v1/events/lineage`).
pub async fn event_count(client: &Client) -> u64 {
    let reply = client.get("/api/v1/events/lineage?limit=1000").await.expect(200);
    reply.json()["totalCount"].as_u64().expect("totalCount")
}

/// The entity's current version, read through the router's gRPC API as `admin`.
pub async fn version_of(mesh: &LocalMesh, urn: &str) -> u64 {
    let mut catalog = CatalogServiceClient::new(mesh.router("admin").await);
    let reply = catalog
        .get_entity(v1::GetEntityRequest { urn: urn.into(), ..Default::default() })
        .await
        .unwrap_or_else(|s| panic!("get {urn}: {s}"))
        .into_inner();
    reply.entity.expect("entity").version
}

pub fn ids(graph: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        graph["graph"].as_array().expect("graph").iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

pub fn node<'a>(graph: &'a Value, id: &str) -> &'a Value {
    graph["graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {graph:#}"))
}

pub fn edge(from: &str, to: &str) -> Value {
    json!({"origin": from, "destination": to})
}
