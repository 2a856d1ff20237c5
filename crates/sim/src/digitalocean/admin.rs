//! `/sim/v1/...`: steering the simulation (faults, counters, one droplet going dark, a
//! whole datacenter failing).

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::gate::{not_found, parse_id};
use super::{Faults, Simulator, Stats};

/// The admin routes.
pub fn router() -> Router<Simulator> {
    Router::new()
        .route("/sim/v1/faults", get(faults_get).put(faults_put))
        .route("/sim/v1/stats", get(stats))
        .route("/sim/v1/droplets/{id}/go-dark", post(go_dark))
        .route("/sim/v1/regions/failed", get(failed_regions))
        .route("/sim/v1/regions/{slug}/fail", post(fail_region))
        .route("/sim/v1/regions/{slug}/restore", post(restore_region))
}

/// The datacenters down now.
async fn failed_regions(State(sim): State<Simulator>) -> Json<Vec<String>> {
    Json(sim.failed_regions())
}

/// Fails a datacenter (204); 404 for one the catalog does not know.
async fn fail_region(State(sim): State<Simulator>, Path(slug): Path<String>) -> Response {
    if sim.fail_region(&slug) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}

/// Ends a datacenter's outage (204).
async fn restore_region(State(sim): State<Simulator>, Path(slug): Path<String>) -> Response {
    sim.restore_region(&slug);
    StatusCode::NO_CONTENT.into_response()
}

async fn faults_get(State(sim): State<Simulator>) -> Json<Faults> {
    Json(sim.lock().faults.clone())
}

async fn faults_put(
    State(sim): State<Simulator>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(f)) => {
            sim.set_faults(f.clone());
            Json(f).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.body_text()).into_response(),
    }
}

async fn stats(State(sim): State<Simulator>) -> Json<Stats> {
    Json(sim.stats())
}

/// `?forever=true`: no power cycle brings it back either (the zombie that ends ORPHAN).
#[derive(Debug, Default, serde::Deserialize)]
struct DarkQuery {
    #[serde(default)]
    forever: bool,
}

/// Makes one running droplet go dark now (204), for zombie-recovery drills.
async fn go_dark(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Query(q): Query<DarkQuery>,
) -> Response {
    match parse_id(&id) {
        Some(id) if sim.go_dark(id, None) => {
            if q.forever {
                sim.never_boot_again(id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Some(id) if sim.lock().world.droplets.contains_key(&id) => {
            (StatusCode::CONFLICT, "the droplet is not running\n").into_response()
        }
        _ => not_found(),
    }
}
