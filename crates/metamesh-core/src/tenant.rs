//! Tenant names.
//!
//! A tenant (also called a domain) owns its metadata on exactly one shard group. Its name is a
//! lowercase DNS label so that it can appear in host names, URNs and file names unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Maximum length of a DNS label.
const MAX_LEN: usize = 63;

/// A validated tenant name: `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why a string is not a tenant name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant `{input}`: {reason}")]
pub struct TenantError {
    pub input: String,
    pub reason: &'static str,
}

impl TenantId {
    pub fn new(name: &str) -> Result<TenantId, TenantError> {
        let err = |reason| TenantError { input: name.to_owned(), reason };
        if name.is_empty() {
            return Err(err("must not be empty"));
        }
        if name.len() > MAX_LEN {
            return Err(err("longer than 63 characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(err("only lowercase letters, digits and '-' are allowed"));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(err("must not start or end with '-'"));
        }
        Ok(TenantId(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantId {
    type Err = TenantError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::new(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TenantId::new(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        let cases: &[(&str, bool)] = &[
            ("fraud", true),
            ("a", true),
            ("team-42", true),
            ("0risk", true),
            ("", false),
            ("Fraud", false),
            ("-fraud", false),
            ("fraud-", false),
            ("fr_aud", false),
            ("fr.aud", false),
            ("ü", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ];
        for (input, ok) in cases {
            assert_eq!(TenantId::new(input).is_ok(), *ok, "{input:?}");
        }
    }
}
