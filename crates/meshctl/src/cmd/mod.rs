//! One module per group of subcommands, each holding its arguments and its `run`:
//! - [`catalog`]: `tenant`, `put`, `get`, `versions`, `delete`, `doc`;
//! - [`query`]: `list` and `search` (paged reads);
//! - [`lineage`]: `edge`, `lineage`;
//! - [`schema`]: `schema register|get|check|types`;
//! - [`watch`]: the change stream;
//! - [`import`]: bulk writes from JSON lines;
//! - [`admin`]: `admin …` and `health`;
//! - [`audit`]: `audit …`, the audit log (`check-proof` works offline).

pub mod admin;
pub mod audit;
pub mod catalog;
pub mod import;
pub mod lineage;
pub mod query;
pub mod schema;
pub mod watch;

use crate::cli::{Cli, Cmd};
use crate::conn::Ctx;

/// Runs the command; the node is dialled when the command first needs it.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Offline: no certificates needed.
    if let Cmd::Audit(audit::AuditCmd::CheckProof(a)) = &cli.command {
        return audit::check_proof(a, cli.global.output);
    }
    let ctx = Ctx::new(&cli.global)?;
    match cli.command {
        Cmd::Tenant(c) => catalog::tenant(&ctx, c).await,
        Cmd::Put(a) => catalog::put(&ctx, a).await,
        Cmd::Get(a) => catalog::get(&ctx, a).await,
        Cmd::List(a) => query::list(&ctx, a).await,
        Cmd::Versions(a) => catalog::versions(&ctx, a).await,
        Cmd::Delete(a) => catalog::delete(&ctx, a).await,
        Cmd::Doc(c) => catalog::doc(&ctx, c).await,
        Cmd::Edge(c) => lineage::edge(&ctx, c).await,
        Cmd::Lineage(a) => lineage::lineage(&ctx, a).await,
        Cmd::Search(a) => query::search(&ctx, a).await,
        Cmd::Schema(c) => schema::run(&ctx, c).await,
        Cmd::Watch(a) => watch::run(&ctx, a).await,
        Cmd::Import(a) => import::run(&ctx, a).await,
        Cmd::Admin(c) => admin::run(&ctx, c).await,
        Cmd::Health => admin::health(&ctx).await,
        Cmd::Audit(c) => audit::run(&ctx, c).await,
    }
}
