//! `metamesh dev`: the local tour.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use metamesh_core::query::AsOf;
use metamesh_core::{Command, Direction, ListFilter, Urn};
use metamesh_store::{ExpandRequest, Store, StoreOptions};

use crate::store_cmd::apply_one;

/// The example pipeline: two tenants, typed datasets and a model, lineage from raw data to a
/// deployment (one edge crossing tenants), a model card, and a retrained model version.
const EXAMPLE: &str = include_str!("../../../deploy/examples/pipeline.jsonl");

#[derive(Args)]
pub struct DevArgs {
    /// Where the data lives; created if missing, reused if present.
    #[arg(long, default_value = "target/metamesh-dev")]
    dir: PathBuf,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let db = args.dir.join("shard.sqlite");
    let store = Store::open(&db, StoreOptions::default()).await?;
    println!("metamesh dev: shard store at {}", db.display());

    if store.tenants().await?.is_empty() {
        let mut applied = 0;
        for line in EXAMPLE.lines().filter(|l| !l.trim().is_empty()) {
            let command: Command = serde_json::from_str(line).context("example data")?;
            if let Err(e) = apply_one(&store, command, "dev").await? {
                bail!("example command refused: {e}");
            }
            applied += 1;
        }
        println!("loaded the example pipeline: {applied} commands");
    } else {
        println!("reusing existing data (delete {} to start over)", args.dir.display());
    }
    let revision = store.applied_revision().await?;
    let tenants = store.tenants().await?;
    let names: Vec<&str> = tenants.iter().map(|t| t.as_str()).collect();
    println!("tenants: {}   revision: {revision}", names.join(", "));

    let model: Urn = "mm://fraud/model/card-fraud-xgb".parse()?;
    println!("\nupstream lineage of {model}:");
    let up = store
        .expand(&ExpandRequest {
            start: vec![model.entity.clone()],
            direction: Direction::Upstream,
            kinds: vec![],
            max_depth: 10,
            max_nodes: 1000,
            as_of: None,
        })
        .await?;
    for e in &up.edges {
        println!("  {} -{}-> {}", e.from, e.kind, e.to);
    }

    println!("\nsearch \"card velocity\":");
    for hit in store.search("card velocity", &ListFilter::default(), None, 10).await?.items {
        println!("  {}  {}", hit.entity.urn, hit.snippet);
    }

    if let Some(current) = store.get_entity(&model, None).await? {
        let first = store.get_entity(&model, Some(AsOf::Revision(current.revision - 1))).await?;
        println!("\n{model}: version {} now, auc {}", current.version, current.properties["auc"]);
        if let Some(first) = first {
            println!(
                "  as of revision {}: version {}, auc {}",
                current.revision - 1,
                first.version,
                first.properties["auc"]
            );
        }
    }
    println!("\nstate digest: {}", store.digest().await?);
    println!("try: cargo run -p metamesh -- store --db {} search transactions", db.display());
    store.close().await;
    Ok(())
}
