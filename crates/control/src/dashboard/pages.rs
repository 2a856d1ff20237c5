//! The dashboard's open pages (sign-up, address verification, sign-in), sign-out, and the
//! frame every dashboard page shares.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use genesis_core::Region;
use maud::{Markup, html};
use serde::Deserialize;

use super::session::{Me, SIGN_IN, cleared_cookie, link_origin, session_cookie};
use crate::app::accounts::{self, AccountRefusal, SignUp, SignUpRefusal};
use crate::extract::{ApiForm, ApiQuery};
use crate::god::layout::{document, html_response};
use crate::god::session::same_origin;
use crate::{AppState, Problem};

/// A whole dashboard page: `body` under the bar (none on the open pages, `me` = None).
pub fn page(title: &str, me: Option<&Me>, body: Markup) -> Markup {
    document(
        &format!("{title} · Genesis"),
        html! {
            @if let Some(me) = me {
                header {
                    strong { "Genesis" }
                    nav aria-label="Dashboard" { a href=(super::ROOT) { "Your workspaces" } }
                    span.who { (me.account.email) }
                    form.inline method="post" action="/app/sign-out" {
                        input type="hidden" name="csrf" value=(me.csrf);
                        button type="submit" id="sign-out" { "Sign out" }
                    }
                    form.inline method="post" action="/app/sign-out" {
                        input type="hidden" name="csrf" value=(me.csrf);
                        input type="hidden" name="everywhere" value="1";
                        button type="submit" id="sign-out-everywhere"
                            data-confirm="Sign out on every device, this one included?" {
                            "Sign out everywhere"
                        }
                    }
                }
            }
            (body)
        },
    )
}

/// A refusal as a page, with the way back.
pub fn problem_page(me: Option<&Me>, p: &Problem, back: &str) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    html_response(
        status,
        page(
            p.title,
            me,
            html! { main { h1 { (p.title) } p.error role="alert" { (p.detail) } p { a href=(back) { "Back" } } } },
        ),
    )
}

/// Where each region is, in words (spec 62.1), for "Where should your data be stored?".
pub fn region_in_words(region: Region) -> &'static str {
    match region {
        Region::UsEast => "United States, east (Virginia)",
        Region::UsWest => "United States, west (San Francisco)",
        Region::EuWest => "European Union (Frankfurt)",
        Region::EuNorth => "United Kingdom (London)",
        Region::Apac => "Asia-Pacific (Singapore)",
    }
}

/// `next` if it is a dashboard path (never another site), else the dashboard's root.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/app") && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => super::ROOT.into(),
    }
}

/// The page's query: where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn field_error(errors: &[(&str, String)], field: &str) -> Markup {
    html! {
        @for (f, e) in errors.iter().filter(|(f, _)| *f == field) {
            p.error role="alert" id={ (f) "-error" } { (e) }
        }
    }
}

fn sign_up_form(
    email: &str,
    region: &str,
    errors: &[(&str, String)],
    notice: Option<&str>,
) -> Markup {
    page(
        "Create your account",
        None,
        html! {
            main.signin {
                h1 { "Create your account" }
                @if let Some(n) = notice { p.error role="alert" { (n) } }
                form method="post" action="/app/sign-up" novalidate {
                    label for="email" { "Work e-mail" }
                    input #email type="email" name="email" value=(email) autocomplete="email" required
                        aria-describedby="email-error";
                    (field_error(errors, "email"))
                    label for="password" { "Password (12 characters or more)" }
                    input #password type="password" name="password" autocomplete="new-password" required
                        aria-describedby="password-error";
                    (field_error(errors, "password"))
                    label for="region" { "Where should your data be stored?" }
                    select #region name="region" required aria-describedby="region-help region-error" {
                        option value="" { "Choose a region" }
                        @for r in Region::ALL {
                            option value=(r.code()) selected[r.code() == region] { (region_in_words(r)) }
                        }
                    }
                    p.quiet #region-help {
                        "Your account, your leads, your credentials and your engine all stay in this region."
                    }
                    (field_error(errors, "region"))
                    button type="submit" { "Create account" }
                }
                p { "Already have an account? " a href=(SIGN_IN) { "Sign in" } }
            }
        },
    )
}

/// `GET /app/sign-up`.
pub async fn sign_up_page() -> Response {
    html_response(StatusCode::OK, sign_up_form("", "", &[], None))
}

/// The sign-up form.
#[derive(Debug, Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    region: String,
}

fn source(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> std::net::IpAddr {
    state
        .sign_ins
        .source(peer.map(|Extension(ConnectInfo(a))| a), headers)
}

fn with_retry_after(mut page: Response, refusal: &crate::app::operators::Refusal) -> Response {
    if let Some(s) = refusal.retry_after_s() {
        page.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(s));
    }
    page
}

