//! God Mode's Financial page (spec 44, 59.1): the fleet's revenue, costs and margin for a
//! month, each tenant's line, the wallets that need an eye (low, empty, kill-switched), and
//! the month's top spenders.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use genesis_core::money::Millicents;
use maud::html;
use serde::Deserialize;

use super::layout::{html_response, moment, page};
use super::session::SignedIn;
use crate::app::margins;
use crate::{AppState, Problem};

/// How many tenants each list shows.
const TOP: i64 = 25;

/// Which month.
#[derive(Debug, Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

fn level_in_words(level: &str, halted: bool) -> &'static str {
    if halted {
        return "kill-switch on";
    }
    match level {
        "low_5" => "under $5",
        "low_1" => "under $1",
        "empty" => "empty",
        _ => "ok",
    }
}

/// `GET /god/financial`.
pub async fn financial(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Query(q): Query<MonthQuery>,
) -> Result<Response, Problem> {
    let month = q.month.unwrap_or_else(margins::this_month);
    let report = margins::report(&state, &month).await?;
    let (watch, spenders) = margins::watchlist(&state, TOP).await?;
    let mut by_revenue: Vec<_> = report.tenants.iter().collect();
    by_revenue.sort_by_key(|t| std::cmp::Reverse(t.margin.total_revenue));
    by_revenue.truncate(TOP as usize);
    let body = html! {
        main {
            h1 { "Financial" }
            form.inline method="get" action="/god/financial" {
                label { "Month " input #month type="text" name="month" value=(report.month) size="8" pattern="[0-9]{4}-[0-9]{2}"; }
                button type="submit" { "Show" }
            }
            dl.facts #fleet-margin {
                dt { "Revenue" } dd #revenue { (Millicents(report.total_revenue_millicents)) }
                dt { "Costs" } dd #costs { (Millicents(report.total_costs_millicents)) }
                dt { "Margin" } dd #margin { (Millicents(report.margin_millicents)) " (" (report.percent) ")" }
                dt { "Tenants" } dd { (report.tenants.len()) }
            }
            @for n in &report.notes { p.quiet { (n) } }
            h2 { "Wallets to watch" }
            @if watch.is_empty() { p #no-watch { "Every wallet is above $5." } }
            @else {
                table #watch {
                    tr { th.text { "Tenant" } th.text { "State" } th { "Available" } th.text { "Halted since" } }
                    @for w in &watch {
                        tr data-workspace=(w.workspace) data-halted=(w.halted_at.is_some()) {
                            td.text { a href={ "/god/tenants/" (w.workspace) } { (w.name) } " (" (w.slug) ")" }
                            td.text { (level_in_words(&w.alert_level, w.halted_at.is_some())) }
                            td { (w.available) }
                            td.text { @if let Some(h) = w.halted_at { (moment(h)) } }
                        }
                    }
                }
            }
            h2 { "Top spenders this month" }
            @if spenders.is_empty() { p #no-spenders { "No managed service has been used this month." } }
            @else {
                table #spenders {
                    tr { th.text { "Tenant" } th { "Spent" } th { "Available" } }
                    @for w in &spenders {
                        tr data-workspace=(w.workspace) {
                            td.text { a href={ "/god/tenants/" (w.workspace) } { (w.name) } }
                            td { (w.spent) }
                            td { (w.available) }
                        }
                    }
                }
            }
            h2 { "Margins by tenant (by revenue)" }
            @if by_revenue.is_empty() { p { "No tenant existed in this month." } }
            @else {
                table #margins {
                    tr { th.text { "Tenant" } th.text { "Region" } th { "Droplet hours" } th { "Revenue" } th { "Costs" } th { "Margin" } }
                    @for t in &by_revenue {
                        tr data-workspace=(t.workspace) {
                            td.text { a href={ "/god/tenants/" (t.workspace) } { (t.name) } }
                            td.text { (t.region) }
                            td { (t.droplet_hours) }
                            td { (t.margin.total_revenue) }
                            td { (t.margin.total_costs) }
                            td { (t.margin.margin) " (" (t.percent) ")" }
                        }
                    }
                }
            }
            p.quiet { "The same report: " code { "genesis billing margins --month " (report.month) } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Financial", Some(&me), body),
    ))
}
