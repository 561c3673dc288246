//! Documented size limits. A value over a limit is refused with
//! [`CommandError::TooLarge`](crate::CommandError::TooLarge) naming the field, before anything is
//! written. The limits keep one Raft entry small enough to replicate quickly and one SQLite row
//! small enough to read without surprises.

/// Bytes of an entity name (decoded).
pub const MAX_NAME_BYTES: usize = 1024;
/// Bytes of an entity's properties, as compact JSON.
pub const MAX_PROPERTIES_BYTES: usize = 256 * 1024;
/// Bytes of a JSON Schema document.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Bytes of a description.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;
/// Bytes of one markdown document.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Bytes of a document title.
pub const MAX_TITLE_BYTES: usize = 256;
/// Tags on one entity version.
pub const MAX_TAGS: usize = 64;
/// Bytes of one tag.
pub const MAX_TAG_BYTES: usize = 128;
/// Bytes of an owner, status, principal, column name or request id.
pub const MAX_SHORT_BYTES: usize = 256;
/// Bytes of an edge's transformation text (e.g. a SQL expression).
pub const MAX_TRANSFORMATION_BYTES: usize = 16 * 1024;
/// Commands in one batch.
pub const MAX_BATCH: usize = 10_000;
