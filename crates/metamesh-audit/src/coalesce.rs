//! Coalescing repeated denials, so a flood of refused requests cannot fill the log.
//!
//! Records are append-only, so a denial cannot be folded into a record already written. The
//! coalescer therefore sits *before* the log, on the leader, and decides what to propose:
//!
//! - the first denial of a (principal, tenant, action) opens a window of `window_ms` and is
//!   passed through at once: it is recorded with its own resource, request id and digest;
//! - further denials of the same key inside the window are held as one draft: the first of
//!   them (time, resource, request id, request digest) with `count` = how many there were;
//! - when the window closes ([`DenialCoalescer::tick`], or the next denial of that key after
//!   it), the held draft, if any, is released.
//!
//! So a flood writes at most two records per key per window. Allowed events are never held.
//!
//! Trade-offs, deliberately taken:
//! - held counts live in the leader's memory: a crash or leader change loses at most one
//!   window's repeat counts, never the first denial of a burst (call [`DenialCoalescer::flush`]
//!   when stepping down or shutting down);
//! - a coalesced record is appended when its window closes, after records of other events, so
//!   `at_ms` is event time and `seq` is append order: the log is not sorted by `at_ms`;
//! - of the repeats, only the first one's resource and request are kept (the count says how
//!   many others there were);
//! - at most `max_keys` windows are tracked; a new key beyond that releases the oldest window
//!   early (more records, never lost counts).
//!
//! Wall-clock windows are not deterministic, which is why this runs before proposing and never
//! inside the Raft apply.

use std::collections::HashMap;

use crate::record::{Decision, Draft};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    principal: String,
    tenant: Option<String>,
    action: String,
}

#[derive(Debug)]
struct Window {
    opened_ms: i64,
    /// The first repeat, with `count` = repeats so far; `None` until the second denial.
    held: Option<Draft>,
}

/// Decides which denials become records now, later (coalesced), or as part of a count.
#[derive(Debug)]
pub struct DenialCoalescer {
    window_ms: i64,
    max_keys: usize,
    windows: HashMap<Key, Window>,
}

impl DenialCoalescer {
    /// Windows of `window_ms`, at most `max_keys` tracked at once (at least 1).
    pub fn new(window_ms: i64, max_keys: usize) -> DenialCoalescer {
        DenialCoalescer { window_ms: window_ms.max(0), max_keys: max_keys.max(1), windows: HashMap::new() }
    }

    /// Offers one event; returns the drafts to append now, in order.
    pub fn offer(&mut self, draft: Draft) -> Vec<Draft> {
        if draft.decision != Decision::Deny {
            return vec![draft];
        }
        let key =
            Key { principal: draft.principal.clone(), tenant: draft.tenant.clone(), action: draft.action.clone() };
        let window_ms = self.window_ms;
        if let Some(w) = self.windows.get_mut(&key) {
            if draft.at_ms < w.opened_ms.saturating_add(window_ms) {
                return match &mut w.held {
                    None => {
                        w.held = Some(draft);
                        Vec::new()
                    }
                    Some(held) => {
                        held.count = held.count.saturating_add(draft.count);
                        // A count that cannot grow any more is released rather than wrong.
                        if held.count == u32::MAX {
                            w.held.take().into_iter().collect()
                        } else {
                            Vec::new()
                        }
                    }
                };
            }
            // The window has closed: release its count, and this denial opens the next one.
            let mut out: Vec<Draft> = w.held.take().into_iter().collect();
            w.opened_ms = draft.at_ms;
            out.push(draft);
            return out;
        }
        let mut out = Vec::new();
        if self.windows.len() >= self.max_keys {
            out.extend(self.evict_oldest());
        }
        self.windows.insert(key, Window { opened_ms: draft.at_ms, held: None });
        out.push(draft);
        out
    }

    /// Closes the windows that ended by `now_ms`; returns their held drafts, oldest first.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Draft> {
        let window_ms = self.window_ms;
        let mut out = Vec::new();
        self.windows.retain(|_, w| {
            if w.opened_ms.saturating_add(window_ms) > now_ms {
                return true;
            }
            out.extend(w.held.take());
            false
        });
        sort(&mut out);
        out
    }

    /// Releases everything held (on shutdown or when this node stops being leader).
    pub fn flush(&mut self) -> Vec<Draft> {
        let mut out: Vec<Draft> = self.windows.drain().filter_map(|(_, w)| w.held).collect();
        sort(&mut out);
        out
    }

    /// Denials held and not yet released as records.
    pub fn held_denials(&self) -> u64 {
        self.windows.values().filter_map(|w| w.held.as_ref()).map(|d| u64::from(d.count)).sum()
    }

    /// Windows tracked.
    pub fn tracked_keys(&self) -> usize {
        self.windows.len()
    }

    fn evict_oldest(&mut self) -> Option<Draft> {
        let oldest = self
            .windows
            .iter()
            .min_by(|a, b| (a.1.opened_ms, a.0.principal.as_str()).cmp(&(b.1.opened_ms, b.0.principal.as_str())))
            .map(|(k, _)| k.clone())?;
        self.windows.remove(&oldest)?.held
    }
}

