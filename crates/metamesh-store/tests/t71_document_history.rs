//! Listing documents with their history (`Store::list_documents`): latest versions or every
//! version, with or without deleted documents, as of a revision, paged.

mod common;

use common::*;
use metamesh_core::{AsOf, Command, CommandError, Document};
use metamesh_store::read::DocumentFilter;
use metamesh_store::StoreError;

const M: &str = "mm://acme/model/churn";

fn shown(docs: &[Document]) -> Vec<(&str, u32, bool)> {
    docs.iter().map(|d| (d.title.as_str(), d.version, d.deleted)).collect()
}

fn filter(all_versions: bool, include_deleted: bool) -> DocumentFilter {
    DocumentFilter { title: None, all_versions, include_deleted }
}

fn delete_doc(title: &str) -> Command {
    Command::DeleteDocument { urn: eu(M), title: title.into() }
}

/// `card` v1 (rev 3), v2 (4); `runbook` v1 (5), deleted as v2 (6); `notes` v1 (7), deleted as
/// v2 (8), written again as v3 (9).
async fn history() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    s.ok(put(M)).await;
    s.ok(put_doc(M, "card", "first card")).await;
    s.ok(put_doc(M, "card", "second card")).await;
    s.ok(put_doc(M, "runbook", "page someone")).await;
    s.ok(delete_doc("runbook")).await;
    s.ok(put_doc(M, "notes", "old notes")).await;
    s.ok(delete_doc("notes")).await;
    s.ok(put_doc(M, "notes", "new notes")).await;
    assert_eq!(s.rev, 9);
    s
}

#[tokio::test]
async fn latest_versions_with_and_without_deleted_documents() {
    let s = history().await;
    let live = s.list_documents(&eu(M), &filter(false, false), None, None, 100).await.unwrap();
    assert_eq!(shown(&live.items), [("card", 2, false), ("notes", 3, false)]);
    assert_eq!(live.items, s.documents(&eu(M), None).await.unwrap(), "the same as the live listing");

    let with_deleted = s.list_documents(&eu(M), &filter(false, true), None, None, 100).await.unwrap();
    assert_eq!(shown(&with_deleted.items), [("card", 2, false), ("notes", 3, false), ("runbook", 2, true)]);
}

#[tokio::test]
async fn every_version_newest_first() {
    let s = history().await;
    let all = s.list_documents(&eu(M), &filter(true, true), None, None, 100).await.unwrap();
    assert_eq!(
        shown(&all.items),
        [
            ("card", 2, false),
            ("card", 1, false),
            ("notes", 3, false),
            ("notes", 2, true),
            ("notes", 1, false),
            ("runbook", 2, true),
            ("runbook", 1, false),
        ]
    );
    let bodies: Vec<&str> = all.items.iter().take(2).map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["second card", "first card"]);
    assert_eq!(all.items.iter().map(|d| d.revision).collect::<Vec<_>>(), [4, 3, 9, 8, 7, 6, 5]);

    // Without deleted documents: runbook (deleted now) is gone with its history, and the
    // tombstone in the middle of notes' history is left out.
    let kept = s.list_documents(&eu(M), &filter(true, false), None, None, 100).await.unwrap();
    assert_eq!(shown(&kept.items), [("card", 2, false), ("card", 1, false), ("notes", 3, false), ("notes", 1, false)]);

    let one = DocumentFilter { title: Some("notes".into()), all_versions: true, include_deleted: true };
    let notes = s.list_documents(&eu(M), &one, None, None, 100).await.unwrap();
    assert_eq!(shown(&notes.items), [("notes", 3, false), ("notes", 2, true), ("notes", 1, false)]);
}

#[tokio::test]
async fn as_of_a_revision() {
    let s = history().await;
    // At revision 7: card v2, runbook deleted, notes v1 just written.
    let at7 = Some(AsOf::Revision(7));
    let all = s.list_documents(&eu(M), &filter(true, true), at7, None, 100).await.unwrap();
    assert_eq!(
        shown(&all.items),
        [("card", 2, false), ("card", 1, false), ("notes", 1, false), ("runbook", 2, true), ("runbook", 1, false)]
    );
    let at8 = s.list_documents(&eu(M), &filter(true, false), Some(AsOf::Revision(8)), None, 100).await.unwrap();
    assert_eq!(shown(&at8.items), [("card", 2, false), ("card", 1, false)], "notes was deleted at 8");
}

#[tokio::test]
async fn pages_continue_after_the_last_title_and_version() {
    let mut s = history().await;
    let f = filter(true, true);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.list_documents(&eu(M), &f, None, token.as_deref(), 2).await.unwrap();
        seen.extend(page.items.iter().map(|d| (d.title.clone(), d.version)));
        pages += 1;
        if pages == 1 {
            // A new version of a title already passed sorts before the cursor: later pages
            // neither repeat nor skip anything.
            s.ok(put_doc(M, "card", "third card")).await;
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let expected = [("card", 2), ("card", 1), ("notes", 3), ("notes", 2), ("notes", 1), ("runbook", 2), ("runbook", 1)];
    assert_eq!(seen, expected.map(|(t, v)| (t.to_owned(), v)));

    match s.list_documents(&eu(M), &f, None, Some("e30"), 2).await {
        Err(StoreError::Invalid(CommandError::InvalidField { field, .. })) => assert_eq!(field, "page_token"),
        other => panic!("{other:?}"),
    }
}
