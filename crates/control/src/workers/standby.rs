//! The hot-standby pool (spec 55.4 strategy 3): warm blank droplets per region that serve a
//! waking High-Priority tenant within seconds, while its own droplet boots.
//!
//! The leader's [`StandbyPool`] reconciler, every second:
//! 1. claims a ready standby of the tenant's region for each High-Priority tenant whose own
//!    droplet is WAKING (a pre-warm excepted: it is minutes ahead of need) and queues the
//!    serve job: credentials injected from the vault, workflows deployed, webhooks pointed
//!    at the standby;
//! 2. swaps back once the tenant's own droplet is healthy: a job redeploys the tenant's
//!    workflows to its own droplet (which points its webhooks home again and brings it to
//!    the current template version), then destroys the standby;
//! 3. destroys standbys that failed: a claim not serving within `serve_deadline`, a machine
//!    that never came up within `create_deadline`, one that became ORPHAN;
//! 4. refills each region to its configured size.
//!
//! A standby keeps serving as long as the tenant's own droplet is not healthy, whatever
//! happens to that droplet (a failed wake becomes a zombie, then an orphan): it is then the
//! tenant's only running copy. A claimed standby is never given back to the pool (see
//! `genesis_store::standby`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{Cloud, CloudError};
use genesis_core::{DropletState, Region, WorkspaceId};
use genesis_ignition::{Igniter, StepError};
use genesis_queue::{Bus, Claimed, Handler, JobError};
use genesis_store::{Database, RegionalStore, StandbyDroplet, StoreError};
use serde::{Deserialize, Serialize};

use super::hibernation::HIBERNATION_QUEUE;
use super::reconciler::{Merge, Part, Reconciler, Retry};

/// Job ids of standby jobs start with this (they share the hibernation queue: both move
/// tenants between machines at wake and sleep).
pub const STANDBY_JOB_PREFIX: &str = "standby-";

/// How big the pool is and how long its steps may take.
#[derive(Debug, Clone)]
pub struct StandbySettings {
    /// Warm, unclaimed standbys wanted per region.
    pub sizes: BTreeMap<Region, usize>,
    /// A claim that does not serve within this is given up (the standby destroyed).
    pub serve_deadline: Duration,
    /// A standby not ready within this is destroyed and replaced.
    pub create_deadline: Duration,
    /// At most this many standbys are created per database per pass (the cloud's rate
    /// limit is shared).
    pub max_creates_per_pass: usize,
    /// Who the audit log names.
    pub actor: String,
}

impl StandbySettings {
    /// `total` standbys spread evenly over every region (the first regions get the
    /// remainder): spec 55.4's pool of 30 "across regions".
    pub fn spread(total: usize) -> BTreeMap<Region, usize> {
        let n = Region::ALL.len();
        Region::ALL
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, total / n + usize::from(i < total % n)))
            .collect()
    }
}

