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

/// Error types one report may name, and how long a name may be: a report is aggregate
/// counts by class, and a sidecar gone wrong must not fill the history with noise.
const MAX_ERROR_TYPES: usize = 50;
const MAX_ERROR_TYPE_LEN: usize = 100;

/// Refuses a report that cannot be right: a period that ends before it starts or in the
/// future (clocks may differ by a few minutes), a rate outside 0..=1, or too many error
/// types.
fn check_report(
    m: &genesis_protocol::MetricsReport,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    if !(m.success_rate.is_finite() && (0.0..=1.0).contains(&m.success_rate)) {
        return Err(Problem::invalid_field(
            "success_rate",
            "must be between 0 and 1",
        ));
    }
    if m.error_types.len() > MAX_ERROR_TYPES
        || m.error_types
            .keys()
            .any(|k| k.is_empty() || k.len() > MAX_ERROR_TYPE_LEN)
    {
        return Err(Problem::invalid_field(
            "error_types",
            format!("at most {MAX_ERROR_TYPES} types, each 1 to {MAX_ERROR_TYPE_LEN} characters"),
        ));
    }
    match (m.period_start_ms, m.period_end_ms) {
        (None, None) => Ok(()),
        (Some(start), Some(end))
            if start <= end && end <= now.timestamp_millis() + 5 * 60 * 1_000 =>
        {
            Ok(())
        }
        _ => Err(Problem::invalid_field(
            "period_end_ms",
            "the period must have a start and an end, in order, and not end in the future",
        )),
    }
}

/// What a report adds to the fleet's history: counts, with the rate and mean turned back
/// into sums so that buckets add up.
fn figures_of(m: &genesis_protocol::MetricsReport) -> genesis_store::MetricsFigures {
    let executions = i64::try_from(m.total_executions).unwrap_or(i64::MAX);
    let rate = if m.success_rate.is_finite() {
        m.success_rate.clamp(0.0, 1.0)
    } else {
        1.0
    };
    genesis_store::MetricsFigures {
        executions,
        succeeded: (rate * executions as f64).round() as i64,
        duration_ms_sum: i64::try_from(m.avg_duration_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(executions),
        emails_sent: i64::try_from(m.email_sent_count).unwrap_or(i64::MAX),
        errors: m
            .error_types
            .iter()
            .map(|(t, n)| (t.clone(), i64::try_from(*n).unwrap_or(i64::MAX)))
            .collect(),
    }
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
    if let Err(p) = check_report(&m, chrono::Utc::now()) {
        return p.into_response();
    }
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
    // A report that names its period goes into the fleet's history (spec 44.2), once.
    if let Some(end) = m
        .period_end_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        && let Err(e) = db
            .fleet_metrics_add(who.identity.droplet_id, end, &figures_of(&m))
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
