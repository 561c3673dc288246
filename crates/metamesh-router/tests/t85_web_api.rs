//! The web UI's side of the router's HTTPS listener on a real local mesh: the page and its
//! security headers, sessions (an API key exchanged for a cookie that authenticates reads
//! only), and the mesh's own JSON API (whoami, search with facets, an entity's page, lineage
//! placeholders, the audit view) showing each caller what it may see.

#[path = "common/https.rs"]
mod https;

use std::time::{Duration, Instant};

use hyper::Method;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::mesh::LocalMesh;
use serde_json::{json, Value};

use https::*;

impl Client {
    /// No credentials at all: a browser before signing in.
    fn browser(mesh: &LocalMesh) -> Client {
        Client { addr: mesh.layout.router_http, tls: anonymous_tls(mesh, &[HTTP1]), bearer: None }
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, Vec::new()).await.unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
    }
}

/// The `mm_session=…` pair of a sign-in's Set-Cookie, after checking its attributes.
fn session_cookie(reply: &Reply) -> String {
    let set = reply.headers.get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_ui_signs_in_by_session_and_its_api_shows_what_the_caller_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let browser = Client::browser(&mesh);

    // The page and its assets need no credentials, and carry a strict CSP.
    let page = browser.get("/").await.expect(200);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let js = browser.get("/ui/app.js").await.expect(200);
    assert!(js.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    browser.get("/ui/nothing.js").await.expect(404);
    assert_eq!(browser.get("/api/mesh/v1/whoami").await.expect(200).json(), json!({"signedIn": false}));
    let stranger = Client { bearer: Some("not-a-key".into()), ..browser.clone() };
    stranger.get("/api/mesh/v1/whoami").await.expect(401);

    // Sign-in: JSON only, a known key only, and nothing set on refusal.
    const SESSION: &str = "/api/mesh/v1/session";
    let key = mesh.api_key("fraud-reader").unwrap();
    let body = serde_json::to_vec(&json!({"apiKey": key})).unwrap();
    browser.post_bytes(SESSION, &[("content-type", "text/plain")], body.clone()).await.expect(415);
    let wrong = browser.post(SESSION, &json!({"apiKey": "not-a-key"})).await.expect(401);
    assert!(wrong.headers.get("set-cookie").is_none());
    let missing = browser.post(SESSION, &json!({"key": key})).await.expect(400);
    assert!(missing.text().contains("apiKey"), "{}", missing.text());
    let signed_in = browser.post(SESSION, &json!({"apiKey": key})).await.expect(200);
    assert_eq!(signed_in.json()["principal"], "spiffe://metamesh.local/client/fraud-reader");
    let cookie = session_cookie(&signed_in);
    let reader = |path: &str| {
        let (browser, cookie) = (browser.clone(), cookie.clone());
        let path = path.to_owned();
        async move { browser.get_with(&path, &[("cookie", &cookie)]).await }
    };
    let me = reader("/api/mesh/v1/whoami").await.expect(200).json();
    assert_eq!((me["via"].as_str(), me["auditor"].as_bool()), (Some("session"), Some(false)), "{me:#}");
    let readable: Vec<&str> = me["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["read"] == true)
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(readable, ["fraud"], "{me:#}");
    // A browser holding the principal's certificate is signed in by it, no form.
    let with_cert = Client { tls: cert_tls(&mesh, "fraud-reader", &[HTTP1]), ..browser.clone() };
    let by_cert = with_cert.get("/api/mesh/v1/whoami").await.expect(200).json();
    assert_eq!(
        (by_cert["via"].as_str(), by_cert["principal"].as_str()),
        (Some("certificate"), me["principal"].as_str())
    );
    // A session never writes, even with a well-formed event.
    let e = event("START", 1, 9, "fraud", "session_write", vec![], vec![ds("fraud", "x")]);
    let write = browser
        .post_bytes(
            "/api/v1/lineage",
            &[("content-type", "application/json"), ("cookie", &cookie)],
            serde_json::to_vec(&e).unwrap(),
        )
        .await;
    write.expect(401);

    // Data: growth's signups feed fraud's job; fraud's output gets a hostile document.
    let growth_writer = Client::key(&mesh, "growth-writer");
    for (kind, minute) in [("START", 1), ("COMPLETE", 2)] {
        let e = event(kind, minute, 1, "growth", "ingest_signups", vec![], vec![ds("growth", "raw.signups")]);
        growth_writer.post("/api/v1/lineage", &e).await.expect(201);
    }
    let fraud_writer = Client::key(&mesh, "fraud-writer");
    for (kind, minute) in [("START", 5), ("COMPLETE", 8)] {
        let e = event(
            kind,
            minute,
            2,
            "fraud",
            "score_cards",
            vec![ds("growth", "raw.signups")],
            vec![ds("fraud", "card_features")],
        );
        fraud_writer.post("/api/v1/lineage", &e).await.expect(201);
    }
    let features = "mm://fraud/dataset/ol:fraud;card_features";
    let mut catalog = CatalogServiceClient::new(mesh.router("fraud-writer").await);
    catalog
        .put_document(v1::PutDocumentRequest {
            entity_urn: features.into(),
            title: "card <b>notes</b>".into(),
            body_markdown:
                "**Owner:** fraud <script>window.x=1</script> <img src=x onerror=alert(1)> [go](javascript:alert(1))"
                    .into(),
            ..Default::default()
        })
        .await
        .expect("put document");

    // The entity page: state, versions, the document rendered and cleaned, neighbours.
    let page = reader(&format!("/api/mesh/v1/entity?urn={features}")).await.expect(200).json();
    assert_eq!(page["entity"]["urn"], features, "{page:#}");
    assert!(page["versions"].as_array().unwrap().len() >= 2, "{page:#}");
    let doc = &page["documents"][0];
    assert_eq!(doc["title"], "card <b>notes</b>", "titles are text, escaped by the page");
    let html = doc["html"].as_str().unwrap();
    assert!(html.contains("<strong>Owner:</strong>"), "{html}");
    for bad in ["<script", "onerror", "javascript:"] {
        assert!(!html.contains(bad), "`{bad}` survived: {html}");
    }
    let upstream = page["lineage"]["upstream"].as_array().unwrap();
    assert_eq!(upstream.len(), 1, "{page:#}");
    assert_eq!(upstream[0]["urn"], "mm://fraud/job/ol:fraud;score_cards");
    assert_eq!(page["audit"]["allowed"], false, "a reader does not see the audit trail");
    reader("/api/mesh/v1/entity?urn=mm://growth/dataset/ol:growth;raw.signups").await.expect(404);
    reader("/api/mesh/v1/entity?urn=not-a-urn").await.expect(400);
    reader("/api/mesh/v1/entity").await.expect(400);

    // Lineage as fraud-reader: growth's nodes are placeholders with stable, opaque ids.
    let path = format!("/api/mesh/v1/lineage?urn={features}&direction=upstream&depth=5");
    let deadline = Instant::now() + Duration::from_secs(30);
    let graph = loop {
        let graph = reader(&path).await.expect(200).json();
        if graph["nodes"].as_array().unwrap().iter().any(|n| n["placeholder"] == true) {
            break graph;
        }
        assert!(Instant::now() < deadline, "growth's dataset never appeared upstream: {graph:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let again = reader(&path).await.expect(200);
    assert!(!again.text().contains("signups") && !again.text().contains("mm://growth"), "{}", again.text());
    let ids = |g: &Value| -> Vec<String> {
        g["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&graph), ids(&again.json()), "placeholder ids are stable");
    let hidden: Vec<String> = ids(&graph).into_iter().filter(|i| i.starts_with("hidden:")).collect();
    assert!(!hidden.is_empty());
    for e in graph["edges"].as_array().unwrap() {
        let known = |id: &Value| ids(&graph).iter().any(|i| i == id.as_str().unwrap());
        assert!(known(&e["fromId"]) && known(&e["toId"]), "an edge names a node not in the answer: {e}");
    }

    // Search with facets, as the caller may see.
    let found = reader("/api/mesh/v1/search?q=card_features").await.expect(200).json();
    assert!(found["hits"].as_array().unwrap().iter().any(|h| h["urn"] == features), "{found:#}");
    assert_eq!(found["facets"]["tenant"], json!({"fraud": found["facets"]["tenant"]["fraud"]}), "{found:#}");
    let jobs = reader("/api/mesh/v1/search?q=&kind=job").await.expect(200).json();
    assert!(jobs["hits"].as_array().unwrap().iter().all(|h| h["kind"] == "job"), "{jobs:#}");
    reader("/api/mesh/v1/search?color=red").await.expect(400);

    // The audit view: auditors only; verification per shard group; export as a file.
    reader("/api/mesh/v1/audit/records").await.expect(403);
    reader("/api/mesh/v1/audit/verify").await.expect(403);
    let admin = Client::key(&mesh, "admin");
    let records = admin.get("/api/mesh/v1/audit/records?tenant=fraud&pageSize=20").await.expect(200).json();
    assert!(!records["records"].as_array().unwrap().is_empty(), "{records:#}");
    assert!(records["records"].as_array().unwrap().iter().all(|r| r["tenant"] == "fraud"));
    admin.get("/api/mesh/v1/audit/records?decision=maybe").await.expect(400);
    let verify = admin.get("/api/mesh/v1/audit/verify").await.expect(200).json();
    let shards: Vec<(&str, bool)> = verify["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["shard"].as_str().unwrap(), s["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(shards, [("s1", true), ("s2", true)], "{verify:#}");
    let export = admin.get("/api/mesh/v1/audit/export?format=jsonl&tenant=fraud").await.expect(200);
    assert!(export.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let lines: Vec<Value> = export.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let csv = admin.get("/api/mesh/v1/audit/export?format=csv").await.expect(200);
    assert!(csv.text().lines().count() > 1, "{}", csv.text());
    admin.get("/api/mesh/v1/audit/export?format=xml").await.expect(400);
    let trail = admin.get(&format!("/api/mesh/v1/entity?urn={features}")).await.expect(200).json();
    assert_eq!(trail["audit"]["allowed"], true);
    assert!(trail["audit"]["records"].as_array().unwrap().iter().all(|r| r["resource"] == features), "{trail:#}");

    // Signing out ends the session.
    let out = browser.send(Method::DELETE, SESSION, &[("cookie", &cookie)], Vec::new()).await.unwrap().expect(204);
    assert!(out.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(reader("/api/mesh/v1/whoami").await.expect(200).json()["signedIn"], false);
    reader("/api/mesh/v1/search?q=x").await.expect(401);
    mesh.shutdown().await;
}
