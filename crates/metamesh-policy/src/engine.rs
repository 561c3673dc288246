//! casbin behind a four-string interface. The only module that names casbin.
//!
//! One engine evaluates the rules of one *partition*: the global rules alone (for the mesh and
//! for tenants without a file), or the global rules plus one tenant's. A tenant file can only
//! grant in its own domain, so a request in domain `fraud` can only ever be allowed by global
//! rules or by `tenants/fraud.csv`; partitioning drops the other tenants' rules from the scan
//! casbin makes on every cache miss without changing any decision.
//!
//! Decisions are cached by *object class*, not by object: with the shipped matcher, a request's
//! object enters the decision only through `urnMatch(r.obj, p.obj)`, so two objects matched by
//! the same set of the partition's patterns get the same decision for the same subject, domain
//! and action. A tenant's hundreds of thousands of entities then fall into a handful of classes
//! (usually one: "the tenant's patterns"), and a lineage answer that names thousands of
//! entities is decided from a warm cache instead of a casbin evaluation for each (casbin's own
//! cache is keyed by the object, and misses on every new entity). A model whose matcher uses
//! `r.obj` in any other way is decided by casbin's cache alone.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::pin;
use std::sync::RwLock;
use std::task::{Context, Poll, Waker};

use casbin::function_map::OperatorFunction;
use casbin::rhai::{Dynamic, ImmutableString};
use casbin::{
    Adapter, CachedApi, CachedEnforcer, CoreApi, DefaultCache, DefaultModel, EnforceArgs, Enforcer, MemoryAdapter,
};

use crate::load::{Assignment, Grant};
use crate::resource::urn_match;

/// An enforcer over one partition's rules.
pub(crate) struct Engine {
    inner: Inner,
    /// Keys of the decision cache. casbin's own key is an unkeyed SipHash of the request, and
    /// a caller who picks entity names could search for a name whose key collides with a
    /// cached allow; a per-engine random key makes collisions unpredictable.
    keys: RandomState,
    /// The partition's object patterns and the decisions cached by class; `None` when the
    /// matcher does not allow it (see the module) or the cache is off.
    classes: Option<Classes>,
}

/// The object patterns of a partition's rules, each with a number, and the decisions made so
/// far by (subject, domain, action, the numbers of the patterns an object matches).
struct Classes {
    /// Matches every object (`*`).
    everything: Option<u32>,
    /// Patterns matched against the whole object.
    plain: Patterns,
    /// `mm://*…` patterns (any tenant), by the text after `mm://*`, matched against the part
    /// of a URN after its tenant.
    any_tenant: Patterns,
    /// Decisions by the keyed hash of their request; each bucket holds the requests in full,
    /// so that a hash collision can never answer for another request.
    decisions: RwLock<HashMap<u64, Vec<Decided>>>,
    capacity: usize,
}

/// Patterns without `*` (matched whole) and ending in `*` (by the text before it), each with
/// its number.
#[derive(Default)]
struct Patterns {
    exact: HashMap<String, u32>,
    prefixes: HashMap<String, u32>,
    /// The lengths the prefixes have, ascending.
    prefix_lens: Vec<usize>,
}

impl Patterns {
    fn insert(&mut self, pat: &str, i: u32) {
        match pat.strip_suffix('*') {
            Some(prefix) => {
                self.prefixes.insert(prefix.to_owned(), i);
                if let Err(at) = self.prefix_lens.binary_search(&prefix.len()) {
                    self.prefix_lens.insert(at, prefix.len());
                }
            }
            None => {
                self.exact.insert(pat.to_owned(), i);
            }
        }
    }

    /// Adds the numbers of the patterns `s` matches to `out`.
    fn matched(&self, s: &str, out: &mut Vec<u32>) {
        out.extend(self.exact.get(s));
        for &n in self.prefix_lens.iter().take_while(|&&n| n <= s.len()) {
            out.extend(s.get(..n).and_then(|p| self.prefixes.get(p)));
        }
    }
}

