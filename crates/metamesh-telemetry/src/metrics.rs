//! A node's Prometheus metrics: RPC latency, the Raft state, the snapshot size.
//!
//! Raft figures arrive as [`RaftSample`]s pushed by whoever watches the replica (the binary);
//! the snapshot size is read from disk when the registry is rendered, so it is never stale.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus
/// negotiates by default).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the RPC latency buckets: sub-millisecond local reads up to
/// writes that wait out a leader election.
const RPC_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    node_id: String,
}

/// One reading of a replica's Raft state (the fields of openraft's `RaftMetrics` that are
/// exported). Indices are log indices; `None` (nothing yet) is exported as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftSample {
    pub term: u64,
    /// The leader this replica knows of.
    pub leader: Option<u64>,
    pub is_leader: bool,
    /// The last entry appended to this replica's log.
    pub last_log_index: Option<u64>,
    /// The last entry applied to this replica's state machine.
    pub last_applied: Option<u64>,
    /// The last entry included in the newest snapshot.
    pub snapshot_index: Option<u64>,
    /// The last entry removed from the log (compaction).
    pub purged_index: Option<u64>,
    pub voters: usize,
    pub learners: usize,
    /// On the leader only: for each replica, the last entry it is known to hold.
    pub matched: Vec<(u64, Option<u64>)>,
}

/// The registry of one node and handles on its metrics.
pub struct Metrics {
    registry: Registry,
    rpc_duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    term: Gauge,
    leader_id: Gauge,
    is_leader: Gauge,
    last_log_index: Gauge,
    last_applied: Gauge,
    apply_lag: Gauge,
    snapshot_index: Gauge,
    purged_index: Gauge,
    voters: Gauge,
    learners: Gauge,
    matched: Family<PeerLabels, Gauge>,
    snapshot_size: Gauge,
    outbox_pending: Gauge,
    outbox_lag: Gauge,
    /// Where the snapshots are, once [`Metrics::watch_snapshots`] said so.
    snapshot_dir: Mutex<Option<PathBuf>>,
}

fn rpc_histogram() -> Histogram {
    Histogram::new(RPC_BUCKETS)
}

impl Metrics {
    /// A registry for node `node_id` of `shard_group` (exported once, as `metamesh_node_info`;
    /// the scrape target's labels identify the node on every other series).
    pub fn new(node_id: u64, shard_group: &str) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "metamesh_node",
            "The node's identity",
            Info::new(vec![
                ("node_id".to_owned(), node_id.to_string()),
                ("shard_group".to_owned(), shard_group.to_owned()),
                ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        );
        let rpc_duration = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(rpc_histogram);
        registry.register_with_unit(
            "metamesh_rpc_duration",
            "Time from receiving a gRPC request to sending its status (the whole stream for streaming calls)",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let term = gauge("metamesh_raft_term", "Current Raft term");
        let leader_id =
            gauge("metamesh_raft_leader_id", "Id of the leader this replica knows of; 0 when it knows none");
        let is_leader = gauge("metamesh_raft_is_leader", "1 when this replica is the leader, else 0");
        let last_log_index = gauge("metamesh_raft_last_log_index", "Index of the last entry in this replica's log");
        let last_applied = gauge(
            "metamesh_raft_last_applied_index",
            "Index of the last entry applied to this replica's state machine",
        );
        let apply_lag = gauge(
            "metamesh_raft_apply_lag_entries",
            "Log entries not yet applied: last log index - last applied index",
        );
        let snapshot_index = gauge("metamesh_raft_snapshot_index", "Index of the last entry in the newest snapshot");
        let purged_index =
            gauge("metamesh_raft_purged_index", "Index of the last entry removed from the log by compaction");
        let voters = gauge("metamesh_raft_voters", "Voting members of the group, as this replica knows it");
        let learners = gauge("metamesh_raft_learners", "Non-voting members of the group, as this replica knows it");
        let matched = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "metamesh_raft_matched_index",
            "On the leader only: index of the last entry each replica is known to hold",
            matched.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "metamesh_outbox_pending",
            "Cross-shard lineage references waiting in this shard's outbox",
            outbox_pending.clone(),
        );
        let outbox_lag = Gauge::default();
        registry.register_with_unit(
            "metamesh_outbox_lag",
            "Age of the oldest undelivered outbox entry: the delivery lag of cross-shard lineage; 0 when empty",
            Unit::Other("milliseconds".into()),
            outbox_lag.clone(),
        );
        let snapshot_size = Gauge::default();
        registry.register_with_unit(
            "metamesh_raft_snapshot_size",
            "Size of the newest snapshot file, read at scrape time; 0 when there is none",
            Unit::Bytes,
            snapshot_size.clone(),
        );
        Metrics {
            registry,
            rpc_duration,
            term,
            leader_id,
            is_leader,
            last_log_index,
            last_applied,
            apply_lag,
            snapshot_index,
            purged_index,
            voters,
            learners,
            matched,
            snapshot_size,
            outbox_pending,
            outbox_lag,
            snapshot_dir: Mutex::new(None),
        }
    }

