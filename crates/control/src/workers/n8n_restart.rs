//! Spec 66.1's n8n crash (RTO 2 minutes): a serving droplet whose sidecar reports n8n
//! stopped, or failing its readiness probe, gets RESTART_N8N (DECISIONS 115).
//!
//! The zombie detector's pass finds them in the heartbeats of the last two windows and
//! queues one restart job per droplet and [`RESTART_EVERY`] on the `reboot` queue (the job
//! id names both, so a crash loop costs one restart per period, not one per heartbeat). Any
//! replica's worker runs it: it looks at the latest heartbeat again (a restart is never
//! sent to an n8n that came back by itself), sends the signed command, and audits
//! `N8N_RESTARTED`. A dead sidecar sends no heartbeat at all: that is the zombie path.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use genesis_cloud::Cloud;
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletState, Region};
use genesis_ignition::{Igniter, StepError};
use genesis_queue::{AddOutcome, Bus, Claimed, Handler, JobError};
use genesis_store::{AuditEvent, Database, RegionalStore, StoreError};
use serde::{Deserialize, Serialize};

use super::zombies::REBOOT_QUEUE;

/// The job-id prefix of n8n restarts on the `reboot` queue.
pub const N8N_RESTART_PREFIX: &str = "n8n-restart-";
/// At most one restart per droplet in this long.
pub const RESTART_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, Serialize, Deserialize)]
struct RestartPayload {
    region: Region,
    droplet: uuid::Uuid,
}

impl super::droplet_job::DropletPayload for RestartPayload {
    fn region(&self) -> Region {
        self.region
    }
    fn droplet(&self) -> uuid::Uuid {
        self.droplet
    }
}

/// The restart job of a droplet whose n8n was reported down at `at`.
fn job_id(droplet: uuid::Uuid, at: DateTime<Utc>) -> String {
    let period = at.timestamp() / RESTART_EVERY.as_secs() as i64;
    format!("{N8N_RESTART_PREFIX}{droplet}-{period}")
}

/// Queues a restart for each serving droplet of `db` whose n8n a heartbeat since `since`
/// reports down. Answers how many were new.
pub(crate) async fn queue_restarts(
    db: &Database,
    bus: &Bus,
    since: DateTime<Utc>,
) -> Result<usize, RestartQueueError> {
    let mut queued = 0;
    for (droplet, region, at) in db.droplets_n8n_down(since, 100).await? {
        let payload = serde_json::to_string(&RestartPayload {
            region,
            droplet: droplet.as_uuid(),
        })
        .map_err(|e| RestartQueueError::Payload(e.to_string()))?;
        let id = job_id(droplet.as_uuid(), at);
        if bus.add(REBOOT_QUEUE, &id, &payload, Duration::ZERO).await? == AddOutcome::Created {
            tracing::warn!(%droplet, "n8n reported down: restart queued");
            queued += 1;
        }
    }
    Ok(queued)
}

/// Why restarts could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum RestartQueueError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] genesis_queue::QueueError),
    /// A payload that would not serialise (a bug).
    #[error("restart payload: {0}")]
    Payload(String),
}

/// Runs n8n restarts.
pub struct N8nRestartJobs<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
}

impl<C> N8nRestartJobs<C> {
    /// Through `igniter`'s sidecar client.
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self { stores, igniter }
    }
}

impl<C: Cloud + 'static> Handler for N8nRestartJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let (_, db, droplet) =
            super::droplet_job::load::<RestartPayload>(&self.stores, job).await?;
        let serving = matches!(
            droplet.state,
            DropletState::ActiveHealthy
                | DropletState::ActiveDegraded
                | DropletState::DriftDetected
        );
        let status = db
            .droplet_n8n_status(droplet.id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let down = matches!(status.as_deref(), Some("stopped" | "unhealthy"));
        if !serving || !down {
            // Rebooted, asleep or gone meanwhile, or n8n came back by itself.
            return Ok(());
        }
        let ws = db
            .workspace_get(droplet.workspace_id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let new_pid = match self.igniter.restart_n8n(&ws).await {
            Ok(pid) => pid,
            Err(StepError::Transient(m)) => return Err(JobError::Retry(m)),
            Err(StepError::Fail(m)) => return Err(JobError::Permanent(m)),
        };
        db.audit_record(
            &AuditEvent::new(
                "system:zombie-detector",
                AuditCategory::Droplet,
                "N8N_RESTARTED",
            )
            .workspace(droplet.workspace_id)
            .subject(droplet.id.to_string())
            .details(serde_json::json!({ "was": status, "new_pid": new_pid })),
        )
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }
}
