//! The tenants' dashboard (spec 60, 62.2): server-rendered pages under `/app`, behind a
//! tenant's own sign-in. (The tenant API, `/api/v1/tenant`, behind a workspace's API token,
//! is in [`crate::api::tenant`], with the rest of the documented API.)
//!
//! Routes open without a session: `GET|POST /app/sign-up`, `GET|POST /app/verify`,
//! `GET|POST /app/sign-in`. Everything else under `/app` needs a session
//! ([`session::require_account`]) and every route naming a workspace checks membership
//! first ([`crate::app::tenant_access::access`]): a workspace the caller is no member of
//! is a 404, exactly as one that does not exist.

pub mod audit_pages;
pub mod connect_pages;
pub mod deletion_pages;
pub mod export_pages;
pub mod ignition_pages;
pub mod import_pages;
pub mod notification_pages;
pub mod pages;
pub mod session;
pub mod setup_pages;
pub mod support_pages;
pub mod tracking_pages;
pub mod wallet_pages;
pub mod webhook_pages;
pub mod workspace_pages;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::AppState;

/// Where the dashboard lives.
pub const ROOT: &str = "/app";

/// The dashboard's routes, ready to merge into the control plane's router.
pub fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route(ROOT, get(workspace_pages::home))
        .route("/app/workspaces", post(workspace_pages::create))
        .route("/app/workspaces/{id}", get(workspace_pages::workspace))
        .route("/app/workspaces/{id}/setup", get(setup_pages::setup))
        .route("/app/workspaces/{id}/leads", get(workspace_pages::leads))
        .route(
            "/app/workspaces/{id}/leads/import",
            post(import_pages::upload).layer(axum::extract::DefaultBodyLimit::max(
                import_pages::UPLOAD_LIMIT,
            )),
        )
        .route(
            "/app/workspaces/{id}/leads/imports/{import}",
            get(import_pages::progress),
        )
        .route("/app/workspaces/{id}/setup/brand", post(setup_pages::brand))
        .route(
            "/app/workspaces/{id}/setup/booking",
            post(setup_pages::booking),
        )
        .route(
            "/app/workspaces/{id}/setup/email",
            get(connect_pages::email).post(connect_pages::connect),
        )
        .route(
            "/app/workspaces/{id}/setup/ai-keys",
            get(connect_pages::ai_keys).post(connect_pages::save_ai_keys),
        )
        .route(
            "/app/workspaces/{id}/setup/dns",
            get(connect_pages::dns_stage).post(connect_pages::dns_post),
        )
        .route(
            "/app/workspaces/{id}/setup/ignition",
            get(ignition_pages::engine).post(ignition_pages::start),
        )
        .route(
            "/app/workspaces/{id}/campaigns/{key}",
            post(workspace_pages::campaign),
        )
        .route(
            "/app/workspaces/{id}/tracking-domains",
            get(tracking_pages::list).post(tracking_pages::add),
        )
        .route(
            "/app/workspaces/{id}/tracking-domains/{host}/{action}",
            post(tracking_pages::host_action),
        )
        .route(
            "/app/workspaces/{id}/webhooks",
            get(webhook_pages::list).post(webhook_pages::add),
        )
        .route(
            "/app/workspaces/{id}/webhooks/{endpoint}/remove",
            post(webhook_pages::remove),
        )
        .route(
            "/app/workspaces/{id}/webhooks/{endpoint}/{action}",
            post(webhook_pages::secret),
        )
        .route(
            "/app/workspaces/{id}/webhooks/deliveries/{delivery}/replay",
            post(webhook_pages::replay),
        )
        .route("/app/workspaces/{id}/wallet", get(wallet_pages::wallet))
        .route("/app/workspaces/{id}/wallet/card", post(wallet_pages::card))
        .route(
            "/app/workspaces/{id}/wallet/top-up",
            post(wallet_pages::top_up),
        )
        .route(
            "/app/workspaces/{id}/wallet/auto-top-up",
            post(wallet_pages::auto_top_up),
        )
        .route(
            "/app/workspaces/{id}/members",
            post(workspace_pages::invite),
        )
        .route(
            "/app/workspaces/{id}/deletion",
            post(deletion_pages::delete),
        )
        .route(
            "/app/workspaces/{id}/deletion/cancel",
            post(deletion_pages::cancel),
        )
        .route("/app/workspaces/{id}/exports", post(export_pages::start))
        .route("/app/workspaces/{id}/support", get(support_pages::show))
        .route("/app/workspaces/{id}/audit", get(audit_pages::audit_log))
        .route(
            "/app/workspaces/{id}/support/{grant}/revoke",
            post(support_pages::revoke),
        )
        .route(
            "/app/workspaces/{id}/exports/{export}",
            get(export_pages::show),
        )
        .route(
            "/app/workspaces/{id}/tokens",
            post(workspace_pages::token_create),
        )
        .route(
            "/app/workspaces/{id}/tokens/{token}/revoke",
            post(workspace_pages::token_revoke),
        )
        .route(
            "/app/invitations",
            get(workspace_pages::invitation).post(workspace_pages::accept),
        )
        .route("/app/sign-out", post(pages::sign_out))
        .route("/app/{*rest}", get(pages::not_found))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_account,
        ));
    // Google sends the browser back here from its own site: see `bounce_cross_site`.
    let callback = Router::new()
        .route(
            crate::app::gmail::CALLBACK_PATH,
            get(connect_pages::google_callback),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_account,
        ))
        .route_layer(middleware::from_fn(session::bounce_cross_site));
    // Outside the compression layer: a compressed event stream would sit in the encoder's
    // buffer instead of reaching the page.
    let live = Router::new()
        .route(
            "/app/workspaces/{id}/setup/ignition/events",
            get(ignition_pages::events),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_account,
        ));
    Router::new()
        .route(
            "/app/sign-up",
            get(pages::sign_up_page).post(pages::sign_up).layer(
                axum::extract::DefaultBodyLimit::max(crate::god::SIGN_IN_BODY_LIMIT),
            ),
        )
        .route(
            "/app/sign-in",
            get(pages::sign_in_page).post(pages::sign_in).layer(
                axum::extract::DefaultBodyLimit::max(crate::god::SIGN_IN_BODY_LIMIT),
            ),
        )
        .route("/app/verify", get(pages::verify_page).post(pages::verify))
        .route(
            crate::app::notifications::UNSUBSCRIBE_PATH,
            get(notification_pages::preview).post(notification_pages::confirm),
        )
        .merge(callback)
        .merge(guarded)
        .layer(tower_http::compression::CompressionLayer::new())
        .merge(live)
}
