//! Lineage edges and graph walks (LineageService).

use clap::{Args, Subcommand, ValueEnum};
use metamesh_proto::v1;
use serde_json::json;

use crate::conn::Ctx;
use crate::input::{self, split_version};
use crate::json;
use crate::output::{self, Output};

/// One edge as typed on the command line: `FROM KIND TO`, each end optionally `@VERSION`.
#[derive(Args)]
pub struct EdgeArgs {
    /// Upstream entity URN, optionally `@VERSION`.
    pub from: String,
    /// consumed, produced, derived_from, trained_on, deployed, feature_of or column.
    pub kind: String,
    /// Downstream entity URN, optionally `@VERSION`.
    pub to: String,
    /// Upstream column (column edges).
    #[arg(long, default_value = "")]
    pub from_column: String,
    /// Downstream column (column edges).
    #[arg(long, default_value = "")]
    pub to_column: String,
    /// Tenant whose shard stores the edge; default: the endpoints' common tenant.
    #[arg(long, default_value = "")]
    pub tenant: String,
    #[arg(long, default_value = "")]
    pub request_id: String,
}

impl EdgeArgs {
    fn spec(&self, transformation: String) -> v1::EdgeSpec {
        let (from_urn, from_version) = split_version(&self.from);
        let (to_urn, to_version) = split_version(&self.to);
        v1::EdgeSpec {
            from_urn,
            from_version,
            to_urn,
            to_version,
            kind: self.kind.clone(),
            from_column: self.from_column.clone(),
            to_column: self.to_column.clone(),
            transformation,
        }
    }
}

#[derive(Subcommand)]
pub enum EdgeCmd {
    /// Add an edge (adding an existing edge changes nothing).
    Add {
        #[command(flatten)]
        edge: EdgeArgs,
        /// How the downstream was computed (e.g. SQL), free text.
        #[arg(long, default_value = "")]
        transformation: String,
    },
    /// Remove an edge (an end without a version matches every version).
    Rm {
        #[command(flatten)]
        edge: EdgeArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Dir {
    /// Towards sources.
    #[value(alias = "upstream")]
    Up,
    /// Towards consumers.
    #[value(alias = "downstream")]
    Down,
    Both,
}

#[derive(Args)]
pub struct LineageArgs {
    /// Start URNs.
    #[arg(required = true)]
    pub urns: Vec<String>,
    #[arg(long, value_enum, default_value_t = Dir::Both)]
    pub direction: Dir,
    /// Maximum hops from the start; 0 = the node's default.
    #[arg(long, default_value_t = 0)]
    pub depth: u32,
    /// Maximum nodes in the answer; 0 = the node's default.
    #[arg(long, default_value_t = 0)]
    pub max_nodes: u32,
    /// Only follow this edge kind (repeat for several).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Walk the graph as of this shard revision.
    #[arg(long, conflicts_with = "as_of_time")]
    pub as_of_revision: Option<u64>,
    /// Walk the graph as of this time: RFC 3339 or milliseconds since the epoch.
    #[arg(long, value_parser = input::time_ms)]
    pub as_of_time: Option<i64>,
    /// Through a router: walk a shard group as of its own revision (`GROUP=REVISION`; repeat).
    #[arg(long = "shard-revision", value_parser = shard_revision, value_name = "GROUP=REVISION")]
    pub shard_revisions: Vec<(String, u64)>,
}

pub async fn edge(ctx: &Ctx, cmd: EdgeCmd) -> anyhow::Result<()> {
    match cmd {
        EdgeCmd::Add { edge, transformation } => {
            let spec = edge.spec(transformation);
            let request = v1::AddEdgesRequest { request_id: edge.request_id, tenant: edge.tenant, edges: vec![spec] };
            let reply = ctx.lineage().await?.add_edges(request).await?.into_inner();
            match ctx.output {
                Output::Json => {
                    let edges: Vec<_> = reply.edges.iter().map(json::edge).collect();
                    output::print_json(&json!({"edges": edges, "revision": reply.revision}));
                }
                Output::Table => {
                    print_edges(&reply.edges);
                    println!("revision {}", reply.revision);
                }
            }
        }
        EdgeCmd::Rm { edge } => {
            let spec = edge.spec(String::new());
            let request =
                v1::RemoveEdgesRequest { request_id: edge.request_id, tenant: edge.tenant, edges: vec![spec] };
            let reply = ctx.lineage().await?.remove_edges(request).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json!({"removed": reply.removed, "revision": reply.revision})),
                Output::Table => println!("removed {} edge(s) at revision {}", reply.removed, reply.revision),
            }
        }
    }
    Ok(())
}

