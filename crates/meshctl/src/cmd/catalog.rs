//! Tenants, entity writes and reads, versions and documents (CatalogService).

use clap::{Args, Subcommand};
use metamesh_proto::v1;
use serde_json::json;

use crate::conn::Ctx;
use crate::input::{self, split_version};
use crate::json;
use crate::output::{self, Output};

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant (it must be assigned to the node's shard group).
    Create {
        /// Tenant name, a lowercase DNS label.
        name: String,
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        owner: String,
        /// Idempotency key: a retry with the same id returns the first result.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// List tenants.
    List,
}

#[derive(Args)]
pub struct PutArgs {
    /// Unversioned URN, e.g. `mm://fraud/dataset/transactions`.
    pub urn: String,
    /// Registered type; default: the kind's built-in type.
    #[arg(long = "type", default_value = "")]
    pub type_name: String,
    /// Schema version of the type to validate against; default: the latest.
    #[arg(long)]
    pub schema_version: Option<u32>,
    /// Properties: a JSON object, `@file` or `-` (stdin).
    #[arg(long)]
    pub props: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[arg(long, default_value = "")]
    pub owner: String,
    /// Lifecycle status, e.g. draft, production, deprecated.
    #[arg(long, default_value = "")]
    pub status: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Fail unless the latest version is N (0: the entity must not exist yet).
    #[arg(long)]
    pub expect_version: Option<u64>,
    /// Idempotency key: a retry with the same id returns the first result.
    #[arg(long, default_value = "")]
    pub request_id: String,
}

#[derive(Args)]
pub struct GetArgs {
    /// URN, optionally `@VERSION`.
    pub urn: String,
    /// Read as of this shard revision.
    #[arg(long, conflicts_with = "as_of_time")]
    pub as_of_revision: Option<u64>,
    /// Read as of this time: RFC 3339 or milliseconds since the epoch.
    #[arg(long, value_parser = input::time_ms)]
    pub as_of_time: Option<i64>,
    /// Show the tombstone instead of NOT_FOUND when the entity is deleted.
    #[arg(long)]
    pub include_deleted: bool,
}

#[derive(Args)]
pub struct VersionsArgs {
    /// Unversioned URN.
    pub urn: String,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Unversioned URN.
    pub urn: String,
    /// Fail unless the latest version is N.
    #[arg(long)]
    pub expect_version: Option<u64>,
    #[arg(long, default_value = "")]
    pub request_id: String,
}

#[derive(Subcommand)]
pub enum DocCmd {
    /// Write a new version of a markdown document attached to an entity.
    Put {
        /// Unversioned URN of the entity.
        urn: String,
        /// Title; identifies the document within the entity.
        title: String,
        /// The markdown body: `@file.md`, `-` (stdin) or the text itself.
        body: String,
        /// Fail unless the latest document version is N (0: must not exist yet).
        #[arg(long)]
        expect_version: Option<u32>,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// List the documents of an entity (latest version of each).
    List {
        urn: String,
        /// Only the document with this title.
        #[arg(long, default_value = "")]
        title: String,
        /// Every version (the history, newest first) instead of the latest of each.
        #[arg(long)]
        all_versions: bool,
        /// Also deleted documents (their tombstones, and with --all-versions their history).
        #[arg(long)]
        include_deleted: bool,
    },
    /// Delete a document (writes a tombstone version).
    Rm {
        urn: String,
        title: String,
        #[arg(long, default_value = "")]
        request_id: String,
    },
}

pub async fn tenant(ctx: &Ctx, cmd: TenantCmd) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Create { name, display_name, description, owner, request_id } => {
            let request = v1::CreateTenantRequest { request_id, name, display_name, description, owner };
            let reply = ctx.catalog().await?.create_tenant(request).await?.into_inner();
            let t = reply.tenant.unwrap_or_default();
            match ctx.output {
                Output::Json => output::print_json(&json!({"tenant": json::tenant(&t), "revision": reply.revision})),
                Output::Table => println!(
                    "created tenant {} on shard group {} at revision {}",
                    t.name, t.shard_group, reply.revision
                ),
            }
        }
        TenantCmd::List => {
            let mut client = ctx.catalog().await?;
            let mut tenants = Vec::new();
            let mut page_token = String::new();
            loop {
                let reply =
                    client.list_tenants(v1::ListTenantsRequest { page_size: 1000, page_token }).await?.into_inner();
                tenants.extend(reply.tenants);
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            match ctx.output {
                Output::Json => tenants.iter().for_each(|t| output::print_json(&json::tenant(t))),
                Output::Table => output::print_table(&output::table(
                    &["NAME", "SHARD", "OWNER", "CREATED"],
                    tenants.iter().map(|t| {
                        vec![t.name.clone(), t.shard_group.clone(), t.owner.clone(), output::time(t.created_at_ms)]
                    }),
                )),
            }
        }
    }
    Ok(())
}

pub async fn put(ctx: &Ctx, a: PutArgs) -> anyhow::Result<()> {
    let properties_json = a.props.as_deref().map(input::properties_arg).transpose()?.unwrap_or_default();
    let request = v1::PutEntityRequest {
        request_id: a.request_id,
        urn: a.urn,
        type_name: a.type_name,
        schema_version: a.schema_version,
        properties_json,
        tags: a.tags,
        owner: a.owner,
        status: a.status,
        description: a.description,
        expect_version: a.expect_version,
    };
    let reply = ctx.catalog().await?.put_entity(request).await?.into_inner();
    print_entity(ctx, &reply.entity.unwrap_or_default(), "revision", reply.revision);
    Ok(())
}

pub async fn get(ctx: &Ctx, a: GetArgs) -> anyhow::Result<()> {
    let request = v1::GetEntityRequest {
        urn: a.urn,
        as_of: input::as_of(a.as_of_revision, a.as_of_time),
        read_schema_version: None,
        consistency: ctx.consistency(),
        include_deleted: a.include_deleted,
    };
    let reply = ctx.catalog().await?.get_entity(request).await?.into_inner();
    print_entity(ctx, &reply.entity.unwrap_or_default(), "read_revision", reply.read_revision);
    Ok(())
}

pub async fn versions(ctx: &Ctx, a: VersionsArgs) -> anyhow::Result<()> {
    let mut client = ctx.catalog().await?;
    let mut versions = Vec::new();
    let mut page_token = String::new();
    loop {
        let request =
            v1::ListVersionsRequest { urn: a.urn.clone(), consistency: ctx.consistency(), page_size: 1000, page_token };
        let reply = client.list_versions(request).await?.into_inner();
        versions.extend(reply.versions);
        if reply.next_page_token.is_empty() {
            break;
        }
        page_token = reply.next_page_token;
    }
    match ctx.output {
        Output::Json => versions.iter().for_each(|e| output::print_json(&json::entity(e))),
        Output::Table => output::print_table(&output::table(
            &["VERSION", "REVISION", "UPDATED", "UPDATED_BY", "TYPE", "STATUS", "DELETED"],
            versions.iter().map(|e| {
                vec![
                    e.version.to_string(),
                    e.revision.to_string(),
                    output::time(e.updated_at_ms),
                    e.updated_by.clone(),
                    type_cell(e),
                    e.status.clone(),
                    if e.deleted { "yes".into() } else { String::new() },
                ]
            }),
        )),
    }
    Ok(())
}

pub async fn delete(ctx: &Ctx, a: DeleteArgs) -> anyhow::Result<()> {
    let request = v1::DeleteEntityRequest { request_id: a.request_id, urn: a.urn, expect_version: a.expect_version };
    let reply = ctx.catalog().await?.delete_entity(request).await?.into_inner();
    let e = reply.entity.unwrap_or_default();
    match ctx.output {
        Output::Json => output::print_json(&json!({"entity": json::entity(&e), "revision": reply.revision})),
        Output::Table => println!("deleted {} (tombstone version {}) at revision {}", e.urn, e.version, reply.revision),
    }
    Ok(())
}

pub async fn doc(ctx: &Ctx, cmd: DocCmd) -> anyhow::Result<()> {
    match cmd {
        DocCmd::Put { urn, title, body, expect_version, request_id } => {
            let body_markdown = input::text_arg(&body, "document")?;
            let request = v1::PutDocumentRequest { request_id, entity_urn: urn, title, body_markdown, expect_version };
            let reply = ctx.catalog().await?.put_document(request).await?.into_inner();
            let d = reply.document.unwrap_or_default();
            match ctx.output {
                Output::Json => {
                    output::print_json(&json!({"document": json::document(&d), "revision": reply.revision}))
                }
                Output::Table => println!(
                    "wrote document {:?} version {} of {} at revision {}",
                    d.title, d.version, d.entity_urn, reply.revision
                ),
            }
        }
        DocCmd::List { urn, title, all_versions, include_deleted } => {
            let mut client = ctx.catalog().await?;
            let mut docs = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = v1::ListDocumentsRequest {
                    entity_urn: urn.clone(),
                    title: title.clone(),
                    all_versions,
                    include_deleted,
                    consistency: ctx.consistency(),
                    page_size: 1000,
                    page_token,
                    ..Default::default()
                };
                let reply = client.list_documents(request).await?.into_inner();
                docs.extend(reply.documents);
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            match ctx.output {
                Output::Json => docs.iter().for_each(|d| output::print_json(&json::document(d))),
                Output::Table => output::print_table(&output::table(
                    &["TITLE", "VERSION", "REVISION", "CREATED", "CREATED_BY", "BYTES"],
                    docs.iter().map(|d| {
                        vec![
                            d.title.clone(),
                            if d.deleted { format!("{} (deleted)", d.version) } else { d.version.to_string() },
                            d.revision.to_string(),
                            output::time(d.created_at_ms),
                            d.created_by.clone(),
                            d.body_markdown.len().to_string(),
                        ]
                    }),
                )),
            }
        }
        DocCmd::Rm { urn, title, request_id } => {
            let request = v1::DeleteDocumentRequest { request_id, entity_urn: urn, title, expect_version: None };
            let reply = ctx.catalog().await?.delete_document(request).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json!({"revision": reply.revision})),
                Output::Table => println!("deleted document at revision {}", reply.revision),
            }
        }
    }
    Ok(())
}

