//! What is wrong with a policy directory, pointing at the file and line to fix.

use std::fmt;
use std::path::PathBuf;

/// One problem in one file, at one line when there is one. Also used for warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The file as the caller named the directory (`policies/tenants/fraud.csv`).
    pub file: PathBuf,
    /// 1-based line, when the problem is on one line.
    pub line: Option<usize>,
    /// Lowercase, without trailing punctuation.
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy directory (at least one). The loader reports all of them at
/// once, so that an author fixes a file in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyErrors(Vec<PolicyError>);

impl PolicyErrors {
    /// Panics on an empty list: a `PolicyErrors` always holds at least one error.
    pub(crate) fn new(errors: Vec<PolicyError>) -> PolicyErrors {
        assert!(!errors.is_empty(), "PolicyErrors needs at least one error");
        PolicyErrors(errors)
    }

    pub(crate) fn one(file: impl Into<PathBuf>, line: Option<usize>, reason: impl Into<String>) -> PolicyErrors {
        PolicyErrors(vec![PolicyError { file: file.into(), line, reason: reason.into() }])
    }

    pub fn first(&self) -> &PolicyError {
        &self.0[0]
    }

    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0[0])?;
        if self.0.len() > 1 {
            write!(f, " (and {} more)", self.0.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
