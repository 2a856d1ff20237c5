//! Outbound webhook endpoints and their deliveries ([`crate::app::outbound_webhooks`]):
//! under `/workspaces/{id}` for the operator, and under `/tenant/workspaces/{id}` for a
//! workspace's own API token. Both call the same functions.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use genesis_core::WorkspaceId;
use genesis_store::{Database, DeliveryRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::doc;
use crate::app::outbound_webhooks::{
    self, CreatedEndpoint, EndpointRequest, EndpointView, RevealedSecret, RotatedSecret,
};
use crate::app::tenant_access::{self, TenantCaller};
use crate::extract::{ApiJson, ApiQuery};
use crate::{AppState, Problem};

/// A workspace's endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    /// The endpoints, oldest first.
    pub items: Vec<EndpointView>,
    /// Always null: a workspace has at most ten.
    pub next: Option<String>,
}

/// A workspace's deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// The newest 200, newest first.
    pub items: Vec<DeliveryView>,
    /// Always null: the newest 200 only.
    pub next: Option<String>,
}

/// One event for one endpoint, and how its delivery stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Its id; `webhook-id` is `msg_` and this id without dashes.
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event (`lead.created`…).
    pub event: String,
    /// Attempts made.
    pub attempts: i32,
    /// The receiver's last answer, if it answered.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Written.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Delivered.
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Given up (a dead letter, which may be replayed).
    pub dead_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        let pending = d.delivered_at.is_none() && d.dead_at.is_none();
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event: d.event,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            next_attempt_at: pending.then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
            dead_at: d.dead_at,
        }
    }
}

fn views(rows: Vec<DeliveryRow>) -> Vec<DeliveryView> {
    rows.into_iter().map(DeliveryView::from).collect()
}

/// Which deliveries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only the dead letters (every attempt failed).
    #[serde(default)]
    pub dead: bool,
}

async fn operator_scope(state: &AppState, raw: &str) -> Result<(WorkspaceId, Database), Problem> {
    let id = crate::app::workspaces::resolve(state, raw).await?;
    let (_, db) = state.stores.workspace_find(id).await?;
    Ok((id, db.clone()))
}

fn parse_id(raw: &str, what: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found(what))
}

/// Register an endpoint
///
/// Events are POSTed to it signed per Standard Webhooks (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) with the secret in the answer, which is not
/// shown again. Outside test configuration the URL must be public `https`.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/webhooks",
    tag = "webhooks",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = EndpointRequest,
    responses(
        (status = 201, description = "Registered; the secret is shown this once.", body = CreatedEndpoint),
        doc::NotFound,
        doc::Conflict,
        doc::Unavailable,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    let created =
        outbound_webhooks::register(&state, &db, ws, &req, crate::auth::API_ACTOR).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A workspace's endpoints
#[utoipa::path(
    get,
    path = "/workspaces/{id}/webhooks",
    tag = "webhooks",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses((status = 200, description = "Its endpoints, without secrets.", body = EndpointList), doc::NotFound)
)]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointList>, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    Ok(Json(EndpointList {
        items: outbound_webhooks::list(&db, ws).await?,
        next: None,
    }))
}

/// Remove an endpoint
///
/// Nothing more is sent to it; its pending deliveries become dead letters.
#[utoipa::path(
    delete,
    path = "/workspaces/{id}/webhooks/{endpoint}",
    tag = "webhooks",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses((status = 204, description = "Removed."), doc::NotFound)
)]
pub async fn remove(
    State(state): State<AppState>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    outbound_webhooks::remove(
        &db,
        ws,
        parse_id(&endpoint, "webhook endpoint")?,
        crate::auth::API_ACTOR,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A workspace's webhook deliveries
#[utoipa::path(
    get,
    path = "/workspaces/{id}/webhook-deliveries",
    tag = "webhooks",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        DeliveryFilter,
    ),
    responses((status = 200, description = "The newest deliveries.", body = DeliveryList), doc::NotFound)
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> Result<Json<DeliveryList>, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    Ok(Json(DeliveryList {
        items: views(outbound_webhooks::deliveries(&db, ws, filter.dead).await?),
        next: None,
    }))
}

/// Send a dead-lettered delivery again
///
/// From the start of the schedule (immediate, 5 s, 30 s, 5 min), with the same
/// `webhook-id`; audited (`WEBHOOK_DELIVERY_REPLAYED`).
#[utoipa::path(
    post,
    path = "/workspaces/{id}/webhook-deliveries/{delivery}/replay",
    tag = "webhooks",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("delivery" = Uuid, Path, description = "The delivery's id"),
    ),
    responses((status = 202, description = "Queued for sending."), doc::NotFound)
)]
pub async fn replay(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    outbound_webhooks::replay(
        &state,
        &db,
        Some(ws),
        parse_id(&delivery, "dead-lettered delivery")?,
        crate::auth::API_ACTOR,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Register an endpoint (tenant)
///
/// As `POST /workspaces/{id}/webhooks`, with the workspace's own token.
#[utoipa::path(
    post,
    path = "/tenant/workspaces/{id}/webhooks",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    request_body = EndpointRequest,
    responses(
        (status = 201, description = "Registered; the secret is shown this once.", body = CreatedEndpoint),
        doc::NotFound,
        doc::Conflict,
        doc::Unavailable,
    )
)]
pub async fn tenant_create(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let created =
        outbound_webhooks::register(&state, db, access.workspace.id, &req, &access.actor).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The workspace's endpoints (tenant)
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/webhooks",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses((status = 200, description = "Its endpoints, without secrets.", body = EndpointList), doc::NotFound)
)]
pub async fn tenant_list(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<EndpointList>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    Ok(Json(EndpointList {
        items: outbound_webhooks::list(db, access.workspace.id).await?,
        next: None,
    }))
}

