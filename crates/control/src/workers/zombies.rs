//! Spec 54.4's zombie recovery, as a reconciler and a queue handler.
//!
//! [`ZombieDetector`] (a [`Reconciler`] over each regional database, run by the leader only):
//! 1. finds droplets that should be reporting but have been silent for 3 whole heartbeat
//!    windows (the database knows every heartbeat to within one flush interval);
//! 2. asks the cloud whether each is powered on (a droplet that is off or gone is not a
//!    zombie: spec 54.3);
//! 3. moves it to ZOMBIE and queues a hard reboot on the `reboot` queue;
//! 4. moves droplets stuck in REBOOTING past the deadline (5 minutes) to ORPHAN and opens a
//!    manual-review alert;
//! 5. re-queues the reboot of any ZOMBIE whose job was lost (the job id makes that a no-op
//!    when it was not);
//! 6. treats a droplet WAKING past its deadline (spec 55.3) like a zombie when it is powered
//!    on, and asks for the power-on again when it is still off.
//!
//! [`RebootJobs`] (any replica): power-cycles the droplet through the cloud and moves it to
//! REBOOTING. The first heartbeat afterwards brings it back to ACTIVE_HEALTHY (heartbeat
//! ingestion applies that rule).
//!
//! # Guarantees
//! - Each zombie gets one reboot per ZOMBIE episode: the reboot job's id names the droplet and
//!   the version at which it became a zombie, and the handler acts only on a ZOMBIE droplet.
//! - Every state change goes through the droplet state machine with its audit event.

use std::sync::Arc;
use std::time::Duration;

use super::reconciler::{Merge, Part, Reconciler};

use chrono::Utc;
use genesis_cloud::{Cloud, CloudError, PowerAction};
use genesis_core::health::{expects_heartbeats, is_zombie, silent_long_enough};
use genesis_core::{CloudPower, DropletEvent, DropletState, Region};
use genesis_queue::{Bus, Claimed, Handler, JobError};
use genesis_store::{Database, Droplet, NewAlert, RegionalStore, StoreError};
use serde::{Deserialize, Serialize};

/// The reboot queue (spec 52.1).
pub const REBOOT_QUEUE: &str = "reboot";

/// Timings of the zombie flow.
#[derive(Debug, Clone)]
pub struct ZombieSettings {
    /// The sidecars' heartbeat interval (spec 54.1: 60 s).
    pub heartbeat_interval: Duration,
    /// How long a reboot may take to bring the heartbeat back (spec 54.4: 5 minutes).
    pub reboot_deadline: Duration,
    /// How long a wake may take before a powered-on but silent droplet counts as a zombie
    /// (spec 55.3 expects under 60 s; 5 minutes, as for a reboot).
    pub wake_deadline: Duration,
    /// Droplets examined per pass and database.
    pub batch: i64,
    /// The actor in audit events.
    pub actor: String,
}

impl Default for ZombieSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(60),
            reboot_deadline: Duration::from_secs(300),
            wake_deadline: Duration::from_secs(300),
            batch: 1_000,
            actor: "zombie-detector".into(),
        }
    }
}

/// What one pass did: the reconciler's status value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZombieReport {
    /// Silent droplets examined.
    pub silent: usize,
    /// Moved to ZOMBIE (and a reboot queued).
    pub zombies: usize,
    /// Silent but powered off or gone: not zombies.
    pub not_running: usize,
    /// Moved from REBOOTING to ORPHAN.
    pub orphaned: usize,
    /// Reboot jobs re-queued for zombies already known.
    pub requeued: usize,
    /// Wakes past their deadline: silent but powered on (now zombies), or still off (power
    /// requested again).
    pub stuck_wakes: usize,
    /// Silent droplets left alone because their region is confirmed failed (spec 66.1).
    pub in_failed_region: usize,
    /// n8n restarts queued for sidecars that report n8n down (spec 66.1).
    pub n8n_restarts: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct RebootPayload {
    region: Region,
    droplet: uuid::Uuid,
}

impl super::droplet_job::DropletPayload for RebootPayload {
    fn region(&self) -> Region {
        self.region
    }
    fn droplet(&self) -> uuid::Uuid {
        self.droplet
    }
}

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ZombieError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error("queue: {0}")]
    Queue(#[from] genesis_queue::QueueError),
    /// Queueing an n8n restart.
    #[error(transparent)]
    Restart(#[from] super::n8n_restart::RestartQueueError),
}

/// Finds zombies and orphans.
pub struct ZombieDetector<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    bus: Bus,
    settings: ZombieSettings,
}

