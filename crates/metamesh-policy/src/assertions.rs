//! `policy test`: assertion files kept next to the policy, run in CI.
//!
//! A file `tests/<anything>.toml`:
//!
//! ```toml
//! allow = ["alice write mm://fraud/dataset/*", "alice read mm://fraud"]
//! deny = ["bob read mm://fraud/*"]
//! sensitive = ["mm://fraud/dataset/transactions"]
//! not_sensitive = ["mm://fraud/model/*"]
//!
//! [principals]  # short names for the assertions (a table comes after the top-level keys)
//! alice = "spiffe://metamesh.local/client/alice"
//! ```
//!
//! An assertion is `<principal> <action> <resource>`. The principal is a name from
//! `[principals]` or a full principal (one with a `:`), so that a typo is an error rather
//! than a stranger who is denied everything. The resource is `mesh`, `mm://<tenant>`, an
//! entity URN, or a pattern ending in `*`:
//!
//! - `allow` on a pattern holds when the principal may act on *every* resource it covers;
//! - `deny` on a pattern holds when it may act on *none* of them: besides the pattern itself,
//!   every rule of that action which covers part of the pattern yields a witness resource
//!   (inside both), and each witness must be denied;
//! - `sensitive` / `not_sensitive` likewise: every / none of the resources are marked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::action::Action;
use crate::error::{PolicyError, PolicyErrors};
use crate::policy::{PolicySet, Reason};
use crate::resource::{NameSel, Pattern, ANY_DOMAIN, MESH_OBJECT};

/// The outcome of every assertion of every file.
#[derive(Clone, Debug, Default)]
pub struct TestReport {
    pub results: Vec<AssertionResult>,
}

/// One assertion and, if it failed, why.
#[derive(Clone, Debug)]
pub struct AssertionResult {
    pub file: PathBuf,
    pub line: usize,
    /// `allow`, `deny`, `sensitive` or `not_sensitive`.
    pub kind: &'static str,
    /// The assertion as written.
    pub text: String,
    pub failure: Option<String>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_none()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    pub fn failures(&self) -> impl Iterator<Item = &AssertionResult> {
        self.results.iter().filter(|r| r.failure.is_some())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    principals: BTreeMap<String, String>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    sensitive: Vec<Spanned<String>>,
    #[serde(default)]
    not_sensitive: Vec<Spanned<String>>,
}

/// What an assertion names.
enum Target {
    /// One resource: its domain and object.
    One { domain: String, object: String },
    /// Every resource whose object starts with `prefix`, in `domain`.
    Many { domain: String, prefix: String, text: String },
}

impl Target {
    fn domain(&self) -> &str {
        match self {
            Target::One { domain, .. } | Target::Many { domain, .. } => domain,
        }
    }

    /// The object to check: for a pattern, the pattern itself, which only rules covering all
    /// of it match (names never contain a raw `*` in a pattern's sense).
    fn object(&self) -> &str {
        match self {
            Target::One { object, .. } => object,
            Target::Many { text, .. } => text,
        }
    }
}

/// Runs every `*.toml` file of `tests_dir` against `policy`. Unreadable or malformed files
/// are errors (with file and line); failed assertions are in the report.
pub fn run_tests(policy: &PolicySet, tests_dir: &Path) -> Result<TestReport, PolicyErrors> {
    let entries = std::fs::read_dir(tests_dir)
        .map_err(|e| PolicyErrors::one(tests_dir, None, format!("cannot read the assertion directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(PolicyErrors::one(tests_dir, None, "no assertion files (*.toml)"));
    }
    let mut report = TestReport::default();
    let mut errors = Vec::new();
    for path in paths {
        run_file(policy, &path, &mut report, &mut errors);
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(PolicyErrors::new(errors))
    }
}

fn run_file(policy: &PolicySet, path: &Path, report: &mut TestReport, errors: &mut Vec<PolicyError>) {
    let error = |line: Option<usize>, reason: String| PolicyError { file: path.to_owned(), line, reason };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return errors.push(error(None, format!("cannot read: {e}"))),
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: TestFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| line_of(s.start));
            return errors.push(error(line, e.message().trim_end_matches('\n').to_owned()));
        }
    };
    let groups: [(&'static str, &Vec<Spanned<String>>); 4] = [
        ("allow", &file.allow),
        ("deny", &file.deny),
        ("sensitive", &file.sensitive),
        ("not_sensitive", &file.not_sensitive),
    ];
    for (kind, items) in groups {
        for item in items {
            let line = line_of(item.span().start);
            let text = item.get_ref().clone();
            let outcome = match kind {
                "allow" | "deny" => parse_access(&text, &file.principals).map(|(principal, action, target)| {
                    check_access(policy, kind == "allow", &principal, action, &target)
                }),
                _ => parse_target(&text).map(|target| check_sensitive(policy, kind == "sensitive", &target)),
            };
            match outcome {
                Ok(failure) => {
                    report.results.push(AssertionResult { file: path.to_owned(), line, kind, text, failure })
                }
                Err(reason) => errors.push(error(Some(line), format!("{kind} `{text}`: {reason}"))),
            }
        }
    }
}

fn parse_access(text: &str, principals: &BTreeMap<String, String>) -> Result<(String, Action, Target), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [who, action, resource] = words[..] else {
        return Err("expected `<principal> <action> <resource>`".to_owned());
    };
    let principal = match principals.get(who) {
        Some(p) => p.clone(),
        None if who.contains(':') => who.to_owned(),
        None => return Err(format!("`{who}` is not in [principals] (a full principal contains `:`)")),
    };
    let action: Action = action.parse().map_err(|e: crate::action::UnknownAction| e.to_string())?;
    Ok((principal, action, parse_target(resource)?))
}

