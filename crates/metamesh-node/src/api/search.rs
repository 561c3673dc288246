//! SearchService: full-text search over this shard's live entities.
//!
//! The store filters on one tenant and one kind; a request naming several of either is checked
//! hit by hit here. Pages then no longer line up with the store's, so the node's token says
//! where in which store page to continue (`skip`), and a call scans at most
//! [`MAX_SCANNED_PAGES`] store pages before answering with what it found and a token.
//!
//! An empty query matches everything the filters allow: it is answered by the store's listing
//! (in creation order, score 0) instead of the full-text index, which needs a word.

use metamesh_proto::convert::{self, SearchScope};
use metamesh_proto::v1;
use metamesh_proto::v1::search_service_server::SearchService;
use metamesh_store::{Page, SearchHit, Store};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use metamesh_policy::Visibility;

use crate::api::{authz, page, status, NodeApi};

/// Store pages one call may scan for hits that pass the node-side filters.
pub const MAX_SCANNED_PAGES: usize = 20;

/// Where a search continues: the store page (by its cursor; none = the first) and how many of
/// its hits were already returned.
#[derive(Default, Serialize, Deserialize)]
struct SearchToken {
    store: Option<String>,
    skip: usize,
}

/// One store page of hits; listing results count as hits with score 0 (bm25 0, no snippet).
async fn store_page(
    store: &Store,
    query: &str,
    scope: &SearchScope,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<SearchHit>, Status> {
    if query.trim().is_empty() {
        let listed = store.list_entities(&scope.filter, None, cursor, limit).await.map_err(status::store)?;
        let items = listed.items.into_iter().map(|entity| SearchHit { entity, score: 0.0, snippet: String::new() });
        return Ok(Page { items: items.collect(), next: listed.next });
    }
    store.search(query, &scope.filter, cursor, limit).await.map_err(status::store)
}

#[tonic::async_trait]
impl SearchService for NodeApi {
    async fn search(&self, request: Request<v1::SearchRequest>) -> Result<Response<v1::SearchReply>, Status> {
        let authorized = authz::authorized(&request)?;
        let r = request.into_inner();
        let scope = convert::search_scope(&r).map_err(status::refused)?;
        // A caller who may only discover an entity may find it by its name, never by what the
        // index holds of its description, tags or documents.
        let words: Vec<String> =
            r.query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        let filters_details =
            !r.tags.is_empty() || !r.owner.is_empty() || !r.type_name.is_empty() || !r.property_filters.is_empty();
        let limit = page::size(r.page_size)?;
        let mut at: SearchToken = page::decode(&r.page_token)?.unwrap_or_default();
        let store = self.store(None).await?;
        let mut hits = Vec::new();
        let mut next = None;
        for scanned in 1..=MAX_SCANNED_PAGES {
            let found = store_page(&store, &r.query, &scope, at.store.as_deref(), limit).await?;
            let len = found.items.len();
            for (i, hit) in found.items.into_iter().enumerate().skip(at.skip) {
                if !scope.admits(&hit.entity) {
                    continue;
                }
                match authorized.visibility(&hit.entity.urn) {
                    Visibility::Full => hits.push(convert::search_hit_to_wire(&hit.entity, hit.score, &hit.snippet)),
                    // A filter on what a discoverer may not see (tags, owner, type,
                    // properties) must not tell it anything: its entities never match one.
                    Visibility::DiscoverOnly if filters_details => continue,
                    Visibility::DiscoverOnly => {
                        let name = hit.entity.urn.name().to_lowercase();
                        if !words.iter().all(|w| name.contains(w.as_str())) {
                            continue;
                        }
                        hits.push(convert::search_hit_to_wire(&authz::redact(&hit.entity), hit.score, ""));
                    }
                    Visibility::Hidden => continue,
                }
                if hits.len() == limit {
                    next = if i + 1 < len {
                        Some(SearchToken { store: at.store.clone(), skip: i + 1 })
                    } else {
                        found.next.clone().map(|c| SearchToken { store: Some(c), skip: 0 })
                    };
                    break;
                }
            }
            if hits.len() == limit {
                break;
            }
            let Some(cursor) = found.next else { break };
            at = SearchToken { store: Some(cursor), skip: 0 };
            if scanned == MAX_SCANNED_PAGES {
                next = Some(at);
                break;
            }
        }
        Ok(Response::new(v1::SearchReply {
            hits,
            next_page_token: next.map(|t| page::encode(&t)).unwrap_or_default(),
            partial: false,
            partial_reasons: Vec::new(),
        }))
    }
}
