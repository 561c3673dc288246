//! Entities: what a client supplies for a new version, and what a read returns.
//!
//! Nothing is updated in place. Each put makes a new immutable, numbered version holding the
//! whole mutable state (type, properties, tags, owner, status, description); a delete is a
//! tombstone version. Documents (markdown notes) are versioned separately per title so that
//! editing a long note does not copy it into every entity version.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::CommandError;
use crate::kind::TypeName;
use crate::limits::*;
use crate::urn::EntityUrn;

/// A new version of an entity, as a client asks for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntitySpec {
    pub urn: EntityUrn,
    /// Registered type whose schema validates `properties`; none means free-form properties.
    #[serde(default)]
    pub type_name: Option<TypeName>,
    /// Schema version to validate against; none means the type's latest.
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// A JSON object.
    #[serde(default = "empty_object")]
    pub properties: serde_json::Value,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Optimistic concurrency: the version the client last saw; `Some(0)` means "must not exist".
    #[serde(default)]
    pub expect_version: Option<u64>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

impl EntitySpec {
    pub fn new(urn: EntityUrn) -> EntitySpec {
        EntitySpec {
            urn,
            type_name: None,
            schema_version: None,
            properties: empty_object(),
            tags: BTreeSet::new(),
            owner: None,
            status: None,
            description: None,
            expect_version: None,
        }
    }

    /// Checks everything that does not depend on state.
    pub fn validate(&self) -> Result<(), CommandError> {
        if !self.properties.is_object() {
            return Err(CommandError::invalid("properties", "must be a JSON object"));
        }
        check_len("properties", json_len(&self.properties), MAX_PROPERTIES_BYTES)?;
        if self.tags.len() > MAX_TAGS {
            return Err(CommandError::TooLarge { field: "tags".into(), limit: MAX_TAGS, actual: self.tags.len() });
        }
        for tag in &self.tags {
            check_token("tags", tag, MAX_TAG_BYTES)?;
        }
        if let Some(owner) = &self.owner {
            check_token("owner", owner, MAX_SHORT_BYTES)?;
        }
        if let Some(status) = &self.status {
            check_token("status", status, MAX_SHORT_BYTES)?;
        }
        if let Some(d) = &self.description {
            check_len("description", d.len(), MAX_DESCRIPTION_BYTES)?;
        }
        if self.schema_version.is_some() && self.type_name.is_none() {
            return Err(CommandError::invalid("schema_version", "given without a type_name"));
        }
        if self.schema_version == Some(0) {
            return Err(CommandError::invalid("schema_version", "versions start at 1"));
        }
        Ok(())
    }
}

/// One version of an entity, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityVersion {
    pub urn: EntityUrn,
    pub version: u64,
    pub type_name: Option<TypeName>,
    pub schema_version: Option<u32>,
    pub properties: serde_json::Value,
    pub tags: Vec<String>,
    pub owner: Option<String>,
    pub status: Option<String>,
    pub description: Option<String>,
    /// A tombstone: the entity was deleted at this version.
    pub deleted: bool,
    /// When and by whom the entity (its first version) was created.
    pub created_at_ms: i64,
    pub created_by: String,
    /// When and by whom this version was written.
    pub updated_at_ms: i64,
    pub updated_by: String,
    /// Shard revision (Raft log index) at which this version appeared.
    pub revision: u64,
}

/// What a lineage answer says of a node beyond its URN: its current version's type, status and
/// whether it is a tombstone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeDetails {
    pub type_name: Option<TypeName>,
    pub status: Option<String>,
    pub deleted: bool,
}

/// One version of a markdown document attached to an entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub urn: EntityUrn,
    pub title: String,
    pub version: u32,
    pub body: String,
    pub deleted: bool,
    pub created_at_ms: i64,
    pub created_by: String,
    pub revision: u64,
}

pub(crate) fn json_len(v: &serde_json::Value) -> usize {
    serde_json::to_string(v).map(|s| s.len()).unwrap_or(usize::MAX)
}

pub(crate) fn check_len(field: &str, actual: usize, limit: usize) -> Result<(), CommandError> {
    if actual > limit {
        return Err(CommandError::TooLarge { field: field.into(), limit, actual });
    }
    Ok(())
}

/// A short single-line token: non-empty, no control characters, bounded.
pub(crate) fn check_token(field: &str, value: &str, limit: usize) -> Result<(), CommandError> {
    if value.trim().is_empty() {
        return Err(CommandError::invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(CommandError::invalid(field, format!("`{}` contains control characters", value.escape_debug())));
    }
    check_len(field, value.len(), limit)
}
