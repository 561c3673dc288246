//! A shard node's client API: the `metamesh.v1` gRPC services answered by one replica.
//!
//! Pipeline of a request: TLS listener (`metamesh_tls::incoming`, which puts the verified peer
//! into every request) → [`api::caller`] decides who the caller is (the certificate's principal,
//! or the one a router forwards) → the handler converts the wire request
//! (`metamesh_proto::convert`, the only place wire types become domain types) → a write becomes a
//! [`metamesh_core::Proposal`] through the replica's Raft log, a read picks a store fresh enough
//! for the request's consistency → the result is converted back, and a refusal becomes a status
//! with the code of its category and an `ErrorDetails` naming the field.
//!
//! Code map:
//! - [`api`]: [`NodeApi`] and what every handler shares — caller identity ([`api::caller`]),
//!   proposing, picking a store, mapping errors to statuses ([`api::status`]), page tokens
//!   ([`api::page`]).
//! - one module per service: [`api::catalog`], [`api::lineage`], [`api::search`],
//!   [`api::schema`], [`api::watch`] (the resumable change stream), [`api::admin`].
//!
//! Authorization is one tower layer in front of every service, [`api::authz::AuthzLayer`]: it
//! authenticates the caller ([`api::caller`]), checks the RPC's rule against the policy and
//! stamps the request; handlers refuse a request without that stamp. The audit service is not
//! served yet.
//!
//! Serving, as the node binary does:
//! ```no_run
//! # use std::sync::Arc;
//! # use metamesh_node::{services, AuthzLayer, NodeApi};
//! # use metamesh_tls::{incoming, Credentials, PeerPolicy, CLIENT_API_ALPN};
//! # async fn serve(replica: Arc<metamesh_raft::Replica>, creds: Credentials) -> anyhow::Result<()> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:7000").await?;
//! let tls = creds.server_config(CLIENT_API_ALPN)?;
//! let policy = metamesh_policy::Authorizer::load(std::path::Path::new("policies"))?;
//! tonic::transport::Server::builder()
//!     .layer(AuthzLayer::new(policy))
//!     .add_routes(services(Arc::new(NodeApi::new(replica, 1, "s1"))))
//!     .serve_with_incoming(incoming(listener, tls, PeerPolicy::AnyMeshMember))
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
mod serve;

pub use api::audit_feed::AuditFeed;
pub use api::authz::{Authorized, AuthzLayer};
pub use api::caller::{Caller, LEADER_HEADER, PRINCIPAL_HEADER};
pub use api::{services, NodeApi};
pub use serve::run_node;