/// `POST /app/sign-up`: every field checked and named when wrong; then "check your inbox",
/// whether or not the address already had an account.
pub async fn sign_up(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiForm(form): ApiForm<SignUpForm>,
) -> Result<Response, Problem> {
    if !same_origin(&headers, &state.god) {
        return Err(Problem::forbidden("cross-site sign-up refused"));
    }
    let origin = link_origin(&headers, &state.god)?;
    let email = form.email.trim().to_lowercase();
    let outcome = accounts::sign_up(
        &state,
        SignUp {
            source: source(&state, peer, &headers),
            email: &form.email,
            password: form.password,
            region: &form.region,
            origin: &origin,
        },
    )
    .await?;
    Ok(match outcome {
        Ok(()) => html_response(
            StatusCode::OK,
            page(
                "Check your inbox",
                None,
                html! {
                    main.signin #check-inbox {
                        h1 { "Check your inbox" }
                        p { "If " strong { (email) } " can be registered, a link to confirm it is on its way. \
                             It works for 24 hours." }
                        p { a href=(SIGN_IN) { "Sign in" } " once you have confirmed your address." }
                    }
                },
            ),
        ),
        Err(SignUpRefusal::Invalid(field, why)) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            sign_up_form(&email, &form.region, &[(field, why)], None),
        ),
        Err(SignUpRefusal::Limited(r)) => with_retry_after(
            html_response(
                r.status(),
                sign_up_form(&email, &form.region, &[], Some(&r.message())),
            ),
            &r,
        ),
    })
}

/// The link's query.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /app/verify?token=…`: a button, not the verification itself, so a mail scanner
/// fetching the link does not spend it.
pub async fn verify_page(ApiQuery(q): ApiQuery<TokenQuery>) -> Response {
    html_response(
        StatusCode::OK,
        page(
            "Confirm your address",
            None,
            html! {
                main.signin {
                    h1 { "Confirm your address" }
                    form method="post" action="/app/verify" {
                        input type="hidden" name="token" value=(q.token);
                        button type="submit" #confirm { "Confirm my e-mail address" }
                    }
                }
            },
        ),
    )
}

/// `POST /app/verify`: spends the link.
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiForm(form): ApiForm<TokenQuery>,
) -> Result<Response, Problem> {
    if !same_origin(&headers, &state.god) {
        return Err(Problem::forbidden("cross-site request refused"));
    }
    Ok(match accounts::verify(&state, &form.token).await? {
        Some(account) => html_response(
            StatusCode::OK,
            page(
                "Address confirmed",
                None,
                html! {
                    main.signin #verified {
                        h1 { "Address confirmed" }
                        p { (account.email) " is confirmed." }
                        p { a href=(SIGN_IN) { "Sign in" } }
                    }
                },
            ),
        ),
        None => html_response(
            StatusCode::GONE,
            page(
                "Link expired",
                None,
                html! {
                    main.signin {
                        h1 { "This link no longer works" }
                        p.error role="alert" { "It has expired or has already been used. Sign in, and we will send you a new one if your address still needs confirming." }
                        p { a href=(SIGN_IN) { "Sign in" } }
                    }
                },
            ),
        ),
    })
}

fn sign_in_form(next: &str, email: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            main.signin {
                h1 { "Sign in to Genesis" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action=(SIGN_IN) {
                    input type="hidden" name="next" value=(next);
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" value=(email) autocomplete="username" required;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
                p { "New here? " a href="/app/sign-up" { "Create an account" } }
            }
        },
    )
}

/// `GET /app/sign-in`.
pub async fn sign_in_page(ApiQuery(q): ApiQuery<NextQuery>) -> Response {
    html_response(
        StatusCode::OK,
        sign_in_form(&safe_next(q.next.as_deref()), "", None),
    )
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /app/sign-in`.
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiForm(form): ApiForm<SignInForm>,
) -> Result<Response, Problem> {
    if !same_origin(&headers, &state.god) {
        return Err(Problem::forbidden("cross-site sign-in refused"));
    }
    let origin = link_origin(&headers, &state.god)?;
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_lowercase();
    let source = source(&state, peer, &headers);
    match accounts::sign_in(&state, source, &form.email, form.password, &origin).await? {
        Ok(token) => Ok((
            [(header::SET_COOKIE, session_cookie(&token.token, &state.god))],
            Redirect::to(&next),
        )
            .into_response()),
        Err(refusal) => {
            let page = html_response(
                refusal.status(),
                sign_in_form(&next, &email, Some(&refusal.message())),
            );
            Ok(match &refusal {
                AccountRefusal::Like(r) => with_retry_after(page, r),
                AccountRefusal::Unverified => page,
            })
        }
    }
}

/// A form that carries the CSRF token (and, for sign-out, whether everywhere).
#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    everywhere: Option<String>,
}

/// `POST /app/sign-out`: ends this session, or every session of the account.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    ApiForm(form): ApiForm<SignOutForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    accounts::sign_out(&state, &me.account, &me.token, form.everywhere.is_some()).await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie(&state.god))],
        Redirect::to(SIGN_IN),
    )
        .into_response())
}

/// Any other dashboard path, for a signed-in tenant.
pub async fn not_found(Extension(me): Extension<Me>) -> Response {
    problem_page(Some(&me), &Problem::not_found("page"), super::ROOT)
}

/// A problem about `field`, shown beside it as [`field_error`] shows a form's errors (the
/// field's name is dropped from the words); nothing for another field's problem.
pub fn problem_at(error: Option<&Problem>, field: &str) -> Markup {
    let shown: Vec<(&str, String)> = error
        .filter(|p| p.field.as_deref() == Some(field))
        .map(|p| {
            let words = p
                .detail
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&p.detail);
            (field, words.to_owned())
        })
        .into_iter()
        .collect();
    field_error(&shown, field)
}
