//! Queries: list filters, pagination, search, versions, as-of reads and the change feed.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use metamesh_core::{AsOf, Command, CommandError, Direction, EdgeKind, Kind, ListFilter, PropertyFilter, PropertyOp};
use metamesh_store::StoreError;
use proptest::prelude::*;
use serde_json::{json, Value};

fn pf(path: &str, op: PropertyOp, value: Value) -> PropertyFilter {
    PropertyFilter { path: path.into(), op, value }
}

fn invalid_field(e: StoreError) -> String {
    match e {
        StoreError::Invalid(CommandError::InvalidField { field, .. }) => field,
        StoreError::Invalid(CommandError::TooLarge { field, .. }) => field,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

/// Names (the last URN segment) of every entity the filter lists, over all pages.
async fn names(s: &TestStore, f: &ListFilter) -> Vec<String> {
    let page = s.list_entities(f, None, None, 1000).await.unwrap();
    assert!(page.next.is_none());
    page.items.iter().map(|e| e.urn.name().to_string()).collect()
}

async fn filter_fixture() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    s.ok(create_tenant("beta")).await;
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    let add = |urn: &str, tags: &[&str], owner: Option<&str>, status: Option<&str>, props: Value| {
        let mut sp = spec(urn);
        sp.tags = tags.iter().map(|t| t.to_string()).collect();
        sp.owner = owner.map(str::to_owned);
        sp.status = status.map(str::to_owned);
        sp.properties = props;
        Command::PutEntity(sp)
    };
    let cmds = vec![
        add(
            "mm://acme/dataset/a",
            &["pii", "raw"],
            Some("alice"),
            Some("active"),
            json!({"rows": 10, "score": 0.5, "fmt": "csv", "public": true}),
        ),
        add(
            "mm://acme/dataset/b",
            &["raw"],
            Some("bob"),
            None,
            json!({"rows": 20, "fmt": "parquet", "public": false, "nested": {"x": 1}}),
        ),
        add("mm://acme/model/m", &["pii"], Some("alice"), Some("prod"), json!({"rows": 30, "score": 0.9})),
        put_typed("mm://acme/dataset/typed", "Table", json!({"location": "s3://t", "rows": 5})),
        add("mm://beta/dataset/z", &[], None, None, json!({"rows": 10, "fmt": "csv"})),
    ];
    for c in cmds {
        s.ok(c).await;
    }
    s
}

#[tokio::test]
async fn list_filters() {
    let s = filter_fixture().await;
    let f = |build: &dyn Fn(&mut ListFilter)| {
        let mut f = ListFilter::default();
        build(&mut f);
        f
    };
    let prop = |path: &str, op, value: Value| f(&|x| x.properties = vec![pf(path, op, value.clone())]);
    let cases: Vec<(&str, ListFilter, &[&str])> = vec![
        ("all", ListFilter::default(), &["a", "b", "m", "typed", "z"]),
        ("kind", f(&|x| x.kind = Some(Kind::Dataset)), &["a", "b", "typed", "z"]),
        ("tenant", f(&|x| x.tenant = Some(tenant("beta"))), &["z"]),
        ("type", f(&|x| x.type_name = Some(type_name("Table"))), &["typed"]),
        ("tag", f(&|x| x.tags = vec!["pii".into()]), &["a", "m"]),
        ("all tags", f(&|x| x.tags = vec!["pii".into(), "raw".into()]), &["a"]),
        ("unknown tag", f(&|x| x.tags = vec!["nope".into()]), &[]),
        ("owner", f(&|x| x.owner = Some("alice".into())), &["a", "m"]),
        ("status", f(&|x| x.status = Some("prod".into())), &["m"]),
        ("eq", prop("rows", PropertyOp::Eq, json!(10)), &["a", "z"]),
        ("ne", prop("rows", PropertyOp::Ne, json!(10)), &["b", "m", "typed"]),
        ("lt", prop("rows", PropertyOp::Lt, json!(20)), &["a", "typed", "z"]),
        ("le", prop("rows", PropertyOp::Le, json!(20)), &["a", "b", "typed", "z"]),
        ("gt", prop("rows", PropertyOp::Gt, json!(20)), &["m"]),
        ("ge", prop("rows", PropertyOp::Ge, json!(20)), &["b", "m"]),
        ("float gt", prop("score", PropertyOp::Gt, json!(0.6)), &["m"]),
        ("float le", prop("score", PropertyOp::Le, json!(0.5)), &["a"]),
        ("int vs float", prop("rows", PropertyOp::Lt, json!(10.5)), &["a", "typed", "z"]),
        ("string", prop("fmt", PropertyOp::Eq, json!("csv")), &["a", "z"]),
        ("string ne", prop("fmt", PropertyOp::Ne, json!("csv")), &["b"]),
        ("true", prop("public", PropertyOp::Eq, json!(true)), &["a"]),
        ("false", prop("public", PropertyOp::Eq, json!(false)), &["b"]),
        ("absent", prop("score", PropertyOp::Eq, Value::Null), &["b", "typed", "z"]),
        ("present", prop("score", PropertyOp::Ne, Value::Null), &["a", "m"]),
        ("nested", prop("nested.x", PropertyOp::Eq, json!(1)), &["b"]),
        (
            "combined",
            f(&|x| {
                x.kind = Some(Kind::Dataset);
                x.tags = vec!["raw".into()];
                x.owner = Some("bob".into());
                x.properties = vec![pf("rows", PropertyOp::Ge, json!(20)), pf("fmt", PropertyOp::Eq, json!("parquet"))];
            }),
            &["b"],
        ),
        (
            "combined, none",
            f(&|x| {
                x.owner = Some("alice".into());
                x.kind = Some(Kind::Dataset);
                x.status = Some("prod".into());
            }),
            &[],
        ),
    ];
    for (name, filter, want) in cases {
        assert_eq!(names(&s, &filter).await, want, "{name}");
    }
}

#[tokio::test]
async fn bad_query_arguments_are_typed_errors() {
    let s = filter_fixture().await;
    let all = ListFilter::default();
    for token in ["garbage!", "AAAA", "eyJ4IjoxfQ", ""] {
        let e = s.list_entities(&all, None, Some(token), 10).await.unwrap_err();
        assert_eq!(invalid_field(e), "page_token", "{token:?}");
        let e = s.search("a", &all, Some(token), 10).await.unwrap_err();
        assert_eq!(invalid_field(e), "page_token", "{token:?}");
    }
    for size in [0, 1001] {
        assert_eq!(invalid_field(s.list_entities(&all, None, None, size).await.unwrap_err()), "page_size");
        assert_eq!(invalid_field(s.search("raw", &all, None, size).await.unwrap_err()), "page_size");
        assert_eq!(invalid_field(s.versions(&eu("mm://acme/dataset/a"), 0, size).await.unwrap_err()), "page_size");
        assert_eq!(invalid_field(s.changes_since(0, size).await.unwrap_err()), "page_size");
    }
    assert_eq!(s.list_entities(&all, None, None, 1000).await.unwrap().items.len(), 5);
    for (path, op, value) in [
        ("a..b", PropertyOp::Eq, json!(1)),
        ("", PropertyOp::Eq, json!(1)),
        ("a b", PropertyOp::Eq, json!(1)),
        ("$.rows", PropertyOp::Eq, json!(1)),
        ("rows') OR 1=1 --", PropertyOp::Eq, json!(1)),
        ("rows", PropertyOp::Lt, Value::Null),
        ("rows", PropertyOp::Eq, json!([1])),
        ("rows", PropertyOp::Eq, json!({"a": 1})),
    ] {
        let f = ListFilter { properties: vec![pf(path, op, value.clone())], ..Default::default() };
        let field = invalid_field(s.list_entities(&f, None, None, 10).await.unwrap_err());
        assert!(field.contains("property filter") && field.contains(path), "{path:?}: {field}");
        let field = invalid_field(s.search("raw", &f, None, 10).await.unwrap_err());
        assert!(field.contains("property filter"), "{field}");
    }
}

#[tokio::test]
async fn pagination_returns_every_entity_once() {
    let mut s = TestStore::with_tenant().await;
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(put(&format!("mm://acme/dataset/d{i:02}")));
    }
    s.ok(Command::Batch { commands: batch }).await;
    for size in [1, 4, 5, 24, 25, 26] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s.list_entities(&ListFilter::default(), None, token.as_deref(), size).await.unwrap();
            assert!(page.items.len() <= size);
            seen.extend(page.items.iter().map(|e| e.urn.name().to_string()));
            pages += 1;
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let want: Vec<String> = (0..25).map(|i| format!("d{i:02}")).collect();
        assert_eq!(seen, want, "page size {size}: every entity exactly once, in creation order");
        assert_eq!(pages, 25usize.div_ceil(size), "page size {size}");
    }
}

