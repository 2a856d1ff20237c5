//! What a tenant's dashboard shows of their workspace: their engine's state in their
//! words, their leads (paged, filtered, searched), and recent activity from the audit log.
//! Every function takes an [`Access`] already checked by [`super::tenant_access::access`].

use genesis_core::{DropletState, LeadStatus};
use genesis_store::{AuditEntry, Caller, Database, LeadCursor, LeadPage, LeadStore};

use super::tenant_access::Access;
use crate::{AppState, Problem};

/// Leads on one dashboard page.
pub const LEADS_PER_PAGE: i64 = 50;
/// Audit events the activity list shows.
pub const ACTIVITY_SHOWN: i64 = 20;

/// The workspace's engine (its live droplet), if it has one.
pub(crate) async fn live_droplet(
    db: &Database,
    access: &Access,
) -> Result<Option<genesis_store::Droplet>, Problem> {
    Ok(db
        .droplet_live_for_workspace(access.workspace.id)
        .await?
        .into_iter()
        .next())
}

/// The state of the workspace's engine (its live droplet), if it has one.
pub async fn engine(db: &Database, access: &Access) -> Result<Option<DropletState>, Problem> {
    Ok(live_droplet(db, access).await?.map(|d| d.state))
}

/// The newest events of the workspace's audit trail.
pub async fn activity(db: &Database, access: &Access) -> Result<Vec<AuditEntry>, Problem> {
    Ok(db
        .audit_list(Some(access.workspace.id), None, ACTIVITY_SHOWN)
        .await?)
}

/// One page of the workspace's leads, newest first: `status` (a code, or empty for every
/// status), `q` (part of an address, name or company), and where the page starts.
pub async fn leads(
    state: &AppState,
    db: &Database,
    access: &Access,
    status: Option<&str>,
    q: Option<&str>,
    cursor: Option<&str>,
) -> Result<LeadPage, Problem> {
    let status = status
        .filter(|s| !s.is_empty())
        .map(|s| LeadStatus::parse(s).map_err(|e| Problem::invalid_field("status", e)))
        .transpose()?;
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(str::parse::<LeadCursor>)
        .transpose()
        .map_err(|e| Problem::invalid_field("cursor", e))?;
    if q.is_some_and(|q| q.chars().count() > 100) {
        return Err(Problem::invalid_field("q", "use at most 100 characters"));
    }
    let ws = access.workspace.id;
    let store = db
        .leads_open(&state.router, &Caller::Tenant(ws), &ws.to_string())
        .await?;
    let LeadStore::Sovereign(mut session) = store else {
        return Err(Problem::conflict(
            "id",
            "this workspace's leads live on the legacy path, which the dashboard does not show",
        ));
    };
    let page = session
        .lead_search(status, q, cursor, LEADS_PER_PAGE)
        .await?;
    session.commit().await?;
    Ok(page)
}
