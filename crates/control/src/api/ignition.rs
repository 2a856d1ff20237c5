//! Ignition: `POST /api/v1/workspaces/{id}/ignite` starts the saga of spec 41.1 (or returns
//! the one in flight); the workspace's GET shows where it is.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};

use super::body::ApiJson;
use super::doc;
use crate::app::ignition::{self as app, IgniteAnswer, IgniteRequest};
use crate::app::workspaces::resolve;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces/{id}/ignite`: 202 with the new saga, or 200 with the one
/// already in flight.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/ignite",
    tag = "ignition",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = IgniteRequest,
    responses(
        (status = 202, description = "Started; the lead-intake token is shown this once.",
            body = IgniteAnswer),
        (status = 200, description = "An ignition was already in flight.", body = IgniteAnswer),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn ignite(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IgniteRequest>,
) -> Result<impl IntoResponse, Problem> {
    let (started, answer) = app::ignite(&state, resolve(&state, &id).await?, &req).await?;
    let status = if started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}
