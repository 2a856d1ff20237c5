//! What every response carries, whoever answered it: browser security headers, and errors
//! as RFC 9457 problem+json even when the answer came from the framework rather than from a
//! handler (a 405 with an empty body, a rejection in `text/plain`).
//!
//! # Guarantees
//! - Every response has a Content-Security-Policy that allows no inline script and no
//!   framing (`frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`, and a
//!   `Referrer-Policy` that never sends a God Mode URL (ids in paths) to another site.
//! - Every error response (4xx, 5xx) is `application/problem+json`, except God Mode's HTML
//!   pages that explain a refusal to a person in a browser.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// Scripts and styles only from this origin; inline `style` attributes only (progress bars'
/// widths), never inline `<script>` or `<style>` elements, no plugins, no framing, and forms
/// that only post back here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy for a page whose form may also be sent to `origin` (a scheme, host and
/// port): the browser applies `form-action` to the redirects after a submission too, so a
/// form answered by a redirect to another site (Google's consent page) needs that site
/// named in the policy of the page that holds the form.
pub fn policy_with_form_action_to(origin: &str) -> Option<HeaderValue> {
    let origin = origin.trim_end_matches('/');
    if origin.is_empty() || origin.contains([';', '\'', ' ', '\n', '\r', ',']) {
        return None;
    }
    HeaderValue::from_str(&CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    ))
    .ok()
}

/// The headers every response gets (unless the handler set its own).
const HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// Adds the security headers.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    for (name, value) in HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

/// How much of a stray error body is read to say what went wrong (they are one line).
const STRAY_BODY_LIMIT: usize = 4096;

/// Turns any error response that is not problem+json (nor a God Mode page) into one.
pub async fn problems_only(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let problem = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Problem::method_not_allowed(method.as_str(), allowed)
    } else if status.is_server_error() {
        tracing::error!(%status, "an error response without a problem body");
        Problem::internal()
    } else if parts.headers.contains_key(header::CONTENT_ENCODING) {
        Problem::with_status(
            status,
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_lowercase(),
        )
    } else {
        let text = axum::body::to_bytes(body, STRAY_BODY_LIMIT)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default();
        let detail = if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_lowercase()
        } else {
            crate::extract::people_text(&text)
        };
        Problem::with_status(status, detail)
    };
    let mut out = problem.into_response();
    *out.status_mut() = status;
    // What the client needs to act on the refusal, and (for a managed call a vendor
    // refused) what it was charged: nothing.
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
        HeaderName::from_static(crate::api::managed::CHARGED_HEADER),
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    if method == Method::HEAD {
        *out.body_mut() = Body::empty();
    }
    out
}
