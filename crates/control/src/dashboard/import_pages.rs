//! Importing leads from a CSV file: the upload (a multipart form on the leads page), and a
//! page that follows the import with a progress bar and lists the refused rows by line.
//! The page reloads itself each second while the import runs (a `refresh` meta element:
//! no script needed).

use axum::Extension;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::pages::{page, problem_page};
use super::session::Me;
use crate::app::{lead_import, tenant_access};
use crate::god::layout::html_response;
use crate::{AppState, Problem};

/// The body limit of the upload route: the largest file and the form around it.
pub const UPLOAD_LIMIT: usize = lead_import::MAX_BYTES + 64 * 1024;

/// `POST /app/workspaces/{id}/leads/import`: a `multipart/form-data` form with `csrf` and
/// `file`; on to the import's page.
pub async fn upload(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Response {
    let back = format!("/app/workspaces/{id}/leads");
    let r = async {
        let (mut csrf, mut file) = (String::new(), None);
        loop {
            let field = form.next_field().await.map_err(|_| {
                Problem::invalid_field(
                    "file",
                    "the upload was cut short or is too large (20 MB at most)",
                )
            })?;
            let Some(field) = field else { break };
            match field.name() {
                Some("csrf") => {
                    csrf = field
                        .text()
                        .await
                        .map_err(|_| Problem::bad_body("unreadable form"))?;
                }
                Some("file") => {
                    let name = field.file_name().unwrap_or_default().to_owned();
                    let bytes = field.bytes().await.map_err(|_| {
                        Problem::invalid_field(
                            "file",
                            "the upload was cut short or is too large (20 MB at most)",
                        )
                    })?;
                    file = Some((name, bytes.to_vec()));
                }
                _ => {}
            }
        }
        me.check_csrf(&csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let (name, bytes) =
            file.ok_or_else(|| Problem::invalid_field("file", "choose a CSV file"))?;
        let import = lead_import::start(&state, db, &access, &name, bytes).await?;
        Ok(Redirect::to(&format!(
            "/app/workspaces/{}/leads/imports/{import}",
            access.workspace.id
        ))
        .into_response())
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, &back))
}

/// `GET /app/workspaces/{id}/leads/imports/{import}`.
pub async fn progress(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, import)): Path<(String, String)>,
) -> Response {
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let i = lead_import::view(db, &access, &import).await?;
        let base = format!("/app/workspaces/{}", access.workspace.id);
        let running = i.state == "running";
        let errors: Vec<lead_import::RowError> =
            serde_json::from_value(i.errors.clone()).unwrap_or_default();
        let body = html! {
            @if running { meta http-equiv="refresh" content="1"; }
            main #import data-state=(i.state) {
                h1 { "Importing " (i.filename) }
                p { progress #import-progress value=(i.handled) max=(i.total.max(1)) { (i.handled) " of " (i.total) } " "
                    span #import-count { (i.handled) " of " (i.total) " rows" } }
                dl.facts {
                    dt { "Imported" } dd #imported { (i.imported) }
                    dt { "Already there (skipped)" } dd #duplicates { (i.duplicates) }
                    dt { "Refused" } dd #refused { (i.refused) }
                }
                @match i.state.as_str() {
                    "running" => { p.quiet { "This page follows the import; you may leave it, the import goes on." } }
                    "done" => { p #import-done { "Done." } }
                    "interrupted" => { p.error role="alert" #import-interrupted { "The import was interrupted. The rows stored so far are kept; import the file again to add the rest (rows already there are skipped)." } }
                    _ => { p.error role="alert" #import-failed { (i.failure.as_deref().unwrap_or("The import failed.")) } }
                }
                @if !errors.is_empty() {
                    h2 { "Rows refused" @if (i.refused as usize) > errors.len() { " (the first " (errors.len()) ")" } }
                    table #import-errors {
                        tr { th { "Line" } th.text { "Column" } th.text { "Why" } }
                        @for e in &errors { tr { td { (e.line) } td.text { (e.field) } td.text { (e.message) } } }
                    }
                }
                p { a href={ (base) "/leads" } { "Back to the leads" } }
            }
        };
        Ok(html_response(StatusCode::OK, page("Importing leads", Some(&me), body)))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}
