//! Wire definitions of metamesh's native gRPC API, `metamesh.v1`.
//!
//! This crate is the only place wire types are defined. The `.proto` sources live in
//! `proto/metamesh/v1/` at the workspace root (one file per concern: common, catalog, lineage,
//! search, schema, audit, watch, admin); `build.rs` compiles them with `protox` (no system
//! `protoc` needed) into prost messages and tonic clients and servers, exposed under [`v1`].
//! Google's ML Metadata gRPC API (package `ml_metadata`, wire-identical to ml-metadata 1.17.1,
//! sources in `proto/ml_metadata/proto/`) is compiled the same way and exposed under [`ml_metadata`].
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

/// Generated messages, enums, client and server of Google's ML Metadata API (`ml_metadata`,
/// proto2, wire-identical to ml-metadata 1.17.1), e.g.
/// `metadata_store_service_server::MetadataStoreService`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
pub mod ml_metadata {
    tonic::include_proto!("ml_metadata");
}

/// The encoded `google.protobuf.FileDescriptorSet` of the ML Metadata files
/// (`ml_metadata/proto/metadata_store.proto` and `ml_metadata/proto/metadata_store_service.proto`),
/// e.g. for gRPC reflection of the MLMD-compatible endpoint and for the wire-compatibility test.
pub const ML_METADATA_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ml_metadata_descriptor.bin"));

pub mod convert;