/// Remove an endpoint (tenant)
#[utoipa::path(
    delete,
    path = "/tenant/workspaces/{id}/webhooks/{endpoint}",
    tag = "tenant",
    params(
        ("id" = String, Path, description = "The workspace's id"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses((status = 204, description = "Removed."), doc::NotFound)
)]
pub async fn tenant_remove(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    outbound_webhooks::remove(
        db,
        access.workspace.id,
        parse_id(&endpoint, "webhook endpoint")?,
        &access.actor,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workspace's webhook deliveries (tenant)
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/webhook-deliveries",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id"), DeliveryFilter),
    responses((status = 200, description = "The newest deliveries.", body = DeliveryList), doc::NotFound)
)]
pub async fn tenant_deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> Result<Json<DeliveryList>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    Ok(Json(DeliveryList {
        items: views(outbound_webhooks::deliveries(db, access.workspace.id, filter.dead).await?),
        next: None,
    }))
}

/// Send a dead-lettered delivery again (tenant)
#[utoipa::path(
    post,
    path = "/tenant/workspaces/{id}/webhook-deliveries/{delivery}/replay",
    tag = "tenant",
    params(
        ("id" = String, Path, description = "The workspace's id"),
        ("delivery" = Uuid, Path, description = "The delivery's id"),
    ),
    responses((status = 202, description = "Queued for sending."), doc::NotFound)
)]
pub async fn tenant_replay(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    outbound_webhooks::replay(
        &state,
        db,
        Some(access.workspace.id),
        parse_id(&delivery, "dead-lettered delivery")?,
        &access.actor,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Renew an endpoint's signing secret
///
/// The new secret is in the answer, once; the previous one keeps signing beside it (two
/// signatures in `webhook-signature`) for 24 hours, so the receiver can switch without
/// losing an event. Audited (`WEBHOOK_SECRET_ROTATED`).
#[utoipa::path(
    post,
    path = "/workspaces/{id}/webhooks/{endpoint}/rotate",
    tag = "webhooks",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 200, description = "Renewed; the new secret is shown this once.", body = RotatedSecret),
        doc::NotFound,
        doc::Unavailable,
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    let endpoint = parse_id(&endpoint, "webhook endpoint")?;
    Ok(Json(
        outbound_webhooks::rotate(&state, &db, ws, endpoint, crate::auth::API_ACTOR).await?,
    ))
}

/// Show a secret renewed on schedule, once
///
/// Secrets are renewed every 90 days; the owners are told by e-mail, and the new secret is
/// shown here once (409 after that: renew it again to get another). Audited
/// (`WEBHOOK_SECRET_ACCESSED`).
#[utoipa::path(
    post,
    path = "/workspaces/{id}/webhooks/{endpoint}/secret",
    tag = "webhooks",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 200, description = "The secret, this once.", body = RevealedSecret),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn reveal(
    State(state): State<AppState>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<Json<RevealedSecret>, Problem> {
    let (ws, db) = operator_scope(&state, &id).await?;
    let endpoint = parse_id(&endpoint, "webhook endpoint")?;
    Ok(Json(
        outbound_webhooks::reveal(&state, &db, ws, endpoint, crate::auth::API_ACTOR).await?,
    ))
}

/// Renew an endpoint's signing secret (tenant)
#[utoipa::path(
    post,
    path = "/tenant/workspaces/{id}/webhooks/{endpoint}/rotate",
    tag = "tenant",
    params(
        ("id" = String, Path, description = "The workspace's id"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 200, description = "Renewed; the new secret is shown this once.", body = RotatedSecret),
        doc::NotFound,
        doc::Unavailable,
    )
)]
pub async fn tenant_rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let endpoint = parse_id(&endpoint, "webhook endpoint")?;
    Ok(Json(
        outbound_webhooks::rotate(&state, db, access.workspace.id, endpoint, &access.actor).await?,
    ))
}

/// Show a secret renewed on schedule, once (tenant)
#[utoipa::path(
    post,
    path = "/tenant/workspaces/{id}/webhooks/{endpoint}/secret",
    tag = "tenant",
    params(
        ("id" = String, Path, description = "The workspace's id"),
        ("endpoint" = Uuid, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 200, description = "The secret, this once.", body = RevealedSecret),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn tenant_reveal(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path((id, endpoint)): Path<(String, String)>,
) -> Result<Json<RevealedSecret>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let endpoint = parse_id(&endpoint, "webhook endpoint")?;
    Ok(Json(
        outbound_webhooks::reveal(&state, db, access.workspace.id, endpoint, &access.actor).await?,
    ))
}
