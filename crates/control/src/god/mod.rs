//! God Mode (spec 44): the operators' dashboard, served by the control plane as plain
//! server-rendered pages under `/god`, behind operator sign-in ([`session`]).
//!
//! Routes:
//! - `GET|POST /god/sign-in` and `GET /god/assets/{name}` (style sheet, scripts): the only
//!   God Mode routes open without a session;
//! - `POST /god/sign-out`;
//! - `GET /god`: the fleet overview ([`pages`]);
//! - `GET /god/heatmap`, `GET /god/droplets/{id}`: the health heatmap and a droplet's page
//!   ([`fleet_pages`]);
//! - `GET /god/regions`: each region's health ([`region_pages`]);
//! - `GET /god/metrics`: the metric aggregator's charts ([`metrics_pages`]);
//! - `GET /god/alerts`: the watchdog's open detections, manual reviews and heals
//!   ([`watch_pages`]);
//! - `GET|POST /god/rollouts`, `GET /god/rollouts/{id}`, `POST /god/rollouts/{id}/{action}`,
//!   and the live `GET /god/api/rollouts/{id}/events` stream ([`rollout_pages`]);
//! - `GET /god/search`, `GET /god/tenants/{id or slug}`: finding a tenant, and everything
//!   about it on one page ([`tenant_pages`]);
//! - `POST /god/droplets/{id}/power/{reboot|destroy}` and
//!   `POST /god/droplets/{id}/alerts/{kind}/{acknowledge|resolve}`: an operator's hands on a
//!   droplet and its alerts ([`droplet_ops_pages`], [`watch_pages`]);
//! - `GET /god/audit`: the audit-log viewer ([`audit_pages`]);
//! - `GET /god/reconcilers`: what each background reconciler last did, and a button to
//!   run one now ([`reconciler_pages`]);
//! - `GET /god/deliveries`, `POST /god/deliveries/{mail|webhooks}/{shard}/{id}/replay`:
//!   e-mail and webhook dead letters, and sending one again ([`delivery_pages`]);
//! - `GET /god/security`: where each secret rotation stands ([`security_pages`]);
//! - `GET /god/dr`: backup coverage and snapshot cost ([`dr_pages`]);
//! - `GET /god/support`, `POST /god/support/grants`, `POST
//!   /god/support/grants/{id}/{approve|revoke}`: support grants ([`support_pages`]);
//!
//! Support staff (spec 63.3) reach the fleet's overview pages, search and their grants;
//! a tenant's and a droplet's pages and actions under a grant ([`crate::app::support_access`]);
//! and nothing that acts on the whole fleet or reads across tenants
//! ([`session::require_fleet_role`]).
//! - `GET /god/api/...`: the same data as JSON, for the pages' live parts (401 without a
//!   session, never a redirect).

pub mod audit_pages;
pub mod delivery_pages;
pub mod dr_pages;
pub mod droplet_ops_pages;
pub mod financial_pages;
pub mod fleet_pages;
pub mod layout;
pub mod metrics_pages;
pub mod pages;
pub mod reconciler_pages;
pub mod region_pages;
pub mod rollout_pages;
pub mod security_pages;
pub mod session;
pub mod support_pages;
pub mod tenant_pages;
pub mod watch_pages;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::AppState;

pub use session::GodSettings;

/// The largest sign-in form read (bytes).
pub const SIGN_IN_BODY_LIMIT: usize = 16 * 1024;

/// God Mode's routes, ready to merge into the control plane's router.
pub fn routes(state: AppState) -> Router<AppState> {
    // What acts on the whole fleet, or reads across tenants: managers and admins only.
    let fleet_only = Router::new()
        .route("/god/reconcilers", get(reconciler_pages::list))
        .route("/god/reconcilers/{name}/wake", post(reconciler_pages::wake))
        .route(delivery_pages::PATH, get(delivery_pages::list))
        .route(security_pages::PATH, get(security_pages::security))
        .route(dr_pages::PATH, get(dr_pages::dr))
        .route(
            "/god/deliveries/{channel}/{shard}/{id}/replay",
            post(delivery_pages::replay),
        )
        .route(
            "/god/rollouts",
            get(rollout_pages::list).post(rollout_pages::start),
        )
        .route("/god/rollouts/{id}", get(rollout_pages::detail))
        .route("/god/rollouts/{id}/{action}", post(rollout_pages::control))
        .route("/god/api/rollouts/{id}", get(rollout_pages::json))
        .route("/god/api/rollouts/{id}/events", get(rollout_pages::events))
        .route(
            "/god/droplets/{id}/alerts/{kind}/{action}",
            post(watch_pages::alert_action),
        )
        .route("/god/audit", get(audit_pages::audit))
        .route("/god/financial", get(financial_pages::financial))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_fleet_role,
        ));
    let guarded = Router::new()
        .route("/god", get(pages::overview))
        .route("/god/heatmap", get(fleet_pages::heatmap))
        .route("/god/alerts", get(watch_pages::alerts))
        .route("/god/regions", get(region_pages::regions))
        .route("/god/metrics", get(metrics_pages::metrics))
        .route("/god/api/metrics", get(metrics_pages::json))
        .route("/god/api/regions", get(region_pages::json))
        .route("/god/droplets/{id}", get(fleet_pages::droplet))
        .route(
            "/god/droplets/{id}/ops/{op}",
            post(droplet_ops_pages::run_op),
        )
        .route(
            "/god/droplets/{id}/power/{op}",
            post(droplet_ops_pages::power),
        )
        .route(
            "/god/droplets/{id}/ssh-key",
            post(droplet_ops_pages::ssh_key),
        )
        .route("/god/search", get(tenant_pages::search_page))
        .route("/god/tenants/{id}", get(tenant_pages::tenant_page))
        .route(support_pages::PATH, get(support_pages::list))
        .route("/god/support/grants", post(support_pages::request))
        .route(
            "/god/support/grants/{id}/approve",
            post(support_pages::approve),
        )
        .route(
            "/god/support/grants/{id}/revoke",
            post(support_pages::revoke),
        )
        .route("/god/sign-out", post(pages::sign_out))
        .route("/god/api/fleet", get(pages::overview_json))
        .merge(fleet_only)
        // Unknown God Mode paths too: without a session, nothing says what exists.
        .route("/god/{*rest}", get(pages::not_found))
        .route_layer(middleware::from_fn_with_state(
            state,
            session::require_operator,
        ));
    // Pages are compressed when the browser accepts gzip: the heatmap of a 15,000-droplet
    // fleet is ~1.3 MB of near-identical cells, a few dozen KB gzipped (BENCHMARKS.md). The
    // live event stream is left alone (tower-http never compresses `text/event-stream`).
    Router::new()
        .route(
            session::SIGN_IN,
            get(pages::sign_in_page).post(pages::sign_in).layer(
                // A sign-in form is a few hundred bytes; nothing bigger is read.
                axum::extract::DefaultBodyLimit::max(SIGN_IN_BODY_LIMIT),
            ),
        )
        .route("/god/assets/{name}", get(layout::asset))
        .merge(guarded)
        .layer(tower_http::compression::CompressionLayer::new())
}
