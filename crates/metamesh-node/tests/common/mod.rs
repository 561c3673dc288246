//! A real single-replica shard group in a temp dir, its client API served over real mTLS on
//! 127.0.0.1 (`metamesh_testkit::api_node`), and helpers for calling it; [`group`] serves the
//! API of replicas of a three-replica group.

#![allow(dead_code)] // each test binary uses a different subset

pub mod group;

use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use prost::Message;
use tonic::transport::Channel;

#[allow(unused_imports)] // each test binary uses a different subset
pub use metamesh_testkit::api_node::{creds, ApiNode as Node, DOMAIN, SHARD};

/// Creates tenant `name` through the API.
pub async fn create_tenant(channel: &Channel, name: &str) -> u64 {
    let reply = CatalogServiceClient::new(channel.clone())
        .create_tenant(v1::CreateTenantRequest { name: name.into(), ..Default::default() })
        .await
        .expect("create tenant");
    reply.into_inner().revision
}

/// A put of `urn` with these properties.
pub fn put(urn: &str, properties_json: &str) -> v1::PutEntityRequest {
    v1::PutEntityRequest { urn: urn.into(), properties_json: properties_json.into(), ..Default::default() }
}

/// Writes entity `urn`; returns the reply.
pub async fn put_entity(channel: &Channel, urn: &str) -> v1::PutEntityReply {
    CatalogServiceClient::new(channel.clone()).put_entity(put(urn, "{}")).await.expect("put entity").into_inner()
}

/// The `ErrorDetails` of a failed call.
pub fn details(status: &tonic::Status) -> v1::ErrorDetails {
    v1::ErrorDetails::decode(status.details()).expect("status carries ErrorDetails")
}

/// Asserts the code of a failed call and the field its details name.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: tonic::Code, field: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    let d = details(&status);
    assert_eq!(d.errors.first().map(|e| e.field.as_str()), Some(field), "{status:?}");
}
