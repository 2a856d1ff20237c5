//! The tenant API (`/api/v1/tenant/...`): what a tenant's own scripts call with a
//! workspace's API token (`Authorization: Bearer gt_…`, made on the dashboard). A token
//! reaches its own workspace only; any other id answers 404, exactly as a missing one.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use genesis_store::accounts::{Member, TenantToken};
use serde::Serialize;

use super::doc;
use crate::app::tenant_access::{self, TenantCaller};
use crate::{AppState, Problem};

/// A workspace as its tenant's scripts see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantWorkspace {
    /// Its id.
    pub id: String,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Where its data is stored (a region code).
    pub region: String,
    /// Its status code.
    pub status: String,
}

/// A list of a workspace's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    /// The members.
    pub items: Vec<Member>,
    /// Always null: a workspace's members fit one page.
    pub next: Option<String>,
}

/// A list of a workspace's API tokens (never the tokens themselves).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// The tokens.
    pub items: Vec<TenantToken>,
    /// Always null: a workspace's tokens fit one page.
    pub next: Option<String>,
}

/// The workspace a token belongs to.
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 200, description = "The workspace.", body = TenantWorkspace),
        doc::NotFound,
    )
)]
pub async fn workspace(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<TenantWorkspace>, Problem> {
    let (access, _) = tenant_access::access(&state, &caller, &id).await?;
    let w = access.workspace;
    Ok(Json(TenantWorkspace {
        id: w.id.to_string(),
        slug: w.slug.as_str().to_owned(),
        name: w.name,
        region: w.region.code().to_owned(),
        status: w.status.code().to_owned(),
    }))
}

/// The workspace's members.
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/members",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 200, description = "Its members.", body = MemberList),
        doc::NotFound,
    )
)]
pub async fn members(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<MemberList>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let (items, _) = tenant_access::members(db, &access).await?;
    Ok(Json(MemberList { items, next: None }))
}

/// The workspace's API tokens: owners only, so a token cannot list its siblings (403).
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/tokens",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 200, description = "Its tokens, without their secrets.", body = TokenList),
        doc::Forbidden,
        doc::NotFound,
    )
)]
pub async fn tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<TokenList>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let items = tenant_access::tokens(db, &access).await?;
    Ok(Json(TokenList { items, next: None }))
}

/// A workspace's tracking domains, and the name they must point at.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackingDomainList {
    /// The domains, by host.
    pub items: Vec<TrackingDomainView>,
    /// Where each must point with a CNAME (null before the engine exists).
    pub cname_target: Option<String>,
    /// Always null: a workspace has at most ten.
    pub next: Option<String>,
}

/// One tracking domain (spec 61.4).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackingDomainView {
    /// The host name.
    pub host: String,
    /// Where it stands.
    pub state: genesis_core::tracking::TrackingState,
    /// What DNS answered instead (when it points elsewhere).
    pub found: Option<String>,
    /// Why it is not served yet, in words.
    pub detail: Option<String>,
    /// Added.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// DNS last checked.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// First served.
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The workspace's tracking domains (adding and removing them is on the dashboard).
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/tracking-domains",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 200, description = "Its tracking domains.", body = TrackingDomainList),
        doc::NotFound,
    )
)]
pub async fn tracking_domains(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<TrackingDomainList>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let (domains, cname_target) = crate::app::tracking_domains::list(&state, db, &access).await?;
    Ok(Json(TrackingDomainList {
        items: domains
            .into_iter()
            .map(|d| TrackingDomainView {
                host: d.host,
                state: d.state,
                found: d.found,
                detail: d.detail,
                created_at: d.created_at,
                checked_at: d.checked_at,
                activated_at: d.activated_at,
            })
            .collect(),
        cname_target,
        next: None,
    }))
}
