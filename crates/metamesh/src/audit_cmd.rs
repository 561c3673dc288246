//! `metamesh audit`: offline tools over a shard's audit log.
//!
//! - `verify`: from a replica's data directory or a copy of its state file (a snapshot, a
//!   backup), recomputes every record's hash and the chain, and the Merkle root of every signed
//!   checkpoint (with `--key`, the shard's public keys); names the first bad record, exit 1.
//! - `prove --seq N`: an inclusion proof of record N in the latest signed checkpoint (JSON).
//! - `check-proof FILE --key PUB`: checks such a proof with nothing but the public key.

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
    /// Print an inclusion proof (JSON) that record SEQ is in the latest signed checkpoint.
    Prove {
        /// A replica's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The record's sequence number.
        #[arg(long)]
        seq: u64,
    },
    /// Check a proof printed by `prove`, offline, against the shard's public key.
    CheckProof {
        /// The proof (JSON), `-` for standard input.
        proof: PathBuf,
        /// The shard's public key (PEM); repeat for rotated keys.
        #[arg(long = "key", value_name = "PEM", required = true)]
        keys: Vec<PathBuf>,
    },
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
        AuditCommand::Prove { data_dir, seq } => {
            let path = live_state(&data_dir)?;
            let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("opening {}", path.display()))?;
            let bundle = metamesh_audit::sqlite::prove_latest(&conn, seq)
                .map_err(|e| anyhow::anyhow!("{}: no proof for record {seq}: {e}", path.display()))?;
            println!("{}", serde_json::to_string_pretty(&bundle)?);
            Ok(())
        }
        AuditCommand::CheckProof { proof, keys } => {
            let text = if proof.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&proof).with_context(|| format!("reading {}", proof.display()))?
            };
            let bundle: metamesh_audit::ProofBundle =
                serde_json::from_str(&text).context("the proof is not a metamesh audit proof")?;
            let keys = load_keys(&keys)?;
            bundle.check(&keys).map_err(|e| anyhow::anyhow!("the proof does not check: {e}"))?;
            println!("ok: {}", bundle.describe());
            Ok(())
        }
        AuditCommand::Verify { data_dir, file, keys } => {
            let path = match (data_dir, file) {
                (_, Some(file)) => file,
                (Some(dir), None) => live_state(&dir)?,
                (None, None) => unreachable!("clap requires one"),
            };
            let keys = load_keys(&keys)?;
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
    metamesh_raft::state_machine::live_state_file(dir)
        .with_context(|| format!("{} is not a replica's data directory (no state/CURRENT)", dir.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<metamesh_audit::VerifyingKey>> {
    paths
        .iter()
        .map(|k| metamesh_audit::load_public_key(k).with_context(|| format!("reading key {}", k.display())))
        .collect()
}