pub async fn lineage(ctx: &Ctx, a: LineageArgs) -> anyhow::Result<()> {
    let direction = match a.direction {
        Dir::Up => v1::Direction::Upstream,
        Dir::Down => v1::Direction::Downstream,
        Dir::Both => v1::Direction::Both,
    };
    let request = v1::ExpandRequest {
        urns: a.urns,
        direction: direction as i32,
        max_depth: a.depth,
        max_nodes: a.max_nodes,
        deadline_ms: 0,
        kinds: a.kinds,
        as_of: input::as_of(a.as_of_revision, a.as_of_time),
        consistency: ctx.consistency(),
        shard_revisions: a.shard_revisions.into_iter().collect(),
        start_depths: Vec::new(),
    };
    let x = ctx.lineage().await?.expand(request).await?.into_inner();
    match ctx.output {
        Output::Json => {
            let nodes: Vec<_> = x.nodes.iter().map(json::lineage_node).collect();
            let edges: Vec<_> = x.edges.iter().map(json::edge).collect();
            output::print_json(&json!({
                "nodes": nodes,
                "edges": edges,
                "partial": x.partial,
                "partial_reasons": json::partial_reasons(&x.partial_reasons),
                "remote_frontier": x.remote_frontier,
            }));
        }
        Output::Table => {
            output::print_table(&output::table(
                &["DEPTH", "URN", "TYPE", "STATUS"],
                x.nodes.iter().map(|n| {
                    let status = match (n.placeholder, n.deleted) {
                        (true, _) => "(not readable)".to_owned(),
                        (false, true) => "(deleted)".to_owned(),
                        (false, false) => n.status.clone(),
                    };
                    vec![n.depth.to_string(), n.urn.clone(), n.type_name.clone(), status]
                }),
            ));
            println!();
            print_edges(&x.edges);
            if x.partial {
                println!();
                for r in &x.partial_reasons {
                    let shard = if r.shard.is_empty() { String::new() } else { format!(" (shard {})", r.shard) };
                    println!("partial: {}: {}{shard}", r.code, r.detail);
                }
            }
            for urn in &x.remote_frontier {
                println!("not expanded: {urn}");
            }
        }
    }
    Ok(())
}

/// Edges as `FROM  KIND  TO  COLUMNS  REVISION`.
fn print_edges(edges: &[v1::Edge]) {
    let end = |urn: &str, v: Option<u64>| match v {
        Some(v) => format!("{urn}@{v}"),
        None => urn.to_owned(),
    };
    output::print_table(&output::table(
        &["FROM", "KIND", "TO", "COLUMNS", "REVISION"],
        edges.iter().map(|e| {
            let columns =
                if e.from_column.is_empty() { String::new() } else { format!("{} -> {}", e.from_column, e.to_column) };
            vec![
                end(&e.from_urn, e.from_version),
                e.kind.clone(),
                end(&e.to_urn, e.to_version),
                columns,
                e.revision.to_string(),
            ]
        }),
    ));
}

/// `GROUP=REVISION`.
fn shard_revision(text: &str) -> Result<(String, u64), String> {
    let (group, rev) = text.split_once('=').ok_or_else(|| format!("expected GROUP=REVISION, found {text:?}"))?;
    let rev = rev.parse().map_err(|_| format!("{rev:?} is not a revision (a whole number)"))?;
    if group.is_empty() {
        return Err("the group is empty".into());
    }
    Ok((group.to_owned(), rev))
}
