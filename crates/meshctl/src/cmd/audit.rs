//! `meshctl audit`: the node's audit log (AuditService) — list, verify, checkpoint, prove,
//! consistency, export — and `check-proof`, which needs no node.
//!
//! Records print in JSON as `metamesh-audit` serializes them (hashes in hex), the same objects
//! as `export --format jsonl`. `prove` prints the `metamesh_audit::ProofBundle` JSON that
//! `metamesh audit check-proof` and `meshctl audit check-proof` read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use metamesh_proto::{convert, v1};
use serde_json::json;

use crate::conn::Ctx;
use crate::input;
use crate::output::{self, Output};

/// The largest page a node serves.
const MAX_PAGE: u32 = 1000;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// List audit records (oldest first) matching filters; you see the tenants you may audit.
    List(ListArgs),
    /// Have the node recompute its log's hash chain and checkpoint roots; exits 1 if it is
    /// broken. With --shard-key, also check the latest checkpoint's signature here.
    Verify {
        /// First record to check (default 1).
        #[arg(long)]
        from: Option<u64>,
        /// Last record to check (default: the end of the log).
        #[arg(long)]
        to: Option<u64>,
        /// The shard's public key (PEM); repeat for rotated keys.
        #[arg(long = "shard-key", value_name = "PEM")]
        keys: Vec<PathBuf>,
    },
    /// Show the latest signed checkpoint, or the one of --size records.
    Checkpoint {
        #[arg(long)]
        size: Option<u64>,
        /// Check its signature with the shard's public key (PEM); repeat for rotated keys.
        #[arg(long = "shard-key", value_name = "PEM")]
        keys: Vec<PathBuf>,
    },
    /// Print the inclusion proof (JSON) of record SEQ in the latest checkpoint (or --size's),
    /// for `check-proof`.
    Prove {
        seq: u64,
        #[arg(long)]
        size: Option<u64>,
    },
    /// Check a proof printed by `prove`, offline, against the shard's public key.
    CheckProof(CheckProofArgs),
    /// Print the consistency proof that the log of --old records is a prefix of the log of
    /// --new (default: the latest checkpoint), and check it against the two signed checkpoints
    /// of those sizes; exits 1 if it does not verify.
    Consistency {
        /// The older tree size (at least 1).
        #[arg(long, value_name = "N")]
        old: u64,
        /// The newer tree size (default: the latest checkpoint's).
        #[arg(long, value_name = "M")]
        new: Option<u64>,
        /// Check the checkpoints' signatures with the shard's public key (PEM); repeat for
        /// rotated keys.
        #[arg(long = "shard-key", value_name = "PEM")]
        keys: Vec<PathBuf>,
    },
    /// Write matching records to stdout as JSON lines or CSV.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
    },
}

#[derive(clap::Args)]
pub struct CheckProofArgs {
    /// The proof (JSON), `-` for standard input.
    proof: PathBuf,
    /// The shard's public key (PEM); repeat for rotated keys.
    #[arg(long = "shard-key", value_name = "PEM", required = true)]
    keys: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    Allow,
    Deny,
}

#[derive(clap::Args)]
pub struct FilterArgs {
    #[arg(long, default_value = "")]
    principal: String,
    #[arg(long, default_value = "")]
    tenant: String,
    /// A policy action, e.g. write, read, tenant.create, audit.read.
    #[arg(long, default_value = "")]
    action: String,
    /// The resource exactly as recorded (usually a URN).
    #[arg(long, default_value = "")]
    resource: String,
    /// Records at or after this time: RFC 3339 or milliseconds since the epoch.
    #[arg(long, value_parser = input::time_ms)]
    since: Option<i64>,
    /// Records before this time.
    #[arg(long, value_parser = input::time_ms)]
    until: Option<i64>,
    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,
}

