//! Search across shards: one request per shard group, in parallel, merged into one ranking, with
//! a page token that stays stable across shards.
//!
//! Which groups: with `tenants` named, the groups owning them (the authorization layer has
//! checked `search` on each); with `tenants` empty, every tenant of the mesh map the caller may
//! `search`, and only the groups owning at least one of those. Each group is sent the request
//! restricted to *its* tenants — never an empty list, which a node reads as "all I may see".
//! Every other filter (query, kinds, tags, owner, type, deleted) goes to the nodes unchanged.
//!
//! Merging and paging (`fanout` below, shared with the audit listing): the hits of each group are
//! merged as they come, best score first, then by entity URN. The router's page token records,
//! per group, the node's token of the page being read and how many of its hits were already
//! returned (`skip`), and which groups are finished; the next page asks each unfinished group
//! again from its token, drops what was returned, merges and cuts at `page_size`. The token also
//! holds a digest of the request's other fields: a token presented with a changed request is
//! INVALID_ARGUMENT on `page_token` (a position in one ranking means nothing in another).
//!
//! Every hit is screened again with the router's policy (nodes do it already: defence in
//! depth): hidden hits are dropped, discover-only hits keep only what discovery shows (the
//! entity redacted as `authz::redact` does, no snippet). A group that does not answer makes the
//! answer `partial` (`SHARD_UNAVAILABLE`, naming the group) rather than failing it. Counts are
//! never returned: a total would tell the caller about hits it may not see.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use metamesh_core::{EntityUrn, TenantId};
use metamesh_node::api::{authz, page, status};
use metamesh_policy::{Action, Visibility};
use metamesh_proto::convert;
use metamesh_proto::v1;
use metamesh_proto::v1::search_service_client::SearchServiceClient;
use metamesh_proto::v1::search_service_server::SearchService;
use tonic::{Request, Response, Status};

use crate::api::RouterApi;
use crate::groups::on_behalf;

/// Cross-shard listings: k-way merge of per-group node pages and the router's page token.
///
/// Used by Search ([`super`]) and the audit listing (`crate::audit`). The caller supplies how to
/// fetch one node page of a group (`fetch`), the order to merge in (`key`) and what to keep of
/// each item (`screen`); [`page`] does the rest and returns the cursor of the next page.
///
/// Why the cursor counts node items rather than returned ones: an item the router screens out
/// still occupies its place in the node's page, so `skip` stays true even if the router's policy
/// changes between two pages. Why the node page size is fixed at the first page: a node's token
/// and the `skip` into its page both count items of pages of that size.
pub(crate) mod fanout {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    use std::future::Future;
    use std::time::Duration;

    use metamesh_node::api::{page, status};
    use serde::{Deserialize, Serialize};
    use tonic::Status;

    /// Rounds of node calls one page may make before it answers with what it merged so far (and
    /// a token): bounds a page over shards whose node pages come back empty, as a node bounds
    /// its own scans.
    pub(crate) const MAX_ROUNDS: usize = 16;

    /// Time allowed to one node call of a fan-out; a group slower than this is reported missing.
    pub(crate) const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(10);

    fn is_zero(n: &usize) -> bool {
        *n == 0
    }

