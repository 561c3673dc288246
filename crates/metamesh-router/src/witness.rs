//! The witness of every shard's signed audit checkpoints (DESIGN §8): a copy, held outside the
//! shards, of the latest checkpoint each one signed, so that a shard whose history is rewritten
//! — even with every replica agreeing and the shard's own key re-signing — is caught.
//!
//! Every period ([`WitnessTask::start`]; [`WitnessTask::check_now`] runs one round at once),
//! for each shard group with a public key in the mesh map (`audit_key`), in parallel:
//! 1. `GetCheckpoint` (the latest);
//! 2. when a smaller checkpoint of that shard is witnessed already, `GetConsistencyProof` from
//!    the witnessed size to the new one;
//! 3. both go to [`metamesh_audit::Witness::observe`], which accepts the checkpoint (trust on
//!    first use, then only proven extensions) or raises an alarm: bad signature, unknown key, a
//!    tree that shrank, two roots for one size, a proof that does not verify. Alarms are sticky
//!    (see `metamesh_audit::witness`): the shard stays flagged until an operator clears it.
//!
//! A group that cannot be asked (unreachable, no checkpoint yet, a malformed or refused reply)
//! is not an alarm — the witness only judges what a shard signed — but it is reported in
//! [`WitnessTask::health`] with the reason, as are groups without a key ("no audit key"), which
//! are never polled. The witness component is unhealthy exactly while a shard is flagged.
//!
//! The router asks as itself, not on behalf of a caller: no principal header, so the node sees
//! the router's certificate principal, which the policy must grant `audit.read` on the mesh
//! (`p, role:witness, *, mesh, audit.read` and `g, spiffe://<domain>/router/<name>, role:witness,
//! *` in `global.csv`). With a state file, what was witnessed (and any alarm) is saved after
//! every round that changed it and restored at start, so a restarted router does not trust a
//! rewritten history on first use.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use metamesh_audit::{Accepted, Checkpoint, ConsistencyProof, VerifyingKey, Witness, WitnessAlarm, WitnessError};
use metamesh_config::MeshMap;
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::audit_service_client::AuditServiceClient;
use tonic::{Code, Request, Status};

use crate::groups::{Group, Groups};

/// Time allowed to one witness call to a shard group.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one round found of one shard group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Its latest checkpoint, of `size` records, was accepted (first, unchanged, or a proven
    /// extension).
    Witnessed { size: u64, accepted: Accepted },
    /// It has signed no checkpoint yet (or its node holds another shard's log): the detail.
    NoCheckpoint(String),
    /// It could not be checked this round: why (unreachable, a refused or malformed reply).
    Unchecked(String),
    /// Its checkpoint raised this alarm now.
    Alarm(WitnessAlarm),
    /// It was flagged before; the checkpoint was not examined.
    Flagged(WitnessAlarm),
}

/// The public key of every shard group whose `audit_key` the mesh map names, by group id; a
/// key that cannot be read fails, naming the group and the file (a witness with a wrong key
/// would flag an honest shard, one without would trust any).
pub fn load_keys(map: &MeshMap) -> anyhow::Result<BTreeMap<String, VerifyingKey>> {
    let mut keys = BTreeMap::new();
    for (i, g) in map.groups.iter().enumerate() {
        let Some(path) = &g.audit_key else { continue };
        let key = metamesh_audit::load_public_key(path)
            .with_context(|| format!("groups[{i}].audit_key (group {}): {}", g.id, path.display()))?;
        keys.insert(g.id.clone(), key);
    }
    Ok(keys)
}

