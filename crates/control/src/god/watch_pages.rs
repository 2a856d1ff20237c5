//! The watchdog's page (spec 44.1 "Watchdog Alerts"): open drift detections, the droplets
//! waiting for a person (ORPHAN, `manual_review`), and the heals done lately; each open
//! alert can be acknowledged ("I am on it") or resolved, under the operator's name.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{actor, csrf_input, html_response, moment, page, problem_page};
use super::session::{SignedIn, safe_next};
use crate::app::alerts::{act, parse_action};
use crate::app::fleet::alerts_of;
use crate::app::fleet::recent_heals;
use crate::extract::ApiForm;
use crate::{AppState, Problem};

/// Alerts shown at most, and heals listed.
const SHOWN: i64 = 200;

/// The kind of alert that needs a person rather than a heal.
const MANUAL_REVIEW: &str = "manual_review";

fn droplet_link(id: Option<uuid::Uuid>) -> Markup {
    html! {
        @match id {
            Some(d) => a href={ "/god/droplets/" (d) } { code { (d.to_string().get(..8).unwrap_or_default()) "…" } },
            None => "—",
        }
    }
}

/// Open alerts as a table with their buttons; the forms come back to `back`.
pub fn alert_table(me: &SignedIn, rows: &[genesis_store::Alert], back: &str) -> Markup {
    html! {
        table.alerts {
            tr { th { "Opened" } th.text { "Kind" } th.text { "Severity" } th.text { "Droplet" } th.text { "Summary" } th.text { "Taken by" } th.text { "" } }
            @for a in rows {
                tr data-kind=(a.kind) data-alert=(a.id) {
                    td { (moment(a.opened_at)) }
                    td.text { (a.kind) }
                    td.text { (a.severity) }
                    td.text { (droplet_link(a.droplet_id)) }
                    td.text { (a.summary) }
                    td.text {
                        @match (&a.acknowledged_by, a.acknowledged_at) {
                            (Some(by), Some(at)) => { (actor(by)) " " small.quiet { (moment(at)) } },
                            _ => span.quiet { "nobody yet" },
                        }
                    }
                    td.text {
                        @if let Some(d) = a.droplet_id {
                            @let to = |what: &str| format!("/god/droplets/{d}/alerts/{}/{what}", form_urlencoded::byte_serialize(a.kind.as_bytes()).collect::<String>());
                            @if a.acknowledged_at.is_none() {
                                form.inline method="post" action=(to("acknowledge")) {
                                    (csrf_input(me)) input type="hidden" name="back" value=(back);
                                    button.acknowledge type="submit" { "Acknowledge" }
                                }
                                " "
                            }
                            form.inline method="post" action=(to("resolve")) {
                                (csrf_input(me)) input type="hidden" name="back" value=(back);
                                button.resolve type="submit" data-confirm={ "Resolve this " (a.kind) " alert? It leaves the open list." } { "Resolve" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /god/alerts`.
pub async fn alerts(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let open = alerts_of(&state, true, SHOWN).await?;
    let heals = recent_heals(&state, SHOWN).await?;
    let (review, drift): (Vec<_>, Vec<_>) = open
        .items
        .into_iter()
        .partition(|a| a.kind == MANUAL_REVIEW);
    let table = |rows: &[genesis_store::Alert], id: &str| {
        html! {
            @if rows.is_empty() {
                p.quiet id=(id) { "None." }
            } @else {
                div id=(id) { (alert_table(&me, rows, "/god/alerts")) }
            }
        }
    };
    let body = html! {
        main {
            h1 { "Watchdog" }
            div.cards {
                div.card #open-drift { b { (drift.len()) } "open drift detections" }
                div.card #manual-review { b { (review.len()) } "waiting for a person" }
                div.card #heals { b { (heals.len()) } "heals done (latest)" }
            }
            h2 { "Waiting for a person (lost droplets)" }
            (table(&review, "review"))
            h2 { "Open drift detections" }
            (table(&drift, "drift"))
            h2 { "Heals done" }
            @if heals.is_empty() {
                p.quiet { "None yet." }
            } @else {
                table #healed {
                    tr { th { "When" } th.text { "Drift" } th.text { "Droplet" } th.text { "By" } }
                    @for h in &heals {
                        tr {
                            td { (moment(h.occurred_at)) }
                            td.text { (h.details["kind"].as_str().unwrap_or("—")) }
                            td.text { (droplet_link(h.subject.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok()))) }
                            td.text { (actor(&h.actor)) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Watchdog", Some(&me), body),
    ))
}

/// What an alert's button sends.
#[derive(Debug, Deserialize)]
pub struct AlertForm {
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /god/droplets/{id}/alerts/{kind}/{action}`: acknowledge or resolve, then back to
/// the page the button was on.
pub async fn alert_action(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path((droplet, kind, action)): Path<(String, String, String)>,
    ApiForm(form): ApiForm<AlertForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let back = safe_next(form.back.as_deref());
    let done = async {
        let action = parse_action(&action)?;
        act(&state, &droplet, &kind, action, &me.actor()).await
    }
    .await;
    Ok(match done {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(p) => problem_page(&me, &p, &back),
    })
}
