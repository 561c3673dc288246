//! The one enforcement point: every client RPC is authorized here, once, before any handler runs.
//!
//! [`AuthzLayer`] is a tower layer for the client listener. For each request it
//! 1. finds the RPC in [`RULES`] — an RPC without a rule is refused (PERMISSION_DENIED), so a new
//!    RPC cannot be served until someone decides which policy action it needs;
//! 2. authenticates the caller ([`caller::authenticate_parts`]);
//! 3. decodes the request message generically (the service descriptors of `metamesh-proto`) and
//!    reads the resources the rule names — URNs, a tenant, lineage edges;
//! 4. checks them against one snapshot of the policy, and either answers with a refusal or hands
//!    the request on with an [`Authorized`] in its extensions.
//!
//! A refusal never says more than the caller may know: a caller who may not even discover a
//! resource is told NOT_FOUND, exactly what a missing resource gets; one who may discover it
//! but not act on it is told PERMISSION_DENIED. Handlers that return many entities (listings,
//! search, watch, lineage) filter them with [`Authorized`]'s policy snapshot.
//!
//! Requests with a malformed resource (a URN that does not parse) are passed on unchecked: the
//! handler refuses them with INVALID_ARGUMENT before touching any data.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use metamesh_core::command::AuditEvent;
use metamesh_core::{CommandError, EntityUrn, TenantId};
use metamesh_policy::{Action, Authorizer, PolicySet, Resource, Visibility};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::api::audit_feed::AuditFeed;
use crate::api::caller::{self, Caller};

/// What a request was authorized as, for handlers that filter what they return.
#[derive(Clone)]
pub struct Authorized {
    pub caller: Caller,
    /// The policy the request was checked against (one snapshot for the whole request).
    pub policy: Arc<PolicySet>,
    /// The tenants the request's resources belong to, in request order (for an edge, the
    /// tenant that stores it): where a router sends it.
    pub tenants: Vec<TenantId>,
}

impl Authorized {
    /// How much of entity `urn` the caller may see.
    pub fn visibility(&self, urn: &EntityUrn) -> Visibility {
        self.policy.visibility(&self.caller.principal, urn)
    }

    /// Whether the caller holds `action` on tenant `tenant`.
    pub fn may(&self, action: Action, tenant: &TenantId) -> bool {
        self.policy.check(&self.caller.principal, action, &Resource::Tenant(tenant)).allowed
    }
}

/// The [`Authorized`] the layer attached to `request`. Its absence means the service is being
/// served without the layer: refused (fail closed), never answered unchecked.
pub fn authorized<T>(request: &tonic::Request<T>) -> Result<Authorized, Status> {
    request.extensions().get::<Authorized>().cloned().ok_or_else(|| {
        Status::permission_denied("this request was not authorized (the node serves it without its policy layer)")
    })
}

/// What a caller who may only discover `e` sees of it: its URN (tenant, kind, name), whether it
/// is deleted, its version and revision — no type, properties, tags, people or text.
pub fn redact(e: &metamesh_core::EntityVersion) -> metamesh_core::EntityVersion {
    discoverable(e.urn.clone(), e.version, e.deleted, e.created_at_ms, e.updated_at_ms, e.revision)
}

/// The entity version made of what discovery shows and nothing else (see [`redact`]).
pub fn discoverable(
    urn: EntityUrn,
    version: u64,
    deleted: bool,
    created_at_ms: i64,
    updated_at_ms: i64,
    revision: u64,
) -> metamesh_core::EntityVersion {
    metamesh_core::EntityVersion {
        urn,
        version,
        type_name: None,
        schema_version: None,
        properties: serde_json::Value::Object(Default::default()),
        tags: Vec::new(),
        owner: None,
        status: None,
        description: None,
        deleted,
        created_at_ms,
        created_by: String::new(),
        updated_at_ms,
        updated_by: String::new(),
        revision,
    }
}

