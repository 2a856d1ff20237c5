//! The dead letters: notifications that could not be e-mailed and webhook deliveries whose
//! every attempt failed, each with why, and a button that sends it again (audited).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{csrf_input, html_response, page, problem_page};
use super::session::SignedIn;
use crate::app::{notifications, outbound_webhooks};
use crate::extract::ApiForm;
use crate::{AppState, Problem};

/// Where the page lives.
pub const PATH: &str = "/god/deliveries";
const SHOWN: i64 = 100;

/// `GET /god/deliveries`.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let (mail, counts) = notifications::dead_letters(&state, SHOWN).await?;
    let hooks = outbound_webhooks::dead_letters(&state, SHOWN).await?;
    let body = html! {
        main {
            h1 { "Dead letters" }
            section #mail {
                h2 { "E-mail" }
                p.quiet #mail-counts {
                    (counts.pending) " waiting (" (counts.retrying) " after a failure), "
                    (counts.delivered_24h) " delivered in the last 24 hours, "
                    (counts.dead) " dead."
                }
                @if mail.is_empty() { p { "No e-mail has failed for good." } } @else {
                    table {
                        tr { th { "Failed" } th { "Kind" } th { "To" } th { "Subject" } th { "Attempts" } th { "Why" } th {} }
                        @for d in &mail {
                            tr.dead-mail data-id=(d.letter.id) {
                                td { (d.letter.dead_at.format("%Y-%m-%d %H:%M UTC")) }
                                td { code { (d.letter.kind) } }
                                td {
                                    @if let Some(r) = &d.letter.recipient { (r) }
                                    @else if let Some(w) = d.letter.workspace_id { a href={ "/god/tenants/" (w) } { "the workspace's owners" } }
                                }
                                td { (d.letter.subject) }
                                td { (d.letter.attempts) }
                                td.error { (d.letter.last_error.as_deref().unwrap_or("—")) }
                                td {
                                    form.inline method="post" action={ (PATH) "/mail/" (d.shard) "/" (d.letter.id) "/replay" } {
                                        (csrf_input(&me)) button type="submit" { "Send again" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section #webhooks {
                h2 { "Webhooks" }
                @if hooks.is_empty() { p { "No webhook delivery has failed for good." } } @else {
                    table {
                        tr { th { "Failed" } th { "Event" } th { "Workspace" } th { "Attempts" } th { "Last answer" } th { "Why" } th {} }
                        @for d in &hooks {
                            tr.dead-hook data-id=(d.delivery.id) {
                                td { @if let Some(at) = d.delivery.dead_at { (at.format("%Y-%m-%d %H:%M UTC")) } }
                                td { code { (d.delivery.event) } }
                                td { a href={ "/god/tenants/" (d.delivery.workspace_id) } { (d.delivery.workspace_id) } }
                                td { (d.delivery.attempts) }
                                td { @if let Some(s) = d.delivery.last_status { "HTTP " (s) } @else { "—" } }
                                td.error { (d.delivery.last_error.as_deref().unwrap_or("—")) }
                                td {
                                    form.inline method="post" action={ (PATH) "/webhooks/" (d.shard) "/" (d.delivery.id) "/replay" } {
                                        (csrf_input(&me)) button type="submit" { "Send again" }
                                    }
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
        page("Dead letters", Some(&me), body),
    ))
}

/// What a replay form sends.
#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    csrf: String,
}

/// `POST /god/deliveries/{mail|webhooks}/{shard}/{id}/replay`: sends it again, then back.
pub async fn replay(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path((channel, shard, id)): Path<(String, String, String)>,
    ApiForm(form): ApiForm<ReplayForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let actor = me.actor();
    let done = match channel.as_str() {
        "mail" => match id.parse::<i64>() {
            Ok(id) => notifications::replay(&state, &shard, id, &actor).await,
            Err(_) => Err(Problem::not_found("notification")),
        },
        "webhooks" => match uuid::Uuid::parse_str(&id) {
            Ok(id) => outbound_webhooks::replay_any(&state, &shard, id, &actor).await,
            Err(_) => Err(Problem::not_found("webhook delivery")),
        },
        _ => Err(Problem::not_found("dead letter")),
    };
    Ok(match done {
        Ok(()) => Redirect::to(PATH).into_response(),
        Err(p) => problem_page(&me, &p, PATH),
    })
}
