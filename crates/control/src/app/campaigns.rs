//! A tenant's campaigns: the Golden Template's workflows on their engine, each active or
//! paused.
//!
//! A toggle changes the desired state first (`droplet_workflows.active`, audited in the same
//! transaction), then sends the signed command (`ACTIVATE_WORKFLOW` / `DEACTIVATE_WORKFLOW`)
//! to the sidecar. The desired state is what counts: when the command cannot be delivered
//! (the engine sleeps, or does not answer) the watchdog brings the droplet to it at its next
//! pass, and a template rollout redeploys each workflow with the flag the database holds,
//! so a paused campaign stays paused.

use genesis_protocol::command::Command;

use super::tenant_access::Access;
use crate::{AppState, Problem};

/// A campaign as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Campaign {
    /// The template's key (`outreach`).
    pub key: String,
    /// Whether it should run.
    pub active: bool,
    /// Why it is in error (its workflow vanished from the engine), if it is.
    pub error: Option<String>,
}

/// What became of a toggle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The engine did it now.
    Now,
    /// Saved; the engine follows at the watchdog's next pass (it sleeps, or did not answer).
    Later,
    /// It already was in that state.
    Unchanged,
}

/// The workspace's campaigns (none before its engine ran).
pub async fn campaigns(
    db: &genesis_store::Database,
    access: &Access,
) -> Result<Vec<Campaign>, Problem> {
    let Some(droplet) = super::tenant_dashboard::live_droplet(db, access).await? else {
        return Ok(Vec::new());
    };
    Ok(db
        .droplet_workflows(droplet.id)
        .await?
        .into_iter()
        .map(|r| Campaign {
            key: r.key,
            active: r.active,
            error: r.error,
        })
        .collect())
}

/// Pauses (`active` false) or resumes campaign `key` (owners).
pub async fn set_active(
    state: &AppState,
    db: &genesis_store::Database,
    access: &Access,
    key: &str,
    active: bool,
) -> Result<Applied, Problem> {
    access.owner("pause or resume campaigns")?;
    if active && access.workspace.status == genesis_core::WorkspaceStatus::PendingDeletion {
        return Err(Problem::conflict(
            "campaign",
            "this workspace is being deleted: call the deletion off to run campaigns again",
        ));
    }
    let droplet = super::tenant_dashboard::live_droplet(db, access)
        .await?
        .ok_or_else(|| Problem::conflict("campaign", "your engine has not started yet"))?;
    let (row, changed) = db
        .droplet_workflow_set_active(access.workspace.id, droplet.id, key, active, &access.actor)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    if !changed {
        return Ok(Applied::Unchanged);
    }
    let command = if active {
        Command::ActivateWorkflow {
            workflow_id: row.workflow_id.clone(),
        }
    } else {
        Command::DeactivateWorkflow {
            workflow_id: row.workflow_id.clone(),
        }
    };
    let (ip, provider) = match super::droplet_ops::address(state, &droplet).await {
        Ok(a) => a,
        Err(_) => return Ok(Applied::Later),
    };
    match super::droplet_ops::send(state, &droplet, &ip, provider, &command).await {
        Ok(_) => Ok(Applied::Now),
        Err(p) => {
            tracing::warn!(workspace = %access.workspace.id, key, detail = %p.detail, "a campaign toggle was not delivered; the watchdog will apply it");
            Ok(Applied::Later)
        }
    }
}
