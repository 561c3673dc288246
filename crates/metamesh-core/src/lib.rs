//! The metamesh domain model.
//!
//! This crate is the centre every other crate points at. It holds the vocabulary of the system —
//! tenants, URNs, entity kinds, lineage edges, the commands that change a shard and the errors
//! they can raise — and the pure rules about them (URN syntax, size limits, which edge may join
//! which kinds, schema compatibility).
//!
//! Architecture invariant: nothing here does IO, spawns tasks or reads the clock. A [`Command`]
//! carries everything its application needs (time, principal, request id), so applying the same
//! commands in the same order gives the same state on every replica.
//!
//! Code map:
//! - [`tenant`]: tenant names (lowercase DNS labels).
//! - [`urn`]: `mm://<tenant>/<kind>/<name>[@<version>]`, the one parser and formatter.
//! - [`kind`]: built-in entity kinds and registered type names.
//! - [`entity`]: what a client supplies for a version, and what a read returns.
//! - [`edge`]: typed lineage edges and the rules on their endpoints.
//! - [`command`]: every state change as one serializable enum, and its outcome.
//! - [`query`]: the shapes of reads (filters, as-of points, directions, pages).
//! - [`schema`]: JSON-Schema registry rules: compatibility modes and migrations.
//! - [`limits`]: documented size limits.
//! - [`error`]: the typed errors a command can fail with.

pub mod command;
pub mod edge;
pub mod entity;
pub mod error;
pub mod kind;
pub mod limits;
pub mod openlineage;
pub mod query;
pub mod schema;
pub mod tenant;
pub mod urn;

pub use command::{Command, ForeignDataset, Outcome, Proposal};
pub use edge::{Edge, EdgeKind, EdgeSpec};
pub use entity::{Document, EntitySpec, EntityVersion, NodeDetails};
pub use error::{CommandError, ErrorCode};
pub use kind::{Kind, TypeName};
pub use query::{AsOf, Direction, ListFilter, PropertyFilter, PropertyOp};
pub use tenant::TenantId;
pub use urn::{EntityUrn, Urn, UrnError};
