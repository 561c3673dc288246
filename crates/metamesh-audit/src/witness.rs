//! The witness: a copy, held outside the shards, of the latest signed checkpoint each shard
//! showed, and the check that every newer one extends it.
//!
//! A shard's own checkpoints cannot protect it from whoever holds its file and its key: they can
//! rewrite a record, recompute every hash and re-sign. What they cannot do is make the new
//! history consistent with a checkpoint someone else already holds. The router (the witness's
//! user) polls each shard's latest checkpoint, asks for a consistency proof from the size it
//! witnessed to the new size ([`Witness::proof_needed`]), and hands both to
//! [`Witness::observe`]:
//!
//! - the first checkpoint of a shard is accepted once its signature verifies with the shard's
//!   public key (trust on first use);
//! - a newer one is accepted when its signature verifies and the proof shows the witnessed tree
//!   is a prefix of the new one;
//! - anything else raises a [`WitnessAlarm`]: a signature that does not verify, a tree that
//!   shrank, the same size with another root, or a proof that does not verify.
//!
//! **An alarm is sticky:** the shard stays flagged, and every later observation reports the
//! alarm without looking further, until an operator calls [`Witness::clear_alarm`] (keep the
//! witnessed checkpoint and check the next one against it) or [`Witness::forget`] (start over
//! with trust on first use, e.g. after a deliberate reset of the log).
//!
//! The state (not the keys, which are configuration) can be saved as JSON
//! ([`Witness::save`], atomic: temporary file, fsync, rename) so that a restarted router keeps
//! what it witnessed; [`Witness::checkpoints`] feeds [`crate::sqlite::verify_file_with`].
//!
//! Observe a shard's *latest* checkpoint: an older checkpoint of an honest log looks like a
//! shrink. The witness has no clock and does no network IO; the caller decides when to poll.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError, KeyId};
use crate::consistency::{verify_consistency, ConsistencyProof};

/// Version of the JSON state file.
const FILE_VERSION: u32 = 1;

/// What the witness found wrong with a shard: kept, and reported, until an operator clears it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("shard `{shard}`: {reason} (witnessed {old_size} records, offered {new_size})")]
pub struct WitnessAlarm {
    pub shard: String,
    /// Size of the checkpoint witnessed before (0 when none was).
    pub old_size: u64,
    /// Size of the checkpoint that raised the alarm.
    pub new_size: u64,
    pub reason: AlarmReason,
    /// Evidence: the checkpoint witnessed before, if any.
    pub witnessed: Option<Checkpoint>,
    /// Evidence: the checkpoint that raised the alarm. With `witnessed`, two signed
    /// checkpoints of one size and two roots prove a rewritten history to anyone.
    pub offered: Checkpoint,
}

/// Why a checkpoint raised an alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlarmReason {
    #[error("the checkpoint is signed by key {key_id}, which is not one of the shard's keys")]
    UnknownKey { key_id: KeyId },
    #[error("the checkpoint's signature does not verify with the shard's key")]
    BadSignature,
    #[error("the signed tree shrank")]
    Shrank,
    #[error("two signed checkpoints of the same size have different roots: the history was rewritten")]
    Forked,
    #[error("the consistency proof does not verify: the new tree does not extend the witnessed one")]
    Inconsistent,
}

/// How [`Witness::observe`] accepted a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The first checkpoint of the shard (trust on first use): now witnessed.
    First,
    /// The size and root witnessed already: nothing changed.
    Unchanged,
    /// A proven extension of the checkpoint of `from` records: now witnessed instead.
    Extended { from: u64 },
}

/// Why [`Witness::observe`] did not accept a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// This checkpoint raised an alarm; the shard is flagged from now on.
    #[error("{0}")]
    Alarm(Box<WitnessAlarm>),
    /// The shard was flagged before; the checkpoint was not examined.
    #[error("flagged until an operator clears it: {0}")]
    Flagged(Box<WitnessAlarm>),
    /// No public key is configured for the checkpoint's shard ([`Witness::trust`]).
    #[error("no public key is configured for shard `{0}`")]
    UnknownShard(String),
    /// The caller passed no proof, or one between other sizes, where a proof from `old_size`
    /// to `new_size` is needed (see [`Witness::proof_needed`]). Nothing was decided.
    #[error(
        "shard `{shard}`: a consistency proof from {old_size} to {new_size} records is needed, got {}",
        proof.map_or("none".to_owned(), |(o, n)| format!("one from {o} to {n}"))
    )]
    ProofNeeded { shard: String, old_size: u64, new_size: u64, proof: Option<(u64, u64)> },
}

