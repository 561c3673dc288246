//! The typed errors a command can fail with.
//!
//! Every variant names the field or value at fault, so a client can fix its request without
//! reading server logs. [`ErrorCode`] is the small, stable set the wire layers map to gRPC codes
//! and HTTP statuses in one place.

use crate::edge::EdgeKind;
use crate::kind::{Kind, TypeName};
use crate::schema::{Incompatibility, SchemaError};
use crate::tenant::TenantId;
use crate::urn::UrnError;

/// Stable error categories; the wire layer maps each to exactly one gRPC code and HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorCode {
    /// The request is wrong on its own (syntax, size, schema): INVALID_ARGUMENT / 400.
    InvalidArgument,
    /// A named thing does not exist: NOT_FOUND / 404.
    NotFound,
    /// It exists already: ALREADY_EXISTS / 409.
    AlreadyExists,
    /// The request is well-formed but the current state forbids it (a cycle, a version
    /// conflict, a deleted entity): FAILED_PRECONDITION / 409.
    FailedPrecondition,
    /// A race the client should retry (MLMD's `abort_if_latest_updated_time_changed`): ABORTED / 409.
    Aborted,
    /// An index or offset past the end (MLMD's `put_lineage_subgraph` event edges): OUT_OF_RANGE / 400.
    OutOfRange,
    /// A valid request for something not supported (MLMD: changing a type's base type):
    /// UNIMPLEMENTED / 400.
    Unimplemented,
}

/// Why a command was refused. A refused command writes nothing.
#[derive(Clone, Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CommandError {
    #[error(transparent)]
    InvalidUrn(#[from] UrnError),
    #[error("invalid `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("`{field}` is {actual} bytes/items, over the limit of {limit}")]
    TooLarge { field: String, limit: usize, actual: usize },
    #[error("unknown tenant `{0}` (not owned by this shard)")]
    UnknownTenant(TenantId),
    #[error("tenant `{0}` already exists")]
    TenantExists(TenantId),
    #[error("unknown type `{type_name}` in tenant `{tenant}`")]
    UnknownType { tenant: TenantId, type_name: TypeName },
    #[error("type `{type_name}` has no schema version {version}")]
    UnknownSchemaVersion { type_name: TypeName, version: u32 },
    #[error("type `{type_name}` has base kind {expected}, not {actual}")]
    KindMismatch { type_name: TypeName, expected: Kind, actual: Kind },
    #[error("properties do not match schema `{type_name}` v{version} at `{path}`: {message}")]
    SchemaViolation { type_name: TypeName, version: u32, path: String, message: String },
    #[error(transparent)]
    InvalidSchema(#[from] SchemaError),
    #[error("schema for `{type_name}` refused: {source}")]
    IncompatibleSchema { type_name: TypeName, source: Incompatibility },
    #[error("{kind} edge would close a cycle: {}", path.join(" -> "))]
    Cycle { kind: EdgeKind, path: Vec<String> },
    #[error("{kind} edge cannot go {end} a {found}: expected {expected}")]
    EdgeEndpoint { kind: EdgeKind, end: String, found: Kind, expected: String },
    #[error("version conflict on `{urn}`: expected version {expected}, found {actual}")]
    VersionConflict { urn: String, expected: u64, actual: u64 },
    #[error("`{0}` not found")]
    NotFound(String),
    #[error("`{0}` is deleted")]
    Deleted(String),
    /// An element of a batch failed; the whole batch wrote nothing.
    /// An MLMD write refused by MLMD's own rules, with the code MLMD gives.
    #[error("{message}")]
    Mlmd { code: ErrorCode, message: String },
    #[error("commands[{index}]: {source}")]
    InBatch { index: usize, source: Box<CommandError> },
}

impl CommandError {
    pub fn code(&self) -> ErrorCode {
        use CommandError::*;
        match self {
            InBatch { source, .. } => source.code(),
            Mlmd { code, .. } => *code,
            InvalidUrn(_)
            | InvalidField { .. }
            | TooLarge { .. }
            | KindMismatch { .. }
            | SchemaViolation { .. }
            | InvalidSchema(_)
            | EdgeEndpoint { .. } => ErrorCode::InvalidArgument,
            UnknownTenant(_) | UnknownType { .. } | UnknownSchemaVersion { .. } | NotFound(_) => ErrorCode::NotFound,
            TenantExists(_) => ErrorCode::AlreadyExists,
            IncompatibleSchema { .. } | Cycle { .. } | VersionConflict { .. } | Deleted(_) => {
                ErrorCode::FailedPrecondition
            }
        }
    }

    /// The request field at fault, when one can be named.
    pub fn field(&self) -> Option<&str> {
        use CommandError::*;
        match self {
            InvalidUrn(_) => Some("urn"),
            InvalidField { field, .. } | TooLarge { field, .. } => Some(field),
            SchemaViolation { .. } => Some("properties"),
            InvalidSchema(_) | IncompatibleSchema { .. } => Some("schema"),
            UnknownType { .. } | KindMismatch { .. } => Some("type_name"),
            UnknownSchemaVersion { .. } => Some("schema_version"),
            VersionConflict { .. } => Some("expect_version"),
            InBatch { source, .. } => source.field(),
            _ => None,
        }
    }

    /// Names batch element `index` as the culprit: field errors get the element's path as a
    /// prefix (`commands[3].tags`), other errors are wrapped in [`CommandError::InBatch`].
    pub fn in_batch(self, index: usize) -> CommandError {
        match self {
            CommandError::InvalidField { field, reason } => {
                CommandError::InvalidField { field: format!("commands[{index}].{field}"), reason }
            }
            CommandError::TooLarge { field, limit, actual } => {
                CommandError::TooLarge { field: format!("commands[{index}].{field}"), limit, actual }
            }
            e @ CommandError::InBatch { .. } => e,
            other => CommandError::InBatch { index, source: Box::new(other) },
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CommandError {
        CommandError::InvalidField { field: field.into(), reason: reason.into() }
    }
}
