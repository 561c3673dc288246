//! Authorization for metamesh: who may do what to which resource.
//!
//! Policies are files in a directory (`policies/` in the repository; see `docs/policies.md`):
//! a casbin model (`model.conf`, RBAC with domains, domain = tenant), `global.csv` (the
//! roles and the grants across tenants) and `tenants/<tenant>.csv` (one file per team). This
//! crate is the only one that knows casbin; the rest of the system sees the types below.
//!
//! Code map:
//! - `action`: [`Action`], the policy vocabulary, and the [`Level`] of resource each applies to.
//! - `resource`: [`Resource`] (an entity, a tenant, the mesh) and the object patterns of
//!   rules, matched by [`urn_match`].
//! - `files`: reading a directory as one consistent set of files; [`PolicyDigest`].
//! - `load`: the file formats and every validation (`policy check`).
//! - `engine`: casbin's cached enforcer, one per partition (global rules, plus one tenant's).
//! - `markers`: sensitivity markers, indexed per partition.
//! - `policy`: [`PolicySet`], one immutable loaded policy, and its [`Decision`]s.
//! - `authorizer`: [`Authorizer`], the policy in force, swapped whole on reload; the watcher.
//! - `assertions`: `policy test`, the assertion files of a policy repository.
//!
//! **Invariants.** Default deny: only a rule allows. A request evaluates against one
//! `Arc<PolicySet>` snapshot, never a half-loaded policy. A policy that fails to load never
//! replaces the one in force. The digest changes exactly when the policy files' content does.
//! A tenant file grants only in its own tenant.

mod action;
mod assertions;
mod authorizer;
mod engine;
mod error;
mod files;
mod load;
mod markers;
mod policy;
mod resource;

pub use action::{Action, Level, UnknownAction};
pub use assertions::{run_tests, AssertionResult, TestReport};
pub use authorizer::{Authorizer, WatchHandle, WatchOptions};
pub use error::{PolicyError, PolicyErrors};
pub use files::PolicyDigest;
pub use policy::{Decision, LoadOptions, PolicySet, PolicyStats, Reason, Visibility};
pub use resource::{urn_match, Resource};
