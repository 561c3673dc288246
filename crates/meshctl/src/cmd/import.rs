//! `import FILE.jsonl`: bulk entity writes as PutEntities batches.
//!
//! - The whole file is parsed before anything is sent, so a bad line 90,000 fails the import
//!   with its line number instead of leaving 89,999 entities written.
//! - Each batch carries a request id derived from the file name, the batch index and a digest
//!   of the batch's lines. Re-running the same import (after a failure half-way, or by mistake)
//!   sends the same ids, and the node answers every batch it already applied from its first
//!   result without writing again: versions stay where they were. The digest makes an *edited*
//!   file write its changed batches instead of being silently answered with old results.
//! - Batches are all-or-nothing on the node; a refused batch stops the import and names the
//!   line of the refused item. Earlier batches stay written (and are skipped by a re-run).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use metamesh_proto::v1;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::conn::Ctx;
use crate::error::{self, usage};
use crate::output::{self, Output};

/// The most a node accepts in one batch (`metamesh_core::limits::MAX_BATCH`).
const MAX_BATCH: usize = metamesh_core::limits::MAX_BATCH;

#[derive(Args)]
pub struct ImportArgs {
    /// JSON lines, one PutEntityRequest-shaped object per line:
    /// `{"urn": …, "type_name"?, "properties"?, "tags"?, "owner"?, "status"?, "description"?}`.
    pub file: PathBuf,
    /// Entities per PutEntities batch (one transaction on the node).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    pub batch: u32,
}

/// One line of an import file: the fields of a PutEntityRequest, with properties as real JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    urn: String,
    #[serde(default)]
    type_name: String,
    #[serde(default)]
    schema_version: Option<u32>,
    /// A JSON object (or a string holding one).
    #[serde(default)]
    properties: Option<Value>,
    /// Properties as JSON text, as on the wire; an alternative to `properties`.
    #[serde(default)]
    properties_json: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expect_version: Option<u64>,
}

impl Line {
    fn into_request(self) -> anyhow::Result<v1::PutEntityRequest> {
        let properties_json = match (self.properties, self.properties_json) {
            (Some(_), Some(_)) => return Err(usage("set properties or properties_json, not both")),
            (Some(Value::String(text)), None) | (None, Some(text)) => text,
            (Some(v @ Value::Object(_)), None) => v.to_string(),
            (Some(_), None) => return Err(usage("properties must be a JSON object")),
            (None, None) => String::new(),
        };
        Ok(v1::PutEntityRequest {
            request_id: String::new(),
            urn: self.urn,
            type_name: self.type_name,
            schema_version: self.schema_version,
            properties_json,
            tags: self.tags,
            owner: self.owner,
            status: self.status,
            description: self.description,
            expect_version: self.expect_version,
        })
    }
}

/// A parsed item and the line it came from.
struct Item {
    line: usize,
    /// The line's text, for the batch digest.
    text: String,
    request: v1::PutEntityRequest,
}

pub async fn run(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let items = parse(&a.file)?;
    if items.is_empty() {
        return Err(usage(format!("{} holds no entities", a.file.display())));
    }
    let file_name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let batches: Vec<&[Item]> = items.chunks(a.batch as usize).collect();
    let bar = progress_bar(items.len() as u64);
    let started = Instant::now();
    let mut client = ctx.catalog().await?;
    let mut revision = 0;
    for (index, batch) in batches.iter().enumerate() {
        let request = v1::PutEntitiesRequest {
            request_id: request_id(&file_name, index, batch),
            entities: batch.iter().map(|i| i.request.clone()).collect(),
        };
        let reply = client.put_entities(request).await.map_err(|status| {
            bar.abandon();
            let at = refused_line(&status, batch).map(|l| format!("; refused item at {}:{l}", a.file.display()));
            let (first, last) = (batch[0].line, batch[batch.len() - 1].line);
            anyhow::Error::new(status).context(format!(
                "batch {} of {} (lines {first}-{last}){}",
                index + 1,
                batches.len(),
                at.unwrap_or_default()
            ))
        })?;
        revision = revision.max(reply.into_inner().revision);
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let rate = items.len() as f64 / seconds.max(1e-9);
    match ctx.output {
        Output::Json => output::print_json(&json!({
            "file": a.file.display().to_string(),
            "entities": items.len(),
            "batches": batches.len(),
            "revision": revision,
            "seconds": seconds,
        })),
        Output::Table => println!(
            "imported {} entities from {} in {} {} up to revision {revision} in {seconds:.2}s ({rate:.0} entities/s)",
            items.len(),
            a.file.display(),
            batches.len(),
            if batches.len() == 1 { "batch" } else { "batches" },
        ),
    }
    Ok(())
}

/// Every item of the file; blank lines and `#` comments are skipped. Fails on the first bad
/// line, naming it.
fn parse(path: &Path) -> anyhow::Result<Vec<Item>> {
    let text = crate::input::read_file(path, "import")?;
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed: anyhow::Result<v1::PutEntityRequest> = serde_json::from_str::<Line>(trimmed)
            .map_err(|e| usage(format!("not an entity: {e}")))
            .and_then(Line::into_request);
        let request = parsed.with_context(|| format!("{}:{line}", path.display()))?;
        items.push(Item { line, text: trimmed.to_owned(), request });
    }
    Ok(items)
}

