//! Heal jobs: spec 43.3's auto-heal actions, run by any replica's worker from the `template`
//! and `security` queues the watchdog fills.
//!
//! | drift | heal |
//! |---|---|
//! | `orphan_workflow` | deactivate, then delete the stray workflow (signed commands) |
//! | `orphan_db_record` | mark the campaign in error, notify the tenant (database only) |
//! | `state_mismatch` | activate or deactivate the workflow as the database wants |
//! | `credential_expired` | refresh the OAuth token with its provider, vault it, rotate it into n8n |
//! | `version_mismatch` | redeploy the template's workflow at the current version |
//!
//! Every heal that succeeds is audited `DRIFT_HEALED`; the same job refreshes a token ahead
//! of its expiry for [`super::oauth_ahead`], audited by the rotation alone. A heal whose droplet is no longer
//! serving is dropped (a reboot or a deletion overtook it). Errors the next attempt may not
//! see (the sidecar unreachable, the provider down) are retried with the queue's backoff;
//! the rest fail the job, and the next heartbeat that still shows the drift queues anew.

use genesis_core::audit::AuditCategory;
use std::collections::BTreeSet;
use std::sync::Arc;

use genesis_cloud::Cloud;
use genesis_core::drift::DriftKind;
use genesis_core::{DropletState, Region};
use genesis_ignition::{Igniter, OAuthRefresher, StepError};
use genesis_protocol::command::Command;
use genesis_queue::{Claimed, Handler, JobError};
use genesis_store::{AuditEvent, Database, Droplet, RegionalStore};
use serde::{Deserialize, Serialize};

/// The queue of workflow heals (spec 52.1: workflow updates).
pub const TEMPLATE_QUEUE: &str = "template";
/// The queue of credential heals (spec 52.1: credential rotation).
pub const SECURITY_QUEUE: &str = "security";

/// The queue a heal of `kind` runs on.
pub fn heal_queue(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::CredentialExpired => SECURITY_QUEUE,
        _ => TEMPLATE_QUEUE,
    }
}

/// One heal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealPayload {
    /// The droplet's region (whose database holds it).
    pub region: Region,
    /// The droplet.
    pub droplet: uuid::Uuid,
    /// The drift.
    pub kind: DriftKind,
    /// The workflow or credential (n8n's id).
    pub subject: String,
    /// A scheduled refresh ahead of expiry ([`super::oauth_ahead`]) rather than a drift's
    /// heal: audited by the rotation (`CREDENTIAL_ROTATED`) alone, not as `DRIFT_HEALED`.
    #[serde(default)]
    pub ahead: bool,
}

impl super::droplet_job::DropletPayload for HealPayload {
    fn region(&self) -> Region {
        self.region
    }
    fn droplet(&self) -> uuid::Uuid {
        self.droplet
    }
}

/// Runs heal jobs.
pub struct HealJobs<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
    oauth: Option<OAuthRefresher>,
    actor: String,
}

impl<C> HealJobs<C> {
    /// Heals through `igniter`'s cloud, sidecar client, vault and templates; OAuth refreshes
    /// through `oauth` (without one, expired credentials stay alerts).
    pub fn new(
        stores: RegionalStore,
        igniter: Arc<Igniter<C>>,
        oauth: Option<OAuthRefresher>,
    ) -> Self {
        Self {
            stores,
            igniter,
            oauth,
            actor: "watchdog-heal".into(),
        }
    }
}