/// Release order independent of hash-map order: by time, then by key.
fn sort(drafts: &mut [Draft]) {
    drafts.sort_by(|a, b| {
        (a.at_ms, &a.principal, &a.tenant, &a.action).cmp(&(b.at_ms, &b.principal, &b.tenant, &b.action))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(at_ms: i64, principal: &str, resource: &str) -> Draft {
        Draft::new(at_ms, principal, "entity.put", resource, Decision::Deny).tenant("fraud")
    }

    fn summary(drafts: &[Draft]) -> Vec<(i64, String, String, u32)> {
        drafts.iter().map(|d| (d.at_ms, d.principal.clone(), d.resource.clone(), d.count)).collect()
    }

    #[test]
    fn a_flood_becomes_two_records_per_window() {
        let mut c = DenialCoalescer::new(1_000, 100);
        let mut out = Vec::new();
        for i in 0..500 {
            out.extend(c.offer(deny(i, "mallory", &format!("r{i}"))));
        }
        // Only the first denial went out at once.
        assert_eq!(summary(&out), vec![(0, "mallory".into(), "r0".into(), 1)]);
        assert_eq!(c.held_denials(), 499);
        assert!(c.tick(999).is_empty());
        out.extend(c.tick(1_000));
        assert_eq!(summary(&out[1..]), vec![(1, "mallory".into(), "r1".into(), 499)]);
        assert_eq!(c.tracked_keys(), 0);
        let total: u32 = out.iter().map(|d| d.count).sum();
        assert_eq!(total, 500, "every denial is counted");
    }

    #[test]
    fn allows_and_other_keys_pass_through() {
        let mut c = DenialCoalescer::new(1_000, 100);
        assert_eq!(c.offer(deny(0, "a", "r")).len(), 1);
        let allow = Draft::new(1, "a", "entity.put", "r", Decision::Allow).tenant("fraud");
        assert_eq!(c.offer(allow.clone()), vec![allow]);
        assert_eq!(c.offer(deny(2, "b", "r")).len(), 1, "another principal has its own window");
        let mut other_tenant = deny(3, "a", "r");
        other_tenant.tenant = Some("risk".into());
        assert_eq!(c.offer(other_tenant).len(), 1, "another tenant has its own window");
        assert!(c.offer(deny(4, "a", "r")).is_empty());
    }

    #[test]
    fn a_denial_after_the_window_releases_the_count_and_opens_a_new_one() {
        let mut c = DenialCoalescer::new(100, 100);
        c.offer(deny(0, "a", "r0"));
        c.offer(deny(10, "a", "r1"));
        c.offer(deny(20, "a", "r2"));
        let out = c.offer(deny(150, "a", "r3"));
        assert_eq!(summary(&out), vec![(10, "a".into(), "r1".into(), 2), (150, "a".into(), "r3".into(), 1)]);
        assert!(c.offer(deny(160, "a", "r4")).is_empty());
        assert_eq!(summary(&c.flush()), vec![(160, "a".into(), "r4".into(), 1)]);
        assert_eq!(c.held_denials(), 0);
    }

    #[test]
    fn too_many_keys_release_the_oldest_window_early() {
        let mut c = DenialCoalescer::new(1_000, 2);
        c.offer(deny(0, "a", "r"));
        c.offer(deny(1, "a", "r"));
        c.offer(deny(2, "b", "r"));
        let out = c.offer(deny(3, "c", "r"));
        assert_eq!(summary(&out), vec![(1, "a".into(), "r".into(), 1), (3, "c".into(), "r".into(), 1)]);
        assert_eq!(c.tracked_keys(), 2);
    }

    #[test]
    fn release_order_does_not_depend_on_hashing() {
        let mut c = DenialCoalescer::new(1_000, 100);
        for p in ["d", "b", "a", "c"] {
            c.offer(deny(0, p, "r"));
            c.offer(deny(5, p, "r"));
        }
        let names: Vec<_> = c.tick(2_000).into_iter().map(|d| d.principal).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
