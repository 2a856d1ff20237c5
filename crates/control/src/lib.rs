//! The control plane's HTTP side: the `/api/v1` REST API, health and readiness probes, and
//! Prometheus metrics. Handlers parse, authorize, and call one store method; nothing else.

pub mod api;
pub mod app;
pub mod attest;
pub mod audit_budget;
pub mod auth;
pub mod clock;
pub mod cloud_budget;
pub mod command_journal;
pub mod control_plane;
pub mod credentials;
pub mod dashboard;
pub mod extract;
pub mod front_door;
pub mod god;
pub mod health;
pub mod heartbeats;
pub mod inbound;
pub mod index;
pub mod mail;
pub mod outbound;
pub mod payment_signature;
pub mod problem;
pub mod providers;
pub mod proxy_door;
pub mod second_factor;
pub mod sidecar;
pub mod sign_in_guard;
pub mod source_quota;
pub mod state;
pub mod supervise;
pub mod telemetry;
pub mod workers;

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request},
    middleware::{self, Next},
    response::Response,
    routing::get,
};

pub use control_plane::{ControlPlane, ControlPlaneBuilder, FleetSettings};
pub use problem::Problem;
pub use state::AppState;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (api, paths) = utoipa_axum::router::OpenApiRouter::new()
        .nest(
            "/api/v1",
            api::routes()
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    auth::require_api_token,
                ))
                .merge(
                    api::workspace_token_routes().route_layer(middleware::from_fn_with_state(
                        state.clone(),
                        auth::require_api_or_workspace_token,
                    )),
                )
                .merge(
                    api::tenant_routes().route_layer(middleware::from_fn_with_state(
                        state.clone(),
                        dashboard::session::require_token,
                    )),
                ),
        )
        .split_for_parts();
    let openapi = api::doc::finish(paths);
    Router::new()
        .route("/", get(index::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/api/v1/sidecar/handshake",
            axum::routing::post(sidecar::handshake),
        )
        .route(
            "/api/v1/sidecar/heartbeat",
            axum::routing::post(sidecar::heartbeat),
        )
        .route(
            "/api/v1/sidecar/reattest",
            axum::routing::post(sidecar::reattest),
        )
        .route(
            "/api/v1/sidecar/metrics",
            axum::routing::post(sidecar::metrics_report),
        )
        .route(
            "/api/v1/managed/{service}/{*path}",
            axum::routing::any(api::managed::call),
        )
        .route("/exports/{id}/download", get(api::exports::download))
        .route(
            "/api/v1/payments/webhook",
            axum::routing::post(api::payments::webhook).layer(
                axum::extract::DefaultBodyLimit::max(api::payments::MAX_WEBHOOK_BYTES),
            ),
        )
        .merge(api)
        .merge(
            utoipa_swagger_ui::SwaggerUi::new(api::doc::DOCS_PATH)
                .url(api::doc::OPENAPI_PATH, openapi),
        )
        .merge(god::routes(state.clone()))
        .merge(dashboard::routes(state.clone()))
        .fallback(|| async { Problem::not_found("route") })
        .layer(middleware::from_fn(front_door::problems_only))
        .layer(middleware::from_fn(front_door::security_headers))
        .layer(middleware::from_fn(record_http_metrics))
        .with_state(state)
}

/// Counts requests and their latency by route template (never by raw path: ids in paths
/// would explode the label space).
async fn record_http_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("genesis_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("genesis_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// How often buffered heartbeats are written.
pub const HEARTBEAT_FLUSH: std::time::Duration = std::time::Duration::from_millis(250);

/// Serves the HTTP surface on `listener` until `shutdown` resolves, then drains in-flight
/// requests and writes the heartbeats still buffered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sink = state.heartbeats.clone();
    let flusher = tokio::spawn(async move { sink.run(HEARTBEAT_FLUSH, stopped).await });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = flusher.await;
    result
}
