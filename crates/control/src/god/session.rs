//! Operator sign-in for God Mode: argon2id passwords, session cookies, CSRF tokens, and the
//! middleware that keeps every God Mode route behind a session.
//!
//! # Guarantees
//! - A password is only ever kept as an argon2id PHC string (OWASP's parameters: 19 MiB,
//!   two passes); a session token only as its SHA-256. Neither is logged.
//! - The cookie is `HttpOnly` and `SameSite=Strict`, and `Secure` unless
//!   [`GodSettings::secure_cookies`] is off (plain-HTTP demos on loopback).
//! - Every state-changing request carries the session's CSRF token (derived from the
//!   session token, so nothing more is stored), and a cross-site `Origin` is refused even
//!   before that.
//! - Without a live session, a page answers 303 to the sign-in page and a God Mode API call
//!   answers 401: nothing is rendered, nothing is read.
//! - An unknown address costs the same password check as a known one, so the time a
//!   refusal takes does not say which addresses exist.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use genesis_store::Operator;
use sha2::{Digest, Sha256};

use crate::credentials::token_digest;
use crate::{AppState, Problem};

/// The session cookie's name.
pub const COOKIE: &str = "genesis_session";
/// The form field (and header, for scripts) carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Where God Mode lives.
pub const ROOT: &str = "/god";
/// The sign-in page.
pub const SIGN_IN: &str = "/god/sign-in";

/// God Mode's knobs (`[god_mode]` in the configuration).
#[derive(Debug, Clone)]
pub struct GodSettings {
    /// How long a session lives without signing in again.
    pub session_ttl: Duration,
    /// Mark the cookie `Secure` (browsers then send it over HTTPS only, and over plain
    /// HTTP to localhost). Off only for plain-HTTP setups on other hosts.
    pub secure_cookies: bool,
    /// Refused sign-ins of one address within `failure_window` before further attempts are
    /// refused without a password check.
    pub max_failures: i64,
    /// See `max_failures`.
    pub failure_window: Duration,
    /// Where God Mode is reached (`https://ops.example.com`); see [`same_origin`].
    pub public_origin: Option<String>,
    /// Refuse operators without an enrolled second factor (TOTP). Operators with one are
    /// always asked for a code.
    pub require_second_factor: bool,
}

impl Default for GodSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: true,
            max_failures: 5,
            failure_window: Duration::from_secs(15 * 60),
            public_origin: None,
            require_second_factor: false,
        }
    }
}

/// The CSRF token of the session holding `token`: forms echo it back, and a forged request
/// from another site cannot know it.
pub fn csrf_token(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"genesis god-mode csrf\0");
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Equality that takes as long whatever the inputs (both sides are hashed first).
pub(crate) fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// The `Set-Cookie` value opening a session.
pub fn session_cookie(token: &str, settings: &GodSettings) -> String {
    set_cookie(COOKIE, token, settings, settings.session_ttl.as_secs())
}

/// The `Set-Cookie` value ending it in the browser.
pub fn cleared_cookie(settings: &GodSettings) -> String {
    set_cookie(COOKIE, "", settings, 0)
}

/// A session cookie `name`: `HttpOnly`, `SameSite=Strict`, and `Secure` unless the
/// settings turn it off, living `max_age` seconds (0 ends it). God Mode's and the tenants'
/// dashboard's sessions share these rules under different names.
pub fn set_cookie(name: &str, value: &str, settings: &GodSettings, max_age: u64) -> String {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The session token the request's cookie carries, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE)
}

/// The non-empty value of cookie `name` in the request, if any.
pub fn cookie_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// The signed-in operator of a request, put there by [`require_operator`].
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub operator: Operator,
    /// The session's CSRF token, for the forms a page renders.
    pub csrf: String,
    /// The session's token digest (sign-out revokes it).
    pub token_sha256: [u8; 32],
    /// The path asked for: the navigation marks the page it is on.
    pub path: String,
    /// Open alerts over the fleet, for the navigation's badge (pages only; `None` for the
    /// JSON routes, which have no navigation).
    pub open_alerts: Option<i64>,
}

impl SignedIn {
    /// How the audit log names this operator.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.operator.email)
    }

    /// True when `submitted` is this session's CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        same(&self.csrf, submitted)
    }

    /// A 403 unless `submitted` is this session's CSRF token: every state-changing form
    /// goes through this.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Problem> {
        if self.csrf_matches(submitted) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "the form's CSRF token does not match the session",
            ))
        }
    }
}

/// True when the request's `Origin` (if any) is God Mode's own: browsers send it on every
/// cross-site POST, so a mismatch is a forgery whatever else it carries.
///
/// The scheme counts as much as the host: a page on `http://ops.example.com` (a network
/// attacker can serve one) is another origin than `https://ops.example.com`. God Mode's
/// origin is [`GodSettings::public_origin`] when configured; otherwise the request's `Host`
/// over HTTPS, or over HTTP when cookies are not `Secure` or the host is a loopback address
/// (where `make demo` serves plain HTTP and browsers still send `Secure` cookies).
pub fn same_origin(headers: &HeaderMap, settings: &GodSettings) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if let Some(expected) = &settings.public_origin {
        return origin.eq_ignore_ascii_case(expected.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let scheme = if settings.secure_cookies && !is_loopback(host) {
        "https"
    } else {
        "http"
    };
    !host.is_empty()
        && origin.split_once("://").is_some_and(|(s, rest)| {
            s.eq_ignore_ascii_case(scheme) && rest.eq_ignore_ascii_case(host)
        })
}

/// Whether `host` (a `Host` header: name or address, and maybe a port) is this machine.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_api(path: &str) -> bool {
    path.starts_with("/god/api/")
}

