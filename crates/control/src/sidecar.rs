//! `POST /api/v1/sidecar/handshake` (spec 42.2, DESIGN §3.2): a sidecar trades its one-time
//! provisioning token for a sidecar token and the key that signs its commands. No API token:
//! the provisioning token is the credential. Every refusal is a 401 without details (the
//! audit log has the reason), so a caller cannot probe which tokens exist.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse, response::Response};
use genesis_core::Region;
use genesis_protocol::{HandshakeRequest, HandshakeResponse};
use genesis_store::handshake::HandshakeClaim;

use crate::{AppState, Problem};

/// Completes a handshake.
pub async fn handshake(
    State(state): State<AppState>,
    body: Result<Json<HandshakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return Problem::invalid_field("body", e.body_text()).into_response();
        }
    };
    let Some(signer) = state.command_signer.clone() else {
        tracing::error!("handshake refused: no command signing key configured");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "command signing key not configured",
        )
            .into_response();
    };
    let Ok(region) = Region::parse(&req.region) else {
        return Problem::invalid_field("region", format!("{:?} is not a region", req.region))
            .into_response();
    };
    let db = state.stores.for_region(region);
    let claim = HandshakeClaim {
        provisioning_token: &req.provisioning_token,
        workspace_id: req.workspace_id,
        provider_id: req.droplet_id,
        webhook_base_url: &req.webhook_base_url,
        sidecar_public_key: &req.sidecar_public_key,
    };
    match db.handshake_complete(&claim, "sidecar").await {
        Ok(Ok(done)) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "completed").increment(1);
            Json(HandshakeResponse {
                sidecar_token: done.sidecar_token,
                command_public_key: signer.public_key_b64(),
                command_key_id: signer.key_id().to_owned(),
                config: state.sidecar_config,
            })
            .into_response()
        }
        Ok(Err(reason)) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "refused").increment(1);
            tracing::warn!(?reason, workspace = %req.workspace_id, "handshake refused");
            Problem::unauthorized("the provisioning token is not valid").into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Authenticates a sidecar report: the bearer sidecar token must be valid and, when the body
/// names a workspace, belong to it. Every refusal is a bare 401.
async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    workspace: Option<uuid::Uuid>,
) -> Result<crate::heartbeats::Authenticated, Response> {
    let unauthorized = || Problem::unauthorized("the sidecar token is not valid").into_response();
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    match state.heartbeats.authenticate(token, workspace).await {
        Ok(Some(who)) => Ok(who),
        Ok(None) => {
            metrics::counter!("genesis_sidecar_reports_refused_total").increment(1);
            Err(unauthorized())
        }
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

/// `POST /api/v1/sidecar/heartbeat` (spec 54.1): authenticated and buffered; the flusher
/// records it (and applies spec 54.3's rules) within one flush interval.
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<genesis_protocol::Heartbeat>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(hb) = match body {
        Ok(b) => b,
        Err(e) => return Problem::invalid_field("body", e.body_text()).into_response(),
    };
    let who = match authenticate(&state, &headers, Some(hb.workspace_id)).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    state.heartbeats.accept(who, hb);
    metrics::counter!("genesis_heartbeats_total").increment(1);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /api/v1/sidecar/metrics` (spec 44.2): records the droplet's latest aggregate counts.
pub async fn metrics_report(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<genesis_protocol::MetricsReport>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(m) = match body {
        Ok(b) => b,
        Err(e) => return Problem::invalid_field("body", e.body_text()).into_response(),
    };
    let who = match authenticate(&state, &headers, None).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let db = &state.stores.distinct()[who.db];
    let value = match serde_json::to_value(&m) {
        Ok(v) => v,
        Err(e) => return Problem::invalid_field("body", e.to_string()).into_response(),
    };
    if let Err(e) = db
        .droplet_report_record(who.identity.droplet_id, &value, true)
        .await
    {
        return Problem::from(e).into_response();
    }
    // Executions are activity (spec 55.1): a tenant whose workflows run is not idle.
    if m.total_executions > 0
        && let Err(e) = db
            .activity_touch(
                who.identity.workspace_id,
                genesis_store::ActivityKind::Execution,
                chrono::Utc::now(),
            )
            .await
    {
        return Problem::from(e).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}
