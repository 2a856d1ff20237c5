//! Workspaces: create, get, list.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};

use super::body::ApiJson;
use crate::app::workspaces as app;
use crate::app::workspaces::{CreateWorkspace, ListQuery, WorkspaceDetail, WorkspaceList};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces`: creates a workspace (201, with its `Location`).
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> Result<impl IntoResponse, Problem> {
    let ws = app::create(&state, &body, "api").await?;
    let location = format!("/api/v1/workspaces/{}", ws.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ws),
    ))
}

/// `GET /api/v1/workspaces/{id}`: one workspace, with where its ignition stands.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkspaceDetail>, Problem> {
    Ok(Json(app::detail(&state, &id).await?))
}

/// `GET /api/v1/workspaces`: workspaces across regions, in slug order.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkspaceList>, Problem> {
    Ok(Json(app::list(&state, &q).await?))
}
