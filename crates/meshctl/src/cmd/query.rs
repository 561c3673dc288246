//! Paged reads: `list` (ListEntities, across tenants when none is named) and `search`.
//!
//! Both print what they fetched page by page, so `list --all` over a large tenant starts
//! printing at once and never holds more than a page in memory (JSON output; a table needs all
//! rows to align its columns).

use clap::Args;
use metamesh_proto::v1;
use serde_json::json;

use crate::cmd::catalog::type_cell;
use crate::conn::Ctx;
use crate::input;
use crate::json;
use crate::output::{self, Output};

/// The largest page a node serves.
const MAX_PAGE: u32 = 1000;

#[derive(Args)]
pub struct ListArgs {
    /// Tenant to list; default: every tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this kind (dataset, feature, model, experiment, run, job, deployment).
    #[arg(long, default_value = "")]
    pub kind: String,
    /// Only this registered type.
    #[arg(long = "type", default_value = "")]
    pub type_name: String,
    /// Only entities carrying this tag (repeat: all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[arg(long, default_value = "")]
    pub owner: String,
    #[arg(long, default_value = "")]
    pub status: String,
    /// A property filter 'path op value' (op: = != < <= > >=), e.g. 'rows > 100' (repeat: all).
    #[arg(long = "prop", value_parser = input::property_filter)]
    pub props: Vec<v1::PropertyFilter>,
    /// At most N entities (default 100); with --all, the page size.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Every matching entity, following page tokens.
    #[arg(long)]
    pub all: bool,
    /// Include deleted entities (their tombstones).
    #[arg(long)]
    pub include_deleted: bool,
    /// List as of this shard revision.
    #[arg(long, conflicts_with = "as_of_time")]
    pub as_of_revision: Option<u64>,
    /// List as of this time: RFC 3339 or milliseconds since the epoch.
    #[arg(long, value_parser = input::time_ms)]
    pub as_of_time: Option<i64>,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Words to match (all of them) in names, descriptions, tags, properties and documents.
    pub text: String,
    /// Only this tenant (repeat for several).
    #[arg(long = "tenant")]
    pub tenants: Vec<String>,
    /// Only this kind (repeat for several).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only entities carrying this tag (repeat: all of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// At most N hits.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

pub async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let mut client = ctx.catalog().await?;
    let tenants = match &a.tenant {
        Some(t) => vec![t.clone()],
        None => all_tenants(ctx).await?,
    };
    // None = unbounded (--all).
    let mut remaining = if a.all { None } else { Some(a.limit.unwrap_or(100)) };
    let page_size = if a.all { a.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE) } else { MAX_PAGE };
    let mut rows = Vec::new();
    let mut more = false;
    'tenants: for tenant in tenants {
        let mut page_token = String::new();
        loop {
            if remaining == Some(0) {
                more = true;
                break 'tenants;
            }
            let request = v1::ListEntitiesRequest {
                tenant: tenant.clone(),
                kind: a.kind.clone(),
                type_name: a.type_name.clone(),
                tags: a.tags.clone(),
                owner: a.owner.clone(),
                status: a.status.clone(),
                property_filters: a.props.clone(),
                as_of: input::as_of(a.as_of_revision, a.as_of_time),
                consistency: ctx.consistency(),
                include_deleted: a.include_deleted,
                page_size: remaining.map_or(page_size, |r| r.min(MAX_PAGE)),
                page_token,
            };
            let reply = client.list_entities(request).await?.into_inner();
            if let Some(r) = remaining.as_mut() {
                *r = r.saturating_sub(reply.entities.len() as u32);
            }
            for e in reply.entities {
                match ctx.output {
                    Output::Json => output::print_json(&json::entity(&e)),
                    Output::Table => rows.push(entity_row(&e)),
                }
            }
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
    }
    if ctx.output == Output::Table {
        output::print_table(&output::table(&["URN", "VERSION", "TYPE", "STATUS", "OWNER", "TAGS", "UPDATED"], rows));
    }
    if more {
        eprintln!("stopped at --limit {}: more entities may match (pass --all)", a.limit.unwrap_or(100));
    }
    Ok(())
}

/// Every tenant's name, for `list` without `--tenant`.
async fn all_tenants(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    let mut client = ctx.catalog().await?;
    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let reply = client.list_tenants(v1::ListTenantsRequest { page_size: MAX_PAGE, page_token }).await?.into_inner();
        names.extend(reply.tenants.into_iter().map(|t| t.name));
        if reply.next_page_token.is_empty() {
            return Ok(names);
        }
        page_token = reply.next_page_token;
    }
}

fn entity_row(e: &v1::Entity) -> Vec<String> {
    vec![
        e.urn.clone(),
        e.version.to_string(),
        type_cell(e),
        if e.deleted { "(deleted)".into() } else { e.status.clone() },
        e.owner.clone(),
        output::list(&e.tags),
        output::time(e.updated_at_ms),
    ]
}

pub async fn search(ctx: &Ctx, a: SearchArgs) -> anyhow::Result<()> {
    let mut client = ctx.search().await?;
    let mut hits = Vec::new();
    let mut partial = Vec::new();
    let mut page_token = String::new();
    while (hits.len() as u32) < a.limit {
        let request = v1::SearchRequest {
            query: a.text.clone(),
            tenants: a.tenants.clone(),
            kinds: a.kinds.clone(),
            tags: a.tags.clone(),
            page_size: (a.limit - hits.len() as u32).min(MAX_PAGE),
            page_token,
            ..Default::default()
        };
        let reply = client.search(request).await?.into_inner();
        hits.extend(reply.hits);
        partial.extend(reply.partial_reasons);
        if reply.next_page_token.is_empty() {
            break;
        }
        page_token = reply.next_page_token;
    }
    hits.truncate(a.limit as usize);
    match ctx.output {
        Output::Json => {
            for h in &hits {
                let entity = h.entity.as_ref().map(json::entity).unwrap_or_default();
                output::print_json(&json!({"score": h.score, "snippet": h.snippet, "entity": entity}));
            }
        }
        Output::Table => output::print_table(&output::table(
            &["SCORE", "URN", "VERSION", "SNIPPET"],
            hits.iter().map(|h| {
                let e = h.entity.clone().unwrap_or_default();
                vec![format!("{:.3}", h.score), e.urn, e.version.to_string(), h.snippet.clone()]
            }),
        )),
    }
    for r in &partial {
        eprintln!("partial: {} {} {}", r.code, r.detail, r.shard);
    }
    Ok(())
}
