//! `ml_metadata.MetadataStoreService`: Google's MLMD API, served to the unmodified MLMD client.
//!
//! The tenant is the caller's home tenant ([`authz::Target::HomeTenant`]), resolved by the
//! authorization layer. Writes (`Put*`) go through Raft as one `Command::Mlmd` each, carrying
//! the request as sent; every replica applies it with `metamesh_mlmd::apply`. Reads (`Get*`)
//! take a read barrier (linearizable, like the native API's default) and are answered from
//! this replica's file by `metamesh_mlmd::read`.
//!
//! A write is proposed with a request id of its own, and proposed again with the same id when
//! the leader changes under it (UNAVAILABLE), so the client never sees a leader change and a
//! write is never applied twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metamesh_core::{Command, Outcome};
use metamesh_mlmd::pb;
use metamesh_mlmd::pb::metadata_store_service_server::MetadataStoreService;
use metamesh_mlmd::read::Reader;
use metamesh_store::Store;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::api::{authz, status, NodeApi};

/// The MLMD service of one node.
pub struct MlmdApi {
    api: Arc<NodeApi>,
    /// Read connections to the store file, for the store they were opened on (a snapshot
    /// install replaces the store).
    reader: Mutex<Option<(usize, Arc<Reader>)>>,
}

static STARTED: OnceLock<i64> = OnceLock::new();

/// How often a write is proposed again after the leader changed under it.
const WRITE_ATTEMPTS: u32 = 5;

impl MlmdApi {
    pub fn new(api: Arc<NodeApi>) -> MlmdApi {
        MlmdApi { api, reader: Mutex::new(None) }
    }

    fn reader(&self, store: &Arc<Store>) -> Arc<Reader> {
        let key = Arc::as_ptr(store) as usize;
        let mut slot = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some((k, reader)) if *k == key => reader.clone(),
            _ => {
                let reader = Arc::new(Reader::new(store.path().to_owned()));
                *slot = Some((key, reader.clone()));
                reader
            }
        }
    }

    /// A request id no other write of the mesh uses: this replica, its start and a counter.
    fn request_id(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let started = *STARTED.get_or_init(super::now_ms);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("mlmd/{}/{}/{started}/{n}", self.api.shard_group(), self.api.node_id)
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        rpc: &'static str,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let authorized = authz::authorized(&request)?;
        let tenant = authorized
            .tenants
            .first()
            .cloned()
            .ok_or_else(|| Status::permission_denied("no tenant was resolved for this MLMD request"))?;
        let bytes = request.into_inner().encode_to_vec();
        let out = if metamesh_mlmd::is_write(rpc) {
            let request_id = self.request_id();
            let command = Command::Mlmd { tenant: tenant.clone(), rpc: rpc.to_owned(), request: bytes };
            let mut attempt = 0;
            let written = loop {
                attempt += 1;
                match self.api.propose(&authorized.caller, &request_id, command.clone()).await {
                    Err(s) if s.code() == tonic::Code::Unavailable && attempt < WRITE_ATTEMPTS => {
                        tracing::debug!(rpc, attempt, error = %s.message(), "MLMD write proposed again");
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    }
                    other => break other?,
                }
            };
            match written.outcome {
                Outcome::Mlmd { response } => response,
                other => return Err(status::internal(&format!("an MLMD write applied as {other:?}"))),
            }
        } else {
            let store = self.api.store(None).await?;
            // A write to a tenant of another shard is refused by the state machine; a read must
            // be refused too, not answered as an empty store.
            if !store.tenants().await.map_err(status::store)?.contains(&tenant) {
                return Err(metamesh_proto::convert::status(&metamesh_core::CommandError::UnknownTenant(tenant)));
            }
            let reader = self.reader(&store);
            let tenant = tenant.to_string();
            tokio::task::spawn_blocking(move || reader.call(&tenant, rpc, &bytes))
                .await
                .map_err(|e| status::internal(&e))?
                .map_err(|e| e.status())?
        };
        Resp::decode(out.as_slice()).map(Response::new).map_err(|e| status::internal(&e))
    }
}

/// The MLMD service over `api`, ready to add to a node's routes.
pub fn service(api: Arc<NodeApi>) -> pb::metadata_store_service_server::MetadataStoreServiceServer<MlmdApi> {
    pb::metadata_store_service_server::MetadataStoreServiceServer::new(MlmdApi::new(api))
}

macro_rules! mlmd_service {
    ($($method:ident, $rpc:ident, $req:ident, $resp:ident;)*) => {
        #[tonic::async_trait]
        impl MetadataStoreService for MlmdApi {
            $(
                async fn $method(&self, request: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    self.call(stringify!($rpc), request).await
                }
            )*
        }
    };
}

