//! [`Authorizer`]: the policy in force, swapped whole on reload.
//!
//! Pipeline of a reload: read the files consistently (`files.rs`) → digest → if it differs from
//! the policy in force, validate and compile a complete new [`PolicySet`] → store it in the
//! `ArcSwap` in one atomic step. A request takes one `Arc<PolicySet>` snapshot and makes all
//! its checks against it, so it never sees a half-loaded policy nor two policies. A policy
//! that fails to load changes nothing: the previous one stays in force, the error is logged
//! (file:line) and kept for [`Authorizer::last_error`].
//!
//! The watcher polls: every `interval` it reads the files and computes their digest, and it
//! reloads once two consecutive polls have seen the same new digest (the debounce: a change
//! must be stable for one interval). Rationale for polling over inotify (`notify`): a digest
//! of a few files per second costs nothing, it sees symlink swaps (Kubernetes ConfigMaps,
//! `ln -sfn` deployments) and network filesystems that inotify misses, it needs no event
//! de-duplication, and "reload exactly when the content changed" is what it compares anyway.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::action::Action;
use crate::error::PolicyErrors;
use crate::files::{PolicyDigest, PolicyFiles};
use crate::policy::{Decision, LoadOptions, PolicySet};
use crate::resource::Resource;

/// The policy in force, cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Authorizer {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    options: LoadOptions,
    current: ArcSwap<PolicySet>,
    /// Held while reading and swapping, so reloads are serialized and an older read never
    /// replaces a newer policy; remembers the last failure.
    reload: Mutex<ReloadState>,
}

#[derive(Default)]
struct ReloadState {
    /// The digest of files that failed to load, not retried until they change again.
    failed: Option<PolicyDigest>,
    last_error: Option<PolicyErrors>,
    /// A new digest seen once by the watcher, reloaded when seen again (debounce).
    pending: Option<PolicyDigest>,
}

/// How the watcher polls.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Time between two reads of the files; a change is applied after two reads agree, so
    /// within one to two intervals.
    pub interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { interval: Duration::from_secs(1) }
    }
}

/// The watcher task; dropping it stops the watching.
#[must_use = "the watcher stops when its handle is dropped"]
pub struct WatchHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("dir", &self.shared.dir).field("digest", &self.digest()).finish()
    }
}

impl Authorizer {
    /// Loads the policy in `dir`; a node refuses to start without a valid one.
    pub fn load(dir: &Path) -> Result<Authorizer, PolicyErrors> {
        Authorizer::load_with(dir, LoadOptions::default())
    }

    pub fn load_with(dir: &Path, options: LoadOptions) -> Result<Authorizer, PolicyErrors> {
        let set = PolicySet::load_with(dir, &options)?;
        Ok(Authorizer {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                options,
                current: ArcSwap::from_pointee(set),
                reload: Mutex::new(ReloadState::default()),
            }),
        })
    }

    /// The policy in force. Take one per request and make every check of the request on it.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        self.shared.current.load_full()
    }

    /// One check against the policy in force (for requests that make a single check).
    pub fn check(&self, principal: &str, action: Action, resource: &Resource<'_>) -> Decision {
        self.shared.current.load().check(principal, action, resource)
    }

    pub fn digest(&self) -> PolicyDigest {
        self.shared.current.load().digest()
    }

    /// The directory the policy is loaded from.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Why the files on disk are not in force, if they are not: the last reload that failed,
    /// until one succeeds.
    pub fn last_error(&self) -> Option<PolicyErrors> {
        self.lock().last_error.clone()
    }

    /// Reloads now (blocking). Returns the digest in force: the new one, or the same one when
    /// the files did not change. On error the previous policy stays in force.
    pub fn reload(&self) -> Result<PolicyDigest, PolicyErrors> {
        let mut state = self.lock();
        let files = PolicyFiles::read(&self.shared.dir).inspect_err(|e| state.last_error = Some(e.clone()))?;
        self.apply(&mut state, &files)
    }

    /// Starts the watcher on the current tokio runtime.
    pub fn watch(&self, options: WatchOptions) -> WatchHandle {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(options.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let this = this.clone();
                if tokio::task::spawn_blocking(move || this.poll()).await.is_err() {
                    tracing::error!("policy watcher poll panicked");
                }
            }
        });
        WatchHandle { task }
    }

    /// One watcher poll: reload when a new digest has been seen twice in a row.
    fn poll(&self) {
        // Files are read under the lock, so a reload never replaces a newer read with an older.
        let mut state = self.lock();
        let files = match PolicyFiles::read(&self.shared.dir) {
            Ok(files) => files,
            Err(e) => {
                if state.last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "cannot read the policy files; keeping the policy in force");
                    state.last_error = Some(e);
                }
                return;
            }
        };
        let digest = files.digest();
        if digest == self.digest() {
            // Back to the policy in force (say, a broken edit reverted): nothing is wrong.
            *state = ReloadState::default();
            return;
        }
        if Some(digest) == state.failed {
            state.pending = None;
            return;
        }
        if state.pending != Some(digest) {
            state.pending = Some(digest);
            return;
        }
        state.pending = None;
        let _ = self.apply(&mut state, &files);
    }

    /// Compiles and swaps in `files` unless they are the policy in force. Called under the lock.
    fn apply(&self, state: &mut ReloadState, files: &PolicyFiles) -> Result<PolicyDigest, PolicyErrors> {
        let old = self.digest();
        let digest = files.digest();
        if digest == old {
            state.failed = None;
            state.last_error = None;
            return Ok(old);
        }
        match PolicySet::from_files(files, &self.shared.options) {
            Ok(set) => {
                self.shared.current.store(Arc::new(set));
                state.failed = None;
                state.last_error = None;
                tracing::info!(old = %old.short(), new = %digest.short(), "policy reloaded");
                Ok(digest)
            }
            Err(e) => {
                for problem in &e {
                    tracing::error!(%problem, "policy not reloaded; the previous policy stays in force");
                }
                state.failed = Some(digest);
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReloadState> {
        // A panic while holding the lock leaves consistent state (plain fields): keep going.
        self.shared.reload.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