    /// Where one group's part of a listing stands.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub(crate) struct At {
        /// The node's token of the page being read; empty for the group's first page.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub token: String,
        /// Items of that page already returned (or screened out).
        #[serde(default, skip_serializing_if = "is_zero")]
        pub skip: usize,
    }

    /// What the router's page token carries.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub(crate) struct Cursor {
        /// Digest of the request's fields other than the page size and token.
        pub digest: String,
        /// The page size every node is asked with, fixed at the first page.
        pub node_page: usize,
        /// The groups not finished, and where each stands.
        pub groups: BTreeMap<String, At>,
        /// The groups finished.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        pub exhausted: BTreeSet<String>,
    }

    impl Cursor {
        /// The first page of a listing over `groups`, nodes asked for `node_page` items a page.
        pub fn start(digest: String, node_page: usize, groups: impl IntoIterator<Item = String>) -> Cursor {
            Cursor {
                digest,
                node_page,
                groups: groups.into_iter().map(|g| (g, At::default())).collect(),
                exhausted: BTreeSet::new(),
            }
        }

        /// The cursor inside `token` (`None` for an empty token: the first page), refused as
        /// INVALID_ARGUMENT on `page_token` when the router did not issue it or issued it for a
        /// request whose other fields were different (`digest`).
        pub fn resume(token: &str, digest: &str) -> Result<Option<Cursor>, Status> {
            let Some(cursor) = page::decode::<Cursor>(token)? else { return Ok(None) };
            // A node page size `page::size` accepts (0 would mean "the default" to a node).
            let size_ok = u32::try_from(cursor.node_page).is_ok_and(|n| n > 0 && page::size(n).is_ok());
            if !size_ok {
                return Err(status::invalid("page_token", "not a token this server issued"));
            }
            if cursor.digest != digest {
                return Err(status::invalid(
                    "page_token",
                    "the token belongs to a request with other filters; send the same request with \
                     only page_token (and page_size) changed, or start over without a token",
                ));
            }
            Ok(Some(cursor))
        }

        /// The token of this cursor.
        pub fn encode(&self) -> String {
            page::encode(self)
        }
    }

    /// One page of a node's answer.
    pub(crate) struct NodePage<T> {
        pub items: Vec<T>,
        /// The node's token for its next page; empty for its last.
        pub next: String,
    }

    /// One page of a merged listing.
    pub(crate) struct Merged<U> {
        /// The items, in merge order.
        pub items: Vec<U>,
        /// The groups that failed during this page, with their status, in group order.
        pub failed: Vec<(String, Status)>,
        /// Where the next page starts; `None` when the listing is over.
        pub next: Option<Cursor>,
    }

    /// One group's part while a page is merged.
    struct Lane<T> {
        group: String,
        /// The page being read: its token, and items of it consumed.
        at: At,
        /// What is left of that page once it is fetched.
        left: VecDeque<T>,
        /// That page's next token once it is fetched (empty: the group's last page).
        next: Option<String>,
        /// The group failed during this page: no more merging from it.
        failed: bool,
    }

    impl<T> Lane<T> {
        fn finished(&self) -> bool {
            self.left.is_empty() && self.next.as_deref() == Some("")
        }

        fn needs_fetch(&self) -> bool {
            !self.failed && self.next.is_none()
        }

        /// Moves to the next node page once this one is consumed.
        fn advance(&mut self) {
            if self.failed || !self.left.is_empty() {
                return;
            }
            if let Some(next) = self.next.take_if(|n| !n.is_empty()) {
                self.at = At { token: next, skip: 0 };
            }
        }

        /// Where the next page resumes this group; `None` once it is finished.
        fn resume_at(self) -> Option<At> {
            if self.finished() {
                return None;
            }
            match self.next {
                Some(next) if self.left.is_empty() && !next.is_empty() => Some(At { token: next, skip: 0 }),
                _ => Some(self.at),
            }
        }
    }

    /// Merges one page of at most `limit` items from the groups of `cursor`.
    ///
    /// `fetch(group, token, size)` reads one node page; `key` orders items (ties go to the
    /// smaller group id); `screen(group, item)` is applied to each item as it is taken and may
    /// drop it (it still counts as consumed). Each group's items are taken in its node's order,
    /// the smallest head first. A group that fails is merged no further this page and keeps its
    /// position, so the next page asks it again; the listing ends (no next cursor) once every
    /// group is finished or the only ones left failed on this page — a caller paging until the
    /// token is empty stops even if a group stays down.
    pub(crate) async fn page<T, U, K, Key, Screen, Fetch, Fut>(
        cursor: Cursor,
        limit: usize,
        key: Key,
        mut screen: Screen,
        fetch: Fetch,
    ) -> Merged<U>
    where
        K: Ord,
        Key: Fn(&T) -> K,
        Screen: FnMut(&str, T) -> Option<U>,
        Fetch: Fn(String, String, usize) -> Fut,
        Fut: Future<Output = Result<NodePage<T>, Status>>,
    {
        let Cursor { digest, node_page, groups, mut exhausted } = cursor;
        let mut lanes: Vec<Lane<T>> = groups
            .into_iter()
            .map(|(group, at)| Lane { group, at, left: VecDeque::new(), next: None, failed: false })
            .collect();
        let mut items = Vec::new();
        let mut failed = Vec::new();
        let mut rounds = 0;
        loop {
            lanes.iter_mut().for_each(Lane::advance);
            let wanted: Vec<usize> = (0..lanes.len()).filter(|&i| lanes[i].needs_fetch()).collect();
            if !wanted.is_empty() {
                if items.len() >= limit || rounds == MAX_ROUNDS {
                    break;
                }
                rounds += 1;
                let calls = wanted.iter().map(|&i| fetch(lanes[i].group.clone(), lanes[i].at.token.clone(), node_page));
                let replies = futures_util::future::join_all(calls).await;
                for (i, reply) in wanted.into_iter().zip(replies) {
                    let lane = &mut lanes[i];
                    match reply {
                        Ok(page) => {
                            lane.left = page.items.into();
                            lane.left.drain(..lane.at.skip.min(lane.left.len()));
                            lane.next = Some(page.next);
                        }
                        Err(status) => {
                            lane.failed = true;
                            failed.push((lane.group.clone(), status));
                        }
                    }
                }
                continue;
            }
            // Every group still merging holds items: the smallest head is the next item overall.
            if items.len() >= limit {
                break;
            }
            let mut best: Option<(K, usize)> = None;
            for (i, lane) in lanes.iter().enumerate() {
                let Some(head) = lane.left.front().filter(|_| !lane.failed) else { continue };
                let k = key(head);
                let better = match &best {
                    None => true,
                    Some((bk, bi)) => (&k, &lane.group) < (bk, &lanes[*bi].group),
                };
                if better {
                    best = Some((k, i));
                }
            }
            let Some((_, i)) = best else { break };
            let lane = &mut lanes[i];
            let item = lane.left.pop_front().expect("the best lane has a head");
            lane.at.skip += 1;
            if let Some(kept) = screen(&lane.group, item) {
                items.push(kept);
            }
        }
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        let progressing = lanes.iter().any(|l| !l.failed && !l.finished());
        let mut groups = BTreeMap::new();
        for lane in lanes {
            let group = lane.group.clone();
            match lane.resume_at() {
                Some(at) => {
                    groups.insert(group, at);
                }
                None => {
                    exhausted.insert(group);
                }
            }
        }
        let next = (progressing && !groups.is_empty()).then_some(Cursor { digest, node_page, groups, exhausted });
        Merged { items, failed, next }
    }

    #[cfg(test)]
    mod tests {
        use std::collections::HashMap;
        use std::sync::Mutex;

        use super::*;

        /// Fake shards: each group's items (already in its node's order); a node page token is
        /// the index to continue from.
        struct Shards {
            items: BTreeMap<String, Vec<u32>>,
            /// Calls to fail, by group: the n-th call (0-based) of that group fails.
            fail: HashMap<String, Vec<usize>>,
            /// Groups that are down for good.
            down: BTreeSet<String>,
            /// Groups whose every page with items is preceded by an empty page with a token, like
            /// a node that scanned without finding hits.
            sparse: BTreeSet<String>,
            /// Groups whose first answers are this many empty pages ("z<k>" tokens) in a row.
            desert: HashMap<String, usize>,
            calls: Mutex<HashMap<String, usize>>,
        }

        impl Shards {
            fn new(items: &[(&str, &[u32])]) -> Shards {
                Shards {
                    items: items.iter().map(|(g, v)| (g.to_string(), v.to_vec())).collect(),
                    fail: HashMap::new(),
                    down: BTreeSet::new(),
                    sparse: BTreeSet::new(),
                    desert: HashMap::new(),
                    calls: Mutex::new(HashMap::new()),
                }
            }

            async fn fetch(&self, group: String, token: String, size: usize) -> Result<NodePage<u32>, Status> {
                let call = {
                    let mut calls = self.calls.lock().unwrap();
                    let n = calls.entry(group.clone()).or_default();
                    *n += 1;
                    *n - 1
                };
                if self.down.contains(&group) || self.fail.get(&group).is_some_and(|f| f.contains(&call)) {
                    return Err(Status::unavailable(format!("{group} is down")));
                }
                let all = &self.items[&group];
                if let Some(&empties) = self.desert.get(&group) {
                    let k: usize = match token.strip_prefix('z') {
                        Some(k) => k.parse().unwrap(),
                        None if token.is_empty() => 0,
                        None => empties,
                    };
                    if k < empties {
                        let next = if k + 1 < empties { format!("z{}", k + 1) } else { "0".to_owned() };
                        return Ok(NodePage { items: Vec::new(), next });
                    }
                }
                if self.sparse.contains(&group) && !token.starts_with('e') {
                    // An empty page pointing further on ("e<from>"), as a node answers after
                    // scanning its limit of store pages without a hit.
                    let from = if token.is_empty() { 0 } else { token.parse().unwrap() };
                    let next = if from < all.len() { format!("e{from}") } else { String::new() };
                    return Ok(NodePage { items: Vec::new(), next });
                }
                let from: usize = token.trim_start_matches('e').parse().unwrap_or(0);
                let to = (from + size).min(all.len());
                let next = if to < all.len() { to.to_string() } else { String::new() };
                Ok(NodePage { items: all[from..to].to_vec(), next })
            }
        }

        fn key(x: &u32) -> u32 {
            *x
        }

        async fn page_of(
            shards: &Shards,
            cursor: Cursor,
            limit: usize,
            screen: impl FnMut(&str, u32) -> Option<u32>,
        ) -> Merged<u32> {
            page(cursor, limit, key, screen, |g, t, s| shards.fetch(g, t, s)).await
        }

        /// Pages through everything with the page sizes in `sizes` (cycled); returns the items
        /// and the groups reported failed on each page.
        async fn all_pages(shards: &Shards, node_page: usize, sizes: &[usize]) -> (Vec<u32>, Vec<Vec<String>>) {
            let mut cursor = Cursor::start("d".into(), node_page, shards.items.keys().cloned());
            let (mut out, mut failures) = (Vec::new(), Vec::new());
            for n in 0.. {
                assert!(n < 10_000, "paging does not end");
                let merged = page_of(shards, cursor, sizes[n % sizes.len()], |_, x| Some(x)).await;
                assert!(merged.items.len() <= sizes[n % sizes.len()]);
                out.extend(merged.items);
                failures.push(merged.failed.into_iter().map(|(g, _)| g).collect());
                // Tokens survive the round trip through the wire.
                match merged.next {
                    Some(next) => cursor = Cursor::resume(&next.encode(), "d").unwrap().unwrap(),
                    None => break,
                }
            }
            (out, failures)
        }

        fn sorted(shards: &Shards) -> Vec<u32> {
            let mut all: Vec<u32> = shards.items.values().flatten().copied().collect();
            all.sort_unstable();
            all
        }

        fn three() -> Shards {
            Shards::new(&[
                ("s1", &[1, 4, 7, 10, 13, 16, 19, 22]),
                ("s2", &[2, 5, 8, 11, 14, 17]),
                ("s3", &[3, 6, 9, 30, 31, 32, 33, 34, 35, 36]),
            ])
        }

        #[tokio::test]
        async fn pages_merge_every_item_once_in_order() {
            let shards = three();
            for node_page in [1, 2, 3, 7, 100] {
                for sizes in [&[1][..], &[2], &[3], &[5], &[100], &[1, 4, 2], &[7, 1]] {
                    let (out, failures) = all_pages(&shards, node_page, sizes).await;
                    assert_eq!(out, sorted(&shards), "node page {node_page}, page sizes {sizes:?}");
                    assert!(failures.iter().all(Vec::is_empty));
                }
            }
        }

        #[tokio::test]
        async fn the_last_page_has_no_token_and_finished_groups_are_not_asked_again() {
            let shards = Shards::new(&[("s1", &[1, 2]), ("s2", &[3, 4, 5, 6])]);
            let first =
                page_of(&shards, Cursor::start("d".into(), 2, ["s1".into(), "s2".into()]), 3, |_, x| Some(x)).await;
            assert_eq!(first.items, vec![1, 2, 3]);
            let next = first.next.expect("more to come");
            assert_eq!(next.exhausted, BTreeSet::from(["s1".to_owned()]));
            assert_eq!(next.groups["s2"], At { token: String::new(), skip: 1 });
            let calls_before = shards.calls.lock().unwrap().get("s1").copied();
            let second = page_of(&shards, next, 3, |_, x| Some(x)).await;
            assert_eq!(second.items, vec![4, 5, 6]);
            assert!(second.next.is_none());
            assert_eq!(shards.calls.lock().unwrap().get("s1").copied(), calls_before);
        }

        #[tokio::test]
        async fn screened_items_count_as_consumed() {
            let shards = three();
            let mut cursor = Cursor::start("d".into(), 3, shards.items.keys().cloned());
            let mut out = Vec::new();
            loop {
                let merged = page_of(&shards, cursor, 2, |_, x| (x % 2 == 0).then_some(x)).await;
                out.extend(merged.items);
                let Some(next) = merged.next else { break };
                cursor = next;
            }
            let even: Vec<u32> = sorted(&shards).into_iter().filter(|x| x % 2 == 0).collect();
            assert_eq!(out, even);
        }

        #[tokio::test]
        async fn empty_node_pages_are_followed() {
            let mut shards = three();
            shards.sparse.insert("s2".into());
            let (out, _) = all_pages(&shards, 2, &[3]).await;
            assert_eq!(out, sorted(&shards));
        }

        #[tokio::test]
        async fn a_page_stops_after_its_rounds_and_the_next_one_goes_on() {
            let mut shards = three();
            shards.desert.insert("s2".into(), 3 * MAX_ROUNDS);
            let first =
                page_of(&shards, Cursor::start("d".into(), 2, shards.items.keys().cloned()), 5, |_, x| Some(x)).await;
            // s2 has not answered with an item yet, so nothing can be merged past it.
            assert!(first.items.is_empty(), "{:?}", first.items);
            assert!(first.failed.is_empty());
            assert!(first.next.as_ref().is_some_and(|c| c.groups["s2"].token.starts_with('z')));
            let (out, _) = all_pages(&shards, 2, &[5]).await;
            assert_eq!(out, sorted(&shards));
        }

        #[tokio::test]
        async fn a_failed_group_is_reported_and_asked_again_on_the_next_page() {
            let mut shards = three();
            shards.fail.insert("s2".into(), vec![1]);
            let (out, failures) = all_pages(&shards, 2, &[3]).await;
            // Nothing lost, nothing twice; s2's late items come after the page that missed them.
            let mut seen = out.clone();
            seen.sort_unstable();
            assert_eq!(seen, sorted(&shards));
            assert_eq!(failures.iter().filter(|f| f.contains(&"s2".to_owned())).count(), 1);
        }

        #[tokio::test]
        async fn a_group_down_for_good_ends_the_listing_once_the_others_are_done() {
            let mut shards = three();
            shards.down.insert("s3".into());
            let (out, failures) = all_pages(&shards, 2, &[4]).await;
            let without: Vec<u32> = sorted(&shards).into_iter().filter(|x| !shards.items["s3"].contains(x)).collect();
            assert_eq!(out, without);
            assert!(failures.iter().all(|f| f == &vec!["s3".to_owned()]));
        }

        #[test]
        fn tokens_of_another_request_or_forged_are_refused() {
            let cursor = Cursor::start("abc".into(), 10, ["s1".to_owned()]);
            let token = cursor.encode();
            assert_eq!(Cursor::resume(&token, "abc").unwrap(), Some(cursor));
            assert_eq!(Cursor::resume("", "abc").unwrap(), None);
            for (token, digest) in [(token.as_str(), "other"), ("bm90IGpzb24", "abc")] {
                let err = Cursor::resume(token, digest).unwrap_err();
                assert_eq!(err.code(), tonic::Code::InvalidArgument);
                assert!(err.message().contains("page_token"), "{}", err.message());
            }
            let zero = Cursor { node_page: 0, ..Cursor::start("abc".into(), 1, ["s1".to_owned()]) };
            assert!(Cursor::resume(&zero.encode(), "abc").is_err());
        }
    }
}

