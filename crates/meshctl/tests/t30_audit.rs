//! `meshctl audit` against a real node: list with filters, verify, checkpoint, a proof printed
//! by `prove` that `check-proof` accepts offline (and a tampered one it refuses), and export.

mod common;

use std::sync::Arc;

use common::*;
use metamesh_core::{Command, Proposal};

#[test]
fn audit_list_verify_checkpoint_prove_and_export() {
    let mesh = Mesh::start();
    mesh.ok(&["tenant", "create", "fraud"]);
    mesh.ok(&["put", "mm://fraud/dataset/raw", "--props", "{}"]);
    mesh.ok(&["put", "mm://fraud/dataset/small", "--props", "{}"]);

    // list: JSON lines are the records as metamesh-audit writes them (they hash to themselves).
    let records = mesh.json_lines(&["audit", "list"]);
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records {
        let record: metamesh_audit::AuditRecord = serde_json::from_value(r.clone()).expect("an audit record");
        assert!(record.is_intact(), "{r}");
    }
    assert_eq!(records[0]["action"], "tenant.create");
    let writes = mesh.json_lines(&["audit", "list", "--tenant", "fraud", "--action", "write", "--decision", "allow"]);
    assert_eq!(
        writes.iter().map(|r| r["resource"].as_str().unwrap()).collect::<Vec<_>>(),
        ["mm://fraud/dataset/raw", "mm://fraud/dataset/small"]
    );
    assert!(mesh.json_lines(&["audit", "list", "--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(mesh.json_lines(&["audit", "list", "--limit", "2"]).len(), 2);
    let table = mesh.ok(&["audit", "list"]);
    assert!(table.starts_with("SEQ") && table.contains("tenant.create") && table.contains("allow"), "{table}");

    // verify: ok; checkpoint: none yet (exit 1, NOT_FOUND).
    assert!(mesh.ok(&["audit", "verify"]).starts_with("ok: shard s1: 3 records"));
    let none = mesh.run(&["audit", "checkpoint"]);
    assert_eq!(none.code, 1, "{none:?}");
    assert!(
        none.stderr.to_lowercase().contains("not_found") || none.stderr.contains("no signed checkpoint"),
        "{none:?}"
    );

    // The leader signs a checkpoint (as the node's checkpoint task does).
    let key = Arc::new(metamesh_audit::ShardKey::generate());
    let public = mesh.file("shard.pub.pem", &key.public_key_pem());
    let public = public.to_str().unwrap();
    let node = mesh.node();
    mesh.block_on(async {
        let store = node.replica.local_store();
        let cp = store.audit_checkpoint(key.clone(), SHARD.into(), 1_700_000_000_000).await.unwrap().unwrap();
        let command = Command::AuditCheckpoint { checkpoint: serde_json::to_value(&cp).unwrap() };
        let reply = node.replica.write(Proposal::new(command, cp.at_ms, "test/checkpoints")).await.unwrap();
        assert!(reply.applied.unwrap().result.is_ok());
    });
    let cp = mesh.json(&["audit", "checkpoint", "--shard-key", public]);
    assert_eq!((cp["size"].as_u64(), cp["shard"].as_str()), (Some(3), Some(SHARD)));
    let verified = mesh.ok(&["audit", "verify", "--shard-key", public]);
    assert!(
        verified.contains("1 checkpoint roots matched") && verified.contains("signed by the given key"),
        "{verified}"
    );

    // prove → check-proof, offline (no certificates, no node).
    let proof = mesh.ok(&["audit", "prove", "2"]);
    let bundle: metamesh_audit::ProofBundle = serde_json::from_str(&proof).expect("a ProofBundle");
    bundle.check(&[key.verifying_key()]).expect("the proof checks");
    let proof_file = mesh.file("proof.json", &proof);
    let checked = run(meshctl().args(["audit", "check-proof", proof_file.to_str().unwrap(), "--shard-key", public]));
    assert_eq!(checked.code, 0, "{checked:?}");
    assert!(checked.stdout.starts_with("ok: record 2 (write mm://fraud/dataset/raw"), "{checked:?}");
    let tampered = mesh.file("tampered.json", &proof.replace("mm://fraud/dataset/raw", "mm://fraud/dataset/RAW"));
    let refused = run(meshctl().args(["audit", "check-proof", tampered.to_str().unwrap(), "--shard-key", public]));
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("does not check"), "{refused:?}");
    let not_covered = mesh.run(&["audit", "prove", "99"]);
    assert_eq!(not_covered.code, 1, "{not_covered:?}");
    assert!(not_covered.stderr.contains("seq"), "{not_covered:?}");

    // export: JSONL records and a CSV with a header and a row per record.
    let listed = mesh.json_lines(&["audit", "list", "--all"]).len();
    let jsonl = mesh.ok(&["audit", "export"]);
    assert_eq!(jsonl.lines().count(), listed);
    for line in jsonl.lines() {
        let record: metamesh_audit::AuditRecord = serde_json::from_str(line).expect("a JSON record per line");
        assert!(record.is_intact());
    }
    let csv = mesh.ok(&["audit", "export", "--format", "csv", "--tenant", "fraud"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,at_ms,principal,tenant,action"), "{csv}");
    assert_eq!(lines.len(), 1 + 3, "{csv}");
}
