//! AuditService over a real node: who sees which records (a compliance auditor everything, a
//! tenant admin only its tenant's, a writer nothing), paging, Verify, signed checkpoints and
//! inclusion proofs that check offline, refusals of bad input naming the field, and Export in
//! both formats.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use metamesh_core::{Command, Proposal};
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_testkit::policy::write_policy;
use metamesh_tls::{MeshCa, Role};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Code;

fn id(ca: &MeshCa, name: &str) -> String {
    ca.spiffe_id(Role::Client, name)
}

async fn start() -> Node {
    let ca = MeshCa::generate(DOMAIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let global =
        format!("g, {}, role:mesh-admin, *\ng, {}, role:compliance-auditor, *\n", id(&ca, "ops"), id(&ca, "audrey"));
    let fraud = format!("g, {}, role:writer, fraud\ng, {}, role:admin, fraud\n", id(&ca, "alice"), id(&ca, "adam"));
    let growth = format!("g, {}, role:writer, growth\n", id(&ca, "bob"));
    write_policy(&dir.path().join("policies"), &global, &[("fraud", &fraud), ("growth", &growth)]);
    Node::start_with(ca, dir).await
}

async fn audit(node: &Node, who: &str) -> AuditServiceClient<Channel> {
    AuditServiceClient::new(node.channel(Role::Client, who).await)
}

fn filter(tenant: &str) -> Option<v1::AuditFilter> {
    Some(v1::AuditFilter { tenant: tenant.into(), ..Default::default() })
}

/// Every record `client` may list with `filter`, following page tokens (`page_size` per page).
async fn list_all(
    client: &mut AuditServiceClient<Channel>,
    filter: Option<v1::AuditFilter>,
    page_size: u32,
) -> Vec<v1::AuditRecord> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = v1::ListRecordsRequest { filter: filter.clone(), page_size, page_token };
        let reply = client.list_records(request).await.expect("list records").into_inner();
        assert!(reply.records.len() <= page_size as usize);
        out.extend(reply.records);
        if reply.next_page_token.is_empty() {
            return out;
        }
        page_token = reply.next_page_token;
    }
}

fn field_of(status: &tonic::Status) -> String {
    details(status).errors.first().map(|e| e.field.clone()).unwrap_or_default()
}

