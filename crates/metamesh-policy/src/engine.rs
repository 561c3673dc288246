//! casbin behind a four-string interface. The only module that names casbin.
//!
//! One engine evaluates the rules of one *partition*: the global rules alone (for the mesh and
//! for tenants without a file), or the global rules plus one tenant's. A tenant file can only
//! grant in its own domain, so a request in domain `fraud` can only ever be allowed by global
//! rules or by `tenants/fraud.csv`; partitioning drops the other tenants' rules from the scan
//! casbin makes on every cache miss without changing any decision.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::pin;
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
        let engine = Engine { inner, keys: RandomState::new() };
        // A matcher that calls an unknown function or compares the wrong types fails only when
        // evaluated: evaluate one request now, so that such a model is refused at load.
        engine.enforce("", "*", "mesh", "read").map_err(|e| format!("the matcher cannot be evaluated: {e}"))?;
        Ok(engine)
    }

    /// Whether the rules allow `sub` to `act` on `obj` in domain `dom`.
    pub(crate) fn enforce(&self, sub: &str, dom: &str, obj: &str, act: &str) -> Result<bool, String> {
        let values = [sub, dom, obj, act];
        let request = Request { values, key: self.keys.hash_one(values) };
        let result = match &self.inner {
            Inner::Cached(e) => e.enforce(request),
            Inner::Plain(e) => e.enforce(request),
        };
        result.map_err(|e| e.to_string())
    }
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
