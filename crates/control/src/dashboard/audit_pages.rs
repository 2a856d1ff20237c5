//! A workspace's own audit log (spec 63.1: readable by tenants, for their own events):
//! every event that names the workspace, newest first, a page at a time, by category.
//! Every member may read it; it is the same trail a regulator's auditor would follow.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use genesis_core::audit::AuditCategory;
use maud::html;
use serde::Deserialize;

use super::pages::{page, problem_page};
use super::session::Me;
use super::workspace_pages::event_in_words;
use crate::app::{audit, tenant_access};
use crate::extract::ApiQuery;
use crate::god::layout::{actor, html_response, moment};
use crate::{AppState, Problem};

/// What the filter sends.
#[derive(Debug, Default, Deserialize)]
pub struct TenantAuditQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    after: String,
}

/// `GET /app/workspaces/{id}/audit?category=&after=`.
pub async fn audit_log(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<TenantAuditQuery>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let category = match query.category.trim() {
            "" => None,
            raw => Some(AuditCategory::from_code(raw).ok_or_else(|| {
                Problem::invalid_field("category", "is not one of the audit log's categories")
            })?),
        };
        let after = audit::parse_cursor(query.after.trim())?;
        let found = audit::of_tenant(db, access.workspace.id, category, after).await?;
        let base = format!("/app/workspaces/{}/audit", access.workspace.id);
        let next = found.next.map(|(at, id)| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(c) = category {
                q.append_pair("category", c.code());
            }
            q.append_pair("after", &audit::cursor_text(at, id));
            format!("{base}?{}", q.finish())
        });
        let body = html! { main {
            h1 { "Audit log" }
            p.quiet { "Everything recorded about this workspace: sign-ins, changes, payments, exports, and what our support staff did under a grant. Newest first." }
            form.filters method="get" action=(base) {
                label { "Category "
                    select name="category" {
                        option value="" { "All" }
                        @for c in AuditCategory::ALL {
                            option value=(c.code()) selected[category == Some(c)] { (c.label()) }
                        }
                    }
                }
                " " button type="submit" { "Show" }
            }
            @if found.items.is_empty() {
                p.quiet #no-events { "Nothing recorded." }
            } @else {
                table #tenant-audit {
                    tr { th { "When" } th.text { "Category" } th.text { "What" } th.text { "By" } }
                    @for e in &found.items {
                        tr data-event=(e.event) data-category=(e.category) {
                            td { (moment(e.occurred_at)) }
                            td.text { (AuditCategory::from_code(&e.category).map_or(e.category.as_str(), |c| c.label())) }
                            td.text { (event_in_words(&e.event)) }
                            td.text { (actor(&e.actor)) }
                        }
                    }
                }
            }
            @if let Some(n) = &next { p { a #next-page href=(n) { "Older events" } } }
            p { a href=(back) { "Back to your workspace" } }
        } };
        Ok::<_, Problem>(html_response(
            axum::http::StatusCode::OK,
            page("Audit log", Some(&me), body),
        ))
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}
