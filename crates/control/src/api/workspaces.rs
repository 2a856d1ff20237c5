//! Workspaces: create, get, list.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};

use super::body::ApiJson;
use super::doc;
use crate::app::workspaces as app;
use crate::app::workspaces::{CreateWorkspace, ListQuery, WorkspaceDetail, WorkspaceList};
use crate::auth::API_ACTOR;
use crate::extract::ApiQuery;
use crate::{AppState, Problem};
use genesis_store::Workspace;

/// `POST /api/v1/workspaces`: creates a workspace (201, with its `Location`).
#[utoipa::path(
    post,
    path = "/workspaces",
    tag = "workspaces",
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "Created; `Location` names it.", body = Workspace,
            headers(("Location" = String, description = "The new workspace's URL"))),
        doc::Conflict,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> Result<impl IntoResponse, Problem> {
    let ws = app::create(&state, &body, API_ACTOR).await?;
    let location = format!("/api/v1/workspaces/{}", ws.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ws),
    ))
}

/// `GET /api/v1/workspaces/{id}`: one workspace, with where its ignition stands.
#[utoipa::path(
    get,
    path = "/workspaces/{id}",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 200, description = "The workspace.", body = WorkspaceDetail),
        doc::NotFound,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceDetail>, Problem> {
    Ok(Json(app::detail(&state, &id).await?))
}

/// `GET /api/v1/workspaces`: workspaces across regions, in slug order.
#[utoipa::path(
    get,
    path = "/workspaces",
    tag = "workspaces",
    params(ListQuery),
    responses((status = 200, description = "One page, in slug order.", body = WorkspaceList))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkspaceList>, Problem> {
    Ok(Json(app::list(&state, &q).await?))
}