/// Polls every keyed shard group's checkpoints into a [`Witness`] (see the module docs).
/// `Default` is a witness that is not configured: it polls nothing and says so in its health.
#[derive(Default)]
pub struct WitnessTask {
    /// The groups to poll; `None` when not configured.
    groups: Option<Arc<Groups>>,
    /// The groups polled (those with a key), in mesh map order.
    keyed: Vec<String>,
    /// The groups never polled, in mesh map order: they have no audit key.
    unkeyed: Vec<String>,
    witness: Mutex<Witness>,
    /// Where the witness's state is saved after a round that changed it.
    state: Option<PathBuf>,
    /// What the last round found of each keyed group.
    last: Mutex<BTreeMap<String, Finding>>,
    /// Why the state could not be saved last time, if it could not.
    save_error: Mutex<Option<String>>,
    /// One round at a time: a proof fetched for the witnessed size must meet the same state.
    round: tokio::sync::Mutex<()>,
}

/// Locks `m`, whatever a panicking holder left (every update is a single assignment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request from the router itself: no principal header (the node sees the router's own
/// certificate), the current trace context.
fn own<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    metamesh_telemetry::inject_trace_context(request.metadata_mut());
    request
}

impl WitnessTask {
    /// A witness of the groups of `groups` that have a key in `keys` (by group id; groups
    /// without one are skipped and reported as "no audit key"), restoring and saving its state
    /// in `state` when given. A state file that exists but cannot be read is an error: starting
    /// over silently would trust rewritten histories on first use.
    pub fn new(
        groups: Arc<Groups>,
        keys: BTreeMap<String, VerifyingKey>,
        state: Option<PathBuf>,
    ) -> Result<WitnessTask, metamesh_audit::WitnessFileError> {
        let ids: Vec<String> = groups.all().iter().map(|g| g.id.clone()).collect();
        WitnessTask::build(Some(groups), &ids, keys, state)
    }

    /// [`WitnessTask::new`] with the keys the mesh map names ([`load_keys`]).
    pub fn from_map(groups: Arc<Groups>, state: Option<PathBuf>) -> anyhow::Result<WitnessTask> {
        let keys = load_keys(&groups.map)?;
        Ok(WitnessTask::new(groups, keys, state)?)
    }

    fn build(
        groups: Option<Arc<Groups>>,
        ids: &[String],
        keys: BTreeMap<String, VerifyingKey>,
        state: Option<PathBuf>,
    ) -> Result<WitnessTask, metamesh_audit::WitnessFileError> {
        let mut witness = match &state {
            Some(path) => Witness::load_or_new(path)?,
            None => Witness::new(),
        };
        let (mut keyed, mut unkeyed) = (Vec::new(), Vec::new());
        for id in ids {
            match keys.get(id) {
                Some(key) => {
                    witness.trust(id.clone(), [*key]);
                    keyed.push(id.clone());
                }
                None => unkeyed.push(id.clone()),
            }
        }
        Ok(WitnessTask { groups, keyed, unkeyed, witness: Mutex::new(witness), state, ..Default::default() })
    }

