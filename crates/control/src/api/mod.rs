//! `/api/v1` routes, each registered with its OpenAPI description (see [`doc`]).

pub mod billing;
pub mod body;
pub mod credentials;
pub mod deletion;
pub mod doc;
pub mod droplet_ops;
pub mod exports;
pub mod fleet;
pub mod hibernation;
pub mod ignition;
pub mod leads;
pub mod limits;
pub mod managed;
pub mod payments;
pub mod rollouts;
pub mod tenant;
pub mod wallet;
pub mod webhooks;
pub mod workspaces;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The versioned API that only the operator's token may call.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(workspaces::get))
        .routes(routes!(deletion::start, deletion::get, deletion::cancel))
        .routes(routes!(exports::start))
        .routes(routes!(exports::get))
        .routes(routes!(fleet::health))
        .routes(routes!(fleet::reconcilers))
        .routes(routes!(fleet::wake_reconciler))
        .routes(routes!(fleet::droplet))
        .routes(routes!(droplet_ops::run_op))
        .routes(routes!(droplet_ops::power))
        .routes(routes!(droplet_ops::alert))
        .routes(routes!(fleet::alerts))
        .routes(routes!(hibernation::savings))
        .routes(routes!(hibernation::standby))
        .routes(routes!(hibernation::wake_workspace))
        .routes(routes!(hibernation::login))
        .routes(routes!(hibernation::hold))
        .routes(routes!(hibernation::schedule))
        .routes(routes!(ignition::ignite))
        .routes(routes!(rollouts::list, rollouts::start))
        .routes(routes!(rollouts::get))
        .routes(routes!(rollouts::control))
        .routes(routes!(wallet::operator_wallet))
        .routes(routes!(wallet::operator_credit))
        .routes(routes!(limits::list))
        .routes(routes!(limits::set, limits::reset))
        .routes(routes!(credentials::update))
        .routes(routes!(billing::margins))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::remove))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay))
        .routes(routes!(webhooks::rotate))
        .routes(routes!(webhooks::reveal))
}

/// Routes a workspace's own token may call as well as the operator's: the calls the Golden
/// Template makes back from the tenant's n8n.
pub fn workspace_token_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leads::page, leads::import))
        .routes(routes!(leads::reply))
}

/// The tenant API: a workspace's own API token (`gt_…`) only.
pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tenant::workspace))
        .routes(routes!(tenant::members))
        .routes(routes!(tenant::tokens))
        .routes(routes!(tenant::tracking_domains))
        .routes(routes!(exports::tenant_start))
        .routes(routes!(exports::tenant_get))
        .routes(routes!(wallet::tenant_wallet))
        .routes(routes!(wallet::tenant_transactions))
        .routes(routes!(webhooks::tenant_create, webhooks::tenant_list))
        .routes(routes!(webhooks::tenant_remove))
        .routes(routes!(webhooks::tenant_deliveries))
        .routes(routes!(webhooks::tenant_replay))
        .routes(routes!(webhooks::tenant_rotate))
        .routes(routes!(webhooks::tenant_reveal))
}

/// The API's OpenAPI document, as `GET /api/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, paths) = OpenApiRouter::<AppState>::new()
        .nest(
            "/api/v1",
            routes()
                .merge(workspace_token_routes())
                .merge(tenant_routes()),
        )
        .split_for_parts();
    doc::finish(paths)
}
