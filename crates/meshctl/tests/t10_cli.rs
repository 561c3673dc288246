//! The real `meshctl` binary against a real node over mutual TLS: every check reads what a user
//! would see (stdout, stderr, the exit code), in table and JSON form.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const RAW: &str = "mm://fraud/dataset/raw";
const SMALL: &str = "mm://fraud/dataset/small";
const RUN: &str = "mm://fraud/run/train-1";
const MODEL: &str = "mm://fraud/model/scorer";

fn urns(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v["urn"].as_str().expect("urn")).collect()
}

#[test]
fn catalog_reads_writes_lineage_and_search() {
    let mesh = Mesh::start();
    assert!(mesh.ok(&["tenant", "create", "fraud"]).contains("created tenant fraud"));
    let tenants = mesh.json_lines(&["tenant", "list"]);
    assert_eq!(tenants.iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(), ["fraud"]);

    // put, then get as a table and as JSON.
    let props = r#"{"rows": 500, "format": "parquet"}"#;
    let put = mesh.ok(&[
        "put",
        RAW,
        "--props",
        props,
        "--tag",
        "pii",
        "--owner",
        "data-eng",
        "--description",
        "raw card transactions",
    ]);
    assert!(put.contains(&format!("{RAW}@1")), "{put}");
    let table = mesh.ok(&["get", RAW]);
    for expected in [format!("{RAW}@1"), "\"rows\": 500".into(), "pii".into(), "data-eng".into(), "spiffe://".into()] {
        assert!(table.contains(&expected), "{expected:?} missing from:\n{table}");
    }
    let v1 = mesh.json(&["get", RAW]);
    assert_eq!(v1["entity"]["properties"]["rows"], 500);
    assert_eq!(v1["entity"]["version"], 1);
    assert_eq!(v1["entity"]["tags"], serde_json::json!(["pii"]));
    let rev1 = v1["entity"]["revision"].as_u64().unwrap().to_string();

    // A second version; the first stays readable by version and as of its revision.
    let props_file = mesh.file("props.json", r#"{"rows": 600, "format": "parquet"}"#);
    // A put replaces the whole state: what is not sent again (tags, owner) is gone from v2.
    let props_arg = format!("@{}", props_file.display());
    let v2 = mesh.json(&[
        "put",
        RAW,
        "--props",
        &props_arg,
        "--description",
        "raw card transactions",
        "--expect-version",
        "1",
    ]);
    assert_eq!(v2["entity"]["tags"], serde_json::json!([]));
    assert_eq!((v2["entity"]["version"].as_u64(), v2["entity"]["properties"]["rows"].as_u64()), (Some(2), Some(600)));
    assert_eq!(mesh.json(&["get", &format!("{RAW}@1")])["entity"]["properties"]["rows"], 500);
    assert_eq!(mesh.json(&["get", RAW, "--as-of-revision", &rev1])["entity"]["version"], 1);
    let versions = mesh.json_lines(&["versions", RAW]);
    assert_eq!(versions.iter().map(|v| v["version"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 1]);
    // Read-your-writes through a follower-style read.
    let rev2 = v2["revision"].as_u64().unwrap();
    let fresh = mesh.json(&["--consistency", &format!("min-revision={rev2}"), "get", RAW]);
    assert_eq!(fresh["entity"]["version"], 2);

    // list with a property filter: only the big dataset.
    mesh.ok(&["put", SMALL, "--props", r#"{"rows": 5}"#]);
    assert_eq!(urns(&mesh.json_lines(&["list", "--tenant", "fraud", "--prop", "rows > 100"])), [RAW]);
    assert_eq!(urns(&mesh.json_lines(&["list", "--tenant", "fraud", "--prop", "format = parquet"])), [RAW]);
    let listed = mesh.ok(&["list", "--tenant", "fraud", "--prop", "rows<=100"]);
    assert!(listed.contains(SMALL) && !listed.contains(RAW), "{listed}");
    assert!(listed.lines().next().unwrap().starts_with("URN"), "{listed}");
    assert_eq!(urns(&mesh.json_lines(&["list", "--kind", "dataset"])), [RAW, SMALL]);

    // Edges and lineage.
    mesh.ok(&["put", RUN]);
    mesh.ok(&["put", MODEL]);
    let added = mesh.json(&["edge", "add", RAW, "consumed", RUN]);
    assert_eq!(added["edges"][0]["from_version"], 2, "an unversioned end is pinned to the current version");
    assert!(mesh.ok(&["edge", "add", RUN, "produced", MODEL]).contains("produced"));
    let up = mesh.json(&["lineage", MODEL, "--direction", "up"]);
    let mut nodes: Vec<&str> = urns(up["nodes"].as_array().unwrap());
    nodes.sort();
    assert_eq!(nodes, [RAW, MODEL, RUN]);
    assert_eq!(up["edges"].as_array().unwrap().len(), 2);
    assert_eq!(up["partial"], false);
    let table = mesh.ok(&["lineage", MODEL, "--direction", "upstream"]);
    assert!(table.contains("consumed") && table.contains("produced") && table.contains(RAW), "{table}");
    let cut = mesh.ok(&["lineage", MODEL, "--direction", "up", "--max-nodes", "2"]);
    assert!(cut.contains("partial: MAX_NODES"), "{cut}");
    assert_eq!(mesh.json(&["lineage", RAW, "--direction", "up"])["nodes"].as_array().unwrap().len(), 1);
    assert!(mesh.ok(&["edge", "rm", RUN, "produced", MODEL]).contains("removed 1 edge"));
    assert_eq!(mesh.json(&["lineage", MODEL, "--direction", "up"])["edges"].as_array().unwrap().len(), 0);

    // Search, over descriptions and attached documents.
    let hits = mesh.json_lines(&["search", "transactions"]);
    assert_eq!(hits.iter().map(|h| h["entity"]["urn"].as_str().unwrap()).collect::<Vec<_>>(), [RAW]);
    let card = mesh.file("card.md", "# Data card\n\nCollected by the zanzibar pipeline.\n");
    mesh.ok(&["doc", "put", SMALL, "Data card", &format!("@{}", card.display())]);
    let docs = mesh.json_lines(&["doc", "list", SMALL]);
    assert_eq!((docs.len(), docs[0]["title"].as_str(), docs[0]["version"].as_u64()), (1, Some("Data card"), Some(1)));
    assert!(mesh.ok(&["search", "zanzibar", "--kind", "dataset"]).contains(SMALL));
    assert!(mesh.json_lines(&["search", "zanzibar", "--kind", "model"]).is_empty());

    // Delete: the entity is gone from reads (a refusal, exit 1) but its history stays.
    assert!(mesh.ok(&["delete", SMALL]).contains("deleted"));
    let gone = mesh.run(&["get", SMALL]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.stderr.contains("NOT_FOUND"), "{gone:?}");
    assert_eq!(mesh.json_lines(&["versions", SMALL]).len(), 2);
}

#[test]
fn refusals_print_code_and_field_and_exit_1() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    let schema =
        mesh.file("table.json", r#"{"type":"object","properties":{"rows":{"type":"integer"}},"required":["rows"]}"#);
    // Renames `rows`: incompatible unless a migration maps old data.
    let breaking = mesh.file(
        "renamed.json",
        r#"{"type":"object","properties":{"row_count":{"type":"integer"}},"required":["row_count"]}"#,
    );
    let schema = format!("@{}", schema.display());
    let breaking = format!("@{}", breaking.display());
    assert!(mesh.ok(&["schema", "register", "fraud", "Table", "dataset", &schema]).contains("backward"));
    assert_eq!(mesh.json(&["schema", "get", "fraud", "Table"])["version"], 1);

    // The dry run says no (exit 1) and why; nothing is registered.
    let check = mesh.run(&["schema", "check", "fraud", "Table", "dataset", &breaking]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("incompatible with version 1"), "{check:?}");
    let migration = r#"{"steps":[{"op":"rename","from":"rows","to":"row_count"}]}"#;
    mesh.ok(&["schema", "check", "fraud", "Table", "dataset", &breaking, "--migration", migration]);
    assert_eq!(mesh.json(&["schema", "get", "fraud", "Table"])["version"], 1);

    // A schema violation names the `properties` field.
    let violation = mesh.run(&["put", "mm://fraud/dataset/t", "--type", "Table", "--props", r#"{"rows":"many"}"#]);
    assert_eq!(violation.code, 1, "{violation:?}");
    assert!(violation.stderr.contains("INVALID_ARGUMENT"), "{violation:?}");
    assert!(violation.stderr.contains("field `properties`: invalid_argument"), "{violation:?}");
    mesh.ok(&["put", "mm://fraud/dataset/t", "--type", "Table", "--props", r#"{"rows":1}"#]);

    // A malformed URN names `urn`, in text and in the JSON error document.
    let malformed = mesh.run(&["put", "mm://fraud/dataset"]);
    assert_eq!(malformed.code, 1, "{malformed:?}");
    assert!(malformed.stderr.contains("field `urn`: invalid_argument"), "{malformed:?}");
    let json = run(mesh.cmd(&["--output", "json", "put", "not-a-urn"]).stdout(Stdio::null()));
    assert_eq!(json.code, 1, "{json:?}");
    let doc: Value = serde_json::from_str(json.stderr.trim()).expect("a JSON error document");
    assert_eq!(doc["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(doc["error"]["details"][0]["field"], "urn");

    // Optimistic concurrency: a stale expect-version is FAILED_PRECONDITION.
    let conflict = mesh.run(&[
        "put",
        "mm://fraud/dataset/t",
        "--type",
        "Table",
        "--props",
        r#"{"rows":2}"#,
        "--expect-version",
        "7",
    ]);
    assert_eq!(conflict.code, 1, "{conflict:?}");
    assert!(conflict.stderr.contains("FAILED_PRECONDITION"), "{conflict:?}");
}

#[test]
fn usage_errors_exit_2_and_an_unreachable_node_exits_3() {
    // Certificates of a mesh whose node is not running: the CLI can load them but not connect.
    let dir = tempfile::tempdir().unwrap();
    let ca = metamesh_tls::MeshCa::generate(DOMAIN).unwrap();
    let certs = client_bundle(dir.path(), &ca, "alice");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = meshctl();
        cmd.arg("--addr").arg(free.to_string()).arg("--ca").arg(&certs.ca_cert);
        cmd.arg("--cert").arg(&certs.cert).arg("--key").arg(&certs.key).args(args);
        cmd
    };

    let down = run(&mut cli(&["tenant", "list"]));
    assert_eq!(down.code, 3, "{down:?}");
    assert!(down.stderr.contains(&format!("node {free} is unreachable")), "{down:?}");

    // A missing certificate file: exit 2, naming the file and the flag.
    let missing = dir.path().join("bob.pem");
    let mut cmd = cli(&["tenant", "list"]);
    cmd.arg("--cert").arg(&missing);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&missing.display().to_string()) && r.stderr.contains("--cert"), "{r:?}");
    // The same through the environment, and with no certificate at all.
    let r = run(meshctl().env("METAMESH_CERT", &missing).env("METAMESH_KEY", &certs.key).args(["tenant", "list"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("certs/ca.pem"), "the default --ca is named: {r:?}");
    let r = run(meshctl().args(["--ca", certs.ca_cert.to_str().unwrap(), "tenant", "list"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--cert"), "{r:?}");

    // Bad arguments are found before dialling, so they are usage errors even with the node down.
    let bad_props = run(&mut cli(&["put", "mm://a/dataset/x", "--props", "{rows"]));
    assert_eq!(bad_props.code, 2, "{bad_props:?}");
    assert!(bad_props.stderr.contains("--props is not valid JSON"), "{bad_props:?}");
    let bad_line = dir.path().join("bad.jsonl");
    std::fs::write(&bad_line, "{\"urn\":\"mm://a/dataset/x\"}\n{\"urn\":\"mm://a/dataset/y\",\"tagz\":[]}\n").unwrap();
    let r = run(&mut cli(&["import", bad_line.to_str().unwrap()]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.jsonl:2"), "{r:?}");
    let r = run(&mut cli(&["import", dir.path().join("absent.jsonl").to_str().unwrap()]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("absent.jsonl"), "{r:?}");
    let r = run(&mut cli(&["list", "--prop", "rows ~ 3"]));
    assert_eq!(r.code, 2, "clap reports bad values: {r:?}");
    let r = run(&mut cli(&["--consistency", "eventual", "list"]));
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn import_writes_batches_once_and_a_rerun_changes_nothing() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "bulk"]);
    let mut lines = String::from("# generated\n");
    for i in 0..1200 {
        lines.push_str(&format!(
            "{{\"urn\":\"mm://bulk/dataset/d{i:04}\",\"properties\":{{\"i\":{i}}},\"tags\":[\"gen\"],\"owner\":\"etl\"}}\n"
        ));
    }
    let file = mesh.file("datasets.jsonl", &lines);
    let file = file.to_str().unwrap();

    let first = mesh.ok(&["import", file]);
    assert!(first.contains("imported 1200 entities") && first.contains("in 3 batches"), "{first}");
    let listed = mesh.json_lines(&["list", "--tenant", "bulk", "--all"]);
    assert_eq!(listed.len(), 1200);
    assert!(listed.iter().all(|e| e["version"] == 1 && e["owner"] == "etl"));
    assert_eq!(listed[42]["properties"]["i"], 42);

    // The same file again: every batch is answered from its first result.
    let again = mesh.json(&["import", file, "--batch", "500"]);
    assert_eq!((again["entities"].as_u64(), again["batches"].as_u64()), (Some(1200), Some(3)));
    let listed = mesh.json_lines(&["list", "--tenant", "bulk", "--all", "--limit", "700"]);
    assert_eq!(listed.len(), 1200, "--all follows page tokens");
    assert!(listed.iter().all(|e| e["version"] == 1), "a re-run wrote new versions");

    // Without --all, --limit caps the listing and says there is more.
    let capped = mesh.run(&["--output", "json", "list", "--tenant", "bulk", "--limit", "50"]);
    assert_eq!(capped.stdout.lines().count(), 50);
    assert!(capped.stderr.contains("--all"), "{capped:?}");
}

#[test]
fn watch_streams_changes_until_ctrl_c_and_prints_the_resume_revision() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    let put = mesh.json(&["put", RAW]);
    let first_revision = put["revision"].as_u64().unwrap();

    let mut child = mesh
        .cmd(&["--output", "json", "watch", "--from-revision", "0", "--tenant", "fraud"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("a JSON event"));
        }
    });
    let next_entity = |urn: &str| loop {
        let event = rx.recv_timeout(Duration::from_secs(10)).expect("an event within 10 s");
        if event["change"] == "entity_version" && event["urn"] == urn {
            return event;
        }
    };
    // Replayed from the beginning, then followed live.
    assert_eq!(next_entity(RAW)["revision"].as_u64(), Some(first_revision));
    let later = mesh.json(&["put", MODEL])["revision"].as_u64().unwrap();
    let live = next_entity(MODEL);
    assert_eq!(live["revision"].as_u64(), Some(later));
    assert_eq!(live["entity"]["version"], 1);

    let interrupted = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?} {stderr}");
    let resume: u64 = stderr
        .split("--from-revision ")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resume revision in {stderr:?}"));
    assert!(resume >= later, "resume point {resume} is before the last event {later}");
}

#[test]
fn admin_status_snapshot_and_health() {
    let mesh = Mesh::start();
    let status = mesh.json(&["admin", "status"]);
    assert_eq!((status["role"].as_str(), status["node_id"].as_u64()), (Some("leader"), Some(1)));
    assert_eq!(status["membership"]["voters"][0]["node_id"], 1);
    let table = mesh.ok(&["admin", "status"]);
    assert!(table.contains("leader") && table.contains("voter") && table.contains(SHARD), "{table}");
    assert!(mesh.ok(&["admin", "snapshot"]).contains("snapshot built up to log index"));
    let health = mesh.ok(&["health"]);
    assert!(health.contains("serving: yes") && health.contains("raft") && health.contains("store"), "{health}");
    assert_eq!(mesh.json(&["health"])["serving"], true);
    // A learner needs a reachable node: refused or failed, it is the node's answer (exit 1).
    let voters = mesh.run(&["admin", "voters", "1,9"]);
    assert_eq!(voters.code, 1, "{voters:?}");
}

#[test]
fn tls_misconfiguration_is_a_configuration_error() {
    let mesh = Mesh::start();
    // A server name the node's certificate does not carry.
    let r = mesh.run(&["--server-name", "elsewhere.example", "tenant", "list"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("tls handshake") && r.stderr.contains("--server-name"), "{r:?}");

    // Certificates of another mesh: the node's certificate is not trusted.
    let foreign = metamesh_tls::MeshCa::generate("other.mesh").unwrap();
    let other = client_bundle(&mesh.dir.path().join("other"), &foreign, "mallory");
    let r = run(mesh.cmd(&["tenant", "list"]).env("METAMESH_CA", &other.ca_cert));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("tls handshake"), "{r:?}");

    // Our CA but a certificate the node does not trust.
    let r = run(mesh.cmd(&["tenant", "list"]).env("METAMESH_CERT", &other.cert).env("METAMESH_KEY", &other.key));
    // With TLS 1.3 the node refuses it after the handshake, on the first call: either the alert
    // arrives (a configuration error) or the connection just closes (like a dropped node).
    assert!(r.code == 2 || r.code == 3, "{r:?}");
    assert!(r.stderr.contains("--cert") || r.stderr.contains("tls"), "{r:?}");
}
