//! A tenant's deletion (spec 64.1): start it with a trigger, see where it stands, call it
//! off during the grace period.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};

use super::body::ApiJson;
use super::doc;
use crate::app::deletion::{self as app, DeletionRequest, Requester};
use crate::app::workspaces::resolve;
use crate::auth::API_ACTOR;
use crate::{AppState, Problem};
use genesis_store::{Deletion, Workspace};

/// `POST /api/v1/workspaces/{id}/deletion`: starts the deletion (day 0): the workspace goes
/// to PENDING_DELETION, its campaigns pause, its engine sleeps, and (for the reversible
/// triggers) its owners are told when the data goes and how to call it off.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/deletion",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = DeletionRequest,
    responses(
        (status = 202, description = "Started; the data goes at `purge_after`.", body = Deletion),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DeletionRequest>,
) -> Result<impl IntoResponse, Problem> {
    let id = resolve(&state, &id).await?;
    let d = app::request(&state, id, &req, Requester::Operator, API_ACTOR).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// `GET /api/v1/workspaces/{id}/deletion`: the deletion under way; 404 when there is none.
#[utoipa::path(
    get,
    path = "/workspaces/{id}/deletion",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 200, description = "The deletion under way.", body = Deletion),
        doc::NotFound,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Deletion>, Problem> {
    let id = resolve(&state, &id).await?;
    Ok(Json(app::get(&state, id).await?))
}

/// `DELETE /api/v1/workspaces/{id}/deletion`: calls the deletion off; the workspace returns
/// to the status it had. Refused (409) after the grace period or for `tos` and `fraud`.
#[utoipa::path(
    delete,
    path = "/workspaces/{id}/deletion",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 200, description = "Called off; the workspace as it is now.", body = Workspace),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Workspace>, Problem> {
    let id = resolve(&state, &id).await?;
    Ok(Json(app::cancel(&state, id, API_ACTOR).await?))
}
