//! The real `meshctl` binary for the newer node RPCs: `admin remove-learner`, `admin voters
//! --retain-as-learners`, `admin shard-map`, `schema types`, `doc list --all-versions
//! --include-deleted`, and bounded-staleness reads (`--max-staleness`).

mod common;

use common::*;

const M: &str = "mm://fraud/model/scorer";

fn node_ids(members: &serde_json::Value) -> Vec<u64> {
    members.as_array().expect("members").iter().map(|m| m["node_id"].as_u64().unwrap()).collect()
}

#[test]
fn learners_are_added_and_removed_and_the_shard_map_shows_them() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    let added = mesh.json(&["admin", "add-learner", "2", "127.0.0.1:7002", "--no-wait"]);
    assert_eq!(node_ids(&added["membership"]["learners"]), [2]);

    let map = mesh.json(&["admin", "shard-map"]);
    assert_eq!(map["groups"][0]["id"], SHARD);
    assert_eq!(map["groups"][0]["tenants"], serde_json::json!(["fraud"]));
    assert_eq!(node_ids(&map["groups"][0]["members"]), [1, 2]);
    let table = mesh.ok(&["admin", "shard-map"]);
    assert!(table.contains("127.0.0.1:7002") && table.contains("fraud"), "{table}");

    // A voter is not a learner; an unknown id is not found: refusals (exit 1) naming the field.
    let voter = mesh.run(&["admin", "remove-learner", "1"]);
    assert_eq!(voter.code, 1, "{voter:?}");
    assert!(voter.stderr.contains("FAILED_PRECONDITION") && voter.stderr.contains("node_id"), "{voter:?}");
    let unknown = mesh.run(&["admin", "remove-learner", "9"]);
    assert!(unknown.code == 1 && unknown.stderr.contains("NOT_FOUND"), "{unknown:?}");

    let removed = mesh.ok(&["admin", "remove-learner", "2"]);
    assert!(removed.contains("voter") && !removed.contains("learner"), "{removed}");
    assert_eq!(node_ids(&mesh.json(&["admin", "shard-map"])["groups"][0]["members"]), [1]);
    let stranger = mesh.run(&["admin", "voters", "1,9", "--retain-as-learners"]);
    assert!(stranger.code == 1 && stranger.stderr.contains("node 9"), "{stranger:?}");
}

#[test]
fn types_and_document_history() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    mesh.ok(&["schema", "register", "fraud", "Table", "dataset", r#"{"type":"object"}"#]);
    mesh.ok(&["schema", "register", "fraud", "Model", "model", r#"{"type":"object"}"#]);
    let types = mesh.json_lines(&["schema", "types", "fraud"]);
    let names: Vec<&str> = types.iter().map(|t| t["type_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Model", "Table"]);
    let models = mesh.json_lines(&["schema", "types", "fraud", "--kind", "model"]);
    assert_eq!(models.len(), 1);
    let table = mesh.ok(&["schema", "types", "fraud"]);
    assert!(table.contains("BASE_KIND") && table.contains("backward"), "{table}");
    let bad = mesh.run(&["schema", "types", "fraud", "--kind", "spaceship"]);
    assert!(bad.code == 1 && bad.stderr.contains("base_kind"), "{bad:?}");

    mesh.ok(&["put", M]);
    mesh.ok(&["doc", "put", M, "card", "first"]);
    mesh.ok(&["doc", "put", M, "card", "second"]);
    mesh.ok(&["doc", "put", M, "runbook", "page someone"]);
    mesh.ok(&["doc", "rm", M, "runbook"]);
    let shown = |args: &[&str]| -> Vec<(String, u64, bool)> {
        mesh.json_lines(&[&["doc", "list", M], args].concat())
            .iter()
            .map(|d| (d["title"].as_str().unwrap().to_owned(), d["version"].as_u64().unwrap(), d["deleted"] == true))
            .collect()
    };
    let d = |t: &str, v: u64, deleted: bool| (t.to_owned(), v, deleted);
    assert_eq!(shown(&[]), [d("card", 2, false)]);
    assert_eq!(shown(&["--all-versions"]), [d("card", 2, false), d("card", 1, false)]);
    assert_eq!(
        shown(&["--all-versions", "--include-deleted"]),
        [d("card", 2, false), d("card", 1, false), d("runbook", 2, true), d("runbook", 1, false)]
    );
    let history = mesh.ok(&["doc", "list", M, "--include-deleted"]);
    assert!(history.contains("2 (deleted)"), "{history}");
}

#[test]
fn bounded_staleness_reads() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    let put = mesh.json(&["put", M]);
    let rev = put["revision"].as_u64().unwrap().to_string();
    // The single node leads its group: it is confirmed current by its own quorum.
    let got = mesh.json(&["--max-staleness", "5s", "get", M]);
    assert_eq!(got["entity"]["version"], 1);
    let both = mesh.json(&["--max-staleness", "5s", "--consistency", &format!("min-revision={rev}"), "get", M]);
    assert_eq!(both["entity"]["version"], 1);
    let from_env = run(mesh.cmd(&["get", M]).env("METAMESH_MAX_STALENESS", "2500ms"));
    assert_eq!(from_env.code, 0, "{from_env:?}");

    // Usage errors, before anything is sent.
    let contradiction = mesh.run(&["--max-staleness", "5s", "--consistency", "linearizable", "get", M]);
    assert!(contradiction.code == 2 && contradiction.stderr.contains("--max-staleness"), "{contradiction:?}");
    for bad in ["soon", "0ms", "2h"] {
        let r = mesh.run(&["--max-staleness", bad, "get", M]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
    }
}
