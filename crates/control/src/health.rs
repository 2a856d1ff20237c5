//! Liveness, readiness and metrics endpoints.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: every regional database and Redis answer. 503 with the failing parts otherwise.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut databases = Vec::new();
    let mut ok = true;
    for db in state.stores.distinct() {
        let result = db.ping().await;
        ok &= result.is_ok();
        databases.push(json!({
            "database": db.options().admin.get_database(),
            "ok": result.is_ok(),
            "error": result.err().map(|e| e.to_string()),
        }));
    }
    let redis = match &state.redis {
        None => json!({"ok": true, "configured": false}),
        Some(lazy) => {
            let result = async { lazy.get().await?.ping().await }.await;
            ok &= result.is_ok();
            json!({"ok": result.is_ok(), "error": result.err().map(|e| e.to_string())})
        }
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ok, "databases": databases, "redis": redis})),
    )
}

/// Prometheus text exposition, with the fleet's figures read at this scrape.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(h) => {
            crate::telemetry::refresh_fleet_gauges(&state).await;
            (
                StatusCode::OK,
                [("content-type", "text/plain; version=0.0.4")],
                h.render(),
            )
        }
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "text/plain; version=0.0.4")],
            String::from("# metrics recorder not installed\n"),
        ),
    }
}
