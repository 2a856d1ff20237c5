//! The health heatmap (one cell per droplet, spec 44.1) and a droplet's own page.
//!
//! The heatmap is plain HTML: a cell is an empty link coloured by its state's class, laid out
//! by CSS in one block per region. A 15,000-droplet fleet is 15,000 small links (about 1.3
//! MB before compression), no script, and each cell opens its droplet.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use genesis_core::DropletState;
use maud::html;

use super::layout::{html_response, page};
use super::pages::found_or_page;
use super::session::SignedIn;
use crate::app::fleet::{droplet_detail, heatmap_cells};
use crate::{AppState, Problem};

/// `GET /god/heatmap`.
pub async fn heatmap(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let regions = heatmap_cells(&state).await?;
    let mut per_state: BTreeMap<&str, usize> = BTreeMap::new();
    for cell in regions.values().flatten() {
        *per_state.entry(cell.state.as_str()).or_default() += 1;
    }
    let total: usize = per_state.values().sum();
    let body = html! {
        main {
            h1 { "Health heatmap" }
            p.legend #legend {
                (total) " droplets. "
                @for s in DropletState::ALL {
                    @if let Some(n) = per_state.get(s.code()) {
                        span { i class={ "s-" (s.code()) } {} (s.code()) " " (n) }
                    }
                }
            }
            @for (region, cells) in &regions {
                h2 id=(region) { (region) " " small { "(" (cells.len()) ")" } }
                div.grid data-region=(region) {
                    @for c in cells {
                        a class={ "s-" (c.state) } href={ "droplets/" (c.id) } {}
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Heatmap", Some(&me), body),
    ))
}

/// `GET /god/droplets/{id}`: state, last heartbeat, workflows, recent commands and the
/// state timeline.
pub async fn droplet(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let d = match found_or_page(droplet_detail(&state, &id).await, &me)? {
        Ok(d) => d,
        Err(page) => return Ok(page),
    };
    let hb = d.last_heartbeat.clone().unwrap_or_default();
    let workflows = hb["workflows"].as_array().cloned().unwrap_or_default();
    let fact = |key: &str| match &hb[key] {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let body = html! {
        main {
            h1 { "Droplet " code { (d.droplet.id) } }
            dl.facts #facts {
                dt { "State" } dd { span class={ "s-" (d.droplet.state.code()) } { "\u{a0}\u{a0}" } " " (d.droplet.state.code()) }
                dt { "Region" } dd { (d.droplet.region.code()) }
                dt { "Workspace" } dd { code { (d.droplet.workspace_id) } }
                dt { "Cloud id" } dd { (d.droplet.provider_id.map(|p| p.to_string()).unwrap_or_else(|| "—".into())) }
                dt { "Last heartbeat" } dd { (d.last_heartbeat_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())) }
                dt { "n8n" } dd { (fact("n8n_status")) }
                dt { "CPU / memory / disk" } dd { (fact("cpu_usage_percent")) " % / " (fact("memory_usage_mb")) " MiB / " (fact("disk_usage_percent")) " %" }
                dt { "Executions pending" } dd { (fact("pending_executions")) }
            }
            (super::droplet_ops_pages::forms(&me, &d.droplet.id.to_string()))
            h2 { "Workflows" }
            table #workflows {
                tr { th { "Name" } th { "Active" } th { "Template version" } }
                @for w in &workflows {
                    tr {
                        td { (w["name"].as_str().unwrap_or_default()) }
                        td { (if w["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                        td { (w["template_version"].as_str().unwrap_or("—")) }
                    }
                }
            }
            h2 { "Recent commands" }
            @if d.commands.is_empty() {
                p.quiet #no-commands { "No command sent in the last 7 days." }
            } @else {
                table #commands {
                    tr { th { "Sent" } th { "Command" } th { "Result" } th { "Took" } th { "Detail" } }
                    @for c in &d.commands {
                        tr data-outcome=(c.outcome) {
                            td { (c.sent_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { code { (c.action) } }
                            td { span class={ "badge o-" (c.outcome) } { (c.outcome) } }
                            td { (c.elapsed_ms) " ms" }
                            td { (c.detail.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h2 { "State timeline" }
            table #timeline {
                tr { th { "When" } th { "From" } th { "To" } th { "Event" } th { "By" } }
                @for c in d.history.iter().rev() {
                    tr {
                        td { (c.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (c.from.as_deref().unwrap_or("")) }
                        td { (c.to.as_deref().unwrap_or("")) }
                        td { (c.event.as_deref().unwrap_or("")) }
                        td { (c.actor) }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Droplet", Some(&me), body),
    ))
}