fn step_error(e: StepError) -> JobError {
    match e {
        StepError::Transient(m) => JobError::Retry(m),
        StepError::Fail(m) => JobError::Permanent(m),
    }
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl<C: Cloud + 'static> HealJobs<C> {
    /// Sends `commands` to the droplet's sidecar, in order. A deactivation that fails is
    /// tolerated when `lenient_deactivate` (deleting is what counts).
    async fn send(
        &self,
        droplet: &Droplet,
        commands: &[Command],
        lenient_deactivate: bool,
    ) -> Result<(), JobError> {
        let provider = droplet
            .provider_id
            .ok_or_else(|| JobError::Permanent("the droplet has no cloud id".into()))?;
        let ip = self
            .igniter
            .cloud()
            .droplet_get(provider)
            .await
            .map_err(retry)?
            .public_ipv4()
            .map(str::to_owned)
            .ok_or_else(|| JobError::Retry("the droplet has no public address yet".into()))?;
        for cmd in commands {
            let sent = self
                .igniter
                .sidecar()
                .send(&ip, droplet.workspace_id.as_uuid(), provider, cmd)
                .await;
            match sent {
                Ok(_) => {}
                Err(_)
                    if lenient_deactivate && matches!(cmd, Command::DeactivateWorkflow { .. }) => {}
                Err(e) if e.is_transient() => return Err(JobError::Retry(e.to_string())),
                Err(e) => return Err(JobError::Permanent(e.to_string())),
            }
        }
        Ok(())
    }

    async fn heal(
        &self,
        db: &Database,
        droplet: &Droplet,
        p: &HealPayload,
    ) -> Result<(), JobError> {
        let wanted = db.droplet_workflows(droplet.id).await.map_err(retry)?;
        let row = wanted.iter().find(|r| r.workflow_id == p.subject);
        let id = p.subject.clone();
        match p.kind {
            DriftKind::StateMismatch => {
                let cmd = if row.is_some_and(|r| r.active) {
                    Command::ActivateWorkflow { workflow_id: id }
                } else {
                    Command::DeactivateWorkflow { workflow_id: id }
                };
                self.send(droplet, &[cmd], false).await
            }
            DriftKind::OrphanWorkflow => {
                if row.is_some() {
                    // The database wants it after all (a redeploy recorded it meanwhile).
                    return Ok(());
                }
                self.send(
                    droplet,
                    &[
                        Command::DeactivateWorkflow {
                            workflow_id: id.clone(),
                        },
                        Command::DeleteWorkflow { workflow_id: id },
                    ],
                    true,
                )
                .await
            }
            DriftKind::OrphanDbRecord => {
                let reason = format!(
                    "workflow {} ({}) is missing from the droplet's n8n",
                    id,
                    row.map(|r| r.key.as_str()).unwrap_or("unknown")
                );
                db.droplet_workflow_mark_error(
                    droplet.workspace_id,
                    droplet.id,
                    &id,
                    &reason,
                    &self.actor,
                )
                .await
                .map_err(retry)
                .map(|_| ())
            }
            DriftKind::VersionMismatch => {
                let key = row
                    .map(|r| r.key.clone())
                    .ok_or_else(|| JobError::Permanent(format!("no desired workflow {id}")))?;
                let ws = self.workspace(db, droplet).await?;
                self.igniter
                    .redeploy(&ws, Some(&BTreeSet::from([key])))
                    .await
                    .map_err(step_error)
                    .map(|_| ())
            }
            DriftKind::CredentialExpired => {
                let oauth = self
                    .oauth
                    .as_ref()
                    .ok_or_else(|| JobError::Permanent("no OAuth provider is configured".into()))?;
                let ws = self.workspace(db, droplet).await?;
                self.igniter
                    .refresh_oauth(&ws, oauth, &id)
                    .await
                    .map_err(step_error)
                    .map(|_| ())
            }
            DriftKind::MissingPartition => Err(JobError::Permanent(
                "a missing partition is not healed automatically".into(),
            )),
        }
    }

    async fn workspace(
        &self,
        db: &Database,
        droplet: &Droplet,
    ) -> Result<genesis_store::Workspace, JobError> {
        db.workspace_get(droplet.workspace_id).await.map_err(retry)
    }
}

impl<C: Cloud + 'static> Handler for HealJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let (p, db, droplet) = super::droplet_job::load::<HealPayload>(&self.stores, job).await?;
        if !matches!(
            droplet.state,
            DropletState::DriftDetected
                | DropletState::ActiveHealthy
                | DropletState::ActiveDegraded
        ) {
            return Ok(());
        }
        self.heal(&db, &droplet, &p).await?;
        if p.ahead {
            return Ok(());
        }
        db.audit_record(
            &AuditEvent::new(&self.actor, AuditCategory::Workflows, "DRIFT_HEALED")
                .workspace(droplet.workspace_id)
                .subject(droplet.id.to_string())
                .details(serde_json::json!({ "kind": p.kind.code(), "subject": p.subject })),
        )
        .await
        .map_err(retry)?;
        Ok(())
    }
}
