//! Typed lineage edges.
//!
//! Every edge is stored upstream → downstream, in the direction data flows: `dataset -consumed->
//! run -produced-> dataset -trained_on-> model -deployed-> deployment`. The kind says how the two
//! ends are related, and fixes which entity kinds each end may be. Ends are entity versions; a
//! missing version on a local end is resolved to the current version when the edge is written.
//! An end may belong to another tenant (a cross-shard edge).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::entity::{check_len, check_token};
use crate::error::CommandError;
use crate::kind::Kind;
use crate::limits::{MAX_SHORT_BYTES, MAX_TRANSFORMATION_BYTES};
use crate::urn::{EntityUrn, Urn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// artifact → run/job: the run read the artifact.
    Consumed,
    /// run/job → artifact: the run wrote the artifact.
    Produced,
    /// artifact → artifact: the downstream one was derived from the upstream one.
    DerivedFrom,
    /// dataset/feature → model: the model was trained on it.
    TrainedOn,
    /// model → deployment: the deployment serves the model.
    Deployed,
    /// feature → dataset/model: the feature is part of a feature table or a model's inputs.
    FeatureOf,
    /// column → column of artifacts: column-level lineage; both ends name a column.
    Column,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 7] = [
        EdgeKind::Consumed,
        EdgeKind::Produced,
        EdgeKind::DerivedFrom,
        EdgeKind::TrainedOn,
        EdgeKind::Deployed,
        EdgeKind::FeatureOf,
        EdgeKind::Column,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Consumed => "consumed",
            EdgeKind::Produced => "produced",
            EdgeKind::DerivedFrom => "derived_from",
            EdgeKind::TrainedOn => "trained_on",
            EdgeKind::Deployed => "deployed",
            EdgeKind::FeatureOf => "feature_of",
            EdgeKind::Column => "column",
        }
    }

    /// Kinds whose graph must stay a DAG. Run/dataset edges may loop at the entity level (a job
    /// that appends to the table it reads), so they are not checked; versions keep them apart.
    pub fn must_be_acyclic(self) -> bool {
        !matches!(self, EdgeKind::Consumed | EdgeKind::Produced)
    }

    /// Which kinds may stand at each end.
    fn allowed(self) -> (&'static [Kind], &'static [Kind]) {
        use Kind::*;
        const ARTIFACT: &[Kind] = &[Dataset, Feature, Model];
        const ACTOR: &[Kind] = &[Run, Job];
        match self {
            EdgeKind::Consumed => (ARTIFACT, ACTOR),
            EdgeKind::Produced => (ACTOR, ARTIFACT),
            EdgeKind::DerivedFrom | EdgeKind::Column => (ARTIFACT, ARTIFACT),
            EdgeKind::TrainedOn => (&[Dataset, Feature], &[Model]),
            EdgeKind::Deployed => (&[Model], &[Deployment]),
            EdgeKind::FeatureOf => (&[Feature], &[Dataset, Model]),
        }
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EdgeKind {
    type Err = CommandError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EdgeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CommandError::invalid("kind", format!("unknown edge kind `{s}`")))
    }
}

/// An edge as a client asks for it. Identity is (from, to, kind, from_column, to_column).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSpec {
    pub from: Urn,
    pub to: Urn,
    pub kind: EdgeKind,
    #[serde(default)]
    pub from_column: Option<String>,
    #[serde(default)]
    pub to_column: Option<String>,
    /// How the downstream end was computed (e.g. a SQL expression); column edges mostly.
    #[serde(default)]
    pub transformation: Option<String>,
}

impl EdgeSpec {
    pub fn new(from: Urn, kind: EdgeKind, to: Urn) -> EdgeSpec {
        EdgeSpec { from, to, kind, from_column: None, to_column: None, transformation: None }
    }

