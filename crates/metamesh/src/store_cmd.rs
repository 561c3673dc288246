//! `metamesh store …`: apply commands to and query one shard's SQLite file.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use metamesh_core::query::AsOf;
use metamesh_core::{Command, Direction, EntityUrn, Kind, ListFilter, Proposal, TenantId, Urn};
use metamesh_store::{ExpandRequest, Store, StoreOptions};

#[derive(Args)]
pub struct StoreArgs {
    /// The SQLite file (created if missing).
    #[arg(long, env = "METAMESH_DB")]
    db: PathBuf,
    #[command(subcommand)]
    command: StoreCmd,
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Apply commands, one JSON object per line (see docs/commands.md), from a file or `-`.
    Apply {
        file: PathBuf,
        /// The principal recorded as the author.
        #[arg(long, default_value = "local-admin")]
        principal: String,
    },
    /// Show an entity (`mm://tenant/kind/name[@version]`).
    Get {
        urn: String,
        #[arg(long)]
        as_of_revision: Option<u64>,
    },
    /// List entities.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        tag: Vec<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Full-text search.
    Search { text: String },
    /// Walk lineage from an entity.
    Lineage {
        urn: String,
        #[arg(long, value_enum, default_value_t = Dir::Both)]
        direction: Dir,
        #[arg(long, default_value_t = 10)]
        depth: u32,
    },
    /// Print the deterministic state dump, or its digest.
    Export {
        #[arg(long)]
        digest: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Dir {
    Upstream,
    Downstream,
    Both,
}

impl From<Dir> for Direction {
    fn from(d: Dir) -> Direction {
        match d {
            Dir::Upstream => Direction::Upstream,
            Dir::Downstream => Direction::Downstream,
            Dir::Both => Direction::Both,
        }
    }
}

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db, StoreOptions::default())
        .await
        .with_context(|| format!("opening {}", args.db.display()))?;
    match args.command {
        StoreCmd::Apply { file, principal } => {
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?,
                ))
            };
            let mut failed = 0;
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let command: Command =
                    serde_json::from_str(&line).with_context(|| format!("line {}: not a command", n + 1))?;
                let applied = apply_one(&store, command, &principal).await?;
                match applied {
                    Ok(outcome) => println!("{}", serde_json::to_string(&outcome)?),
                    Err(e) => {
                        failed += 1;
                        eprintln!("line {}: refused: {e}", n + 1);
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} command(s) refused");
            }
        }
        StoreCmd::Get { urn, as_of_revision } => {
            let urn: Urn = urn.parse()?;
            match store.get_entity(&urn, as_of_revision.map(AsOf::Revision)).await? {
                Some(e) => println!("{}", serde_json::to_string_pretty(&e)?),
                None => bail!("{urn} not found"),
            }
        }
        StoreCmd::List { tenant, kind, tag, limit } => {
            let filter = ListFilter {
                tenant: tenant.map(|t| TenantId::new(&t)).transpose()?,
                kind: kind.map(|k| k.parse::<Kind>()).transpose()?,
                tags: tag,
                ..Default::default()
            };
            let page = store.list_entities(&filter, None, None, limit).await?;
            for e in page.items {
                println!("{}@{}\t{}", e.urn, e.version, e.description.unwrap_or_default());
            }
        }
        StoreCmd::Search { text } => {
            let page = store.search(&text, &ListFilter::default(), None, 20).await?;
            for hit in page.items {
                println!("{}\t{}", hit.entity.urn, hit.snippet);
            }
        }
        StoreCmd::Lineage { urn, direction, depth } => {
            let start: EntityUrn = urn.parse()?;
            let req = ExpandRequest {
                start: vec![start],
                start_depths: vec![],
                direction: direction.into(),
                kinds: vec![],
                max_depth: depth,
                max_nodes: 10_000,
                as_of: None,
            };
            let x = store.expand(&req).await?;
            for e in x.edges {
                println!("{} -{}-> {}", e.from, e.kind, e.to);
            }
        }
        StoreCmd::Export { digest } => {
            if digest {
                println!("{}", store.digest().await?);
            } else {
                print!("{}", store.export().await?);
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Applies one command at the next revision, stamped with the current time.
pub async fn apply_one(
    store: &Store,
    command: Command,
    principal: &str,
) -> anyhow::Result<Result<metamesh_core::Outcome, metamesh_core::CommandError>> {
    let rev = store.applied_revision().await? + 1;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let applied = store.apply(rev, &Proposal::new(command, now, principal)).await?;
    Ok(applied.result)
}
