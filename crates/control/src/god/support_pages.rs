//! Support access in God Mode (spec 63.3): the request form a support operator sees on a
//! tenant's page instead of the tenant, the banner of a live grant, and `GET /god/support`,
//! where open grants are listed, approved and ended.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use genesis_core::support::SupportTier;
use genesis_store::{Approval, SupportGrant, Workspace};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{csrf_input, html_response, moment, page, problem_page};
use super::session::{SignedIn, safe_next};
use crate::app::support_access::{
    self, INCIDENT_MAX_CHARS, REASON_MAX_CHARS, REASON_MIN_CHARS, RequestForm,
};
use crate::extract::ApiForm;
use crate::{AppState, Problem};

/// Where the grants are listed.
pub const PATH: &str = "/god/support";

/// The tenant's page for a support operator without a live grant: what the tenant is (no
/// personal data), their grant's state, and the form to ask for one.
pub fn access_page(
    me: &SignedIn,
    ws: &Workspace,
    grant: Option<&SupportGrant>,
    now: DateTime<Utc>,
) -> Response {
    let body = html! {
        main {
            h1 { (ws.name) " " small.quiet { code { (ws.slug) } } }
            p #needs-grant { "Support staff see a tenant under a grant. Ask for one below; the tenant sees who asked, why, and everything done under it." }
            @if let Some(g) = grant {
                (grant_facts(g, now))
                @if g.pending() {
                    p #grant-pending { "Your " (g.tier) " request waits for "
                        (g.approvals_needed - g.approvers.len() as i16) " more approval(s) by a manager." }
                    (revoke_form(me, g, "Withdraw my request", &format!("/god/tenants/{}", ws.slug)))
                }
            }
            @if grant.is_none_or(|g| !g.pending()) {
                (request_form(me, ws, &SupportTier::ALL))
            }
        }
    };
    html_response(StatusCode::OK, page(&ws.name, Some(me), body))
}

/// For managers and admins, who act on tenants without grants except over SSH: their
/// Emergency grant on this tenant, or the form that asks for one.
pub fn emergency_section(
    me: &SignedIn,
    ws: &Workspace,
    grant: Option<&SupportGrant>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        section #emergency-ssh {
            h2 { "Emergency SSH" }
            p.quiet { "SSH to this tenant's droplet needs an Emergency grant, whoever you are: two other managers approve it, for an open incident, and it lasts 15 minutes." }
            @match grant {
                Some(g) => {
                    (grant_facts(g, now))
                    (revoke_form(me, g, "End it", &format!("/god/tenants/{}", ws.slug)))
                }
                None => (request_form(me, ws, &[SupportTier::Emergency])),
            }
        }
    }
}

fn request_form(me: &SignedIn, ws: &Workspace, tiers: &[SupportTier]) -> Markup {
    html! {
        h2 { "Request access" }
        form #request-grant method="post" action={ (PATH) "/grants" } {
            (csrf_input(me))
            input type="hidden" name="workspace" value=(ws.id);
            fieldset {
                legend { "Tier" }
                @for (i, t) in tiers.iter().copied().enumerate() {
                    label.tier {
                        input type="radio" name="tier" value=(t.code()) required checked[i == 0];
                        " " b { (t.label()) } ": " (t.allows_text()) ", for "
                        (t.duration().as_secs() / 60) " minutes, "
                        @match t.approvals_needed() {
                            0 => "self-service",
                            1 => "approved by a manager",
                            _ => "approved by two managers, for an open incident",
                        }
                    }
                    br;
                }
            }
            label { "Why (the tenant reads this) "
                textarea name="reason" required minlength=(REASON_MIN_CHARS) maxlength=(REASON_MAX_CHARS) rows="3" {} }
            label { "Incident (Emergency only) "
                input type="text" name="incident" maxlength=(INCIDENT_MAX_CHARS) placeholder="INC-1234"; }
            button type="submit" { "Request" }
        }
    }
}

fn grant_facts(g: &SupportGrant, now: DateTime<Utc>) -> Markup {
    html! {
        dl.facts .grant data-grant=(g.id) data-status=(g.status_at(now)) {
            dt { "Grant" } dd { b { (g.tier) } " — " (g.status_at(now)) }
            dt { "Asked by" } dd { (g.operator_email) ", " (moment(g.requested_at)) }
            dt { "Reason" } dd { (g.reason) }
            @if let Some(i) = &g.incident { dt { "Incident" } dd { code { (i) } } }
            @if !g.approvers.is_empty() { dt { "Approved by" } dd { (g.approvers.join(", ")) } }
            @if let Some(e) = g.expires_at { dt { "Expires" } dd { (moment(e)) } }
        }
    }
}

