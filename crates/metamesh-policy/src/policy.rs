//! [`PolicySet`]: one loaded, immutable policy, and the decisions it gives.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use metamesh_core::{EntityUrn, TenantId};

use crate::action::Action;
use crate::engine::Engine;
use crate::error::{PolicyError, PolicyErrors};
use crate::files::{at, PolicyDigest, PolicyFiles, MODEL_FILE};
use crate::load::{compile, Compiled, Grant, ROLE_PREFIX};
use crate::markers::{self, MarkerIndex};
use crate::resource::Resource;

/// How a policy is built.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Decisions cached per partition (the global rules, and each tenant with a file). 0 turns
    /// the cache off (casbin's plain enforcer), for comparison.
    pub cache_capacity: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { cache_capacity: 10_000 }
    }
}

/// The answer to one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The resource matches a sensitivity marker: a read of it is audited even when allowed.
    pub sensitive: bool,
    /// The policy that decided, for the audit record.
    pub digest: PolicyDigest,
    pub reason: Reason,
}

/// Why a decision came out as it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A rule grants the action.
    Granted,
    /// No rule grants `action` on `object`: the default, deny.
    NoGrant { action: Action, object: String },
    /// The principal is empty or spelled like a role (`role:…`): casbin would take it for the
    /// role itself, so it is denied before evaluation.
    NotAPrincipal,
    /// The engine failed to evaluate the request (a broken matcher); denied.
    EngineError(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Granted => f.write_str("granted"),
            Reason::NoGrant { action, object } => write!(f, "no rule grants `{action}` on `{object}`"),
            Reason::NotAPrincipal => f.write_str("not a principal: empty or spelled like a role"),
            Reason::EngineError(e) => write!(f, "policy evaluation failed: {e}"),
        }
    }
}

/// What a caller may see of an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Everything its `read` grant covers: state, versions, documents, edges.
    Full,
    /// That it exists, its name and kind: never properties or documents.
    DiscoverOnly,
    /// Nothing: answer as if it did not exist.
    Hidden,
}

/// Counts for `policy check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyStats {
    pub files: usize,
    /// Lines that are rules or markers (comments and blank lines excluded).
    pub lines: usize,
    pub grants: usize,
    pub assignments: usize,
    pub markers: usize,
    pub tenants: usize,
}

/// One policy directory, loaded and validated: immutable, shared by `Arc` between requests.
pub struct PolicySet {
    digest: PolicyDigest,
    /// Global rules only: the mesh, and tenants without a file.
    global: Engine,
    /// Global rules plus the tenant's, by tenant.
    tenants: HashMap<String, Engine>,
    global_markers: Vec<String>,
    tenant_markers: HashMap<String, Vec<String>>,
    /// Global and tenant markers of each tenant with a file, indexed.
    marker_index: HashMap<String, MarkerIndex>,
    /// The grants of each partition, kept for `policy test` (witnesses of `deny` assertions).
    global_grants: Vec<Grant>,
    tenant_grants: HashMap<String, Vec<Grant>>,
    warnings: Vec<PolicyError>,
    stats: PolicyStats,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet").field("digest", &self.digest).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl PolicySet {
    /// Reads, validates and compiles the policy directory `dir`. Blocking: file IO and, for
    /// large policies, tens of milliseconds of CPU. Every problem is reported, with file and line.
    pub fn load(dir: &Path) -> Result<PolicySet, PolicyErrors> {
        PolicySet::load_with(dir, &LoadOptions::default())
    }

    pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<PolicySet, PolicyErrors> {
        PolicySet::from_files(&PolicyFiles::read(dir)?, options)
    }

    pub(crate) fn from_files(files: &PolicyFiles, options: &LoadOptions) -> Result<PolicySet, PolicyErrors> {
        let Compiled { model, global, tenants, warnings } = compile(files)?;
        let engine_error = |e: String| PolicyErrors::new(vec![at(files, MODEL_FILE, None, e)]);

        let global_engine = Engine::build(
            &model,
            &global.grants.iter().collect::<Vec<_>>(),
            &global.assignments.iter().collect::<Vec<_>>(),
            options.cache_capacity,
        )
        .map_err(engine_error)?;
        let mut engines = HashMap::new();
        let mut tenant_markers = HashMap::new();
        let mut marker_index = HashMap::new();
        let mut tenant_grants = HashMap::new();
        let mut stats = PolicyStats {
            files: files.files.len(),
            grants: global.grants.len(),
            assignments: global.assignments.len(),
            markers: global.markers.len(),
            tenants: tenants.len(),
            ..PolicyStats::default()
        };
        for (tenant, rules) in tenants {
            let grants: Vec<&Grant> = global.grants.iter().chain(&rules.grants).collect();
            let assignments: Vec<_> = global.assignments.iter().chain(&rules.assignments).collect();
            let engine = Engine::build(&model, &grants, &assignments, options.cache_capacity).map_err(engine_error)?;
            stats.grants += rules.grants.len();
            stats.assignments += rules.assignments.len();
            stats.markers += rules.markers.len();
            let patterns = global.markers.iter().chain(&rules.markers).map(String::as_str);
            marker_index.insert(tenant.clone(), MarkerIndex::new(&tenant, patterns));
            engines.insert(tenant.clone(), engine);
            tenant_markers.insert(tenant.clone(), rules.markers);
            tenant_grants.insert(tenant, rules.grants);
        }
        stats.lines = stats.grants + stats.assignments + stats.markers;
        Ok(PolicySet {
            digest: files.digest(),
            global: global_engine,
            tenants: engines,
            global_markers: global.markers,
            tenant_markers,
            marker_index,
            global_grants: global.grants,
            tenant_grants,
            warnings,
            stats,
        })
    }

