//! Search through the router: fanned out to the groups owning the tenants the caller may
//! search, merged best first, paged with one stable cursor across shards, and never showing an
//! entity, a snippet or a detail the caller may not see.

use std::collections::BTreeSet;

use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_testkit::mesh::{LocalMesh, MeshSpec};
use tonic::transport::Channel;
use tonic::Code;

fn spec() -> MeshSpec {
    let mut spec = MeshSpec::new(&[("s1", &["fraud"]), ("s2", &["growth"])], 1);
    spec.policy = std::sync::Arc::new(|dir: &std::path::Path| {
        let all = LocalMesh::principal("all");
        let fraud = LocalMesh::principal("only-fraud");
        let disc = LocalMesh::principal("disc");
        let global = format!(
            "{}g, {disc}, role:discoverer, *\n",
            metamesh_testkit::policy::all_rights(std::slice::from_ref(&all))
        );
        metamesh_testkit::policy::write_policy(
            dir,
            &global,
            &[("fraud", &format!("g, {fraud}, role:reader, fraud\n"))],
        );
    });
    spec
}

async fn put(ch: &Channel, urn: &str, description: &str, owner: &str) {
    CatalogServiceClient::new(ch.clone())
        .put_entity(v1::PutEntityRequest {
            request_id: format!("put {urn}"),
            urn: urn.into(),
            description: description.into(),
            owner: owner.into(),
            properties_json: r#"{"pii": "email"}"#.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn search(ch: &Channel, r: v1::SearchRequest) -> Result<v1::SearchReply, tonic::Status> {
    SearchServiceClient::new(ch.clone()).search(r).await.map(|r| r.into_inner())
}

fn urns(reply: &v1::SearchReply) -> Vec<String> {
    reply.hits.iter().map(|h| h.entity.as_ref().unwrap().urn.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_merges_shards_pages_stably_and_shows_only_what_the_caller_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = LocalMesh::start(dir.path(), spec()).await.expect("mesh");
    let all = mesh.router("all").await;
    let mut expected = BTreeSet::new();
    for i in 0..7 {
        let f = format!("mm://fraud/dataset/churn-f{i}");
        let g = format!("mm://growth/dataset/churn-g{i}");
        put(&all, &f, "churn features, confidential ledger", "fraud-ml").await;
        put(&all, &g, "churn cohorts, confidential ledger", "growth-data").await;
        expected.insert(f);
        expected.insert(g);
    }

    // One cursor across both shards: pages of 3 give every hit exactly once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = search(
            &all,
            v1::SearchRequest { query: "churn".into(), page_size: 3, page_token: token, ..Default::default() },
        )
        .await
        .unwrap();
        assert!(!page.partial, "{:?}", page.partial_reasons);
        assert!(page.hits.len() <= 3);
        seen.extend(urns(&page));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), expected.len(), "a hit twice or lost: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // The cursor belongs to its query.
    let first =
        search(&all, v1::SearchRequest { query: "churn".into(), page_size: 3, ..Default::default() }).await.unwrap();
    let other = search(
        &all,
        v1::SearchRequest { query: "ledger".into(), page_token: first.next_page_token, ..Default::default() },
    )
    .await
    .unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument, "{other:?}");

    // A reader of fraud finds fraud's entities only, and may not even name growth.
    let fraud = mesh.router("only-fraud").await;
    let hits = search(&fraud, v1::SearchRequest { query: "churn".into(), page_size: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(hits.hits.len(), 7);
    assert!(urns(&hits).iter().all(|u| u.starts_with("mm://fraud/")), "{hits:?}");
    let named = search(
        &fraud,
        v1::SearchRequest { query: "churn".into(), tenants: vec!["growth".into()], ..Default::default() },
    )
    .await
    .unwrap_err();
    assert_eq!(named.code(), Code::NotFound, "{named:?}");

    // A discoverer finds by name, never by what it may not read, and sees no details.
    let disc = mesh.router("disc").await;
    let by_text =
        search(&disc, v1::SearchRequest { query: "confidential".into(), ..Default::default() }).await.unwrap();
    assert!(by_text.hits.is_empty(), "found through a description it may not read: {by_text:?}");
    let by_name =
        search(&disc, v1::SearchRequest { query: "churn".into(), page_size: 100, ..Default::default() }).await.unwrap();
    assert_eq!(by_name.hits.len(), 14);
    for h in &by_name.hits {
        let e = h.entity.as_ref().unwrap();
        assert!(h.snippet.is_empty(), "{h:?}");
        assert!(e.description.is_empty() && e.owner.is_empty() && !e.properties_json.contains("email"), "{e:?}");
    }
    let by_owner = search(&disc, v1::SearchRequest { owner: "fraud-ml".into(), ..Default::default() }).await.unwrap();
    assert!(by_owner.hits.is_empty(), "a discoverer probed an owner: {by_owner:?}");
    let by_property = search(
        &disc,
        v1::SearchRequest {
            property_filters: vec![v1::PropertyFilter {
                path: "pii".into(),
                op: v1::property_filter::Op::Eq as i32,
                value_json: r#""email""#.into(),
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(by_property.hits.is_empty(), "a discoverer probed a property: {by_property:?}");
    // The same filters work for a reader.
    let owned = search(&all, v1::SearchRequest { owner: "fraud-ml".into(), page_size: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(owned.hits.len(), 7);

    // A group down: the answer is partial and says which, with the other group's hits.
    mesh.stop_group("s2").await;
    let cut =
        search(&all, v1::SearchRequest { query: "churn".into(), page_size: 100, ..Default::default() }).await.unwrap();
    assert!(cut.partial);
    assert!(cut.partial_reasons.iter().any(|r| r.code == "SHARD_UNAVAILABLE" && r.shard == "s2"), "{cut:?}");
    assert!(urns(&cut).iter().all(|u| u.starts_with("mm://fraud/")) && cut.hits.len() == 7);
    mesh.shutdown().await;
}
