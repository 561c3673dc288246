//! The services the router answers itself. Tenant-scoped RPCs never reach these handlers: the
//! routes send them to [`crate::proxy`] first (see [`FORWARDED`]); the trait methods that exist
//! only because a tonic service must implement all of its methods say so if ever called.

use std::sync::Arc;

use metamesh_node::api::{authz, page};
use metamesh_policy::Action;
use metamesh_proto::v1;
use metamesh_proto::v1::admin_service_server::AdminService;
use metamesh_proto::v1::catalog_service_server::CatalogService;
use tonic::{Request, Response, Status};

use crate::groups::{on_behalf, Groups};

/// RPCs forwarded, unchanged, to the shard group owning their tenant.
pub const FORWARDED: &[&str] = &[
    "/metamesh.v1.CatalogService/CreateTenant",
    "/metamesh.v1.CatalogService/GetTenant",
    "/metamesh.v1.CatalogService/PutEntity",
    "/metamesh.v1.CatalogService/PutEntities",
    "/metamesh.v1.CatalogService/DeleteEntity",
    "/metamesh.v1.CatalogService/GetEntity",
    "/metamesh.v1.CatalogService/ListEntities",
    "/metamesh.v1.CatalogService/ListVersions",
    "/metamesh.v1.CatalogService/PutDocument",
    "/metamesh.v1.CatalogService/DeleteDocument",
    "/metamesh.v1.CatalogService/ListDocuments",
    "/metamesh.v1.CatalogService/EraseEntityData",
    "/metamesh.v1.LineageService/AddEdges",
    "/metamesh.v1.LineageService/RemoveEdges",
    "/metamesh.v1.LineageService/IngestOpenLineage",
    "/metamesh.v1.LineageService/ListOpenLineageEvents",
    "/metamesh.v1.SchemaService/RegisterSchema",
    "/metamesh.v1.SchemaService/GetSchema",
    "/metamesh.v1.SchemaService/ListSchemaVersions",
    "/metamesh.v1.SchemaService/ListTypes",
    "/metamesh.v1.SchemaService/CheckCompatibility",
    "/metamesh.v1.WatchService/Watch",
];

/// The router's own handlers.
pub struct RouterApi {
    pub groups: Arc<Groups>,
    pub router_id: String,
    /// The witness of every shard's audit checkpoints.
    pub witness: Arc<crate::witness::WitnessTask>,
}

pub(crate) fn forwarded() -> Status {
    Status::internal("this RPC is forwarded to its shard group and never answered by the router itself")
}

/// Per-node administration goes to the node itself.
fn node_only(what: &str) -> Status {
    Status::unimplemented(format!("{what} changes one shard group: call a replica of that group, not the router"))
}

#[tonic::async_trait]
impl CatalogService for RouterApi {
    async fn create_tenant(
        &self,
        _: Request<v1::CreateTenantRequest>,
    ) -> Result<Response<v1::CreateTenantReply>, Status> {
        Err(forwarded())
    }
    async fn get_tenant(&self, _: Request<v1::GetTenantRequest>) -> Result<Response<v1::GetTenantReply>, Status> {
        Err(forwarded())
    }

    /// Every tenant of the mesh map the caller may discover, in name order, with its group.
    async fn list_tenants(
        &self,
        request: Request<v1::ListTenantsRequest>,
    ) -> Result<Response<v1::ListTenantsReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let limit = page::size(r.page_size)?;
        let after: Option<String> = page::decode(&r.page_token)?;
        let mut tenants: Vec<(String, String)> = Vec::new();
        for g in self.groups.all() {
            for t in &g.tenants {
                let Ok(id) = metamesh_core::TenantId::new(t) else { continue };
                if authorized.may(Action::Discover, &id) {
                    tenants.push((t.clone(), g.id.clone()));
                }
            }
        }
        tenants.sort();
        let (items, next) = page::after_key(tenants, |(t, _)| t.clone(), after.as_ref(), limit);
        Ok(Response::new(v1::ListTenantsReply {
            tenants: items
                .into_iter()
                .map(|(name, shard_group)| v1::Tenant { name, shard_group, ..Default::default() })
                .collect(),
            next_page_token: next.map(|n| page::encode(&n)).unwrap_or_default(),
        }))
    }

    async fn put_entity(&self, _: Request<v1::PutEntityRequest>) -> Result<Response<v1::PutEntityReply>, Status> {
        Err(forwarded())
    }
    async fn put_entities(&self, _: Request<v1::PutEntitiesRequest>) -> Result<Response<v1::PutEntitiesReply>, Status> {
        Err(forwarded())
    }
    async fn delete_entity(
        &self,
        _: Request<v1::DeleteEntityRequest>,
    ) -> Result<Response<v1::DeleteEntityReply>, Status> {
        Err(forwarded())
    }
    async fn get_entity(&self, _: Request<v1::GetEntityRequest>) -> Result<Response<v1::GetEntityReply>, Status> {
        Err(forwarded())
    }
    /// URNs of several groups: one request per group, in parallel, merged back into request
    /// order. A group that does not answer makes the reply partial, its URNs missing.
    async fn batch_get_entities(
        &self,
        request: Request<v1::BatchGetEntitiesRequest>,
    ) -> Result<Response<v1::BatchGetEntitiesReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let calls = self.groups.by_group(&r.urns)?.into_iter().map(|(group, urns)| {
            let request = v1::BatchGetEntitiesRequest { urns, ..r.clone() };
            let authorized = &authorized;
            async move {
                let reply = self
                    .groups
                    .call(group, |ch| {
                        let request = request.clone();
                        async move {
                            v1::catalog_service_client::CatalogServiceClient::new(ch)
                                .batch_get_entities(on_behalf(authorized, request))
                                .await
                        }
                    })
                    .await;
                (group, reply)
            }
        });
        let mut found: std::collections::HashMap<String, v1::Entity> = Default::default();
        let mut reply = v1::BatchGetEntitiesReply::default();
        for (group, answer) in futures_util::future::join_all(calls).await {
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    reply.partial_reasons.extend(answer.partial_reasons);
                    for e in answer.entities {
                        found.insert(e.urn.clone(), e);
                    }
                }
                Err(status) => reply.partial_reasons.push(crate::groups::unavailable(&group.id, &status)),
            }
        }
        // Request order; an entity is matched by its URN, with or without the version asked.
        for text in &r.urns {
            let key = text.split('@').next().unwrap_or(text);
            match found.get(key).or_else(|| found.get(text.as_str())) {
                Some(e) => reply.entities.push(e.clone()),
                None => reply.missing_urns.push(text.clone()),
            }
        }
        reply.partial = !reply.partial_reasons.is_empty();
        Ok(Response::new(reply))
    }
    async fn list_entities(
        &self,
        _: Request<v1::ListEntitiesRequest>,
    ) -> Result<Response<v1::ListEntitiesReply>, Status> {
        Err(forwarded())
    }
    async fn list_versions(
        &self,
        _: Request<v1::ListVersionsRequest>,
    ) -> Result<Response<v1::ListVersionsReply>, Status> {
        Err(forwarded())
    }
    async fn put_document(&self, _: Request<v1::PutDocumentRequest>) -> Result<Response<v1::PutDocumentReply>, Status> {
        Err(forwarded())
    }
    async fn delete_document(
        &self,
        _: Request<v1::DeleteDocumentRequest>,
    ) -> Result<Response<v1::WriteResult>, Status> {
        Err(forwarded())
    }
    async fn list_documents(
        &self,
        _: Request<v1::ListDocumentsRequest>,
    ) -> Result<Response<v1::ListDocumentsReply>, Status> {
        Err(forwarded())
    }
    async fn erase_entity_data(
        &self,
        _: Request<v1::EraseEntityDataRequest>,
    ) -> Result<Response<v1::EraseEntityDataReply>, Status> {
        Err(forwarded())
    }
}

