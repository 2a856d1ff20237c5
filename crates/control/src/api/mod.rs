//! `/api/v1` routes.

pub mod body;
pub mod fleet;
pub mod ignition;
pub mod leads;
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
        .route("/droplets/{id}", get(fleet::droplet))
        .route("/alerts", get(fleet::alerts))
        .route(
            "/workspaces/{id}/ignite",
            axum::routing::post(ignition::ignite),
        )
        .route(
            "/workspaces/{id}/leads",
            get(leads::page).post(leads::import),
        )
}