impl WitnessError {
    /// The alarm, raised now or before.
    pub fn alarm(&self) -> Option<&WitnessAlarm> {
        match self {
            WitnessError::Alarm(a) | WitnessError::Flagged(a) => Some(a),
            _ => None,
        }
    }
}

/// Why the witness's state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WitnessFileError {
    #[error("witness file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("witness file {path}: not a witness state: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// What was witnessed of one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Witnessed {
    /// The latest checkpoint accepted.
    accepted: Option<Checkpoint>,
    /// Set once a checkpoint raised an alarm; cleared only by an operator.
    alarm: Option<WitnessAlarm>,
}

/// The JSON state file.
#[derive(Serialize, Deserialize)]
struct WitnessFile {
    version: u32,
    shards: BTreeMap<String, Witnessed>,
}

/// Per shard, the latest accepted checkpoint and any alarm (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Witness {
    /// The public keys each shard's checkpoints must be signed with (configuration, not saved).
    keys: BTreeMap<String, Vec<VerifyingKey>>,
    /// What was witnessed, by shard.
    shards: BTreeMap<String, Witnessed>,
}

impl Witness {
    /// A witness that has seen nothing and trusts no key yet.
    pub fn new() -> Witness {
        Witness::default()
    }

    /// Sets the public keys of `shard` (several during a key rotation), replacing earlier ones.
    /// A shard's checkpoints are observed only once it has keys.
    pub fn trust(&mut self, shard: impl Into<String>, keys: impl IntoIterator<Item = VerifyingKey>) {
        self.keys.insert(shard.into(), keys.into_iter().collect());
    }

    /// The latest checkpoint of `shard` accepted.
    pub fn latest(&self, shard: &str) -> Option<&Checkpoint> {
        self.shards.get(shard)?.accepted.as_ref()
    }

    /// The latest accepted checkpoint of every shard, for
    /// [`crate::sqlite::verify_file_with`].
    pub fn checkpoints(&self) -> impl Iterator<Item = &Checkpoint> {
        self.shards.values().filter_map(|w| w.accepted.as_ref())
    }

    /// The alarm `shard` is flagged with, if any.
    pub fn alarm(&self, shard: &str) -> Option<&WitnessAlarm> {
        self.shards.get(shard)?.alarm.as_ref()
    }

    /// Every alarm standing, by shard.
    pub fn alarms(&self) -> impl Iterator<Item = &WitnessAlarm> {
        self.shards.values().filter_map(|w| w.alarm.as_ref())
    }

    /// The consistency proof to fetch before observing `checkpoint`: `(old_size, new_size)`
    /// when a smaller checkpoint of its shard is witnessed and the shard is not flagged.
    pub fn proof_needed(&self, checkpoint: &Checkpoint) -> Option<(u64, u64)> {
        let w = self.shards.get(&checkpoint.shard)?;
        let old = w.accepted.as_ref()?;
        // Every tree extends the empty one: no proof from size 0.
        (w.alarm.is_none() && old.size > 0 && old.size < checkpoint.size).then_some((old.size, checkpoint.size))
    }

