//! Wallet routes (spec 58.1): a tenant reads its wallet and transactions
//! (`/tenant/workspaces/{id}/wallet…`, with a workspace API token or a session); an operator
//! reads any wallet and credits one by hand (`/workspaces/{id}/wallet…`): a bank transfer
//! received, a goodwill refund. Top-ups by card are on the tenant's dashboard.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use genesis_core::money::{Direction, Millicents, TransferKind};
use genesis_store::ledger::TransferOutcome;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::doc;
use crate::app::tenant_access::{self, TenantCaller};
use crate::app::tenant_wallet::{self, WalletLine, WalletView};
use crate::extract::{ApiJson, ApiQuery};
use crate::{AppState, Problem};

/// A page of transactions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletLines {
    /// The lines.
    pub items: Vec<WalletLine>,
    /// Pass as `before` for the next page; null on the last.
    pub next: Option<i64>,
}

/// Which page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinesQuery {
    /// Lines before this ledger position.
    pub before: Option<i64>,
    /// At most this many (1 to 200; 50 when absent).
    pub limit: Option<i64>,
}

/// The workspace's wallet.
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/wallet",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id")),
    responses(
        (status = 200, description = "Its wallet.", body = WalletView),
        doc::NotFound,
    )
)]
pub async fn tenant_wallet(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    Ok(Json(tenant_wallet::view(db, &access).await?))
}

/// The money that moved through the workspace's wallet, newest first.
#[utoipa::path(
    get,
    path = "/tenant/workspaces/{id}/wallet/transactions",
    tag = "tenant",
    params(("id" = String, Path, description = "The workspace's id"), LinesQuery),
    responses(
        (status = 200, description = "A page of transactions.", body = WalletLines),
        doc::NotFound,
    )
)]
pub async fn tenant_transactions(
    State(state): State<AppState>,
    Extension(caller): Extension<TenantCaller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LinesQuery>,
) -> Result<Json<WalletLines>, Problem> {
    let (access, db) = tenant_access::access(&state, &caller, &id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let items = tenant_wallet::lines(db, &access, q.before, limit).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|l| l.seq))
        .flatten();
    Ok(Json(WalletLines { items, next }))
}

/// A credit an operator makes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredit {
    /// Chosen by the caller: the same id with the same fields is the same credit (200); with
    /// other fields it is refused (409).
    pub id: Uuid,
    /// DEPOSIT or REFUND.
    pub kind: String,
    /// In millicents (thousandths of a cent), above zero.
    pub amount_millicents: i64,
    /// What it is for (a bank transfer's reference, a ticket), up to 200 characters.
    pub reference: Option<String>,
}

/// A credit made, or found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditDone {
    /// Its id.
    pub id: Uuid,
    /// Its ledger position.
    pub seq: i64,
    /// The wallet afterwards.
    pub wallet: WalletView,
}

/// A workspace's wallet, as its tenant sees it.
#[utoipa::path(
    get,
    path = "/workspaces/{id}/wallet",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    responses(
        (status = 200, description = "Its wallet.", body = WalletView),
        doc::NotFound,
    )
)]
pub async fn operator_wallet(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, Problem> {
    let (access, db) = operator_access(&state, &id).await?;
    Ok(Json(tenant_wallet::view(db, &access).await?))
}

/// Credits a wallet by hand (a deposit received another way, or a refund); audited.
#[utoipa::path(
    post,
    path = "/workspaces/{id}/wallet/credits",
    tag = "workspaces",
    params(("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug")),
    request_body = NewCredit,
    responses(
        (status = 201, description = "Credited.", body = CreditDone),
        (status = 200, description = "This credit was made before; nothing changed.", body = CreditDone),
        doc::NotFound,
        doc::Conflict,
        doc::Unavailable,
    )
)]
pub async fn operator_credit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewCredit>,
) -> Result<impl IntoResponse, Problem> {
    let (access, db) = operator_access(&state, &id).await?;
    let kind = TransferKind::from_code(&body.kind)
        .filter(|k| k.direction() == Direction::Credit && *k != TransferKind::AutoTopup)
        .ok_or_else(|| Problem::invalid_field("kind", "DEPOSIT or REFUND"))?;
    if body.amount_millicents <= 0 {
        return Err(Problem::invalid_field(
            "amount_millicents",
            "must be above zero",
        ));
    }
    if body
        .reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(Problem::invalid_field(
            "reference",
            "at most 200 characters",
        ));
    }
    let wallets = state
        .wallets
        .as_deref()
        .ok_or_else(|| Problem::unavailable("the wallet is not enabled on this platform"))?;
    let outcome = wallets
        .credit(
            access.workspace.id,
            body.id,
            kind,
            Millicents(body.amount_millicents),
            body.reference.clone(),
            &access.actor,
        )
        .await?;
    let status = match outcome {
        TransferOutcome::Created(_) => StatusCode::CREATED,
        TransferOutcome::Exists(_) => StatusCode::OK,
    };
    let t = outcome.transfer();
    let wallet = tenant_wallet::view(db, &access).await?;
    Ok((
        status,
        Json(CreditDone {
            id: t.id,
            seq: t.seq,
            wallet,
        }),
    ))
}

/// An operator's access to workspace `raw` (an id or a slug), as an owner would have it.
async fn operator_access<'s>(
    state: &'s AppState,
    raw: &str,
) -> Result<(tenant_access::Access, &'s genesis_store::Database), Problem> {
    let id = crate::app::workspaces::resolve(state, raw).await?;
    let (workspace, db) = state.stores.workspace_find(id).await?;
    Ok((
        tenant_access::Access {
            workspace,
            role: genesis_store::accounts::Role::Owner,
            actor: crate::auth::API_ACTOR.to_owned(),
            account: None,
        },
        db,
    ))
}
