//! MLMD on the mesh: Google ML Metadata's model (`ml_metadata.MetadataStoreService`,
//! ml-metadata 1.17.1) over one tenant's rows in a shard's SQLite file.
//!
//! - [`apply`] runs a write RPC (every `Put*`) inside the store's transaction, on every
//!   replica, as the state machine applies the `Command::Mlmd` log entry that carries it. It
//!   reads no clock (the entry's time is given) and draws no random number, so every replica
//!   reaches the same rows.
//! - [`read::Reader`] answers the read RPCs (every `Get*`) from a replica's file.
//!
//! The tables are in `metamesh-store/migrations/0003_mlmd.sql`. Each node's whole message is
//! kept encoded (`proto`), with the fields that lookups, uniqueness and filter queries need
//! copied into columns, and its int, double, string and bool properties in `mlmd_property`.
//! Ids are per tenant, in MLMD's id spaces (one for types; one each for artifacts, executions,
//! contexts and events), so a tenant's ids start at 1 and never depend on other tenants.
//!
//! Errors carry the gRPC code MLMD gives for the same case ([`Code`]); the differential suite
//! (`tests/mlmd/`) checks them against Google's engine.

pub mod read;
mod store;
mod write;

pub use metamesh_proto::ml_metadata as pb;
pub use store::NodeKind;
pub use write::{apply, apply_with_mirrors, is_write, Mirror, MirrorNode, MirrorRef, PropertyValue};

/// The gRPC code of an MLMD error, as MLMD gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    OutOfRange,
    Aborted,
    Unimplemented,
    Internal,
}

/// An MLMD request refused (or a store failure, `Internal`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct MlmdError {
    pub code: Code,
    pub message: String,
}

impl MlmdError {
    pub fn new(code: Code, message: impl Into<String>) -> MlmdError {
        MlmdError { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> MlmdError {
        MlmdError::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> MlmdError {
        MlmdError::new(Code::NotFound, message)
    }

    pub fn exists(message: impl Into<String>) -> MlmdError {
        MlmdError::new(Code::AlreadyExists, message)
    }

    /// The gRPC status for this error.
    pub fn status(&self) -> tonic::Status {
        let code = match self.code {
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::OutOfRange => tonic::Code::OutOfRange,
            Code::Aborted => tonic::Code::Aborted,
            Code::Unimplemented => tonic::Code::Unimplemented,
            Code::Internal => tonic::Code::Internal,
        };
        tonic::Status::new(code, self.message.clone())
    }
}

impl From<rusqlite::Error> for MlmdError {
    fn from(e: rusqlite::Error) -> Self {
        MlmdError::new(Code::Internal, format!("store: {e}"))
    }
}

impl From<prost::DecodeError> for MlmdError {
    fn from(e: prost::DecodeError) -> Self {
        MlmdError::new(Code::Internal, format!("stored message: {e}"))
    }
}

impl From<metamesh_mlmd_filter::FilterError> for MlmdError {
    fn from(e: metamesh_mlmd_filter::FilterError) -> Self {
        MlmdError::invalid(format!("filter_query: {e}"))
    }
}

/// Result of the engine.
pub type Result<T, E = MlmdError> = std::result::Result<T, E>;
