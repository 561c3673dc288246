//! The router's HTTPS API on a real local mesh (the dev mesh's tenants, principals and the
//! repository's `policies/`): TLS with ALPN h2 and http/1.1, API keys and client certificates,
//! OpenLineage ingestion (one event, batches, every refusal storing nothing), lineage across
//! tenants with what the caller may not read reduced to placeholders, and the Marquez-shaped
//! reads. The client is hyper's, over tokio-rustls, as an outside caller would be.

#[path = "common/https.rs"]
mod https;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use metamesh_testkit::mesh::LocalMesh;
use serde_json::{json, Value};

use https::*;

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_offers_both_protocols_and_callers_authenticate_by_key_or_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let key = mesh.api_key("fraud-writer").unwrap();

    // Each protocol alone is negotiated, and serves requests.
    for (n, alpn) in [H2, HTTP1].into_iter().enumerate() {
        let client =
            Client { addr: mesh.layout.router_http, tls: anonymous_tls(&mesh, &[alpn]), bearer: Some(key.clone()) };
        let reply = client.get("/api/v1/namespaces").await.expect(200);
        assert_eq!(reply.alpn.as_deref(), Some(alpn));
        assert!(reply.json()["namespaces"].is_array(), "{}", reply.text());
        let n = n as u32;
        let posted = client
            .post("/api/v1/lineage", &event("START", n, n + 1, "fraud", &format!("proto_{n}"), vec![], vec![]))
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text());
        assert_eq!(posted.alpn.as_deref(), Some(alpn));
        let health = client.get("/healthz").await.expect(200);
        assert_eq!(health.text(), "ok");
    }

    // No credentials: 401 in Marquez's error shape, and a challenge.
    let nobody = Client { addr: mesh.layout.router_http, tls: anonymous_tls(&mesh, &[H2, HTTP1]), bearer: None };
    let refused = nobody.get("/api/v1/namespaces").await.expect(401);
    let body = refused.json();
    assert_eq!(body["code"], 401, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(refused.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
    let refused = nobody.post("/api/v1/lineage", &event("START", 5, 9, "fraud", "nobody", vec![], vec![])).await;
    assert_eq!(refused.json()["code"], 401);

    // A wrong key: 401, with or without a certificate beside it.
    let wrong = Client { bearer: Some("mm_not-a-key".into()), ..nobody.clone() };
    assert_eq!(wrong.get("/api/v1/namespaces").await.expect(401).json()["code"], 401);
    let wrong_with_cert = Client {
        addr: mesh.layout.router_http,
        tls: cert_tls(&mesh, "fraud-writer", &[H2]),
        bearer: Some("mm_not-a-key".into()),
    };
    wrong_with_cert.get("/api/v1/namespaces").await.expect(401);

    // A client certificate alone: the caller is its principal (fraud-reader reads fraud's jobs
    // and may not write them).
    for alpn in [H2, HTTP1] {
        let reader =
            Client { addr: mesh.layout.router_http, tls: cert_tls(&mesh, "fraud-reader", &[alpn]), bearer: None };
        let jobs = reader.get("/api/v1/namespaces/fraud/jobs").await.expect(200);
        assert_eq!(jobs.alpn.as_deref(), Some(alpn));
        let body = jobs.json();
        let names: Vec<&str> = body["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["proto_0", "proto_1"]);
        let posted = reader.post("/api/v1/lineage", &event("START", 7, 7, "fraud", "reader_job", vec![], vec![])).await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN, "{}", posted.text());
    }
    // ...and fraud-writer's certificate writes.
    let writer = Client { addr: mesh.layout.router_http, tls: cert_tls(&mesh, "fraud-writer", &[HTTP1]), bearer: None };
    writer.post("/api/v1/lineage", &event("START", 8, 8, "fraud", "cert_job", vec![], vec![])).await.expect(201);

    // A certificate from another CA fails the handshake (the server refuses it; with TLS 1.3
    // the client learns it on its first read).
    let other_ca = metamesh_tls::MeshCa::generate("metamesh.local").unwrap();
    let issued = other_ca.issue(metamesh_tls::Role::Client, "fraud-writer", Duration::from_secs(3600)).unwrap();
    let mesh_ca = std::fs::read_to_string(mesh.dir.join("certs").join("ca.pem")).unwrap();
    let foreign = metamesh_tls::Credentials::from_pem(&mesh_ca, &issued.cert_pem, &issued.key_pem).unwrap();
    for alpn in [H2, HTTP1] {
        let stranger = Client {
            addr: mesh.layout.router_http,
            tls: with_alpn(&foreign.client_config().unwrap(), &[alpn]),
            bearer: Some(key.clone()),
        };
        let answer = stranger.send(Method::GET, "/api/v1/namespaces", &[], Vec::new()).await;
        assert!(answer.is_err(), "a certificate of another CA was accepted: {answer:?}");
    }
    mesh.shutdown().await;
}

/// A second router on the mesh, with a small body limit; returns its HTTPS address and what
/// stops it.
async fn small_router(
    mesh: &LocalMesh,
    max_body: usize,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = mesh.router_config().unwrap();
    config.router.id = "router-small".into();
    config.listen.grpc = free();
    let http = free();
    config.listen.http = Some(http);
    config.http.max_body_bytes = Some(max_body);
    config.witness.state = None;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(metamesh_router::run_router(config, async move {
        let _ = stopped.await;
    }));
    let probe = Client { addr: http, tls: anonymous_tls(mesh, &[H2]), bearer: None };
    let deadline = Instant::now() + Duration::from_secs(20);
    while probe.send(Method::GET, "/healthz", &[], Vec::new()).await.map(|r| r.status).ok() != Some(StatusCode::OK) {
        assert!(Instant::now() < deadline, "the second router did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (http, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_are_stored_once_and_refused_events_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let writer = Client::key(&mesh, "fraud-writer");
    let admin = Client::key(&mesh, "admin");
    const ONE: &str = "/api/v1/lineage";
    const BATCH: &str = "/api/v1/lineage/batch";

    let (inputs, outputs) = (vec![ds("fraud", "card_transactions")], vec![ds("fraud", "card_features")]);
    let start = event("START", 1, 1, "fraud", "score_cards", inputs.clone(), outputs.clone());
    let complete = event("COMPLETE", 3, 1, "fraud", "score_cards", inputs, outputs);
    writer.post(ONE, &start).await.expect(201);
    writer.post(ONE, &complete).await.expect(201);
    assert_eq!(event_count(&admin).await, 2);
    let job_urn = "mm://fraud/job/ol:fraud;score_cards";
    let job_path = "/api/v1/namespaces/fraud/jobs/score_cards";
    let version = version_of(&mesh, job_urn).await;
    let job = admin.get(job_path).await.expect(200).json();
    assert_eq!(job["latestRun"]["state"], "COMPLETED", "{job:#}");
    let runs = admin.get(&format!("{job_path}/runs")).await.expect(200).json();
    assert_eq!(runs["totalCount"], 1, "{runs:#}");

    // The same event again, as sent and spelt differently (indented, keys in another order):
    // accepted, and nothing changes.
    writer.post(ONE, &complete).await.expect(201);
    writer
        .post_bytes(ONE, &[("content-type", "application/json")], serde_json::to_vec_pretty(&complete).unwrap())
        .await
        .expect(201);
    let fields: Vec<String> =
        complete.as_object().unwrap().iter().rev().map(|(k, v)| format!("{}:{}", json!(k), v)).collect();
    let reordered = format!("{{{}}}", fields.join(","));
    assert!(!reordered.starts_with("{\"eventTime\""), "{reordered}");
    writer.post_bytes(ONE, &[], reordered.into_bytes()).await.expect(201);
    assert_eq!(event_count(&admin).await, 2);
    assert_eq!(version_of(&mesh, job_urn).await, version);
    assert_eq!(admin.get(job_path).await.expect(200).json(), job);
    assert_eq!(admin.get(&format!("{job_path}/runs")).await.expect(200).json(), runs);

    // Refusals, each storing nothing.
    let fresh = event("START", 10, 2, "fraud", "score_cards", vec![], vec![]);
    let reader = Client::key(&mesh, "fraud-reader");
    assert_eq!(reader.post(ONE, &fresh).await.expect(403).json()["code"], 403);
    let theirs = event("START", 10, 3, "growth", "ingest_signups", vec![], vec![]);
    let refused = writer.post(ONE, &theirs).await.expect(403).json();
    assert!(refused["message"].as_str().unwrap().contains("growth"), "{refused}");
    let nowhere = writer.post(ONE, &event("START", 10, 3, "nowhere", "job", vec![], vec![])).await.expect(403).json();
    assert!(nowhere["message"].as_str().unwrap().contains("job.namespace"), "{nowhere}");
    let mut no_run_id = fresh.clone();
    no_run_id["run"].as_object_mut().unwrap().remove("runId");
    let refused = writer.post(ONE, &no_run_id).await.expect(400).json();
    assert_eq!(refused["code"], 400);
    assert!(refused["message"].as_str().unwrap().contains("run.runId"), "{refused}");
    let refused = writer.post_bytes(ONE, &[("content-type", "application/json")], b"{\"eventType\": ".to_vec()).await;
    let refused = refused.expect(400).json();
    assert!(refused["message"].as_str().unwrap().contains("body"), "{refused}");
    let fresh_bytes = serde_json::to_vec(&fresh).unwrap();
    let refused = writer.post_bytes(ONE, &[("content-encoding", "br")], fresh_bytes.clone()).await.expect(415).json();
    assert_eq!(refused["code"], 415);
    // 17 MiB once gunzipped, over the default limit of 16 MiB.
    let bomb = gzip(&vec![b' '; 17 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    writer.post_bytes(ONE, &[("content-encoding", "gzip")], bomb.clone()).await.expect(413);
    writer.post_bytes(ONE, &[("content-encoding", "gzip")], b"not gzip at all".to_vec()).await.expect(400);
    assert_eq!(event_count(&admin).await, 2, "a refused event was stored");
    assert!(admin.get(&format!("/api/v1/runs/{}", run_id(2))).await.status == StatusCode::NOT_FOUND);

    // gzip is accepted.
    writer
        .post_bytes(ONE, &[("content-type", "application/json"), ("content-encoding", "gzip")], gzip(&fresh_bytes))
        .await
        .expect(201);
    assert_eq!(event_count(&admin).await, 3);
    let run = admin.get(&format!("/api/v1/runs/{}", run_id(2))).await.expect(200).json();
    assert_eq!(run["state"], "RUNNING", "{run:#}");

    // A router configured with a small body limit refuses a body over it, plain or gzipped.
    let (addr, stop, task) = small_router(&mesh, 4096).await;
    let small = Client { addr, ..writer.clone() };
    let mut big = event("START", 12, 4, "fraud", "score_cards", vec![], vec![]);
    big["job"]["facets"] = json!({"documentation": {"description": "x".repeat(8192)}});
    assert_eq!(small.post(ONE, &big).await.expect(413).json()["code"], 413);
    let big_gz = gzip(&serde_json::to_vec(&big).unwrap());
    assert!(big_gz.len() < 4096);
    small.post_bytes(ONE, &[("content-encoding", "gzip")], big_gz).await.expect(413);
    assert_eq!(event_count(&admin).await, 3);
    small.post(ONE, &event("START", 12, 5, "fraud", "score_cards", vec![], vec![])).await.expect(201);
    assert_eq!(event_count(&admin).await, 4);
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    // A batch with bad events: the good ones are stored, each bad one says why.
    let mut no_name = event("START", 20, 6, "fraud", "nameless", vec![], vec![]);
    no_name["job"].as_object_mut().unwrap().remove("name");
    let batch = json!([event("START", 20, 7, "fraud", "batch_job", vec![], vec![]), no_name, theirs]);
    let reply = writer.post(BATCH, &batch).await.expect(207).json();
    assert_eq!(reply["status"], "partial_success", "{reply:#}");
    assert_eq!(
        (reply["received"].clone(), reply["succeeded"].clone(), reply["failed"].clone()),
        (json!(3), json!(1), json!(2))
    );
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results[0], json!({"index": 0, "status": "success", "duplicate": false}));
    assert_eq!(
        (results[1]["index"].clone(), results[1]["status"].clone(), results[1]["code"].clone()),
        (json!(1), json!("failure"), json!(400))
    );
    let message = results[1]["message"].as_str().unwrap();
    assert!(message.contains("events[1]") && message.contains("job.name"), "{message}");
    assert_eq!((results[2]["index"].clone(), results[2]["code"].clone()), (json!(2), json!(403)));
    assert_eq!(event_count(&admin).await, 5);

    // All valid (one known already, in the `{"events": [...]}` form): 200, the known one a
    // duplicate.
    let batch = json!({"events": [start, event("COMPLETE", 21, 7, "fraud", "batch_job", vec![], vec![])]});
    let reply = writer.post(BATCH, &batch).await.expect(200).json();
    assert_eq!(reply["status"], "success", "{reply:#}");
    assert_eq!((reply["succeeded"].clone(), reply["failed"].clone()), (json!(2), json!(0)));
    assert_eq!(reply["results"][0]["duplicate"], true, "{reply:#}");
    assert_eq!(reply["results"][1]["duplicate"], false, "{reply:#}");
    assert_eq!(event_count(&admin).await, 6);
    let batch_job = admin.get("/api/v1/namespaces/fraud/jobs/batch_job").await.expect(200).json();
    assert_eq!(batch_job["latestRun"]["state"], "COMPLETED");

    // Nothing valid: `failure`, with the status of the first failure.
    let reply = writer.post(BATCH, &json!([no_run_id, theirs])).await.expect(400).json();
    assert_eq!(reply["status"], "failure", "{reply:#}");
    assert_eq!(reply["succeeded"], 0);
    assert_eq!(event_count(&admin).await, 6);
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lineage_crosses_tenants_and_the_marquez_reads_show_what_the_caller_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    const ONE: &str = "/api/v1/lineage";

    // growth ingests its signups; fraud's job reads them and writes its features.
    let growth_writer = Client::key(&mesh, "growth-writer");
    let mut signups = ds("growth", "raw.signups");
    signups["facets"] = json!({"schema": {"fields": [{"name": "user_id", "type": "BIGINT"}]}});
    let ingest =
        |kind: &str, minute: u32| event(kind, minute, 1, "growth", "ingest_signups", vec![], vec![signups.clone()]);
    growth_writer.post(ONE, &ingest("START", 1)).await.expect(201);
    growth_writer.post(ONE, &ingest("COMPLETE", 2)).await.expect(201);

    let fraud_writer = Client::key(&mesh, "fraud-writer");
    let mut features = ds("fraud", "card_features");
    features["facets"] = json!({
        "schema": {"fields": [{"name": "risk_score", "type": "DOUBLE", "description": "secret-column-doc"}]},
        "documentation": {"description": "secret-dataset-doc"},
    });
    let score = |kind: &str, minute: u32| {
        let mut e =
            event(kind, minute, 2, "fraud", "score_cards", vec![ds("growth", "raw.signups")], vec![features.clone()]);
        e["job"]["facets"] = json!({
            "documentation": {"description": "secret-job-doc"},
            "sourceCodeLocation": {"type": "git", "url": "https://git.example/fraud/secret-repo"},
        });
        e
    };
    fraud_writer.post(ONE, &score("START", 5)).await.expect(201);
    fraud_writer.post(ONE, &score("COMPLETE", 8)).await.expect(201);

    // As admin: the whole graph, once the edge into growth reached growth's shard.
    let admin = Client::key(&mesh, "admin");
    let lineage = "/api/v1/lineage?nodeId=dataset:growth:raw.signups&depth=3";
    let deadline = Instant::now() + Duration::from_secs(30);
    let graph = loop {
        let graph = admin.get(lineage).await.expect(200).json();
        if ids(&graph).iter().any(|i| i == "dataset:fraud:card_features") {
            break graph;
        }
        assert!(Instant::now() < deadline, "fraud's job never appeared downstream of growth's dataset: {graph:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        ids(&graph),
        [
            "dataset:fraud:card_features",
            "dataset:growth:raw.signups",
            "job:fraud:score_cards",
            "job:growth:ingest_signups"
        ]
    );
    assert_eq!(graph["partial"], false, "{graph:#}");
    assert_eq!(graph["hiddenNodes"], 0);
    let (src, job, out, ingest_job) = (
        "dataset:growth:raw.signups",
        "job:fraud:score_cards",
        "dataset:fraud:card_features",
        "job:growth:ingest_signups",
    );
    let n = node(&graph, src);
    assert_eq!((n["type"].as_str(), n["tenant"].as_str()), (Some("DATASET"), Some("growth")));
    assert_eq!(n["inEdges"], json!([edge(ingest_job, src)]));
    assert_eq!(n["outEdges"], json!([edge(src, job)]));
    assert_eq!(n["data"]["fields"][0]["name"], "user_id");
    let n = node(&graph, job);
    assert_eq!((n["type"].as_str(), n["tenant"].as_str()), (Some("JOB"), Some("fraud")));
    assert_eq!(n["inEdges"], json!([edge(src, job)]));
    assert_eq!(n["outEdges"], json!([edge(job, out)]));
    assert_eq!(n["data"]["latestRun"]["state"], "COMPLETED");
    assert_eq!(n["data"]["inputs"], json!([ds("growth", "raw.signups")]));
    let n = node(&graph, out);
    assert_eq!(n["inEdges"], json!([edge(job, out)]));
    assert_eq!(n["outEdges"], json!([]));
    assert_eq!(n["data"]["description"], "secret-dataset-doc");

    // As growth-reader, who may only discover fraud's: fraud's nodes are placeholders, and
    // nothing of theirs but their kind and tenant is in the answer.
    let growth_reader = Client::key(&mesh, "growth-reader");
    let reply = growth_reader.get(lineage).await.expect(200);
    let (text, hidden_graph) = (reply.text(), reply.json());
    for leak in ["score_cards", "card_features", "secret", "risk_score", "ol:fraud", "mm://fraud"] {
        assert!(!text.contains(leak), "`{leak}` leaked to growth-reader: {text}");
    }
    assert_eq!(hidden_graph["partial"], true, "{hidden_graph:#}");
    let nodes = hidden_graph["graph"].as_array().unwrap();
    let hidden: Vec<&Value> = nodes.iter().filter(|n| n["tenant"] == "fraud").collect();
    assert!(!hidden.is_empty(), "{hidden_graph:#}");
    for n in &hidden {
        assert_eq!(n["placeholder"], true, "{n}");
        assert_eq!(n["data"], Value::Null, "{n}");
        assert!(n["id"].as_str().unwrap().starts_with("hidden:"), "{n}");
    }
    assert!(hidden_graph["hiddenNodes"].as_u64().unwrap() >= 1);
    let n = node(&hidden_graph, src);
    assert_eq!(n["data"]["fields"][0]["name"], "user_id", "growth's own dataset is shown whole");

    // The mesh's own JSON lineage: directed, typed edges; the same placeholders, opaque.
    let signups_urn = "mm://growth/dataset/ol:growth;raw.signups";
    let down = admin.get("/api/mesh/v1/lineage?nodeId=dataset:growth:raw.signups&direction=downstream&depth=2").await;
    let down = down.expect(200).json();
    assert_eq!(down["start"], signups_urn, "{down:#}");
    let urns: Vec<&str> = down["nodes"].as_array().unwrap().iter().filter_map(|n| n["urn"].as_str()).collect();
    assert!(urns.contains(&"mm://fraud/dataset/ol:fraud;card_features"), "{down:#}");
    assert!(!urns.contains(&"mm://growth/job/ol:growth;ingest_signups"), "downstream only: {down:#}");
    assert!(
        down["edges"].as_array().unwrap().iter().any(|e| e["from"] == signups_urn
            && e["to"] == "mm://fraud/job/ol:fraud;score_cards"
            && e["kind"] == "consumed"),
        "{down:#}"
    );
    let up = admin.get(&format!("/api/mesh/v1/lineage?urn={signups_urn}&direction=upstream")).await.expect(200).json();
    let urns: Vec<&str> = up["nodes"].as_array().unwrap().iter().filter_map(|n| n["urn"].as_str()).collect();
    assert_eq!(urns, [signups_urn, "mm://growth/job/ol:growth;ingest_signups"], "{up:#}");
    let before = admin.get(&format!("/api/mesh/v1/lineage?urn={signups_urn}&asOfMs=1")).await.expect(200).json();
    assert_eq!(before["nodes"].as_array().unwrap().len(), 1, "nothing but the start as of 1970: {before:#}");
    let reply = growth_reader.get(&format!("/api/mesh/v1/lineage?urn={signups_urn}&direction=downstream")).await;
    let text = reply.text();
    let hidden_mesh = reply.expect(200).json();
    for leak in ["score_cards", "card_features", "ol:fraud", "mm://fraud"] {
        assert!(!text.contains(leak), "`{leak}` leaked to growth-reader: {text}");
    }
    assert!(hidden_mesh["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["placeholder"] == true && n["tenant"] == "fraud"));
    growth_reader.get("/api/mesh/v1/lineage?urn=mm://growth/dataset/x&direction=sideways").await.expect(400);
    let downstream: Vec<&str> =
        n["outEdges"].as_array().unwrap().iter().map(|e| e["destination"].as_str().unwrap()).collect();
    assert_eq!(downstream.len(), 1, "{n}");
    assert!(downstream[0].starts_with("hidden:fraud:job"), "{n}");
    assert!(node(&hidden_graph, ingest_job)["data"].is_object());

    // The Marquez reads, as fraud-reader: fraud's namespace only.
    let reader = Client::key(&mesh, "fraud-reader");
    let namespaces = reader.get("/api/v1/namespaces").await.expect(200).json();
    let names: Vec<&str> =
        namespaces["namespaces"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fraud"], "{namespaces:#}");
    assert_eq!(namespaces["namespaces"][0]["ownerName"], "fraud");
    let all = admin.get("/api/v1/namespaces").await.expect(200).json();
    let names: Vec<&str> = all["namespaces"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fraud", "growth"], "{all:#}");
    assert_eq!(reader.get("/api/v1/namespaces/fraud").await.expect(200).json()["name"], "fraud");
    reader.get("/api/v1/namespaces/growth").await.expect(404);

    let datasets = reader.get("/api/v1/namespaces/fraud/datasets").await.expect(200).json();
    assert_eq!(datasets["totalCount"], 1, "{datasets:#}");
    let d = &datasets["datasets"][0];
    assert_eq!(d["id"], json!({"namespace": "fraud", "name": "card_features"}));
    assert_eq!(
        d["fields"],
        json!([{"name": "risk_score", "type": "DOUBLE", "tags": [], "description": "secret-column-doc"}])
    );
    assert_eq!((d["tenant"].as_str(), d["description"].as_str()), (Some("fraud"), Some("secret-dataset-doc")));
    let dataset = reader.get("/api/v1/namespaces/fraud/datasets/card_features").await.expect(200).json();
    assert_eq!(dataset["name"], "card_features");
    assert_eq!(dataset["urn"], "mm://fraud/dataset/ol:fraud;card_features");
    assert!(dataset["lastModifiedAt"].is_string(), "{dataset:#}");
    reader.get("/api/v1/namespaces/growth/datasets/raw.signups").await.expect(404);
    let theirs = admin.get("/api/v1/namespaces/growth/datasets/raw.signups").await.expect(200).json();
    assert_eq!(theirs["tenant"], "growth");

    let versions = reader.get("/api/v1/namespaces/fraud/datasets/card_features/versions").await.expect(200).json();
    let list = versions["versions"].as_array().unwrap();
    let made: Vec<&Value> = list.iter().filter(|v| !v["createdByRun"].is_null()).collect();
    assert_eq!(made.len(), 1, "one version per COMPLETE: {versions:#}");

    let jobs = reader.get("/api/v1/namespaces/fraud/jobs").await.expect(200).json();
    assert_eq!(jobs["totalCount"], 1, "{jobs:#}");
    let j = &jobs["jobs"][0];
    assert_eq!(j["id"], json!({"namespace": "fraud", "name": "score_cards"}));
    assert_eq!(j["inputs"], json!([ds("growth", "raw.signups")]));
    assert_eq!(j["outputs"], json!([ds("fraud", "card_features")]));
    assert_eq!(j["latestRun"]["id"], run_id(2));
    assert_eq!(j["latestRun"]["state"], "COMPLETED");
    assert_eq!(j["location"], "https://git.example/fraud/secret-repo");
    assert_eq!(j["description"], "secret-job-doc");
    assert_eq!(reader.get("/api/v1/namespaces/fraud/jobs/score_cards").await.expect(200).json()["name"], "score_cards");
    reader.get("/api/v1/namespaces/growth/jobs/ingest_signups").await.expect(404);

    let runs = reader.get("/api/v1/namespaces/fraud/jobs/score_cards/runs").await.expect(200).json();
    assert_eq!(runs["totalCount"], 1, "{runs:#}");
    let r = &runs["runs"][0];
    assert_eq!((r["id"].as_str(), r["state"].as_str()), (Some(run_id(2).as_str()), Some("COMPLETED")));
    assert_eq!(r["durationMs"], 3 * 60_000);
    assert_eq!((r["startedAt"].as_str(), r["endedAt"].as_str()), (Some(at(5).as_str()), Some(at(8).as_str())));
    assert_eq!(r["jobVersion"], json!({"namespace": "fraud", "name": "score_cards"}));
    assert_eq!(r["inputDatasetVersions"], json!([ds("growth", "raw.signups")]));
    let run = reader.get(&format!("/api/v1/runs/{}", run_id(2))).await.expect(200).json();
    assert_eq!((run["id"].as_str(), run["state"].as_str()), (Some(run_id(2).as_str()), Some("COMPLETED")));
    let same = reader.get(&format!("/api/v1/jobs/runs/{}", run_id(2).to_uppercase())).await.expect(200).json();
    assert_eq!(same, run);
    reader.get(&format!("/api/v1/runs/{}", run_id(1))).await.expect(404);
    assert_eq!(admin.get(&format!("/api/v1/runs/{}", run_id(1))).await.expect(200).json()["tenant"], "growth");

    let found = reader.get("/api/v1/search?q=card_features").await.expect(200).json();
    let hit = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["nodeId"] == "dataset:fraud:card_features")
        .unwrap_or_else(|| panic!("no card_features in {found:#}"));
    assert_eq!(
        (hit["type"].as_str(), hit["namespace"].as_str(), hit["name"].as_str()),
        (Some("DATASET"), Some("fraud"), Some("card_features"))
    );
    let jobs_only = reader.get("/api/v1/search?q=score_cards&filter=JOB").await.expect(200).json();
    let ids: Vec<&str> =
        jobs_only["results"].as_array().unwrap().iter().map(|r| r["nodeId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["job:fraud:score_cards"], "{jobs_only:#}");
    reader.get("/api/v1/search?q=x&filter=RUN").await.expect(400);

    let events = reader.get("/api/v1/events/lineage").await.expect(200).json();
    assert_eq!(events["totalCount"], 2, "fraud-reader reads fraud's events only: {events:#}");
    let kinds: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["COMPLETE", "START"], "newest first");
    assert!(events["events"].as_array().unwrap().iter().all(|e| e["job"]["namespace"] == "fraud"));
    assert_eq!(events["events"][0], score("COMPLETE", 8), "events are returned as sent");
    let every = admin.get("/api/v1/events/lineage?sortDirection=asc&limit=3").await.expect(200).json();
    assert_eq!(every["totalCount"], 4, "{every:#}");
    let times: Vec<&str> =
        every["events"].as_array().unwrap().iter().map(|e| e["eventTime"].as_str().unwrap()).collect();
    assert_eq!(times, [at(1), at(2), at(5)]);

    // Dataset versions are listed newest first, as Marquez lists them: the current one, made by
    // the completed run, comes first.
    let versions = reader.get("/api/v1/namespaces/fraud/datasets/card_features/versions").await.expect(200).json();
    assert_eq!(versions["versions"][0]["version"], dataset["currentVersion"], "newest first: {versions:#}");
    assert_eq!(versions["versions"][0]["createdByRun"], json!({"id": run_id(2)}), "{versions:#}");
    mesh.shutdown().await;
}