/// Puts [`SignedIn`] on the request, or answers for the missing session: 303 to the
/// sign-in page (with the page asked for, to come back to) or, under `/god/api/`, 401.
pub async fn require_operator(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let token = cookie_token(req.headers()).map(str::to_owned);
    let found = match &token {
        Some(t) => state
            .stores
            .coordinator()
            .operator_session(&token_digest(t))
            .await
            .map(|o| o.map(|o| (o, t))),
        None => Ok(None),
    };
    let signed_in = match found {
        Ok(Some((operator, t))) => SignedIn {
            operator,
            csrf: csrf_token(t),
            token_sha256: token_digest(t),
            path: path.clone(),
            open_alerts: None,
        },
        Ok(None) if is_api(&path) => {
            return Problem::unauthorized("sign in to God Mode first").into_response();
        }
        Ok(None) => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| ROOT.into());
            let query = form_urlencoded_pair("next", &back);
            return Redirect::to(&format!("{SIGN_IN}?{query}")).into_response();
        }
        Err(e) => return Problem::from(e).into_response(),
    };
    if req.method() != axum::http::Method::GET && !same_origin(req.headers(), &state.god) {
        return Problem::forbidden("cross-site request refused").into_response();
    }
    let mut signed_in = signed_in;
    if !is_api(&path) && req.method() == axum::http::Method::GET {
        // A badge that cannot be counted is left off rather than failing the page.
        signed_in.open_alerts = crate::app::alerts::open_count(&state).await.ok();
    }
    req.extensions_mut().insert(signed_in);
    next.run(req).await
}

/// Keeps support staff out of the routes that act on the whole fleet or read across
/// tenants (rollouts, reconcilers, deliveries, the audit viewer, finance, security): no
/// grant covers them. Runs inside [`require_operator`]; the refusal is audited.
pub async fn require_fleet_role(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(me) = req.extensions().get::<SignedIn>().cloned() else {
        return Problem::unauthorized("sign in to God Mode first").into_response();
    };
    let what = req.uri().path().to_owned();
    match crate::app::support_access::require_fleet_role(
        state.stores.coordinator(),
        crate::app::support_access::Caller::Operator(&me.operator),
        None,
        "fleet_page",
        &what,
    )
    .await
    {
        Ok(_) => next.run(req).await,
        Err(p) if is_api(&what) => p.into_response(),
        Err(p) => super::layout::problem_page(&me, &p, ROOT),
    }
}

/// `name=value`, URL-encoded.
pub fn form_urlencoded_pair(name: &str, value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// Where to go after signing in: `next` when it is a God Mode page of this site, else the
/// overview (an open redirect would let a phishing link borrow our sign-in page). Only
/// visible ASCII passes: a newline or a raw non-ASCII character cannot go in a `Location`
/// header (browsers percent-encode them; anything else is not a browser following a link).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == ROOT || n.starts_with("/god/") || n.starts_with("/god?"))
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !is_api(n) =>
        {
            n.to_owned()
        }
        _ => ROOT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_csrf_is_per_session() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; genesis_session=tok; b=2".parse().expect("header"),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        h.insert(header::COOKIE, "genesis_session=".parse().expect("header"));
        assert_eq!(cookie_token(&h), None);
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
        let c = session_cookie("tok", &GodSettings::default());
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
    }

    #[test]
    fn only_local_god_mode_pages_are_returned_to() {
        assert_eq!(safe_next(Some("/god/droplets/x")), "/god/droplets/x");
        assert_eq!(safe_next(Some("/god")), "/god");
        for bad in [
            "https://evil.example/god",
            "//evil.example/god/",
            "/god/api/fleet",
            "/api/v1/workspaces",
            "/godzilla",
            "/god/x\r\nSet-Cookie: a=b",
            "/god/\n",
            "/god/caf\u{e9}",
            "/god/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/god", "{bad}");
        }
        assert_eq!(safe_next(None), "/god");
        // Whatever comes in, the answer is a valid Location header.
        for raw in ["/god/\u{0}", "/god/\u{7f}", "/god/\t", "/god?q=%0d%0a"] {
            let n = safe_next(Some(raw));
            assert!(
                axum::http::HeaderValue::try_from(n.as_str()).is_ok(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn cross_site_origins_are_told_apart_by_scheme_too() {
        let plain = GodSettings {
            secure_cookies: false,
            ..GodSettings::default()
        };
        let secure = GodSettings::default();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().expect("host"));
        assert!(
            same_origin(&h, &secure),
            "no Origin: not a browser's cross-site POST"
        );
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().expect("o"));
        assert!(same_origin(&h, &secure), "loopback is served over HTTP");
        h.insert(header::ORIGIN, "https://evil.example".parse().expect("o"));
        assert!(!same_origin(&h, &secure));

        h.insert(header::HOST, "ops.example.com".parse().expect("host"));
        h.insert(header::ORIGIN, "http://ops.example.com".parse().expect("o"));
        assert!(
            !same_origin(&h, &secure),
            "HTTP is another origin than HTTPS"
        );
        assert!(
            same_origin(&h, &plain),
            "unless God Mode is served over HTTP"
        );
        h.insert(
            header::ORIGIN,
            "https://ops.example.com".parse().expect("o"),
        );
        assert!(same_origin(&h, &secure));
        assert!(!same_origin(&h, &plain));

        let pinned = GodSettings {
            public_origin: Some("https://god.example.com/".into()),
            ..GodSettings::default()
        };
        assert!(
            !same_origin(&h, &pinned),
            "the configured origin wins over Host"
        );
        h.insert(
            header::ORIGIN,
            "https://god.example.com".parse().expect("o"),
        );
        assert!(same_origin(&h, &pinned));
        for host in ["localhost:1", "[::1]:8080", "127.0.0.9"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["localhost.evil.example", "10.0.0.1:80", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