impl FilterArgs {
    fn to_wire(&self) -> v1::AuditFilter {
        v1::AuditFilter {
            principal: self.principal.clone(),
            tenant: self.tenant.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            start_time_ms: self.since,
            end_time_ms: self.until,
            decision: match self.decision {
                None => v1::Decision::Unspecified,
                Some(DecisionArg::Allow) => v1::Decision::Allow,
                Some(DecisionArg::Deny) => v1::Decision::Deny,
            } as i32,
            shard: String::new(),
        }
    }
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// At most N records (default 100); with --all, the page size.
    #[arg(long)]
    limit: Option<u32>,
    /// Every matching record, following page tokens.
    #[arg(long)]
    all: bool,
}

pub async fn run(ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::List(a) => list(ctx, a).await,
        AuditCmd::Verify { from, to, keys } => {
            let keys = load_keys(&keys)?;
            let request = v1::VerifyRequest { shard: String::new(), from_seq: from, to_seq: to };
            let v = ctx.audit().await?.verify(request).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json!({
                    "ok": v.ok,
                    "first_bad_seq": v.first_bad_seq,
                    "reason": v.reason,
                    "records_checked": v.records_checked,
                    "checkpoints_checked": v.checkpoints_checked,
                    "shard": v.shard,
                })),
                Output::Table if v.ok => println!(
                    "ok: shard {}: {} records, {} checkpoint roots matched",
                    v.shard, v.records_checked, v.checkpoints_checked
                ),
                Output::Table => println!("BROKEN: shard {}: {}", v.shard, v.reason),
            }
            if !v.ok {
                anyhow::bail!("the audit log of shard {} does not verify: {}", v.shard, v.reason);
            }
            if !keys.is_empty() {
                check_latest_signature(ctx, &keys).await?;
            }
            Ok(())
        }
        AuditCmd::Checkpoint { size, keys } => {
            let keys = load_keys(&keys)?;
            let request = v1::GetCheckpointRequest { shard: String::new(), tree_size: size };
            let wire = ctx.audit().await?.get_checkpoint(request).await?.into_inner();
            let cp = convert::checkpoint("checkpoint", &wire)?;
            if !keys.is_empty() {
                cp.verify_with_any(&keys).map_err(|e| anyhow::anyhow!("the checkpoint's signature: {e}"))?;
            }
            match ctx.output {
                Output::Json => output::print_json(&serde_json::to_value(&cp)?),
                Output::Table => output::print_table(&output::record(vec![
                    ("shard", cp.shard.clone()),
                    ("size", cp.size.to_string()),
                    ("root", hex(&cp.root)),
                    ("time", output::time(cp.at_ms)),
                    ("key_id", cp.key_id.to_string()),
                    ("signature", if keys.is_empty() { "not checked (pass --shard-key)".into() } else { "ok".into() }),
                ])),
            }
            Ok(())
        }
        AuditCmd::Prove { seq, size } => {
            let request = v1::GetInclusionProofRequest { shard: String::new(), seq, tree_size: size.unwrap_or(0) };
            let reply = ctx.audit().await?.get_inclusion_proof(request).await?.into_inner();
            let bundle = convert::proof_bundle(&reply).context("the node's proof is malformed")?;
            println!("{}", serde_json::to_string_pretty(&bundle)?);
            Ok(())
        }
        AuditCmd::CheckProof(a) => check_proof(&a, ctx.output),
        AuditCmd::Consistency { old, new, keys } => consistency(ctx, old, new, &keys).await,
        AuditCmd::Export { filter, format } => {
            let format = match format {
                Format::Jsonl => v1::ExportFormat::Jsonl,
                Format::Csv => v1::ExportFormat::Csv,
            };
            let request = v1::ExportRequest { filter: Some(filter.to_wire()), format: format as i32 };
            let mut stream = ctx.audit().await?.export(request).await?.into_inner();
            let mut stdout = std::io::stdout().lock();
            let mut records = 0;
            while let Some(chunk) = stream.message().await? {
                stdout.write_all(&chunk.data)?;
                records += chunk.records;
            }
            stdout.flush()?;
            eprintln!("exported {records} records");
            Ok(())
        }
    }
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let mut client = ctx.audit().await?;
    let filter = Some(a.filter.to_wire());
    // None = unbounded (--all).
    let mut remaining = if a.all { None } else { Some(a.limit.unwrap_or(100)) };
    let page_size = if a.all { a.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE) } else { MAX_PAGE };
    let mut rows = Vec::new();
    let mut page_token = String::new();
    let more = loop {
        if remaining == Some(0) {
            break !page_token.is_empty();
        }
        let request = v1::ListRecordsRequest {
            filter: filter.clone(),
            page_size: remaining.map_or(page_size, |r| r.min(MAX_PAGE)),
            page_token,
        };
        let reply = client.list_records(request).await?.into_inner();
        if let Some(r) = remaining.as_mut() {
            *r = r.saturating_sub(reply.records.len() as u32);
        }
        for r in reply.records {
            match ctx.output {
                Output::Json => {
                    let record = convert::audit_record("record", &r)?;
                    output::print_json(&serde_json::to_value(&record)?);
                }
                Output::Table => rows.push(vec![
                    r.seq.to_string(),
                    output::time(r.time_ms),
                    r.principal,
                    r.tenant,
                    r.action,
                    r.resource,
                    decision_name(r.decision).to_owned(),
                    r.count.to_string(),
                ]),
            }
        }
        if reply.next_page_token.is_empty() {
            break false;
        }
        page_token = reply.next_page_token;
    };
    if ctx.output == Output::Table {
        output::print_table(&output::table(
            &["SEQ", "TIME", "PRINCIPAL", "TENANT", "ACTION", "RESOURCE", "DECISION", "COUNT"],
            rows,
        ));
    }
    if more {
        eprintln!("stopped at --limit {}: more records may match (pass --all)", a.limit.unwrap_or(100));
    }
    Ok(())
}

