//! The schema registry (SchemaService): register, read and dry-run check JSON Schemas, and list
//! a tenant's types.

use clap::{Args, Subcommand, ValueEnum};
use metamesh_proto::v1;
use serde_json::json;

use crate::conn::Ctx;
use crate::input;
use crate::json;
use crate::output::{self, Output};

#[derive(Clone, Copy, ValueEnum)]
pub enum Compat {
    Backward,
    Forward,
    Full,
    None,
}

impl Compat {
    fn to_wire(c: Option<Compat>) -> i32 {
        (match c {
            None => v1::Compatibility::Unspecified,
            Some(Compat::Backward) => v1::Compatibility::Backward,
            Some(Compat::Forward) => v1::Compatibility::Forward,
            Some(Compat::Full) => v1::Compatibility::Full,
            Some(Compat::None) => v1::Compatibility::None,
        }) as i32
    }
}

/// A candidate schema version, as `register` and `check` take it.
#[derive(Args)]
pub struct Candidate {
    pub tenant: String,
    /// Type name: a letter or `_`, then letters, digits, `_ . : -`.
    pub type_name: String,
    /// Built-in kind of entities of this type.
    pub base_kind: String,
    /// The JSON Schema: `@schema.json`, `-` (stdin) or the JSON itself.
    pub schema: String,
    /// Compatibility mode; default: the type's current mode (backward for a new type).
    #[arg(long, value_enum)]
    pub compatibility: Option<Compat>,
    /// Migration from the previous version: `@migration.json` or JSON,
    /// `{"steps":[{"op":"rename","from":"a","to":"b"}]}`.
    #[arg(long)]
    pub migration: Option<String>,
}

impl Candidate {
    /// The schema text (checked to be JSON) and the wire migration.
    fn read(&self) -> anyhow::Result<(String, Option<v1::Migration>)> {
        let schema = input::json_arg(&self.schema, "schema")?;
        let migration = self.migration.as_deref().map(input::migration_arg).transpose()?;
        Ok((schema.to_string(), migration))
    }
}

#[derive(Subcommand)]
pub enum SchemaCmd {
    /// Register a new schema version of a type (version 1 creates the type).
    Register {
        #[command(flatten)]
        candidate: Candidate,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Show a schema version (the latest unless --version).
    Get {
        tenant: String,
        type_name: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Dry run of register: says whether the schema would be accepted and why not; exits 1 when
    /// it would not.
    Check {
        #[command(flatten)]
        candidate: Candidate,
    },
    /// List the types of a tenant with their latest version.
    Types {
        tenant: String,
        /// Only types of this base kind (dataset, model, …).
        #[arg(long)]
        kind: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: SchemaCmd) -> anyhow::Result<()> {
    match cmd {
        SchemaCmd::Register { candidate, request_id } => {
            let (schema_json, migration) = candidate.read()?;
            let request = v1::RegisterSchemaRequest {
                request_id,
                tenant: candidate.tenant,
                type_name: candidate.type_name,
                base_kind: candidate.base_kind,
                schema_json,
                compatibility: Compat::to_wire(candidate.compatibility),
                migration,
            };
            let s = ctx.schema().await?.register_schema(request).await?.into_inner();
            print_schema(ctx, &s);
        }
        SchemaCmd::Get { tenant, type_name, version } => {
            let request = v1::GetSchemaRequest { tenant, type_name, version, consistency: ctx.consistency() };
            let s = ctx.schema().await?.get_schema(request).await?.into_inner();
            print_schema(ctx, &s);
        }
        SchemaCmd::Check { candidate } => {
            let (schema_json, migration) = candidate.read()?;
            let request = v1::CheckCompatibilityRequest {
                tenant: candidate.tenant,
                type_name: candidate.type_name,
                base_kind: candidate.base_kind,
                schema_json,
                compatibility: Compat::to_wire(candidate.compatibility),
                migration,
            };
            let r = ctx.schema().await?.check_compatibility(request).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json!({
                    "compatible": r.compatible,
                    "compatibility": json::compatibility_name(r.compatibility),
                    "against_version": r.against_version,
                    "problems": json::error_details(&r.problems),
                })),
                Output::Table => {
                    let against = r.against_version.map_or("a new type".to_owned(), |v| format!("version {v}"));
                    let verdict = if r.compatible { "compatible" } else { "incompatible" };
                    println!("{verdict} with {against} ({})", json::compatibility_name(r.compatibility));
                    for p in &r.problems {
                        println!("  {} (field `{}`): {}", p.code, p.field, p.message);
                    }
                }
            }
            if !r.compatible {
                anyhow::bail!("the schema would be refused");
            }
        }
        SchemaCmd::Types { tenant, kind } => {
            let mut client = ctx.schema().await?;
            let mut types = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = v1::ListTypesRequest {
                    tenant: tenant.clone(),
                    base_kind: kind.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                };
                let reply = client.list_types(request).await?.into_inner();
                types.extend(reply.types);
                if reply.next_page_token.is_empty() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            match ctx.output {
                Output::Json => types.iter().for_each(|s| output::print_json(&json::schema_version(s))),
                Output::Table => output::print_table(&output::table(
                    &["TYPE", "BASE_KIND", "VERSION", "COMPATIBILITY", "REVISION", "CREATED", "CREATED_BY"],
                    types.iter().map(|s| {
                        vec![
                            s.type_name.clone(),
                            s.base_kind.clone(),
                            s.version.to_string(),
                            json::compatibility_name(s.compatibility),
                            s.revision.to_string(),
                            output::time(s.created_at_ms),
                            s.created_by.clone(),
                        ]
                    }),
                )),
            }
        }
    }
    Ok(())
}

fn print_schema(ctx: &Ctx, s: &v1::SchemaVersion) {
    match ctx.output {
        Output::Json => output::print_json(&json::schema_version(s)),
        Output::Table => {
            let pretty = |text: &str| {
                serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| text.to_owned())
            };
            let migration = json::migration(s.migration.as_ref());
            let has_steps = migration["steps"].as_array().is_some_and(|s| !s.is_empty());
            output::print_table(&output::record(vec![
                ("type", format!("{}/{}", s.tenant, s.type_name)),
                ("version", s.version.to_string()),
                ("base_kind", s.base_kind.clone()),
                ("compatibility", json::compatibility_name(s.compatibility)),
                ("migration", if has_steps { migration.to_string() } else { String::new() }),
                ("created", format!("{} by {}", output::time(s.created_at_ms), s.created_by)),
                ("revision", s.revision.to_string()),
                ("schema", pretty(&s.schema_json)),
            ]));
        }
    }
}