    /// Runs a round every `every` until the task is aborted (the first one at once).
    pub fn start(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.check_now().await;
            }
        })
    }

    /// One round now, over every keyed group in parallel: what it found of each (also kept
    /// for [`WitnessTask::health`]). Waits for a round already running to end first.
    pub async fn check_now(&self) -> BTreeMap<String, Finding> {
        let _round = self.round.lock().await;
        let Some(groups) = &self.groups else { return BTreeMap::new() };
        let checks = self.keyed.iter().filter_map(|id| groups.get(id)).map(|group| async move {
            let finding =
                self.check_shard(&group.id, checkpoint(groups, group), |old, new| proof(groups, group, old, new)).await;
            (group.id.clone(), finding)
        });
        let findings: BTreeMap<String, Finding> = futures_util::future::join_all(checks).await.into_iter().collect();
        self.finish_round(&findings).await;
        findings
    }

    /// Checks `shard`'s latest checkpoint (`checkpoint`), fetching the consistency proof from
    /// the witnessed size when one is needed (`proof(old_size, new_size)`).
    async fn check_shard<C, P, PF>(&self, shard: &str, checkpoint: C, proof: P) -> Finding
    where
        C: Future<Output = Result<v1::SignedCheckpoint, Status>>,
        P: FnOnce(u64, u64) -> PF,
        PF: Future<Output = Result<v1::GetConsistencyProofReply, Status>>,
    {
        let wire = match checkpoint.await {
            Ok(wire) => wire,
            Err(status) if status.code() == Code::NotFound => {
                return Finding::NoCheckpoint(status.message().to_owned());
            }
            Err(status) => return Finding::Unchecked(format!("GetCheckpoint: {}", status.message())),
        };
        let cp: Checkpoint = match convert::checkpoint("checkpoint", &wire) {
            Ok(cp) => cp,
            Err(e) => return Finding::Unchecked(format!("malformed checkpoint: {e}")),
        };
        if cp.shard != shard {
            // Never judged against another shard's key and history.
            return Finding::Unchecked(format!("the group served a checkpoint of shard `{}`", cp.shard));
        }
        let needed = lock(&self.witness).proof_needed(&cp);
        let proof = match needed {
            None => None,
            Some((old, new)) => {
                let reply = match proof(old, new).await {
                    Ok(reply) => reply,
                    Err(status) => {
                        return Finding::Unchecked(format!(
                            "GetConsistencyProof from {old} to {new} records: {}",
                            status.message()
                        ));
                    }
                };
                match ConsistencyProof::from_slices(reply.old_size, reply.new_size, &reply.hashes) {
                    Ok(p) => Some(p),
                    Err(e) => return Finding::Unchecked(format!("malformed consistency proof: {e}")),
                }
            }
        };
        let observed = lock(&self.witness).observe(&cp, proof.as_ref());
        match observed {
            Ok(accepted) => {
                if accepted != Accepted::Unchanged {
                    tracing::debug!(shard, size = cp.size, ?accepted, "checkpoint witnessed");
                }
                Finding::Witnessed { size: cp.size, accepted }
            }
            Err(WitnessError::Alarm(alarm)) => {
                tracing::error!(shard, alarm = %alarm, "audit witness alarm: the shard's signed history changed");
                Finding::Alarm(*alarm)
            }
            Err(WitnessError::Flagged(alarm)) => Finding::Flagged(*alarm),
            Err(e) => Finding::Unchecked(e.to_string()),
        }
    }

    /// Keeps a round's findings and saves the state if the round changed it.
    async fn finish_round(&self, findings: &BTreeMap<String, Finding>) {
        lock(&self.last).extend(findings.iter().map(|(k, v)| (k.clone(), v.clone())));
        let changed = findings.values().any(|f| {
            matches!(f, Finding::Alarm(_))
                || matches!(f, Finding::Witnessed { accepted, .. } if *accepted != Accepted::Unchanged)
        });
        let Some(path) = self.state.clone().filter(|_| changed) else { return };
        let snapshot = lock(&self.witness).clone();
        let saved = tokio::task::spawn_blocking(move || snapshot.save(&path)).await;
        let error = match saved {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("saving the witness state panicked: {e}")),
        };
        if let Some(e) = &error {
            tracing::error!(error = %e, "the witness state was not saved");
        }
        *lock(&self.save_error) = error;
    }

    /// Every alarm standing, by shard.
    pub fn alarms(&self) -> Vec<WitnessAlarm> {
        lock(&self.witness).alarms().cloned().collect()
    }

    /// The latest checkpoint of `shard` witnessed.
    pub fn latest(&self, shard: &str) -> Option<Checkpoint> {
        lock(&self.witness).latest(shard).cloned()
    }

    /// The witness as a health component: unhealthy while a shard is flagged, naming each with
    /// the alarm; the detail also says what was witnessed, what could not be checked, and which
    /// groups have no audit key.
    pub fn health(&self) -> v1::ComponentHealth {
        let name = "witness".to_owned();
        if self.groups.is_none() {
            return v1::ComponentHealth { name, ok: true, detail: "not configured".into() };
        }
        let alarms = self.alarms();
        let mut parts = Vec::new();
        if !alarms.is_empty() {
            let flagged: Vec<String> = alarms.iter().map(ToString::to_string).collect();
            parts.push(format!("flagged: {}", flagged.join("; ")));
        }
        let last = lock(&self.last).clone();
        let (mut witnessed, mut none, mut unchecked, mut unpolled) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for id in &self.keyed {
            match last.get(id) {
                Some(Finding::Witnessed { size, .. }) => witnessed.push(format!("{id} at {size} records")),
                Some(Finding::NoCheckpoint(_)) => none.push(id.clone()),
                Some(Finding::Unchecked(why)) => unchecked.push(format!("{id} ({why})")),
                Some(Finding::Alarm(_) | Finding::Flagged(_)) => {}
                None => unpolled.push(id.clone()),
            }
        }
        for (label, list) in [
            ("witnessed", witnessed),
            ("no checkpoint yet", none),
            ("not checked", unchecked),
            ("not polled yet", unpolled),
            ("no audit key", self.unkeyed.clone()),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        if let Some(e) = lock(&self.save_error).as_ref() {
            parts.push(format!("state not saved: {e}"));
        }
        if parts.is_empty() {
            parts.push("no shard groups".into());
        }
        v1::ComponentHealth { name, ok: alarms.is_empty(), detail: parts.join("; ") }
    }
}