/// Tenants, writes in both, a flood of refusals (coalesced), a mesh-level refusal; returns when
/// the auditor can list a coalesced denial and the mesh-level record.
async fn populate(node: &Node) -> Vec<v1::AuditRecord> {
    let ops = node.channel(Role::Client, "ops").await;
    create_tenant(&ops, "fraud").await;
    create_tenant(&ops, "growth").await;
    put_entity(&node.channel(Role::Client, "alice").await, "mm://fraud/dataset/transactions").await;
    put_entity(&node.channel(Role::Client, "bob").await, "mm://growth/dataset/signups").await;
    // bob hammers fraud: refused, recorded as few records with counts.
    let mut bob = CatalogServiceClient::new(node.channel(Role::Client, "bob").await);
    for _ in 0..20 {
        let r = bob.get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/x".into(), ..Default::default() }).await;
        assert_eq!(r.unwrap_err().code(), Code::NotFound);
    }
    // adam may not verify the mesh's log: a refusal without a tenant.
    let refused = audit(node, "adam").await.verify(v1::VerifyRequest::default()).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);

    let mut audrey = audit(node, "audrey").await;
    let bob_id = id(&node.ca, "bob");
    let adam_id = id(&node.ca, "adam");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let records = list_all(&mut audrey, None, 1000).await;
        let denied: u32 = records
            .iter()
            .filter(|r| r.principal == bob_id && r.decision == v1::Decision::Deny as i32)
            .map(|r| r.count)
            .sum();
        let mesh_level = records.iter().any(|r| r.principal == adam_id && r.tenant.is_empty());
        if denied == 20 && mesh_level {
            return records;
        }
        assert!(tokio::time::Instant::now() < deadline, "denied {denied} of 20 listed; mesh record: {mesh_level}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_sees_which_records() {
    let node = start().await;
    let all = populate(&node).await;

    // The auditor: every record, 1..=n without gaps, in pages; a coalesced denial among them.
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    assert!(all.iter().any(|r| r.count > 1 && r.decision == v1::Decision::Deny as i32), "{all:#?}");
    assert!(all.iter().all(|r| r.shard == SHARD && r.count >= 1 && r.hash.len() == 32));
    let mut audrey = audit(&node, "audrey").await;
    let paged = list_all(&mut audrey, None, 3).await;
    assert_eq!(paged.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs, "pages of 3 list the same records");
    let growth_seqs: Vec<u64> = all.iter().filter(|r| r.tenant == "growth").map(|r| r.seq).collect();
    assert!(!growth_seqs.is_empty());

    // Filters: tenant, principal, decision, time.
    let only_growth = list_all(&mut audrey, filter("growth"), 100).await;
    assert_eq!(only_growth.iter().map(|r| r.seq).collect::<Vec<_>>(), growth_seqs);
    let denials =
        v1::AuditFilter { principal: id(&node.ca, "bob"), decision: v1::Decision::Deny as i32, ..Default::default() };
    let bobs = list_all(&mut audrey, Some(denials), 100).await;
    assert!(!bobs.is_empty() && bobs.iter().all(|r| r.tenant == "fraud" && r.action == "read"));
    let future = v1::AuditFilter { start_time_ms: Some(i64::MAX - 1), ..Default::default() };
    assert!(list_all(&mut audrey, Some(future), 100).await.is_empty());

    // The tenant admin: fraud's records only, no growth's, no mesh-level ones.
    let mut adam = audit(&node, "adam").await;
    let adams = list_all(&mut adam, None, 2).await;
    let fraud_seqs: Vec<u64> = all.iter().filter(|r| r.tenant == "fraud").map(|r| r.seq).collect();
    assert!(!fraud_seqs.is_empty());
    assert_eq!(adams.iter().map(|r| r.seq).collect::<Vec<_>>(), fraud_seqs);
    let growth = adam.list_records(v1::ListRecordsRequest { filter: filter("growth"), ..Default::default() }).await;
    assert_eq!(growth.unwrap_err().code(), Code::NotFound, "adam may not even discover growth");

    // A writer holds audit.read nowhere: its tenant is refused, another tenant does not exist
    // for it, and an unfiltered listing is empty.
    let mut alice = audit(&node, "alice").await;
    let own = alice.list_records(v1::ListRecordsRequest { filter: filter("fraud"), ..Default::default() }).await;
    let own = own.unwrap_err();
    assert_eq!((own.code(), field_of(&own).as_str()), (Code::PermissionDenied, "filter.tenant"));
    let other = alice.list_records(v1::ListRecordsRequest { filter: filter("growth"), ..Default::default() }).await;
    assert_eq!(other.unwrap_err().code(), Code::NotFound);
    assert!(list_all(&mut alice, None, 100).await.is_empty());
    // The single-log RPCs need audit.read on the mesh.
    let refused = alice.get_checkpoint(v1::GetCheckpointRequest::default()).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);
    let refused = adam.get_inclusion_proof(v1::GetInclusionProofRequest { seq: 1, ..Default::default() }).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);

    // Export: JSONL records that hash to themselves, CSV with a header and a row per record,
    // filtered like the listing.
    let jsonl = export(&mut audrey, v1::ExportFormat::Jsonl, None).await;
    let exported: Vec<metamesh_audit::AuditRecord> =
        jsonl.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(exported.len() >= all.len());
    assert!(exported.iter().all(|r| r.is_intact()), "exported records hash to themselves");
    assert_eq!(exported.iter().map(|r| r.seq).take(all.len()).collect::<Vec<_>>(), seqs);
    let csv = export(&mut adam, v1::ExportFormat::Csv, None).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,at_ms,principal,tenant,action,resource,decision,count"), "{csv}");
    let adams_now = list_all(&mut adam, None, 1000).await;
    assert_eq!(lines.len() - 1, adams_now.len(), "{csv}");
    assert!(lines[1..].iter().all(|l| l.split(',').nth(3) == Some("fraud")), "{csv}");
}

