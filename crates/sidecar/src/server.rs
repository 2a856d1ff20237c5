//! `POST /sidecar/v1/commands`: the body names the command, the bearer JWT must permit
//! exactly that command for this workspace and droplet, once (spec 51.3). A refusal is
//! answered 401 or 403 with its reason, logged, and kept for the next heartbeat.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use genesis_protocol::{Command, CommandVerifier, Refusal};
use serde_json::json;

use crate::commands::Executor;
use crate::runtime::ContainerRuntime;

/// A listener shared by many sidecars, which routes each connection to the router attached
/// for the address it was made to. One process that simulates thousands of droplets cannot
/// open a listening socket for each (see `genesis_sim::vhost`).
pub trait Attach: std::fmt::Debug + Send + Sync {
    /// Serves `router` for connections to `addr` from now on.
    fn attach(&self, addr: std::net::SocketAddr, router: Router);
    /// Stops serving `addr`.
    fn detach(&self, addr: std::net::SocketAddr);
}

/// The command endpoint's state.
pub struct CommandService<R> {
    verifier: CommandVerifier,
    executor: Arc<Executor<R>>,
    refusals: Mutex<Vec<Refusal>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<R: ContainerRuntime> CommandService<R> {
    /// A service verifying with `verifier` and running with `executor`.
    pub fn new(verifier: CommandVerifier, executor: Arc<Executor<R>>) -> Arc<Self> {
        Arc::new(Self {
            verifier,
            executor,
            refusals: Mutex::new(Vec::new()),
        })
    }

    /// Refusals since the last call (the heartbeat reports them).
    pub fn take_refusals(&self) -> Vec<Refusal> {
        self.refusals
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Puts refusals back (a heartbeat that carried them was not delivered).
    pub fn requeue_refusals(&self, mut refused: Vec<Refusal>) {
        if let Ok(mut r) = self.refusals.lock() {
            refused.append(&mut r);
            *r = refused;
        }
    }

    /// Refusals since start, by reason.
    pub fn refusal_counts(
        &self,
    ) -> std::collections::BTreeMap<genesis_protocol::RefusalReason, u64> {
        self.verifier.refusal_counts()
    }

    /// The routes: the command endpoint and an unauthenticated liveness probe.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/sidecar/v1/commands", post(command::<R>))
            .route("/sidecar/v1/health", get(|| async { "ok" }))
            .with_state(self.clone())
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn command<R: ContainerRuntime>(
    State(svc): State<Arc<CommandService<R>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cmd: Command = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"code": "bad_request", "message": format!("not a command: {e}")})),
            )
                .into_response();
        }
    };
    let action = cmd.name();
    if let Err(refusal) = svc.verifier.verify(bearer(&headers), action, unix_now()) {
        tracing::warn!(%action, reason = ?refusal.reason, jti = ?refusal.jti, "command refused");
        let status =
            StatusCode::from_u16(refusal.reason.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let body = json!({"refused": refusal.reason, "action": action});
        if let Ok(mut r) = svc.refusals.lock() {
            r.push(refusal);
        }
        return (status, Json(body)).into_response();
    }
    tracing::info!(%action, "command accepted");
    match svc.executor.run(cmd).await {
        Ok(reply) => Json(reply).into_response(),
        Err(failure) => {
            tracing::warn!(%action, code = %failure.code, message = %failure.message, "command failed");
            let status = match failure.code.as_str() {
                "n8n_unavailable" | "runtime" | "rollback_failed" | "n8n_error" => {
                    StatusCode::BAD_GATEWAY
                }
                "n8n_not_found" => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (status, Json(failure)).into_response()
        }
    }
}
