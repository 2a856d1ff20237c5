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

use super::body::{ApiJson, ApiQuery};
use super::doc;
use crate::app::rollouts::{
    ListQuery, RolloutList, RolloutView, StartRequest, control_rollout, rollout_view, start_rollout,
};
use crate::auth::API_ACTOR;
use crate::{AppState, Problem};

/// `POST /api/v1/rollouts`: plans the batches over every droplet in scope and starts.
#[utoipa::path(
    post,
    path = "/rollouts",
    tag = "rollouts",
    request_body = StartRequest,
    responses(
        (status = 201, description = "Planned and started.", body = RolloutView),
        doc::Conflict,
    )
)]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<impl IntoResponse, Problem> {
    Ok((
        StatusCode::CREATED,
        Json(start_rollout(&state, &req, API_ACTOR).await?),
    ))
}

/// `GET /api/v1/rollouts`: newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/rollouts",
    tag = "rollouts",
    params(ListQuery),
    responses((status = 200, description = "One page, newest first.", body = RolloutList))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<RolloutList>, Problem> {
    Ok(Json(crate::app::rollouts::page(&state, &q).await?))
}

/// `GET /api/v1/rollouts/{id}`.
#[utoipa::path(
    get,
    path = "/rollouts/{id}",
    summary = "One rollout, batch by batch, with its failures.",
    tag = "rollouts",
    params(("id" = uuid::Uuid, Path, description = "The rollout's id")),
    responses(
        (status = 200, description = "The rollout, batch by batch.", body = RolloutView),
        doc::NotFound,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    Ok(Json(rollout_view(&state, &id).await?))
}

/// What an operator may do to a running rollout, as the path spells it (for the document;
/// [`control`] reads the segment itself, so that an unknown action is a 404 like any
/// unknown route).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RolloutAction {
    /// No new batch starts (queued updates still finish).
    Pause,
    /// Continues with the next batch.
    Resume,
    /// Cancels every droplet not updated yet.
    Abort,
}

/// `POST /api/v1/rollouts/{id}/{pause|resume|abort}`.
#[utoipa::path(
    post,
    path = "/rollouts/{id}/{action}",
    tag = "rollouts",
    summary = "Pauses, resumes or aborts a rollout.",
    params(
        ("id" = uuid::Uuid, Path, description = "The rollout's id"),
        ("action" = inline(RolloutAction), Path, description = "`pause`: no new batch starts \
            (queued updates still finish); `resume`: continues with the next batch; `abort`: \
            cancels every droplet not updated yet"),
    ),
    responses(
        (status = 200, description = "Done.", body = RolloutView),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn control(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<RolloutView>, Problem> {
    let event = match action.as_str() {
        "pause" => RolloutEvent::Pause,
        "resume" => RolloutEvent::Resume,
        "abort" => RolloutEvent::Abort,
        _ => return Err(Problem::not_found("rollout action")),
    };
    Ok(Json(control_rollout(&state, &id, event, API_ACTOR).await?))
}
