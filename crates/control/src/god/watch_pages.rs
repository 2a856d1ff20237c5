//! The watchdog's page (spec 44.1 "Watchdog Alerts"): open drift detections, the droplets
//! waiting for a person (ORPHAN, `manual_review`), and the heals done lately.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{html_response, page};
use super::session::SignedIn;
use crate::app::fleet::alerts_of;
use crate::app::fleet::recent_heals;
use crate::{AppState, Problem};

/// Alerts shown at most, and heals listed.
const SHOWN: i64 = 200;

/// The kind of alert that needs a person rather than a heal.
const MANUAL_REVIEW: &str = "manual_review";

fn droplet_link(id: Option<uuid::Uuid>) -> Markup {
    html! {
        @match id {
            Some(d) => a href={ "droplets/" (d) } { code { (d.to_string().get(..8).unwrap_or_default()) "…" } },
            None => "—",
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
    let (review, drift): (Vec<_>, Vec<_>) =
        open.items.iter().partition(|a| a.kind == MANUAL_REVIEW);
    let table = |rows: &[&genesis_store::Alert], id: &str| {
        html! {
            @if rows.is_empty() {
                p.quiet { "None." }
            } @else {
                table id=(id) {
                    tr { th { "Opened" } th { "Kind" } th { "Severity" } th { "Droplet" } th { "Summary" } }
                    @for a in rows {
                        tr data-kind=(a.kind) {
                            td { (a.opened_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (a.kind) }
                            td { (a.severity) }
                            td { (droplet_link(a.droplet_id)) }
                            td { (a.summary) }
                        }
                    }
                }
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
            h2 { "Waiting for a person (ORPHAN)" }
            (table(&review, "review"))
            h2 { "Open drift detections" }
            (table(&drift, "drift"))
            h2 { "Heals done" }
            @if heals.is_empty() {
                p.quiet { "None yet." }
            } @else {
                table #healed {
                    tr { th { "When" } th { "Drift" } th { "Droplet" } th { "By" } }
                    @for h in &heals {
                        tr {
                            td { (h.occurred_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (h.details["kind"].as_str().unwrap_or("—")) }
                            td { (droplet_link(h.subject.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok()))) }
                            td { (h.actor) }
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