#[tokio::test]
async fn a_cursor_keeps_reading_its_snapshot() {
    let mut s = TestStore::with_tenant().await;
    for i in 0..10 {
        s.put_props(&format!("mm://acme/dataset/d{i}"), json!({"i": i})).await;
    }
    let first = s.list_entities(&ListFilter::default(), None, None, 3).await.unwrap();
    let mut seen = urns_of(&first.items);
    // Writes after the first page.
    for i in 10..15 {
        s.ok(put(&format!("mm://acme/dataset/d{i}"))).await;
    }
    s.put_props("mm://acme/dataset/d8", json!({"i": "changed"})).await;
    s.ok(delete("mm://acme/dataset/d9")).await;
    s.ok(delete("mm://acme/dataset/d0")).await;

    let mut token = first.next;
    let mut items = Vec::new();
    while let Some(t) = token {
        let page = s.list_entities(&ListFilter::default(), None, Some(&t), 3).await.unwrap();
        items.extend(page.items);
        token = page.next;
    }
    seen.extend(urns_of(&items));
    let want: Vec<String> = (0..10).map(|i| format!("mm://acme/dataset/d{i}")).collect();
    assert_eq!(seen, want, "new entities are not in later pages; deleted ones still are");
    let d8 = items.iter().find(|e| e.urn.name() == "d8").unwrap();
    assert_eq!((d8.version, &d8.properties), (1, &json!({"i": 8})));
    assert!(items.iter().all(|e| !e.deleted));

    // A fresh listing sees the current state.
    let now = s.list_entities(&ListFilter::default(), None, None, 100).await.unwrap();
    assert_eq!(now.items.len(), 13);
}

