//! Who the caller is (certificate, forwarded by a router, or nobody), and AdminService.

mod common;

use std::sync::Arc;

use common::*;
use metamesh_node::{services, AuthzLayer, NodeApi, PRINCIPAL_HEADER};
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_tls::Role;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request};

fn forwarded<T>(message: T, principal: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(PRINCIPAL_HEADER, principal.parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_routers_may_forward_a_principal() {
    let node = Node::start().await;
    create_tenant(&node.alice().await, "fraud").await;
    let mut router = CatalogServiceClient::new(node.channel(Role::Router, "r1").await);
    let mut mallory = CatalogServiceClient::new(node.channel(Role::Client, "mallory").await);
    let carol = node.principal(Role::Client, "carol");

    let as_carol = router.put_entity(forwarded(put("mm://fraud/dataset/a", "{}"), &carol)).await.unwrap();
    assert_eq!(as_carol.into_inner().entity.unwrap().created_by, carol);

    let spoofed = mallory.put_entity(forwarded(put("mm://fraud/dataset/b", "{}"), &carol)).await;
    assert_eq!(spoofed.unwrap_err().code(), Code::PermissionDenied);
    // Reads are refused the same way: the check is not per handler.
    let spoofed_read = mallory
        .get_entity(forwarded(
            v1::GetEntityRequest { urn: "mm://fraud/dataset/a".into(), ..Default::default() },
            &carol,
        ))
        .await;
    assert_eq!(spoofed_read.unwrap_err().code(), Code::PermissionDenied);
    let written = CatalogServiceClient::new(node.alice().await)
        .get_entity(v1::GetEntityRequest { urn: "mm://fraud/dataset/b".into(), ..Default::default() })
        .await;
    assert_eq!(written.unwrap_err().code(), Code::NotFound, "the refused write happened");

    // Without the header, a router acts as itself; an empty forwarded principal is refused.
    let itself = router.put_entity(put("mm://fraud/dataset/c", "{}")).await.unwrap();
    assert_eq!(itself.into_inner().entity.unwrap().created_by, node.principal(Role::Router, "r1"));
    let empty = router.put_entity(forwarded(put("mm://fraud/dataset/d", "{}"), " ")).await;
    assert_eq!(empty.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_verified_peer_is_unauthenticated() {
    let node = Node::start().await;
    // The same services over plain TCP: no TLS acceptor, so no peer identity in requests.
    let plain = |layered: bool| {
        let api = Arc::new(NodeApi::new(node.replica.clone(), 1, SHARD));
        let authz = layered.then(|| AuthzLayer::new(node.authorizer.clone()));
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let incoming = TcpIncoming::from(listener);
            let server = match authz {
                Some(layer) => tokio::spawn(
                    tonic::transport::Server::builder()
                        .layer(layer)
                        .add_routes(services(api))
                        .serve_with_incoming(incoming),
                ),
                None => tokio::spawn(
                    tonic::transport::Server::builder().add_routes(services(api)).serve_with_incoming(incoming),
                ),
            };
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
            let status = AdminServiceClient::new(channel).status(v1::StatusRequest {}).await.unwrap_err();
            server.abort();
            status
        }
    };
    assert_eq!(plain(true).await.code(), Code::Unauthenticated);
    // Served without the authorization layer, every handler refuses: it fails closed.
    let unlayered = plain(false).await;
    assert_eq!(unlayered.code(), Code::PermissionDenied, "{unlayered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_snapshots() {
    let node = Node::start().await;
    let ch = node.alice().await;
    let mut admin = AdminServiceClient::new(ch.clone());
    create_tenant(&ch, "fraud").await;
    let last = put_entity(&ch, "mm://fraud/dataset/a").await.revision;

    let status = admin.status(v1::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.node_id, status.shard_group.as_str()), (1, SHARD));
    assert_eq!(status.role, v1::RaftRole::Leader as i32);
    assert_eq!(status.leader_id, Some(1));
    assert!(status.applied_revision >= last, "{status:?}");
    assert!(status.last_log_index >= status.applied_index);
    assert_eq!(status.tenants, ["fraud"]);
    let membership = status.membership.unwrap();
    assert_eq!(membership.voters.iter().map(|m| m.node_id).collect::<Vec<_>>(), [1]);
    assert_eq!(membership.voters[0].raft_addr, "127.0.0.1:7001");

    let health = admin.health(v1::HealthRequest {}).await.unwrap().into_inner();
    assert!(health.serving, "{health:?}");

    let snapshot = admin.trigger_snapshot(v1::TriggerSnapshotRequest { wait: true }).await.unwrap().into_inner();
    assert!(snapshot.snapshot_index.is_some_and(|i| i >= last), "{snapshot:?}");
    let after = admin.status(v1::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(after.snapshot_index, snapshot.snapshot_index);

    let bad = admin.add_learner(v1::AddLearnerRequest { node: None, ..Default::default() }).await;
    assert_refused(bad, Code::InvalidArgument, "node");
}
