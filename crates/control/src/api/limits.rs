//! `/workspaces/{id}/limits`: a workspace's per-tenant limits of spec 59.2, read and set by
//! an operator ([`crate::app::limit_overrides`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::doc;
use crate::app::limit_overrides::{self, LimitsChange, ServiceLimits};
use crate::extract::ApiJson;
use crate::{AppState, Problem};

/// A workspace's per-tenant limits
///
/// Each metered service's per-tenant limits as they apply to the workspace: the service
/// matrix's, or its own where an operator set them.
#[utoipa::path(
    get,
    path = "/workspaces/{id}/limits",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 200, description = "Each metered service's per-tenant limits as they apply to it.", body = Vec<ServiceLimits>),
        doc::NotFound,
        doc::Unavailable,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ServiceLimits>>, Problem> {
    let ws = crate::app::workspaces::resolve(&state, &id).await?;
    Ok(Json(limit_overrides::list(&state, ws).await?))
}

/// Give a workspace its own per-tenant limits for a service
///
/// A limit left out keeps the matrix's; global limits always stay the matrix's. Audited
/// (`LIMITS_OVERRIDDEN`) with the reason.
#[utoipa::path(
    put,
    path = "/workspaces/{id}/limits/{service}",
    tag = "workspaces",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("service" = String, Path, description = "A metered service's id in the matrix (`google_cse`)"),
    ),
    request_body = LimitsChange,
    responses(
        (status = 200, description = "Set; the limits as they now apply.", body = ServiceLimits),
        doc::NotFound,
        doc::Unavailable,
    )
)]
pub async fn set(
    State(state): State<AppState>,
    Path((id, service)): Path<(String, String)>,
    ApiJson(change): ApiJson<LimitsChange>,
) -> Result<Json<ServiceLimits>, Problem> {
    let ws = crate::app::workspaces::resolve(&state, &id).await?;
    Ok(Json(
        limit_overrides::set(&state, ws, &service, change, crate::auth::API_ACTOR).await?,
    ))
}

/// Give a workspace the matrix's per-tenant limits again
///
/// Audited (`LIMITS_RESET`); 404 when it had none of its own.
#[utoipa::path(
    delete,
    path = "/workspaces/{id}/limits/{service}",
    tag = "workspaces",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("service" = String, Path, description = "A metered service's id in the matrix"),
    ),
    responses(
        (status = 204, description = "The matrix's limits apply again."),
        doc::NotFound,
        doc::Unavailable,
    )
)]
pub async fn reset(
    State(state): State<AppState>,
    Path((id, service)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let ws = crate::app::workspaces::resolve(&state, &id).await?;
    limit_overrides::reset(&state, ws, &service, crate::auth::API_ACTOR).await?;
    Ok(StatusCode::NO_CONTENT)
}