/// A listing asked as of a revision the shard has not reached yet reads the current state; its
/// cursor must still pin a snapshot rather than let later writes into the following pages.
#[tokio::test]
async fn a_cursor_from_a_future_revision_is_still_a_snapshot() {
    let mut s = TestStore::with_tenant().await;
    for i in 0..4 {
        s.ok(put(&format!("mm://acme/dataset/d{i}"))).await;
    }
    let future = Some(AsOf::Revision(s.rev + 100));
    let first = s.list_entities(&ListFilter::default(), future, None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    s.ok(put("mm://acme/dataset/late")).await;
    let mut total = first.items.len();
    let mut token = first.next;
    while let Some(t) = token {
        let page = s.list_entities(&ListFilter::default(), None, Some(&t), 2).await.unwrap();
        total += page.items.len();
        token = page.next;
    }
    assert_eq!(total, 4, "an entity written after the first page appeared in a later one");
}

#[tokio::test]
async fn list_as_of_a_revision_or_time() {
    let mut s = TestStore::with_tenant().await;
    s.ok(put("mm://acme/dataset/a")).await;
    let (rev, t) = (s.rev, s.now_ms - s.tick_ms);
    s.ok(put("mm://acme/dataset/b")).await;
    s.ok(delete("mm://acme/dataset/a")).await;
    let at = |as_of| listed_as_of(&s, as_of);
    assert_eq!(at(AsOf::Revision(rev)).await, vec!["mm://acme/dataset/a"]);
    assert_eq!(at(AsOf::TimeMs(t)).await, vec!["mm://acme/dataset/a"]);
    assert!(at(AsOf::TimeMs(t - 1)).await.is_empty());
    assert!(at(AsOf::Revision(0)).await.is_empty());
    assert_eq!(at(AsOf::Revision(rev + 1)).await.len(), 2);
    assert_eq!(urns_of(&s.list_entities(&ListFilter::default(), None, None, 10).await.unwrap().items).len(), 1);
}

async fn listed_as_of(s: &TestStore, as_of: AsOf) -> Vec<String> {
    urns_of(&s.list_entities(&ListFilter::default(), Some(as_of), None, 10).await.unwrap().items)
}

#[tokio::test]
async fn versions_listing() {
    let mut s = TestStore::with_tenant().await;
    let m = "mm://acme/model/m";
    for i in 0..4 {
        s.put_props(m, json!({"i": i})).await;
    }
    s.ok(delete(m)).await;
    let urn = eu(m);
    let v = |list: Vec<metamesh_core::EntityVersion>| list.iter().map(|e| (e.version, e.deleted)).collect::<Vec<_>>();
    assert_eq!(v(s.versions(&urn, 0, 2).await.unwrap()), vec![(1, false), (2, false)]);
    assert_eq!(v(s.versions(&urn, 2, 2).await.unwrap()), vec![(3, false), (4, false)]);
    assert_eq!(v(s.versions(&urn, 4, 2).await.unwrap()), vec![(5, true)]);
    assert!(s.versions(&urn, 5, 2).await.unwrap().is_empty());
    let all = s.versions(&urn, 0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.properties["i"].clone()).collect::<Vec<_>>(), vec![0, 1, 2, 3, 3]);
    assert!(all.windows(2).all(|w| w[0].revision < w[1].revision));
    assert!(s.versions(&eu("mm://acme/model/none"), 0, 10).await.unwrap().is_empty());
}

