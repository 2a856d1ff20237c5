//! Regional status (spec 44.1): each region's health, judged by
//! [`genesis_core::region_health`] from the same counts as the fleet overview.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use genesis_core::Region;
use genesis_core::region_health::RegionHealth;
use maud::html;
use serde::Serialize;

use super::layout::{html_response, page};
use super::session::SignedIn;
use crate::app::fleet::fleet_totals;
use crate::{AppState, Problem};

/// One region as the page and `/god/api/regions` show it.
#[derive(Debug, Serialize)]
pub struct RegionView {
    /// The region's code.
    pub region: String,
    /// Its health.
    #[serde(flatten)]
    pub health: RegionHealth,
}

/// Every region this build knows (an empty one included: an operator should see that a
/// region holds nothing), then any other region the databases name.
pub async fn regions_of(state: &AppState) -> Result<Vec<RegionView>, Problem> {
    let fleet = fleet_totals(state).await?;
    let empty = BTreeMap::new();
    let mut out: Vec<RegionView> = Region::ALL
        .iter()
        .map(|r| RegionView {
            region: r.code().to_owned(),
            health: RegionHealth::judge(fleet.by_region.get(r.code()).unwrap_or(&empty)),
        })
        .collect();
    for (code, counts) in &fleet.by_region {
        if !out.iter().any(|v| &v.region == code) {
            out.push(RegionView {
                region: code.clone(),
                health: RegionHealth::judge(counts),
            });
        }
    }
    Ok(out)
}

/// `GET /god/api/regions`.
pub async fn json(State(state): State<AppState>) -> Result<Json<Vec<RegionView>>, Problem> {
    Ok(Json(regions_of(&state).await?))
}

/// `GET /god/regions`.
pub async fn regions(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let views = regions_of(&state).await?;
    let body = html! {
        main {
            h1 { "Regional status" }
            p.quiet {
                "Healthy share counts the droplets that should be serving: hibernating ones and "
                "ones still being provisioned are left out."
            }
            table #regions {
                tr {
                    th { "Region" } th { "Status" } th { "Healthy share" } th { "Healthy" }
                    th { "Impaired" } th { "Lost" } th { "Asleep" } th { "Not serving yet" }
                    th { "Total" }
                }
                @for v in &views {
                    tr data-region=(v.region) data-status=(v.health.status.code()) {
                        td { a href={ "heatmap#" (v.region) } { (v.region) } }
                        td { span class={ "badge b-" (v.health.status.code()) } { (v.health.status.code()) } }
                        td { (format!("{:.1} %", v.health.serving_share * 100.0)) }
                        td { (v.health.healthy) }
                        td { (v.health.impaired) }
                        td { (v.health.lost) }
                        td { (v.health.asleep) }
                        td { (v.health.not_counted) }
                        td { (v.health.total) }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Regions", Some(&me), body),
    ))
}
