//! The command line: global flags (each also read from the environment, so a shell profile can
//! point `meshctl` at a mesh once) and the subcommands, whose arguments live beside their code
//! in [`crate::cmd`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{admin, audit, catalog, import, lineage, query, schema, watch};
use crate::input::{self, Consistency};
use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "meshctl",
    version,
    about = "command-line client of a metamesh shard node",
    after_help = "exit codes: 0 ok, 1 refused by the node, 2 usage or configuration error, 3 node unreachable"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Where the node is, who we are, and how to print and read.
#[derive(Args)]
pub struct Global {
    /// Address of the node's client API (host:port).
    #[arg(long, env = "METAMESH_ADDR", default_value = "127.0.0.1:7400", global = true)]
    pub addr: String,
    /// The mesh CA certificate (PEM).
    #[arg(long, env = "METAMESH_CA", default_value = "certs/ca.pem", global = true)]
    pub ca: PathBuf,
    /// Our client certificate (PEM), issued by `metamesh certs --client NAME`. Required.
    #[arg(long, env = "METAMESH_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// The key of --cert (PEM). Required.
    #[arg(long, env = "METAMESH_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Name the node's certificate must carry; default: the host of --addr.
    #[arg(long, env = "METAMESH_SERVER_NAME", global = true)]
    pub server_name: Option<String>,
    /// Output format.
    #[arg(long, value_enum, env = "METAMESH_OUTPUT", default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Read consistency: linearizable (the default), any (whatever the node has applied) or
    /// min-revision=N (read-your-writes).
    #[arg(long, env = "METAMESH_CONSISTENCY", value_parser = input::consistency, global = true)]
    pub consistency: Option<Consistency>,
    /// Read from the node called (a follower read) only if its state is at most this old:
    /// 250ms, 2s, 1m. Combines with --consistency any or min-revision=N.
    #[arg(long, env = "METAMESH_MAX_STALENESS", value_parser = input::duration_ms, value_name = "DURATION", global = true)]
    pub max_staleness: Option<u64>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(catalog::TenantCmd),
    /// Write a new version of an entity (a full replacement: send every field to keep).
    Put(catalog::PutArgs),
    /// Show one entity version: the latest, `URN@VERSION`, or as of a revision or time.
    Get(catalog::GetArgs),
    /// List the entities of a tenant (or of every tenant) matching filters.
    List(query::ListArgs),
    /// List every version of an entity, newest first.
    Versions(catalog::VersionsArgs),
    /// Delete an entity (writes a tombstone version; history stays readable).
    Delete(catalog::DeleteArgs),
    /// Markdown documents attached to an entity.
    #[command(subcommand)]
    Doc(catalog::DocCmd),
    /// Add or remove lineage edges.
    #[command(subcommand)]
    Edge(lineage::EdgeCmd),
    /// Walk the lineage graph from entities.
    Lineage(lineage::LineageArgs),
    /// Full-text search.
    Search(query::SearchArgs),
    /// Register, read and check entity types' JSON Schemas.
    #[command(subcommand)]
    Schema(schema::SchemaCmd),
    /// Stream committed changes until Ctrl-C, then print the revision to resume from.
    Watch(watch::WatchArgs),
    /// Bulk-write entities from a JSON-lines file, idempotently.
    Import(import::ImportArgs),
    /// Replication status, snapshots and membership of the node's shard group.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Health of the node's components; exits 1 when it is not serving.
    Health,
    /// The shard's audit log: list, verify, checkpoints, inclusion proofs, export.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