fn parse_target(text: &str) -> Result<Target, String> {
    if text == MESH_OBJECT {
        return Ok(Target::One { domain: ANY_DOMAIN.to_owned(), object: text.to_owned() });
    }
    let pattern = Pattern::parse(text)?;
    let name_a_tenant = || "name one tenant: `mesh`, `mm://<tenant>`, a URN, or a pattern in one tenant".to_owned();
    match pattern {
        Pattern::Tenant(Some(t)) => Ok(Target::One { domain: t.as_str().to_owned(), object: text.to_owned() }),
        Pattern::Entities { tenant: Some(t), name: NameSel::Exact(_), .. } => {
            Ok(Target::One { domain: t.as_str().to_owned(), object: text.to_owned() })
        }
        Pattern::Entities { tenant: Some(t), .. } => Ok(Target::Many {
            domain: t.as_str().to_owned(),
            prefix: text.trim_end_matches('*').to_owned(),
            text: text.to_owned(),
        }),
        _ => Err(name_a_tenant()),
    }
}

/// `None` when the assertion holds, else why not.
fn check_access(
    policy: &PolicySet,
    expect_allow: bool,
    principal: &str,
    action: Action,
    target: &Target,
) -> Option<String> {
    let domain = target.domain();
    let decision = policy.check_raw(principal, action, domain, target.object());
    if let Reason::EngineError(e) = &decision.reason {
        return Some(format!("policy evaluation failed: {e}"));
    }
    match (expect_allow, target) {
        (true, _) if decision.allowed => None,
        (true, Target::One { object, .. }) => Some(format!("denied: no rule grants `{action}` on `{object}`")),
        (true, Target::Many { text, .. }) => {
            Some(format!("denied: no rule grants `{action}` on every resource of `{text}`"))
        }
        (false, Target::One { object, .. }) if decision.allowed => Some(format!("allowed: `{action}` on `{object}`")),
        (false, Target::One { .. }) => None,
        (false, Target::Many { text, .. }) if decision.allowed => {
            Some(format!("allowed: a rule grants `{action}` on all of `{text}`"))
        }
        (false, Target::Many { prefix, .. }) => {
            let rules = policy.grants(domain).filter(|g| g.act == action).map(|g| g.obj.as_str());
            witnesses(rules, domain, prefix)
                .into_iter()
                .find(|w| policy.check_raw(principal, action, domain, w).allowed)
                .map(|w| format!("allowed: `{action}` on `{w}`"))
        }
    }
}

fn check_sensitive(policy: &PolicySet, expect: bool, target: &Target) -> Option<String> {
    let domain = target.domain();
    let marked = policy.is_sensitive_raw(domain, target.object());
    match (expect, target) {
        (true, _) if marked => None,
        (true, _) => Some(format!("not marked sensitive: `{}`", target.object())),
        (false, _) if marked => Some(format!("marked sensitive: `{}`", target.object())),
        (false, Target::One { .. }) => None,
        (false, Target::Many { prefix, .. }) => witnesses(policy.markers(domain), domain, prefix)
            .into_iter()
            .find(|w| policy.is_sensitive_raw(domain, w))
            .map(|w| format!("marked sensitive: `{w}`")),
    }
}

/// For each rule pattern that covers part, but not all, of the objects starting with
/// `prefix`, one object covered by both. Patterns were validated at load.
fn witnesses<'a>(patterns: impl Iterator<Item = &'a str>, domain: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pat in patterns {
        let pat = match pat.strip_prefix("mm://*") {
            Some(rest) => format!("mm://{domain}{rest}"),
            None => pat.to_owned(),
        };
        match pat.strip_suffix('*') {
            // `*` covers everything: the pattern's own check decided.
            _ if pat == "*" => {}
            Some(p) if p.starts_with(prefix) && p != prefix => {
                out.insert(format!("{p}x"));
            }
            Some(_) => {}
            None if pat.starts_with(prefix) => {
                out.insert(pat);
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witnesses_lie_inside_both_patterns() {
        let rules =
            ["*", "mm://fraud/*", "mm://fraud/dataset/tx*", "mm://fraud/dataset/a", "mm://*/model/*", "mm://fraud"];
        let got = witnesses(rules.into_iter(), "fraud", "mm://fraud/dataset/");
        let want: BTreeSet<String> =
            ["mm://fraud/dataset/txx", "mm://fraud/dataset/a"].into_iter().map(String::from).collect();
        assert_eq!(got, want);
        let got = witnesses(rules.into_iter(), "fraud", "mm://fraud/");
        assert!(got.contains("mm://fraud/model/x"), "{got:?}");
    }
}
