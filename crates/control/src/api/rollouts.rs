//! Template rollouts for operators (spec 56): start one, watch it batch by batch, pause,
//! resume or abort it. The conductor (`workers::rollouts`) does the rest.
//!
//! A rollout deploys the template set this control plane carries: to ship a new version,
//! deploy the control plane with it (`ignition.templates_dir`), then start a rollout to it.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use genesis_core::rollout::RolloutEvent;
use genesis_store::Rollout;

use super::body::ApiJson;
use crate::app::rollouts::{
    RolloutView, StartRequest, control_rollout, rollout_view, start_rollout,
};
use crate::{AppState, Problem};

/// `POST /api/v1/rollouts`: plans the batches over every droplet in scope and starts.
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<impl IntoResponse, Problem> {
    Ok((
        StatusCode::CREATED,
        Json(start_rollout(&state, &req, "operator").await?),
    ))
}

/// `GET /api/v1/rollouts`: the newest 50.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Rollout>>, Problem> {
    Ok(Json(state.stores.coordinator().rollout_list(50).await?))
}

/// `GET /api/v1/rollouts/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    Ok(Json(rollout_view(&state, &id).await?))
}

/// `POST /api/v1/rollouts/{id}/pause`: no new batch starts (queued updates still finish).
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    control(&state, &id, RolloutEvent::Pause).await
}

/// `POST /api/v1/rollouts/{id}/resume`: continues with the next batch.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    control(&state, &id, RolloutEvent::Resume).await
}

/// `POST /api/v1/rollouts/{id}/abort`: cancels every droplet not updated yet.
pub async fn abort(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    control(&state, &id, RolloutEvent::Abort).await
}

async fn control(
    state: &AppState,
    id: &str,
    event: RolloutEvent,
) -> Result<Json<RolloutView>, Problem> {
    Ok(Json(control_rollout(state, id, event, "operator").await?))
}
