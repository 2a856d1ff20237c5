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

/// `POST /api/v1/workspaces/{id}/replies`: a reply to the tenant's outreach, as the Golden
/// Template's reply handler reports it with the workspace's ingest token. The lead leaves
/// its sequence (`replied`, or `unsubscribed`), and the change is audited.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/replies",
    tag = "leads",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = crate::app::leads::ReplyBody,
    responses(
        (status = 200, description = "Recorded (or nothing to record: see `outcome`).", body = crate::app::leads::ReplyResult),
        doc::Conflict,
        doc::NotFound,
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<crate::app::leads::ReplyBody>,
) -> Result<Json<crate::app::leads::ReplyResult>, Problem> {
    Ok(Json(crate::app::leads::reply(&state, &id, &body).await?))
}
