//! CatalogService: tenants, entity versions and documents (with their history).
//!
//! Writes answer with what they wrote, read back from this replica's store at the version or
//! revision the command's outcome names (`propose` returns once the entry is applied here, on a
//! follower too), so a retried request gets the first attempt's entity, not the current one.

use std::collections::HashSet;

use metamesh_core::{AsOf, Command, EntityUrn, Outcome};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_server::CatalogService;
use metamesh_raft::ReadConsistency;
use metamesh_store::read::{DocumentFilter, MAX_PAGE};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use metamesh_policy::Action;

use crate::api::{authz, page, status, NodeApi};

/// Where a ListEntities page continues: the store's cursor and the revision the first page read
/// at (reported on every page, and the freshness later pages need).
#[derive(Serialize, Deserialize)]
struct ListToken {
    rev: u64,
    store: String,
}

/// Where a ListVersions page continues (newest first): versions below `before`.
#[derive(Serialize, Deserialize)]
struct VersionsToken {
    before: u64,
}

impl NodeApi {
    /// The wire form of entity version `urn@version` as this replica stores it.
    async fn written_entity(&self, urn: &EntityUrn, version: u64) -> Result<v1::Entity, Status> {
        let store = self.local_store();
        match store.get_entity(&urn.clone().at(version), None).await.map_err(status::store)? {
            Some(e) => Ok(convert::entity_to_wire(&e)),
            None => Err(status::internal(&format!("{urn}@{version} was written but cannot be read back"))),
        }
    }
}

/// The entity an outcome names.
fn entity_outcome(outcome: &Outcome) -> Result<(&EntityUrn, u64), Status> {
    match outcome {
        Outcome::Entity { urn, version } => Ok((urn, *version)),
        other => Err(status::internal(&format!("unexpected outcome {other:?} of an entity write"))),
    }
}