async fn search_fixture() -> TestStore {
    let mut s = TestStore::with_tenant().await;
    s.ok(create_tenant("beta")).await;
    let add = |urn: &str, description: &str| {
        let mut sp = spec(urn);
        sp.description = Some(description.into());
        Command::PutEntity(sp)
    };
    let cmds = vec![
        add("mm://acme/model/fraud-detector", "Detects fraud in card payments; fraud scores per card."),
        add("mm://acme/dataset/payments", "All card payments of the last ten years, one row per authorization, used by many teams for reporting, fraud and finance."),
        add("mm://acme/dataset/weather", "Hourly weather, either rain OR shine."),
        add("mm://beta/dataset/fraud-labels", "Chargeback labels for fraud training."),
    ];
    for c in cmds {
        s.ok(c).await;
    }
    s
}

#[tokio::test]
async fn search_ranks_filters_and_snippets() {
    let s = search_fixture().await;
    let all = ListFilter::default();
    let page = s.search("fraud", &all, None, 10).await.unwrap();
    let found: Vec<&str> = page.items.iter().map(|h| h.entity.urn.name()).collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], "fraud-detector", "the best match first: {found:?}");
    assert!(page.items.windows(2).all(|w| w[0].score <= w[1].score));
    assert!(page.items[0].snippet.contains("«fraud»"), "{}", page.items[0].snippet);
    assert!(page.next.is_none());

    let acme = ListFilter { tenant: Some(tenant("acme")), ..Default::default() };
    assert_eq!(s.search("fraud", &acme, None, 10).await.unwrap().items.len(), 2);
    let models = ListFilter { kind: Some(Kind::Model), ..Default::default() };
    let hits = s.search("fraud", &models, None, 10).await.unwrap().items;
    assert_eq!(urns_of(hits.iter().map(|h| &h.entity)), vec!["mm://acme/model/fraud-detector"]);
    // Words are ANDed; the last one is a prefix.
    let hits = s.search("card frau", &all, None, 10).await.unwrap().items;
    assert_eq!(hits.len(), 2);
    assert!(s.search("fraud weather", &all, None, 10).await.unwrap().items.is_empty());
    // Name parts are searchable.
    assert_eq!(s.search("labels", &all, None, 10).await.unwrap().items.len(), 1);

    // Pagination: each hit once.
    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = s.search("fraud", &all, token.as_deref(), 1).await.unwrap();
        for h in &page.items {
            assert!(seen.insert(h.entity.urn.to_string()));
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
}

