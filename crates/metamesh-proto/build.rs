//! Compiles `proto/metamesh/v1/*.proto` (and, separately, the internal
//! `proto/metamesh/raft/v1/raft.proto`) with protox (pure Rust, no system `protoc`), generates
//! prost messages and tonic clients/servers, and writes the encoded `FileDescriptorSet` to
//! `$OUT_DIR/metamesh_descriptor.bin` (for gRPC reflection and descriptor tests). Likewise, and
//! separately, the ML Metadata API in `proto/ml_metadata/proto/` (`$OUT_DIR/ml_metadata_descriptor.bin`).

use std::path::{Path, PathBuf};
use std::{env, fs};

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = Path::new("../../proto");
    let dir = include.join("metamesh/v1");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files: Vec<PathBuf> = fs::read_dir(&dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    if files.is_empty() {
        return Err(format!("no .proto files in {}", dir.display()).into());
    }
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [include])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("metamesh_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;

    // The internal Raft service: its own descriptor set, so that the client listener's
    // reflection never lists it.
    let raft = include.join("metamesh/raft/v1/raft.proto");
    println!("cargo:rerun-if-changed={}", raft.display());
    let raft_fds = protox::compile([&raft], [include])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_fds(raft_fds)?;

    // Google's ML Metadata API (`ml_metadata`, proto2), wire-identical to ml-metadata 1.17.1: its
    // own descriptor set, and the upstream import paths (`ml_metadata/proto/*.proto`).
    let mlmd_dir = include.join("ml_metadata/proto");
    println!("cargo:rerun-if-changed={}", mlmd_dir.display());
    let mlmd_files = [mlmd_dir.join("metadata_store.proto"), mlmd_dir.join("metadata_store_service.proto")];
    for file in &mlmd_files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    // What `protox::compile` does, but encoded through the compiler itself: the custom option
    // `(ml_metadata.system_type_extension)` on enum values survives only that way (the
    // `prost_types` descriptor set drops extension options, which would break wire identity of the
    // descriptors). Codegen is unaffected either way.
    let mut mlmd = protox::Compiler::new([include])?;
    mlmd.include_source_info(true).include_imports(true).open_files(&mlmd_files)?;
    fs::write(out_dir.join("ml_metadata_descriptor.bin"), mlmd.encode_file_descriptor_set())?;
    // Maps as BTreeMap: a message re-encoded on every replica must give the same bytes.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_fds(mlmd.file_descriptor_set())?;
    Ok(())
}
