//! Marquez node ids: the strings that name a node of a Marquez lineage graph
//! (`GET /api/v1/lineage?nodeId=dataset:food_delivery:public.orders`). The rule is on [`NodeId`].

use std::fmt;
use std::str::FromStr;

use crate::canonical_uuid;
use crate::event::{DatasetKey, JobKey};

/// A node of a Marquez lineage graph, parsed from its id string
/// (`GET /api/v1/lineage?nodeId=dataset:food_delivery:public.orders`).
///
/// # Marquez's rule
///
/// From `marquez.service.models.NodeId` (Marquez `api/`, the version with column lineage;
/// `NodeId.parts(expectedParts)` and `NodeIdTest`). An id is `<prefix>:<parts>` with prefix
/// `dataset`, `datasetField`, `job` or `run`; the whole id must match `^(prefix):.*$`, so a line
/// break anywhere refuses it. A dataset or job id has 3 parts, a field id 4, a run id 2:
///
/// 1. Split the id at every `:` and `#` (Java's `String.split`, which drops trailing empty
///    pieces). Fewer pieces than expected: refused. Exactly as many: those are the parts.
/// 2. More pieces: the parts are cut at the first `expected - 1` colons that are *not followed
///    by `//` or by a digit* (regex `:(?!//|\d+)`), so `s3://bucket` and `postgres://host:5432`
///    stay whole; the last part is the rest of the id, colons and all.
/// 3. `#` anywhere makes it a versioned id: the last part is `<name>#<uuid>`.
///
/// So `dataset:postgres://host:5432:db.schema.table` is namespace `postgres://host:5432`, name
/// `db.schema.table`; `dataset:bigquery:project.ds.table` is namespace `bigquery`. A namespace
/// with a colon followed by a letter (`a:b`) cannot be told from the name: Marquez cuts at that
/// colon, and so do we; a name part starting with a digit after a colon cannot either
/// (`dataset:ns:1a:b` is namespace `ns:1a`, name `b`, in Marquez and here).
///
/// # Stricter than Marquez
///
/// Where Marquez's split would silently give a part that is not what was written, the id is
/// refused ([`NodeIdError::Ambiguous`]) instead: when step 1 yields the parts but a `#` or a
/// trailing `:` was among the separators (`dataset:ns#x`, `dataset:ns:name:`), and when step 2's
/// first cut is not right after the prefix (`dataset:1ns:a:b`, where Marquez would read
/// namespace `a`). Also refused: empty parts, a run id or version that is not a hyphenated
/// UUID, and text after the version's UUID (Marquez ignores a second `#…`). What is accepted
/// gets the same parts as in Marquez, and [`NodeId`]'s `Display` writes it back as it came
/// (UUIDs in lowercase).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeId {
    /// `dataset:<namespace>:<name>`
    Dataset(DatasetKey),
    /// `job:<namespace>:<name>`
    Job(JobKey),
    /// `run:<uuid>`, the UUID canonical lowercase.
    Run(String),
    /// `datasetField:<namespace>:<name>:<field>` (column lineage).
    DatasetField { dataset: DatasetKey, field: String },
    /// `dataset:<namespace>:<name>#<version uuid>`
    DatasetVersion { dataset: DatasetKey, version: String },
    /// `job:<namespace>:<name>#<version uuid>`
    JobVersion { job: JobKey, version: String },
    /// `datasetField:<namespace>:<name>:<field>#<dataset version uuid>`
    DatasetFieldVersion { dataset: DatasetKey, field: String, version: String },
}

