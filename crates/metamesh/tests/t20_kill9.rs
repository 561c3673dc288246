//! kill -9 of a replica process in the middle of batched writes, then a restart: every
//! acknowledged write is on every replica, and no batch is half applied anywhere.

mod common;

use std::time::{Duration, Instant};

use common::*;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::{
    read_consistency, CreateTenantRequest, ListEntitiesRequest, PutEntitiesRequest, PutEntityRequest, ReadConsistency,
    StatusRequest,
};
use tonic::transport::Channel;

const BATCH: usize = 200;

async fn channel(group: &ProcessGroup, i: usize) -> Channel {
    metamesh_tls::connect(group.nodes[i].client, group.client_tls("alice"), "127.0.0.1").await.unwrap()
}

fn batch(b: usize) -> PutEntitiesRequest {
    PutEntitiesRequest {
        request_id: format!("batch-{b}"),
        entities: (0..BATCH)
            .map(|i| PutEntityRequest {
                urn: format!("mm://acme/dataset/b{b:03}-{i:04}"),
                properties_json: format!(r#"{{"batch": {b}, "i": {i}}}"#),
                tags: vec![format!("batch-{b}")],
                ..Default::default()
            })
            .collect(),
    }
}

async fn status(group: &ProcessGroup, i: usize) -> Option<metamesh_proto::v1::StatusReply> {
    let ch = metamesh_tls::connect(group.nodes[i].client, group.client_tls("alice"), "127.0.0.1").await.ok()?;
    AdminServiceClient::new(ch).status(StatusRequest {}).await.ok().map(|r| r.into_inner())
}

/// Entities tagged `batch-b` that node `i` holds, read locally once it applied `revision`.
async fn count(group: &ProcessGroup, i: usize, b: usize, revision: u64) -> usize {
    let mut client = CatalogServiceClient::new(channel(group, i).await);
    let consistency = ReadConsistency {
        mode: Some(read_consistency::Mode::Follower(read_consistency::FollowerRead {
            max_staleness_ms: 0,
            min_revision: revision,
        })),
    };
    let mut total = 0;
    let mut token = String::new();
    // A restarted replica catches up from the leader's log: on a slow (debug-build, loaded)
    // machine that takes longer than one read's 2 s wait, so a read not yet caught up is
    // asked again, for up to a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request = ListEntitiesRequest {
            tenant: "acme".into(),
            tags: vec![format!("batch-{b}")],
            consistency: Some(consistency),
            page_size: 1000,
            page_token: token.clone(),
            ..Default::default()
        };
        let reply = match client.list_entities(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(status) => panic!("node {} never served revision {revision}: {status}", i + 1),
        };
        total += reply.entities.len();
        // A retried batch that had committed must not have been written twice.
        assert!(reply.entities.iter().all(|e| e.version == 1), "a batch was applied twice on node {}", i + 1);
        if reply.next_page_token.is_empty() {
            return total;
        }
        token = reply.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_then_restart_loses_nothing_acknowledged() {
    let mut group = ProcessGroup::start(3);
    for i in 0..3 {
        group.wait_serving(i).await;
    }
    // Find the leader; write through a follower (it forwards), kill -9 the leader mid-stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        if let Some(s) = status(&group, 0).await {
            if let Some(l) = s.leader_id {
                break (l - 1) as usize;
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let via = (leader + 1) % 3;
    let mut client = CatalogServiceClient::new(channel(&group, via).await);
    // A follower may not know the leader yet right after the election: retry until it does.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(status) =
        client.create_tenant(CreateTenantRequest { name: "acme".into(), ..Default::default() }).await
    {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
        assert!(Instant::now() < deadline, "the tenant was never created: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let batches = 12;
    let mut acknowledged = Vec::new();
    let mut last_revision = 0;
    for b in 0..batches {
        if b == 4 {
            // Fire the next batch and kill the leader while it is in flight.
            let mut c = client.clone();
            let inflight = tokio::spawn(async move { c.put_entities(batch(4)).await });
            tokio::time::sleep(Duration::from_millis(15)).await;
            group.nodes[leader].kill9();
            let _ = inflight.await;
        }
        // Retry with the same request id until acknowledged: a retry of a batch that did commit
        // returns its first result instead of writing it twice.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.put_entities(batch(b)).await {
                Ok(reply) => {
                    last_revision = last_revision.max(reply.into_inner().revision);
                    acknowledged.push(b);
                    break;
                }
                Err(status) => {
                    assert!(Instant::now() < deadline, "batch {b} never acknowledged: {status}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    group.nodes[leader].start();
    group.wait_serving(leader).await;
    for i in 0..3 {
        for b in 0..batches {
            let n = count(&group, i, b, last_revision).await;
            if acknowledged.contains(&b) {
                assert_eq!(n, BATCH, "node {} holds {n} of acknowledged batch {b}", i + 1);
            } else {
                assert!(n == 0 || n == BATCH, "node {} holds half of batch {b}: {n}", i + 1);
            }
        }
    }
    assert_eq!(acknowledged.len(), batches);
}