/// `type@schema_version`, or empty for the kind's built-in type.
pub fn type_cell(e: &v1::Entity) -> String {
    if e.type_name.is_empty() {
        String::new()
    } else {
        format!("{}@{}", e.type_name, e.schema_version)
    }
}

/// One entity version as a record (table) or `{"entity": …, <label>: revision}` (JSON).
fn print_entity(ctx: &Ctx, e: &v1::Entity, label: &str, revision: u64) {
    match ctx.output {
        Output::Json => output::print_json(&json!({"entity": json::entity(e), label: revision})),
        Output::Table => {
            let properties = serde_json::from_str::<serde_json::Value>(&e.properties_json)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| e.properties_json.clone());
            let (urn, _) = split_version(&e.urn);
            let mut rows = vec![
                ("urn", format!("{urn}@{}", e.version)),
                ("type", type_cell(e)),
                ("status", e.status.clone()),
                ("owner", e.owner.clone()),
                ("tags", output::list(&e.tags)),
                ("description", e.description.clone()),
                ("properties", properties),
                ("created", format!("{} by {}", output::time(e.created_at_ms), e.created_by)),
                ("updated", format!("{} by {}", output::time(e.updated_at_ms), e.updated_by)),
                ("revision", e.revision.to_string()),
                ("deleted", if e.deleted { "yes".into() } else { "no".into() }),
            ];
            // A write commits at the version's own revision; a read's revision is news.
            if revision != e.revision {
                rows.push((label, revision.to_string()));
            }
            output::print_table(&output::record(rows));
        }
    }
}