/// Why a string is not a node id we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// Not one of the four prefixes, or a line break (Java's `.` stops at one).
    #[error("node id must start with 'dataset:', 'datasetField:', 'job:' or 'run:' and hold no line break")]
    Prefix,
    /// Fewer `:`/`#`-separated pieces than the kind has parts.
    #[error("a {kind} node id needs {expected} parts separated by ':'")]
    TooFewParts { kind: &'static str, expected: usize },
    /// Marquez's split fails or would give parts other than what was written.
    #[error("a {kind} node id must split into {expected} parts at colons not followed by '//' or a digit")]
    Ambiguous { kind: &'static str, expected: usize },
    /// An empty namespace, name or field.
    #[error("the {part} of a node id must not be empty")]
    Empty { part: &'static str },
    /// A run id or version that is not a hyphenated UUID.
    #[error("the {part} of a node id must be a UUID such as 3f5e83fa-3480-44ff-99c5-ff943904e5e8")]
    Uuid { part: &'static str },
    /// A `#` that is not in the last part (where Marquez fails too).
    #[error("'#' may only introduce the version at the end of a dataset, job or field node id")]
    Version,
}

/// The four kinds of id, by prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Dataset,
    DatasetField,
    Job,
    Run,
}

impl Prefix {
    const ALL: [Prefix; 4] = [Prefix::Dataset, Prefix::DatasetField, Prefix::Job, Prefix::Run];

    fn as_str(self) -> &'static str {
        match self {
            Prefix::Dataset => "dataset",
            Prefix::DatasetField => "datasetField",
            Prefix::Job => "job",
            Prefix::Run => "run",
        }
    }

    /// How many parts Marquez splits this kind of id into, the prefix included.
    fn parts(self) -> usize {
        match self {
            Prefix::Run => 2,
            Prefix::Dataset | Prefix::Job => 3,
            Prefix::DatasetField => 4,
        }
    }
}

impl NodeId {
    /// Parses a Marquez node id (the rule is in the type's documentation).
    pub fn parse(id: &str) -> Result<NodeId, NodeIdError> {
        // Java's `.` in `^(…):.*$` stops at line terminators.
        if id.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            return Err(NodeIdError::Prefix);
        }
        let prefix = Prefix::ALL
            .into_iter()
            .find(|p| id.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with(':')))
            .ok_or(NodeIdError::Prefix)?;
        let (kind, expected) = (prefix.as_str(), prefix.parts());
        let mut parts = marquez_parts(id, kind, expected)?;
        // Parts that, joined again, are not the id (a '#' or trailing ':' was a separator), or a
        // first cut past the prefix: Marquez would read something else than what was written.
        if parts.join(":") != id || parts[0] != kind {
            return Err(NodeIdError::Ambiguous { kind, expected });
        }

        if prefix == Prefix::Run {
            let run_id = canonical_uuid(parts[1]).ok_or(NodeIdError::Uuid { part: "run id" })?;
            return Ok(NodeId::Run(run_id));
        }
        let version = if id.contains('#') {
            let last = parts.last_mut().expect("at least 3 parts");
            let (name, version) = last.split_once('#').ok_or(NodeIdError::Version)?;
            *last = name;
            Some(canonical_uuid(version).ok_or(NodeIdError::Uuid { part: "version" })?)
        } else {
            None
        };
        let part = |i: usize, what: &'static str| -> Result<String, NodeIdError> {
            let text: &str = parts[i];
            if text.is_empty() {
                return Err(NodeIdError::Empty { part: what });
            }
            Ok(text.to_owned())
        };
        let namespace = part(1, "namespace")?;
        let name = part(2, "name")?;
        Ok(match (prefix, version) {
            (Prefix::Dataset, None) => NodeId::Dataset(DatasetKey { namespace, name }),
            (Prefix::Dataset, Some(version)) => {
                NodeId::DatasetVersion { dataset: DatasetKey { namespace, name }, version }
            }
            (Prefix::Job, None) => NodeId::Job(JobKey { namespace, name }),
            (Prefix::Job, Some(version)) => NodeId::JobVersion { job: JobKey { namespace, name }, version },
            (Prefix::DatasetField, version) => {
                let dataset = DatasetKey { namespace, name };
                let field = part(3, "field")?;
                match version {
                    None => NodeId::DatasetField { dataset, field },
                    Some(version) => NodeId::DatasetFieldVersion { dataset, field, version },
                }
            }
            (Prefix::Run, _) => unreachable!("handled above"),
        })
    }

    /// The version UUID of a versioned id.
    pub fn version(&self) -> Option<&str> {
        match self {
            NodeId::DatasetVersion { version, .. }
            | NodeId::JobVersion { version, .. }
            | NodeId::DatasetFieldVersion { version, .. } => Some(version),
            _ => None,
        }
    }

    /// The same node without its version (`dataset:ns:name#v` → `dataset:ns:name`).
    pub fn without_version(&self) -> NodeId {
        match self {
            NodeId::DatasetVersion { dataset, .. } => NodeId::Dataset(dataset.clone()),
            NodeId::JobVersion { job, .. } => NodeId::Job(job.clone()),
            NodeId::DatasetFieldVersion { dataset, field, .. } => {
                NodeId::DatasetField { dataset: dataset.clone(), field: field.clone() }
            }
            other => other.clone(),
        }
    }
}

/// Marquez's `NodeId.parts(expectedParts)`, refusing where Marquez throws.
fn marquez_parts<'a>(id: &'a str, kind: &'static str, expected: usize) -> Result<Vec<&'a str>, NodeIdError> {
    // "dead simple splitting by token": Java's split drops trailing empty pieces.
    let mut pieces: Vec<&str> = id.split([':', '#']).collect();
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    if pieces.len() < expected {
        return Err(NodeIdError::TooFewParts { kind, expected });
    }
    if pieces.len() == expected {
        return Ok(pieces);
    }
    // "try to avoid matching colons in URIs": cut at colons not followed by "//" or a digit.
    let bytes = id.as_bytes();
    let cuts = (0..bytes.len()).filter(|&i| {
        let rest = &bytes[i + 1..];
        bytes[i] == b':' && !rest.starts_with(b"//") && !rest.first().is_some_and(u8::is_ascii_digit)
    });
    let mut parts = Vec::with_capacity(expected);
    let mut start = 0;
    for cut in cuts.take(expected - 1) {
        parts.push(&id[start..cut]);
        start = cut + 1;
    }
    // Too few such colons: Java's `matcher.start()` throws.
    if parts.len() < expected - 1 {
        return Err(NodeIdError::Ambiguous { kind, expected });
    }
    parts.push(&id[start..]);
    Ok(parts)
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Dataset(d) => write!(f, "dataset:{}:{}", d.namespace, d.name),
            NodeId::DatasetVersion { dataset: d, version } => write!(f, "dataset:{}:{}#{version}", d.namespace, d.name),
            NodeId::Job(j) => write!(f, "job:{}:{}", j.namespace, j.name),
            NodeId::JobVersion { job: j, version } => write!(f, "job:{}:{}#{version}", j.namespace, j.name),
            NodeId::Run(id) => write!(f, "run:{id}"),
            NodeId::DatasetField { dataset: d, field } => write!(f, "datasetField:{}:{}:{field}", d.namespace, d.name),
            NodeId::DatasetFieldVersion { dataset: d, field, version } => {
                write!(f, "datasetField:{}:{}:{field}#{version}", d.namespace, d.name)
            }
        }
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(id: &str) -> Result<NodeId, NodeIdError> {
        NodeId::parse(id)
    }
}