mlmd_service! {
    put_artifact_type, PutArtifactType, PutArtifactTypeRequest, PutArtifactTypeResponse;
    put_execution_type, PutExecutionType, PutExecutionTypeRequest, PutExecutionTypeResponse;
    put_context_type, PutContextType, PutContextTypeRequest, PutContextTypeResponse;
    put_types, PutTypes, PutTypesRequest, PutTypesResponse;
    put_artifacts, PutArtifacts, PutArtifactsRequest, PutArtifactsResponse;
    put_executions, PutExecutions, PutExecutionsRequest, PutExecutionsResponse;
    put_events, PutEvents, PutEventsRequest, PutEventsResponse;
    put_execution, PutExecution, PutExecutionRequest, PutExecutionResponse;
    put_lineage_subgraph, PutLineageSubgraph, PutLineageSubgraphRequest, PutLineageSubgraphResponse;
    put_contexts, PutContexts, PutContextsRequest, PutContextsResponse;
    put_attributions_and_associations, PutAttributionsAndAssociations, PutAttributionsAndAssociationsRequest, PutAttributionsAndAssociationsResponse;
    put_parent_contexts, PutParentContexts, PutParentContextsRequest, PutParentContextsResponse;
    get_artifact_type, GetArtifactType, GetArtifactTypeRequest, GetArtifactTypeResponse;
    get_artifact_types_by_id, GetArtifactTypesByID, GetArtifactTypesByIdRequest, GetArtifactTypesByIdResponse;
    get_artifact_types, GetArtifactTypes, GetArtifactTypesRequest, GetArtifactTypesResponse;
    get_execution_type, GetExecutionType, GetExecutionTypeRequest, GetExecutionTypeResponse;
    get_execution_types_by_id, GetExecutionTypesByID, GetExecutionTypesByIdRequest, GetExecutionTypesByIdResponse;
    get_execution_types, GetExecutionTypes, GetExecutionTypesRequest, GetExecutionTypesResponse;
    get_context_type, GetContextType, GetContextTypeRequest, GetContextTypeResponse;
    get_context_types_by_id, GetContextTypesByID, GetContextTypesByIdRequest, GetContextTypesByIdResponse;
    get_context_types, GetContextTypes, GetContextTypesRequest, GetContextTypesResponse;
    get_artifacts, GetArtifacts, GetArtifactsRequest, GetArtifactsResponse;
    get_executions, GetExecutions, GetExecutionsRequest, GetExecutionsResponse;
    get_contexts, GetContexts, GetContextsRequest, GetContextsResponse;
    get_artifacts_by_id, GetArtifactsByID, GetArtifactsByIdRequest, GetArtifactsByIdResponse;
    get_executions_by_id, GetExecutionsByID, GetExecutionsByIdRequest, GetExecutionsByIdResponse;
    get_contexts_by_id, GetContextsByID, GetContextsByIdRequest, GetContextsByIdResponse;
    get_artifacts_by_type, GetArtifactsByType, GetArtifactsByTypeRequest, GetArtifactsByTypeResponse;
    get_executions_by_type, GetExecutionsByType, GetExecutionsByTypeRequest, GetExecutionsByTypeResponse;
    get_contexts_by_type, GetContextsByType, GetContextsByTypeRequest, GetContextsByTypeResponse;
    get_artifact_by_type_and_name, GetArtifactByTypeAndName, GetArtifactByTypeAndNameRequest, GetArtifactByTypeAndNameResponse;
    get_execution_by_type_and_name, GetExecutionByTypeAndName, GetExecutionByTypeAndNameRequest, GetExecutionByTypeAndNameResponse;
    get_context_by_type_and_name, GetContextByTypeAndName, GetContextByTypeAndNameRequest, GetContextByTypeAndNameResponse;
    get_artifacts_by_uri, GetArtifactsByURI, GetArtifactsByUriRequest, GetArtifactsByUriResponse;
    get_events_by_execution_i_ds, GetEventsByExecutionIDs, GetEventsByExecutionIDsRequest, GetEventsByExecutionIDsResponse;
    get_events_by_artifact_i_ds, GetEventsByArtifactIDs, GetEventsByArtifactIDsRequest, GetEventsByArtifactIDsResponse;
    get_artifacts_by_external_ids, GetArtifactsByExternalIds, GetArtifactsByExternalIdsRequest, GetArtifactsByExternalIdsResponse;
    get_executions_by_external_ids, GetExecutionsByExternalIds, GetExecutionsByExternalIdsRequest, GetExecutionsByExternalIdsResponse;
    get_contexts_by_external_ids, GetContextsByExternalIds, GetContextsByExternalIdsRequest, GetContextsByExternalIdsResponse;
    get_artifact_types_by_external_ids, GetArtifactTypesByExternalIds, GetArtifactTypesByExternalIdsRequest, GetArtifactTypesByExternalIdsResponse;
    get_execution_types_by_external_ids, GetExecutionTypesByExternalIds, GetExecutionTypesByExternalIdsRequest, GetExecutionTypesByExternalIdsResponse;
    get_context_types_by_external_ids, GetContextTypesByExternalIds, GetContextTypesByExternalIdsRequest, GetContextTypesByExternalIdsResponse;
    get_contexts_by_artifact, GetContextsByArtifact, GetContextsByArtifactRequest, GetContextsByArtifactResponse;
    get_contexts_by_execution, GetContextsByExecution, GetContextsByExecutionRequest, GetContextsByExecutionResponse;
    get_parent_contexts_by_context, GetParentContextsByContext, GetParentContextsByContextRequest, GetParentContextsByContextResponse;
    get_children_contexts_by_context, GetChildrenContextsByContext, GetChildrenContextsByContextRequest, GetChildrenContextsByContextResponse;
    get_parent_contexts_by_contexts, GetParentContextsByContexts, GetParentContextsByContextsRequest, GetParentContextsByContextsResponse;
    get_children_contexts_by_contexts, GetChildrenContextsByContexts, GetChildrenContextsByContextsRequest, GetChildrenContextsByContextsResponse;
    get_artifacts_by_context, GetArtifactsByContext, GetArtifactsByContextRequest, GetArtifactsByContextResponse;
    get_executions_by_context, GetExecutionsByContext, GetExecutionsByContextRequest, GetExecutionsByContextResponse;
    get_lineage_graph, GetLineageGraph, GetLineageGraphRequest, GetLineageGraphResponse;
    get_lineage_subgraph, GetLineageSubgraph, GetLineageSubgraphRequest, GetLineageSubgraphResponse;
}
