//! The write pipeline: revision order, time, request ids, batches, persistence.

mod common;

use common::*;
use metamesh_core::{AsOf, Command, CommandError, EdgeKind, Kind, Outcome, Proposal};
use metamesh_store::{Store, StoreError, StoreOptions};
use serde_json::json;

const A: &str = "mm://acme/dataset/a";
const B: &str = "mm://acme/dataset/b";
const RUN: &str = "mm://acme/run/r";

#[tokio::test]
async fn revisions_must_increase() {
    let s = TestStore::with_tenant().await;
    let p = Proposal::new(put(A), s.now_ms, PRINCIPAL);
    let before = s.export().await.unwrap();
    for (given, last) in [(1, 1), (0, 1)] {
        match s.store().apply(given, &p).await {
            Err(StoreError::OutOfOrder { last: l, given: g }) => assert_eq!((l, g), (last, given)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.export().await.unwrap(), before, "an out-of-order apply writes nothing");
    assert_eq!(s.applied_revision().await.unwrap(), 1);

    // Gaps are allowed (log entries that are not commands take indexes too).
    let applied = s.store().apply(5, &p).await.unwrap();
    assert_eq!(applied.revision, 5);
    assert!(applied.result.is_ok());
    assert_eq!(s.current(A).await.revision, 5);
    assert_eq!(s.applied_revision().await.unwrap(), 5);
    for given in [4, 5, u64::MAX] {
        assert!(matches!(s.store().apply(given, &p).await, Err(StoreError::OutOfOrder { last: 5, .. })), "{given}");
    }
    assert!(s.store().apply(6, &p).await.unwrap().result.is_ok());
    assert_eq!(s.current(A).await.version, 2);
}

#[tokio::test]
async fn refused_commands_still_take_their_revision() {
    let mut s = TestStore::with_tenant().await;
    let a = s.apply(put("mm://nope/dataset/x")).await;
    assert!(a.result.is_err());
    assert_eq!(s.applied_revision().await.unwrap(), 2);
    let export = s.export().await.unwrap();
    let line = export.lines().find(|l| l.starts_with("revisions\t[2,")).unwrap();
    assert!(line.contains("unknown tenant"), "the refusal is recorded: {line}");
    assert_eq!(s.ok(put(A)).await, Outcome::Entity { urn: eu(A), version: 1 });
    assert_eq!(s.current(A).await.revision, 3);
}

#[tokio::test]
async fn time_never_runs_backwards() {
    let mut s = TestStore::new().await;
    s.now_ms = 10_000;
    assert_eq!(s.apply(create_tenant("acme")).await.at_ms, 10_000);
    s.now_ms = 5_000;
    let a = s.apply(put(A)).await;
    assert_eq!(a.at_ms, 10_000, "clamped to the previous time");
    let e = s.current(A).await;
    assert_eq!((e.created_at_ms, e.updated_at_ms), (10_000, 10_000));
    s.now_ms = 20_000;
    assert_eq!(s.apply(put(A)).await.at_ms, 20_000);
    assert_eq!(s.current(A).await.updated_at_ms, 20_000);
    // A refused command's time counts too.
    s.now_ms = 30_000;
    s.err(delete("mm://acme/dataset/ghost")).await;
    s.now_ms = 25_000;
    assert_eq!(s.apply(put(B)).await.at_ms, 30_000);

    // Time-based reads follow the recorded (clamped) times.
    assert_eq!(s.resolve_as_of(Some(AsOf::TimeMs(10_000))).await.unwrap(), Some(2));
    assert_eq!(s.resolve_as_of(Some(AsOf::TimeMs(9_999))).await.unwrap(), Some(0));
    assert_eq!(s.resolve_as_of(Some(AsOf::TimeMs(30_000))).await.unwrap(), Some(5));
    assert!(s.get_entity(&vu(B), Some(AsOf::TimeMs(29_999))).await.unwrap().is_none());

    // The clamp survives a restart.
    s.reopen().await;
    s.now_ms = 1;
    assert_eq!(s.apply(put(B)).await.at_ms, 30_000);
}

#[tokio::test]
async fn request_ids_make_retries_idempotent() {
    let mut s = TestStore::with_tenant().await;
    let first = s.apply_as("alice", Some("req-1"), put(A)).await;
    assert_eq!(first.result, Ok(Outcome::Entity { urn: eu(A), version: 1 }));
    assert_eq!(first.duplicate_of, None);

    let before = s.state_without_revisions().await;
    let retry = s.apply_as("alice", Some("req-1"), put(A)).await;
    assert_eq!(retry.result, first.result, "a retry returns the first outcome");
    assert_eq!(retry.duplicate_of, Some(first.revision));
    assert_eq!(retry.revision, first.revision + 1);
    // Even a different command under the same id is the same request.
    let other = s.apply_as("alice", Some("req-1"), delete(A)).await;
    assert_eq!((other.result, other.duplicate_of), (first.result.clone(), Some(first.revision)));
    assert_eq!(s.state_without_revisions().await, before, "retries write nothing");
    assert_eq!(s.current(A).await.version, 1);

    // The same id from another principal is another request.
    let bob = s.apply_as("bob", Some("req-1"), put(A)).await;
    assert_eq!((bob.result, bob.duplicate_of), (Ok(Outcome::Entity { urn: eu(A), version: 2 }), None));
    assert_eq!(s.current(A).await.updated_by, "bob");
    // Another id, or none, is another request.
    assert_eq!(version_of(s.apply_as("alice", Some("req-2"), put(A)).await.result.unwrap()), 3);
    assert_eq!(version_of(s.apply_as("alice", None, put(A)).await.result.unwrap()), 4);
    assert_eq!(version_of(s.apply_as("alice", None, put(A)).await.result.unwrap()), 5);

    // A batch's outcome is returned whole; and ids survive a restart.
    let cmd = Command::Batch { commands: vec![put(B), put(RUN)] };
    let batch = s.apply_as("alice", Some("req-3"), cmd.clone()).await;
    assert!(matches!(&batch.result, Ok(Outcome::Batch { outcomes }) if outcomes.len() == 2));
    s.reopen().await;
    let again = s.apply_as("alice", Some("req-3"), cmd).await;
    assert_eq!((again.result, again.duplicate_of), (batch.result, Some(batch.revision)));
    assert_eq!(s.current(B).await.version, 1);

    // A malformed request id is refused like any bad field.
    let bad = s.apply_as("alice", Some("bad\nid"), put(A)).await;
    assert_eq!(bad.result.unwrap_err().field(), Some("request_id"));
}

#[tokio::test]
async fn batch_applies_all_in_order_at_one_revision() {
    let mut s = TestStore::with_tenant().await;
    let out = s
        .ok(Command::Batch {
            commands: vec![
                create_tenant("beta"),
                register("beta", "Table", Kind::Dataset, table_schema()),
                put_typed("mm://beta/dataset/t", "Table", json!({"location": "s3://t"})),
                put(RUN),
                add_edge("mm://beta/dataset/t", EdgeKind::Consumed, RUN),
                put_doc(RUN, "log", "ok"),
            ],
        })
        .await;
    let Outcome::Batch { outcomes } = out else { panic!("{out:?}") };
    assert_eq!(
        outcomes,
        vec![
            Outcome::Tenant { tenant: tenant("beta") },
            Outcome::Schema { tenant: tenant("beta"), type_name: type_name("Table"), version: 1 },
            Outcome::Entity { urn: eu("mm://beta/dataset/t"), version: 1 },
            Outcome::Entity { urn: eu(RUN), version: 1 },
            Outcome::Edge { changed: true },
            Outcome::Document { urn: eu(RUN), title: "log".into(), version: 1 },
        ]
    );
    assert_eq!(s.current(RUN).await.revision, s.rev);
    assert!(s.changes_since(0, 100).await.unwrap().iter().skip(1).all(|c| c.revision == s.rev));
    assert_eq!(s.ok(Command::Batch { commands: vec![] }).await, Outcome::Batch { outcomes: vec![] });
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let mut s = TestStore::with_tenant().await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;

    // A stateless failure names the element.
    let mut bad_tag = spec(B);
    bad_tag.tags.insert(" ".into());
    let e =
        s.refused(Command::Batch { commands: vec![create_tenant("beta"), put(A), Command::PutEntity(bad_tag)] }).await;
    assert_eq!(e.field(), Some("commands[2].tags"), "{e}");
    assert_eq!(s.tenants().await.unwrap(), vec![tenant("acme")]);

    let mut big = spec(B);
    big.description = Some("x".repeat(metamesh_core::limits::MAX_DESCRIPTION_BYTES + 1));
    let e = s.refused(Command::Batch { commands: vec![put(A), Command::PutEntity(big)] }).await;
    assert_eq!(e.field(), Some("commands[1].description"), "{e}");

    // Stateful failures late in the batch undo the earlier elements.
    let e = s.refused(Command::Batch { commands: vec![create_tenant("beta"), put(A), put(B), delete(RUN)] }).await;
    assert_eq!(e, CommandError::NotFound(RUN.into()).in_batch(3));
    let mut conflict = spec(B);
    conflict.expect_version = Some(3);
    let e = s.refused(Command::Batch { commands: vec![put(A), Command::PutEntity(conflict), put(RUN)] }).await;
    assert_eq!(e, CommandError::VersionConflict { urn: B.into(), expected: 3, actual: 0 }.in_batch(1));
    let e = s.refused(Command::Batch { commands: vec![put(A), put(RUN), add_edge(A, EdgeKind::Consumed, B)] }).await;
    assert!(
        matches!(e, CommandError::InBatch { index: 2, ref source } if matches!(**source, CommandError::EdgeEndpoint { .. })),
        "{e}"
    );
    let e = s.refused(Command::Batch { commands: vec![create_tenant("beta"), create_tenant("beta")] }).await;
    assert_eq!(e, CommandError::TenantExists(tenant("beta")).in_batch(1));

    // Batches do not nest.
    let e = s.refused(Command::Batch { commands: vec![Command::Batch { commands: vec![put(A)] }] }).await;
    assert_eq!(e.field(), Some("commands[0]"), "{e}");
    assert!(s.get_entity(&vu(A), None).await.unwrap().is_none());
}

/// A refusal inside a batch must say which element failed. A schema violation names the type
/// and the property path, which are the same for every put of that type in the batch.
#[tokio::test]
async fn batch_schema_violation_names_the_failing_element() {
    let mut s = TestStore::with_tenant().await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    let e = s
        .refused(Command::Batch {
            commands: vec![
                put_typed(A, "Table", json!({"location": "s3://a"})),
                put_typed(B, "Table", json!({"location": "s3://b", "rows": -1})),
                put_typed("mm://acme/dataset/c", "Table", json!({"location": "s3://c"})),
            ],
        })
        .await;
    assert!(
        matches!(e, CommandError::InBatch { index: 1, ref source } if matches!(**source, CommandError::SchemaViolation { .. })),
        "{e}"
    );
    assert_eq!(e.field(), Some("properties"));
    let text = e.to_string();
    assert!(text.starts_with("commands[1]: ") && text.contains("/rows"), "the failing element is not named: {text}");
}

#[tokio::test]
async fn same_urn_twice_in_a_batch() {
    let mut s = TestStore::with_tenant().await;
    let mut first = spec(A);
    first.properties = json!({"n": 1});
    first.expect_version = Some(0);
    let mut second = spec(A);
    second.properties = json!({"n": 2});
    second.expect_version = Some(1);
    let out =
        s.ok(Command::Batch { commands: vec![Command::PutEntity(first), put(B), Command::PutEntity(second)] }).await;
    assert_eq!(
        out,
        Outcome::Batch {
            outcomes: vec![
                Outcome::Entity { urn: eu(A), version: 1 },
                Outcome::Entity { urn: eu(B), version: 1 },
                Outcome::Entity { urn: eu(A), version: 2 },
            ]
        }
    );
    let rev = s.rev;
    let cur = s.current(A).await;
    assert_eq!((cur.version, cur.revision, &cur.properties), (2, rev, &json!({"n": 2})));
    assert_eq!(s.get_entity(&vu(&format!("{A}@1")), None).await.unwrap().unwrap().properties, json!({"n": 1}));
    let as_of = s.get_entity(&vu(A), Some(AsOf::Revision(rev))).await.unwrap().unwrap();
    assert_eq!(as_of.version, 2, "as of the batch's revision, its last write");
    assert_eq!(s.versions(&eu(A), 0, 10).await.unwrap().len(), 2);
    assert_eq!(s.list_entities(&Default::default(), None, None, 10).await.unwrap().items.len(), 2);

    // put, delete, put in one batch; an edge in the batch pins the version written before it.
    s.ok(put(RUN)).await;
    let out = s
        .ok(Command::Batch { commands: vec![put(A), delete(A), put(A), add_edge(A, EdgeKind::Consumed, RUN), put(A)] })
        .await;
    let Outcome::Batch { outcomes } = out else { panic!() };
    let versions: Vec<Option<u64>> =
        outcomes.iter().map(|o| if let Outcome::Entity { version, .. } = o { Some(*version) } else { None }).collect();
    assert_eq!(versions, vec![Some(3), Some(4), Some(5), None, Some(6)]);
    let e = s.edges_of(&[eu(RUN)], metamesh_core::Direction::Upstream, &[], None).await.unwrap();
    assert_eq!(e[0].from.version, Some(5));
    assert!(!s.current(A).await.deleted);
}

#[tokio::test]
async fn reopen_persists_everything_in_the_file() {
    let mut s = TestStore::with_tenant().await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    s.ok(put_typed(A, "Table", json!({"location": "s3://a", "rows": 1}))).await;
    s.ok(put(RUN)).await;
    s.ok(add_edge(A, EdgeKind::Consumed, RUN)).await;
    s.ok(put_doc(A, "readme", "persisted capybara")).await;
    s.ok(delete(RUN)).await;
    let export = s.export().await.unwrap();
    let digest = s.digest().await.unwrap();
    let rev = s.rev;

    s.reopen().await;
    assert_eq!(s.export().await.unwrap(), export);
    assert_eq!(s.digest().await.unwrap(), digest);
    assert_eq!(s.applied_revision().await.unwrap(), rev);
    assert_eq!(s.current(A).await.properties, json!({"location": "s3://a", "rows": 1}));
    assert_eq!(s.search("capybara", &Default::default(), None, 10).await.unwrap().items.len(), 1);
    // Writing continues where it stopped; the validator cache is rebuilt.
    let e = s.refused(put_typed(A, "Table", json!({"location": "s3://a", "rows": -1}))).await;
    assert!(matches!(e, CommandError::SchemaViolation { .. }));
    assert_eq!(version_of(s.ok(put(A)).await), 2);
    let p = Proposal::new(put(A), s.now_ms, PRINCIPAL);
    assert!(matches!(s.store().apply(rev, &p).await, Err(StoreError::OutOfOrder { .. })));

    // The data is in the file itself: after closing, a copy of the file opened elsewhere holds
    // the same state.
    let export = s.export().await.unwrap();
    let path = s.path().to_owned();
    let dir = s.close_keep_dir().await;
    assert!(path.starts_with(dir.path()) && std::fs::metadata(&path).unwrap().len() > 0);
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let other = Store::open(&copy, StoreOptions { synchronous_full: false, readers: 1 }).await.unwrap();
    assert_eq!(other.export().await.unwrap(), export);
    assert_eq!(other.applied_revision().await.unwrap(), rev + 2);
    other.close().await;
}

/// Several log entries in one transaction (what a Raft apply batch does): a refused entry is
/// rolled back alone, later entries see earlier ones, and a store failure writes none of them.
#[tokio::test]
async fn an_apply_batch_is_one_transaction_with_a_savepoint_per_entry() {
    let s = TestStore::with_tenant().await;
    let at = s.now_ms;
    let p = |cmd: Command| Proposal::new(cmd, at, PRINCIPAL);
    let mut retried = p(put(B));
    retried.request_id = Some("req-1".into());
    let entries = vec![
        (2, p(put(A))),
        // Refused: the tenant it creates must not outlive it, even for the entries after it.
        (3, p(Command::Batch { commands: vec![create_tenant("beta"), put("mm://nope/dataset/x")] })),
        (4, p(put("mm://beta/dataset/x"))),
        (5, retried.clone()),
        // Sees the put of revision 2 in the same transaction.
        (6, p(put(A))),
        (7, retried),
    ];
    let applied = s.store().apply_batch(entries, Some(("k".into(), "v".into()))).await.unwrap();
    let results: Vec<_> = applied.iter().map(|a| (a.revision, a.result.is_ok(), a.duplicate_of)).collect();
    assert_eq!(
        results,
        [(2, true, None), (3, false, None), (4, false, None), (5, true, None), (6, true, None), (7, true, Some(5))]
    );
    assert!(matches!(&applied[2].result, Err(CommandError::UnknownTenant(t)) if t.as_str() == "beta"));
    assert_eq!(s.current(A).await.version, 2);
    assert_eq!(s.current(A).await.revision, 6);
    assert_eq!(s.tenants().await.unwrap().len(), 1, "the refused entry's tenant was rolled back");
    assert_eq!(s.meta("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(s.applied_revision().await.unwrap(), 7);

    // A store failure in the middle (revision 9 after 10) rolls back the whole batch, and the
    // writer's cached state with it: the next batch starts from revision 7 again.
    let before = s.export().await.unwrap();
    let failing = vec![(8, p(put(B))), (10, p(put(B))), (9, p(put(B)))];
    assert!(matches!(
        s.store().apply_batch(failing, Some(("k".into(), "w".into()))).await,
        Err(StoreError::OutOfOrder { last: 10, given: 9 })
    ));
    assert_eq!(s.export().await.unwrap(), before, "nothing of a failed batch is written");
    assert_eq!(s.meta("k").await.unwrap().as_deref(), Some("v"));
    let applied = s.store().apply(8, &p(put(B))).await.unwrap();
    assert_eq!(applied.result.unwrap(), Outcome::Entity { urn: eu(B), version: 2 });
}

/// The writer never checkpoints inside a commit; the checkpointer thread copies the WAL into the
/// main file shortly after writes. Without it the main file would stay as the migrations left it
/// and the WAL would grow without end.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    let mut s = TestStore::with_tenant().await;
    let main = s.store().path().to_owned();
    let wal = std::path::PathBuf::from(format!("{}-wal", main.display()));
    let before = std::fs::metadata(&main).unwrap().len();
    let commands = (0..2_000).map(|i| put(&format!("mm://acme/dataset/wal{i}"))).collect();
    s.ok(Command::Batch { commands }).await;
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the batch went to the WAL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&main).unwrap().len() <= before {
        assert!(std::time::Instant::now() < deadline, "the main file never grew: no checkpoint ran");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(s.current("mm://acme/dataset/wal1999").await.version >= 1);
}