    pub fn digest(&self) -> PolicyDigest {
        self.digest
    }

    /// Problems that do not stop the policy from loading (duplicate lines, roles no one holds).
    pub fn warnings(&self) -> &[PolicyError] {
        &self.warnings
    }

    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }

    /// May `principal` do `action` on `resource`? Default deny.
    pub fn check(&self, principal: &str, action: Action, resource: &Resource<'_>) -> Decision {
        let object = resource.object();
        self.check_raw(principal, action, resource.domain(), &object)
    }

    /// An edge write: `link` on both ends, each judged in its own tenant, so an edge into
    /// another tenant needs that tenant's grant. The first denial is returned.
    pub fn check_edge(&self, principal: &str, from: &EntityUrn, to: &EntityUrn) -> Decision {
        let first = self.check(principal, Action::Link, &Resource::Entity(from));
        if !first.allowed {
            return first;
        }
        self.check(principal, Action::Link, &Resource::Entity(to))
    }

    /// What `principal` may see of `urn`: `read` gives everything, `discover` the name and
    /// kind, neither nothing.
    pub fn visibility(&self, principal: &str, urn: &EntityUrn) -> Visibility {
        let resource = Resource::Entity(urn);
        if self.check(principal, Action::Read, &resource).allowed {
            Visibility::Full
        } else if self.check(principal, Action::Discover, &resource).allowed {
            Visibility::DiscoverOnly
        } else {
            Visibility::Hidden
        }
    }

    /// The tenants a client that cannot name one (the MLMD client) works in: those with a policy
    /// file in which `principal` may `write`, or, if there are none, in which it may `read`.
    /// Sorted; the caller decides what several mean.
    pub fn home_tenants(&self, principal: &str) -> Vec<TenantId> {
        for action in [Action::Write, Action::Read] {
            let mut found: Vec<TenantId> = self
                .tenants
                .keys()
                .filter_map(|t| TenantId::new(t).ok())
                .filter(|t| self.check(principal, action, &Resource::Tenant(t)).allowed)
                .collect();
            if !found.is_empty() {
                found.sort();
                return found;
            }
        }
        Vec::new()
    }

    /// Whether reads of `resource` are audited even when allowed.
    pub fn is_sensitive(&self, resource: &Resource<'_>) -> bool {
        self.is_sensitive_raw(resource.domain(), &resource.object())
    }

    pub(crate) fn check_raw(&self, principal: &str, action: Action, domain: &str, object: &str) -> Decision {
        let sensitive = self.is_sensitive_raw(domain, object);
        if principal.is_empty() || principal.starts_with(ROLE_PREFIX) {
            return Decision { allowed: false, sensitive, digest: self.digest, reason: Reason::NotAPrincipal };
        }
        let engine = self.tenants.get(domain).unwrap_or(&self.global);
        let (allowed, reason) = match engine.enforce(principal, domain, object, action.as_str()) {
            Ok(true) => (true, Reason::Granted),
            Ok(false) => (false, Reason::NoGrant { action, object: object.to_owned() }),
            Err(e) => (false, Reason::EngineError(e)),
        };
        Decision { allowed, sensitive, digest: self.digest, reason }
    }

    pub(crate) fn is_sensitive_raw(&self, domain: &str, object: &str) -> bool {
        match self.marker_index.get(domain) {
            Some(index) => index.matches(object),
            None => markers::scan(self.global_markers.iter().map(String::as_str), object),
        }
    }

    /// The sensitivity markers that apply in `domain`.
    pub(crate) fn markers<'a>(&'a self, domain: &str) -> impl Iterator<Item = &'a str> + 'a {
        let tenant = self.tenant_markers.get(domain).map(Vec::as_slice).unwrap_or(&[]);
        self.global_markers.iter().chain(tenant).map(String::as_str)
    }

    /// The grants that may decide a request in `domain`.
    pub(crate) fn grants<'a>(&'a self, domain: &str) -> impl Iterator<Item = &'a Grant> + 'a {
        let tenant = self.tenant_grants.get(domain).map(Vec::as_slice).unwrap_or(&[]);
        self.global_grants.iter().chain(tenant)
    }
}
