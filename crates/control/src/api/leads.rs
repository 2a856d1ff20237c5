//! A workspace's leads: bulk import and keyset-paginated listing, routed by the Ohio router
//! and opened through the tenant gate.

use axum::{
    Json,
    extract::{Path, State},
};
use genesis_store::{ImportReport, LeadPage};

use super::body::ApiJson;
use super::doc;
use crate::app::leads::{ImportBody, PageQuery};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces/{id}/leads`: imports leads (all or nothing; duplicates by
/// address are skipped and counted).
#[utoipa::path(
    post,
    path = "/workspaces/{id}/leads",
    tag = "leads",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = ImportBody,
    responses(
        (status = 200, description = "Imported.", body = ImportReport),
        doc::Conflict,
        doc::NotFound,
    )
)]
pub async fn import(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<ImportReport>, Problem> {
    Ok(Json(crate::app::leads::import(&state, &id, &body).await?))
}

/// `GET /api/v1/workspaces/{id}/leads`: one page of leads, newest first.
#[utoipa::path(
    get,
    path = "/workspaces/{id}/leads",
    tag = "leads",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"), PageQuery),
    responses(
        (status = 200, description = "One page, newest first.", body = LeadPage),
        doc::NotFound,
    )
)]
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<LeadPage>, Problem> {
    Ok(Json(crate::app::leads::page(&state, &id, &q).await?))
}
