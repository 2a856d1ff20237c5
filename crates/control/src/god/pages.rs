//! God Mode's sign-in, sign-out and fleet overview pages (spec 44.1).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use genesis_core::DropletState;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{html_response, moment, page};
use super::session::{
    ROOT, SIGN_IN, SignedIn, cleared_cookie, safe_next, same_origin, session_cookie,
};
use crate::app::fleet::Overview;
use crate::app::operators;
use crate::extract::{ApiForm, ApiQuery};
use crate::{AppState, Problem};

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
            main { form.signin method="post" action=(SIGN_IN) {
                h1 { "Genesis God Mode" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail" }
                input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" required autocomplete="current-password";
                label for="code" { "Code from your authenticator app (if you enrolled one)" }
                input #code type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code";
                button type="submit" id="sign-in" { "Sign in" }
            } }
        },
    )
}

/// `GET /god/sign-in`.
pub async fn sign_in_page(ApiQuery(q): ApiQuery<NextQuery>) -> Response {
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
    /// The second factor's code (operators who enrolled one).
    #[serde(default)]
    code: Option<String>,
    next: Option<String>,
}

/// `POST /god/sign-in`: refuses a cross-site form, then lets [`operators::sign_in`] check
/// the attempt; sets the session cookie and goes to `next`, or shows the form again with
/// what went wrong (and `Retry-After` when waiting helps).
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    ApiForm(form): ApiForm<SignInForm>,
) -> Result<Response, Problem> {
    if !same_origin(&headers, &state.god) {
        return Err(Problem::forbidden("cross-site sign-in refused"));
    }
    let source = state
        .sign_ins
        .source(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    let next = safe_next(form.next.as_deref());
    let attempt = operators::SignInAttempt {
        source,
        email: &form.email,
        password: form.password,
        code: form.code.as_deref(),
    };
    match operators::sign_in(&state, attempt).await? {
        Ok(token) => Ok((
            [(header::SET_COOKIE, session_cookie(&token, &state.god))],
            Redirect::to(&next),
        )
            .into_response()),
        Err(refusal) => {
            let email = form.email.trim().to_lowercase();
            let mut page = html_response(
                refusal.status(),
                sign_in_form(&next, Some(&refusal.message()), &email),
            );
            if let Some(s) = refusal.retry_after_s() {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(s));
            }
            Ok(page)
        }
    }
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
    ApiForm(form): ApiForm<CsrfForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    operators::sign_out(&state, &me.token_sha256).await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie(&state.god))],
        Redirect::to(SIGN_IN),
    )
        .into_response())
}

/// `GET /god/api/fleet`.
pub async fn overview_json(State(state): State<AppState>) -> Result<Json<Overview>, Problem> {
    Ok(Json(crate::app::fleet::overview(&state).await?))
}

fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `GET /god`: the fleet overview (spec 44.1). The figures refresh themselves every
/// [`REFRESH_S`] seconds ([`LIVE_SCRIPT`]); when a refresh fails, the page says how old
/// they are instead of passing them off as current.
pub async fn overview(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let o = crate::app::fleet::overview(&state).await?;
    let states: Vec<DropletState> = o
        .fleet
        .by_state
        .keys()
        .filter_map(|code| DropletState::from_code(code))
        .collect();
    let now = chrono::Utc::now();
    let body = html! {
        main #overview data-refresh=(REFRESH_S) {
            h1 { "Fleet overview" }
            p.quiet #freshness {
                "As of " time #as-of datetime=(now.to_rfc3339()) { (now.format("%H:%M:%S UTC")) }
                "; refreshes every " (REFRESH_S) " s."
            }
            div.cards {
                div.card #total { b { (o.fleet.total) } "droplets" }
                @for s in &states {
                    div.card data-state=(s.code()) title=(s.code()) {
                        b { (o.fleet.by_state[s.code()]) }
                        i class={ "swatch s-" (s.code()) } {} (s.in_words())
                    }
                }
                div.card #savings {
                    b { (dollars(o.hibernation.saved_cents)) }
                    "saved by hibernation (" (o.hibernation.totals.hibernating_now) " asleep now)"
                }
                div.card #ignitions { b { (o.ignitions.count) } "ignitions in flight" }
            }
            h2 { "By tier" }
            table #tiers {
                tr { th { "Tier" } th { "Droplets" } }
                @for (tier, n) in &o.fleet.by_tier {
                    tr data-tier=(tier) { td { (tier) } td { (n) } }
                }
            }
            @if !o.ignitions.oldest.is_empty() {
                h2 { "Ignitions in flight " small.quiet { "(oldest first)" } }
                table #ignitions-in-flight {
                    tr { th { "Tenant" } th.text { "Phase" } th.text { "Step" } th { "Started" } }
                    @for i in &o.ignitions.oldest {
                        tr {
                            td { a href={ "/god/tenants/" (i.workspace_id) } { code { (i.workspace_id) } } }
                            td.text { (i.phase) }
                            td.text { (i.step.as_deref().unwrap_or("—")) }
                            td { (moment(i.started_at)) }
                        }
                    }
                }
            }
            h2 { "By region" }
            table #regions {
                tr { th { "Region" } @for s in &states { th title=(s.code()) { (s.in_words()) } } th { "Total" } }
                @for (region, counts) in &o.fleet.by_region {
                    tr data-region=(region) {
                        td { a href={ "/god/heatmap?region=" (region) } { (region) } }
                        @for s in &states { td { (counts.get(s.code()).copied().unwrap_or(0)) } }
                        td { (counts.values().sum::<i64>()) }
                    }
                }
            }
            script src="/god/assets/overview-live.js" {}
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Fleet overview", Some(&me), body),
    ))
}

