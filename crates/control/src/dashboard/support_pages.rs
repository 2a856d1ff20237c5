//! "Support access" on a workspace (spec 63.3): every grant our support staff asked for on
//! it (who, which tier, why, approved by whom, until when) and everything done under them,
//! newest first; an owner can end a live grant at once.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{page, problem_page};
use super::session::Me;
use crate::AppState;
use crate::app::{support_access, tenant_access};
use crate::extract::ApiForm;
use crate::god::layout::{html_response, moment};

/// The link from the workspace's page.
pub fn link(base: &str) -> Markup {
    html! {
        h2 #support-access-link { "Support access" }
        p { a href={ (base) "/support" } { "Who from our support team has had access to this workspace, and what they did" } }
    }
}

/// `GET /app/workspaces/{id}/support`: every member may read it.
pub async fn show(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        let ws = access.workspace.id;
        let (grants, events) = support_access::of_tenant(&state, ws).await?;
        let now = chrono::Utc::now();
        let owner = access.owner("end support access").is_ok();
        let base = format!("/app/workspaces/{ws}");
        let body = html! { main {
            h1 { "Support access" }
            p.quiet { "Our support staff can see or change your workspace only under a grant: one person, one workspace, a reason, and a few minutes. Grants that can change anything are approved by a manager first. Everything done under a grant is listed here." }
            @if grants.is_empty() {
                p #no-support-grants { "Nobody from support has asked for access to this workspace." }
            } @else {
                table #support-grants {
                    tr { th.text { "Who" } th.text { "Access" } th.text { "Why" } th.text { "Approved by" } th { "Asked" } th { "Until" } th.text { "Now" } th {} }
                    @for g in &grants {
                        tr data-grant=(g.id) data-status=(g.status_at(now)) {
                            td.text { (g.operator_email) }
                            td.text { (g.tier) ": " (g.tier.allows_text()) }
                            td.text { (g.reason) @if let Some(i) = &g.incident { " (incident " (i) ")" } }
                            td.text { @if g.approvers.is_empty() { "—" } @else { (g.approvers.join(", ")) } }
                            td { (moment(g.requested_at)) }
                            td { @if let Some(e) = g.ended_at.or(g.expires_at) { (moment(e)) } }
                            td.text { (g.status_at(now)) }
                            td {
                                @if owner && g.ended_at.is_none() {
                                    form.inline method="post" action={ (base) "/support/" (g.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        button.danger type="submit" data-confirm="End this access now?" { "End now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "What was done" }
            @if events.is_empty() {
                p.quiet #no-support-events { "Nothing." }
            } @else {
                table #support-events {
                    tr { th { "When" } th.text { "Who" } th.text { "What" } th.text { "Details" } }
                    @for e in &events {
                        tr data-event=(e.event) {
                            td { (moment(e.occurred_at)) }
                            td.text { (e.actor.strip_prefix("operator:").unwrap_or(&e.actor)) }
                            td.text { code { (e.event) } }
                            td.text { (e.details.get("action").and_then(|v| v.as_str()).or_else(|| e.details.get("why").and_then(|v| v.as_str())).unwrap_or("")) }
                        }
                    }
                }
            }
            p { a href=(back) { "Back to your workspace" } }
        } };
        Ok::<_, crate::Problem>(html_response(
            axum::http::StatusCode::OK,
            page("Support access", Some(&me), body),
        ))
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}

/// The form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/support/{grant}/revoke`: an owner ends a grant.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, grant)): Path<(String, String)>,
    ApiForm(form): ApiForm<RevokeForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}/support");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("end support access")?;
        support_access::revoke_by_tenant(&state, access.workspace.id, &access.actor, &grant)
            .await?;
        Ok(Redirect::to(&back).into_response())
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}
