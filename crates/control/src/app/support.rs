//! What an operator needs to look after one tenant (spec 63.3's support view): finding it
//! by name, slug or id, and everything about it on one page (its droplets with their
//! heartbeats, workflows and commands, its open alerts, its audit trail).

use genesis_core::support::SupportAction;
use genesis_core::{DropletId, WorkspaceId};
use genesis_store::{AuditEntry, Database, Workspace};
use serde::Serialize;

use super::droplets::locate;
use super::fleet::{DropletDetail, droplet_detail};
use super::support_access::{Caller, authorise};
use super::workspaces::{WorkspaceDetail, detail, resolve};
use crate::{AppState, Problem};

/// The most matches a search shows.
pub const SEARCH_LIMIT: i64 = 50;

/// Audit events shown with a tenant.
const TENANT_AUDIT: i64 = 100;

/// The shortest search worth running (one letter would match most of the fleet).
const SEARCH_MIN_CHARS: usize = 2;

/// What a search found.
#[derive(Debug, Serialize)]
pub enum Found {
    /// Nothing typed, or too little.
    TooShort,
    /// A droplet id: the droplet's own page answers it.
    Droplet(uuid::Uuid),
    /// Tenants, exact matches first (at most [`SEARCH_LIMIT`]).
    Tenants(Vec<Workspace>),
}

/// Tenants whose name or slug contains `text` (any case), or whose id or slug is `text`;
/// a droplet id finds its droplet.
pub async fn search(state: &AppState, text: &str) -> Result<Found, Problem> {
    let text = text.trim();
    if text.chars().count() < SEARCH_MIN_CHARS {
        return Ok(Found::TooShort);
    }
    if let Ok(id) = DropletId::parse(text) {
        for db in state.stores.distinct() {
            if db.droplet_get(id).await.is_ok() {
                return Ok(Found::Droplet(id.as_uuid()));
            }
        }
    }
    let mut found = Vec::new();
    for db in state.stores.distinct() {
        found.extend(db.workspace_search(text, SEARCH_LIMIT).await?);
    }
    let needle = text.to_lowercase();
    found.sort_by(|a, b| {
        let exact = |w: &Workspace| w.slug.as_str() == needle || w.id.to_string() == needle;
        exact(b)
            .cmp(&exact(a))
            .then_with(|| a.slug.as_str().cmp(b.slug.as_str()))
    });
    found.truncate(SEARCH_LIMIT as usize);
    Ok(Found::Tenants(found))
}

/// One tenant, whole.
#[derive(Debug, Serialize)]
pub struct TenantOverview {
    /// The workspace, its ignition, webhooks and live droplets.
    pub workspace: WorkspaceDetail,
    /// Each live droplet in detail (with its open alerts).
    pub droplets: Vec<DropletDetail>,
    /// Its newest audit events, newest first.
    pub audit: Vec<AuditEntry>,
}

/// Lets `caller` look at tenant `ws`; a look under a support grant is an action, audited
/// with the grant (what support staff saw, and when, is the tenant's to know).
async fn may_view(
    db: &Database,
    caller: Caller<'_>,
    ws: WorkspaceId,
    what: &str,
    subject: String,
) -> Result<(), Problem> {
    let authority = authorise(db, caller, ws, SupportAction::View).await?;
    if authority.grant.is_some() {
        db.audit_record(&authority.action_taken(
            ws,
            subject,
            serde_json::json!({ "action": what }),
        ))
        .await?;
    }
    Ok(())
}

/// Tenant `raw` (id or slug), whole, for `caller`.
pub async fn tenant(
    state: &AppState,
    raw: &str,
    caller: Caller<'_>,
) -> Result<TenantOverview, Problem> {
    let id = resolve(state, raw).await?;
    let (_, db) = state.stores.workspace_find(id).await?;
    may_view(db, caller, id, "VIEW_TENANT", id.to_string()).await?;
    let workspace = detail(state, &id.to_string()).await?;
    let db = state.stores.for_region(workspace.workspace.region);
    let mut droplets = Vec::new();
    for d in &workspace.droplets {
        droplets.push(droplet_detail(state, &d.id.to_string()).await?);
    }
    let audit = db
        .audit_list(Some(workspace.workspace.id), None, TENANT_AUDIT)
        .await?;
    Ok(TenantOverview {
        workspace,
        droplets,
        audit,
    })
}

/// Droplet `raw_id` in detail, for `caller`.
pub async fn droplet(
    state: &AppState,
    raw_id: &str,
    caller: Caller<'_>,
) -> Result<DropletDetail, Problem> {
    let (db, d) = locate(state, raw_id).await?;
    may_view(
        &db,
        caller,
        d.workspace_id,
        "VIEW_DROPLET",
        d.id.to_string(),
    )
    .await?;
    droplet_detail(state, raw_id).await
}
