//! Restoring an ignited tenant onto a new droplet in another datacenter (spec 66.4): the
//! ignition saga run again with [`RestoreSpec`], so a restore is as idempotent and as
//! resumable as an ignition, and its undo removes only the droplet it made.
//!
//! The restore reuses the tenant's own vault entries (the credential slots of its last
//! finished ignition), partition and webhook tokens; its steps adopt what an earlier attempt
//! made (the droplet by its saga-marked name in the target datacenter, credentials and
//! workflows by name in the restored n8n), and its last step makes the new droplet the
//! tenant's: the latest finished ignition is what every later command reads.

use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_core::{DropletId, WorkspaceStatus};
use genesis_store::{Database, IgnitionStart, Workspace};
use uuid::Uuid;

use crate::actions::params;
use crate::igniter::{IgniteError, Igniter, IgnitionParams, RestoreSpec};

impl<C: Cloud> Igniter<C> {
    /// Starts `tenant`'s restore saga: for the failover `spec` names (its row there must be
    /// waiting), or for one lost droplet (no failover), and queues its first move. Answers the saga, or the one already in flight
    /// for the tenant (a crash after the start: it is queued again).
    pub async fn restore_start(
        &self,
        db: &Database,
        tenant: &Workspace,
        spec: RestoreSpec,
    ) -> Result<IgnitionStart, IgniteError> {
        if !matches!(
            tenant.status,
            WorkspaceStatus::Active | WorkspaceStatus::Suspended
        ) {
            return Err(IgniteError::State(format!(
                "a workspace in status {} is not restored",
                tenant.status
            )));
        }
        if let Some(ig) = db.ignition_latest(tenant.id).await?
            && !ig.phase.is_final()
        {
            self.schedule(tenant.region, ig.id, Duration::ZERO).await?;
            return Ok(IgnitionStart::AlreadyRunning(ig));
        }
        // The saga whose droplet serves the tenant, even when a restore rolled back since.
        let Some(last) = db.ignition_latest_done(tenant.id).await? else {
            return Err(IgniteError::State(
                "the tenant was never ignited, so there is nothing to restore".into(),
            ));
        };
        let before = params(&last)?;
        let params = IgnitionParams {
            credentials: before.credentials,
            webhook_token: before.webhook_token,
            template_version: self.templates.version.clone(),
            restore: Some(spec),
        };
        let params = serde_json::to_value(&params).map_err(|e| IgniteError::Invalid {
            field: "params".into(),
            message: e.to_string(),
        })?;
        let started = db
            .ignition_start_restore(
                Uuid::now_v7(),
                tenant.id,
                DropletId::new(),
                &params,
                &self.settings.actor,
            )
            .await?;
        let ig = match &started {
            IgnitionStart::Started(ig) | IgnitionStart::AlreadyRunning(ig) => ig,
        };
        self.schedule(tenant.region, ig.id, Duration::ZERO).await?;
        Ok(started)
    }
}