/// The latest checkpoint of `group`, asked as the router.
async fn checkpoint(groups: &Groups, group: &Group) -> Result<v1::SignedCheckpoint, Status> {
    let request = v1::GetCheckpointRequest { shard: group.id.clone(), tree_size: None };
    let call = groups.call(group, |ch| {
        let request = request.clone();
        async move { AuditServiceClient::new(ch).get_checkpoint(own(request)).await }
    });
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))),
    }
}

/// The consistency proof between two tree sizes of `group`'s log, asked as the router.
async fn proof(groups: &Groups, group: &Group, old: u64, new: u64) -> Result<v1::GetConsistencyProofReply, Status> {
    let request = v1::GetConsistencyProofRequest { shard: group.id.clone(), old_size: old, new_size: new };
    let call = groups.call(group, |ch| {
        let request = request.clone();
        async move { AuditServiceClient::new(ch).get_consistency_proof(own(request)).await }
    });
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!("no answer within {} s", CALL_TIMEOUT.as_secs()))),
    }
}

#[cfg(test)]
mod tests {
    use metamesh_audit::consistency::prove_consistency_hashes;
    use metamesh_audit::merkle::Frontier;
    use metamesh_audit::{AlarmReason, Chain, Decision, Draft, Hash, SigningKey};

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The record hashes of a log of `n` records, record `changed` (if any) rewritten.
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

    fn signed(shard: &str, hashes: &[Hash], size: u64, signer: &SigningKey) -> v1::SignedCheckpoint {
        let mut f = Frontier::new();
        hashes[..size as usize].iter().for_each(|h| f.push(h));
        convert::checkpoint_to_wire(&Checkpoint::sign(shard, size, f.root(), 2_000 + size as i64, signer), Vec::new())
    }

    fn proof_of(hashes: &[Hash], old: u64, new: u64) -> v1::GetConsistencyProofReply {
        let p = prove_consistency_hashes(hashes.iter().copied(), old, new).unwrap().2;
        v1::GetConsistencyProofReply {
            old_size: old,
            new_size: new,
            hashes: p.hashes.iter().map(|h| h.to_vec()).collect(),
        }
    }

    /// A witness of groups s1, s2 (s1 with key 1; s2 without a key), not polling anything.
    fn task(state: Option<PathBuf>) -> WitnessTask {
        let mut task = WitnessTask::build(
            None,
            &["s1".to_owned(), "s2".to_owned()],
            BTreeMap::from([("s1".to_owned(), key(1).verifying_key())]),
            state,
        )
        .unwrap();
        // Configured as far as health is concerned; the groups themselves are never called.
        task.groups = Some(Arc::new(test_groups()));
        task
    }

