//! The policy vocabulary: what a caller may do, and on which level of resource each action is
//! checked. Policy files name actions by [`Action::as_str`]; the loader refuses any other word.

use std::fmt;
use std::str::FromStr;

/// One thing a principal may do. Each RPC maps onto one or more checks of an action on a
/// resource (see `docs/policies.md`, "Actions per RPC").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read an entity's state, versions, documents and edges (or a tenant's description).
    Read,
    /// Put an entity or one of its documents.
    Write,
    /// Tombstone an entity or a document.
    Delete,
    /// Add or remove a lineage edge touching the entity. Needed on *both* ends, each in its own
    /// tenant: an edge into another tenant needs that tenant's grant.
    Link,
    /// Learn that an entity (or tenant) exists, with its name and kind only.
    Discover,
    /// Run full-text search in a tenant.
    Search,
    /// Follow a tenant's change feed.
    Watch,
    /// Read a tenant's schema registry.
    SchemaRead,
    /// Register schema versions in a tenant.
    SchemaWrite,
    /// Read audit records: of one tenant, or of the whole mesh.
    AuditRead,
    /// Read the mesh's operational state (status, health, shard map).
    AdminRead,
    /// Change membership, trigger snapshots.
    AdminWrite,
    /// Create a tenant.
    TenantCreate,
}

/// The level of resource an action is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// One entity (`mm://<tenant>/<kind>/<name>`).
    Entity,
    /// A tenant as a whole (`mm://<tenant>`).
    Tenant,
    /// The mesh (`mesh`).
    Mesh,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Entity => "entity",
            Level::Tenant => "tenant",
            Level::Mesh => "mesh",
        }
    }
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::Read,
        Action::Write,
        Action::Delete,
        Action::Link,
        Action::Discover,
        Action::Search,
        Action::Watch,
        Action::SchemaRead,
        Action::SchemaWrite,
        Action::AuditRead,
        Action::AdminRead,
        Action::AdminWrite,
        Action::TenantCreate,
    ];

    /// The word policy files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Link => "link",
            Action::Discover => "discover",
            Action::Search => "search",
            Action::Watch => "watch",
            Action::SchemaRead => "schema.read",
            Action::SchemaWrite => "schema.write",
            Action::AuditRead => "audit.read",
            Action::AdminRead => "admin.read",
            Action::AdminWrite => "admin.write",
            Action::TenantCreate => "tenant.create",
        }
    }

    /// The levels of resource this action is ever checked on. A rule whose object pattern
    /// covers none of them can never match, and the loader refuses it.
    pub fn levels(self) -> &'static [Level] {
        match self {
            Action::Read | Action::Discover => &[Level::Entity, Level::Tenant],
            Action::Write | Action::Delete | Action::Link => &[Level::Entity],
            Action::Search | Action::Watch | Action::SchemaRead | Action::SchemaWrite => &[Level::Tenant],
            Action::AuditRead => &[Level::Tenant, Level::Mesh],
            Action::AdminRead | Action::AdminWrite => &[Level::Mesh],
            Action::TenantCreate => &[Level::Tenant],
        }
    }

    /// Actions on the mesh itself. Only `global.csv` may grant them, and a tenant file may not
    /// assign a role that holds one.
    pub fn is_mesh_action(self) -> bool {
        matches!(self, Action::AdminRead | Action::AdminWrite | Action::TenantCreate)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        write!(f, "unknown action `{}` (expected one of {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownAction {}

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
            assert!(!a.levels().is_empty());
        }
        assert!("Read".parse::<Action>().is_err());
        assert!("schema".parse::<Action>().is_err());
    }
}
