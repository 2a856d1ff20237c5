//! A tenant's data, exported (spec 64.3): ask for it, follow it, download it through the
//! signed links it gives once ready.

use axum::{
    Extension, Json,
    extract::{Path, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use tower::ServiceExt as _;
use uuid::Uuid;

use super::doc;
use crate::app::exports::{self as app, DownloadQuery, ExportView};
use crate::app::tenant_access::{self, TenantCaller};
use crate::app::workspaces::resolve;
use crate::auth::API_ACTOR;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces/{id}/exports`: starts an export of everything the workspace
/// holds (leads, campaigns, settings without secrets, members, wallet transfers, its audit
/// log). It is written in the background; follow it with `GET .../exports/{export}`.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/exports",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 202, description = "Started.", body = ExportView),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let id = resolve(&state, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(app::start(&state, id, API_ACTOR).await?),
    ))
}

/// `GET /api/v1/workspaces/{id}/exports/{export}`: where the export stands; once READY,
/// one signed download link per part, valid for a day (never past the export's expiry).
#[utoipa::path(
    get,
    path = "/workspaces/{id}/exports/{export}",
    tag = "workspaces",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("export" = Uuid, Path, description = "The export's id"),
    ),
    responses(
        (status = 200, description = "The export.", body = ExportView),
        doc::NotFound,
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path((id, export)): Path<(String, String)>,
) -> Result<Json<ExportView>, Problem> {
    let id = resolve(&state, &id).await?;
    let export = Uuid::parse_str(&export).map_err(|_| Problem::not_found("export"))?;
    Ok(Json(app::get(&state, id, export).await?))
}

/// Export everything (tenant)
///
/// As `POST /workspaces/{id}/exports`, with the workspace's own API token: a tenant takes
/// its data away with it (spec 64.3, GDPR portability).
#[utoipa::path(
    post,
    path = "/tenant/workspaces/{id}/exports",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 202, description = "Started.", body = ExportView),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn tenant_start(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let (access, _) = tenant_access::access(&state, &caller, &id).await?;
    access.owner_or_token("export the workspace's data")?;
    Ok((
        StatusCode::ACCEPTED,
        Json(app::start(&state, access.workspace.id, &access.actor).await?),
    ))
}

/// An export (tenant)
///
/// As `GET /workspaces/{id}/exports/{export}`, with the workspace's own API token.
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/exports/{export}",
    tag = "tenant",
    params(
        ("id" = String, Path, description = "The workspace's id"),
        ("export" = Uuid, Path, description = "The export's id"),
    ),
    responses(
        (status = 200, description = "The export.", body = ExportView),
        doc::NotFound,
    )
)]
pub async fn tenant_get(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path((id, export)): Path<(String, String)>,
) -> Result<Json<ExportView>, Problem> {
    let (access, _) = tenant_access::access(&state, &caller, &id).await?;
    access.owner_or_token("export the workspace's data")?;
    let export = Uuid::parse_str(&export).map_err(|_| Problem::not_found("export"))?;
    Ok(Json(app::get(&state, access.workspace.id, export).await?))
}

/// `GET /exports/{id}/download?part=&expires=&sig=`: one part of a ready export, for
/// whoever holds a valid link (no other credential). Honours `Range`, so a download that
/// was cut off resumes.
pub async fn download(
    State(state): State<AppState>,
    Path(export): Path<String>,
    Query(q): Query<DownloadQuery>,
    req: Request,
) -> Result<Response, Problem> {
    let export = Uuid::parse_str(&export).map_err(|_| Problem::not_found("export"))?;
    let fresh = !req.headers().contains_key(axum::http::header::RANGE);
    let path = app::download_path(&state, export, &q, fresh).await?;
    let name = format!("export-{export}-part{}.zip", q.part);
    let mut resp = tower_http::services::ServeFile::new_with_mime(
        &path,
        &"application/zip".parse().map_err(|_| Problem::internal())?,
    )
    .oneshot(req)
    .await
    .map_err(|_| Problem::internal())?
    .map(axum::body::Body::new);
    if resp.status() == StatusCode::NOT_FOUND {
        return Err(Problem::not_found("export file"));
    }
    if let Ok(v) = format!("attachment; filename=\"{name}\"").parse() {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
