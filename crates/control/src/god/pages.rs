//! God Mode's server-rendered pages (spec 44.1). HTML is built with `maud`, which escapes
//! every interpolated value: tenant-supplied text (names, error messages) can never become
//! markup. No script is needed to read a page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};

use super::session::{
    CSRF_FIELD, ROOT, SIGN_IN, SignedIn, cleared_cookie, decoy_hash, new_token, safe_next,
    same_origin, session_cookie, token_digest, verify_password,
};
use crate::api::fleet::fleet_totals;
use crate::api::hibernation::{Savings, savings_now};
use crate::{AppState, Problem};

const STYLE: &str = r#"
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232b;background:#f4f6f8}
header{display:flex;align-items:center;gap:1.5rem;padding:.7rem 1.5rem;background:#141b24;color:#fff}
header a{color:#cfe3ff;text-decoration:none}header .who{margin-left:auto;opacity:.8}
main{padding:1.5rem;max-width:1200px}h1{font-size:1.4rem;margin:.2rem 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:1rem}.card{background:#fff;border-radius:8px;padding:1rem 1.2rem;box-shadow:0 1px 3px #0002;min-width:10rem}
.card b{display:block;font-size:1.8rem}table{border-collapse:collapse;background:#fff;margin:1rem 0}
td,th{padding:.35rem .8rem;border-bottom:1px solid #e4e8ec;text-align:right}th:first-child,td:first-child{text-align:left}
form.inline{display:inline}button{font:inherit;cursor:pointer}
.signin{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 8px #0003}
.signin label{display:block;margin:.8rem 0 .2rem}.signin input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}
.signin button{margin-top:1.2rem;width:100%;padding:.6rem;background:#1f6feb;color:#fff;border:0;border-radius:6px}
.error{color:#b42318;background:#fee4e2;padding:.5rem .7rem;border-radius:6px}
"#;

fn page(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Genesis God Mode" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                @if let Some(s) = who {
                    header {
                        strong { "Genesis God Mode" }
                        a href=(ROOT) { "Fleet" }
                        span.who { (s.operator.email) }
                        form.inline method="post" action="/god/sign-out" {
                            input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn sign_in_form(next: &str, error: Option<&str>, email: &str) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            form.signin method="post" action=(SIGN_IN) {
                h1 { "Genesis God Mode" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail" }
                input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" required autocomplete="current-password";
                button type="submit" id="sign-in" { "Sign in" }
            }
        },
    )
}

/// `GET /god/sign-in`.
pub async fn sign_in_page(Query(q): Query<NextQuery>) -> Response {
    html_response(
        StatusCode::OK,
        sign_in_form(&safe_next(q.next.as_deref()), None, ""),
    )
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// `POST /god/sign-in`: checks the password (argon2id, off the async workers), opens a
/// session and sets its cookie; a refusal is audited as LOGIN_FAILED and says only "wrong
/// e-mail or password". Past `max_failures` in the window, the address is refused without
/// a check until the window has passed.
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, Problem> {
    if !same_origin(&headers) {
        return Ok((StatusCode::FORBIDDEN, "cross-site sign-in refused").into_response());
    }
    let db = state.stores.distinct()[0].clone();
    let settings = &state.god;
    let email = form.email.trim().to_lowercase();
    let next = safe_next(form.next.as_deref());
    let client = peer.map(|Extension(ConnectInfo(a))| a.ip().to_string());
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(settings.failure_window).unwrap_or(chrono::Duration::zero());
    if db.operator_failures_since(&email, since).await? >= settings.max_failures {
        db.operator_login_failed(&email, client.as_deref(), "too_many_failures")
            .await?;
        return Ok(html_response(
            StatusCode::TOO_MANY_REQUESTS,
            sign_in_form(
                &next,
                Some(
                    "Too many failed sign-ins for this address. Wait a few minutes and try again.",
                ),
                &email,
            ),
        ));
    }
    let account = db.operator_credentials(&email).await?;
    let (hash, known) = match &account {
        Some(a) => (a.password_hash.clone(), true),
        None => (decoy_hash().to_owned(), false),
    };
    let password = form.password;
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let refusal = match &account {
        _ if !known => Some("unknown_operator"),
        Some(a) if a.disabled => Some("disabled"),
        _ if !matches => Some("wrong_password"),
        _ => None,
    };
    let Some(account) = account.filter(|_| refusal.is_none()) else {
        db.operator_login_failed(&email, client.as_deref(), refusal.unwrap_or("refused"))
            .await?;
        tracing::warn!(email = %email, reason = ?refusal, "God Mode sign-in refused");
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            sign_in_form(&next, Some("Wrong e-mail or password."), &email),
        ));
    };
    let token = new_token();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(settings.session_ttl).unwrap_or(chrono::Duration::hours(1));
    db.operator_session_open(
        genesis_store::NewSession {
            token_sha256: &token_digest(&token),
            operator: account.operator.id,
            expires_at,
            client: client.as_deref(),
        },
        &email,
    )
    .await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(&token, settings))],
        Redirect::to(&next),
    )
        .into_response())
}

/// A form that only carries the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /god/sign-out`: revokes the session (audited LOGOUT) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Problem> {
    if !me.csrf_matches(&form.csrf) {
        return Err(Problem::forbidden(
            "the form's CSRF token does not match the session",
        ));
    }
    state.stores.distinct()[0]
        .operator_session_revoke(&me.token_sha256)
        .await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie(&state.god))],
        Redirect::to(SIGN_IN),
    )
        .into_response())
}

/// What the fleet overview shows (also served as JSON at `/god/api/fleet`).
#[derive(Debug, Serialize)]
pub struct Overview {
    /// Droplets per state and region.
    pub fleet: genesis_store::FleetCounts,
    /// Hibernation savings (spec 55.2).
    pub hibernation: Savings,
}

async fn overview_of(state: &AppState) -> Result<Overview, Problem> {
    Ok(Overview {
        fleet: fleet_totals(state).await?,
        hibernation: savings_now(state).await?,
    })
}

/// `GET /god/api/fleet`.
pub async fn overview_json(State(state): State<AppState>) -> Result<Json<Overview>, Problem> {
    Ok(Json(overview_of(&state).await?))
}

fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `GET /god`: the fleet overview (spec 44.1).
pub async fn overview(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let o = overview_of(&state).await?;
    let states: Vec<&String> = o.fleet.by_state.keys().collect();
    let body = html! {
        main {
            h1 { "Fleet overview" }
            div.cards {
                div.card #total { b { (o.fleet.total) } "droplets" }
                @for (s, n) in &o.fleet.by_state {
                    div.card data-state=(s) { b { (n) } (s) }
                }
                div.card #savings {
                    b { (dollars(o.hibernation.saved_cents)) }
                    "saved by hibernation (" (o.hibernation.totals.hibernating_now) " asleep now)"
                }
            }
            h2 { "By region" }
            table #regions {
                tr { th { "Region" } @for s in &states { th { (s) } } th { "Total" } }
                @for (region, counts) in &o.fleet.by_region {
                    tr data-region=(region) {
                        td { (region) }
                        @for s in &states { td { (counts.get(*s).copied().unwrap_or(0)) } }
                        td { (counts.values().sum::<i64>()) }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Fleet overview", Some(&me), body),
    ))
}

/// Any other God Mode path, once signed in.
pub async fn not_found(Extension(me): Extension<SignedIn>) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            Some(&me),
            html! { main { h1 { "Not found" } p { a href=(ROOT) { "Back to the fleet" } } } },
        ),
    )
}
