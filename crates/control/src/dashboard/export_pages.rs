//! "Export my data" on a workspace's page (owners; spec 64.3): start an export, watch it
//! being written, download its parts through their signed links.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{page, problem_page};
use super::session::Me;
use crate::AppState;
use crate::app::{exports, tenant_access};
use crate::extract::ApiForm;
use crate::god::layout::{html_response, moment};

/// The section of the workspace page.
pub fn section(me: &Me, base: &str) -> Markup {
    html! {
        h2 #export { "Export your data" }
        p.quiet { "Everything this workspace holds, as files you can open: leads (CSV), campaigns, settings, members and webhooks (JSON), wallet transactions (CSV) and the activity log. Kept for 7 days." }
        form #start-export method="post" action={ (base) "/exports" } {
            input type="hidden" name="csrf" value=(me.csrf);
            button type="submit" { "Export my data" }
        }
    }
}

/// The form.
#[derive(Debug, Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/exports`: an owner starts an export.
pub async fn start(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<ExportForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("export the workspace's data")?;
        let job = exports::start(&state, access.workspace.id, &access.actor).await?;
        Ok(Redirect::to(&format!("{back}/exports/{}", job.job.id)).into_response())
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}

/// `GET /app/workspaces/{id}/exports/{export}`: where it stands; refreshes itself while it
/// is written, then lists its download links.
pub async fn show(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, export)): Path<(String, String)>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("export the workspace's data")?;
        let export = uuid::Uuid::parse_str(&export)
            .map_err(|_| crate::Problem::not_found("export"))?;
        let v = exports::get(&state, access.workspace.id, export).await?;
        let running = v.job.state == "RUNNING";
        let body = html! { main {
            @if running {
                meta http-equiv="refresh" content="2";
            }
            h1 { "Your export" }
            @match v.job.state.as_str() {
                "RUNNING" => p role="status" #export-progress {
                    "Being written: " (v.job.leads_written) " of "
                    (v.job.leads_total.map_or("…".to_owned(), |t| t.to_string())) " leads. This page refreshes itself."
                },
                "READY" => {
                    p #export-ready {
                        "Ready. The links work until "
                        @if let Some(t) = v.links_expire_at { (moment(t)) } @else { "soon" }
                        "; come back to this page for new ones until the export is removed."
                    }
                    ul #export-links {
                        @for (i, l) in v.links.iter().enumerate() {
                            li { a href=(l) download { "Part " (i + 1) } }
                        }
                    }
                },
                "FAILED" => p.error role="alert" { "The export failed: " (v.job.error.as_deref().unwrap_or("no reason given")) ". Start another one from your workspace." },
                _ => p { "This export has been removed. Start another one from your workspace." },
            }
            p { a href=(back) { "Back to your workspace" } }
        } };
        Ok::<_, crate::Problem>(html_response(
            axum::http::StatusCode::OK,
            page("Your export", Some(&me), body),
        ))
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}
