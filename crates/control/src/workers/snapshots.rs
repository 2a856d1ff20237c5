//! The snapshot schedule and its garbage collection (spec 66.2, 66.5; DECISIONS 106), on
//! each regional database, through the cloud.
//!
//! A pass, in order:
//! 1. **Settles** snapshots being taken: found at the cloud by the name they were given
//!    (one call: the droplet's snapshot list), or given up when the action errored.
//! 2. **Checks** cross-region transfers: done once the image lists the backup datacenter;
//!    abandoned after a day (spec 66.5's orphaned transfer).
//! 3. **Starts** the transfer of each droplet's newest snapshot to its backup datacenter
//!    (spec 66.3, [`genesis_core::dr::backup_datacenter`]).
//! 4. **Takes** the snapshots that are due: one per droplet per day, weekly or daily.
//! 5. **Deletes** what 66.5 lets go: failed snapshots once retried, expired ones and
//!    abandoned transfers once a newer snapshot of the droplet is available.
//!
//! Each pass spends at most [`SnapshotSettings::calls_per_pass`] cloud calls, so a fleet's
//! backups never starve ignitions and rollouts of DigitalOcean's rate budget, and the day's
//! snapshots spread themselves: a droplet is due 24 hours after its last one was asked for.
//! A snapshot costs about five calls over its life (take, find, transfer, check, delete).
//!
//! Safe after a crash at any point: a row is written, with its name, before the cloud is
//! asked, and every later step reads the cloud again before it records anything.

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{ActionStatus, Cloud, CloudError};
use genesis_core::dr::{ORPHANED_TRANSFER_AFTER, backup_datacenter};
use genesis_store::snapshots::{Disposal, SnapshotRow};
use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reaper::cloud_retry;
use super::reconciler::{Merge, Part, Reconciler, Retry};
use crate::clock::Clock;

/// Its name.
pub const NAME: &str = "snapshots";

/// How the schedule runs.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotSettings {
    /// How often a pass runs.
    pub every: Duration,
    /// Cloud calls one pass may make on one database.
    pub calls_per_pass: u32,
    /// How long after it was asked for a snapshot is first looked for at the cloud.
    pub look_after: Duration,
    /// A snapshot not found this long after it was asked for is checked by its action (or
    /// given up, when the answer that carried the action was lost).
    pub give_up_after: Duration,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(60),
            // 2,400 calls an hour at most: under half of DigitalOcean's 5,000.
            calls_per_pass: 40,
            look_after: Duration::from_secs(180),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

/// Takes, copies and deletes droplet snapshots.
pub struct SnapshotSchedule<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    clock: Clock,
    settings: SnapshotSettings,
}