    /// Records one finished RPC.
    pub fn observe_rpc(&self, service: &str, method: &str, code: tonic::Code, elapsed: Duration) {
        let labels = RpcLabels { service: service.to_owned(), method: method.to_owned(), code: code_name(code) };
        self.rpc_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Records the replica's Raft state.
    pub fn record_raft(&self, sample: &RaftSample) {
        let index = |i: Option<u64>| i.unwrap_or(0) as i64;
        self.term.set(sample.term as i64);
        self.leader_id.set(sample.leader.unwrap_or(0) as i64);
        self.is_leader.set(i64::from(sample.is_leader));
        self.last_log_index.set(index(sample.last_log_index));
        self.last_applied.set(index(sample.last_applied));
        self.apply_lag.set(index(sample.last_log_index).saturating_sub(index(sample.last_applied)).max(0));
        self.snapshot_index.set(index(sample.snapshot_index));
        self.purged_index.set(index(sample.purged_index));
        self.voters.set(sample.voters as i64);
        self.learners.set(sample.learners as i64);
        // Only the leader tracks its followers: the series go when leadership does.
        self.matched.clear();
        for (node, matched) in &sample.matched {
            self.matched.get_or_create(&PeerLabels { node_id: node.to_string() }).set(index(*matched));
        }
    }

    /// Records the outbox backlog: entries waiting and the age of the oldest, in milliseconds.
    pub fn record_outbox(&self, pending: u64, lag_ms: u64) {
        self.outbox_pending.set(pending as i64);
        self.outbox_lag.set(lag_ms as i64);
    }

    /// Makes every scrape report the size of the newest `*.sqlite` file in `dir`.
    pub fn watch_snapshots(&self, dir: PathBuf) {
        *self.snapshot_dir.lock().expect("snapshot dir poisoned") = Some(dir);
    }

    /// The registry in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let dir = self.snapshot_dir.lock().expect("snapshot dir poisoned").clone();
        if let Some(dir) = dir {
            self.snapshot_size.set(newest_snapshot_size(&dir) as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The size of the most recently modified `*.sqlite` file in `dir`; 0 when there is none.
fn newest_snapshot_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sqlite"))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .max_by_key(|m| m.modified().ok())
        .map_or(0, |m| m.len())
}

/// The canonical gRPC name of a status code, as the gRPC specification writes it.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rpc_and_raft_series() {
        let metrics = Metrics::new(2, "s1");
        metrics.observe_rpc("metamesh.v1.CatalogService", "Put", tonic::Code::Ok, Duration::from_millis(3));
        metrics.record_raft(&RaftSample {
            term: 4,
            leader: Some(2),
            is_leader: true,
            last_log_index: Some(10),
            last_applied: Some(7),
            matched: vec![(1, Some(9)), (3, None)],
            voters: 3,
            ..Default::default()
        });
        let text = metrics.render();
        let info =
            format!(r#"metamesh_node_info{{node_id="2",shard_group="s1",version="{}"}} 1"#, env!("CARGO_PKG_VERSION"));
        for line in [
            info.as_str(),
            "metamesh_rpc_duration_seconds_count{service=\"metamesh.v1.CatalogService\",method=\"Put\",code=\"OK\"} 1",
            "metamesh_raft_term 4",
            "metamesh_raft_leader_id 2",
            "metamesh_raft_is_leader 1",
            "metamesh_raft_apply_lag_entries 3",
            "metamesh_raft_matched_index{node_id=\"1\"} 9",
            "metamesh_raft_matched_index{node_id=\"3\"} 0",
            "metamesh_raft_snapshot_size_bytes 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");

        metrics.record_raft(&RaftSample { term: 5, leader: Some(1), ..Default::default() });
        let text = metrics.render();
        assert!(!text.contains("metamesh_raft_matched_index{"), "a follower kept leader-only series:\n{text}");
    }

    #[test]
    fn snapshot_size_is_the_newest_sqlite_file() {
        let dir = std::env::temp_dir().join(format!("metamesh-telemetry-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let older = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::write(dir.join("1-2-9.sqlite"), vec![0u8; 250]).unwrap();
        std::fs::write(dir.join("1-1-5.sqlite"), vec![0u8; 100]).unwrap();
        std::fs::File::options().write(true).open(dir.join("1-1-5.sqlite")).unwrap().set_modified(older).unwrap();
        std::fs::write(dir.join("1-2-9.json"), vec![0u8; 9999]).unwrap();
        assert_eq!(newest_snapshot_size(&dir), 250);
        assert_eq!(newest_snapshot_size(&dir.join("missing")), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
