//! God Mode's sign-in, sign-out and fleet overview pages (spec 44.1).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::layout::{html_response, page};
use super::session::{
    ROOT, SIGN_IN, SignedIn, cleared_cookie, decoy_hash, new_token, safe_next, same_origin,
    session_cookie, token_digest,
};
use crate::app::fleet::fleet_totals;
use crate::app::hibernation::{Savings, savings_now};
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

/// `POST /god/sign-in`: checks the password (argon2id, off the async workers, within the
/// [`SignInGuard`](super::sign_in_guard::SignInGuard)'s limits), opens a session and sets its
/// cookie. An operator with a second factor must also give a fresh code ([`second_factor`](super::second_factor)). A refusal says only "wrong e-mail, password or code", is counted against the address
/// *from this source*, and is audited as LOGIN_FAILED within the audit budget. Past
/// `max_failures` in the window, this source is refused for that address without a check
/// until the window has passed; other sources are not.
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    ApiForm(form): ApiForm<SignInForm>,
) -> Result<Response, Problem> {
    if !same_origin(&headers, &state.god) {
        return Err(Problem::forbidden("cross-site sign-in refused"));
    }
    let guard = &state.sign_ins;
    let source = guard.source(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    let client = source.to_string();
    let email = form.email.trim().to_lowercase();
    let next = safe_next(form.next.as_deref());
    let db = state.stores.coordinator().clone();
    let settings = &state.god;
    let refused_page = |status: StatusCode, message: &str, retry_after: Option<u64>| {
        let mut r = html_response(status, sign_in_form(&next, Some(message), &email));
        if let Some(s) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(s));
        }
        r
    };
    if !guard.admit(source) {
        metrics::counter!("genesis_sign_ins_total", "outcome" => "throttled").increment(1);
        if let Some(held_back) = guard.throttled_audit.slot(source) {
            db.operator_login_failed(&email, Some(&client), "throttled", held_back)
                .await?;
        }
        guard.delay_refusal().await;
        return Ok(refused_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts from your address. Wait a minute and try again.",
            Some(60),
        ));
    }
    let busy_page = |busy: super::sign_in_guard::Busy| {
        metrics::counter!("genesis_sign_ins_total", "outcome" => "busy").increment(1);
        refused_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{}.", capitalise(&busy.to_string())),
            Some(5),
        )
    };
    // Nothing more (no database read) is spent on an attempt that could not be checked.
    if guard.saturated() {
        guard.delay_refusal().await;
        return Ok(busy_page(super::sign_in_guard::Busy::Saturated));
    }
    let audit_refusal = |reason: &'static str| {
        let db = db.clone();
        let (email, client) = (email.clone(), client.clone());
        async move {
            match guard.failures_audit.slot(source) {
                Some(held_back) => {
                    db.operator_login_failed(&email, Some(&client), reason, held_back)
                        .await
                }
                None => Ok(()),
            }
        }
    };
    if db
        .sign_in_failures(&email, &client, settings.failure_window)
        .await?
        >= settings.max_failures
    {
        metrics::counter!("genesis_sign_ins_total", "outcome" => "locked").increment(1);
        audit_refusal("too_many_failures").await?;
        return Ok(refused_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins for this address. Wait a few minutes and try again.",
            Some(settings.failure_window.as_secs()),
        ));
    }
    let account = db.operator_credentials(&email).await?;
    let hash = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone());
    let matches = match guard.check_password(form.password, hash).await {
        Ok(m) => m,
        Err(busy) => {
            guard.delay_refusal().await;
            return Ok(busy_page(busy));
        }
    };
    let mut refusal = match &account {
        None => Some("unknown_operator"),
        Some(a) if a.disabled => Some("disabled"),
        _ if !matches => Some("wrong_password"),
        _ => None,
    };
    // The second factor, only once the password is right (a wrong password learns nothing
    // about whether the account has one).
    if let (None, Some(a)) = (refusal, &account) {
        refusal = second_factor_refusal(&state, &db, a, form.code.as_deref()).await?;
    }
    let Some(account) = account.filter(|_| refusal.is_none()) else {
        let reason = refusal.unwrap_or("refused");
        metrics::counter!("genesis_sign_ins_total", "outcome" => reason).increment(1);
        db.sign_in_failure_note(&email, &client, settings.failure_window)
            .await?;
        audit_refusal(reason).await?;
        tracing::warn!(email = %email, %source, reason, "God Mode sign-in refused");
        let message = match reason {
            "second_factor_required" => {
                "This account has no second factor yet, and this control plane requires one. Enrol one with `genesis admin operator-totp`."
            }
            "second_factor_unavailable" => {
                "The second factor cannot be checked: this control plane has no vault key. Ask whoever runs it."
            }
            _ => "Wrong e-mail, password or code.",
        };
        return Ok(refused_page(StatusCode::UNAUTHORIZED, message, None));
    };
    metrics::counter!("genesis_sign_ins_total", "outcome" => "ok").increment(1);
    db.sign_in_failures_clear(&email, &client).await?;
    let token = new_token();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(settings.session_ttl).unwrap_or(chrono::Duration::hours(1));
    db.operator_session_open(
        genesis_store::NewSession {
            token_sha256: &token_digest(&token),
            operator: account.operator.id,
            expires_at,
            client: Some(&client),
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

/// Why an operator whose password was right is still refused, if they are: a missing,
/// wrong or replayed second-factor code, or none enrolled where one is required.
async fn second_factor_refusal(
    state: &AppState,
    db: &genesis_store::Database,
    account: &genesis_store::OperatorCredentials,
    code: Option<&str>,
) -> Result<Option<&'static str>, Problem> {
    let Some(sealed) = &account.totp else {
        return Ok(state
            .god
            .require_second_factor
            .then_some("second_factor_required"));
    };
    let Some(keys) = &state.vault else {
        tracing::error!("an operator has a second factor but the vault has no master key");
        return Ok(Some("second_factor_unavailable"));
    };
    let secret = keys
        .open(
            sealed,
            &genesis_store::operators::totp_aad(account.operator.id),
        )
        .map_err(Problem::from)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let step = super::second_factor::check(&secret, code.unwrap_or_default(), now)
        .map_err(|e| {
            tracing::error!(operator = %account.operator.email, error = %e, "second factor unusable");
            Problem::internal()
        })?;
    let Some(step) = step else {
        return Ok(Some("wrong_code"));
    };
    let fresh = db
        .operator_totp_use(account.operator.id, i64::try_from(step).unwrap_or(i64::MAX))
        .await?;
    Ok((!fresh).then_some("replayed_code"))
}

/// `s` with its first letter in upper case (error messages start lower case, sentences not).
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
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
    state
        .stores
        .coordinator()
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
    /// Ignition sagas running or unwinding.
    pub ignitions: IgnitionsInFlight,
}