impl Default for StandbySettings {
    fn default() -> Self {
        Self {
            sizes: Self::spread(30),
            serve_deadline: Duration::from_secs(60),
            create_deadline: Duration::from_secs(600),
            max_creates_per_pass: 10,
            actor: "standby-pool".into(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StandbyReport {
    /// Unclaimed standbys ready to serve.
    pub ready: usize,
    /// Unclaimed standbys still booting.
    pub warming: usize,
    /// Standbys serving (or being prepared for) a tenant.
    pub claimed: usize,
    /// Claims made this pass.
    pub claims: usize,
    /// Waking tenants that found no ready standby in their region.
    pub unserved: usize,
    /// Swap-backs queued.
    pub swap_backs: usize,
    /// Standbys destroyed because they failed.
    pub destroyed: usize,
    /// Standbys created.
    pub created: usize,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error("queue: {0}")]
    Queue(#[from] genesis_queue::QueueError),
    /// The cloud.
    #[error("cloud: {0}")]
    Cloud(#[from] CloudError),
}

/// What a standby job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    /// Put the tenant on the standby.
    Serve,
    /// Put the tenant back on its own droplet and destroy the standby.
    SwapBack,
}

#[derive(Debug, Serialize, Deserialize)]
struct StandbyPayload {
    region: Region,
    droplet: uuid::Uuid,
    tenant: uuid::Uuid,
    step: Step,
}

impl super::droplet_job::DropletPayload for StandbyPayload {
    fn region(&self) -> Region {
        self.region
    }
    fn droplet(&self) -> uuid::Uuid {
        self.droplet
    }
}

/// Deletes the standby's machine (already gone is fine), then releases it and terminates its
/// row in one audited transaction.
async fn destroy<C: Cloud>(
    cloud: &C,
    db: &Database,
    standby: &genesis_store::Droplet,
    reason: &str,
    actor: &str,
) -> Result<(), StandbyError> {
    if let Some(p) = standby.provider_id {
        match cloud.droplet_delete(p).await {
            Ok(()) | Err(CloudError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    db.standby_release(standby.id, reason, actor).await?;
    Ok(())
}

/// The leader's pool reconciler.
pub struct StandbyPool<C> {
    stores: RegionalStore,
    bus: Bus,
    igniter: Arc<Igniter<C>>,
    settings: StandbySettings,
}

impl<C: Cloud> StandbyPool<C> {
    /// A reconciler over these databases, queueing on `bus`, creating through `igniter`.
    pub fn new(
        stores: RegionalStore,
        bus: Bus,
        igniter: Arc<Igniter<C>>,
        settings: StandbySettings,
    ) -> Self {
        Self {
            stores,
            bus,
            igniter,
            settings,
        }
    }

    async fn queue(
        &self,
        standby: &genesis_store::Droplet,
        tenant: WorkspaceId,
        step: Step,
    ) -> Result<bool, StandbyError> {
        let payload = serde_json::to_string(&StandbyPayload {
            region: standby.region,
            droplet: standby.id.as_uuid(),
            tenant: tenant.as_uuid(),
            step,
        })
        .unwrap_or_default();
        let kind = match step {
            Step::Serve => "serve",
            Step::SwapBack => "back",
        };
        let id = format!("{STANDBY_JOB_PREFIX}{kind}-{}", standby.id);
        Ok(self
            .bus
            .add(HIBERNATION_QUEUE, &id, &payload, Duration::ZERO)
            .await?
            == genesis_queue::AddOutcome::Created)
    }

    /// Looks after one claimed standby: swap back when the tenant's own droplet is healthy,
    /// give up a claim that never served.
    async fn tend_claim(
        &self,
        db: &Database,
        s: &StandbyDroplet,
        tenant: WorkspaceId,
        report: &mut StandbyReport,
    ) -> Result<(), StandbyError> {
        let now = chrono::Utc::now();
        if s.serving_at.is_none() {
            let since = s.claimed_at.unwrap_or(now);
            let late = chrono::Duration::from_std(self.settings.serve_deadline).unwrap_or_default();
            if now > since + late {
                tracing::warn!(standby = %s.droplet.id, %tenant, "standby never served; destroying it");
                destroy(
                    self.igniter.cloud().as_ref(),
                    db,
                    &s.droplet,
                    "never served",
                    &self.settings.actor,
                )
                .await?;
                report.destroyed += 1;
            }
            return Ok(());
        }
        let home_ready = db
            .droplet_live_for_workspace(tenant)
            .await?
            .iter()
            .any(|d| {
                matches!(
                    d.state,
                    DropletState::ActiveHealthy | DropletState::ActiveDegraded
                )
            });
        if home_ready && self.queue(&s.droplet, tenant, Step::SwapBack).await? {
            report.swap_backs += 1;
        }
        Ok(())
    }
}

impl Merge for StandbyReport {
    fn merge(&mut self, o: Self) {
        self.ready += o.ready;
        self.warming += o.warming;
        self.claimed += o.claimed;
        self.claims += o.claims;
        self.unserved += o.unserved;
        self.swap_backs += o.swap_backs;
        self.destroyed += o.destroyed;
        self.created += o.created;
    }
}

impl<C: Cloud + 'static> Reconciler for StandbyPool<C> {
    type Report = StandbyReport;
    type Error = StandbyError;
    const NAME: &'static str = "standby";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<StandbyReport, StandbyError> {
        let mut report = StandbyReport::default();
        let now = chrono::Utc::now();
        let mut free: BTreeMap<Region, usize> = BTreeMap::new();
        let db = &part.db;
        {
            for want in db.standby_wanted().await? {
                match db
                    .standby_claim(want.region, want.workspace, &self.settings.actor)
                    .await
                {
                    Ok(Some(s)) => {
                        self.queue(&s.droplet, want.workspace, Step::Serve).await?;
                        report.claims += 1;
                    }
                    Ok(None) => {
                        // Every pass until its own droplet is up: counted, not logged each time.
                        tracing::debug!(tenant = %want.workspace, region = %want.region.code(), "no warm standby; the tenant waits for its own droplet");
                        report.unserved += 1;
                    }
                    // Claimed concurrently by another pass: nothing to do.
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for s in db.standby_live().await? {
                if let Some(tenant) = s.claimed_by {
                    report.claimed += 1;
                    self.tend_claim(db, &s, tenant, &mut report).await?;
                    continue;
                }
                let stale = now
                    > s.droplet.created_at
                        + chrono::Duration::from_std(self.settings.create_deadline)
                            .unwrap_or_default();
                let failed = s.droplet.state == DropletState::Orphan
                    || (stale && s.droplet.state != DropletState::ActiveHealthy);
                if failed {
                    destroy(
                        self.igniter.cloud().as_ref(),
                        db,
                        &s.droplet,
                        "never became ready",
                        &self.settings.actor,
                    )
                    .await?;
                    report.destroyed += 1;
                    continue;
                }
                if s.droplet.state == DropletState::ActiveHealthy {
                    report.ready += 1;
                } else {
                    report.warming += 1;
                }
                *free.entry(s.droplet.region).or_default() += 1;
            }
        }
        // The pool of each region this database serves.
        for (region, want) in self
            .settings
            .sizes
            .iter()
            .filter(|(r, _)| part.regions.contains(r))
        {
            let have = free.get(region).copied().unwrap_or(0);
            for _ in have..*want {
                if report.created >= self.settings.max_creates_per_pass {
                    break;
                }
                let db = self.stores.for_region(*region);
                match self.igniter.standby_create(db, *region).await {
                    Ok(_) => report.created += 1,
                    Err(e) => {
                        tracing::warn!(region = %region.code(), error = %e, "standby create failed; the next pass retries");
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    fn noteworthy(r: &StandbyReport) -> bool {
        r.claims + r.swap_backs + r.destroyed + r.created > 0
    }

    fn error_policy(&self, error: &StandbyError) -> Retry {
        match error {
            StandbyError::Cloud(e) => super::reaper::cloud_retry(e),
            _ => Retry::Backoff,
        }
    }
}

/// Runs standby jobs (serve and swap back).
pub struct StandbyJobs<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
    actor: String,
}

impl<C> StandbyJobs<C> {
    /// Jobs acting through `igniter`.
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self {
            stores,
            igniter,
            actor: StandbySettings::default().actor,
        }
    }
}

fn step_error(e: StepError) -> JobError {
    match e {
        StepError::Transient(m) => JobError::Retry(m),
        StepError::Fail(m) => JobError::Permanent(m),
    }
}

impl<C: Cloud + 'static> Handler for StandbyJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let (p, db, standby) =
            super::droplet_job::load::<StandbyPayload>(&self.stores, job).await?;
        let tenant = WorkspaceId::from_uuid(p.tenant)
            .map_err(|_| JobError::Permanent("bad tenant id".into()))?;
        let claim = db
            .standby_live()
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            .into_iter()
            .find(|s| s.droplet.id == standby.id && s.claimed_by == Some(tenant));
        if claim.is_none() {
            // Released meanwhile (given up, or swapped back by an earlier run).
            return Ok(());
        }
        let ws = db
            .workspace_get(tenant)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        match p.step {
            Step::Serve => {
                let rows = self
                    .igniter
                    .standby_serve(&ws, &standby)
                    .await
                    .map_err(step_error)?;
                db.standby_serving(standby.id, tenant, &self.actor)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                tracing::info!(%tenant, standby = %standby.id, workflows = rows.len(), "tenant served from a hot standby");
            }
            Step::SwapBack => {
                self.igniter.redeploy(&ws, None).await.map_err(step_error)?;
                destroy(
                    self.igniter.cloud().as_ref(),
                    &db,
                    &standby,
                    "swapped back",
                    &self.actor,
                )
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
                tracing::info!(%tenant, standby = %standby.id, "tenant back on its own droplet; standby destroyed");
            }
        }
        Ok(())
    }
}
