//! Sensitivity markers of one partition, indexed: a check asks on every request, and a tenant
//! may mark hundreds of prefixes.

use std::collections::HashSet;

use crate::resource::urn_match;

/// The markers that apply in one domain, with `mm://*` resolved to that domain.
#[derive(Debug, Default)]
pub(crate) struct MarkerIndex {
    exact: HashSet<String>,
    /// Prefixes (a marker's text before its final `*`), sorted, and prefix-free: no element
    /// is a prefix of another. Then the only element that can be a prefix of an object is the
    /// greatest one not above it: every string between a prefix P of X and X itself starts
    /// with P, so a larger candidate would have P as its prefix.
    prefixes: Vec<String>,
}

impl MarkerIndex {
    /// Indexes `patterns` (validated) for objects of `domain`.
    pub(crate) fn new<'a>(domain: &str, patterns: impl Iterator<Item = &'a str>) -> MarkerIndex {
        let mut exact = HashSet::new();
        let mut prefixes = Vec::new();
        for pat in patterns {
            let pat = match pat.strip_prefix("mm://*") {
                Some(rest) => format!("mm://{domain}{rest}"),
                None => pat.to_owned(),
            };
            match pat.strip_suffix('*') {
                Some(prefix) => prefixes.push(prefix.to_owned()),
                None => {
                    exact.insert(pat);
                }
            }
        }
        prefixes.sort();
        prefixes.dedup();
        // Sorted, a prefix comes right before the strings it covers: keep the first of each run.
        let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            if !kept.last().is_some_and(|k| p.starts_with(k.as_str())) {
                kept.push(p);
            }
        }
        MarkerIndex { exact, prefixes: kept }
    }

    pub(crate) fn matches(&self, object: &str) -> bool {
        if self.exact.contains(object) {
            return true;
        }
        let at = self.prefixes.partition_point(|p| p.as_str() <= object);
        at > 0 && object.starts_with(self.prefixes[at - 1].as_str())
    }
}

/// The same answer by a scan, for domains without a tenant file (global markers only).
pub(crate) fn scan<'a>(mut patterns: impl Iterator<Item = &'a str>, object: &str) -> bool {
    patterns.any(|p| urn_match(object, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_agrees_with_the_scan() {
        let patterns = [
            "mm://*/deployment/*",
            "mm://fraud/dataset/a",
            "mm://fraud/dataset/pii%2F*",
            "mm://fraud/dataset/pii%2Fraw%2F*",
            "mm://fraud/model/m*",
            "mm://fraud/model/*",
            "mm://*",
            "mm://fraud/run/r1*",
            "mm://fraud/run/r10*",
        ];
        let index = MarkerIndex::new("fraud", patterns.into_iter());
        for object in [
            "mm://fraud",
            "mm://fraud/deployment/eu",
            "mm://fraud/dataset/a",
            "mm://fraud/dataset/ab",
            "mm://fraud/dataset/pii%2Fx",
            "mm://fraud/dataset/pii%2Fraw%2Fy",
            "mm://fraud/dataset/pii",
            "mm://fraud/model/x",
            "mm://fraud/run/r1",
            "mm://fraud/run/r100",
            "mm://fraud/run/r2",
            "mm://fraud/job/j",
            "mesh",
        ] {
            assert_eq!(index.matches(object), scan(patterns.into_iter(), object), "{object}");
        }
        let everything = MarkerIndex::new("fraud", ["*"].into_iter());
        assert!(everything.matches("mm://fraud/job/j") && everything.matches("mm://fraud"));
    }
}