struct Decided {
    sub: Box<str>,
    dom: Box<str>,
    act: Box<str>,
    class: Box<[u32]>,
    allowed: bool,
}

impl Classes {
    fn new(patterns: &[&str], capacity: usize) -> Classes {
        let mut c = Classes {
            everything: None,
            plain: Patterns::default(),
            any_tenant: Patterns::default(),
            decisions: RwLock::new(HashMap::new()),
            capacity,
        };
        for (i, pat) in patterns.iter().enumerate() {
            let i = i as u32;
            // Same decomposition as `urn_match`.
            if *pat == "*" {
                c.everything = Some(i);
            } else if let Some(rest) = pat.strip_prefix("mm://*") {
                c.any_tenant.insert(rest, i);
            } else {
                c.plain.insert(pat, i);
            }
        }
        c
    }

    /// The numbers of the patterns `obj` matches, sorted: `urn_match(obj, p)` for each `p`.
    fn class(&self, obj: &str) -> Vec<u32> {
        let mut out: Vec<u32> = self.everything.into_iter().collect();
        self.plain.matched(obj, &mut out);
        if let Some(rest) = obj.strip_prefix(crate::resource::SCHEME) {
            self.any_tenant.matched(&rest[rest.find('/').unwrap_or(rest.len())..], &mut out);
        }
        out.sort_unstable();
        out
    }
}

enum Inner {
    Cached(CachedEnforcer),
    /// Without a cache: for the benchmark's comparison.
    Plain(Enforcer),
}

/// casbin's request: the four values and the cache key computed from them.
struct Request<'a> {
    values: [&'a str; 4],
    key: u64,
}

impl EnforceArgs for Request<'_> {
    fn try_into_vec(self) -> casbin::Result<Vec<Dynamic>> {
        Ok(self.values.iter().map(|v| Dynamic::from(ImmutableString::from(*v))).collect())
    }

    fn cache_key(&self) -> u64 {
        self.key
    }
}

/// `urnMatch(r.obj, p.obj)` in the model.
fn urn_match_fn(obj: Dynamic, pat: Dynamic) -> Dynamic {
    match (obj.into_immutable_string(), pat.into_immutable_string()) {
        (Ok(obj), Ok(pat)) => urn_match(&obj, &pat).into(),
        _ => false.into(),
    }
}

impl Engine {
    /// Builds an enforcer over the given rules. `cache_capacity` 0 builds one without a cache.
    pub(crate) fn build(
        model: &str,
        grants: &[&Grant],
        assignments: &[&Assignment],
        cache_capacity: usize,
    ) -> Result<Engine, String> {
        let p: Vec<Vec<String>> = grants
            .iter()
            .map(|g| vec![g.sub.clone(), g.dom.clone(), g.obj.clone(), g.act.as_str().to_owned()])
            .collect();
        let g: Vec<Vec<String>> =
            assignments.iter().map(|a| vec![a.member.clone(), a.role.clone(), a.dom.clone()]).collect();
        let inner = block_on(async {
            let model = DefaultModel::from_str(model).await?;
            let mut adapter = MemoryAdapter::default();
            adapter.add_policies("p", "p", p).await?;
            adapter.add_policies("g", "g", g).await?;
            casbin::Result::Ok(if cache_capacity > 0 {
                let mut e = CachedEnforcer::new(model, adapter).await?;
                e.add_function("urnMatch", OperatorFunction::Arg2(urn_match_fn));
                e.set_cache(Box::new(DefaultCache::new(cache_capacity)));
                Inner::Cached(e)
            } else {
                let mut e = Enforcer::new(model, adapter).await?;
                e.add_function("urnMatch", OperatorFunction::Arg2(urn_match_fn));
                Inner::Plain(e)
            })
        })
        .ok_or_else(|| "the casbin enforcer did not build synchronously".to_owned())?
        .map_err(|e| format!("casbin: {e}"))?;
        let classes = (cache_capacity > 0 && object_only_in_urn_match(model)).then(|| {
            let mut patterns: Vec<&str> = grants.iter().map(|g| g.obj.as_str()).collect();
            patterns.sort_unstable();
            patterns.dedup();
            Classes::new(&patterns, cache_capacity)
        });
        let engine = Engine { inner, keys: RandomState::new(), classes };
        // A matcher that calls an unknown function or compares the wrong types fails only when
        // evaluated: evaluate one request now, so that such a model is refused at load.
        engine.enforce("", "*", "mesh", "read").map_err(|e| format!("the matcher cannot be evaluated: {e}"))?;
        Ok(engine)
    }