#[tonic::async_trait]
impl CatalogService for NodeApi {
    async fn create_tenant(
        &self,
        request: Request<v1::CreateTenantRequest>,
    ) -> Result<Response<v1::CreateTenantReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("name", &r.name).map_err(status::refused)?;
        // Display name, description and owner are accepted but not kept: the tenant record holds
        // only the name until the command grows those fields.
        let done = self.propose(&caller, &r.request_id, Command::CreateTenant { tenant: tenant.clone() }).await?;
        let wire = v1::Tenant {
            created_at_ms: done.at_ms,
            created_by: caller.principal,
            revision: done.revision,
            ..convert::tenant_to_wire(&tenant, &self.shard_group)
        };
        Ok(Response::new(v1::CreateTenantReply { tenant: Some(wire), revision: done.revision }))
    }

    async fn get_tenant(&self, request: Request<v1::GetTenantRequest>) -> Result<Response<v1::GetTenantReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let tenant = convert::tenant_id("name", &r.name).map_err(status::refused)?;
        let store = self.store(r.consistency.as_ref()).await?;
        if !store.tenants().await.map_err(status::store)?.contains(&tenant) {
            return Err(status::refused(metamesh_core::CommandError::UnknownTenant(tenant)));
        }
        Ok(Response::new(v1::GetTenantReply { tenant: Some(convert::tenant_to_wire(&tenant, &self.shard_group)) }))
    }

    async fn list_tenants(
        &self,
        request: Request<v1::ListTenantsRequest>,
    ) -> Result<Response<v1::ListTenantsReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let limit = page::size(r.page_size)?;
        let after: Option<String> = page::decode(&r.page_token)?;
        let store = self.store(None).await?;
        let mut names = store.tenants().await.map_err(status::store)?;
        names.retain(|t| authorized.may(Action::Discover, t));
        let (items, next) = page::after_key(names, |t| t.to_string(), after.as_ref(), limit);
        Ok(Response::new(v1::ListTenantsReply {
            tenants: items.iter().map(|t| convert::tenant_to_wire(t, &self.shard_group)).collect(),
            next_page_token: next.map(|n| page::encode(&n)).unwrap_or_default(),
        }))
    }

    async fn put_entity(&self, request: Request<v1::PutEntityRequest>) -> Result<Response<v1::PutEntityReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let spec = convert::entity_spec(&r).map_err(status::refused)?;
        let done = self.propose(&caller, &r.request_id, Command::PutEntity(spec)).await?;
        let (urn, version) = entity_outcome(&done.outcome)?;
        let entity = self.written_entity(urn, version).await?;
        Ok(Response::new(v1::PutEntityReply { entity: Some(entity), revision: done.revision }))
    }

    async fn put_entities(
        &self,
        request: Request<v1::PutEntitiesRequest>,
    ) -> Result<Response<v1::PutEntitiesReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.entities.is_empty() {
            return Err(status::invalid("entities", "must not be empty"));
        }
        let specs = convert::entity_specs(&r.entities).map_err(status::refused)?;
        let command = Command::Batch { commands: specs.into_iter().map(Command::PutEntity).collect() };
        let done = self.propose(&caller, &r.request_id, command).await?;
        let Outcome::Batch { outcomes } = &done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of a batch", done.outcome)));
        };
        let mut entities = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let (urn, version) = entity_outcome(outcome)?;
            entities.push(self.written_entity(urn, version).await?);
        }
        Ok(Response::new(v1::PutEntitiesReply { entities, revision: done.revision }))
    }

    async fn delete_entity(
        &self,
        request: Request<v1::DeleteEntityRequest>,
    ) -> Result<Response<v1::DeleteEntityReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let urn = convert::entity_urn_at("urn", &r.urn).map_err(status::refused)?;
        let command = Command::DeleteEntity { urn, expect_version: r.expect_version };
        let done = self.propose(&caller, &r.request_id, command).await?;
        let (urn, version) = entity_outcome(&done.outcome)?;
        let entity = self.written_entity(urn, version).await?;
        Ok(Response::new(v1::DeleteEntityReply { entity: Some(entity), revision: done.revision }))
    }

    async fn get_entity(&self, request: Request<v1::GetEntityRequest>) -> Result<Response<v1::GetEntityReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let urn = convert::urn_at("urn", &r.urn).map_err(status::refused)?;
        // A named version is immutable: the as-of point does not apply to it.
        let as_of = if urn.version.is_some() { None } else { convert::as_of(r.as_of.as_ref()) };
        let store = self.store(r.consistency.as_ref()).await?;
        let read_revision = self.read_revision(&store, as_of).await?;
        let not_found = || status::refused(metamesh_core::CommandError::NotFound(r.urn.clone()));
        let found = store.get_entity(&urn, as_of).await.map_err(status::store)?.ok_or_else(not_found)?;
        if found.deleted && !r.include_deleted {
            return Err(not_found());
        }
        let entity = match r.read_schema_version {
            None => found,
            // Pinned to the version just found, so that a write in between cannot change which
            // version is migrated.
            Some(v) => store
                .get_entity_as_schema(&found.urn.clone().at(found.version), None, v)
                .await
                .map_err(status::store)?
                .ok_or_else(not_found)?,
        };
        Ok(Response::new(v1::GetEntityReply { entity: Some(convert::entity_to_wire(&entity)), read_revision }))
    }

    async fn batch_get_entities(
        &self,
        request: Request<v1::BatchGetEntitiesRequest>,
    ) -> Result<Response<v1::BatchGetEntitiesReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.urns.len() > MAX_PAGE {
            return Err(status::invalid("urns", format!("{} urns, over the maximum of {MAX_PAGE}", r.urns.len())));
        }
        let urns = r
            .urns
            .iter()
            .enumerate()
            .map(|(i, u)| convert::urn_at(&format!("urns[{i}]"), u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(status::refused)?;
        let as_of = convert::as_of(r.as_of.as_ref());
        let store = self.store(r.consistency.as_ref()).await?;
        let owned: HashSet<_> = store.tenants().await.map_err(status::store)?.into_iter().collect();
        let mut reply = v1::BatchGetEntitiesReply::default();
        let mut foreign = 0;
        for (urn, text) in urns.iter().zip(&r.urns) {
            if !owned.contains(urn.entity.tenant()) {
                foreign += 1;
                reply.missing_urns.push(text.clone());
                continue;
            }
            let at = if urn.version.is_some() { None } else { as_of };
            match store.get_entity(urn, at).await.map_err(status::store)? {
                Some(e) if !e.deleted || r.include_deleted => reply.entities.push(convert::entity_to_wire(&e)),
                _ => reply.missing_urns.push(text.clone()),
            }
        }
        if foreign > 0 {
            reply.partial = true;
            reply.partial_reasons.push(convert::partial_reason(
                "NOT_OWNED",
                format!("{foreign} urns belong to tenants this shard group does not own; ask the router"),
                &self.shard_group,
            ));
        }
        Ok(Response::new(reply))
    }

    async fn list_entities(
        &self,
        request: Request<v1::ListEntitiesRequest>,
    ) -> Result<Response<v1::ListEntitiesReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let filter = convert::list_filter(&r).map_err(status::refused)?;
        if filter.tenant.is_none() {
            return Err(status::invalid("tenant", "must not be empty"));
        }
        let limit = page::size(r.page_size)?;
        let (rev, page) = match page::decode::<ListToken>(&r.page_token)? {
            // Later pages read the first page's snapshot, which must have been applied here.
            Some(token) => {
                let store = self.replica.read(ReadConsistency::MinRevision(token.rev)).await.map_err(status::read)?;
                (token.rev, store.list_entities(&filter, None, Some(&token.store), limit).await)
            }
            None => {
                let store = self.store(r.consistency.as_ref()).await?;
                // Pin the snapshot here, rather than letting the store pick it, so that the
                // reply can say which revision it is.
                let applied = store.applied_revision().await.map_err(status::store)?;
                let at = store.resolve_as_of(convert::as_of(r.as_of.as_ref())).await.map_err(status::store)?;
                let rev = at.map_or(applied, |a| a.min(applied));
                (rev, store.list_entities(&filter, Some(AsOf::Revision(rev)), None, limit).await)
            }
        };
        let page = page.map_err(status::store)?;
        Ok(Response::new(v1::ListEntitiesReply {
            entities: page
                .items
                .iter()
                .filter_map(|e| authorized.view(e))
                .map(|e| convert::entity_to_wire(&e))
                .collect(),
            next_page_token: page.next.map(|store| page::encode(&ListToken { rev, store })).unwrap_or_default(),
            read_revision: rev,
        }))
    }

    async fn list_versions(
        &self,
        request: Request<v1::ListVersionsRequest>,
    ) -> Result<Response<v1::ListVersionsReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let urn = convert::entity_urn_at("urn", &r.urn).map_err(status::refused)?;
        let limit = page::size(r.page_size)?;
        let token: Option<VersionsToken> = page::decode(&r.page_token)?;
        let store = self.store(r.consistency.as_ref()).await?;
        // Versions are immutable and only ever added above the latest, so paging down from a
        // version number is stable while writes continue.
        let before = match token {
            Some(t) => t.before,
            None => {
                let latest = store.get_entity(&urn.clone().unversioned(), None).await.map_err(status::store)?;
                let latest = latest.ok_or_else(|| status::refused(metamesh_core::CommandError::NotFound(r.urn)))?;
                latest.version + 1
            }
        };
        let after = before.saturating_sub(1 + limit as u64);
        let mut versions = store.versions(&urn, after, limit).await.map_err(status::store)?;
        versions.retain(|v| v.version < before);
        versions.reverse();
        let next =
            versions.last().filter(|v| v.version > 1).map(|v| page::encode(&VersionsToken { before: v.version }));
        Ok(Response::new(v1::ListVersionsReply {
            versions: versions.iter().map(convert::entity_to_wire).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn put_document(
        &self,
        request: Request<v1::PutDocumentRequest>,
    ) -> Result<Response<v1::PutDocumentReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.expect_version.is_some() {
            return Err(no_document_expect_version());
        }
        let urn = convert::entity_urn_at("entity_urn", &r.entity_urn).map_err(status::refused)?;
        let command = Command::PutDocument { urn, title: r.title, body: r.body_markdown };
        let done = self.propose(&caller, &r.request_id, command).await?;
        let Outcome::Document { urn, title, version } = &done.outcome else {
            return Err(status::internal(&format!("unexpected outcome {:?} of a document write", done.outcome)));
        };
        let docs = self.local_store().documents(urn, Some(AsOf::Revision(done.revision))).await;
        let document =
            docs.map_err(status::store)?.into_iter().find(|d| &d.title == title && d.version == *version).ok_or_else(
                || status::internal(&format!("document `{title}` v{version} of {urn} cannot be read back")),
            )?;
        Ok(Response::new(v1::PutDocumentReply {
            document: Some(convert::document_to_wire(&document)),
            revision: done.revision,
        }))
    }

    async fn delete_document(
        &self,
        request: Request<v1::DeleteDocumentRequest>,
    ) -> Result<Response<v1::WriteResult>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        if r.expect_version.is_some() {
            return Err(no_document_expect_version());
        }
        let urn = convert::entity_urn_at("entity_urn", &r.entity_urn).map_err(status::refused)?;
        let done = self.propose(&caller, &r.request_id, Command::DeleteDocument { urn, title: r.title }).await?;
        Ok(Response::new(v1::WriteResult { revision: done.revision }))
    }

    /// Erases personal data of an entity (see `Command::Erase`).
    async fn erase_entity_data(
        &self,
        request: Request<v1::EraseEntityDataRequest>,
    ) -> Result<Response<v1::EraseEntityDataReply>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let urn = convert::entity_urn_at("urn", &r.urn).map_err(status::refused)?;
        let command = Command::Erase { urn, properties: r.properties, documents: r.documents };
        let done = self.propose(&caller, &r.request_id, command).await?;
        let Outcome::Erased { versions, documents, .. } = done.outcome else {
            return Err(status::internal(&"an erasure applied without its outcome"));
        };
        Ok(Response::new(v1::EraseEntityDataReply { revision: done.revision, versions, documents }))
    }

    /// The documents of an entity: the latest version of each, or with `all_versions` every
    /// version (newest first within a title); deleted documents only with `include_deleted`.
    /// Paged by (title, version), which new versions cannot shift.
    async fn list_documents(
        &self,
        request: Request<v1::ListDocumentsRequest>,
    ) -> Result<Response<v1::ListDocumentsReply>, Status> {
        let _caller = self.caller(&request)?;
        let r = request.into_inner();
        let urn = convert::entity_urn_at("entity_urn", &r.entity_urn).map_err(status::refused)?;
        let limit = page::size(r.page_size)?;
        let token = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let filter = DocumentFilter {
            title: (!r.title.is_empty()).then(|| r.title.clone()),
            all_versions: r.all_versions,
            include_deleted: r.include_deleted,
        };
        let as_of = convert::as_of(r.as_of.as_ref());
        let store = self.store(r.consistency.as_ref()).await?;
        if store.get_entity(&urn.clone().unversioned(), as_of).await.map_err(status::store)?.is_none() {
            return Err(status::refused(metamesh_core::CommandError::NotFound(r.entity_urn)));
        }
        let page = store.list_documents(&urn, &filter, as_of, token, limit).await.map_err(status::store)?;
        Ok(Response::new(v1::ListDocumentsReply {
            documents: page.items.iter().map(convert::document_to_wire).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }
}

/// Documents have no compare-and-set in the store's commands yet; checking before proposing
/// would race with other writers, so the option is refused rather than half honoured.
fn no_document_expect_version() -> Status {
    status::unimplemented(
        "`expect_version` on documents",
        "the document commands carry no expected version; omit it to write unconditionally",
    )
}
