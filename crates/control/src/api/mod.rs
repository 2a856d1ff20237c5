//! `/api/v1` routes.

pub mod body;
pub mod droplet_ops;
pub mod fleet;
pub mod hibernation;
pub mod ignition;
pub mod leads;
pub mod rollouts;
pub mod workspaces;

use axum::{Router, routing::get};

use crate::AppState;

/// The versioned API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route("/workspaces/{id}", get(workspaces::get))
        .route("/fleet/health", get(fleet::health))
        .route("/fleet/reconcilers", get(fleet::reconcilers))
        .route(
            "/fleet/reconcilers/{name}/wake",
            axum::routing::post(fleet::wake_reconciler),
        )
        .route("/droplets/{id}", get(fleet::droplet))
        .route(
            "/droplets/{id}/{action}",
            axum::routing::post(droplet_ops::run_op),
        )
        .route("/alerts", get(fleet::alerts))
        .route("/fleet/hibernation", get(hibernation::savings))
        .route("/fleet/standby", get(hibernation::standby))
        .route(
            "/workspaces/{id}/wake",
            axum::routing::post(hibernation::wake_workspace),
        )
        .route(
            "/workspaces/{id}/logins",
            axum::routing::post(hibernation::login),
        )
        .route(
            "/workspaces/{id}/hibernation",
            axum::routing::put(hibernation::hold),
        )
        .route(
            "/workspaces/{id}/schedule",
            axum::routing::put(hibernation::schedule),
        )
        .route(
            "/workspaces/{id}/ignite",
            axum::routing::post(ignition::ignite),
        )
        .route("/rollouts", get(rollouts::list).post(rollouts::start))
        .route("/rollouts/{id}", get(rollouts::get))
        .route("/rollouts/{id}/pause", axum::routing::post(rollouts::pause))
        .route(
            "/rollouts/{id}/resume",
            axum::routing::post(rollouts::resume),
        )
        .route("/rollouts/{id}/abort", axum::routing::post(rollouts::abort))
}

/// Routes a workspace's own token may call as well as the operator's: the calls the Golden
/// Template makes back from the tenant's n8n.
pub fn workspace_token_routes() -> Router<AppState> {
    Router::new().route(
        "/workspaces/{id}/leads",
        get(leads::page).post(leads::import),
    )
}