/// Search hits in merge order: higher score first, then entity URN.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HitKey(Reverse<Score>, String);

/// A score ordered totally (NaN last among equals rather than a panic).
#[derive(PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn hit_key(hit: &v1::SearchHit) -> HitKey {
    HitKey(Reverse(Score(hit.score)), hit.entity.as_ref().map(|e| e.urn.clone()).unwrap_or_default())
}

/// The digest a page token carries: every field of the request but its page size and token.
fn request_digest(r: &v1::SearchRequest) -> String {
    let filters: Vec<(String, i32, String)> =
        r.property_filters.iter().map(|p| (p.path.clone(), p.op, p.value_json.clone())).collect();
    let fields =
        serde_json::json!([r.query, r.tenants, r.kinds, r.tags, r.owner, r.type_name, r.include_deleted, filters]);
    let digest = metamesh_audit::request_digest(fields.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// A hit from a node as the caller may see it, or `None`: a hit of a tenant the group was not
/// asked about (a node answering beyond its request), one whose URN does not parse, or one the
/// policy hides. `visibility` is the router's policy for the caller.
fn screen(
    mut hit: v1::SearchHit,
    asked: &[String],
    visibility: impl Fn(&EntityUrn) -> Visibility,
) -> Option<v1::SearchHit> {
    let entity = hit.entity.as_ref()?;
    let Ok(urn) = entity.urn.parse::<EntityUrn>() else {
        tracing::debug!(urn = %entity.urn, "a node returned a search hit whose urn does not parse; dropped");
        return None;
    };
    if !asked.iter().any(|t| t == urn.tenant().as_str()) {
        tracing::warn!(urn = %entity.urn, "a node returned a search hit of a tenant it was not asked about; dropped");
        return None;
    }
    match visibility(&urn) {
        Visibility::Full => Some(hit),
        Visibility::DiscoverOnly => {
            hit.entity = Some(redacted(urn, entity));
            hit.snippet.clear();
            Some(hit)
        }
        Visibility::Hidden => None,
    }
}

/// What discovery shows of `e`: exactly what a node sends for a discover-only hit (the fields
/// [`authz::redact`] keeps, through the same wire conversion).
fn redacted(urn: EntityUrn, e: &v1::Entity) -> v1::Entity {
    convert::entity_to_wire(&authz::discoverable(
        urn,
        e.version,
        e.deleted,
        e.created_at_ms,
        e.updated_at_ms,
        e.revision,
    ))
}

impl RouterApi {
    /// The tenants to search, by owning group (groups with none are absent), each list sorted
    /// and without duplicates.
    fn search_plan(
        &self,
        authorized: &metamesh_node::Authorized,
        r: &v1::SearchRequest,
    ) -> Result<BTreeMap<String, Vec<String>>, Status> {
        let mut plan: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if r.tenants.is_empty() {
            for g in self.groups.all() {
                for t in &g.tenants {
                    let Ok(id) = TenantId::new(t) else { continue };
                    if authorized.may(Action::Search, &id) {
                        plan.entry(g.id.clone()).or_default().push(t.clone());
                    }
                }
            }
        } else {
            for (i, t) in r.tenants.iter().enumerate() {
                let id = convert::tenant_id(&format!("tenants[{i}]"), t).map_err(status::refused)?;
                let group = self.groups.of(&id)?;
                plan.entry(group.id.clone()).or_default().push(t.clone());
            }
        }
        for tenants in plan.values_mut() {
            tenants.sort();
            tenants.dedup();
        }
        Ok(plan)
    }
}

#[tonic::async_trait]
impl SearchService for RouterApi {
    /// Ranked search over every shard group owning a tenant the caller may search (see the
    /// module docs for the merge, the page token and what makes an answer partial).
    async fn search(&self, request: Request<v1::SearchRequest>) -> Result<Response<v1::SearchReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        // Refused here, naming the field, rather than by every node.
        convert::search_scope(&r).map_err(status::refused)?;
        let limit = page::size(r.page_size)?;
        let digest = request_digest(&r);
        let plan = self.search_plan(&authorized, &r)?;
        let cursor = match fanout::Cursor::resume(&r.page_token, &digest)? {
            Some(cursor) => cursor,
            None => fanout::Cursor::start(digest, limit, plan.keys().cloned()),
        };
        let fetch = |group: String, token: String, size: usize| {
            let (authorized, plan, r) = (&authorized, &plan, &r);
            async move {
                // The policy may have changed since the first page: a group left without
                // tenants to search is finished, never asked with an empty list ("all").
                let Some(tenants) = plan.get(&group).filter(|t| !t.is_empty()) else {
                    return Ok(fanout::NodePage { items: Vec::new(), next: String::new() });
                };
                let Some(g) = self.groups.get(&group) else {
                    return Err(Status::not_found(format!("shard group {group} is no longer in the mesh map")));
                };
                let request = v1::SearchRequest {
                    tenants: tenants.clone(),
                    page_size: size as u32,
                    page_token: token,
                    ..r.clone()
                };
                let call = self.groups.call(g, |ch| {
                    let request = request.clone();
                    async move { SearchServiceClient::new(ch).search(on_behalf(authorized, request)).await }
                });
                let reply = tokio::time::timeout(fanout::NODE_CALL_TIMEOUT, call).await.map_err(|_| {
                    Status::deadline_exceeded(format!("no answer within {} s", fanout::NODE_CALL_TIMEOUT.as_secs()))
                })??;
                let reply = reply.into_inner();
                Ok(fanout::NodePage { items: reply.hits, next: reply.next_page_token })
            }
        };
        let filters_details =
            !r.tags.is_empty() || !r.owner.is_empty() || !r.type_name.is_empty() || !r.property_filters.is_empty();
        let merged = fanout::page(
            cursor,
            limit,
            hit_key,
            |group, hit| {
                let asked = plan.get(group).map(Vec::as_slice).unwrap_or_default();
                // A filter on details a discoverer may not see never matches its entities
                // (nodes apply the same rule).
                screen(hit, asked, |urn| match authorized.visibility(urn) {
                    Visibility::DiscoverOnly if filters_details => Visibility::Hidden,
                    v => v,
                })
            },
            fetch,
        )
        .await;
        let partial_reasons: Vec<v1::PartialReason> =
            merged.failed.iter().map(|(group, status)| crate::groups::unavailable(group, status)).collect();
        Ok(Response::new(v1::SearchReply {
            hits: merged.items,
            next_page_token: merged.next.map(|c| c.encode()).unwrap_or_default(),
            partial: !partial_reasons.is_empty(),
            partial_reasons,
        }))
    }
}

#[cfg(test)]
mod tests {
    use metamesh_core::EntityVersion;

    use super::*;

    fn entity(urn: &str) -> EntityVersion {
        EntityVersion {
            urn: urn.parse().unwrap(),
            version: 3,
            type_name: Some("fraud.Table".parse().unwrap()),
            schema_version: Some(2),
            properties: serde_json::json!({"rows": 12, "pii": true}),
            tags: vec!["gold".into()],
            owner: Some("alice".into()),
            status: Some("live".into()),
            description: Some("card transactions".into()),
            deleted: false,
            created_at_ms: 1_000,
            created_by: "spiffe://metamesh.local/client/alice".into(),
            updated_at_ms: 2_000,
            updated_by: "spiffe://metamesh.local/client/bob".into(),
            revision: 42,
        }
    }

    fn hit(urn: &str, score: f64) -> v1::SearchHit {
        v1::SearchHit { entity: Some(convert::entity_to_wire(&entity(urn))), score, snippet: "card «tx»".into() }
    }

    fn asked() -> Vec<String> {
        vec!["fraud".into(), "growth".into()]
    }

    #[test]
    fn hits_merge_by_score_then_urn() {
        let mut hits = [
            hit("mm://fraud/dataset/b", 1.0),
            hit("mm://growth/dataset/a", 1.0),
            hit("mm://fraud/dataset/a", 1.0),
            hit("mm://fraud/dataset/z", 3.5),
            hit("mm://fraud/dataset/c", -2.0),
        ];
        hits.sort_by_key(hit_key);
        let urns: Vec<&str> = hits.iter().map(|h| h.entity.as_ref().unwrap().urn.as_str()).collect();
        assert_eq!(
            urns,
            [
                "mm://fraud/dataset/z",
                "mm://fraud/dataset/a",
                "mm://fraud/dataset/b",
                "mm://growth/dataset/a",
                "mm://fraud/dataset/c"
            ]
        );
    }

    #[test]
    fn full_hits_pass_unchanged() {
        let h = hit("mm://fraud/dataset/a", 1.0);
        assert_eq!(screen(h.clone(), &asked(), |_| Visibility::Full), Some(h));
    }

    #[test]
    fn hidden_hits_and_hits_of_tenants_not_asked_are_dropped() {
        assert_eq!(screen(hit("mm://fraud/dataset/a", 1.0), &asked(), |_| Visibility::Hidden), None);
        assert_eq!(screen(hit("mm://other/dataset/a", 1.0), &asked(), |_| Visibility::Full), None);
        let no_entity = v1::SearchHit { entity: None, ..hit("mm://fraud/dataset/a", 1.0) };
        assert_eq!(screen(no_entity, &asked(), |_| Visibility::Full), None);
        let mut bad = hit("mm://fraud/dataset/a", 1.0);
        bad.entity.as_mut().unwrap().urn = "not a urn".into();
        assert_eq!(screen(bad, &asked(), |_| Visibility::Full), None);
    }

    #[test]
    fn discover_only_hits_are_redacted_as_a_node_redacts_them() {
        let urn = "mm://fraud/dataset/a";
        let seen = screen(hit(urn, 1.5), &asked(), |_| Visibility::DiscoverOnly).unwrap();
        assert_eq!(seen.snippet, "");
        assert_eq!(seen.score, 1.5);
        let node_sends = convert::entity_to_wire(&authz::redact(&entity(urn)));
        assert_eq!(seen.entity, Some(node_sends));
        let e = seen.entity.unwrap();
        assert!(e.tags.is_empty() && e.owner.is_empty() && e.description.is_empty() && e.type_name.is_empty());
        assert_eq!(e.properties_json, "{}");
    }

    #[test]
    fn the_digest_ignores_page_size_and_token_only() {
        let r = v1::SearchRequest { query: "cards".into(), tenants: asked(), ..Default::default() };
        let paged = v1::SearchRequest { page_size: 7, page_token: "abc".into(), ..r.clone() };
        assert_eq!(request_digest(&r), request_digest(&paged));
        let changed = [
            v1::SearchRequest { query: "card".into(), ..r.clone() },
            v1::SearchRequest { tenants: vec!["fraud".into()], ..r.clone() },
            v1::SearchRequest { kinds: vec!["model".into()], ..r.clone() },
            v1::SearchRequest { tags: vec!["gold".into()], ..r.clone() },
            v1::SearchRequest { owner: "alice".into(), ..r.clone() },
            v1::SearchRequest { type_name: "fraud.Table".into(), ..r.clone() },
            v1::SearchRequest { include_deleted: true, ..r.clone() },
        ];
        for c in changed {
            assert_ne!(request_digest(&r), request_digest(&c), "{c:?}");
        }
    }

    #[tokio::test]
    async fn search_hits_page_across_shards_in_rank_order() {
        // Two groups' node pages, each in its node's order (score descending).
        let shard = |urns: &[(&str, f64)]| urns.iter().map(|(u, s)| hit(u, *s)).collect::<Vec<_>>();
        let pages: BTreeMap<String, Vec<v1::SearchHit>> = BTreeMap::from([
            (
                "s1".to_owned(),
                shard(&[("mm://fraud/dataset/a", 9.0), ("mm://fraud/dataset/b", 5.0), ("mm://fraud/dataset/c", 1.0)]),
            ),
            (
                "s2".to_owned(),
                shard(&[
                    ("mm://growth/dataset/x", 7.0),
                    ("mm://growth/dataset/y", 5.0),
                    ("mm://growth/dataset/z", 0.5),
                ]),
            ),
        ]);
        let fetch = |group: String, token: String, size: usize| {
            let all = pages[&group].clone();
            async move {
                let from: usize = token.parse().unwrap_or(0);
                let to = (from + size).min(all.len());
                let next = if to < all.len() { to.to_string() } else { String::new() };
                Ok(fanout::NodePage { items: all[from..to].to_vec(), next })
            }
        };
        let mut cursor = fanout::Cursor::start("d".into(), 2, pages.keys().cloned());
        let mut urns = Vec::new();
        loop {
            let merged =
                fanout::page(cursor, 2, hit_key, |_, h| screen(h, &asked(), |_| Visibility::Full), &fetch).await;
            urns.extend(merged.items.into_iter().map(|h| h.entity.unwrap().urn));
            let Some(next) = merged.next else { break };
            cursor = next;
        }
        assert_eq!(
            urns,
            [
                "mm://fraud/dataset/a",
                "mm://growth/dataset/x",
                "mm://fraud/dataset/b",
                "mm://growth/dataset/y",
                "mm://fraud/dataset/c",
                "mm://growth/dataset/z"
            ]
        );
    }
}
