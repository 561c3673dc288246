//! The client API a node serves: the `metamesh.v1` services of `metamesh-node` (audit comes
//! with the policy layer).

use std::sync::Arc;

use metamesh_config::NodeConfig;
use metamesh_node::{services, NodeApi};
use metamesh_raft::Replica;
use tonic::service::Routes;

pub fn routes(replica: Arc<Replica>, config: &NodeConfig) -> Routes {
    services(Arc::new(NodeApi::new(replica, config.node.id, config.node.shard_group.clone())))
}
