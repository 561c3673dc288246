//! Shapes of reads, shared by the store, the wire layer and the router.

use serde::{Deserialize, Serialize};

use crate::edge::EdgeKind;
use crate::error::CommandError;
use crate::kind::{Kind, TypeName};
use crate::tenant::TenantId;

/// A point in a shard's history. Time is the leader-chosen command time in milliseconds since
/// the Unix epoch; the store maps it to the last revision at or before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    Revision(u64),
    TimeMs(i64),
}

/// Which way to walk lineage. Edges are stored upstream → downstream (data-flow direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

/// A comparison on one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl PropertyOp {
    pub fn sql(self) -> &'static str {
        match self {
            PropertyOp::Eq => "=",
            PropertyOp::Ne => "<>",
            PropertyOp::Lt => "<",
            PropertyOp::Le => "<=",
            PropertyOp::Gt => ">",
            PropertyOp::Ge => ">=",
        }
    }
}

/// `path` is a dotted path into the properties object (`metrics.auc`); each segment is
/// letters, digits, `_` or `-`. Values are JSON scalars (string, number, bool; null only with
/// `eq`/`ne`, meaning absent or null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilter {
    pub path: String,
    pub op: PropertyOp,
    pub value: serde_json::Value,
}

impl PropertyFilter {
    /// Checks the path and value, returning the SQLite JSON path (`$."a"."b"`).
    pub fn json_path(&self) -> Result<String, CommandError> {
        let field = format!("property filter `{}`", self.path);
        if self.path.is_empty() || self.path.len() > 256 {
            return Err(CommandError::invalid(field, "path must be 1 to 256 bytes"));
        }
        let mut out = String::from("$");
        for seg in self.path.split('.') {
            if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(CommandError::invalid(
                    field,
                    "path segments must be letters, digits, '_' or '-' separated by '.'",
                ));
            }
            out.push_str(".\"");
            out.push_str(seg);
            out.push('"');
        }
        match (&self.value, self.op) {
            (serde_json::Value::Array(_) | serde_json::Value::Object(_), _) => {
                Err(CommandError::invalid(field, "value must be a string, number, bool or null"))
            }
            (serde_json::Value::Null, PropertyOp::Eq | PropertyOp::Ne) => Ok(out),
            (serde_json::Value::Null, _) => Err(CommandError::invalid(field, "null only compares with eq or ne")),
            _ => Ok(out),
        }
    }
}

/// Filters for listing entities. Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListFilter {
    pub tenant: Option<TenantId>,
    pub kind: Option<Kind>,
    pub type_name: Option<TypeName>,
    /// Entities carrying all of these tags.
    pub tags: Vec<String>,
    pub owner: Option<String>,
    pub status: Option<String>,
    pub properties: Vec<PropertyFilter>,
    /// Include tombstoned entities (their last version, marked deleted).
    pub include_deleted: bool,
}

/// Edge kinds to follow; empty means all.
pub type EdgeKinds = Vec<EdgeKind>;