    /// Examines `checkpoint`, the latest of its shard, with the consistency proof from the
    /// witnessed size to its size (needed only when a smaller checkpoint was witnessed; see
    /// [`Witness::proof_needed`]). Accepts it and remembers it, or raises an alarm and flags
    /// the shard.
    pub fn observe(
        &mut self,
        checkpoint: &Checkpoint,
        proof: Option<&ConsistencyProof>,
    ) -> Result<Accepted, WitnessError> {
        let shard = &checkpoint.shard;
        let keys = self.keys.get(shard).ok_or_else(|| WitnessError::UnknownShard(shard.clone()))?;
        let w = self.shards.entry(shard.clone()).or_default();
        if let Some(alarm) = &w.alarm {
            return Err(WitnessError::Flagged(Box::new(alarm.clone())));
        }
        let finding = match checkpoint.verify_with_any(keys) {
            Err(CheckpointError::UnknownKey(key_id)) => Some(AlarmReason::UnknownKey { key_id }),
            Err(CheckpointError::BadSignature) => Some(AlarmReason::BadSignature),
            Ok(()) => match &w.accepted {
                None => None,
                Some(old) if checkpoint.size < old.size => Some(AlarmReason::Shrank),
                Some(old) if checkpoint.size == old.size => {
                    (checkpoint.root != old.root).then_some(AlarmReason::Forked)
                }
                Some(old) if old.size == 0 => None,
                Some(old) => {
                    let needed = (old.size, checkpoint.size);
                    let Some(proof) = proof.filter(|p| (p.old_size, p.new_size) == needed) else {
                        return Err(WitnessError::ProofNeeded {
                            shard: shard.clone(),
                            old_size: needed.0,
                            new_size: needed.1,
                            proof: proof.map(|p| (p.old_size, p.new_size)),
                        });
                    };
                    verify_consistency(old.size, &old.root, checkpoint.size, &checkpoint.root, &proof.hashes)
                        .err()
                        .map(|_| AlarmReason::Inconsistent)
                }
            },
        };
        if let Some(reason) = finding {
            let alarm = WitnessAlarm {
                shard: shard.clone(),
                old_size: w.accepted.as_ref().map_or(0, |c| c.size),
                new_size: checkpoint.size,
                reason,
                witnessed: w.accepted.clone(),
                offered: checkpoint.clone(),
            };
            w.alarm = Some(alarm.clone());
            return Err(WitnessError::Alarm(Box::new(alarm)));
        }
        let accepted = match &w.accepted {
            None => Accepted::First,
            Some(old) if old.size == checkpoint.size => return Ok(Accepted::Unchanged),
            Some(old) => Accepted::Extended { from: old.size },
        };
        w.accepted = Some(checkpoint.clone());
        Ok(accepted)
    }

    /// Clears the alarm of `shard` (an operator's decision), keeping the checkpoint witnessed
    /// before it: the next checkpoint is checked against that one. Returns the alarm cleared.
    pub fn clear_alarm(&mut self, shard: &str) -> Option<WitnessAlarm> {
        let w = self.shards.get_mut(shard)?;
        let alarm = w.alarm.take();
        if w.accepted.is_none() {
            self.shards.remove(shard);
        }
        alarm
    }

    /// Drops everything witnessed of `shard`, alarm included: its next checkpoint is trusted on
    /// first use. Returns whether there was anything.
    pub fn forget(&mut self, shard: &str) -> bool {
        self.shards.remove(shard).is_some()
    }

    /// Reads a state file written by [`Witness::save`]. The keys are not in it: call
    /// [`Witness::trust`] again.
    pub fn load(path: &Path) -> Result<Witness, WitnessFileError> {
        let text = fs::read_to_string(path).map_err(|source| WitnessFileError::Io { path: path.into(), source })?;
        let parse = |reason: String| WitnessFileError::Parse { path: path.into(), reason };
        let file: WitnessFile = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        if file.version != FILE_VERSION {
            return Err(parse(format!("version {} (this build reads {FILE_VERSION})", file.version)));
        }
        Ok(Witness { keys: BTreeMap::new(), shards: file.shards })
    }

    /// [`Witness::load`], or a new witness when there is no file yet. Any other failure is an
    /// error: starting over silently would trust rewritten histories on first use.
    pub fn load_or_new(path: &Path) -> Result<Witness, WitnessFileError> {
        match Witness::load(path) {
            Err(WitnessFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(Witness::new())
            }
            other => other,
        }
    }