/// `consistency`: the proof from the node, checked here against the checkpoints of its two
/// sizes (their roots always; their signatures with --shard-key). A size without a checkpoint
/// leaves the proof unchecked: said on stderr, and an error when --shard-key asks for a check.
async fn consistency(ctx: &Ctx, old: u64, new: Option<u64>, key_paths: &[PathBuf]) -> anyhow::Result<()> {
    let keys = load_keys(key_paths)?;
    let mut client = ctx.audit().await?;
    let request = v1::GetConsistencyProofRequest { shard: String::new(), old_size: old, new_size: new.unwrap_or(0) };
    let reply = client.get_consistency_proof(request).await?.into_inner();
    let proof = metamesh_audit::ConsistencyProof::from_slices(reply.old_size, reply.new_size, &reply.hashes)
        .context("the node's proof is malformed")?;
    let mut checkpoints = Vec::new();
    for size in [proof.old_size, proof.new_size] {
        let request = v1::GetCheckpointRequest { shard: String::new(), tree_size: Some(size) };
        checkpoints.push(match client.get_checkpoint(request).await {
            Ok(reply) => Some(convert::checkpoint("checkpoint", &reply.into_inner())?),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => None,
            Err(s) => return Err(s.into()),
        });
    }
    let (old_cp, new_cp) = (checkpoints[0].take(), checkpoints[1].take());
    // None: not checked (a size without a checkpoint).
    let outcome = match (&old_cp, &new_cp) {
        (Some(o), Some(n)) if keys.is_empty() => Some(proof.verify(&o.root, &n.root)),
        (Some(o), Some(n)) => Some(metamesh_audit::check_consistency(o, n, &proof, &keys)),
        _ => None,
    };
    let missing: Vec<String> = [(&old_cp, proof.old_size), (&new_cp, proof.new_size)]
        .iter()
        .filter(|(cp, _)| cp.is_none())
        .map(|(_, size)| size.to_string())
        .collect();
    let verdict = match &outcome {
        None => format!("not checked: no checkpoint of size {}", missing.join(" or ")),
        Some(Err(e)) => format!("DOES NOT VERIFY: {e}"),
        Some(Ok(())) if keys.is_empty() => "ok (roots; signatures not checked: pass --shard-key)".to_owned(),
        Some(Ok(())) => "ok (roots and signatures)".to_owned(),
    };
    match ctx.output {
        Output::Json => output::print_json(&json!({
            "proof": serde_json::to_value(&proof)?,
            "old_checkpoint": old_cp,
            "new_checkpoint": new_cp,
            "verified": outcome.as_ref().map(|o| o.is_ok()),
            "signatures_checked": outcome.is_some() && !keys.is_empty(),
            "reason": outcome.as_ref().and_then(|o| o.as_ref().err()).map(|e| e.to_string()),
        })),
        Output::Table => {
            let root = |cp: &Option<metamesh_audit::Checkpoint>| {
                cp.as_ref().map_or("(no checkpoint)".into(), |c| hex(&c.root))
            };
            let hashes = if proof.hashes.is_empty() {
                "(none: equal sizes)".to_owned()
            } else {
                proof.hashes.iter().map(|h| hex(h)).collect::<Vec<_>>().join("\n")
            };
            output::print_table(&output::record(vec![
                ("old size", proof.old_size.to_string()),
                ("old root", root(&old_cp)),
                ("new size", proof.new_size.to_string()),
                ("new root", root(&new_cp)),
                ("proof", hashes),
                ("verified", verdict.clone()),
            ]));
        }
    }
    match outcome {
        Some(Err(e)) => {
            anyhow::bail!(
                "the consistency proof from {} to {} records does not verify: {e}",
                proof.old_size,
                proof.new_size
            )
        }
        None if !keys.is_empty() => anyhow::bail!("cannot check the proof with --shard-key: {verdict}"),
        None => {
            eprintln!("{verdict}");
            Ok(())
        }
        Some(Ok(())) => Ok(()),
    }
}

