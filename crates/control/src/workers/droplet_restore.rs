//! The `droplet-restore` reconciler: spec 66.1's single droplet (RTO 5 minutes) past the
//! zombie path (DECISIONS 113), on each regional database.
//!
//! The zombie detector reboots a silent droplet, and one that does not come back within the
//! reboot deadline ends ORPHAN with a manual-review alert. That used to be the end; now a
//! pass:
//! 1. **Restores** each lost droplet that still serves its tenant: a restore saga (the
//!    ignition's steps, [`genesis_ignition::RestoreSpec`] with no failover) makes a new
//!    droplet in the same datacenter from the droplet's newest snapshot, or from the base
//!    image when it has none (re-ignited from the vault and templates). A restore that
//!    rolls back is tried again after [`RETRY_AFTER`], at most [`MAX_ATTEMPTS`] times; then
//!    the alert is the operators'.
//! 2. **Retires** each lost droplet a finished restore replaced: deleted at the cloud,
//!    terminated, and its manual-review alert resolved.
//!
//! A droplet in a region confirmed failed is left to the region's failover.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use genesis_cloud::{Cloud, CloudError};
use genesis_ignition::{IgniteError, Igniter, RestoreSpec};
use genesis_store::{AlertAction, Database, IgnitionStart, RegionalStore, StoreError};
use serde::Serialize;

use super::reaper::cloud_retry;
use super::reconciler::{Merge, Part, Reconciler, Retry};

/// Its name.
pub const NAME: &str = "droplet-restore";
/// How often a pass runs: a lost droplet's restore starts within this of its ORPHAN.
pub const EVERY: Duration = Duration::from_secs(15);
/// Restores of one droplet before it is left to the operators.
pub const MAX_ATTEMPTS: i64 = 3;
/// The wait after a restore rolled back before the next.
pub const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Droplets looked at per pass and step.
const BATCH: i64 = 50;

/// Restores lost droplets.
pub struct DropletRestorer<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
    retry_after: Duration,
}

impl<C: Cloud> DropletRestorer<C> {
    /// Restoring through `igniter`.
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self {
            stores,
            igniter,
            retry_after: RETRY_AFTER,
        }
    }

    /// With another wait between attempts (tests).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct DropletRestoreReport {
    /// Restores started from a snapshot.
    pub restored: u64,
    /// Restores started from the base image (no snapshot).
    pub reignited: u64,
    /// Restores that could not start this pass (the tenant changed meanwhile).
    pub skipped: u64,
    /// Replaced droplets retired.
    pub retired: u64,
}

impl Merge for DropletRestoreReport {
    fn merge(&mut self, o: Self) {
        self.restored += o.restored;
        self.reignited += o.reignited;
        self.skipped += o.skipped;
        self.retired += o.retired;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum DropletRestoreError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud, while retiring.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The queue or the saga's start.
    #[error(transparent)]
    Ignite(#[from] IgniteError),
}

impl<C: Cloud> DropletRestorer<C> {
    async fn restore(
        &self,
        db: &Database,
        report: &mut DropletRestoreReport,
    ) -> Result<(), DropletRestoreError> {
        let retry_before =
            Utc::now() - chrono::Duration::from_std(self.retry_after).unwrap_or_default();
        for lost in db.lost_droplets(MAX_ATTEMPTS, retry_before, BATCH).await? {
            let tenant = db.workspace_get(lost.workspace_id).await?;
            let (datacenter, image_id) = match &lost.snapshot {
                Some((image, dc)) => (dc.clone(), Some(*image)),
                None => match lost.region.datacenters().first() {
                    Some(dc) => ((*dc).to_owned(), None),
                    None => continue,
                },
            };
            let spec = RestoreSpec {
                failover_id: None,
                datacenter,
                image_id,
                replaces: lost.droplet_id.as_uuid(),
            };
            match self.igniter.restore_start(db, &tenant, spec).await {
                Ok(IgnitionStart::Started(ig)) => {
                    tracing::warn!(
                        droplet = %lost.droplet_id,
                        workspace = %lost.workspace_id,
                        saga = %ig.id,
                        from_snapshot = image_id.is_some(),
                        attempt = lost.attempts + 1,
                        "lost droplet: restore started"
                    );
                    if image_id.is_some() {
                        report.restored += 1;
                    } else {
                        report.reignited += 1;
                    }
                }
                Ok(IgnitionStart::AlreadyRunning(_)) => report.skipped += 1,
                // The tenant's status or history moved meanwhile: the next pass sees it.
                Err(IgniteError::State(why)) => {
                    tracing::info!(droplet = %lost.droplet_id, %why, "lost droplet not restored");
                    report.skipped += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn retire(
        &self,
        db: &Database,
        report: &mut DropletRestoreReport,
    ) -> Result<(), DropletRestoreError> {
        for (droplet, provider) in db.lost_droplets_replaced(BATCH).await? {
            if let Some(p) = provider {
                match self.igniter.cloud().droplet_delete(p).await {
                    Ok(()) | Err(CloudError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            db.droplet_terminate(droplet, NAME).await?;
            match db
                .alert_act(droplet, "manual_review", AlertAction::Resolve, NAME)
                .await
            {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            report.retired += 1;
        }
        Ok(())
    }
}

impl<C: Cloud + 'static> Reconciler for DropletRestorer<C> {
    type Report = DropletRestoreReport;
    type Error = DropletRestoreError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(
        &self,
        part: &Part,
    ) -> Result<DropletRestoreReport, DropletRestoreError> {
        let mut report = DropletRestoreReport::default();
        self.retire(&part.db, &mut report).await?;
        self.restore(&part.db, &mut report).await?;
        Ok(report)
    }

    fn noteworthy(r: &DropletRestoreReport) -> bool {
        r.restored + r.reignited + r.retired > 0
    }

    fn error_policy(&self, e: &DropletRestoreError) -> Retry {
        match e {
            DropletRestoreError::Cloud(c) => cloud_retry(c),
            _ => Retry::Backoff,
        }
    }
}