    /// Writes the state (checkpoints and alarms, not keys) as JSON to `path`, atomically: a
    /// temporary file in the same directory, synced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), WitnessFileError> {
        /// Tells apart the temporary files of saves running at once in this process.
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let io = |source| WitnessFileError::Io { path: path.into(), source };
        let file = WitnessFile { version: FILE_VERSION, shards: self.shards.clone() };
        let json = serde_json::to_vec_pretty(&file).expect("the witness state always serializes");
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| io(std::io::Error::other("not a file name")))?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            SAVES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
        // The rename is durable once the directory is synced (not possible on every platform).
        #[cfg(unix)]
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::consistency::prove_consistency_hashes;
    use crate::merkle::Frontier;
    use crate::record::{Chain, Decision, Draft, Hash};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The record hashes of a log of `n` records, record `changed` (if any) with another
    /// resource, every hash after it recomputed.
    fn log(n: u64, changed: Option<u64>) -> Vec<Hash> {
        let mut chain = Chain::new();
        (1..=n)
            .map(|i| {
                let resource = if Some(i) == changed {
                    "mm://fraud/dataset/forged".into()
                } else {
                    format!("mm://fraud/dataset/d{i}")
                };
                chain.append(Draft::new(1_000 + i as i64, "p", "write", resource, Decision::Allow)).unwrap().hash
            })
            .collect()
    }

    fn checkpoint(hashes: &[Hash], size: u64, signer: &SigningKey) -> Checkpoint {
        let mut f = Frontier::new();
        hashes[..size as usize].iter().for_each(|h| f.push(h));
        Checkpoint::sign("s1", size, f.root(), 2_000 + size as i64, signer)
    }

    fn proof(hashes: &[Hash], old: u64, new: u64) -> ConsistencyProof {
        prove_consistency_hashes(hashes.iter().copied(), old, new).unwrap().2
    }

    fn witness() -> Witness {
        let mut w = Witness::new();
        w.trust("s1", [key(1).verifying_key()]);
        w
    }

    fn reason(e: WitnessError) -> AlarmReason {
        match e {
            WitnessError::Alarm(a) => a.reason,
            other => panic!("expected a new alarm, got {other:?}"),
        }
    }

    #[test]
    fn accepts_extending_checkpoints() {
        let hs = log(40, None);
        let mut w = witness();
        let a = checkpoint(&hs, 10, &key(1));
        assert_eq!(w.proof_needed(&a), None);
        assert_eq!(w.observe(&a, None), Ok(Accepted::First));
        assert_eq!(w.observe(&a, None), Ok(Accepted::Unchanged));
        let b = checkpoint(&hs, 25, &key(1));
        assert_eq!(w.proof_needed(&b), Some((10, 25)));
        assert!(matches!(w.observe(&b, None), Err(WitnessError::ProofNeeded { old_size: 10, new_size: 25, .. })));
        let wrong_sizes = proof(&hs, 9, 25);
        assert!(matches!(
            w.observe(&b, Some(&wrong_sizes)),
            Err(WitnessError::ProofNeeded { proof: Some((9, 25)), .. })
        ));
        assert_eq!(w.latest("s1"), Some(&a), "an unproven checkpoint changes nothing");
        assert_eq!(w.observe(&b, Some(&proof(&hs, 10, 25))), Ok(Accepted::Extended { from: 10 }));
        assert_eq!(w.latest("s1"), Some(&b));
        let c = checkpoint(&hs, 40, &key(1));
        assert_eq!(w.observe(&c, Some(&proof(&hs, 25, 40))), Ok(Accepted::Extended { from: 25 }));
        assert_eq!(w.alarms().count(), 0);
        assert_eq!(w.checkpoints().collect::<Vec<_>>(), [&c]);
    }

    #[test]
    fn flags_a_rewritten_history() {
        let honest = log(40, None);
        let forged = log(40, Some(7));
        assert_eq!(honest[..6], forged[..6]);
        assert_ne!(honest[6], forged[6]);
        // Extended past the witnessed size: the forger's own proof cannot lead to the witnessed root.
        let mut w = witness();
        w.observe(&checkpoint(&honest, 20, &key(1)), None).unwrap();
        let rewritten = checkpoint(&forged, 30, &key(1));
        let e = w.observe(&rewritten, Some(&proof(&forged, 20, 30))).unwrap_err();
        assert_eq!(reason(e), AlarmReason::Inconsistent);
        let alarm = w.alarm("s1").unwrap().clone();
        assert_eq!((alarm.old_size, alarm.new_size, alarm.offered.clone()), (20, 30, rewritten));
        assert_eq!(alarm.witnessed.as_ref().map(|c| c.size), Some(20));
        // Same size, another root.
        let mut w = witness();
        w.observe(&checkpoint(&honest, 20, &key(1)), None).unwrap();
        assert_eq!(reason(w.observe(&checkpoint(&forged, 20, &key(1)), None).unwrap_err()), AlarmReason::Forked);
        // A rewrite after the witnessed size is just an extension: the witness saw none of it.
        let later = log(40, Some(33));
        let mut w = witness();
        w.observe(&checkpoint(&honest, 20, &key(1)), None).unwrap();
        assert!(w.observe(&checkpoint(&later, 40, &key(1)), Some(&proof(&later, 20, 40))).is_ok());
    }

    #[test]
    fn flags_bad_signatures_and_shrinks() {
        let hs = log(30, None);
        let mut w = witness();
        let mut tampered = checkpoint(&hs, 10, &key(1));
        tampered.at_ms += 1;
        assert_eq!(reason(w.observe(&tampered, None).unwrap_err()), AlarmReason::BadSignature);
        assert_eq!(w.latest("s1"), None, "a first checkpoint that does not verify is not trusted");
        let other = checkpoint(&hs, 10, &key(2));
        assert!(matches!(w.observe(&other, None), Err(WitnessError::Flagged(_))));
        assert_eq!(w.clear_alarm("s1").map(|a| a.reason), Some(AlarmReason::BadSignature));
        let e = w.observe(&other, None).unwrap_err();
        assert_eq!(reason(e), AlarmReason::UnknownKey { key_id: other.key_id });
        w.forget("s1");

        w.observe(&checkpoint(&hs, 20, &key(1)), None).unwrap();
        assert_eq!(reason(w.observe(&checkpoint(&hs, 12, &key(1)), None).unwrap_err()), AlarmReason::Shrank);
        assert_eq!(w.alarm("s1").map(|a| (a.old_size, a.new_size)), Some((20, 12)));
    }

    #[test]
    fn alarms_stick_until_cleared() {
        let hs = log(30, None);
        let mut w = witness();
        w.observe(&checkpoint(&hs, 20, &key(1)), None).unwrap();
        w.observe(&checkpoint(&hs, 10, &key(1)), None).unwrap_err();
        // Even a good extension is not examined while the shard is flagged.
        let good = checkpoint(&hs, 30, &key(1));
        assert_eq!(w.proof_needed(&good), None);
        let e = w.observe(&good, Some(&proof(&hs, 20, 30))).unwrap_err();
        assert!(matches!(&e, WitnessError::Flagged(a) if a.reason == AlarmReason::Shrank), "{e:?}");
        assert_eq!(e.alarm().map(|a| a.new_size), Some(10));
        assert_eq!(w.latest("s1").map(|c| c.size), Some(20));
        // Cleared: checked against the checkpoint witnessed before the alarm.
        w.clear_alarm("s1").unwrap();
        assert_eq!(w.observe(&good, Some(&proof(&hs, 20, 30))), Ok(Accepted::Extended { from: 20 }));
    }

    #[test]
    fn the_empty_tree_is_extended_without_a_proof() {
        let hs = log(5, None);
        let mut w = witness();
        let empty = Checkpoint::sign("s1", 0, crate::merkle::EMPTY_ROOT, 1, &key(1));
        assert_eq!(w.observe(&empty, None), Ok(Accepted::First));
        let five = checkpoint(&hs, 5, &key(1));
        assert_eq!(w.proof_needed(&five), None);
        assert_eq!(w.observe(&five, None), Ok(Accepted::Extended { from: 0 }));
    }

    #[test]
    fn unknown_shards_are_not_observed() {
        let hs = log(3, None);
        let mut w = witness();
        let mut cp = checkpoint(&hs, 3, &key(1));
        cp.shard = "s2".into();
        assert_eq!(w.observe(&cp, None), Err(WitnessError::UnknownShard("s2".into())));
        assert_eq!(w.latest("s2"), None);
    }

    #[test]
    fn state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.json");
        assert_eq!(Witness::load_or_new(&path).unwrap().checkpoints().count(), 0);
        assert!(matches!(Witness::load(&path), Err(WitnessFileError::Io { .. })));
        let hs = log(30, None);
        let forged = log(30, Some(2));
        let mut w = witness();
        w.trust("s2", [key(2).verifying_key()]);
        w.observe(&checkpoint(&hs, 20, &key(1)), None).unwrap();
        let s2 = Checkpoint::sign("s2", 5, checkpoint(&hs, 5, &key(2)).root, 2_005, &key(2));
        w.observe(&s2, None).unwrap();
        w.observe(&checkpoint(&forged, 20, &key(1)), None).unwrap_err();
        w.save(&path).unwrap();
        w.save(&path).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["witness.json"], "no temporary file is left behind");

        let mut again = Witness::load(&path).unwrap();
        assert_eq!(again.latest("s1"), w.latest("s1"));
        assert_eq!(again.latest("s2"), Some(&s2));
        assert_eq!(again.alarm("s1"), w.alarm("s1"));
        // Keys are configuration: without them nothing is observed; with them the flag stands.
        let good = checkpoint(&hs, 30, &key(1));
        assert_eq!(again.observe(&good, None), Err(WitnessError::UnknownShard("s1".into())));
        again.trust("s1", [key(1).verifying_key()]);
        assert!(matches!(again.observe(&good, Some(&proof(&hs, 20, 30))), Err(WitnessError::Flagged(_))));

        fs::write(&path, "{\"version\": 9, \"shards\": {}}").unwrap();
        assert!(Witness::load(&path).unwrap_err().to_string().contains("version 9"));
        fs::write(&path, "not json").unwrap();
        assert!(matches!(Witness::load_or_new(&path), Err(WitnessFileError::Parse { .. })));
    }
}
