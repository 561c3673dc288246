//! `meshctl audit consistency` against a real node: the proof between two signed checkpoints
//! verifies (roots, and signatures with --shard-key); another key, a size without a checkpoint
//! under --shard-key, and a bad size fail with exit 1.

mod common;

use std::sync::Arc;

use common::*;
use metamesh_core::{Command, Proposal};

/// Signs and proposes a checkpoint over the log so far; returns its size.
fn take_checkpoint(mesh: &Mesh, key: &Arc<metamesh_audit::ShardKey>, at_ms: i64) -> u64 {
    let node = mesh.node();
    mesh.block_on(async {
        let store = node.replica.local_store();
        let cp = store.audit_checkpoint(key.clone(), SHARD.into(), at_ms).await.unwrap().unwrap();
        let command = Command::AuditCheckpoint { checkpoint: serde_json::to_value(&cp).unwrap() };
        let reply = node.replica.write(Proposal::new(command, cp.at_ms, "test/checkpoints")).await.unwrap();
        assert!(reply.applied.unwrap().result.is_ok());
        cp.size
    })
}

#[test]
fn audit_consistency_between_two_checkpoints() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    mesh.ok(&["put", "mm://fraud/dataset/a", "--props", "{}"]);
    mesh.ok(&["put", "mm://fraud/dataset/b", "--props", "{}"]);
    let key = Arc::new(metamesh_audit::ShardKey::generate());
    let public = mesh.file("shard.pub.pem", &key.public_key_pem());
    let public = public.to_str().unwrap();
    let a = take_checkpoint(&mesh, &key, 1_700_000_000_000).to_string();
    for name in ["c", "d", "e"] {
        mesh.ok(&["put", &format!("mm://fraud/dataset/{name}"), "--props", "{}"]);
    }
    let b = take_checkpoint(&mesh, &key, 1_700_000_060_000).to_string();

    // JSON: the proof, both checkpoints, verified with signatures.
    let v = mesh.json(&["audit", "consistency", "--old", &a, "--new", &b, "--shard-key", public]);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["signatures_checked"], true, "{v}");
    assert_eq!(v["proof"]["old_size"].to_string(), a);
    assert_eq!(v["proof"]["new_size"].to_string(), b);
    let proof: metamesh_audit::ConsistencyProof = serde_json::from_value(v["proof"].clone()).unwrap();
    let old: metamesh_audit::Checkpoint = serde_json::from_value(v["old_checkpoint"].clone()).unwrap();
    let new: metamesh_audit::Checkpoint = serde_json::from_value(v["new_checkpoint"].clone()).unwrap();
    metamesh_audit::check_consistency(&old, &new, &proof, &[key.verifying_key()]).unwrap();

    // Table, --new defaulting to the latest checkpoint, no key: roots only, said so.
    let table = mesh.ok(&["audit", "consistency", "--old", &a]);
    assert!(table.contains("ok (roots; signatures not checked"), "{table}");
    assert!(table.contains(&b), "{table}");

    // Another key: the signatures do not check.
    let other = mesh.file("other.pub.pem", &metamesh_audit::ShardKey::generate().public_key_pem());
    let refused = mesh.run(&["audit", "consistency", "--old", &a, "--shard-key", other.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("does not verify"), "{refused:?}");

    // Size 1 has no checkpoint: printed but not checked (an error only when a check is asked).
    let unchecked = mesh.run(&["audit", "consistency", "--old", "1", "--new", &b]);
    assert_eq!(unchecked.code, 0, "{unchecked:?}");
    assert!(unchecked.stderr.contains("not checked: no checkpoint of size 1"), "{unchecked:?}");
    let asked = mesh.run(&["audit", "consistency", "--old", "1", "--new", &b, "--shard-key", public]);
    assert_eq!(asked.code, 1, "{asked:?}");

    // Bad sizes: the node's refusal names the field.
    let zero = mesh.run(&["audit", "consistency", "--old", "0"]);
    assert_eq!(zero.code, 1, "{zero:?}");
    assert!(zero.stderr.contains("old_size"), "{zero:?}");
    let beyond = mesh.run(&["audit", "consistency", "--old", "1", "--new", "100000"]);
    assert_eq!(beyond.code, 1, "{beyond:?}");
    assert!(beyond.stderr.contains("new_size") && beyond.stderr.contains("OUT_OF_RANGE"), "{beyond:?}");
}