impl Authorized {
    /// `e` as the caller may see it: whole, redacted ([`redact`]), or not at all.
    pub fn view(&self, e: &metamesh_core::EntityVersion) -> Option<metamesh_core::EntityVersion> {
        match self.visibility(&e.urn) {
            Visibility::Full => Some(e.clone()),
            Visibility::DiscoverOnly => Some(redact(e)),
            Visibility::Hidden => None,
        }
    }

    /// Whether the caller may know that `urn` exists.
    pub fn sees(&self, urn: &EntityUrn) -> bool {
        self.visibility(urn) != Visibility::Hidden
    }
}

/// Where a rule finds the resources to check.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Anyone with a mesh certificate (health, reflection).
    Public,
    /// The mesh itself.
    Mesh,
    /// The tenant named by a string field.
    Tenant(&'static str),
    /// Every URN at a field path (`urn`, `urns`, `entities.urn`): all must be allowed.
    Urns(&'static str),
    /// Lineage edges (`EdgeSpec`s) at a field: `link` on both ends.
    Edges(&'static str),
    /// The tenants listed in a repeated field, each checked; an empty list means "all I may
    /// see" and the handler filters the results.
    Tenants(&'static str),
    /// Any authenticated caller; the handler filters every result.
    Filtered,
    /// Replicas of the mesh only (a node certificate, calling for itself): internal RPCs.
    Replicas,
    /// Routers only, calling as themselves: internal RPCs.
    Routers,
    /// The caller's home tenant (MLMD, whose requests name none): the tenant in the
    /// [`TENANT_HEADER`] if the request has one, else the one tenant the policy lets the caller
    /// write in (or, failing that, read) — see `PolicySet::home_tenants`.
    HomeTenant,
}

/// Metadata naming the tenant of a request whose messages name none (MLMD).
pub const TENANT_HEADER: &str = "x-metamesh-tenant";

/// The gRPC path prefix of Google's MLMD service.
pub const MLMD_PREFIX: &str = "/ml_metadata.MetadataStoreService/";

/// The action an RPC needs, and on what.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub action: Option<Action>,
    pub target: Target,
}

const fn rule(action: Action, target: Target) -> Rule {
    Rule { action: Some(action), target }
}

const PUBLIC: Rule = Rule { action: None, target: Target::Public };

/// Every RPC a node serves, by gRPC path prefix (`/package.Service/` for a whole service).
/// See `docs/policies.md` ("Actions per RPC"). A test checks that every RPC of `metamesh.v1`
/// has an entry.
pub const RULES: &[(&str, Rule)] = &[
    ("/grpc.health.v1.Health/", PUBLIC),
    ("/grpc.reflection.v1.ServerReflection/", PUBLIC),
    ("/grpc.reflection.v1alpha.ServerReflection/", PUBLIC),
    ("/metamesh.v1.CatalogService/CreateTenant", rule(Action::TenantCreate, Target::Tenant("name"))),
    ("/metamesh.v1.CatalogService/GetTenant", rule(Action::Discover, Target::Tenant("name"))),
    ("/metamesh.v1.CatalogService/ListTenants", Rule { action: None, target: Target::Filtered }),
    ("/metamesh.v1.CatalogService/PutEntity", rule(Action::Write, Target::Urns("urn"))),
    ("/metamesh.v1.CatalogService/PutEntities", rule(Action::Write, Target::Urns("entities.urn"))),
    ("/metamesh.v1.CatalogService/DeleteEntity", rule(Action::Delete, Target::Urns("urn"))),
    ("/metamesh.v1.CatalogService/GetEntity", rule(Action::Read, Target::Urns("urn"))),
    ("/metamesh.v1.CatalogService/BatchGetEntities", rule(Action::Read, Target::Urns("urns"))),
    ("/metamesh.v1.CatalogService/ListEntities", rule(Action::Discover, Target::Tenant("tenant"))),
    ("/metamesh.v1.CatalogService/ListVersions", rule(Action::Read, Target::Urns("urn"))),
    ("/metamesh.v1.CatalogService/PutDocument", rule(Action::Write, Target::Urns("entity_urn"))),
    ("/metamesh.v1.CatalogService/DeleteDocument", rule(Action::Write, Target::Urns("entity_urn"))),
    ("/metamesh.v1.CatalogService/ListDocuments", rule(Action::Read, Target::Urns("entity_urn"))),
    ("/metamesh.v1.CatalogService/EraseEntityData", rule(Action::Delete, Target::Urns("urn"))),
    ("/metamesh.v1.LineageService/AddEdges", rule(Action::Link, Target::Edges("edges"))),
    ("/metamesh.v1.LineageService/RemoveEdges", rule(Action::Link, Target::Edges("edges"))),
    ("/metamesh.v1.LineageService/GetEdges", rule(Action::Read, Target::Urns("urns"))),
    ("/metamesh.v1.LineageService/Expand", rule(Action::Discover, Target::Urns("urns"))),
    ("/metamesh.v1.LineageService/DeliverReferences", Rule { action: None, target: Target::Replicas }),
    // OpenLineage events of a tenant's jobs; `link` on each foreign input is checked by the
    // handler (the datasets are in the events, not in fields the layer reads).
    ("/metamesh.v1.LineageService/IngestOpenLineage", rule(Action::Write, Target::Tenant("tenant"))),
    ("/metamesh.v1.LineageService/ListOpenLineageEvents", rule(Action::Read, Target::Tenant("tenant"))),
    ("/metamesh.v1.SchemaService/RegisterSchema", rule(Action::SchemaWrite, Target::Tenant("tenant"))),
    ("/metamesh.v1.SchemaService/GetSchema", rule(Action::SchemaRead, Target::Tenant("tenant"))),
    ("/metamesh.v1.SchemaService/ListSchemaVersions", rule(Action::SchemaRead, Target::Tenant("tenant"))),
    ("/metamesh.v1.SchemaService/ListTypes", rule(Action::SchemaRead, Target::Tenant("tenant"))),
    ("/metamesh.v1.SchemaService/CheckCompatibility", rule(Action::SchemaRead, Target::Tenant("tenant"))),
    ("/metamesh.v1.SearchService/Search", rule(Action::Search, Target::Tenants("tenants"))),
    ("/metamesh.v1.WatchService/Watch", rule(Action::Watch, Target::Tenants("tenants"))),
    ("/metamesh.v1.AdminService/Status", rule(Action::AdminRead, Target::Mesh)),
    ("/metamesh.v1.AdminService/Health", rule(Action::AdminRead, Target::Mesh)),
    ("/metamesh.v1.AdminService/GetShardMap", rule(Action::AdminRead, Target::Mesh)),
    ("/metamesh.v1.AdminService/AddLearner", rule(Action::AdminWrite, Target::Mesh)),
    ("/metamesh.v1.AdminService/RemoveLearner", rule(Action::AdminWrite, Target::Mesh)),
    ("/metamesh.v1.AdminService/ChangeMembership", rule(Action::AdminWrite, Target::Mesh)),
    ("/metamesh.v1.AdminService/TriggerSnapshot", rule(Action::AdminWrite, Target::Mesh)),
    // Listings filter by tenant: `audit.read` on a tenant shows its records; on the mesh, all.
    ("/metamesh.v1.AuditService/ListRecords", rule(Action::AuditRead, Target::Filtered)),
    ("/metamesh.v1.AuditService/Export", rule(Action::AuditRead, Target::Filtered)),
    ("/metamesh.v1.AuditService/Verify", rule(Action::AuditRead, Target::Mesh)),
    ("/metamesh.v1.AuditService/GetCheckpoint", rule(Action::AuditRead, Target::Mesh)),
    ("/metamesh.v1.AuditService/GetInclusionProof", rule(Action::AuditRead, Target::Mesh)),
    ("/metamesh.v1.AuditService/GetConsistencyProof", rule(Action::AuditRead, Target::Mesh)),
    ("/metamesh.v1.AuditService/RecordEvent", Rule { action: None, target: Target::Routers }),
];

/// The rule of an RPC path, if it has one.
pub fn rule_for(path: &str) -> Option<Rule> {
    // MLMD: its writes are `Put*`, its reads `Get*`, all in the caller's home tenant.
    if let Some(method) = path.strip_prefix(MLMD_PREFIX) {
        let action = if method.starts_with("Put") { Action::Write } else { Action::Read };
        return Some(rule(action, Target::HomeTenant));
    }
    RULES.iter().find(|(p, _)| if p.ends_with('/') { path.starts_with(p) } else { path == *p }).map(|(_, r)| *r)
}

/// Most bytes of a request message the layer reads to authorize it (the transport's own limit
/// on a message is 4 MiB).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// The authorization layer of a node's client listener.
#[derive(Clone)]
pub struct AuthzLayer {
    inner: Arc<Shared>,
}

struct Shared {
    authorizer: Authorizer,
    pool: DescriptorPool,
    /// Where refusals and sensitive reads go to be recorded (through Raft); none in tests that
    /// do not look at the audit log.
    audit: Option<Arc<dyn AuditSink>>,
}

/// Where the layer's audit events go: a node's [`AuditFeed`] (through Raft), or a router's
/// sink, which sends them to the shard of the tenant concerned.
pub trait AuditSink: Send + Sync {
    /// Takes `event` about `caller`; never waits.
    fn record(&self, caller: &Caller, event: AuditEvent);
}

impl AuditSink for AuditFeed {
    fn record(&self, caller: &Caller, event: AuditEvent) {
        AuditFeed::record(self, caller, event)
    }
}

impl AuthzLayer {
    pub fn new(authorizer: Authorizer) -> AuthzLayer {
        let pool = DescriptorPool::decode(metamesh_proto::FILE_DESCRIPTOR_SET)
            .expect("metamesh-proto's descriptor set decodes");
        AuthzLayer { inner: Arc::new(Shared { authorizer, pool, audit: None }) }
    }

    /// Records refusals and sensitive reads through `feed`.
    pub fn with_audit(self, feed: impl AuditSink + 'static) -> AuthzLayer {
        let shared = Shared {
            authorizer: self.inner.authorizer.clone(),
            pool: self.inner.pool.clone(),
            audit: Some(Arc::new(feed)),
        };
        AuthzLayer { inner: Arc::new(shared) }
    }
}

impl<S> tower_layer::Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz { shared: self.inner.clone(), inner }
    }
}

