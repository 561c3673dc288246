//! GetConsistencyProof over a real node: a proof between two signed checkpoints verifies
//! against their roots (and a tampered one does not), sizes that are not checkpoints' are
//! proved too, a witness accepts the node's growth, and bad sizes are refused naming the field.

mod common;

use std::sync::Arc;

use common::*;
use metamesh_audit::merkle::Frontier;
use metamesh_audit::{check_consistency, verify_consistency, Checkpoint, ConsistencyError, ConsistencyProof, ShardKey};
use metamesh_core::{Command, Proposal};
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_testkit::policy::write_policy;
use metamesh_tls::{MeshCa, Role};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Code;

/// A node where `ops` administers the mesh, `audrey` audits it and `alice` writes tenant fraud.
async fn start() -> Node {
    let ca = MeshCa::generate(DOMAIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = |name| ca.spiffe_id(Role::Client, name);
    let global = format!("g, {}, role:mesh-admin, *\ng, {}, role:compliance-auditor, *\n", id("ops"), id("audrey"));
    let fraud = format!("g, {}, role:writer, fraud\n", id("alice"));
    write_policy(&dir.path().join("policies"), &global, &[("fraud", &fraud)]);
    Node::start_with(ca, dir).await
}

async fn audit(node: &Node, who: &str) -> AuditServiceClient<Channel> {
    AuditServiceClient::new(node.channel(Role::Client, who).await)
}

/// Signs a checkpoint over the log so far, as the leader's checkpoint task does, proposes it
/// through Raft, and returns it as the node serves it.
async fn take_checkpoint(node: &Node, key: &Arc<ShardKey>, at_ms: i64) -> Checkpoint {
    let store = node.replica.local_store();
    let cp = store.audit_checkpoint(key.clone(), SHARD.into(), at_ms).await.unwrap().expect("new records to sign");
    let command = Command::AuditCheckpoint { checkpoint: serde_json::to_value(&cp).unwrap() };
    let reply = node.replica.write(Proposal::new(command, at_ms, "test/checkpoints")).await.unwrap();
    assert!(reply.applied.unwrap().result.is_ok());
    let request = v1::GetCheckpointRequest { tree_size: Some(cp.size), ..Default::default() };
    let served = audit(node, "audrey").await.get_checkpoint(request).await.unwrap().into_inner();
    let served = metamesh_proto::convert::checkpoint("checkpoint", &served).unwrap();
    assert_eq!(served, cp);
    served
}

async fn write_entities(node: &Node, names: &[&str]) {
    let alice = node.channel(Role::Client, "alice").await;
    for name in names {
        put_entity(&alice, &format!("mm://fraud/dataset/{name}")).await;
    }
}

async fn consistency(
    client: &mut AuditServiceClient<Channel>,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, tonic::Status> {
    let request = v1::GetConsistencyProofRequest { shard: String::new(), old_size, new_size };
    let reply = client.get_consistency_proof(request).await?.into_inner();
    Ok(ConsistencyProof::from_slices(reply.old_size, reply.new_size, &reply.hashes).expect("32-byte hashes"))
}

/// The Merkle roots of the first `sizes` records, from the records the node exports.
async fn roots(client: &mut AuditServiceClient<Channel>, sizes: &[u64]) -> Vec<[u8; 32]> {
    let request = v1::ExportRequest { filter: None, format: v1::ExportFormat::Jsonl as i32 };
    let mut stream = client.export(request).await.unwrap().into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend(chunk.unwrap().data);
    }
    let mut frontier = Frontier::new();
    let mut out = vec![[0; 32]; sizes.len()];
    for line in String::from_utf8(bytes).unwrap().lines() {
        let record: metamesh_audit::AuditRecord = serde_json::from_str(line).unwrap();
        assert!(record.is_intact());
        frontier.push(&record.hash);
        for (i, &size) in sizes.iter().enumerate() {
            if frontier.size() == size {
                out[i] = frontier.root();
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_between_checkpoints_verify_against_the_signed_roots() {
    let node = start().await;
    let key = Arc::new(ShardKey::generate());
    let keys = [key.verifying_key()];
    create_tenant(&node.channel(Role::Client, "ops").await, "fraud").await;
    write_entities(&node, &["a", "b", "c"]).await;
    let a = take_checkpoint(&node, &key, 1_700_000_000_000).await;
    write_entities(&node, &["d", "e", "f", "g", "h"]).await;
    let b = take_checkpoint(&node, &key, 1_700_000_060_000).await;
    assert!(a.size >= 4 && b.size > a.size + 4, "{} then {}", a.size, b.size);
    let mut audrey = audit(&node, "audrey").await;

    // A to B: verifies against the two signed roots, with the new function and offline.
    let proof = consistency(&mut audrey, a.size, b.size).await.unwrap();
    assert_eq!((proof.old_size, proof.new_size), (a.size, b.size));
    assert!(!proof.hashes.is_empty());
    verify_consistency(a.size, &a.root, b.size, &b.root, &proof.hashes).unwrap();
    check_consistency(&a, &b, &proof, &keys).unwrap();
    // Any one hash flipped, a hash missing, or the roots swapped: it does not verify.
    for i in 0..proof.hashes.len() {
        let mut tampered = proof.hashes.clone();
        tampered[i][31] ^= 0x01;
        assert_eq!(
            verify_consistency(a.size, &a.root, b.size, &b.root, &tampered),
            Err(ConsistencyError::Mismatch { old_size: a.size, new_size: b.size }),
            "hash {i} flipped"
        );
    }
    let short = &proof.hashes[..proof.hashes.len() - 1];
    assert!(verify_consistency(a.size, &a.root, b.size, &b.root, short).is_err());
    assert!(verify_consistency(a.size, &b.root, b.size, &a.root, &proof.hashes).is_err());

    // new_size 0 means the latest checkpoint; equal sizes prove with no hashes.
    assert_eq!(consistency(&mut audrey, a.size, 0).await.unwrap(), proof);
    let same = consistency(&mut audrey, b.size, b.size).await.unwrap();
    assert!(same.hashes.is_empty());
    check_consistency(&b, &b, &same, &keys).unwrap();

    // Sizes that are not checkpoints' (here, from record 1 to the current end of the log,
    // beyond the latest checkpoint) prove against roots recomputed from the exported records.
    write_entities(&node, &["i"]).await;
    let records = audrey.verify(v1::VerifyRequest::default()).await.unwrap().into_inner().records_checked;
    assert!(records > b.size);
    let proof = consistency(&mut audrey, 1, records).await.unwrap();
    let r = roots(&mut audrey, &[1, a.size, records]).await;
    proof.verify(&r[0], &r[2]).unwrap();
    assert_eq!(r[1], a.root, "the exported records reproduce the signed root");

    // A witness (the router's) trusts A on first use, then accepts B with the node's proof.
    let mut witness = metamesh_audit::Witness::new();
    witness.trust(SHARD, keys);
    assert_eq!(witness.observe(&a, None), Ok(metamesh_audit::Accepted::First));
    let (old, new) = witness.proof_needed(&b).expect("a proof is needed");
    let proof = consistency(&mut audrey, old, new).await.unwrap();
    assert_eq!(witness.observe(&b, Some(&proof)), Ok(metamesh_audit::Accepted::Extended { from: a.size }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sizes_are_refused_naming_the_field() {
    let node = start().await;
    let key = Arc::new(ShardKey::generate());
    create_tenant(&node.channel(Role::Client, "ops").await, "fraud").await;
    write_entities(&node, &["a", "b"]).await;
    let mut audrey = audit(&node, "audrey").await;

    // No checkpoint yet: the latest one cannot be the new size, but explicit sizes prove.
    assert_refused(consistency(&mut audrey, 1, 0).await, Code::FailedPrecondition, "new_size");
    consistency(&mut audrey, 1, 2).await.unwrap();

    let cp = take_checkpoint(&node, &key, 1_700_000_000_000).await;
    let records = audrey.verify(v1::VerifyRequest::default()).await.unwrap().into_inner().records_checked;
    assert_refused(consistency(&mut audrey, 0, 0).await, Code::InvalidArgument, "old_size");
    assert_refused(consistency(&mut audrey, 0, cp.size).await, Code::InvalidArgument, "old_size");
    assert_refused(consistency(&mut audrey, 3, 2).await, Code::InvalidArgument, "old_size");
    let beyond = consistency(&mut audrey, 1, records + 100).await;
    let beyond = beyond.unwrap_err();
    assert!(beyond.message().contains(&(records + 100).to_string()), "{}", beyond.message());
    assert_refused(Err::<(), _>(beyond), Code::OutOfRange, "new_size");
    assert_refused(consistency(&mut audrey, cp.size + 1, 0).await, Code::OutOfRange, "old_size");
    let other = v1::GetConsistencyProofRequest { shard: "elsewhere".into(), old_size: 1, new_size: 0 };
    assert_refused(audrey.get_consistency_proof(other).await, Code::NotFound, "shard");

    // A writer does not hold audit.read on the mesh.
    let mut alice = audit(&node, "alice").await;
    let refused = alice.get_consistency_proof(v1::GetConsistencyProofRequest { old_size: 1, ..Default::default() });
    assert_eq!(refused.await.unwrap_err().code(), Code::PermissionDenied);
}