    fn test_groups() -> Groups {
        let map = MeshMap::parse(
            r#"
version = 1
[[groups]]
id = "s1"
tenants = ["fraud"]
replicas = [{ id = 1, grpc = "127.0.0.1:1" }]
[[groups]]
id = "s2"
tenants = ["growth"]
replicas = [{ id = 1, grpc = "127.0.0.1:2" }]
"#,
            None,
        )
        .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        Groups::new(map, Arc::new(tls)).unwrap()
    }

    /// One round over s1 with the given answers.
    async fn round(
        task: &WitnessTask,
        checkpoint: Result<v1::SignedCheckpoint, Status>,
        proof: Option<v1::GetConsistencyProofReply>,
    ) -> Finding {
        let finding = task
            .check_shard("s1", async { checkpoint }, |old, new| async move {
                let p = proof.ok_or_else(|| Status::unavailable("no proof in this test"))?;
                assert_eq!((p.old_size, p.new_size), (old, new), "the proof asked for");
                Ok(p)
            })
            .await;
        task.finish_round(&BTreeMap::from([("s1".to_owned(), finding.clone())])).await;
        finding
    }

    #[tokio::test]
    async fn honest_growth_is_witnessed() {
        let t = task(None);
        let hs = log(40, None);
        assert_eq!(
            round(&t, Ok(signed("s1", &hs, 10, &key(1))), None).await,
            Finding::Witnessed { size: 10, accepted: Accepted::First }
        );
        assert_eq!(
            round(&t, Ok(signed("s1", &hs, 10, &key(1))), None).await,
            Finding::Witnessed { size: 10, accepted: Accepted::Unchanged }
        );
        let grown = round(&t, Ok(signed("s1", &hs, 25, &key(1))), Some(proof_of(&hs, 10, 25))).await;
        assert_eq!(grown, Finding::Witnessed { size: 25, accepted: Accepted::Extended { from: 10 } });
        assert_eq!(t.latest("s1").map(|c| c.size), Some(25));
        let health = t.health();
        assert!(health.ok, "{health:?}");
        assert_eq!(health.name, "witness");
        assert!(health.detail.contains("witnessed: s1 at 25 records"), "{}", health.detail);
        assert!(health.detail.contains("no audit key: s2"), "{}", health.detail);
        assert!(t.alarms().is_empty());
    }

    #[tokio::test]
    async fn a_rewritten_history_raises_a_sticky_alarm() {
        let t = task(None);
        let honest = log(40, None);
        let forged = log(40, Some(5));
        round(&t, Ok(signed("s1", &honest, 10, &key(1))), None).await;
        // Re-signed with the shard's own key, with a proof of the forged log: still caught.
        let finding = round(&t, Ok(signed("s1", &forged, 25, &key(1))), Some(proof_of(&forged, 10, 25))).await;
        let Finding::Alarm(alarm) = finding else { panic!("expected an alarm, got {finding:?}") };
        assert_eq!(alarm.reason, AlarmReason::Inconsistent);
        assert_eq!((alarm.old_size, alarm.new_size), (10, 25));
        assert_eq!(t.alarms(), vec![alarm.clone()]);
        let health = t.health();
        assert!(!health.ok);
        assert!(health.detail.contains("flagged: shard `s1`"), "{}", health.detail);
        assert!(health.detail.contains("consistency proof does not verify"), "{}", health.detail);
        // Even an honest checkpoint is not looked at until an operator clears the alarm.
        let again = round(&t, Ok(signed("s1", &honest, 30, &key(1))), Some(proof_of(&honest, 10, 30))).await;
        assert_eq!(again, Finding::Flagged(alarm));
        assert!(!t.health().ok);
    }

