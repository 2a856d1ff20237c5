//! Chaos inside virtual droplets, over HTTP (spec 45): what an operator rehearsing an
//! incident, or `make demo`, does to a running fleet from outside the process.
//!
//! - `POST /sim/v1/droplets/{id}/drift`: deactivates one active workflow in the droplet's
//!   n8n, as a person clicking in n8n's editor would (the watchdog finds it, spec 43).
//! - `PUT /sim/v1/droplets/{id}/load` with `{"cpu": 95, "memory": 40, "disk": 30}`
//!   (percent): what the droplet's heartbeats report from now on (spec 54.3's thresholds).
//!
//! - `POST /sim/v1/caddy` with `{"droplets": 5}`: real Caddy in front of the next 5 droplets
//!   to boot (409 when the simulator runs without `--caddy`).
//!
//! The droplet routes answer 404 for a droplet that never booted, and 409 when there is
//! nothing to do.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use genesis_sidecar::sysstats::HostSample;
use serde::Deserialize;

use crate::fleet::{CALM, SidecarHook};

/// The routes, to merge into the simulator's.
pub fn router(hook: Arc<SidecarHook>) -> Router {
    Router::new()
        .route("/sim/v1/droplets/{id}/drift", post(drift))
        .route("/sim/v1/droplets/{id}/load", put(load))
        .route("/sim/v1/caddy", post(more_caddy))
        .with_state(hook)
}

fn not_booted() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no virtual droplet with this id has booted\n",
    )
        .into_response()
}

async fn drift(State(hook): State<Arc<SidecarHook>>, Path(id): Path<i64>) -> Response {
    let Some(n8n) = hook.n8n(id) else {
        return not_booted();
    };
    let active = n8n
        .workflow_summary()
        .into_iter()
        .find(|(_, _, active)| *active);
    match active {
        Some((wf, name, _)) if n8n.chaos_set_active(&wf, false) => (
            StatusCode::OK,
            Json(serde_json::json!({ "deactivated": name, "id": wf })),
        )
            .into_response(),
        _ => (StatusCode::CONFLICT, "no active workflow to deactivate\n").into_response(),
    }
}

/// `POST /sim/v1/caddy`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoreCaddy {
    droplets: usize,
}

async fn more_caddy(
    State(hook): State<Arc<SidecarHook>>,
    body: Result<Json<MoreCaddy>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(m)) = body else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body is {\"droplets\": N}\n",
        )
            .into_response();
    };
    if m.droplets == 0 || m.droplets > 1_000 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "droplets is from 1 to 1000\n",
        )
            .into_response();
    }
    if hook.more_caddy(m.droplets) {
        Json(serde_json::json!({ "next_droplets_with_caddy": m.droplets })).into_response()
    } else {
        (
            StatusCode::CONFLICT,
            "this simulator runs without Caddy (start it with --caddy N)\n",
        )
            .into_response()
    }
}

/// Resource use in percent, as `PUT .../load` takes it.
#[derive(Debug, Deserialize)]
struct Load {
    cpu: f64,
    memory: f64,
    disk: f64,
}

async fn load(
    State(hook): State<Arc<SidecarHook>>,
    Path(id): Path<i64>,
    Json(l): Json<Load>,
) -> Response {
    let ok = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
    if !(ok(l.cpu) && ok(l.memory) && ok(l.disk)) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "cpu, memory and disk are percentages from 0 to 100\n",
        )
            .into_response();
    }
    let sample = HostSample {
        cpu_percent: l.cpu as f32,
        memory_used_mb: (l.memory / 100.0 * CALM.memory_total_mb as f64).round() as u64,
        disk_percent: l.disk as f32,
        ..CALM
    };
    if hook.set_load(id, sample) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_booted()
    }
}
