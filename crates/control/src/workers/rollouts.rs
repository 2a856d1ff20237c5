//! Fleet template rollouts (spec 56): the conductor, a reconciler run by the leader, and the
//! per-droplet update jobs any replica runs from the `template` queue.
//!
//! [`RolloutConductor`] (a [`Reconciler`] over the whole fleet), for every RUNNING rollout:
//! 1. when the current batch is not queued yet and its start time has come, queues one
//!    update job per pending droplet (the job id names the rollout and the droplet, so a
//!    droplet is never queued twice) and announces the batch on the events stream;
//! 2. when every droplet of the batch has an outcome, judges it with the rollout's policy
//!    (spec 56.3): abort (cancelling what is left), pause for a person, or continue after
//!    the pause between batches; after the last batch the rollout is COMPLETED.
//!
//! A pause moves past the judged batch first, so a resume continues with the next one.
//!
//! [`RolloutJobs`]: redeploys the droplet's workflows at the rollout's template version
//! through its sidecar (the UUID mapper maps them again), and records the outcome once. A
//! hibernating droplet is DEFERRED: its desired version changes at once, and the watchdog's
//! `version_mismatch` heal deploys it when the droplet wakes. A transient failure is
//! retried twice by the queue, then counts as a failure.
//!
//! A rollout with an `n8n_image` swaps each droplet's n8n container instead (spec 56.2's
//! blue-green update through `SWAP_CONTAINER`), once the droplet's pre-update snapshot exists
//! ([`super::pre_update`], spec 66.2); a container that fails its health check is rolled back
//! by the sidecar and counts as a failure. A hibernating droplet is DEFERRED and
//! swapped when it is awake again: every pass, the conductor queues the swap of deferred
//! droplets that woke (the newest image rollout's only), and the target settles to DONE or
//! FAILED then.
//!
//! Progress is published on the queue's events stream as `rollout_batch` events (rollout,
//! batch, pending, done, failed, deferred) and `rollout_status` events.

use std::sync::Arc;

use chrono::Utc;
use genesis_cloud::Cloud;
use genesis_core::rollout::{RolloutEvent, RolloutStatus, Verdict};
use genesis_core::{DropletId, DropletState, Region};
use genesis_ignition::{Igniter, StepError};
use genesis_protocol::command::SwapOutcome;
use genesis_queue::{Bus, Claimed, Handler, JobError};
use genesis_store::{BatchTally, Database, RegionalStore, Rollout, StoreError};
use serde::{Deserialize, Serialize};

use super::heals::TEMPLATE_QUEUE;
use super::pre_update::{PreUpdate, pre_update_snapshot};
use super::reconciler::{Merge, Part, Reconciler, Scope};

/// The job-id prefix of rollout updates on the `template` queue (heals share the queue).
pub const ROLLOUT_JOB_PREFIX: &str = "rollout-";

/// How long a container swap waits for n8n to go quiet (spec 56.2 step 3), seconds.
const SWAP_QUIET_WAIT_S: u64 = 120;

/// How many runs a transiently failing update gets before it counts as failed.
const ATTEMPTS: u32 = 3;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConductorReport {
    /// Batches whose jobs were queued.
    pub batches_started: usize,
    /// Update jobs queued.
    pub jobs_queued: usize,
    /// Batches judged.
    pub batches_judged: usize,
    /// Rollouts paused, aborted, completed by this pass.
    pub paused: usize,
    /// See `paused`.
    pub aborted: usize,
    /// See `paused`.
    pub completed: usize,
    /// Swaps queued for droplets an image rollout deferred and that are awake again.
    pub woken_swaps: usize,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] genesis_queue::QueueError),
}

/// One droplet's update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPayload {
    /// The rollout.
    pub rollout: uuid::Uuid,
    /// The droplet.
    pub droplet: uuid::Uuid,
    /// Its region (which database holds it).
    pub region: Region,
    /// Applies a DEFERRED image update to a droplet that has woken (its target is DEFERRED,
    /// not PENDING).
    #[serde(default)]
    pub on_wake: bool,
}

/// The leader's rollout reconciler.
pub struct RolloutConductor {
    stores: RegionalStore,
    bus: Bus,
    actor: String,
    /// When each running rollout's last progress event went out.
    progress_sent: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, std::time::Instant>>,
}

