//! A tenant's deletion as operators and tenants ask for it (spec 64.1–64.2): who may start
//! which trigger, and what day 0 sets going. The rules of the request itself (the status
//! machine, the grace period, the notice, the paused campaigns) are the store's
//! ([`genesis_store::deletions`]), in one transaction.
//!
//! After the request commits, the hibernation reconciler is rung: it puts a tenant being
//! deleted to sleep at its next pass, without the usual notice.

use genesis_core::WorkspaceId;
use genesis_core::deletion::DeletionTrigger;
use genesis_store::{Deletion, Workspace};
use serde::Deserialize;

use crate::{AppState, Problem};

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// An operator (the API's token, God Mode, the CLI): any trigger.
    Operator,
    /// The workspace's owner, from the dashboard: only their own request.
    Owner,
}

/// `POST /api/v1/workspaces/{id}/deletion` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionRequest {
    /// Why: `user` (7 days), `cancelled` (30 days), `non-payment` (7 days), `tos` or
    /// `fraud` (immediate, irreversible, with a reason).
    pub trigger: DeletionTrigger,
    /// Required for `tos` and `fraud`; kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Starts the deletion of `id` (day 0).
pub async fn request(
    state: &AppState,
    id: WorkspaceId,
    req: &DeletionRequest,
    requester: Requester,
    actor: &str,
) -> Result<Deletion, Problem> {
    if requester == Requester::Owner && req.trigger != DeletionTrigger::User {
        return Err(Problem::forbidden(
            "only an operator can start a deletion for this reason",
        ));
    }
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 2_000)
    {
        return Err(Problem::invalid_field(
            "reason",
            "at most 2,000 characters, please",
        ));
    }
    let (_, db) = state.stores.workspace_find(id).await?;
    let deletion = db
        .deletion_request(
            id,
            req.trigger,
            req.reason.as_deref(),
            actor,
            chrono::Utc::now(),
        )
        .await?;
    // A hint: the hibernation reconciler's next pass puts it to sleep anyway.
    super::hibernation::ring(state, id).await;
    Ok(deletion)
}

/// The open deletion of `id`; 404 when it is not being deleted.
pub async fn get(state: &AppState, id: WorkspaceId) -> Result<Deletion, Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    db.deletion_open(id)
        .await?
        .ok_or_else(|| Problem::not_found("deletion"))
}

/// Calls off the deletion of `id`: the workspace returns to the status it had, and the
/// campaigns day 0 paused run again.
pub async fn cancel(state: &AppState, id: WorkspaceId, actor: &str) -> Result<Workspace, Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    Ok(db.deletion_cancel(id, actor, chrono::Utc::now()).await?)
}

/// A payment reached `ws`'s ledger: a non-payment deletion still in its grace period is
/// called off (spec 64.1: reversible "if paid"), as `actor`. Any other deletion, or one
/// whose grace period is over, is left as it is; `None` then.
pub async fn paid(
    db: &genesis_store::Database,
    ws: WorkspaceId,
    actor: &str,
) -> Result<Option<Workspace>, Problem> {
    let Some(open) = db.deletion_open(ws).await? else {
        return Ok(None);
    };
    if !open.trigger.needs_payment_to_reverse() {
        return Ok(None);
    }
    match db.deletion_cancel(ws, actor, chrono::Utc::now()).await {
        Ok(w) => Ok(Some(w)),
        Err(genesis_store::StoreError::Refused { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What an owner's dashboard shows: the deletion under way, if any.
pub async fn for_owner(
    db: &genesis_store::Database,
    access: &super::tenant_access::Access,
) -> Result<Option<Deletion>, Problem> {
    if access.owner("see the deletion").is_err()
        || access.workspace.status != genesis_core::WorkspaceStatus::PendingDeletion
    {
        return Ok(None);
    }
    Ok(db.deletion_open(access.workspace.id).await?)
}

/// "Delete this workspace" from the dashboard: an owner, who typed the workspace's short
/// name to confirm, starts a `user` deletion (7 days, reversible).
pub async fn request_as_owner(
    state: &AppState,
    access: &super::tenant_access::Access,
    typed: &str,
) -> Result<Deletion, Problem> {
    access.owner("delete the workspace")?;
    if typed.trim() != access.workspace.slug.as_str() {
        return Err(Problem::invalid_field(
            "confirm",
            format!(
                "type the workspace's short name, {}, to confirm",
                access.workspace.slug.as_str()
            ),
        ));
    }
    let req = DeletionRequest {
        trigger: DeletionTrigger::User,
        reason: None,
    };
    request(
        state,
        access.workspace.id,
        &req,
        Requester::Owner,
        &access.actor,
    )
    .await
}

/// "Call the deletion off" from the dashboard (owners).
pub async fn cancel_as_owner(
    state: &AppState,
    access: &super::tenant_access::Access,
) -> Result<Workspace, Problem> {
    access.owner("call the deletion off")?;
    cancel(state, access.workspace.id, &access.actor).await
}