impl<C: Cloud> SnapshotSchedule<C> {
    /// Over `stores`, through `cloud`, on `clock`.
    pub fn new(
        stores: RegionalStore,
        cloud: Arc<C>,
        clock: Clock,
        settings: SnapshotSettings,
    ) -> Self {
        Self {
            stores,
            cloud,
            clock,
            settings,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct SnapshotReport {
    /// Snapshots asked for.
    pub taken: u64,
    /// Snapshots found available.
    pub available: u64,
    /// Snapshots the cloud did not make.
    pub failed: u64,
    /// Transfers started.
    pub transfers: u64,
    /// Transfers finished.
    pub copied: u64,
    /// Transfers abandoned.
    pub transfers_failed: u64,
    /// Snapshots deleted, by why.
    pub deleted: std::collections::BTreeMap<String, u64>,
    /// Cloud calls made.
    pub calls: u64,
    /// Whether the pass stopped at its call budget (the rest waits for the next).
    pub budget_spent: bool,
    /// Cloud errors about one snapshot (its region down, an answer lost): that snapshot
    /// waits for the next pass, and the others go on.
    pub cloud_errors: u64,
}

impl Merge for SnapshotReport {
    fn merge(&mut self, o: Self) {
        self.taken += o.taken;
        self.available += o.available;
        self.failed += o.failed;
        self.transfers += o.transfers;
        self.copied += o.copied;
        self.transfers_failed += o.transfers_failed;
        for (k, v) in o.deleted {
            *self.deleted.entry(k).or_default() += v;
        }
        self.calls += o.calls;
        self.budget_spent |= o.budget_spent;
        self.cloud_errors += o.cloud_errors;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud, in a way no single snapshot explains (rate limit, outage).
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// The cloud calls one pass may still make.
struct Budget(u32);

impl Budget {
    /// Takes one call; false when none is left.
    fn take(&mut self, report: &mut SnapshotReport) -> bool {
        if self.0 == 0 {
            report.budget_spent = true;
            return false;
        }
        self.0 -= 1;
        report.calls += 1;
        true
    }
}

/// `r`, unless it is a cloud error other than a rate limit: one snapshot's trouble (its
/// datacenter down, a lost answer) is counted and left for the next pass, so that it does
/// not hold up the rest of the fleet's backups. A rate limit stops the pass.
fn one_snapshots_trouble(
    r: Result<(), SnapshotError>,
    report: &mut SnapshotReport,
) -> Result<(), SnapshotError> {
    match r {
        Err(SnapshotError::Cloud(e)) if !matches!(e, CloudError::RateLimited { .. }) => {
            tracing::warn!(error = %e, "a snapshot step failed; it is tried again next pass");
            report.cloud_errors += 1;
            Ok(())
        }
        other => other,
    }
}

/// An error that says something about this one snapshot (its droplet or image is gone, or
/// the request was refused), rather than about the cloud as a whole.
fn about_this_one(e: &CloudError) -> bool {
    matches!(e, CloudError::NotFound | CloudError::Refused { .. })
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<C: Cloud> SnapshotSchedule<C> {
    /// The droplet's snapshot called `name`, if the cloud has it (none when the droplet is
    /// gone).
    async fn find(
        &self,
        droplet: i64,
        name: &str,
    ) -> Result<Option<genesis_cloud::Snapshot>, SnapshotError> {
        match self.cloud.droplet_snapshots(droplet).await {
            Ok(list) => Ok(list.into_iter().find(|i| i.name == name)),
            Err(e) if about_this_one(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Step 1: a snapshot being taken, looked for by its name.
    async fn settle(
        &self,
        db: &genesis_store::Database,
        s: &SnapshotRow,
        budget: &mut Budget,
        report: &mut SnapshotReport,
    ) -> Result<(), SnapshotError> {
        let now = self.clock.now();
        let age = now - s.requested_at;
        if age < chrono(self.settings.look_after) {
            return Ok(());
        }
        let Some(droplet) = s.provider_id else {
            db.snapshot_failed(s.id).await?;
            report.failed += 1;
            return Ok(());
        };
        if !budget.take(report) {
            return Ok(());
        }
        let found = self.find(droplet, &s.name).await?;
        if let Some(image) = found {
            let datacenter = image.regions.first().cloned().unwrap_or_default();
            db.snapshot_available(s.id, image.id, &datacenter, image.size_gigabytes, now)
                .await?;
            report.available += 1;
            return Ok(());
        }
        if age < chrono(self.settings.give_up_after) {
            return Ok(());
        }
        // Long missing: its action says whether it may still come.
        let still_running = match s.action_id {
            Some(action) if budget.take(report) => match self.cloud.action_get(action).await {
                Ok(a) => a.status == ActionStatus::InProgress,
                Err(e) if about_this_one(&e) => false,
                Err(e) => return Err(e.into()),
            },
            Some(_) => return Ok(()),
            None => false,
        };
        if !still_running {
            db.snapshot_failed(s.id).await?;
            report.failed += 1;
        }
        Ok(())
    }

    /// Step 2: a transfer under way, checked on its image.
    async fn check_transfer(
        &self,
        db: &genesis_store::Database,
        s: &SnapshotRow,
        budget: &mut Budget,
        report: &mut SnapshotReport,
    ) -> Result<(), SnapshotError> {
        let now = self.clock.now();
        let (Some(image), Some(to)) = (s.image_id, s.backup_datacenter.as_deref()) else {
            return Ok(());
        };
        if s.transfer_started_at
            .is_some_and(|t| now - t < chrono(self.settings.look_after))
        {
            return Ok(());
        }
        if !budget.take(report) {
            return Ok(());
        }
        let copied = match self.cloud.image_get(image).await {
            Ok(i) => i.regions.iter().any(|r| r == to),
            Err(e) if about_this_one(&e) => false,
            Err(e) => return Err(e.into()),
        };
        let orphaned = s
            .transfer_started_at
            .is_some_and(|t| now - t >= chrono(ORPHANED_TRANSFER_AFTER));
        if copied {
            db.snapshot_transfer_ended(s.id, true).await?;
            report.copied += 1;
        } else if orphaned {
            db.snapshot_transfer_ended(s.id, false).await?;
            report.transfers_failed += 1;
        }
        Ok(())
    }

    /// Step 3: a droplet's newest snapshot copied to its backup datacenter.
    async fn start_transfer(
        &self,
        db: &genesis_store::Database,
        s: &SnapshotRow,
        budget: &mut Budget,
        report: &mut SnapshotReport,
    ) -> Result<(), SnapshotError> {
        let (Some(image), Some(to)) = (
            s.image_id,
            s.datacenter.as_deref().and_then(backup_datacenter),
        ) else {
            return Ok(());
        };
        if !budget.take(report) {
            return Ok(());
        }
        match self.cloud.image_transfer(image, to).await {
            Ok(action) => {
                db.snapshot_transfer_started(s.id, to, action.id, self.clock.now())
                    .await?;
                report.transfers += 1;
            }
            Err(e) if about_this_one(&e) => {
                // Already there (a transfer whose answer was lost), or the image is gone:
                // the check that follows reads the image and settles it either way.
                db.snapshot_transfer_started(s.id, to, 0, self.clock.now())
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Step 5: one snapshot deleted at the cloud, then in the database.
    async fn dispose(
        &self,
        db: &genesis_store::Database,
        s: &SnapshotRow,
        why: Disposal,
        budget: &mut Budget,
        report: &mut SnapshotReport,
    ) -> Result<(), SnapshotError> {
        // A failed snapshot has no image id; one may still exist under its name.
        let image = match (s.image_id, s.provider_id) {
            (Some(image), _) => Some(image),
            (None, Some(droplet)) => {
                if !budget.take(report) {
                    return Ok(());
                }
                self.find(droplet, &s.name).await?.map(|i| i.id)
            }
            (None, None) => None,
        };
        if let Some(image) = image {
            if !budget.take(report) {
                return Ok(());
            }
            match self.cloud.snapshot_delete(image).await {
                Ok(()) | Err(CloudError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        db.snapshot_deleted(s.id, why, self.clock.now()).await?;
        *report.deleted.entry(why.code().to_owned()).or_default() += 1;
        Ok(())
    }
}

/// Rows read per step and pass.
const BATCH: i64 = 200;

impl<C: Cloud + 'static> Reconciler for SnapshotSchedule<C> {
    type Report = SnapshotReport;
    type Error = SnapshotError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &SnapshotReport) -> bool {
        r.calls > 0
    }

    fn error_policy(&self, error: &SnapshotError) -> Retry {
        match error {
            SnapshotError::Cloud(e) => cloud_retry(e),
            SnapshotError::Store(_) => Retry::Backoff,
        }
    }

    async fn reconcile_part(&self, part: &Part) -> Result<SnapshotReport, SnapshotError> {
        let db = &part.db;
        let mut report = SnapshotReport::default();
        let mut budget = Budget(self.settings.calls_per_pass);
        for s in db.snapshots_taking(BATCH).await? {
            let r = self.settle(db, &s, &mut budget, &mut report).await;
            one_snapshots_trouble(r, &mut report)?;
        }
        for s in db.snapshots_transferring(BATCH).await? {
            let r = self.check_transfer(db, &s, &mut budget, &mut report).await;
            one_snapshots_trouble(r, &mut report)?;
        }
        for s in db.snapshots_to_transfer(BATCH).await? {
            let r = self.start_transfer(db, &s, &mut budget, &mut report).await;
            one_snapshots_trouble(r, &mut report)?;
        }
        let now = self.clock.now();
        let due = db
            .snapshots_due(now, i64::from(budget.0.min(BATCH as u32)))
            .await?;
        for d in due {
            if !budget.take(&mut report) {
                break;
            }
            let name = format!(
                "genesis-{}-{}",
                d.droplet_id.simple(),
                now.format("%Y%m%d%H%M%S")
            );
            let id = db.snapshot_requested(&d, &name, now).await?;
            match self.cloud.droplet_snapshot(d.provider_id, &name).await {
                Ok(action) => db.snapshot_action(id, action.id).await?,
                Err(e) if about_this_one(&e) => db.snapshot_failed(id).await?,
                Err(e @ CloudError::RateLimited { .. }) => return Err(e.into()),
                // Unknown outcome: the row waits, and is found by its name or given up.
                Err(e) => one_snapshots_trouble(Err(e.into()), &mut report)?,
            }
            report.taken += 1;
        }
        let orphaned_before = now - chrono(ORPHANED_TRANSFER_AFTER);
        for (s, why) in db.snapshots_to_dispose(now, orphaned_before, BATCH).await? {
            let r = self.dispose(db, &s, why, &mut budget, &mut report).await;
            one_snapshots_trouble(r, &mut report)?;
        }
        Ok(report)
    }
}
