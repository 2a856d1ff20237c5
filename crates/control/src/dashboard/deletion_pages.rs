//! "Delete this workspace" and "Call the deletion off" on a workspace's page (owners; spec
//! 64.1's user request).

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::problem_page;
use super::session::Me;
use crate::AppState;
use crate::app::{deletion, tenant_access};
use crate::extract::ApiForm;
use crate::god::layout::moment;

/// The section of the workspace page: the deletion under way, or the form to start one.
pub fn section(me: &Me, base: &str, slug: &str, open: Option<&genesis_store::Deletion>) -> Markup {
    html! {
        h2 { "Delete this workspace" }
        @if let Some(d) = open {
            p.error role="alert" #deletion {
                "This workspace will be deleted for good on " (moment(d.purge_after))
                ": its engine, leads, campaigns and settings. Download an export before then."
            }
            @if d.reversible {
                form #cancel-deletion method="post" action={ (base) "/deletion/cancel" } {
                    input type="hidden" name="csrf" value=(me.csrf);
                    button type="submit" { "Call the deletion off" }
                }
            }
        } @else {
            p.quiet { "Your campaigns stop and your engine sleeps at once. Everything is deleted for good after 7 days; until then you can change your mind." }
            form #delete-workspace method="post" action={ (base) "/deletion" } {
                input type="hidden" name="csrf" value=(me.csrf);
                label { "Type " code { (slug) } " to confirm " input type="text" name="confirm" required autocomplete="off"; }
                " " button.danger type="submit" { "Delete my workspace" }
            }
        }
    }
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /app/workspaces/{id}/deletion`: an owner starts the deletion.
pub async fn delete(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<DeleteForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        deletion::request_as_owner(&state, &access, &form.confirm).await?;
        Ok(Redirect::to(&back).into_response())
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}

/// The call-off form.
#[derive(Debug, Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/deletion/cancel`: an owner calls the deletion off.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<CancelForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
        deletion::cancel_as_owner(&state, &access).await?;
        Ok(Redirect::to(&back).into_response())
    }
    .await;
    r.unwrap_or_else(|p| problem_page(Some(&me), &p, &back))
}
