//! The tenant's tracking domains page (spec 61.4): each host with its state in words, the
//! record to create, "Check now" and "Remove", and the form to add one. Every action is
//! one call to [`crate::app::tracking_domains`].

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use genesis_core::tracking::TrackingState;
use genesis_store::tracking_domains::TrackingDomain;
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{page, problem_at, problem_page};
use super::session::Me;
use crate::app::tenant_access::{self, Access};
use crate::app::tracking_domains as tracking;
use crate::extract::ApiForm;
use crate::god::layout::{html_response, moment};
use crate::{AppState, Problem};

/// A state in the tenant's words.
fn in_words(d: &TrackingDomain) -> &'static str {
    match d.state {
        TrackingState::Pending => "waiting for its DNS record",
        TrackingState::WrongTarget => "points elsewhere",
        TrackingState::Verified => "found; your engine is setting it up",
        TrackingState::Active => "active",
    }
}

fn tracking_page(
    me: &Me,
    access: &Access,
    domains: &[TrackingDomain],
    target: Option<&str>,
    typed: &str,
    error: Option<&Problem>,
) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    let owner = access.owner("manage").is_ok();
    page(
        "Tracking domains",
        Some(me),
        html! {
            main {
                h1 { "Tracking domains" }
                p { "Your campaigns' tracking links can use a name of your own, such as "
                    code { "track.yourcompany.com" } ". Add the name here, then create this record \
                    with your DNS provider; your engine serves it, with its own certificate, as \
                    soon as the record is found." }
                @match target {
                    Some(t) => {
                        table #record {
                            tr { th.text { "Type" } th.text { "Name" } th.text { "Points to" } }
                            tr { td.text { "CNAME" } td.text { "track (or the name you chose)" } td.text { code #cname-target { (t) } } }
                        }
                    }
                    None => { p.quiet #no-engine { "The record's target appears once your engine has started." } }
                }
                @if let Some(p) = error.filter(|p| p.field.is_none()) {
                    p.error role="alert" #tracking-error { (p.detail) }
                }
                @if domains.is_empty() { p #no-domains { "No tracking domain yet." } }
                @else {
                    table #tracking-domains {
                        tr { th.text { "Name" } th.text { "State" } th.text { "Details" } th.text { "Checked" } th {} }
                        @for d in domains {
                            tr data-host=(d.host) data-state=(d.state.code()) {
                                td.text { (d.host) }
                                td.text.state { (in_words(d)) }
                                td.text {
                                    @if let Some(f) = &d.found { "found " code { (f) } ". " }
                                    @if let Some(x) = &d.detail { (x) }
                                }
                                td.text { @if let Some(c) = d.checked_at { (moment(c)) } @else { "not yet" } }
                                td { @if owner {
                                    form.inline method="post" action={ (base) "/tracking-domains/" (d.host) "/check" } {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        button type="submit" { "Check now" }
                                    }
                                    " "
                                    form.inline method="post" action={ (base) "/tracking-domains/" (d.host) "/remove" } {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        button.danger type="submit" data-confirm={ "Remove " (d.host) "? Links that use it stop working." } { "Remove" }
                                    }
                                } }
                            }
                        }
                    }
                }
                @if owner {
                    form #add-tracking-domain method="post" action={ (base) "/tracking-domains" } {
                        input type="hidden" name="csrf" value=(me.csrf);
                        label { "Name " input #host type="text" name="host" value=(typed) placeholder="track.yourcompany.com" size="40" required; }
                        button type="submit" { "Add" }
                    }
                    (problem_at(error, "host"))
                }
                p { a href=(base) { "Back to the workspace" } }
            }
        },
    )
}

async fn show(
    state: &AppState,
    me: &Me,
    id: &str,
    typed: &str,
    error: Option<&Problem>,
) -> Result<Response, Problem> {
    let (access, db) = tenant_access::access(state, &me.caller(), id).await?;
    let (domains, target) = tracking::list(state, db, &access).await?;
    let status = error.map_or(StatusCode::OK, |p| {
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST)
    });
    Ok(html_response(
        status,
        tracking_page(me, &access, &domains, target.as_deref(), typed, error),
    ))
}

/// `GET /app/workspaces/{id}/tracking-domains`.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    show(&state, &me, &id, "", None)
        .await
        .unwrap_or_else(|p| problem_page(Some(&me), &p, "/app"))
}

/// The add form.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    host: String,
}

/// Back to the list after an action that worked; the page with the refusal otherwise.
async fn after(
    state: &AppState,
    me: &Me,
    id: &str,
    typed: &str,
    done: Result<(), Problem>,
) -> Response {
    let back = format!("/app/workspaces/{id}/tracking-domains");
    match done {
        Ok(()) => Redirect::to(&back).into_response(),
        // A workspace the caller may not see fails `show` the same way: a plain 404 page.
        Err(p) => show(state, me, id, typed, Some(&p))
            .await
            .unwrap_or_else(|q| problem_page(Some(me), &q, "/app")),
    }
}

/// `POST /app/workspaces/{id}/tracking-domains`: adds a host (owners).
pub async fn add(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<AddForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        tracking::add(&state, db, &access, &form.host)
            .await
            .map(|_| ())
    }
    .await;
    after(&state, &me, &id, &form.host, done).await
}

/// The forms of one host's buttons.
#[derive(Debug, Deserialize)]
pub struct HostForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/tracking-domains/{host}/{action}`: `check` looks at a host
/// now, `remove` removes it.
pub async fn host_action(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, host, action)): Path<(String, String, String)>,
    ApiForm(form): ApiForm<HostForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        match action.as_str() {
            "check" => tracking::check_now(&state, db, &access, &host)
                .await
                .map(|_| ()),
            "remove" => tracking::remove(&state, db, &access, &host).await,
            _ => Err(Problem::not_found("page")),
        }
    }
    .await;
    after(&state, &me, &id, "", done).await
}