/// [`AuthzLayer`]'s service.
#[derive(Clone)]
pub struct Authz<S> {
    shared: Arc<Shared>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower_service::Service<http::Request<Body>> for Authz<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone that was made ready goes with this call; a fresh clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            match shared.authorize(request).await {
                Ok(request) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

impl Shared {
    async fn authorize(&self, request: http::Request<Body>) -> Result<http::Request<Body>, Status> {
        let path = request.uri().path().to_owned();
        let Some(rule) = rule_for(&path) else {
            tracing::warn!(%path, "refused an RPC that has no authorization rule");
            return Err(Status::permission_denied(format!("{path} has no authorization rule on this node")));
        };
        let (mut parts, body) = request.into_parts();
        // The headers are lent to a metadata view and given back (no copy per request).
        let metadata = MetadataMap::from_headers(std::mem::take(&mut parts.headers));
        let authenticated = caller::authenticate_parts(&parts.extensions, &metadata);
        let tenant_hint = metadata.get(TENANT_HEADER).map(|v| v.to_str().map(str::to_owned).map_err(|_| ()));
        parts.headers = metadata.into_headers();
        let mut caller = authenticated?;
        let policy = self.authorizer.snapshot();
        caller.policy_digest = Some(policy.digest().to_string());
        let check = Check {
            policy: &policy,
            caller: &caller,
            path: &path,
            events: Default::default(),
            tenants: Default::default(),
        };
        let checked = match (rule.action, rule.target) {
            (_, target @ (Target::Replicas | Target::Routers)) => {
                let role = if matches!(target, Target::Replicas) {
                    metamesh_tls::PeerRole::Node
                } else {
                    metamesh_tls::PeerRole::Router
                };
                if caller.peer.role == role && !caller.forwarded {
                    Ok(http::Request::from_parts(parts, body))
                } else {
                    check.event(Action::AdminWrite, None, path.clone(), false);
                    Err(Status::permission_denied(format!("{path} is internal to the mesh ({role:?} peers only)")))
                }
            }
            (None, _) | (_, Target::Public) | (_, Target::Filtered) => Ok(http::Request::from_parts(parts, body)),
            (Some(action), Target::HomeTenant) => home_tenant(&check, tenant_hint)
                .and_then(|tenant| {
                    deny_unless(&check, action, &Resource::Tenant(&tenant), tenant.as_str())?;
                    check.tenants.borrow_mut().push(tenant);
                    Ok(())
                })
                .map(|()| http::Request::from_parts(parts, body)),
            (Some(action), Target::Mesh) => {
                deny_unless(&check, action, &Resource::Mesh, "").map(|()| http::Request::from_parts(parts, body))
            }
            (Some(action), target) => {
                let bytes = read_body(body).await?;
                let message = self.decode(&path, &bytes)?;
                check_message(&check, action, target, &message)
                    .map(|()| http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes))))
            }
        };
        if let Some(feed) = &self.audit {
            for event in check.events.take() {
                feed.record(&caller, event);
            }
        }
        let checked = checked?;
        let (mut parts, body) = checked.into_parts();
        let tenants = check.tenants.take();
        parts.extensions.insert(Authorized { caller, policy, tenants });
        Ok(http::Request::from_parts(parts, body))
    }

    /// Decodes the one message of a unary request body (one uncompressed gRPC frame).
    fn decode(&self, path: &str, body: &Bytes) -> Result<DynamicMessage, Status> {
        let descriptor = self.input_of(path)?;
        let mut frame = body.clone();
        if frame.len() < 5 {
            return Err(Status::invalid_argument("empty request"));
        }
        let compressed = frame.get_u8();
        let len = frame.get_u32() as usize;
        if compressed != 0 {
            return Err(Status::invalid_argument("compressed requests are not accepted"));
        }
        if len != frame.len() {
            return Err(Status::invalid_argument("a request must be exactly one message"));
        }
        DynamicMessage::decode(descriptor, frame)
            .map_err(|e| Status::invalid_argument(format!("bad request message: {e}")))
    }

    fn input_of(&self, path: &str) -> Result<MessageDescriptor, Status> {
        let mut names = path.trim_start_matches('/').splitn(2, '/');
        let (service, method) = (names.next().unwrap_or_default(), names.next().unwrap_or_default());
        self.pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .map(|m| m.input())
            .ok_or_else(|| Status::unimplemented(format!("{path} is not a method of this node")))
    }
}