/// While a batch runs, its progress goes out at most this often (each event counts every
/// target of the rollout; a pass only needs to know whether the batch is done).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl RolloutConductor {
    /// A conductor over these databases (rollouts live in the first), queueing on `bus`.
    pub fn new(stores: RegionalStore, bus: Bus) -> Self {
        Self {
            stores,
            bus,
            actor: "rollout-conductor".into(),
            progress_sent: Default::default(),
        }
    }

    /// Whether a progress event for `rollout` is due now (and, if so, notes it as sent).
    fn progress_due(&self, rollout: uuid::Uuid) -> bool {
        let mut sent = self.progress_sent.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        match sent.get(&rollout) {
            Some(at) if now.duration_since(*at) < PROGRESS_EVERY => false,
            _ => {
                sent.insert(rollout, now);
                true
            }
        }
    }

    /// Queues the swap of every droplet an image rollout deferred while it hibernated and
    /// that is awake now (the newest image only: older deferred images are superseded).
    /// Template rollouts need no such pass: their deferred droplets' desired version moved,
    /// and the watchdog's `version_mismatch` heal deploys it on wake.
    async fn swap_woken(
        &self,
        db: &Database,
        report: &mut ConductorReport,
    ) -> Result<(), RolloutError> {
        let deferred = db.rollout_deferred_images(10_000).await?;
        if deferred.is_empty() {
            return Ok(());
        }
        let mut by_region: std::collections::BTreeMap<Region, Vec<DropletId>> = Default::default();
        for (_, d, region) in &deferred {
            by_region.entry(*region).or_default().push(*d);
        }
        let mut awake = std::collections::HashSet::new();
        for (region, ids) in by_region {
            for (id, state) in self.stores.for_region(region).droplet_states(&ids).await? {
                if matches!(
                    state,
                    DropletState::ActiveHealthy | DropletState::ActiveDegraded
                ) {
                    awake.insert(id);
                }
            }
        }
        for (rollout, droplet, region) in deferred {
            if !awake.contains(&droplet) {
                continue;
            }
            db.rollout_supersede_deferred(rollout, droplet).await?;
            let payload = serde_json::to_string(&RolloutPayload {
                rollout,
                droplet: droplet.as_uuid(),
                region,
                on_wake: true,
            })
            .unwrap_or_default();
            let id = format!("{ROLLOUT_JOB_PREFIX}{rollout}-{droplet}-wake");
            if self
                .bus
                .add(TEMPLATE_QUEUE, &id, &payload, std::time::Duration::ZERO)
                .await?
                == genesis_queue::AddOutcome::Created
            {
                report.woken_swaps += 1;
            }
        }
        Ok(())
    }

    async fn step(
        &self,
        db: &Database,
        r: &Rollout,
        report: &mut ConductorReport,
    ) -> Result<(), RolloutError> {
        if r.current_batch >= r.batches {
            db.rollout_move(r.id, r.version, RolloutEvent::Finish, None, &self.actor)
                .await?;
            self.status_event(r.id, RolloutStatus::Completed, None)
                .await?;
            report.completed += 1;
            return Ok(());
        }
        if !r.batch_queued {
            if Utc::now() < r.next_batch_at {
                return Ok(());
            }
            let targets = db.rollout_batch_targets(r.id, r.current_batch).await?;
            for t in targets.iter().filter(|t| t.status == "PENDING") {
                let payload = serde_json::to_string(&RolloutPayload {
                    rollout: r.id,
                    droplet: t.droplet.as_uuid(),
                    region: t.region,
                    on_wake: false,
                })
                .unwrap_or_default();
                let id = format!("{ROLLOUT_JOB_PREFIX}{}-{}", r.id, t.droplet);
                if self
                    .bus
                    .add(TEMPLATE_QUEUE, &id, &payload, std::time::Duration::ZERO)
                    .await?
                    == genesis_queue::AddOutcome::Created
                {
                    report.jobs_queued += 1;
                }
            }
            if db.rollout_batch_queued(r.id, r.version).await? {
                report.batches_started += 1;
            }
            return Ok(());
        }
        // A batch still running needs no full tally, only a progress event now and then.
        if db.rollout_batch_pending(r.id, r.current_batch).await? > 0 {
            if self.progress_due(r.id)
                && let Some(b) = db
                    .rollout_batches(r.id)
                    .await?
                    .iter()
                    .find(|b| b.batch == r.current_batch)
            {
                self.batch_event(r.id, b).await?;
            }
            return Ok(());
        }
        let batches = db.rollout_batches(r.id).await?;
        let Some(batch) = batches.iter().find(|b| b.batch == r.current_batch).copied() else {
            // An empty batch (cannot happen with planned sizes): move on.
            db.rollout_batch_advance(r.id, r.version, Utc::now())
                .await?;
            return Ok(());
        };
        self.batch_event(r.id, &batch).await?;
        if batch.pending > 0 {
            return Ok(());
        }
        report.batches_judged += 1;
        let overall = batches.iter().filter(|b| b.batch <= r.current_batch).fold(
            BatchTally::default(),
            |mut acc, b| {
                acc.done += b.done;
                acc.failed += b.failed;
                acc
            },
        );
        let next_at =
            Utc::now() + chrono::Duration::from_std(r.policy.pause_between).unwrap_or_default();
        match r.policy.judge(batch.tally(), overall.tally()) {
            Verdict::Abort(reason) => {
                db.rollout_move(
                    r.id,
                    r.version,
                    RolloutEvent::Abort,
                    Some(&reason),
                    &self.actor,
                )
                .await?;
                db.rollout_cancel_pending(r.id).await?;
                self.status_event(r.id, RolloutStatus::Aborted, Some(&reason))
                    .await?;
                report.aborted += 1;
            }
            Verdict::Pause(reason) => {
                if db.rollout_batch_advance(r.id, r.version, next_at).await? {
                    db.rollout_move(
                        r.id,
                        r.version + 1,
                        RolloutEvent::Pause,
                        Some(&reason),
                        &self.actor,
                    )
                    .await?;
                    self.status_event(r.id, RolloutStatus::Paused, Some(&reason))
                        .await?;
                    report.paused += 1;
                }
            }
            Verdict::Continue => {
                db.rollout_batch_advance(r.id, r.version, next_at).await?;
            }
        }
        Ok(())
    }

    async fn batch_event(&self, rollout: uuid::Uuid, b: &BatchTally) -> Result<(), RolloutError> {
        self.bus
            .publish(
                "rollout_batch",
                &[
                    ("rollout", rollout.to_string()),
                    ("batch", b.batch.to_string()),
                    ("pending", b.pending.to_string()),
                    ("done", b.done.to_string()),
                    ("failed", b.failed.to_string()),
                    ("deferred", b.deferred.to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    async fn status_event(
        &self,
        rollout: uuid::Uuid,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<(), RolloutError> {
        self.bus
            .publish(
                "rollout_status",
                &[
                    ("rollout", rollout.to_string()),
                    ("status", status.code().to_owned()),
                    ("reason", reason.unwrap_or_default().to_owned()),
                ],
            )
            .await?;
        Ok(())
    }
}

impl Merge for ConductorReport {
    fn merge(&mut self, o: Self) {
        self.batches_started += o.batches_started;
        self.jobs_queued += o.jobs_queued;
        self.batches_judged += o.batches_judged;
        self.paused += o.paused;
        self.aborted += o.aborted;
        self.completed += o.completed;
        self.woken_swaps += o.woken_swaps;
    }
}

impl Reconciler for RolloutConductor {
    type Report = ConductorReport;
    type Error = RolloutError;
    const NAME: &'static str = "rollouts";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn scope(&self) -> Scope {
        Scope::Fleet
    }

    async fn reconcile_part(&self, part: &Part) -> Result<ConductorReport, RolloutError> {
        let mut report = ConductorReport::default();
        // Rollouts live in the coordinating database (the fleet part's).
        let db = part.db.clone();
        let running = db.rollouts_running().await?;
        self.progress_sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| running.iter().any(|r| r.id == *id));
        for r in running {
            match self.step(&db, &r, &mut report).await {
                Ok(()) | Err(RolloutError::Store(StoreError::VersionConflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        self.swap_woken(&db, &mut report).await?;
        Ok(report)
    }

    fn noteworthy(r: &ConductorReport) -> bool {
        r.batches_judged + r.batches_started + r.woken_swaps > 0
    }
}

/// Runs rollout update jobs.
pub struct RolloutJobs<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
}

impl<C> RolloutJobs<C> {
    /// Updates through `igniter` (its template set is the version this replica deploys).
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self { stores, igniter }
    }
}

impl<C: Cloud + 'static> RolloutJobs<C> {
    /// Runs `job` again once its droplet's pre-update snapshot may be there: a new job with
    /// the same payload, after the igniter's first look at a new droplet (DigitalOcean
    /// snapshots a small droplet in about as long as it boots one).
    async fn look_again(&self, job: &Claimed) -> Result<(), JobError> {
        let base = job.id.split(LOOK_SUFFIX).next().unwrap_or(&job.id);
        let id = format!("{base}{LOOK_SUFFIX}{}", Utc::now().timestamp_millis());
        let delay = self.igniter.settings().droplet_poll.first_look;
        self.igniter
            .bus()
            .add(TEMPLATE_QUEUE, &id, &job.payload, delay)
            .await
            .map(|_| ())
            .map_err(retry)
    }
}

/// Marks the job ids of an update's later looks at its pre-update snapshot.
const LOOK_SUFFIX: &str = "-look-";

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl<C: Cloud + 'static> Handler for RolloutJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let p: RolloutPayload = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let coord = self.stores.coordinator().clone();
        let droplet_id = DropletId::from_uuid(p.droplet);
        let on_wake = p.on_wake;
        let finish = |status: &'static str, error: Option<String>| {
            let coord = coord.clone();
            async move {
                if on_wake {
                    coord
                        .rollout_target_settle(p.rollout, droplet_id, status, error.as_deref())
                        .await
                } else {
                    coord
                        .rollout_target_finish(p.rollout, droplet_id, status, error.as_deref())
                        .await
                }
                .map(|_| ())
                .map_err(retry)
            }
        };
        let expected = if on_wake { "DEFERRED" } else { "PENDING" };
        if coord
            .rollout_target_status(p.rollout, droplet_id)
            .await
            .map_err(retry)?
            .as_deref()
            != Some(expected)
        {
            return Ok(());
        }
        let rollout = coord.rollout_get(p.rollout).await.map_err(retry)?;
        if rollout.status == RolloutStatus::Aborted {
            // An aborted image is not swapped in on wake either.
            return finish(
                "CANCELLED",
                on_wake.then(|| "the rollout was aborted".into()),
            )
            .await;
        }
        if rollout.n8n_image.is_none() && self.igniter.templates().version != rollout.target_version
        {
            return finish(
                "FAILED",
                Some(format!(
                    "this control plane carries template version {}, not {}",
                    self.igniter.templates().version,
                    rollout.target_version
                )),
            )
            .await;
        }
        let db = self.stores.for_region(p.region).clone();
        let droplet = db.droplet_get(droplet_id).await.map_err(retry)?;
        if droplet.state == DropletState::Hibernating {
            if on_wake {
                // Asleep again before the swap ran: it stays deferred until the next wake.
                return Ok(());
            }
            if rollout.n8n_image.is_some() {
                // The conductor swaps it once it is awake again (`swap_woken`).
                return finish("DEFERRED", Some("hibernating: swapped on wake".into())).await;
            }
            // The desired state moves now; on wake the watchdog sees the old version tag in
            // n8n (version_mismatch) and its heal redeploys this version.
            db.droplet_workflows_set_version(droplet.id, &rollout.target_version)
                .await
                .map_err(retry)?;
            return finish("DEFERRED", Some("hibernating: updated on wake".into())).await;
        }
        let ws = db
            .workspace_get(droplet.workspace_id)
            .await
            .map_err(retry)?;
        if let Some(image) = &rollout.n8n_image {
            // Spec 66.2: a snapshot before the update, or no update.
            let cloud = self.igniter.cloud().as_ref();
            match pre_update_snapshot(&db, cloud, &droplet, rollout.id, Utc::now()).await {
                Ok(PreUpdate::Ready(_)) => {}
                Ok(PreUpdate::Wait) => return self.look_again(job).await,
                Ok(PreUpdate::Failed(why)) => {
                    return finish("FAILED", Some(format!("{image} was not swapped in: {why}")))
                        .await;
                }
                Err(e) if job.attempt < ATTEMPTS => return Err(retry(e)),
                Err(e) => {
                    return finish(
                        "FAILED",
                        Some(format!(
                            "{image} was not swapped in: no pre-update snapshot: {e}"
                        )),
                    )
                    .await;
                }
            }
            return match self.igniter.swap_n8n(&ws, image, SWAP_QUIET_WAIT_S).await {
                Ok(SwapOutcome::Swapped { .. }) => finish("DONE", None).await,
                Ok(SwapOutcome::RolledBack { reason }) => {
                    finish(
                        "FAILED",
                        Some(format!("{image} was unhealthy, rolled back: {reason}")),
                    )
                    .await
                }
                Err(StepError::Transient(m)) if job.attempt < ATTEMPTS => Err(JobError::Retry(m)),
                Err(StepError::Transient(m) | StepError::Fail(m)) => {
                    finish("FAILED", Some(m)).await
                }
            };
        }
        match self.igniter.redeploy(&ws, None).await {
            Ok(_) => finish("DONE", None).await,
            Err(StepError::Transient(m)) if job.attempt < ATTEMPTS => Err(JobError::Retry(m)),
            Err(StepError::Transient(m) | StepError::Fail(m)) => finish("FAILED", Some(m)).await,
        }
    }
}