    pub fn validate(&self) -> Result<(), CommandError> {
        let (from_ok, to_ok) = self.kind.allowed();
        for (end, urn, ok) in [("from", &self.from, from_ok), ("to", &self.to, to_ok)] {
            let found = urn.entity.kind();
            if !ok.contains(&found) {
                let expected = ok.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ");
                return Err(CommandError::EdgeEndpoint { kind: self.kind, end: end.to_owned(), found, expected });
            }
        }
        if self.from.entity == self.to.entity && self.kind.must_be_acyclic() {
            return Err(CommandError::Cycle {
                kind: self.kind,
                path: vec![self.from.entity.to_string(), self.to.entity.to_string()],
            });
        }
        match (self.kind, &self.from_column, &self.to_column) {
            (EdgeKind::Column, Some(a), Some(b)) => {
                check_token("from_column", a, MAX_SHORT_BYTES)?;
                check_token("to_column", b, MAX_SHORT_BYTES)?;
            }
            (EdgeKind::Column, _, _) => {
                return Err(CommandError::invalid("from_column", "column edges name a column at both ends"))
            }
            (_, None, None) => {}
            _ => return Err(CommandError::invalid("from_column", "only column edges name columns")),
        }
        if let Some(t) = &self.transformation {
            check_len("transformation", t.len(), MAX_TRANSFORMATION_BYTES)?;
        }
        Ok(())
    }

    pub fn from_entity(&self) -> &EntityUrn {
        &self.from.entity
    }

    pub fn to_entity(&self) -> &EntityUrn {
        &self.to.entity
    }
}

/// An edge as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: Urn,
    pub to: Urn,
    pub kind: EdgeKind,
    pub from_column: Option<String>,
    pub to_column: Option<String>,
    pub transformation: Option<String>,
    pub revision: u64,
    pub created_at_ms: i64,
    pub created_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Urn {
        s.parse().unwrap()
    }

    #[test]
    fn endpoint_rules() {
        let cases: &[(&str, EdgeKind, &str, Option<&str>)] = &[
            ("mm://t/dataset/a", EdgeKind::Consumed, "mm://t/run/r", None),
            ("mm://t/run/r", EdgeKind::Produced, "mm://t/model/m", None),
            ("mm://t/dataset/a", EdgeKind::TrainedOn, "mm://t/model/m", None),
            ("mm://t/model/m", EdgeKind::Deployed, "mm://t/deployment/d", None),
            ("mm://t/feature/f", EdgeKind::FeatureOf, "mm://t/model/m", None),
            ("mm://t/dataset/a", EdgeKind::DerivedFrom, "mm://u/dataset/b", None),
            ("mm://t/run/r", EdgeKind::Consumed, "mm://t/run/r2", Some("from a run")),
            ("mm://t/dataset/a", EdgeKind::Produced, "mm://t/dataset/b", Some("from a dataset")),
            ("mm://t/model/m", EdgeKind::TrainedOn, "mm://t/model/m2", Some("from a model")),
            ("mm://t/model/m", EdgeKind::Deployed, "mm://t/run/r", Some("to a run")),
            ("mm://t/dataset/a", EdgeKind::DerivedFrom, "mm://t/dataset/a@2", Some("cycle")),
            ("mm://t/experiment/e", EdgeKind::DerivedFrom, "mm://t/dataset/a", Some("experiment")),
        ];
        for (from, kind, to, err) in cases {
            let got = EdgeSpec::new(u(from), *kind, u(to)).validate();
            match err {
                None => assert!(got.is_ok(), "{from} {kind} {to}: {got:?}"),
                Some(frag) => {
                    let msg = got.expect_err(from).to_string();
                    assert!(msg.contains(frag), "{msg}");
                }
            }
        }
    }

    #[test]
    fn column_rules() {
        let mut e = EdgeSpec::new(u("mm://t/dataset/a"), EdgeKind::Column, u("mm://t/dataset/b"));
        assert!(e.validate().is_err());
        e.from_column = Some("x".into());
        e.to_column = Some("y".into());
        assert!(e.validate().is_ok());
        e.kind = EdgeKind::DerivedFrom;
        assert!(e.validate().unwrap_err().to_string().contains("only column edges"));
    }
}
