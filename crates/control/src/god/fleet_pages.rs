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
use genesis_core::{DropletState, Region, Tier};
use genesis_store::FleetCell;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{actor, ago, droplet_state, html_response, moment, page};
use super::pages::found_or_page;
use super::session::SignedIn;
use crate::app::fleet::{DropletDetail, heatmap_cells};
use crate::app::support_access::Caller;
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `GET /god/heatmap` filters: each narrows the map; empty means any.
#[derive(Debug, Default, Deserialize)]
pub struct HeatmapQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    tier: String,
}

impl HeatmapQuery {
    fn keeps(&self, c: &FleetCell) -> bool {
        (self.state.is_empty() || c.state == self.state)
            && (self.region.is_empty() || c.region == self.region)
            && (self.tier.is_empty() || c.tier == self.tier)
    }

    /// A link to the map with this filter and `state` instead of its own.
    fn with_state(&self, state: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("state", state),
            ("region", &self.region),
            ("tier", &self.tier),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        format!("/god/heatmap?{}", q.finish())
    }
}

/// One cell's tooltip, which is also its accessible name: whose it is, its state in words,
/// and when it was last heard from.
fn cell_title(c: &FleetCell, now: chrono::DateTime<chrono::Utc>) -> String {
    let words = DropletState::from_code(&c.state).map_or(c.state.as_str(), |s| s.in_words());
    match c.last_heartbeat_at {
        Some(at) => format!("{} · {words} · heartbeat {}", c.slug, ago(at, now)),
        None => format!("{} · {words} · no heartbeat yet", c.slug),
    }
}

