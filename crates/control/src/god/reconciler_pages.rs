//! The reconcilers page: what each background reconciler last did, part by part (the same
//! data as `GET /api/v1/fleet/reconcilers`), and a button that makes one run now.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{csrf_input, html_response, page, problem_page};
use super::session::SignedIn;
use crate::app::reconcilers::{
    Liveness, ReconcilerView, list as list_reconcilers, wake as wake_reconciler,
};
use crate::extract::ApiForm;
use crate::{AppState, Problem};

fn liveness_badge(l: Liveness) -> Markup {
    let (class, text) = match l {
        Liveness::Running => ("HEALTHY", "running"),
        Liveness::Failing => ("CRITICAL", "failing"),
        Liveness::Stale => ("DEGRADED", "stale"),
        Liveness::NeverRan => ("DEGRADED", "never ran"),
    };
    html! { span class={ "badge b-" (class) } { (text) } }
}

fn parts(v: &ReconcilerView) -> Markup {
    let Some(status) = &v.status else {
        return html! { span.quiet { "no pass published" } };
    };
    html! {
        table.parts {
            tr { th { "Part" } th { "Last success" } th { "Last report" } th { "Last error" } th { "Failures" } th { "Retry at" } }
            @for p in &status.parts {
                tr data-part=(p.part) data-failures=(p.consecutive_failures) {
                    td { (p.part) }
                    td { @if let Some(at) = p.last_ok_at { (at.format("%Y-%m-%d %H:%M:%S UTC")) } @else { "—" } }
                    td { @if let Some(r) = &p.last_report { code { (r.to_string()) } } @else { "—" } }
                    td.error { @if let Some(e) = &p.last_error { (e) } @else { "—" } }
                    td { (p.consecutive_failures) }
                    td { @if let Some(at) = p.retry_at { (at.format("%H:%M:%S UTC")) } @else { "—" } }
                }
            }
        }
    }
}

/// `GET /god/reconcilers`.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let views = list_reconcilers(&state).await?;
    let body = html! {
        main {
            h1 { "Reconcilers" }
            p.quiet {
                "Each runs on the replica that leads it. A part is a regional database (or the "
                "whole fleet); a failing part is retried with back-off while the others go on."
            }
            @for v in &views {
                section.reconciler id={ "reconciler-" (v.name) } data-liveness=(serde_json::to_value(v.liveness).ok().and_then(|j| j.as_str().map(str::to_owned)).unwrap_or_default()) {
                    h2 { code { (v.name) } " " (liveness_badge(v.liveness)) }
                    p.quiet {
                        @if let Some(leader) = &v.leader { "Published by " code { (leader) } }
                        @if let Some(at) = v.updated_at { " at " (at.format("%Y-%m-%d %H:%M:%S UTC")) }
                        @if let Some(s) = &v.status { ", every " (s.every_ms) " ms, " (s.passes) " passes since it took the lead." }
                    }
                    (parts(v))
                    form.inline method="post" action={ "/god/reconcilers/" (v.name) "/wake" } {
                        (csrf_input(&me)) button type="submit" { "Run now" }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Reconcilers", Some(&me), body),
    ))
}

/// What the wake form sends.
#[derive(Debug, Deserialize)]
pub struct WakeForm {
    csrf: String,
}

/// `POST /god/reconcilers/{name}/wake`: asks for a pass, then back to the list.
pub async fn wake(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(name): Path<String>,
    ApiForm(form): ApiForm<WakeForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    match wake_reconciler(&state, &name).await {
        Ok(()) => Ok(axum::response::IntoResponse::into_response(Redirect::to(
            "/god/reconcilers",
        ))),
        Err(p) => Ok(problem_page(&me, &p, "/god/reconcilers")),
    }
}
