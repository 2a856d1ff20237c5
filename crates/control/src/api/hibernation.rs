//! Hibernation for tenants and operators (spec 55): wake a tenant, hold it awake, and what
//! hibernation has saved.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use genesis_store::ActivityKind;

use super::body::ApiJson;
use super::doc;
use crate::app::hibernation::{
    self as app, HoldRequest, Savings, ScheduleRequest, StandbyRegion, WakeOutcome, savings_now,
    touch_and_wake,
};
use crate::app::workspaces::resolve;
use crate::auth::API_ACTOR;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces/{id}/wake` (spec 55.3's manual trigger): 202 while the droplet
/// powers on, 200 when it was awake already. Waking is also activity: the tenant's notice,
/// if any, is withdrawn.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/wake",
    tag = "hibernation",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 202, description = "The droplet is powering on.", body = WakeOutcome),
        (status = 200, description = "It was awake already.", body = WakeOutcome),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn wake_workspace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let outcome = touch_and_wake(
        &state,
        resolve(&state, &id).await?,
        ActivityKind::Campaign,
        "api",
        API_ACTOR,
    )
    .await?;
    Ok(wake_response(outcome))
}

/// 202 while the droplet powers on, 200 when it was awake already.
fn wake_response(outcome: WakeOutcome) -> (StatusCode, Json<WakeOutcome>) {
    let status = match outcome {
        WakeOutcome::Waking { .. } => StatusCode::ACCEPTED,
        WakeOutcome::Awake { .. } => StatusCode::OK,
    };
    (status, Json(outcome))
}

/// `POST /api/v1/workspaces/{id}/logins` (spec 55.3's dashboard-login trigger): the tenant's
/// dashboard reports a sign-in. It counts as activity (spec 55.1) and wakes a hibernating
/// tenant, so its automations are up by the time the page has loaded; answers as `wake`.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/logins",
    tag = "hibernation",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 202, description = "The droplet is powering on.", body = WakeOutcome),
        (status = 200, description = "It was awake already.", body = WakeOutcome),
        doc::NotFound,
        doc::Conflict,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let outcome = touch_and_wake(
        &state,
        resolve(&state, &id).await?,
        ActivityKind::Login,
        "login",
        "dashboard",
    )
    .await?;
    Ok(wake_response(outcome))
}

/// `PUT /api/v1/workspaces/{id}/hibernation`: sets or lifts the manual hold.
#[utoipa::path(
    put,
    path = "/workspaces/{id}/hibernation",
    tag = "hibernation",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = HoldRequest,
    responses(
        (status = 204, description = "Set."),
        doc::NotFound,
    )
)]
pub async fn hold(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HoldRequest>,
) -> Result<StatusCode, Problem> {
    app::hold(&state, resolve(&state, &id).await?, req.hold, API_ACTOR).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/workspaces/{id}/schedule`: the next scheduled campaign. A hibernating tenant
/// is woken ahead of it (spec 55.3; High-Priority tenants 5 minutes ahead, spec 55.4).
#[utoipa::path(
    put,
    path = "/workspaces/{id}/schedule",
    tag = "hibernation",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = ScheduleRequest,
    responses(
        (status = 204, description = "Set."),
        doc::NotFound,
    )
)]
pub async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ScheduleRequest>,
) -> Result<StatusCode, Problem> {
    app::schedule(&state, resolve(&state, &id).await?, req.next_campaign_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/fleet/hibernation`.
#[utoipa::path(
    get,
    path = "/fleet/hibernation",
    summary = "What hibernation has saved so far (spec 55.2).",
    tag = "hibernation",
    responses((status = 200, description = "What hibernation has saved.", body = Savings))
)]
pub async fn savings(State(state): State<AppState>) -> Result<Json<Savings>, Problem> {
    Ok(Json(savings_now(&state).await?))
}

/// `GET /api/v1/fleet/standby`: the hot-standby pool per region (spec 55.4 strategy 3).
#[utoipa::path(
    get,
    path = "/fleet/standby",
    tag = "hibernation",
    responses((status = 200, description = "The pool per region code.",
        body = std::collections::BTreeMap<String, StandbyRegion>))
)]
pub async fn standby(
    State(state): State<AppState>,
) -> Result<Json<std::collections::BTreeMap<String, StandbyRegion>>, Problem> {
    Ok(Json(app::standby_pool(&state).await?))
}
