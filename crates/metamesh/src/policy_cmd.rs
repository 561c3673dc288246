//! `metamesh policy`: tooling for policy repositories, with an exit code for CI.
//!
//! - `check <dir>`: loads the directory as a node would: syntax, unknown roles and actions,
//!   tenant files granting outside their tenant, rules that can never match. Every problem is
//!   printed as `file:line: reason`; warnings do not fail the check.
//! - `test <dir>`: `check`, then runs the assertion files (`<dir>/tests/*.toml`, see
//!   `docs/policies.md`) and prints each failed assertion with its file and line.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Subcommand};
use metamesh_policy::{run_tests, PolicyError, PolicySet};

#[derive(Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy directory (model.conf, global.csv, tenants/*.csv).
    Check {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Validate a policy directory, then run its assertion files.
    Test {
        /// The policy directory.
        dir: PathBuf,
        /// Where the assertion files are (default: <dir>/tests).
        #[arg(long, value_name = "DIR")]
        tests: Option<PathBuf>,
    },
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    match args.command {
        PolicyCommand::Check { dir } => {
            let policy = load(&dir)?;
            let s = policy.stats();
            println!(
                "{}: ok: {} files, {} rules ({} grants, {} assignments, {} markers), {} tenant files",
                dir.display(),
                s.files,
                s.lines,
                s.grants,
                s.assignments,
                s.markers,
                s.tenants
            );
            println!("digest {}", policy.digest());
            Ok(())
        }
        PolicyCommand::Test { dir, tests } => {
            let policy = load(&dir)?;
            let tests = tests.unwrap_or_else(|| dir.join("tests"));
            let report = match run_tests(&policy, &tests) {
                Ok(report) => report,
                Err(errors) => {
                    errors.iter().for_each(|e| eprintln!("{e}"));
                    bail!("{} problem(s) in the assertion files", errors.len());
                }
            };
            for r in report.failures() {
                let why = r.failure.as_deref().unwrap_or_default();
                eprintln!("{}:{}: FAIL {} `{}`: {why}", r.file.display(), r.line, r.kind, r.text);
            }
            println!("policy {}: {} passed, {} failed", policy.digest().short(), report.passed(), report.failed());
            if report.failed() > 0 {
                bail!("{} policy assertion(s) failed", report.failed());
            }
            Ok(())
        }
    }
}

/// Loads `dir`, printing warnings; on errors prints each and fails.
fn load(dir: &Path) -> anyhow::Result<PolicySet> {
    match PolicySet::load(dir) {
        Ok(policy) => {
            policy.warnings().iter().for_each(|w| eprintln!("{}", warning(w)));
            Ok(policy)
        }
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            bail!("{} problem(s) in {}", errors.len(), dir.display());
        }
    }
}

fn warning(w: &PolicyError) -> String {
    match w.line {
        Some(line) => format!("{}:{line}: warning: {}", w.file.display(), w.reason),
        None => format!("{}: warning: {}", w.file.display(), w.reason),
    }
}
