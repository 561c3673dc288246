//! Entity kinds and registered type names.
//!
//! A *kind* is one of the seven built-in categories every tool understands; it is part of the URN.
//! A *type* is a name registered in a tenant's schema registry, with a base kind and numbered
//! JSON-Schema versions (MLMD artifact, execution and context types map onto types).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The built-in entity kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dataset,
    Feature,
    Model,
    Experiment,
    Run,
    Job,
    Deployment,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Dataset, Kind::Feature, Kind::Model, Kind::Experiment, Kind::Run, Kind::Job, Kind::Deployment];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Feature => "feature",
            Kind::Model => "model",
            Kind::Experiment => "experiment",
            Kind::Run => "run",
            Kind::Job => "job",
            Kind::Deployment => "deployment",
        }
    }

    /// Artifacts are the things that flow through lineage; runs and jobs are what moves them.
    pub fn is_artifact(self) -> bool {
        matches!(self, Kind::Dataset | Kind::Feature | Kind::Model)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown kind name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind `{0}` (expected one of dataset, feature, model, experiment, run, job, deployment)")]
pub struct KindError(pub String);

impl FromStr for Kind {
    type Err = KindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| KindError(s.to_owned()))
    }
}

/// Longest type name accepted.
const MAX_TYPE_NAME: usize = 128;

/// A registered type name: starts with a letter or `_`, then letters, digits, `_ . : -`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TypeName(String);

/// Why a string is not a type name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid type name `{input}`: {reason}")]
pub struct TypeNameError {
    pub input: String,
    pub reason: &'static str,
}

impl TypeName {
    pub fn new(name: &str) -> Result<TypeName, TypeNameError> {
        let err = |reason| TypeNameError { input: name.to_owned(), reason };
        let first = name.chars().next().ok_or_else(|| err("must not be empty"))?;
        if name.len() > MAX_TYPE_NAME {
            return Err(err("longer than 128 bytes"));
        }
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(err("must start with a letter or '_'"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c)) {
            return Err(err("only letters, digits and '_', '.', ':', '-' are allowed"));
        }
        Ok(TypeName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TypeName {
    type Err = TypeNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TypeName::new(s)
    }
}

impl TryFrom<String> for TypeName {
    type Error = TypeNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TypeName::new(&s)
    }
}

impl From<TypeName> for String {
    fn from(t: TypeName) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        }
        assert!("Dataset".parse::<Kind>().is_err());
        assert!("table".parse::<Kind>().is_err());
    }

    #[test]
    fn type_names() {
        let cases: &[(&str, bool)] = &[
            ("Examples", true),
            ("tfx.ExampleStatistics", true),
            ("_private", true),
            ("a:b-c", true),
            ("", false),
            ("1abc", false),
            ("has space", false),
            ("slash/no", false),
        ];
        for (input, ok) in cases {
            assert_eq!(TypeName::new(input).is_ok(), *ok, "{input:?}");
        }
    }
}