#[tonic::async_trait]
impl AdminService for RouterApi {
    async fn status(&self, _: Request<v1::StatusRequest>) -> Result<Response<v1::StatusReply>, Status> {
        Err(node_only("Status describes one replica; it"))
    }
    async fn add_learner(&self, _: Request<v1::AddLearnerRequest>) -> Result<Response<v1::MembershipReply>, Status> {
        Err(node_only("AddLearner"))
    }
    async fn remove_learner(
        &self,
        _: Request<v1::RemoveLearnerRequest>,
    ) -> Result<Response<v1::MembershipReply>, Status> {
        Err(node_only("RemoveLearner"))
    }
    async fn change_membership(
        &self,
        _: Request<v1::ChangeMembershipRequest>,
    ) -> Result<Response<v1::MembershipReply>, Status> {
        Err(node_only("ChangeMembership"))
    }
    async fn trigger_snapshot(
        &self,
        _: Request<v1::TriggerSnapshotRequest>,
    ) -> Result<Response<v1::TriggerSnapshotReply>, Status> {
        Err(node_only("TriggerSnapshot"))
    }

    /// The router's view of the mesh: one component per shard group (serving if one replica
    /// answers), with each group's outbox backlog summed.
    async fn health(&self, request: Request<v1::HealthRequest>) -> Result<Response<v1::HealthReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let mut components = Vec::new();
        let (mut pending, mut lag) = (0, 0);
        let calls = self.groups.all().iter().map(|g| {
            let groups = &self.groups;
            let authorized = &authorized;
            async move {
                let reply = groups
                    .call(g, |ch| async move {
                        v1::admin_service_client::AdminServiceClient::new(ch)
                            .health(on_behalf(authorized, v1::HealthRequest {}))
                            .await
                    })
                    .await;
                (g, reply)
            }
        });
        for (g, reply) in futures_util::future::join_all(calls).await {
            let healthy = g.replicas.iter().filter(|r| r.healthy()).count();
            match reply {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    pending += reply.outbox_pending;
                    lag = lag.max(reply.outbox_lag_ms);
                    components.push(v1::ComponentHealth {
                        name: format!("group/{}", g.id),
                        ok: reply.serving,
                        detail: format!(
                            "{healthy}/{} replicas answer health checks; outbox {} pending",
                            g.replicas.len(),
                            reply.outbox_pending
                        ),
                    });
                }
                Err(status) => components.push(v1::ComponentHealth {
                    name: format!("group/{}", g.id),
                    ok: false,
                    detail: status.message().to_owned(),
                }),
            }
        }
        components.push(self.witness.health());
        Ok(Response::new(v1::HealthReply {
            serving: components.iter().any(|c| c.ok),
            components,
            outbox_pending: pending,
            outbox_lag_ms: lag,
            policy_digest: authorized.policy.digest().to_string(),
        }))
    }

    /// The mesh map the router routes by.
    async fn get_shard_map(
        &self,
        request: Request<v1::GetShardMapRequest>,
    ) -> Result<Response<v1::GetShardMapReply>, Status> {
        authz::authorized(&request)?;
        let groups = self
            .groups
            .map
            .groups
            .iter()
            .map(|g| v1::ShardGroup {
                id: g.id.clone(),
                tenants: g.tenants.clone(),
                members: g
                    .replicas
                    .iter()
                    .map(|r| v1::Member { node_id: r.id, raft_addr: String::new(), api_addr: r.grpc.clone() })
                    .collect(),
            })
            .collect();
        Ok(Response::new(v1::GetShardMapReply { map_version: self.groups.map.version.to_string(), groups }))
    }
}