async fn read_body(body: Body) -> Result<Bytes, Status> {
    let limited = http_body_util::Limited::new(body, MAX_MESSAGE);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(Status::resource_exhausted(format!("request not readable within {MAX_MESSAGE} bytes: {e}"))),
    }
}

/// Checks every resource `target` names in `message`.
fn check_message(check: &Check<'_>, action: Action, target: Target, message: &DynamicMessage) -> Result<(), Status> {
    let (policy, caller) = (check.policy, check.caller);
    match target {
        Target::Public | Target::Filtered | Target::Replicas | Target::Routers | Target::HomeTenant => Ok(()),
        Target::Mesh => deny_unless(check, action, &Resource::Mesh, ""),
        Target::Tenant(field) => match strings(message, field).first().map(|t| (TenantId::new(t), t.clone())) {
            Some((Ok(tenant), text)) => {
                deny_unless(check, action, &Resource::Tenant(&tenant), &text)?;
                check.tenants.borrow_mut().push(tenant);
                Ok(())
            }
            // Missing or malformed: the handler refuses it as invalid.
            _ => Ok(()),
        },
        Target::Tenants(field) => {
            for name in strings(message, field) {
                if let Ok(tenant) = TenantId::new(&name) {
                    deny_unless(check, action, &Resource::Tenant(&tenant), &name)?;
                    check.tenants.borrow_mut().push(tenant);
                }
            }
            Ok(())
        }
        Target::Urns(field) => {
            for text in strings(message, field) {
                if let Ok(urn) = text.parse::<metamesh_core::Urn>() {
                    deny_unless(check, action, &Resource::Entity(&urn.entity), &text)?;
                    check.tenants.borrow_mut().push(urn.entity.tenant().clone());
                }
            }
            Ok(())
        }
        Target::Edges(field) => {
            for edge in messages(message, field) {
                let end = |f: &str| {
                    strings(&edge, f).first().and_then(|t| t.parse::<metamesh_core::Urn>().ok().map(|u| (u, t.clone())))
                };
                if let (Some((from, from_text)), Some((to, to_text))) = (end("from_urn"), end("to_urn")) {
                    check.tenants.borrow_mut().push(metamesh_core::command::edge_owner_of(&from, &to).clone());
                    let decision = policy.check_edge(&caller.principal, &from.entity, &to.entity);
                    if !decision.allowed {
                        check.event(action, None, format!("{} -> {}", from.entity, to.entity), false);
                        // Say which end is refused only if the caller may know it exists.
                        for (urn, text) in [(&from.entity, &from_text), (&to.entity, &to_text)] {
                            deny_unless(check, action, &Resource::Entity(urn), text)?;
                        }
                        return Err(Status::permission_denied(format!(
                            "`{}` may not link {} to {}",
                            caller.principal, from.entity, to.entity
                        )));
                    }
                }
            }
            Ok(())
        }
    }
}