/// The index follows each new version: a version with the same description and tags keeps
/// the entry as it is (not re-indexed), a changed description or tag replaces it, a delete
/// removes it and a put after the delete brings it back.
#[tokio::test]
async fn search_follows_new_versions() {
    let mut s = TestStore::with_tenant().await;
    let put = |description: &str, tag: Option<&str>, status: &str| {
        let mut sp = spec("mm://acme/dataset/orders");
        sp.description = Some(description.into());
        sp.tags.extend(tag.map(str::to_owned));
        sp.status = Some(status.into());
        Command::PutEntity(sp)
    };
    s.ok(put("alpha orders", None, "v1")).await;
    assert_eq!(hits(&s, "alpha").await, 1);
    s.ok(put("alpha orders", None, "v2")).await; // same text: entry kept
    assert_eq!(hits(&s, "alpha").await, 1);
    s.ok(put("beta orders", None, "v3")).await;
    assert_eq!((hits(&s, "alpha").await, hits(&s, "beta").await), (0, 1));
    s.ok(put("beta orders", Some("gamma"), "v4")).await;
    assert_eq!(hits(&s, "gamma").await, 1);
    s.ok(Command::DeleteEntity { urn: eu("mm://acme/dataset/orders"), expect_version: None }).await;
    assert_eq!(hits(&s, "beta").await, 0);
    s.ok(put("beta orders", Some("gamma"), "v6")).await; // same text as before the delete
    assert_eq!(hits(&s, "beta").await, 1);
}

async fn hits(s: &TestStore, text: &str) -> usize {
    s.store().search(text, &ListFilter::default(), None, 10).await.unwrap().items.len()
}

#[tokio::test]
async fn hostile_search_text_is_never_sql() {
    let s = search_fixture().await;
    let all = ListFilter::default();
    for text in [
        "\"",
        "OR",
        "fraud OR",
        "NEAR(",
        "NEAR(fraud card, 2)",
        "*",
        "fraud*",
        "\"fraud",
        "'; DROP TABLE entities; --",
        "AND NOT",
        "^fraud",
        "description:fraud",
        "(",
        ")",
        "{fraud}",
        "fr\"aud",
        "\u{0}",
        "日本語",
        "-fraud",
        "+",
    ] {
        match s.search(text, &all, None, 10).await {
            Ok(_) => {}
            Err(StoreError::Invalid(CommandError::InvalidField { field, .. })) => {
                assert_eq!(field, "query", "{text:?}")
            }
            Err(e) => panic!("{text:?}: {e}"),
        }
    }
    // Operators are words: `OR` is searched for, not a disjunction.
    let hits = s.search("rain OR shine", &all, None, 10).await.unwrap().items;
    assert_eq!(urns_of(hits.iter().map(|h| &h.entity)), vec!["mm://acme/dataset/weather"]);
    assert!(s.search("fraud OR weather", &all, None, 10).await.unwrap().items.is_empty());
    let hits = s.search("description:fraud", &all, None, 10).await.unwrap().items;
    assert!(hits.is_empty(), "a column filter is not syntax");
    let e = s.search(&"w ".repeat(33), &all, None, 10).await.unwrap_err();
    assert_eq!(invalid_field(e), "query");
    // The store still works.
    assert_eq!(s.search("fraud", &all, None, 10).await.unwrap().items.len(), 3);
}

