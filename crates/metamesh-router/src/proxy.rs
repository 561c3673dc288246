//! The generic forwarder: a tenant-scoped RPC goes, bytes unchanged, to the shard group owning
//! its tenant.
//!
//! The router's authorization layer has already checked the request against the policy and
//! noted the tenants its resources belong to ([`Authorized::tenants`]); the forwarder picks the
//! group of those tenants, replaces any principal header with the caller's, adds the trace
//! context, and sends the request to a replica (the next one if a replica is unreachable or
//! answers UNAVAILABLE before producing anything). The reply, streaming or not, is passed back
//! as it comes. A request whose tenants belong to several groups is refused (INVALID_ARGUMENT):
//! writes are atomic per shard, and the caller is told to split it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use metamesh_node::{Authorized, PRINCIPAL_HEADER};
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::Status;
use tower_service::Service;

use crate::groups::Groups;

/// Most bytes of a request the forwarder buffers (so that it can be sent to another replica).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// The forwarding service (one clone per route).
#[derive(Clone)]
pub struct Proxy {
    pub groups: Arc<Groups>,
}

impl Service<http::Request<axum::body::Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let groups = self.groups.clone();
        Box::pin(async move { Ok(forward(&groups, request).await.unwrap_or_else(|s| s.into_http())) })
    }
}

async fn forward(groups: &Groups, request: http::Request<axum::body::Body>) -> Result<http::Response<Body>, Status> {
    let authorized = request
        .extensions()
        .get::<Authorized>()
        .cloned()
        .ok_or_else(|| Status::permission_denied("this request was not authorized by the router"))?;
    let group = match authorized.tenants.first() {
        Some(first) => {
            let group = groups.of(first)?;
            if let Some(other) =
                authorized.tenants.iter().find(|t| groups.owner(t.as_str()).map(|g| &g.id) != Some(&group.id))
            {
                groups.of(other)?;
                return Err(Status::invalid_argument(format!(
                    "the request names tenants of several shard groups (`{first}` and `{other}`); send one request per tenant's shard group"
                )));
            }
            group
        }
        // A watch of "every tenant I may see" would be one stream per group with revisions of
        // its own: through a router, a watch names its tenants (of one group).
        None if request.uri().path() == "/metamesh.v1.WatchService/Watch" => {
            return Err(Status::invalid_argument(
                "invalid `tenants`: through a router, name the tenants to watch (all of one shard group)",
            ));
        }
        // No resource could be read (a malformed one): any group refuses it with the same
        // INVALID_ARGUMENT a node would give.
        None => groups.all().first().ok_or_else(|| Status::unavailable("the mesh map has no groups"))?,
    };
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, MAX_MESSAGE)
        .collect()
        .await
        .map_err(|e| Status::resource_exhausted(format!("request not readable within {MAX_MESSAGE} bytes: {e}")))?
        .to_bytes();
    let mut metadata = MetadataMap::from_headers(parts.headers.clone());
    metadata.remove(PRINCIPAL_HEADER);
    metadata.remove("traceparent");
    metadata.remove("tracestate");
    let principal = authorized
        .caller
        .principal
        .parse()
        .map_err(|_| Status::invalid_argument("the caller's principal cannot be forwarded"))?;
    metadata.insert(PRINCIPAL_HEADER, principal);
    metamesh_telemetry::inject_trace_context(&mut metadata);
    let headers = metadata.into_headers();

    let mut last = Status::unavailable(format!("shard group {} has no replicas", group.id));
    for (i, mut channel) in groups.channels(group) {
        let mut outgoing = http::Request::new(Body::new(http_body_util::Full::new(Bytes::clone(&body))));
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.uri_mut() = parts.uri.clone();
        *outgoing.headers_mut() = headers.clone();
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await.ok();
        match channel.call(outgoing).await {
            Ok(response) if grpc_status(&response) == Some(tonic::Code::Unavailable) => {
                groups.failed(group, i);
                last = Status::unavailable(format!(
                    "shard group {}: replica {} is unavailable",
                    group.id, group.replicas[i].addr
                ));
            }
            Ok(response) => {
                groups.answered(group, i);
                return Ok(response);
            }
            Err(e) => {
                groups.failed(group, i);
                tracing::debug!(group = %group.id, replica = %group.replicas[i].addr, error = %e, "replica unreachable");
                last = Status::unavailable(format!(
                    "shard group {}: replica {} unreachable: {e}",
                    group.id, group.replicas[i].addr
                ));
            }
        }
    }
    Err(last)
}

/// The status of a trailers-only reply (an immediate error), read from its headers.
fn grpc_status<B>(response: &http::Response<B>) -> Option<tonic::Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}