/// The tenant of a request that names none: the header's, or the caller's one home tenant.
fn home_tenant(check: &Check<'_>, hint: Option<Result<String, ()>>) -> Result<TenantId, Status> {
    match hint {
        Some(Ok(text)) => TenantId::new(&text)
            .map_err(|e| Status::invalid_argument(format!("invalid `{TENANT_HEADER}` metadata `{text}`: {e}"))),
        Some(Err(_)) => Err(Status::invalid_argument(format!("invalid `{TENANT_HEADER}` metadata: not ASCII text"))),
        None => {
            let principal = &check.caller.principal;
            let homes = check.policy.home_tenants(principal);
            match homes.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(Status::permission_denied(format!(
                    "`{principal}` may neither write nor read in any tenant, so it has no home tenant"
                ))),
                several => Err(Status::failed_precondition(format!(
                    "`{principal}` may write in tenants {}: send `{TENANT_HEADER}` metadata to choose one",
                    several.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
    }
}

/// One request's check: the policy snapshot, the caller, and the audit events it produces
/// (refusals, and reads of resources the policy marks sensitive).
struct Check<'a> {
    policy: &'a PolicySet,
    caller: &'a Caller,
    path: &'a str,
    events: std::cell::RefCell<Vec<AuditEvent>>,
    tenants: std::cell::RefCell<Vec<TenantId>>,
}

impl Check<'_> {
    fn event(&self, action: Action, tenant: Option<TenantId>, resource: String, allowed: bool) {
        let event = AuditEvent { action: action.as_str().to_owned(), tenant, resource, allowed, count: 1 };
        self.events.borrow_mut().push(event);
    }
}

/// Refuses unless `caller` holds `action` on `resource`: NOT_FOUND when the caller may not even
/// discover it — the very status a missing resource gets from the handler, `as_sent` being the
/// resource as the request spelled it — and PERMISSION_DENIED otherwise.
fn deny_unless(check: &Check<'_>, action: Action, resource: &Resource<'_>, as_sent: &str) -> Result<(), Status> {
    let (policy, caller, path) = (check.policy, check.caller, check.path);
    let tenant = match resource {
        Resource::Entity(u) => Some(u.tenant().clone()),
        Resource::Tenant(t) => Some((*t).clone()),
        Resource::Mesh => None,
    };
    if policy.check(&caller.principal, action, resource).allowed {
        if action == Action::Read && policy.is_sensitive(resource) {
            check.event(action, tenant, describe(resource), true);
        }
        return Ok(());
    }
    check.event(action, tenant, describe(resource), false);
    tracing::info!(principal = %caller.principal, action = action.as_str(), resource = %describe(resource), %path, "denied");
    let discoverable = match resource {
        Resource::Mesh => true,
        _ => policy.check(&caller.principal, Action::Discover, resource).allowed,
    };
    if discoverable {
        Err(Status::permission_denied(format!(
            "`{}` may not {} {}",
            caller.principal,
            action.as_str(),
            describe(resource)
        )))
    } else {
        let missing = match resource {
            Resource::Tenant(t) => CommandError::UnknownTenant((*t).clone()),
            _ => CommandError::NotFound(as_sent.to_owned()),
        };
        Err(metamesh_proto::convert::status(&missing))
    }
}

fn describe(resource: &Resource<'_>) -> String {
    match resource {
        Resource::Entity(urn) => urn.to_string(),
        Resource::Tenant(t) => format!("tenant `{t}`"),
        Resource::Mesh => "the mesh".to_owned(),
    }
}

/// The string values at a dotted field path (through repeated and nested messages).
fn strings(message: &DynamicMessage, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect(message, path, &mut |v| {
        if let Value::String(s) = v {
            out.push(s.clone());
        }
    });
    out
}

/// The message values at a dotted field path.
fn messages(message: &DynamicMessage, path: &str) -> Vec<DynamicMessage> {
    let mut out = Vec::new();
    collect(message, path, &mut |v| {
        if let Value::Message(m) = v {
            out.push(m.clone());
        }
    });
    out
}

fn collect(message: &DynamicMessage, path: &str, f: &mut dyn FnMut(&Value)) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if message.descriptor().get_field_by_name(head).is_none() {
        return;
    }
    let value = message.get_field_by_name(head);
    let Some(value) = value.as_deref() else { return };
    let items: Vec<&Value> = match value {
        Value::List(list) => list.iter().collect(),
        other => vec![other],
    };
    for item in items {
        match (rest, item) {
            (None, v) => f(v),
            (Some(rest), Value::Message(m)) => collect(m, rest, f),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of every service the node may serve has a rule: adding an RPC to the protos
    /// without deciding its policy action fails here (and is refused at run time).
    #[test]
    fn every_rpc_has_a_rule() {
        let pool = DescriptorPool::decode(metamesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut missing = Vec::new();
        let mut count = 0;
        for service in pool.services().filter(|s| s.full_name().starts_with("metamesh.v1.")) {
            for method in service.methods() {
                count += 1;
                let path = format!("/{}/{}", service.full_name(), method.name());
                if rule_for(&path).is_none() {
                    missing.push(path);
                }
            }
        }
        assert!(count > 30, "the descriptor set lists the services ({count} methods)");
        assert!(missing.is_empty(), "RPCs without an authorization rule: {missing:?}");
    }

    #[test]
    fn rules_name_fields_that_exist() {
        let pool = DescriptorPool::decode(metamesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let shared = Shared { authorizer: test_authorizer(), pool, audit: None };
        for (path, rule) in RULES {
            if path.ends_with('/') {
                continue;
            }
            let input = shared.input_of(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let field = match rule.target {
                Target::Tenant(f) | Target::Urns(f) | Target::Edges(f) | Target::Tenants(f) => f,
                _ => continue,
            };
            let mut descriptor = input.clone();
            let mut parts = field.split('.').peekable();
            while let Some(part) = parts.next() {
                let f = descriptor.get_field_by_name(part).unwrap_or_else(|| panic!("{path}: no field {field}"));
                if parts.peek().is_some() {
                    descriptor =
                        f.kind().as_message().unwrap_or_else(|| panic!("{path}: {part} not a message")).clone();
                }
            }
        }
    }

    fn test_authorizer() -> Authorizer {
        Authorizer::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap()
    }
}