/// Checks the signature of the latest checkpoint (if there is one) with `keys`.
async fn check_latest_signature(ctx: &Ctx, keys: &[metamesh_audit::VerifyingKey]) -> anyhow::Result<()> {
    let request = v1::GetCheckpointRequest::default();
    match ctx.audit().await?.get_checkpoint(request).await {
        Ok(reply) => {
            let cp = convert::checkpoint("checkpoint", &reply.into_inner())?;
            cp.verify_with_any(keys)
                .map_err(|e| anyhow::anyhow!("the checkpoint of size {} is not signed by --shard-key: {e}", cp.size))?;
            if ctx.output == Output::Table {
                println!("ok: the latest checkpoint ({} records) is signed by the given key", cp.size);
            }
            Ok(())
        }
        Err(s) if s.code() == tonic::Code::NotFound => {
            eprintln!("no checkpoint yet: no signature to check");
            Ok(())
        }
        Err(s) => Err(s.into()),
    }
}

/// `check-proof`: offline, like `metamesh audit check-proof`.
pub fn check_proof(a: &CheckProofArgs, out: Output) -> anyhow::Result<()> {
    let text = if a.proof.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        input::read_file(&a.proof, "the proof")?
    };
    let bundle: metamesh_audit::ProofBundle =
        serde_json::from_str(&text).context("the proof is not a metamesh audit proof")?;
    let keys = load_keys(&a.keys)?;
    bundle.check(&keys).map_err(|e| anyhow::anyhow!("the proof does not check: {e}"))?;
    match out {
        Output::Json => {
            output::print_json(&json!({"ok": true, "seq": bundle.record.seq, "size": bundle.checkpoint.size}))
        }
        Output::Table => println!("ok: {}", bundle.describe()),
    }
    Ok(())
}

fn load_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<metamesh_audit::VerifyingKey>> {
    paths
        .iter()
        .map(|k| {
            metamesh_audit::load_public_key(k)
                .map_err(|e| crate::error::usage(format!("cannot use key {} (--shard-key): {e}", k.display())))
        })
        .collect()
}

fn decision_name(d: i32) -> &'static str {
    match v1::Decision::try_from(d) {
        Ok(v1::Decision::Allow) => "allow",
        Ok(v1::Decision::Deny) => "deny",
        _ => "",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
