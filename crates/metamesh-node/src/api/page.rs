//! Page sizes and the node's own page tokens.
//!
//! Tokens are opaque to clients: base64 of a small JSON document. Where the store issues a
//! cursor, the node's token wraps it (adding, say, the revision a listing reads at); where the
//! node pages itself (tenants, versions, documents), the token says where the last page ended.
//! A token the node did not issue is INVALID_ARGUMENT on `page_token`, never a panic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use metamesh_store::read::MAX_PAGE;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::Status;

use crate::api::status;

/// Items per page when the request says 0 ("server default").
pub const DEFAULT_PAGE: usize = 100;

/// The page size a request asks for: 0 is the default; above [`MAX_PAGE`] is refused rather
/// than silently cut, so that a client counting on its size learns at once.
pub fn size(requested: u32) -> Result<usize, Status> {
    match requested as usize {
        0 => Ok(DEFAULT_PAGE),
        n if n <= MAX_PAGE => Ok(n),
        n => Err(status::invalid("page_size", format!("{n} is over the maximum of {MAX_PAGE}"))),
    }
}

/// A token carrying `value`.
pub fn encode<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("page tokens serialize"))
}

/// The value inside `token`; `None` for an empty token (the first page).
pub fn decode<T: DeserializeOwned>(token: &str) -> Result<Option<T>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || status::invalid("page_token", "not a token this server issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
}

/// One page of `items` (already in order) after `after`, by key: the page and the key to resume
/// after, when more remain.
pub fn after_key<T, K: Ord + Clone>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
    after: Option<&K>,
    limit: usize,
) -> (Vec<T>, Option<K>) {
    let mut rest = items.into_iter().filter(|item| after.is_none_or(|a| key(item) > *a));
    let page: Vec<T> = rest.by_ref().take(limit).collect();
    let next = match (rest.next(), page.last()) {
        (Some(_), Some(last)) => Some(key(last)),
        _ => None,
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0).unwrap(), DEFAULT_PAGE);
        assert_eq!(size(7).unwrap(), 7);
        assert_eq!(size(MAX_PAGE as u32 + 1).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = encode(&(3u64, "x".to_owned()));
        assert_eq!(decode::<(u64, String)>(&t).unwrap(), Some((3, "x".to_owned())));
        assert_eq!(decode::<(u64, String)>("").unwrap(), None);
        for bad in ["!!", "e30", "bm90IGpzb24"] {
            let err = decode::<(u64, String)>(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn pages_by_key() {
        let (p, next) = after_key(1..=5, |x| *x, None, 2);
        assert_eq!((p, next), (vec![1, 2], Some(2)));
        let (p, next) = after_key(1..=5, |x| *x, Some(&4), 2);
        assert_eq!((p, next), (vec![5], None));
        let (p, next) = after_key(1..=4, |x| *x, Some(&2), 2);
        assert_eq!((p, next), (vec![3, 4], None));
    }
}
