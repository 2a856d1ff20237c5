//! `POST /sidecar/v1/commands`: the body names the command, the bearer JWT must permit
//! exactly that command, with exactly that body, for this workspace and droplet, once (spec
//! 51.3). A refusal is answered 401 or 403 with its reason, logged, and counted for the next
//! heartbeat (the latest few in full, the rest as counts: `crate::guard`).
//!
//! Before any of that, each source address has a quota of requests per second: a flood from
//! one address is answered 429 without reading its token. The ids of accepted commands are
//! written to the state directory before the commands run, so a token stays spent across a
//! restart.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use genesis_protocol::{Command, CommandVerifier, RefusalReason};
use serde_json::json;

use crate::commands::Executor;
use crate::guard::{RefusalLog, SourceLimiter, Taken, UsedIds};
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
    refusals: RefusalLog,
    limiter: SourceLimiter,
    used: Option<UsedIds>,
    /// Peers whose `X-Forwarded-For` names the real source (the droplet's Caddy).
    trusted_proxies: Vec<std::net::IpAddr>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where a [`CommandService`] keeps the ids of the commands it accepted.
#[derive(Default)]
pub struct Guarding {
    /// The id log (ids already in it are loaded into the verifier).
    pub used: Option<UsedIds>,
    /// Peers trusted to name the real source in `X-Forwarded-For`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Per-source quota.
    pub limiter: SourceLimiter,
}

impl<R: ContainerRuntime> CommandService<R> {
    /// A service verifying with `verifier` and running with `executor`, keeping accepted
    /// ids in memory only (tests).
    pub fn new(verifier: CommandVerifier, executor: Arc<Executor<R>>) -> Arc<Self> {
        Self::guarded(verifier, executor, Guarding::default())
    }

    /// A service with its guards: the used-id log, the trusted proxies, the source quota.
    pub fn guarded(
        verifier: CommandVerifier,
        executor: Arc<Executor<R>>,
        guarding: Guarding,
    ) -> Arc<Self> {
        Arc::new(Self {
            verifier,
            executor,
            refusals: RefusalLog::default(),
            limiter: guarding.limiter,
            used: guarding.used,
            trusted_proxies: guarding.trusted_proxies,
        })
    }

    /// Refusals since the last call (the heartbeat reports them).
    pub fn take_refusals(&self) -> Taken {
        self.refusals.take()
    }

    /// Puts refusals back (a heartbeat that carried them was not delivered).
    pub fn requeue_refusals(&self, refused: Taken) {
        self.refusals.restore(refused);
    }

    /// Forgets idle sources' quotas (the heartbeat loop calls it).
    pub fn forget_idle_sources(&self) {
        self.limiter.forget_idle();
    }

    /// The address a request really came from: the peer, or, when the peer is a trusted
    /// proxy, the last address it appended to `X-Forwarded-For`.
    fn source(
        &self,
        peer: Option<std::net::IpAddr>,
        headers: &HeaderMap,
    ) -> Option<std::net::IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
            .or(Some(peer))
    }

    /// The command keys trusted now, by id (each heartbeat reports them).
    pub fn trusted_key_ids(&self) -> Vec<String> {
        self.verifier.trusted_key_ids()
    }

    /// Trusts exactly `public_keys` from now on (a heartbeat's answer during a key
    /// rotation); answers whether anything changed. A set that is empty or holds a key that
    /// is not one is refused whole.
    pub fn trust_exactly(
        &self,
        public_keys: &[String],
    ) -> Result<bool, genesis_protocol::jwt::KeyError> {
        self.verifier.trust_exactly(public_keys)
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

fn unix_now_or_zero() -> u64 {
    unix_now()
}

async fn command<R: ContainerRuntime>(
    State(svc): State<Arc<CommandService<R>>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A quota per source before anything else: a flood costs a map lookup per request.
    if let Some(source) = svc.source(peer.map(|p| (p.0).0.ip()), &headers)
        && !svc.limiter.admit(source)
    {
        svc.refusals.count(RefusalReason::RateLimited);
        svc.verifier.count_refusal(RefusalReason::RateLimited);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "1")],
            Json(json!({"refused": RefusalReason::RateLimited})),
        )
            .into_response();
    }
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
    let now = unix_now_or_zero();
    let claims = match svc.verifier.verify(bearer(&headers), action, &body, now) {
        Ok(c) => c,
        Err(refusal) => {
            tracing::warn!(%action, reason = ?refusal.reason, jti = ?refusal.jti, "command refused");
            let status = StatusCode::from_u16(refusal.reason.http_status())
                .unwrap_or(StatusCode::UNAUTHORIZED);
            let body = json!({"refused": refusal.reason, "action": action});
            svc.refusals.push(refusal);
            return (status, Json(body)).into_response();
        }
    };
    // The id is on disk before the command runs: after a restart it is still spent.
    if let Some(used) = &svc.used
        && let Err(e) = used.record(&claims.jti, claims.exp, now)
    {
        tracing::error!(error = %e, "cannot record the command's id; not running it");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "state_unwritable", "message": "the sidecar cannot record the command's id"})),
        )
            .into_response();
    }
    tracing::info!(%action, "command accepted");
    match svc.executor.run(cmd).await {
        Ok(reply) => Json(reply).into_response(),
        Err(failure) => {
            tracing::warn!(%action, code = %failure.code, message = %failure.message, "command failed");
            let status = StatusCode::from_u16(failure.code.http_status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            (status, Json(failure)).into_response()
        }
    }
}