async fn export(
    client: &mut AuditServiceClient<Channel>,
    format: v1::ExportFormat,
    filter: Option<v1::AuditFilter>,
) -> String {
    let mut stream =
        client.export(v1::ExportRequest { filter, format: format as i32 }).await.expect("export").into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.expect("export chunk").data);
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checkpoints_and_proofs() {
    let node = start().await;
    let ops = node.channel(Role::Client, "ops").await;
    create_tenant(&ops, "fraud").await;
    put_entity(&node.channel(Role::Client, "alice").await, "mm://fraud/dataset/a").await;
    put_entity(&node.channel(Role::Client, "alice").await, "mm://fraud/dataset/b").await;
    let mut audrey = audit(&node, "audrey").await;

    let v = audrey.verify(v1::VerifyRequest::default()).await.unwrap().into_inner();
    assert!(v.ok && v.first_bad_seq.is_none() && v.reason.is_empty(), "{v:?}");
    assert_eq!((v.records_checked, v.checkpoints_checked, v.shard.as_str()), (3, 0, SHARD));

    // No checkpoint yet.
    let none = audrey.get_checkpoint(v1::GetCheckpointRequest::default()).await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    let unproven = audrey.get_inclusion_proof(v1::GetInclusionProofRequest { seq: 1, ..Default::default() }).await;
    assert_eq!(unproven.unwrap_err().code(), Code::FailedPrecondition);

    // The leader signs one (as the node's checkpoint task does) and proposes it.
    let key = Arc::new(metamesh_audit::ShardKey::generate());
    let store = node.replica.local_store();
    let cp = store.audit_checkpoint(key.clone(), SHARD.into(), 1_700_000_000_000).await.unwrap().expect("a checkpoint");
    let command = Command::AuditCheckpoint { checkpoint: serde_json::to_value(&cp).unwrap() };
    let reply = node.replica.write(Proposal::new(command, cp.at_ms, "test/checkpoints")).await.unwrap();
    assert!(reply.applied.unwrap().result.is_ok());
    let size = cp.size;

    let got = audrey.get_checkpoint(v1::GetCheckpointRequest::default()).await.unwrap().into_inner();
    assert_eq!((got.tree_size, got.shard.as_str()), (size, SHARD));
    let wire = metamesh_proto::convert::checkpoint("checkpoint", &got).unwrap();
    assert_eq!(wire, cp);
    wire.verify(&key.verifying_key()).expect("the served checkpoint is the signed one");
    let exact = audrey.get_checkpoint(v1::GetCheckpointRequest { tree_size: Some(size), ..Default::default() }).await;
    assert_eq!(exact.unwrap().into_inner().tree_size, size);
    let missing =
        audrey.get_checkpoint(v1::GetCheckpointRequest { tree_size: Some(size + 100), ..Default::default() }).await;
    let missing = missing.unwrap_err();
    assert_eq!((missing.code(), field_of(&missing).as_str()), (Code::FailedPrecondition, "tree_size"));

    // Verify now matches the checkpoint's root.
    let v = audrey.verify(v1::VerifyRequest::default()).await.unwrap().into_inner();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checkpoints_checked, 1);

    // Proofs of every covered record check offline, as `metamesh audit check-proof` checks them.
    for seq in 1..=size {
        let reply = audrey
            .get_inclusion_proof(v1::GetInclusionProofRequest { seq, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let bundle = metamesh_proto::convert::proof_bundle(&reply).unwrap();
        bundle.check(&[key.verifying_key()]).unwrap_or_else(|e| panic!("record {seq}: {e}"));
        assert_eq!(bundle.proof.size, size);
        let json = serde_json::to_string(&bundle).unwrap();
        let again: metamesh_audit::ProofBundle = serde_json::from_str(&json).unwrap();
        assert_eq!(again, bundle);
    }
    // A tampered record does not check.
    let reply = audrey
        .get_inclusion_proof(v1::GetInclusionProofRequest { seq: 1, tree_size: size, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut bundle = metamesh_proto::convert::proof_bundle(&reply).unwrap();
    bundle.record.principal.push('x');
    assert!(bundle.check(&[key.verifying_key()]).is_err());

    // A record written after the checkpoint is in the log but not covered yet.
    put_entity(&node.channel(Role::Client, "alice").await, "mm://fraud/dataset/c").await;
    let later = audrey.get_inclusion_proof(v1::GetInclusionProofRequest { seq: size + 1, ..Default::default() }).await;
    let later = later.unwrap_err();
    assert_eq!((later.code(), field_of(&later).as_str()), (Code::FailedPrecondition, "seq"));
    let beyond = audrey.get_inclusion_proof(v1::GetInclusionProofRequest { seq: 10_000, ..Default::default() }).await;
    let beyond = beyond.unwrap_err();
    assert_eq!((beyond.code(), field_of(&beyond).as_str()), (Code::NotFound, "seq"));
    assert!(beyond.message().contains("10000"), "{}", beyond.message());

    // A consistency proof from an empty tree is refused, naming the field (t91 covers proofs).
    let consistency = audrey.get_consistency_proof(v1::GetConsistencyProofRequest::default()).await.unwrap_err();
    assert_eq!((consistency.code(), field_of(&consistency).as_str()), (Code::InvalidArgument, "old_size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() {
    let node = start().await;
    let mut audrey = audit(&node, "audrey").await;
    let check = |r: Result<tonic::Response<_>, tonic::Status>, field: &str| {
        let s = r.map(|_: tonic::Response<v1::ListRecordsReply>| ()).unwrap_err();
        assert_eq!((s.code(), field_of(&s)), (Code::InvalidArgument, field.to_owned()), "{s:?}");
    };
    let list = |page_size, page_token: &str, filter| v1::ListRecordsRequest {
        filter,
        page_size,
        page_token: page_token.into(),
    };
    check(audrey.list_records(list(100_000, "", None)).await, "page_size");
    check(audrey.list_records(list(0, "not-a-token", None)).await, "page_token");
    let bad_decision = v1::AuditFilter { decision: 9, ..Default::default() };
    check(audrey.list_records(list(0, "", Some(bad_decision))).await, "filter.decision");
    let backwards = v1::AuditFilter { start_time_ms: Some(10), end_time_ms: Some(5), ..Default::default() };
    check(audrey.list_records(list(0, "", Some(backwards))).await, "filter.end_time_ms");
    check(audrey.list_records(list(0, "", filter("Not A Tenant"))).await, "filter.tenant");

    let zero = audrey.get_inclusion_proof(v1::GetInclusionProofRequest::default()).await.unwrap_err();
    assert_eq!((zero.code(), field_of(&zero).as_str()), (Code::InvalidArgument, "seq"));
    let from_zero = audrey.verify(v1::VerifyRequest { from_seq: Some(0), ..Default::default() }).await.unwrap_err();
    assert_eq!((from_zero.code(), field_of(&from_zero).as_str()), (Code::InvalidArgument, "from_seq"));
    let bad_format = audrey.export(v1::ExportRequest { filter: None, format: 9 }).await;
    let Err(bad_format) = bad_format else { panic!("an unknown format is refused") };
    assert_eq!((bad_format.code(), field_of(&bad_format).as_str()), (Code::InvalidArgument, "format"));
    let other_shard = v1::GetCheckpointRequest { shard: "elsewhere".into(), ..Default::default() };
    let other_shard = audrey.get_checkpoint(other_shard).await.unwrap_err();
    assert_eq!((other_shard.code(), field_of(&other_shard).as_str()), (Code::NotFound, "shard"));
}
