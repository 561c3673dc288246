//! Browser sessions for the web UI (docs/web-ui.md): an API key, posted once to
//! `POST /api/mesh/v1/session`, is exchanged for a random token carried by an `HttpOnly`,
//! `Secure`, `SameSite=Strict` cookie. The session stands for the key's principal, so the same
//! policies apply as to the key or the principal's certificate.
//!
//! A session authenticates reads only (GET and HEAD, and signing out): every write still needs
//! a certificate or a bearer key, so a forged cross-site request can never change anything
//! even where a browser ignores `SameSite`. Sign-in insists on a JSON body, which a cross-site
//! form cannot send without a CORS preflight the router never grants.
//!
//! Sessions live in the router's memory: a restart signs everyone out, and routers behind a
//! load balancer need session affinity (or client certificates).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use rand_core::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::HttpState;

/// The cookie's name.
pub const COOKIE: &str = "mm_session";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions held at once; past it the oldest is dropped.
const MAX_SESSIONS: usize = 10_000;

/// The live sessions, by the SHA-256 of their token (the token itself is never stored).
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

#[derive(Clone, Debug)]
struct Session {
    principal: String,
    expires: Instant,
}

impl Sessions {
    /// A new session for `principal`; returns its token.
    pub fn create(&self, principal: &str) -> String {
        let mut token = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut token);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                live.remove(&oldest);
            }
        }
        live.insert(digest(&token), Session { principal: principal.to_owned(), expires: now + SESSION_TTL });
        token
    }

    /// The principal of a live session.
    pub fn principal(&self, token: &str) -> Option<String> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&digest(token)).filter(|s| s.expires > Instant::now()).map(|s| s.principal.clone())
    }

    /// Ends a session (nothing happens for an unknown token).
    pub fn remove(&self, token: &str) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(token));
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The session token a request's `Cookie` headers carry, if any.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

fn cookie(value: &str, max_age: u64) -> HeaderValue {
    let text = format!("{COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("mm_session=; Max-Age=0"))
}

/// `POST /api/mesh/v1/session` with `{"apiKey": "…"}`: signs in. 200 `{"principal": …}` and the
/// cookie; 401 for an unknown key; 400 for a body without `apiKey`; 415 unless the body is JSON.
pub(super) async fn sign_in(
    State(state): State<std::sync::Arc<HttpState>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    match start(&state, &headers, &body) {
        Ok((principal, token)) => {
            let mut response = Json(json!({"principal": principal})).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie(&token, SESSION_TTL.as_secs()));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

fn start(state: &HttpState, headers: &HeaderMap, body: &[u8]) -> Result<(String, String), ApiError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json_body {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "sign-in takes a JSON body: {\"apiKey\": \"…\"}",
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let key = match value.get("apiKey") {
        Some(serde_json::Value::String(k)) if !k.trim().is_empty() => k.trim(),
        Some(_) => return Err(ApiError::bad_request("apiKey: expected a non-empty string")),
        None => return Err(ApiError::bad_request("apiKey: missing")),
    };
    let principal = state.keys.principal_of(key).ok_or_else(|| ApiError::unauthorized("unknown API key"))?.to_owned();
    tracing::info!(%principal, "web session started");
    let token = state.sessions.create(&principal);
    Ok((principal, token))
}

/// `DELETE /api/mesh/v1/session`: signs out (204, the cookie cleared), signed in or not.
pub(super) async fn sign_out(State(state): State<std::sync::Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Some(token) = token(&headers) {
        state.sessions.remove(token);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie("", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_until_removed_and_cookies_are_parsed() {
        let sessions = Sessions::default();
        let t = sessions.create("p");
        assert_eq!(sessions.principal(&t).as_deref(), Some("p"));
        assert_eq!(sessions.principal("other"), None);
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("a=b; {COOKIE}={t}; c=d").parse().unwrap());
        assert_eq!(token(&headers), Some(t.as_str()));
        sessions.remove(&t);
        assert_eq!(sessions.principal(&t), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
