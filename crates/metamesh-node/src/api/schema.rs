//! SchemaService: registering and reading schema versions of a tenant's types, and listing the
//! types.

use metamesh_core::schema::SchemaVersion;
use metamesh_core::{Command, CommandError, ErrorCode, Kind, Outcome};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::schema_service_server::SchemaService;
use metamesh_store::StoreError;
use tonic::{Request, Response, Status};

use crate::api::{page, status, NodeApi};

#[tonic::async_trait]
impl SchemaService for NodeApi {
    async fn register_schema(
        &self,
        request: Request<v1::RegisterSchemaRequest>,
    ) -> Result<Response<v1::SchemaVersion>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let spec = convert::schema_spec(&r).map_err(status::refused)?;
        let done = self.propose(&caller, &r.request_id, Command::RegisterSchema(spec)).await?;
        let Outcome::Schema { tenant, type_name, version } = &done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of a schema registration", done.outcome)));
        };
        let stored = self.local_store().schema(tenant, type_name, Some(*version)).await.map_err(status::store)?;
        let stored = stored.ok_or_else(|| {
            status::internal(&format!("schema {tenant}/{type_name} v{version} was registered but cannot be read back"))
        })?;
        Ok(Response::new(convert::schema_version_to_wire(&stored)))
    }

    async fn get_schema(&self, request: Request<v1::GetSchemaRequest>) -> Result<Response<v1::SchemaVersion>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("tenant", &r.tenant).map_err(status::refused)?;
        let type_name = convert::required_type_name("type_name", &r.type_name).map_err(status::refused)?;
        if r.version == Some(0) {
            return Err(status::invalid("version", "versions start at 1"));
        }
        let store = self.store(r.consistency.as_ref()).await?;
        match store.schema(&tenant, &type_name, r.version).await.map_err(status::store)? {
            Some(s) => Ok(Response::new(convert::schema_version_to_wire(&s))),
            None => Err(status::refused(match r.version {
                Some(version) if store.schema(&tenant, &type_name, None).await.map_err(status::store)?.is_some() => {
                    CommandError::UnknownSchemaVersion { type_name, version }
                }
                _ => CommandError::UnknownType { tenant, type_name },
            })),
        }
    }

    async fn list_schema_versions(
        &self,
        request: Request<v1::ListSchemaVersionsRequest>,
    ) -> Result<Response<v1::ListSchemaVersionsReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("tenant", &r.tenant).map_err(status::refused)?;
        let type_name = convert::required_type_name("type_name", &r.type_name).map_err(status::refused)?;
        let limit = page::size(r.page_size)?;
        let after: Option<u32> = page::decode(&r.page_token)?;
        let store = self.store(None).await?;
        let versions = store.schema_versions(&tenant, &type_name).await.map_err(status::store)?;
        if versions.is_empty() {
            return Err(status::refused(CommandError::UnknownType { tenant, type_name }));
        }
        let (items, next) = page::after_key(versions, |s: &SchemaVersion| s.version, after.as_ref(), limit);
        Ok(Response::new(v1::ListSchemaVersionsReply {
            versions: items.iter().map(convert::schema_version_to_wire).collect(),
            next_page_token: next.map(|n| page::encode(&n)).unwrap_or_default(),
        }))
    }

    /// The latest schema version of each type of a tenant, by type name. The request has no
    /// consistency field: it reads linearizably, and a page token pins the revision of the
    /// first page, so later pages do not shift while types are registered.
    async fn list_types(&self, request: Request<v1::ListTypesRequest>) -> Result<Response<v1::ListTypesReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("tenant", &r.tenant).map_err(status::refused)?;
        let base_kind = match r.base_kind.trim() {
            "" => None,
            kind => Some(kind.parse::<Kind>().map_err(|e| status::invalid("base_kind", e.to_string()))?),
        };
        let limit = page::size(r.page_size)?;
        let token = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let store = self.store(None).await?;
        let page = store.list_types(&tenant, base_kind, None, token, limit).await.map_err(status::store)?;
        Ok(Response::new(v1::ListTypesReply {
            types: page.items.iter().map(convert::schema_version_to_wire).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn check_compatibility(
        &self,
        request: Request<v1::CheckCompatibilityRequest>,
    ) -> Result<Response<v1::CheckCompatibilityReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let spec = convert::check_schema_spec(&r).map_err(status::refused)?;
        let store = self.store(None).await?;
        let latest = store.schema(&spec.tenant, &spec.type_name, None).await.map_err(status::store)?;
        let mode = spec.compatibility.or(latest.as_ref().map(|l| l.compatibility)).unwrap_or_default();
        let mut reply = v1::CheckCompatibilityReply {
            compatible: true,
            compatibility: convert::compatibility_to_wire(mode) as i32,
            against_version: latest.as_ref().map(|l| l.version),
            problems: Vec::new(),
        };
        match store.check_schema(&spec).await {
            Ok(_) => {}
            // A missing tenant is a failed call, not an answer about the schema.
            Err(StoreError::Invalid(e)) if e.code() == ErrorCode::NotFound => return Err(status::refused(e)),
            Err(StoreError::Invalid(e)) => {
                reply.compatible = false;
                reply.problems.push(convert::error_detail(&e));
            }
            Err(other) => return Err(status::store(other)),
        }
        Ok(Response::new(reply))
    }
}