    /// Whether the rules allow `sub` to `act` on `obj` in domain `dom`.
    pub(crate) fn enforce(&self, sub: &str, dom: &str, obj: &str, act: &str) -> Result<bool, String> {
        let Some(classes) = &self.classes else { return self.enforce_casbin(sub, dom, obj, act) };
        let class = classes.class(obj);
        let key = self.keys.hash_one((sub, dom, act, &class));
        let same = |d: &Decided| *d.sub == *sub && *d.dom == *dom && *d.act == *act && *d.class == *class;
        if let Some(bucket) = classes.decisions.read().expect("decisions poisoned").get(&key) {
            if let Some(d) = bucket.iter().find(|d| same(d)) {
                return Ok(d.allowed);
            }
        }
        let allowed = self.enforce_casbin(sub, dom, obj, act)?;
        let mut decisions = classes.decisions.write().expect("decisions poisoned");
        if decisions.len() >= classes.capacity {
            decisions.clear();
        }
        let bucket = decisions.entry(key).or_default();
        if !bucket.iter().any(same) {
            bucket.push(Decided { sub: sub.into(), dom: dom.into(), act: act.into(), class: class.into(), allowed });
        }
        Ok(allowed)
    }

    /// casbin's decision (through its own cache, keyed by the whole request).
    fn enforce_casbin(&self, sub: &str, dom: &str, obj: &str, act: &str) -> Result<bool, String> {
        let values = [sub, dom, obj, act];
        let request = Request { values, key: self.keys.hash_one(values) };
        let result = match &self.inner {
            Inner::Cached(e) => e.enforce(request),
            Inner::Plain(e) => e.enforce(request),
        };
        result.map_err(|e| e.to_string())
    }
}

/// Whether the model's matchers use the request's object only as `urnMatch(r.obj, p.obj)`
/// (whitespace aside, comments ignored): then a decision depends on the object only through
/// the set of patterns it matches.
fn object_only_in_urn_match(model: &str) -> bool {
    let text: String = model
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    text.matches("r.obj").count() == text.matches("urnMatch(r.obj,p.obj)").count()
}