fn power_of(result: Result<genesis_cloud::Droplet, CloudError>) -> Result<CloudPower, CloudError> {
    match result {
        Ok(d) => Ok(d.status.power()),
        Err(CloudError::NotFound) => Ok(CloudPower::Gone),
        Err(e) => Err(e),
    }
}

impl<C: Cloud> ZombieDetector<C> {
    /// A detector over every regional database.
    pub fn new(stores: RegionalStore, cloud: Arc<C>, bus: Bus, settings: ZombieSettings) -> Self {
        Self {
            stores,
            cloud,
            bus,
            settings,
        }
    }

    async fn find_zombies(
        &self,
        db: &Database,
        report: &mut ZombieReport,
    ) -> Result<(), ZombieError> {
        let interval = self.settings.heartbeat_interval;
        let now = Utc::now();
        let cutoff = now
            - chrono::Duration::from_std(
                interval * genesis_core::health::thresholds::MISSED_WINDOWS,
            )
            .unwrap_or(chrono::Duration::MAX);
        let watched = [
            DropletState::ActiveHealthy,
            DropletState::ActiveDegraded,
            DropletState::DriftDetected,
        ];
        // A region confirmed failed is silent as a whole: its droplets wait for the
        // failover, and rebooting them would only spend the cloud budget it needs.
        let failed_regions = db.regions_failed().await?;
        for s in db
            .droplets_silent_since(&watched, cutoff, self.settings.batch)
            .await?
        {
            if failed_regions.iter().any(|r| r == s.droplet.region.code()) {
                report.in_failed_region += 1;
                continue;
            }
            let silence = (now - s.last_heartbeat_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            if !expects_heartbeats(s.droplet.state) || !silent_long_enough(silence, interval) {
                continue;
            }
            report.silent += 1;
            let Some(provider) = s.droplet.provider_id else {
                continue;
            };
            let power = match power_of(self.cloud.droplet_get(provider).await) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(droplet = %s.droplet.id, error = %e, "cannot confirm power; next pass");
                    continue;
                }
            };
            if !is_zombie(silence, interval, power) {
                report.not_running += 1;
                continue;
            }
            match db
                .droplet_transition(
                    s.droplet.id,
                    s.droplet.version,
                    DropletEvent::HeartbeatsMissed,
                    &self.settings.actor,
                )
                .await
            {
                Ok(z) => {
                    self.queue_reboot(&z).await?;
                    report.zombies += 1;
                    tracing::warn!(droplet = %z.id, provider, silent_s = silence.as_secs(), "zombie: reboot queued");
                }
                // A heartbeat (or another replica) moved it meanwhile: nothing to do.
                Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A droplet WAKING past the deadline never sent its first heartbeat. Powered on, it is
    /// a zombie like any other (the state machine's WAKING → ZOMBIE) and gets its reboot; still
    /// off, the power-on was lost and is asked for again.
    async fn expire_wakes(
        &self,
        db: &Database,
        report: &mut ZombieReport,
    ) -> Result<(), ZombieError> {
        let before = Utc::now()
            - chrono::Duration::from_std(self.settings.wake_deadline)
                .unwrap_or(chrono::Duration::MAX);
        for d in db
            .droplets_in_state_since(DropletState::Waking, before, self.settings.batch)
            .await?
        {
            let Some(provider) = d.provider_id else {
                continue;
            };
            let power = match power_of(self.cloud.droplet_get(provider).await) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(droplet = %d.id, error = %e, "cannot confirm power; next pass");
                    continue;
                }
            };
            report.stuck_wakes += 1;
            match power {
                CloudPower::Running => match db
                    .droplet_transition(
                        d.id,
                        d.version,
                        DropletEvent::HeartbeatsMissed,
                        &self.settings.actor,
                    )
                    .await
                {
                    Ok(z) => {
                        self.queue_reboot(&z).await?;
                        tracing::warn!(droplet = %z.id, provider, "woken but silent: reboot queued");
                    }
                    Err(StoreError::VersionConflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                },
                CloudPower::Off => {
                    if let Err(e) = self
                        .cloud
                        .droplet_action(provider, PowerAction::PowerOn)
                        .await
                    {
                        tracing::warn!(droplet = %d.id, error = %e, "power-on asked again failed");
                    }
                }
                CloudPower::Provisioning | CloudPower::Gone => {}
            }
        }
        Ok(())
    }

    async fn expire_reboots(
        &self,
        db: &Database,
        report: &mut ZombieReport,
    ) -> Result<(), ZombieError> {
        let before = Utc::now()
            - chrono::Duration::from_std(self.settings.reboot_deadline)
                .unwrap_or(chrono::Duration::MAX);
        for d in db
            .droplets_in_state_since(DropletState::Rebooting, before, self.settings.batch)
            .await?
        {
            match db
                .droplet_transition(
                    d.id,
                    d.version,
                    DropletEvent::RebootTimedOut,
                    &self.settings.actor,
                )
                .await
            {
                Ok(_) => {
                    let details = serde_json::json!({
                        "provider_id": d.provider_id,
                        "reason": "no heartbeat after a hard reboot",
                        "deadline_s": self.settings.reboot_deadline.as_secs(),
                    });
                    db.alert_raise(
                        &NewAlert {
                            workspace: Some(d.workspace_id),
                            droplet: Some(d.id),
                            kind: "manual_review",
                            severity: "HIGH",
                            summary: "Droplet did not come back after a hard reboot",
                            details: &details,
                        },
                        &self.settings.actor,
                    )
                    .await?;
                    report.orphaned += 1;
                }
                Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn requeue_lost(
        &self,
        db: &Database,
        report: &mut ZombieReport,
    ) -> Result<(), ZombieError> {
        // A zombie older than a few seconds should be rebooting; queue again (same job id:
        // a no-op unless the job was lost with a Redis that had no persistence).
        let before = Utc::now() - chrono::Duration::seconds(5);
        for z in db
            .droplets_in_state_since(DropletState::Zombie, before, self.settings.batch)
            .await?
        {
            if self.queue_reboot(&z).await? {
                report.requeued += 1;
            }
        }
        Ok(())
    }

    /// Queues the reboot of zombie `z`; false when the job already existed.
    async fn queue_reboot(&self, z: &Droplet) -> Result<bool, ZombieError> {
        let payload = serde_json::to_string(&RebootPayload {
            region: z.region,
            droplet: z.id.as_uuid(),
        })
        .unwrap_or_default();
        let outcome = self
            .bus
            .add(
                REBOOT_QUEUE,
                &format!("reboot-{}-{}", z.id, z.version),
                &payload,
                Duration::ZERO,
            )
            .await?;
        Ok(outcome == genesis_queue::AddOutcome::Created)
    }
}

impl Merge for ZombieReport {
    fn merge(&mut self, o: Self) {
        self.silent += o.silent;
        self.zombies += o.zombies;
        self.not_running += o.not_running;
        self.orphaned += o.orphaned;
        self.requeued += o.requeued;
        self.stuck_wakes += o.stuck_wakes;
        self.in_failed_region += o.in_failed_region;
        self.n8n_restarts += o.n8n_restarts;
    }
}

impl<C: Cloud + 'static> Reconciler for ZombieDetector<C> {
    type Report = ZombieReport;
    type Error = ZombieError;
    const NAME: &'static str = "zombie-detector";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<ZombieReport, ZombieError> {
        let mut report = ZombieReport::default();
        self.find_zombies(&part.db, &mut report).await?;
        self.expire_wakes(&part.db, &mut report).await?;
        self.expire_reboots(&part.db, &mut report).await?;
        self.requeue_lost(&part.db, &mut report).await?;
        // Spec 66.1's n8n crash: a sidecar that reports n8n down gets it restarted.
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(self.settings.heartbeat_interval * 2)
                .unwrap_or(chrono::Duration::MAX);
        report.n8n_restarts =
            super::n8n_restart::queue_restarts(&part.db, &self.bus, since).await?;
        Ok(report)
    }

    fn noteworthy(r: &ZombieReport) -> bool {
        r.zombies + r.orphaned + r.n8n_restarts > 0
    }
}

/// Runs reboot jobs: power-cycle, then REBOOTING.
pub struct RebootJobs<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    actor: String,
}

impl<C> RebootJobs<C> {
    /// Reboot jobs over these databases and this cloud.
    pub fn new(stores: RegionalStore, cloud: Arc<C>) -> Self {
        Self {
            stores,
            cloud,
            actor: "reboot-worker".into(),
        }
    }
}

impl<C: Cloud + 'static> Handler for RebootJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let (_, db, droplet) = super::droplet_job::load::<RebootPayload>(&self.stores, job).await?;
        if droplet.state != DropletState::Zombie {
            // Already rebooted (a retried job) or it came back by itself.
            return Ok(());
        }
        let provider = droplet
            .provider_id
            .ok_or_else(|| JobError::Permanent("the droplet has no cloud id".into()))?;
        self.cloud
            .droplet_action(provider, PowerAction::PowerCycle)
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    JobError::Retry(e.to_string())
                } else {
                    JobError::Permanent(e.to_string())
                }
            })?;
        match db
            .droplet_transition(
                droplet.id,
                droplet.version,
                DropletEvent::RebootIssued,
                &self.actor,
            )
            .await
        {
            Ok(_) | Err(StoreError::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}