#[tokio::test]
async fn change_feed() {
    let mut s = TestStore::with_tenant().await;
    let d = "mm://acme/dataset/d";
    let r = "mm://acme/run/r";
    s.ok(register("acme", "Table", Kind::Dataset, table_schema())).await;
    s.ok(Command::Batch { commands: vec![put(d), put(r)] }).await;
    s.err(put("mm://nope/dataset/x")).await;
    s.ok(add_edge(d, EdgeKind::Consumed, r)).await;
    s.ok(add_edge(d, EdgeKind::Consumed, r)).await; // unchanged: no entry
    s.ok(put_doc(d, "readme", "hi")).await;
    s.ok(remove_edge(d, EdgeKind::Consumed, r)).await;
    s.ok(delete(d)).await;

    let feed = s.changes_since(0, 100).await.unwrap();
    let got: Vec<(u64, &str, &str)> = feed.iter().map(|c| (c.revision, c.change.as_str(), c.urn.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (1, "tenant", "mm://acme"),
            (2, "schema", "mm://acme/type/Table"),
            (3, "entity_version", d),
            (3, "entity_version", r),
            (5, "edge_added", d),
            (7, "document", d),
            (8, "edge_removed", d),
            (9, "entity_deleted", d),
        ]
    );
    assert!(feed.iter().all(|c| c.tenant == "acme"));
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    let later = s.changes_since(5, 100).await.unwrap();
    assert_eq!(later.iter().map(|c| c.revision).collect::<Vec<_>>(), vec![7, 8, 9]);
    assert_eq!(s.changes_since(0, 2).await.unwrap(), feed[..2].to_vec());
    assert!(s.changes_since(9, 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// As-of reads against a model: for every revision R, reads as of R show the last write at or
// before R, never anything written later.

const N_DATASETS: usize = 3;
const N_ENTITIES: usize = 5; // d0..d2, r0..r1

fn entity_urn(i: usize) -> String {
    if i < N_DATASETS {
        format!("mm://acme/dataset/d{i}")
    } else {
        format!("mm://acme/run/r{}", i - N_DATASETS)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    PutExpect(usize, u64),
    Delete(usize),
    AddEdge(usize, usize),
    RemoveEdge(usize, usize),
}

#[derive(Clone, Debug, PartialEq)]
struct Ent {
    version: u64,
    deleted: bool,
    props: Value,
    rev: u64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    ents: BTreeMap<String, Ent>,
    /// (from, from version, to, to version)
    edges: BTreeSet<(String, u64, String, u64)>,
}

impl Model {
    fn live(&self, urn: &str) -> Option<&Ent> {
        self.ents.get(urn).filter(|e| !e.deleted)
    }

    /// Applies `op` at `rev`; `None` when the store must refuse it, else the edge `changed`.
    fn apply(&mut self, op: &Op, rev: u64) -> Option<bool> {
        let write = |m: &mut Model, urn: String, deleted: bool, props: Value| {
            let version = m.ents.get(&urn).map_or(0, |e| e.version) + 1;
            m.ents.insert(urn, Ent { version, deleted, props, rev });
        };
        match op {
            Op::Put(i, v) => write(self, entity_urn(*i), false, json!({"v": v})),
            Op::PutExpect(i, expect) => {
                if self.ents.get(&entity_urn(*i)).map_or(0, |e| e.version) != *expect {
                    return None;
                }
                write(self, entity_urn(*i), false, json!({"e": expect}));
            }
            Op::Delete(i) => {
                let props = self.live(&entity_urn(*i))?.props.clone();
                write(self, entity_urn(*i), true, props);
            }
            Op::AddEdge(d, r) => {
                let (from, to) = (entity_urn(*d), entity_urn(N_DATASETS + r));
                let key = (from.clone(), self.live(&from)?.version, to.clone(), self.live(&to)?.version);
                return Some(self.edges.insert(key));
            }
            Op::RemoveEdge(d, r) => {
                let (from, to) = (entity_urn(*d), entity_urn(N_DATASETS + r));
                let before = self.edges.len();
                self.edges.retain(|(f, _, t, _)| !(*f == from && *t == to));
                return Some(self.edges.len() != before);
            }
        }
        Some(false)
    }
}

fn command(op: &Op) -> Command {
    match op {
        Op::Put(i, v) => {
            let mut sp = spec(&entity_urn(*i));
            sp.properties = json!({"v": v});
            Command::PutEntity(sp)
        }
        Op::PutExpect(i, expect) => {
            let mut sp = spec(&entity_urn(*i));
            sp.properties = json!({"e": expect});
            sp.expect_version = Some(*expect);
            Command::PutEntity(sp)
        }
        Op::Delete(i) => delete(&entity_urn(*i)),
        Op::AddEdge(d, r) => add_edge(&entity_urn(*d), EdgeKind::Consumed, &entity_urn(N_DATASETS + r)),
        Op::RemoveEdge(d, r) => remove_edge(&entity_urn(*d), EdgeKind::Consumed, &entity_urn(N_DATASETS + r)),
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let n_runs = N_ENTITIES - N_DATASETS;
    prop_oneof![
        4 => (0..N_ENTITIES, any::<u8>()).prop_map(|(i, v)| Op::Put(i, v)),
        1 => (0..N_ENTITIES, 0u64..4).prop_map(|(i, e)| Op::PutExpect(i, e)),
        2 => (0..N_ENTITIES).prop_map(Op::Delete),
        3 => (0..N_DATASETS, 0..n_runs).prop_map(|(d, r)| Op::AddEdge(d, r)),
        1 => (0..N_DATASETS, 0..n_runs).prop_map(|(d, r)| Op::RemoveEdge(d, r)),
    ]
}

async fn check_as_of(steps: Vec<(Op, i64)>) {
    let mut s = TestStore::with_tenant().await;
    // Index = revision: the model after it, and the time the store recorded for it.
    let mut snaps = vec![Model::default(), Model::default()];
    let mut times = vec![i64::MIN, START_MS];
    let mut proposed = s.now_ms;
    for (op, dt) in &steps {
        proposed += dt;
        s.now_ms = proposed;
        let mut model = snaps.last().unwrap().clone();
        let applied = s.apply(command(op)).await;
        let rev = applied.revision;
        let expected = model.apply(op, rev);
        match (&applied.result, expected) {
            (Ok(metamesh_core::Outcome::Edge { changed }), Some(want)) => assert_eq!(*changed, want, "{op:?}"),
            (Ok(_), Some(_)) => {}
            (Err(_), None) => model = snaps.last().unwrap().clone(),
            (got, want) => panic!("{op:?} at {rev}: store {got:?}, model {want:?}"),
        }
        let at = proposed.max(*times.last().unwrap());
        assert_eq!(applied.at_ms, at, "time never runs backwards");
        snaps.push(model);
        times.push(at);
    }
    let last = s.rev;
    let urns: Vec<String> = (0..N_ENTITIES).map(entity_urn).collect();
    let frontier: Vec<_> = urns.iter().map(|u| eu(u)).collect();
    let max_version = snaps.last().unwrap().ents.values().map(|e| e.version).max().unwrap_or(0);
    for r in 0..=last {
        let snap = &snaps[r as usize];
        for urn in &urns {
            let got = s.get_entity(&vu(urn), Some(AsOf::Revision(r))).await.unwrap();
            let got = got.map(|e| {
                assert!(e.revision <= r, "{urn} as of {r} shows revision {}", e.revision);
                Ent { version: e.version, deleted: e.deleted, props: e.properties, rev: e.revision }
            });
            assert_eq!(got.as_ref(), snap.ents.get(urn), "{urn} as of {r}");
            let current = snap.ents.get(urn).map_or(0, |e| e.version);
            for v in 1..=max_version {
                let old = s.get_entity(&vu(&format!("{urn}@{v}")), Some(AsOf::Revision(r))).await.unwrap();
                assert_eq!(old.is_some(), v <= current, "{urn}@{v} as of {r}");
            }
        }
        let edges = s.edges_of(&frontier, Direction::Both, &[], Some(AsOf::Revision(r))).await.unwrap();
        let got: BTreeSet<(String, u64, String, u64)> = edges
            .iter()
            .map(|e| {
                assert!(e.revision <= r);
                (e.from.entity.to_string(), e.from.version.unwrap(), e.to.entity.to_string(), e.to.version.unwrap())
            })
            .collect();
        assert_eq!(got.len(), edges.len());
        assert_eq!(got, snap.edges, "edges as of {r}");
        let listed = s.list_entities(&ListFilter::default(), Some(AsOf::Revision(r)), None, 100).await.unwrap();
        let live: Vec<String> = urns.iter().filter(|u| snap.live(u).is_some()).cloned().collect();
        let mut got = urns_of(&listed.items);
        got.sort();
        assert_eq!(got, live, "listing as of {r}");
    }
    // Times: the last revision at or before the time.
    for r in 1..=last {
        for t in [times[r as usize] - 1, times[r as usize]] {
            let want = (0..=last).filter(|&q| times[q as usize] <= t).max().unwrap();
            assert_eq!(s.resolve_as_of(Some(AsOf::TimeMs(t))).await.unwrap(), Some(want), "time {t}");
            for urn in &urns {
                let by_time = s.get_entity(&vu(urn), Some(AsOf::TimeMs(t))).await.unwrap();
                let by_rev = s.get_entity(&vu(urn), Some(AsOf::Revision(want))).await.unwrap();
                assert_eq!(by_time, by_rev);
            }
        }
    }
    s.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn as_of_reads_match_a_model(steps in prop::collection::vec((op_strategy(), -3000i64..5000), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check_as_of(steps));
    }
}
