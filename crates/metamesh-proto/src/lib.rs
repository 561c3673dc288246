//! Wire definitions of metamesh's native gRPC API, `metamesh.v1`.
//!
//! This crate is the only place wire types are defined. The `.proto` sources live in
//! `proto/metamesh/v1/` at the workspace root (one file per concern: common, catalog, lineage,
//! search, schema, audit, watch, admin); `build.rs` compiles them with `protox` (no system
//! `protoc` needed) into prost messages and tonic clients and servers, exposed under [`v1`].
//!
//! Conversions between these wire types and the domain types of `metamesh-core` belong in this
//! crate too (a `convert` module), so no other crate touches raw wire structs.
//!
//! [`FILE_DESCRIPTOR_SET`] holds the encoded descriptors of every file, for the gRPC reflection
//! service and for tests that pin the API surface.

/// Generated messages, enums, clients (`*_client`) and servers (`*_server`) of `metamesh.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
pub mod v1 {
    tonic::include_proto!("metamesh.v1");
}

/// The internal replica-to-replica Raft service (`metamesh.raft.v1`); not part of the client API.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod raft {
    pub mod v1 {
        tonic::include_proto!("metamesh.raft.v1");
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of all `metamesh.v1` files (with source
/// comments), e.g. for `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/metamesh_descriptor.bin"));

pub mod convert;