/// `import:<file name>:<batch index>:<digest of the batch's lines>`, within the node's 256-byte
/// limit on request ids.
fn request_id(file_name: &str, index: usize, batch: &[Item]) -> String {
    let mut hasher = blake3::Hasher::new();
    for item in batch {
        hasher.update(item.text.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize().to_hex();
    // At most 160 bytes of the name, cut on a character boundary.
    let mut end = file_name.len().min(160);
    while !file_name.is_char_boundary(end) {
        end -= 1;
    }
    let name = &file_name[..end];
    format!("import:{name}:{index}:{}", &digest[..16])
}

/// The file line of the item a refusal names (`entities[12].properties` → the 13th item).
fn refused_line(status: &tonic::Status, batch: &[Item]) -> Option<usize> {
    error::details(status).iter().find_map(|d| {
        let rest = d.field.strip_prefix("entities[")?;
        let index: usize = rest[..rest.find(']')?].parse().ok()?;
        batch.get(index).map(|i| i.line)
    })
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (a log file does not want
/// a redraw per batch).
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} entities  {rate}  eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    // indicatif's own {per_sec} prints four decimals; whole entities per second read better.
    .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0} entities/s", state.per_sec());
    });
    bar.set_style(style);
    // Ticks between batches too, so a slow batch does not look like a hang.
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(line: usize, text: &str) -> Item {
        Item { line, text: text.into(), request: Default::default() }
    }

    #[test]
    fn request_ids_are_stable_per_content_and_bounded() {
        let a = [item(1, "{\"urn\":\"a\"}")];
        let b = [item(1, "{\"urn\":\"b\"}")];
        assert_eq!(request_id("f.jsonl", 0, &a), request_id("f.jsonl", 0, &a));
        assert_ne!(request_id("f.jsonl", 0, &a), request_id("f.jsonl", 0, &b));
        assert_ne!(request_id("f.jsonl", 0, &a), request_id("f.jsonl", 1, &a));
        assert!(request_id(&"é".repeat(300), 0, &a).len() <= 256);
    }

    #[test]
    fn lines_accept_properties_as_object_or_text() {
        let l: Line = serde_json::from_str(r#"{"urn":"u","properties":{"rows":1}}"#).unwrap();
        assert_eq!(l.into_request().unwrap().properties_json, r#"{"rows":1}"#);
        let l: Line = serde_json::from_str(r#"{"urn":"u","properties_json":"{}"}"#).unwrap();
        assert_eq!(l.into_request().unwrap().properties_json, "{}");
        let l: Line = serde_json::from_str(r#"{"urn":"u","properties":[1]}"#).unwrap();
        assert!(l.into_request().is_err());
        assert!(serde_json::from_str::<Line>(r#"{"urn":"u","tagz":[]}"#).is_err());
    }

    #[test]
    fn refusals_point_at_their_line() {
        use prost::Message;
        let batch = [item(10, ""), item(12, "")];
        let d = v1::ErrorDetails {
            errors: vec![v1::ErrorDetail {
                code: "invalid_argument".into(),
                field: "entities[1].urn".into(),
                message: String::new(),
            }],
        };
        let status = tonic::Status::with_details(tonic::Code::InvalidArgument, "bad", d.encode_to_vec().into());
        assert_eq!(refused_line(&status, &batch), Some(12));
    }
}
