//! `metamesh audit verify`: checks a shard's audit log offline, from a replica's data directory
//! or a copy of its state file (a snapshot, a backup). Recomputes every record's hash and the
//! chain, and the Merkle root of every signed checkpoint (with `--key`, the shard's public
//! keys); on the first bad record it names it and exits with 1.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit log of a replica (`--data-dir`) or of one state file (`--file`).
    Verify {
        /// A replica's data directory (`node.data_dir`): its live state file is verified.
        #[arg(long, value_name = "DIR", conflicts_with = "file", required_unless_present = "file")]
        data_dir: Option<PathBuf>,
        /// A state file (`state/*.sqlite`, a snapshot or a backup).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The shard's public key (PEM) checkpoints must be signed with; repeat for rotated keys.
        #[arg(long = "key", value_name = "PEM")]
        keys: Vec<PathBuf>,
    },
}

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify { data_dir, file, keys } => {
            let path = match (data_dir, file) {
                (_, Some(file)) => file,
                (Some(dir), None) => live_state(&dir)?,
                (None, None) => unreachable!("clap requires one"),
            };
            let keys = keys
                .iter()
                .map(|k| metamesh_audit::load_public_key(k).with_context(|| format!("reading key {}", k.display())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if !path.is_file() {
                anyhow::bail!("{}: no such state file", path.display());
            }
            let report = metamesh_audit::sqlite::verify_file(&path, &keys)
                .map_err(|e| anyhow::anyhow!("{}: the audit log does not verify: {e}", path.display()))?;
            println!(
                "{}: ok: {} records, head {}, {} checkpoints covering {} records ({} after the last)",
                path.display(),
                report.records,
                hex(&report.head),
                report.checkpoints,
                report.covered,
                report.uncovered
            );
            Ok(())
        }
    }
}

/// The live state file of a replica's data directory (named by `state/CURRENT`).
fn live_state(dir: &Path) -> anyhow::Result<PathBuf> {
    let pointer = dir.join("state").join("CURRENT");
    let name = std::fs::read_to_string(&pointer)
        .with_context(|| format!("{} is not a replica's data directory (no state/CURRENT)", dir.display()))?;
    Ok(dir.join("state").join(name.trim()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
