//! The `metamesh` binary. Thin: parses arguments and calls into the library crates.
//!
//! - `metamesh dev --dir DIR`: the whole mesh in one process — a router and two shard groups of
//!   three replicas, generated certificates, the example policies, a seeded pipeline across
//!   tenants; writes `DIR/dev.json`.
//! - `metamesh router --config FILE`: a federating router.
//! - `metamesh store …`: direct access to one shard's SQLite file, for operators and tests.
//! - `metamesh node --config FILE`: one replica of a shard group (Raft over mTLS gRPC), with
//!   its telemetry (`metamesh-telemetry`: logs, OTLP traces, Prometheus `/metrics`).
//! - `metamesh certs …`: a mesh CA and node, router and client certificates.
//! - `metamesh policy check|test DIR`: validate a policy directory, run its assertion files.
//! - `metamesh audit verify`: verify a shard's audit log offline.

mod audit_cmd;
mod certs_cmd;
mod dev;
mod node_cmd;
mod policy_cmd;
mod router_cmd;
mod store_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "metamesh", version, about = "federated, multi-tenant metadata store for machine learning")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a whole mesh here: a router and two shard groups of three replicas, seeded.
    Dev(dev::DevArgs),
    /// Work on one shard's SQLite file directly.
    Store(store_cmd::StoreArgs),
    /// Run one replica of a shard group.
    Node(node_cmd::NodeArgs),
    /// Run a federating router over the shard groups of a mesh map.
    Router(router_cmd::RouterArgs),
    /// Create a mesh CA and certificates for nodes, routers and clients.
    Certs(certs_cmd::CertsArgs),
    /// Verify a shard's audit log offline (hash chain, signed checkpoints).
    Audit(audit_cmd::AuditArgs),
    /// Check a policy directory, or run its assertion files (for policy repositories' CI).
    Policy(policy_cmd::PolicyArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `node` installs its own subscriber (log filter from its configuration, OTLP export) once
    // the configuration is read; the other subcommands log to stderr, filtered by METAMESH_LOG.
    if !matches!(cli.command, Cmd::Node(_) | Cmd::Router(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("METAMESH_LOG")
                    .unwrap_or_else(|_| "warn,openraft=error".into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    let result = match cli.command {
        Cmd::Dev(args) => dev::run(args).await,
        Cmd::Store(args) => store_cmd::run(args).await,
        Cmd::Node(args) => node_cmd::run(args).await,
        Cmd::Router(args) => router_cmd::run(args).await,
        Cmd::Certs(args) => certs_cmd::run(args),
        Cmd::Policy(args) => policy_cmd::run(args),
        Cmd::Audit(args) => audit_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
