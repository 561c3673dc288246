//! The web UI's assets (crates/metamesh-router/ui/), embedded in the binary and served at `/`
//! and `/ui/<file>`, and the security headers every answer of the HTTPS listener carries.
//!
//! The page is plain HTML, CSS and JavaScript modules: no build step, nothing fetched from
//! elsewhere. Its Content-Security-Policy allows scripts and styles from the router only, and
//! no inline script, so a string that slipped past the UI's escaping still could not run.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Every embedded file: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../ui/app.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("../../ui/dom.js")),
    ("layout.js", "text/javascript; charset=utf-8", include_str!("../../ui/layout.js")),
    ("lineage.js", "text/javascript; charset=utf-8", include_str!("../../ui/lineage.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_str!("../../ui/pages.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../ui/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("../../ui/favicon.svg")),
];

/// The policy of every answer: only the router's own scripts, styles and images.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // Revalidate on every load: a new router version serves new files at once.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found(format!("no such file: /ui/{name}")).into_response(),
    }
}

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    asset("index.html")
}

/// `GET /favicon.svg`.
pub(super) async fn favicon() -> Response {
    asset("favicon.svg")
}

/// `GET /ui/{file}`.
pub(super) async fn file(Path(name): Path<String>) -> Response {
    if name == "index.html" {
        return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/")]).into_response();
    }
    asset(&name)
}

/// Adds the security headers to every answer of the listener (the API's JSON too: a browser
/// opening an API URL gets the same protections as the page).
pub(super) async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    response
}
