//! openraft's own storage conformance suite (`openraft::testing::Suite`) run against the real log
//! store and state machine, each on fresh SQLite files: appends, truncation, purges, votes,
//! initial state after restarts, applies and snapshots as openraft expects them.

use metamesh_raft::{LogStore, SharedStore, StateMachine, TypeConfig};
use metamesh_store::StoreOptions;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Fresh;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Fresh {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = LogStore::open(&dir.path().join("raft-log.sqlite")).await.expect("the log opens");
        let shared = SharedStore::open(dir.path(), StoreOptions::default()).await.expect("the store opens");
        Ok((dir, log, StateMachine::new(std::sync::Arc::new(shared))))
    }
}

#[test]
fn the_log_store_and_state_machine_pass_openraft_s_suite() {
    if let Err(e) = Suite::test_all(Fresh) {
        panic!("openraft's storage suite failed: {e}");
    }
}
