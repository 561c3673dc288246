//! The client API services a node serves. Until the `metamesh.v1` services land in their crate,
//! the client listener offers health and reflection only.

use std::sync::Arc;

use metamesh_config::NodeConfig;
use metamesh_raft::Replica;
use tonic::transport::server::Router;

pub fn add_services(router: Router, _replica: Arc<Replica>, _config: &NodeConfig) -> Router {
    router
}