/// Seconds between the overview's refreshes.
pub const REFRESH_S: u32 = 10;

/// Keeps the overview's figures current from `/god/api/fleet`, and marks them stale when
/// that fails; a state appearing or disappearing reloads the page (its cards change).
/// Served as a file: the Content-Security-Policy refuses inline scripts.
pub const LIVE_SCRIPT: &str = r#"
(function(){
  var main=document.getElementById('overview'); if(!main||!window.fetch) return;
  var every=(+main.dataset.refresh||10)*1000, asOf=document.getElementById('as-of');
  var fresh=document.getElementById('freshness'), last=Date.now();
  function ago(ms){var s=Math.round(ms/1000);return s<60?s+' s':Math.round(s/60)+' min';}
  function tick(){
    fetch('/god/api/fleet',{credentials:'same-origin'}).then(function(r){
      if(!r.ok) throw new Error('HTTP '+r.status); return r.json();
    }).then(function(o){
      var cards=document.querySelectorAll('.card[data-state]'), seen=Object.keys(o.fleet.by_state);
      if(cards.length!==seen.length){location.reload();return;}
      cards.forEach(function(c){
        var n=o.fleet.by_state[c.dataset.state]; if(n===undefined){location.reload();return;}
        c.querySelector('b').textContent=n;});
      document.querySelector('#total b').textContent=o.fleet.total;
      document.querySelector('#ignitions b').textContent=o.ignitions.count;
      last=Date.now(); var d=new Date(last);
      asOf.textContent=d.toISOString().substring(11,19)+' UTC'; asOf.setAttribute('datetime',d.toISOString());
      fresh.classList.remove('stale'); fresh.classList.add('quiet');
    }).catch(function(){
      fresh.classList.add('stale'); fresh.classList.remove('quiet');
      asOf.textContent=new Date(last).toISOString().substring(11,19)+' UTC (stale: not updated for '+ago(Date.now()-last)+')';
    });
  }
  setInterval(tick,every);
})();
"#;

/// The not-found page.
pub fn not_found_page(me: &SignedIn) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            Some(me),
            html! { main { h1 { "Not found" } p { a href=(ROOT) { "Back to the fleet" } } } },
        ),
    )
}

/// Any other God Mode path, once signed in.
pub async fn not_found(Extension(me): Extension<SignedIn>) -> Response {
    not_found_page(&me)
}

/// `found`, or, for a malformed or unknown id, the not-found page (a page, not a JSON
/// problem); other refusals stay errors.
pub fn found_or_page<T>(
    found: Result<T, Problem>,
    me: &SignedIn,
) -> Result<Result<T, Response>, Problem> {
    match found {
        Ok(v) => Ok(Ok(v)),
        Err(p) if matches!(p.status, 400 | 404 | 422) => Ok(Err(not_found_page(me))),
        // A support operator without the grant it takes: the page says why, and where
        // grants are asked for.
        Err(p) if p.status == 403 => Ok(Err(super::layout::problem_page(
            me,
            &p,
            super::support_pages::PATH,
        ))),
        Err(p) => Err(p),
    }
}
