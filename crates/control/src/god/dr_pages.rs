//! The disaster-recovery page (spec 66): per regional database, how many live droplets
//! have a fresh snapshot and a fresh cross-region copy, what is in flight, and what the
//! snapshots kept cost a month (spec 66.5); then every open failover (spec 66.4) with its
//! phase, its tenants by state and its RTO so far; then every region outage the watch has
//! open (spec 66.1), with its signals and what comes next. `genesis dr status` shows the
//! same.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use genesis_core::dr::RestoreState;
use maud::html;

use super::layout::{html_response, page};
use super::session::SignedIn;
use crate::{AppState, Problem};

/// Where the page lives.
pub const PATH: &str = "/god/dr";

/// `part` of `c`'s droplets, as the page shows it.
fn percent(c: &genesis_store::snapshots::Coverage, part: i64) -> String {
    c.percent_of_droplets(part)
        .map_or_else(|| "—".into(), |p| format!("{p} %"))
}

/// `GET /god/dr`.
pub async fn dr(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let now = chrono::Utc::now();
    let mut shards = Vec::new();
    for shard in state.stores.shards() {
        shards.push((shard.label(), shard.db.snapshot_coverage(now).await?));
    }
    let mut failovers = Vec::new();
    for shard in state.stores.shards() {
        for f in shard.db.failovers(true).await? {
            let c = shard.db.failover_counts(f.id).await?;
            failovers.push((f, c));
        }
    }
    let mut incidents = Vec::new();
    for shard in state.stores.shards() {
        incidents.extend(shard.db.region_incidents(true, 100).await?);
    }
    let copies: i64 = shards.iter().map(|(_, c)| c.copies).sum();
    let cents: i64 = shards.iter().map(|(_, c)| c.monthly_cost_cents()).sum();
    let body = html! {
        main {
            h1 { "Disaster recovery" }
            p.quiet { "Fresh: a snapshot (or its copy in the backup region) from the last 36 \
                       hours. Every droplet gets one a day; weekly ones are kept 30 days, \
                       dailies 7." }
            table #dr-coverage {
                tr {
                    th.text { "Regions" } th { "Live droplets" } th { "Fresh snapshot" }
                    th { "Fresh cross-region copy" } th { "Snapshots kept" } th { "In flight" }
                }
                @for (label, c) in &shards {
                    tr {
                        td.text { (label) }
                        td { (c.droplets) }
                        td { (c.fresh) " (" (percent(c, c.fresh)) ")" }
                        td { (c.fresh_cross_region) " (" (percent(c, c.fresh_cross_region)) ")" }
                        td { (c.copies) }
                        td { (c.in_flight) }
                    }
                }
            }
            p #dr-cost { "Snapshots kept: " (copies) ", at $0.25 each a month: $"
                         (cents / 100) "." (format!("{:02}", cents % 100)) " a month." }
            h2 { "Region outages" }
            @if incidents.is_empty() {
                p #dr-outages.quiet { "None: every region's sidecars report." }
            } @else {
                table #dr-outages {
                    tr {
                        th.text { "Region" } th.text { "Outage" } th.text { "Since" }
                        th { "Silent" } th { "Cloud looks failed" } th.text { "Next" }
                    }
                    @for i in &incidents {
                        tr {
                            td.text { (i.region) } td.text { (i.level.to_uppercase()) }
                            td.text { (i.opened_at.format("%Y-%m-%d %H:%M UTC")) }
                            td { (i.silent) " of " (i.watched) }
                            td { (i.probe_failures) " of " (i.probes) }
                            td.text {
                                @if let Some(f) = i.failover_id { "Failover " (f) }
                                @else if i.confirmed_at.is_some() {
                                    "Confirm with `genesis dr failover`"
                                } @else { "Watching" }
                            }
                        }
                    }
                }
            }
            h2 { "Failovers in progress" }
            @if failovers.is_empty() {
                p #dr-failovers.quiet { "None. `genesis dr failover --region fra1` declares one." }
            } @else {
                table #dr-failovers {
                    tr {
                        th.text { "From" } th.text { "To" } th.text { "Phase" }
                        th { "Waiting" } th { "Restoring" } th { "Restored" } th { "Verified" }
                        th { "Failed" } th { "Held" } th { "RTO so far" }
                    }
                    @for (f, c) in &failovers {
                        @let rto = f.restored_at.unwrap_or(now) - f.started_at;
                        tr {
                            td.text { (f.from_datacenter) } td.text { (f.to_datacenter) }
                            td.text {
                                (f.phase.code())
                                @if f.failback_of.is_some() { " (failback)" }
                            }
                            @for s in [RestoreState::Waiting, RestoreState::Restoring,
                                       RestoreState::Restored, RestoreState::Verified,
                                       RestoreState::Failed, RestoreState::Held] {
                                td { (c.state(s)) }
                            }
                            td { (rto.num_minutes()) " min " (rto.num_seconds() % 60) " s" }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Disaster recovery", Some(&me), body),
    ))
}
