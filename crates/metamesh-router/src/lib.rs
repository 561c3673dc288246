//! The federating router: stateless, run as many copies as wanted. It holds no metadata of its
//! own; it answers the questions that cross shard groups (DESIGN §2, §6, §8).
//!
//! Pipeline of a request: mTLS listener (`metamesh_tls::incoming`) → telemetry span
//! (`metamesh_telemetry::RpcLayer`, continuing the caller's trace) → the same authorization
//! layer as a node (`metamesh_node::AuthzLayer`, with the router's copy of the policy: defence
//! in depth, nodes enforce again) → either
//! - [`proxy`]: a tenant-scoped RPC ([`api::FORWARDED`]) is sent unchanged to the shard group
//!   owning its tenant, the caller's principal forwarded in `x-metamesh-principal`; or
//! - a handler of [`api::RouterApi`]: cross-shard lineage ([`lineage`]), search ([`search`]),
//!   audit queries ([`audit`]), tenants and the mesh's health and map.
//!
//! The HTTPS listener ([`http`]) takes OpenLineage events and answers the Marquez-shaped reads.
//!
//! Code map: [`groups`] (channels to every replica of every group, failover, health checks),
//! [`proxy`], [`api`], [`lineage`], [`search`], [`audit`], [`refusals`] (the router's own denials, recorded
//! in the shard they concern), [`witness`] (the latest signed
//! checkpoint of every shard, and alarms when a shard's history is rewritten), [`serve`]
//! (`run_router`, what `metamesh router` and `metamesh dev` run).

pub mod api;
pub mod audit;
pub mod groups;
pub mod http;
pub mod lineage;
pub mod proxy;
pub mod refusals;
pub mod search;
mod serve;
pub mod witness;

pub use serve::{run_router, RouterHandle};
