//! Pins the ML Metadata API (`ml_metadata`) to the published ml-metadata 1.17.1 wire definitions.
//!
//! `mlmd_descriptors_match_the_wheel` compares our compiled descriptors, field by field, with the
//! ones inside the installed `ml-metadata` wheel (tests/python/compare_mlmd_descriptors.py, run
//! with the venv of tests/python/setup.sh); `mlmd_service_surface` checks the service shape in
//! pure Rust.

use std::path::{Path, PathBuf};
use std::process::Command;

use metamesh_proto::ml_metadata;
use metamesh_proto::ML_METADATA_DESCRIPTOR_SET;
use prost::Message;
use prost_types::FileDescriptorSet;

const SERVICE: &str = "MetadataStoreService";
const EXPECTED_RPCS: usize = 52;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$METAMESH_PYTHON`, else the venv created by tests/python/setup.sh.
fn python() -> PathBuf {
    match std::env::var_os("METAMESH_PYTHON") {
        Some(python) if !python.is_empty() => PathBuf::from(python),
        _ => workspace_root().join("target/py-venv/bin/python"),
    }
}

#[test]
fn mlmd_descriptors_match_the_wheel() {
    let python = python();
    assert!(
        python.exists(),
        "python interpreter {} not found: run tests/python/setup.sh (creates target/py-venv with ml-metadata) \
         or set METAMESH_PYTHON to a python that has ml-metadata==1.17.1 installed",
        python.display()
    );

    let mut set = tempfile::Builder::new().prefix("ml_metadata_descriptor").suffix(".bin").tempfile().unwrap();
    std::io::Write::write_all(&mut set, ML_METADATA_DESCRIPTOR_SET).unwrap();

    let script = workspace_root().join("tests/python/compare_mlmd_descriptors.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(set.path())
        .output()
        .unwrap_or_else(|e| panic!("running {} {}: {e}", python.display(), script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "our ml_metadata descriptors differ from the ml-metadata wheel's ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains(&format!("{EXPECTED_RPCS} rpcs")), "unexpected summary:\n{stdout}");
}

#[test]
fn mlmd_service_surface() {
    let fds = FileDescriptorSet::decode(ML_METADATA_DESCRIPTOR_SET).expect("ML_METADATA_DESCRIPTOR_SET decodes");
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    for name in ["ml_metadata/proto/metadata_store.proto", "ml_metadata/proto/metadata_store_service.proto"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let mlmd: Vec<_> = fds.file.iter().filter(|f| f.package() == "ml_metadata").collect();

    let services: Vec<_> = mlmd.iter().flat_map(|f| &f.service).collect();
    assert_eq!(services.len(), 1, "exactly one ml_metadata service");
    let service = services[0];
    assert_eq!(service.name(), SERVICE);
    assert_eq!(service.method.len(), EXPECTED_RPCS, "rpcs of ml_metadata.{SERVICE}");
    for method in &service.method {
        assert!(!method.client_streaming() && !method.server_streaming(), "{} is unary", method.name());
        assert_eq!(method.input_type(), format!(".ml_metadata.{}Request", method.name()));
        assert_eq!(method.output_type(), format!(".ml_metadata.{}Response", method.name()));
    }

    let messages: Vec<&str> = mlmd.iter().flat_map(|f| &f.message_type).map(|m| m.name()).collect();
    for expected in [
        "Artifact",
        "ArtifactType",
        "Execution",
        "Context",
        "Event",
        "LineageGraph",
        "PutArtifactsRequest",
        "GetLineageSubgraphRequest",
        "GetLineageSubgraphResponse",
    ] {
        assert!(messages.contains(&expected), "message ml_metadata.{expected} missing");
    }

    // proto2 defaults survive into the generated accessors.
    let options = ml_metadata::ListOperationOptions::default();
    assert_eq!(options.max_result_size, None);
    assert_eq!(options.max_result_size(), 20);
    let order_by = ml_metadata::list_operation_options::OrderByField::default();
    assert_eq!(order_by.field(), ml_metadata::list_operation_options::order_by_field::Field::Id);
    assert!(order_by.is_asc());
}