fn revoke_form(me: &SignedIn, g: &SupportGrant, label: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action={ (PATH) "/grants/" (g.id) "/revoke" } {
            (csrf_input(me)) input type="hidden" name="back" value=(back);
            button.revoke type="submit" { (label) }
        }
    }
}

/// The banner over a tenant's page opened under a grant.
pub fn grant_banner(me: &SignedIn, g: &SupportGrant, back: &str) -> Markup {
    html! {
        section #grant-banner .notice {
            "You are looking at this tenant under a " b { (g.tier) } " grant"
            @if let Some(e) = g.expires_at { " until " (moment(e)) }
            ". It allows you to " (g.tier.allows_text()) "; everything you do is shown to the tenant. "
            (revoke_form(me, g, "End my access", back))
        }
    }
}

/// `GET /god/support`: the open grants over every region (a support operator's own only);
/// approve and end buttons for those who may press them.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    // Support staff see their own grants only: another's reason may name a customer.
    let mut grants = support_access::open_grants(&state).await?;
    if me.operator.role.needs_grant() {
        grants.retain(|g| g.operator_id == me.operator.id);
    }
    let now = state.stores.coordinator().now().await?;
    let approves = me.operator.role.approves();
    let body = html! {
        main {
            h1 { "Support access" }
            p.quiet { "Grants to one tenant each (spec 63.3). Read-Only and Debug are self-service; Write needs a manager's approval; Emergency needs two and an open incident. They end on their own." }
            @if grants.is_empty() {
                p.quiet #no-grants { "No open grants." }
            } @else {
                table #grants {
                    tr { th.text { "Tenant" } th.text { "Operator" } th.text { "Tier" } th.text { "Status" } th.text { "Reason" } th { "Asked" } th { "Expires" } th.text { "" } }
                    @for g in &grants {
                        tr data-grant=(g.id) data-status=(g.status_at(now)) {
                            td.text { a href={ "/god/tenants/" (g.workspace_id) } { code { (g.workspace_id) } } }
                            td.text { (g.operator_email) }
                            td.text { (g.tier) @if let Some(i) = &g.incident { " (" (i) ")" } }
                            td.text { (g.status_at(now))
                                @if g.pending() { " (" (g.approvers.len()) "/" (g.approvals_needed) ")" } }
                            td.text { (g.reason) }
                            td { (moment(g.requested_at)) }
                            td { @if let Some(e) = g.expires_at { (moment(e)) } }
                            td.text {
                                @if g.pending() && approves && g.operator_id != me.operator.id
                                    && !g.approvers.contains(&me.operator.email) {
                                    form.inline method="post" action={ (PATH) "/grants/" (g.id) "/approve" } {
                                        (csrf_input(&me)) button.approve type="submit" { "Approve" }
                                    }
                                    " "
                                }
                                @if approves || g.operator_id == me.operator.id {
                                    (revoke_form(&me, g, "End", PATH))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Support access", Some(&me), body),
    ))
}

/// What the request form sends.
#[derive(Debug, Deserialize)]
pub struct RequestBody {
    csrf: String,
    #[serde(flatten)]
    form: RequestForm,
}

/// `POST /god/support/grants`: back to the tenant's page, which opens when the grant is
/// live and says what it waits for otherwise.
pub async fn request(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiForm(body): ApiForm<RequestBody>,
) -> Result<Response, Problem> {
    me.check_csrf(&body.csrf)?;
    let back = format!("/god/tenants/{}", body.form.workspace.trim());
    match support_access::request(&state, &me.operator, &body.form).await {
        Ok(g) => Ok(Redirect::to(&format!("/god/tenants/{}", g.workspace_id)).into_response()),
        Err(p) => Ok(problem_page(&me, &p, &safe_next(Some(&back)))),
    }
}

/// What the approve and end buttons send.
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /god/support/grants/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<GrantForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    Ok(
        match support_access::approve(&state, &me.operator, &id).await {
            Ok(Approval::Granted(_) | Approval::Recorded { .. }) => {
                Redirect::to(PATH).into_response()
            }
            Err(p) => problem_page(&me, &p, PATH),
        },
    )
}

/// `POST /god/support/grants/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<GrantForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let back = safe_next(form.back.as_deref().or(Some(PATH)));
    Ok(
        match support_access::revoke(&state, &me.operator, &id).await {
            Ok(_) => Redirect::to(&back).into_response(),
            Err(p) => problem_page(&me, &p, &back),
        },
    )
}