/// `GET /god/heatmap`: one cell per droplet, per region, filtered by state, region and
/// tier. Colours are the Okabe–Ito palette (told apart with any colour vision), and every
/// state that needs attention also carries a pattern, so no state is told by colour alone.
pub async fn heatmap(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiQuery(q): ApiQuery<HeatmapQuery>,
) -> Result<Response, Problem> {
    let regions = heatmap_cells(&state).await?;
    let everywhere: usize = regions.values().map(Vec::len).sum();
    // The legend counts what the other filters let through, so each entry says what
    // choosing it would show.
    let others = HeatmapQuery {
        state: String::new(),
        region: q.region.clone(),
        tier: q.tier.clone(),
    };
    let mut per_state: BTreeMap<&str, usize> = BTreeMap::new();
    for c in regions.values().flatten() {
        if others.keeps(c) {
            *per_state.entry(c.state.as_str()).or_default() += 1;
        }
    }
    let shown: Vec<(&String, Vec<&FleetCell>)> = regions
        .iter()
        .map(|(r, cells)| (r, cells.iter().filter(|c| q.keeps(c)).collect::<Vec<_>>()))
        .filter(|(_, cells)| !cells.is_empty())
        .collect();
    let total: usize = shown.iter().map(|(_, c)| c.len()).sum();
    let now = chrono::Utc::now();
    let body = html! {
        main {
            h1 { "Health heatmap" }
            form.filters #filters method="get" action="/god/heatmap" {
                label { "State" select name="state" {
                    option value="" { "any" }
                    @for s in DropletState::ALL {
                        @if s != DropletState::Terminated {
                            option value=(s.code()) selected[q.state == s.code()] { (s.in_words()) }
                        }
                    }
                } }
                label { "Region" select name="region" {
                    option value="" { "any" }
                    @for r in Region::ALL { option value=(r.code()) selected[q.region == r.code()] { (r.code()) } }
                } }
                label { "Tier" select name="tier" {
                    option value="" { "any" }
                    @for t in Tier::ALL { option value=(t.code()) selected[q.tier == t.code()] { (t.code()) } }
                } }
                button type="submit" #apply-filters { "Show" }
                @if !(q.state.is_empty() && q.region.is_empty() && q.tier.is_empty()) {
                    a href="/god/heatmap" { "Clear filters" }
                }
            }
            p.legend #legend {
                b #shown { (total) } " of " (everywhere) " droplets shown. "
                @for s in DropletState::ALL {
                    @if let Some(n) = per_state.get(s.code()) {
                        a href=(q.with_state(s.code())) data-state=(s.code()) title=(s.code()) {
                            span { i class={ "s-" (s.code()) } {} (s.in_words()) " " (n) }
                        }
                    }
                }
            }
            @if shown.is_empty() {
                p.quiet #no-cells { "No droplet matches these filters." }
            }
            @for (region, cells) in &shown {
                h2 id=(region) { (region) " " small { "(" (cells.len()) ")" } }
                div.grid data-region=(region) {
                    @for c in cells {
                        a class={ "s-" (c.state) } href={ "/god/droplets/" (c.id) } title=(cell_title(c, now)) {}
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

/// `GET /god/droplets/{id}`: who it serves, where it is, how it is, what an operator can
/// do to it, and what happened to it.
pub async fn droplet(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let d = match found_or_page(
        crate::app::support::droplet(&state, &id, Caller::Operator(&me.operator)).await,
        &me,
    )? {
        Ok(d) => d,
        Err(page) => return Ok(page),
    };
    let body = html! {
        main {
            h1 { "Droplet " code { (d.droplet.id) } }
            (droplet_section(&me, &d, &format!("/god/droplets/{}", d.droplet.id)))
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Droplet", Some(&me), body),
    ))
}

/// Everything about one droplet, for its own page and its tenant's; `back` is the page the
/// forms return to.
pub fn droplet_section(me: &SignedIn, d: &DropletDetail, back: &str) -> Markup {
    let hb = d.last_heartbeat.clone().unwrap_or_default();
    let workflows = hb["workflows"].as_array().cloned().unwrap_or_default();
    let fact = |key: &str| match &hb[key] {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let id = d.droplet.id.to_string();
    html! {
        dl.facts.droplet-facts #facts {
            dt { "State" } dd #state { (droplet_state(d.droplet.state)) " " small.quiet { "(" (d.droplet.state.code()) ")" } }
            dt { "Tenant" } dd { a #tenant-link href={ "/god/tenants/" (d.workspace_slug) } { (d.workspace_slug) } }
            dt { "Region" } dd { (d.droplet.region.code()) }
            dt { "Address" } dd #address { (d.public_ipv4.as_deref().unwrap_or("— (not reported yet)")) }
            dt { "Cloud id" } dd { (d.droplet.provider_id.map(|p| p.to_string()).unwrap_or_else(|| "—".into())) }
            dt { "Last heartbeat" } dd #heartbeat {
                @match d.last_heartbeat_at { Some(at) => (moment(at)), None => "never" }
            }
            dt { "n8n" } dd { (fact("n8n_status")) }
            dt { "CPU / memory / disk" } dd { (fact("cpu_usage_percent")) " % / " (fact("memory_usage_mb")) " MiB / " (fact("disk_usage_percent")) " %" }
            dt { "Executions pending" } dd { (fact("pending_executions")) }
        }
        @if !d.open_alerts.is_empty() {
            h3 { "Open alerts" }
            (super::watch_pages::alert_table(me, &d.open_alerts, back))
        }
        (super::droplet_ops_pages::forms(me, &id, d.droplet.state, back))
        h3 { "Workflows" }
        @if workflows.is_empty() {
            p.quiet { "No heartbeat has listed workflows yet." }
        } @else {
            table.workflows #workflows {
                tr { th { "Name" } th.text { "Active" } th.text { "Template version" } }
                @for w in &workflows {
                    tr {
                        td { (w["name"].as_str().unwrap_or_default()) }
                        td.text { (if w["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                        td.text { (w["template_version"].as_str().unwrap_or("—")) }
                    }
                }
            }
        }
        h3 { "Recent commands" }
        @if d.commands.is_empty() {
            p.quiet #no-commands { "No command sent in the last 7 days." }
        } @else {
            table.commands #commands {
                tr { th { "Sent" } th.text { "Command" } th.text { "Result" } th { "Took" } th.text { "Detail" } }
                @for c in &d.commands {
                    tr data-outcome=(c.outcome) {
                        td { (moment(c.sent_at)) }
                        td.text { code { (c.action) } }
                        td.text { span class={ "badge o-" (c.outcome) } { (c.outcome) } }
                        td { (c.elapsed_ms) " ms" }
                        td.text { (c.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h3 { "State timeline" }
        table.timeline #timeline {
            tr { th { "When" } th.text { "From" } th.text { "To" } th.text { "Event" } th.text { "By" } }
            @for c in d.history.iter().rev() {
                tr {
                    td { (moment(c.at)) }
                    td.text { (c.from.as_deref().unwrap_or("")) }
                    td.text { (c.to.as_deref().unwrap_or("")) }
                    td.text { (c.event.as_deref().unwrap_or("")) }
                    td.text { (actor(&c.actor)) }
                }
            }
        }
    }
}