/// Runs a future that never waits to completion on this thread.
///
/// casbin's constructors are `async` because adapters may read files or databases; ours hands
/// over rules already in memory, so nothing in them waits. Polling here keeps policy loading
/// a plain function, callable from a CLI, a test or a blocking task, with or without a runtime.
/// `None` if the future did wait (it would be a casbin change to look at).
fn block_on<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;

    const MODEL: &str = include_str!("../../../policies/model.conf");

    fn grant(sub: &str, dom: &str, obj: &str, act: Action) -> Grant {
        Grant { sub: sub.into(), dom: dom.into(), obj: obj.into(), act }
    }

    fn assign(member: &str, role: &str, dom: &str) -> Assignment {
        Assignment { member: member.into(), role: role.into(), dom: dom.into() }
    }

    fn engine(model: &str, capacity: usize) -> Engine {
        let grants = [
            grant("role:reader", "fraud", "mm://fraud/*", Action::Read),
            grant("role:reader", "fraud", "mm://fraud/dataset/pii%2F*", Action::Discover),
            grant("role:pii", "fraud", "mm://fraud/dataset/pii%2F*", Action::Read),
            grant("role:modeler", "*", "mm://*/model/*", Action::Read),
            grant("role:modeler", "*", "mm://*/model/m1", Action::Write),
            grant("role:one", "growth", "mm://growth/dataset/a", Action::Read),
            grant("role:one", "growth", "mm://growth", Action::Read),
            grant("role:admin", "*", "*", Action::Read),
        ];
        let assignments = [
            assign("alice", "role:reader", "fraud"),
            assign("bob", "role:modeler", "*"),
            assign("carol", "role:one", "growth"),
            assign("carol", "role:pii", "fraud"),
            assign("root", "role:admin", "*"),
        ];
        Engine::build(model, &grants.iter().collect::<Vec<_>>(), &assignments.iter().collect::<Vec<_>>(), capacity)
            .unwrap()
    }

    const OBJECTS: [&str; 14] = [
        "mm://fraud",
        "mm://fraud/dataset/a",
        "mm://fraud/dataset/b",
        "mm://fraud/dataset/pii%2Fcards",
        "mm://fraud/dataset/pii",
        "mm://fraud/model/m1",
        "mm://fraud/model/m2",
        "mm://growth",
        "mm://growth/dataset/a",
        "mm://growth/dataset/ab",
        "mm://growth/model/m1",
        "mm://growth/model",
        "mesh",
        "",
    ];

    /// Every request decided by class gets casbin's own answer, cold and warm.
    #[test]
    fn class_decisions_are_casbins() {
        let (classes, plain) = (engine(MODEL, 1_000), engine(MODEL, 0));
        assert!(classes.classes.is_some(), "the shipped matcher allows deciding by class");
        let mut allowed = 0;
        for _ in 0..2 {
            for sub in ["alice", "bob", "carol", "root", "nobody"] {
                for dom in ["fraud", "growth", "*", "mesh"] {
                    for obj in OBJECTS {
                        for act in [Action::Read, Action::Discover, Action::Write] {
                            let want = plain.enforce(sub, dom, obj, act.as_str()).unwrap();
                            let got = classes.enforce(sub, dom, obj, act.as_str()).unwrap();
                            assert_eq!(got, want, "{sub} {dom} {obj} {}", act.as_str());
                            allowed += usize::from(want);
                        }
                    }
                }
            }
        }
        assert!(allowed > 40, "the grid exercises grants: {allowed} allowed");
    }

    /// A tenant's many entities share one class: the cache holds a decision per class, not per
    /// entity.
    #[test]
    fn entities_matched_by_the_same_patterns_share_a_decision() {
        let engine = engine(MODEL, 1_000);
        let cached = |e: &Engine| -> usize {
            e.classes.as_ref().unwrap().decisions.read().unwrap().values().map(Vec::len).sum()
        };
        // (The build evaluates one request, to refuse a matcher that cannot be evaluated.)
        let before = cached(&engine);
        for i in 0..5_000 {
            assert!(engine.enforce("alice", "fraud", &format!("mm://fraud/dataset/d{i}"), "read").unwrap());
            // Another class (also matched by the `pii%2F*` patterns), the same answer.
            assert!(engine.enforce("alice", "fraud", &format!("mm://fraud/dataset/pii%2F{i}"), "read").unwrap());
        }
        assert_eq!(cached(&engine) - before, 2);
    }

    /// A matcher that reads the object in another way is decided by casbin alone.
    #[test]
    fn another_use_of_the_object_turns_classes_off() {
        let model =
            MODEL.replace("urnMatch(r.obj, p.obj)", "urnMatch(r.obj, p.obj) && r.obj != \"mm://fraud/dataset/b\"");
        let (other, plain) = (engine(&model, 1_000), engine(&model, 0));
        assert!(other.classes.is_none());
        assert!(other.enforce("alice", "fraud", "mm://fraud/dataset/a", "read").unwrap());
        assert!(!other.enforce("alice", "fraud", "mm://fraud/dataset/b", "read").unwrap());
        assert!(!plain.enforce("alice", "fraud", "mm://fraud/dataset/b", "read").unwrap());
    }
}