    #[tokio::test]
    async fn forks_shrinks_and_foreign_keys_are_alarms() {
        let honest = log(20, None);
        let forged = log(20, Some(3));
        let reason = |f: Finding| match f {
            Finding::Alarm(a) => a.reason,
            other => panic!("expected an alarm, got {other:?}"),
        };
        let t = task(None);
        round(&t, Ok(signed("s1", &honest, 10, &key(1))), None).await;
        assert_eq!(reason(round(&t, Ok(signed("s1", &forged, 10, &key(1))), None).await), AlarmReason::Forked);
        let t = task(None);
        round(&t, Ok(signed("s1", &honest, 10, &key(1))), None).await;
        assert_eq!(reason(round(&t, Ok(signed("s1", &honest, 5, &key(1))), None).await), AlarmReason::Shrank);
        let t = task(None);
        assert!(matches!(
            reason(round(&t, Ok(signed("s1", &honest, 10, &key(2))), None).await),
            AlarmReason::UnknownKey { .. }
        ));
    }

    #[tokio::test]
    async fn what_cannot_be_checked_is_reported_not_alarmed() {
        let hs = log(20, None);
        let t = task(None);
        assert!(matches!(
            round(&t, Err(Status::not_found("the audit log has no signed checkpoint yet")), None).await,
            Finding::NoCheckpoint(_)
        ));
        assert!(t.health().detail.contains("no checkpoint yet: s1"), "{}", t.health().detail);
        assert!(matches!(round(&t, Err(Status::unavailable("down")), None).await, Finding::Unchecked(_)));
        let health = t.health();
        assert!(health.ok);
        assert!(health.detail.contains("not checked: s1 (GetCheckpoint: down)"), "{}", health.detail);
        // Another shard's checkpoint (a node serving the wrong log) is not judged with s1's key.
        assert!(matches!(round(&t, Ok(signed("s2", &hs, 10, &key(1))), None).await, Finding::Unchecked(_)));
        // A proof that cannot be had leaves the witnessed checkpoint as it was.
        round(&t, Ok(signed("s1", &hs, 10, &key(1))), None).await;
        assert!(matches!(round(&t, Ok(signed("s1", &hs, 15, &key(1))), None).await, Finding::Unchecked(_)));
        assert_eq!(t.latest("s1").map(|c| c.size), Some(10));
        assert!(t.alarms().is_empty());
    }

    #[tokio::test]
    async fn the_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.json");
        let honest = log(20, None);
        let forged = log(20, Some(2));
        {
            let t = task(Some(path.clone()));
            round(&t, Ok(signed("s1", &honest, 10, &key(1))), None).await;
        }
        // A restarted router holds the shard to what it witnessed: no trust on first use again.
        let t = task(Some(path.clone()));
        assert_eq!(t.latest("s1").map(|c| c.size), Some(10));
        let finding = round(&t, Ok(signed("s1", &forged, 10, &key(1))), None).await;
        assert!(matches!(finding, Finding::Alarm(ref a) if a.reason == AlarmReason::Forked), "{finding:?}");
        // The alarm is saved too.
        assert_eq!(task(Some(path)).alarms().len(), 1);
    }

    #[test]
    fn an_unconfigured_witness_says_so() {
        let health = WitnessTask::default().health();
        assert!(health.ok);
        assert_eq!(health.detail, "not configured");
    }

    #[test]
    fn keys_come_from_the_mesh_map() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("s1.pub.pem");
        let shard_key = metamesh_audit::ShardKey::generate();
        std::fs::write(&pem, shard_key.public_key_pem()).unwrap();
        let text = |key: &std::path::Path| {
            format!(
                "version = 1\n[[groups]]\nid = \"s1\"\ntenants = [\"fraud\"]\naudit_key = {:?}\nreplicas = [{{ id = 1, grpc = \"127.0.0.1:1\" }}]\n\
                 [[groups]]\nid = \"s2\"\ntenants = [\"growth\"]\nreplicas = [{{ id = 1, grpc = \"127.0.0.1:2\" }}]\n",
                key.display().to_string()
            )
        };
        let keys = load_keys(&MeshMap::parse(&text(&pem), None).unwrap()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["s1"]);
        assert_eq!(keys["s1"], shard_key.verifying_key());
        let missing = dir.path().join("nope.pem");
        let err = load_keys(&MeshMap::parse(&text(&missing), None).unwrap()).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("groups[0].audit_key (group s1)") && message.contains("nope.pem"), "{message}");
    }
}
