//! Fleet health for operators: counts per state and region, one droplet with its last
//! heartbeat and history, and the alerts people must look at.

use axum::{
    Json,
    extract::{Path, State},
};
use genesis_store::FleetCounts;

use super::doc;
use crate::app::fleet::{
    AlertList, AlertQuery, DropletDetail, ReconcilerList, alerts_of, droplet_detail, fleet_totals,
};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `GET /api/v1/fleet/health`: live droplets per state and per region, all databases
/// together.
#[utoipa::path(
    get,
    path = "/fleet/health",
    tag = "fleet",
    responses((status = 200, description = "Live droplets counted.", body = FleetCounts))
)]
pub async fn health(State(state): State<AppState>) -> Result<Json<FleetCounts>, Problem> {
    Ok(Json(fleet_totals(&state).await?))
}

/// `GET /api/v1/droplets/{id}`.
#[utoipa::path(
    get,
    path = "/droplets/{id}",
    summary = "One droplet, with its last heartbeat, history and recent commands.",
    tag = "droplets",
    params(("id" = uuid::Uuid, Path, description = "The droplet's id (ours, not the cloud's)")),
    responses(
        (status = 200, description = "The droplet, its last heartbeat, history and commands.",
            body = DropletDetail),
        doc::NotFound,
    )
)]
pub async fn droplet(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropletDetail>, Problem> {
    Ok(Json(droplet_detail(&state, &id).await?))
}

/// `GET /api/v1/alerts`.
#[utoipa::path(
    get,
    path = "/alerts",
    summary = "Alerts across regions, newest first.",
    tag = "fleet",
    params(AlertQuery),
    responses((status = 200, description = "Alerts, newest first.", body = AlertList))
)]
pub async fn alerts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Json<AlertList>, Problem> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "must be between 1 and 500"));
    }
    Ok(Json(alerts_of(&state, !q.all, limit).await?))
}

/// `GET /api/v1/fleet/reconcilers`: what each background reconciler last did.
#[utoipa::path(
    get,
    path = "/fleet/reconcilers",
    tag = "fleet",
    responses((status = 200, description = "Every reconciler, in name order.", body = ReconcilerList))
)]
pub async fn reconcilers(State(state): State<AppState>) -> Result<Json<ReconcilerList>, Problem> {
    Ok(Json(ReconcilerList {
        items: crate::app::reconcilers::list(&state).await?,
    }))
}

/// `POST /api/v1/fleet/reconcilers/{name}/wake`: the reconciler's leader runs a pass now
/// (202: asked; the pass shows in the status when it has run).
#[utoipa::path(
    post,
    path = "/fleet/reconcilers/{name}/wake",
    tag = "fleet",
    params(("name" = String, Path, description = "The reconciler's name, as the list shows it")),
    responses(
        (status = 202, description = "Asked; the pass shows in its status once it has run."),
        doc::NotFound,
    )
)]
pub async fn wake_reconciler(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    crate::app::reconcilers::wake(&state, &name).await?;
    Ok(axum::http::StatusCode::ACCEPTED)
}
