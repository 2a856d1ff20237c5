//! Tenants' sessions: the cookie, the CSRF token, and the middleware in front of every
//! dashboard page and tenant API route.
//!
//! The rules are God Mode's ([`crate::god::session`]): the cookie is `HttpOnly`,
//! `SameSite=Strict` and `Secure` (unless turned off for plain-HTTP demos), a session is
//! kept only as its SHA-256, every state-changing form carries the session's CSRF token,
//! and a cross-site `Origin` is refused before anything else. The cookie has its own name,
//! so an operator's and a tenant's sessions never stand for each other.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use genesis_store::Account;

use crate::app::tenant_access::TenantCaller;
use crate::god::session::{GodSettings, cookie_named, csrf_token, same_origin, set_cookie};
use crate::{AppState, Problem};

/// The session cookie's name.
pub const COOKIE: &str = "genesis_account";
/// The sign-in page.
pub const SIGN_IN: &str = "/app/sign-in";

/// The signed-in tenant of a request, put there by [`require_account`].
#[derive(Debug, Clone)]
pub struct Me {
    /// Who.
    pub account: Account,
    /// The session's CSRF token, for the forms a page renders.
    pub csrf: String,
    /// The cookie's value (sign-out names the session by it).
    pub token: String,
}

impl Me {
    /// A 403 unless `submitted` is this session's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Problem> {
        if crate::god::session::same(&self.csrf, submitted) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "the form's CSRF token does not match the session",
            ))
        }
    }

    /// The caller tenant routes check.
    pub fn caller(&self) -> TenantCaller {
        TenantCaller::Account(self.account.clone())
    }
}

/// The `Set-Cookie` value opening a session.
pub fn session_cookie(token: &str, settings: &GodSettings) -> String {
    set_cookie(COOKIE, token, settings, settings.session_ttl.as_secs())
}

/// The `Set-Cookie` value ending it in the browser.
pub fn cleared_cookie(settings: &GodSettings) -> String {
    set_cookie(COOKIE, "", settings, 0)
}

/// The origin e-mailed links are built on: the configured public origin, else the
/// request's own host when it is this machine (the demo, tests). A link built from any other
/// `Host` header could send a person's token to whoever forged that header, so without a
/// configured origin such a request is refused.
pub fn link_origin(headers: &HeaderMap, settings: &GodSettings) -> Result<String, Problem> {
    if let Some(origin) = &settings.public_origin {
        return Ok(origin.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let local = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        Ok(format!("http://{host}"))
    } else {
        tracing::error!("god_mode.public_origin is not set: e-mail links cannot be built");
        Err(Problem::unavailable(
            "sign-up is not configured on this server (it has no public address for links)",
        ))
    }
}

/// Puts [`Me`] on the request, or sends the browser to the sign-in page (and back after).
pub async fn require_account(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = cookie_named(req.headers(), COOKIE).map(str::to_owned);
    let found = match &token {
        Some(t) => crate::app::accounts::session(&state, t).await,
        None => Ok(None),
    };
    let me = match (found, token) {
        (Ok(Some(account)), Some(token)) => Me {
            account,
            csrf: csrf_token(&token),
            token,
        },
        (Ok(_), _) => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| super::ROOT.into());
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &back)
                .finish();
            return Redirect::to(&format!("{SIGN_IN}?{query}")).into_response();
        }
        (Err(p), _) => return p.into_response(),
    };
    if req.method() != axum::http::Method::GET && !same_origin(req.headers(), &state.god) {
        return Problem::forbidden("cross-site request refused").into_response();
    }
    req.extensions_mut().insert(me);
    next.run(req).await
}

/// For pages another site sends the browser back to (Google's OAuth callback): the session
/// cookie is `SameSite=Strict`, so a navigation that began on another site arrives without
/// it. Such a request is answered with a page that loads the same address again from here,
/// a same-site navigation that carries the cookie (once: `bounced=1` marks the second
/// visit, which then goes on to [`require_account`] as any other).
pub async fn bounce_cross_site(req: Request, next: Next) -> Response {
    let bounced = req
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "bounced"));
    if bounced || cookie_named(req.headers(), COOKIE).is_some() {
        return next.run(req).await;
    }
    let again = match req.uri().query() {
        Some(q) => format!("{}?{q}&bounced=1", req.uri().path()),
        None => format!("{}?bounced=1", req.uri().path()),
    };
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0;url=" (again) };
                title { "Continuing… · Genesis" }
            }
            body { p { a href=(again) { "Continue" } } }
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::response::Html(page.into_string()),
    )
        .into_response()
}

/// Puts the [`TenantCaller`] of an `Authorization: Bearer gt_…` token on the request, or
/// answers 401 with `WWW-Authenticate`.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let caller = match bearer {
        Some(b) => crate::app::tenant_access::token_caller(&state, &b).await,
        None => Ok(None),
    };
    match caller {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => {
            metrics::counter!("genesis_api_auth_failures_total", "api" => "tenant").increment(1);
            Problem::unauthorized("a workspace API token is needed (Authorization: Bearer gt_…)")
                .into_response()
        }
        Err(p) => p.into_response(),
    }
}