/// Ignitions in flight over every regional database.
#[derive(Debug, Default, Serialize)]
pub struct IgnitionsInFlight {
    /// How many.
    pub count: i64,
    /// The oldest few: a saga that stays here long is stuck.
    pub oldest: Vec<genesis_store::IgnitionInFlight>,
}

/// How many in-flight ignitions the overview lists by name.
const IGNITIONS_LISTED: usize = 10;

async fn ignitions_of(state: &AppState) -> Result<IgnitionsInFlight, Problem> {
    let mut out = IgnitionsInFlight::default();
    for db in state.stores.distinct() {
        let (n, oldest) = db.ignitions_in_flight(IGNITIONS_LISTED as i64).await?;
        out.count += n;
        out.oldest.extend(oldest);
    }
    out.oldest.sort_by_key(|i| i.started_at);
    out.oldest.truncate(IGNITIONS_LISTED);
    Ok(out)
}

async fn overview_of(state: &AppState) -> Result<Overview, Problem> {
    Ok(Overview {
        fleet: fleet_totals(state).await?,
        hibernation: savings_now(state).await?,
        ignitions: ignitions_of(state).await?,
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
                    tr { th { "Workspace" } th { "Phase" } th { "Step" } th { "Started" } }
                    @for i in &o.ignitions.oldest {
                        tr {
                            td { code { (i.workspace_id) } }
                            td { (i.phase) }
                            td { (i.step.as_deref().unwrap_or("—")) }
                            td { (i.started_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                        }
                    }
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
        Err(p) => Err(p),
    }
}
