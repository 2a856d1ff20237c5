//! Hibernation and wake (spec 55): a reconciler run by the leader, the hibernate jobs any
//! replica runs from the `hibernation` queue, and the wake sequence.
//!
//! [`Hibernator`] (a [`Reconciler`]) applies spec 55.1's rule (`genesis_core::hibernation`) to every
//! serving droplet. An eligible tenant gets the 24-hour notice (spec 55.2 step 1, through the
//! notifications outbox); any activity withdraws it. When the notice has run out and the
//! tenant is still eligible and n8n is quiet (no pending executions in its last heartbeat),
//! a hibernate job is queued.
//!
//! [`HibernateJobs`]: collects the final metrics through the sidecar (step 2), shuts the
//! droplet down gracefully through the cloud — the OS stops the containers, n8n with them —
//! and powers it off if the shutdown did not finish (steps 3–4), then records HIBERNATING and
//! opens the episode the savings are counted from (step 5).
//!
//! [`wake`] (spec 55.3): WAKING, episode closed, `power_on`; the first heartbeat brings the
//! droplet back to ACTIVE_HEALTHY (heartbeat ingestion applies that rule).
//!
//! Scheduled campaigns (spec 55.3, 55.4): each pass wakes hibernating tenants whose next
//! campaign starts within their tier's lead (Standard: 60 s, the wake time; High-Priority:
//! 5 minutes, the pre-warm). A pre-warmed tenant with no activity for 2 hours is hibernated
//! again without a new notice.
//!
//! # Caveats
//! - Step 3 stops n8n through the cloud's graceful shutdown, not through a sidecar command:
//!   spec 51.4's thirteen commands have no "stop n8n". The quiet-period check above stands in
//!   for the sidecar's own wait.
//! - The hot-standby pool of spec 55.4 (strategy 3) is not built yet.

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{Cloud, CloudError, DropletStatus, PowerAction};
use genesis_core::hibernation::{eligible, prewarm_expired, wake_lead_s};
use genesis_core::{DropletId, DropletState, Region, Tier, WorkspaceId};
use genesis_ignition::SidecarClient;
use genesis_protocol::command::Command;
use genesis_queue::{Bus, Claimed, Handler, JobError};
use genesis_store::{ActivityKind, Database, Droplet, RegionalStore, StoreError};
use serde::{Deserialize, Serialize};

use super::reconciler::{Merge, Part, Reconciler};

/// The hibernation queue (alongside spec 52.1's six: hibernating is neither a template
/// update nor a reboot, and must not wait behind them).
pub const HIBERNATION_QUEUE: &str = "hibernation";

/// Timings of the hibernation flow.
#[derive(Debug, Clone)]
pub struct HibernationSettings {
    /// The notice before hibernating (spec 55.2: 24 hours).
    pub notice: Duration,
    /// How long a graceful shutdown may take before a hard power-off.
    pub shutdown_wait: Duration,
    /// The actor in audit events.
    pub actor: String,
}

impl Default for HibernationSettings {
    fn default() -> Self {
        Self {
            notice: Duration::from_secs(24 * 3600),
            shutdown_wait: Duration::from_secs(60),
            actor: "hibernation".into(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HibernationReport {
    /// Droplets looked at.
    pub checked: usize,
    /// Eligible tenants.
    pub eligible: usize,
    /// Notices sent.
    pub noticed: usize,
    /// Notices withdrawn (the tenant became active).
    pub withdrawn: usize,
    /// Hibernate jobs queued.
    pub queued: usize,
    /// Hibernating tenants woken for a scheduled campaign (or pre-warmed ahead of one).
    pub woken: usize,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum HibernationError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] genesis_queue::QueueError),
}

#[derive(Debug, Serialize, Deserialize)]
struct HibernatePayload {
    region: Region,
    droplet: uuid::Uuid,
}

impl super::droplet_job::DropletPayload for HibernatePayload {
    fn region(&self) -> Region {
        self.region
    }
    fn droplet(&self) -> uuid::Uuid {
        self.droplet
    }
}

/// The leader's hibernation reconciler.
pub struct Hibernator<C> {
    stores: RegionalStore,
    bus: Bus,
    cloud: Arc<C>,
    settings: HibernationSettings,
}

impl<C: Cloud> Hibernator<C> {
    /// A reconciler over these databases, queueing on `bus`, waking through `cloud`.
    pub fn new(
        stores: RegionalStore,
        bus: Bus,
        cloud: Arc<C>,
        settings: HibernationSettings,
    ) -> Self {
        Self {
            stores,
            bus,
            cloud,
            settings,
        }
    }

    /// Queues the hibernation of `droplet` (one job per droplet version).
    async fn queue(&self, droplet: &Droplet) -> Result<bool, HibernationError> {
        let payload = serde_json::to_string(&HibernatePayload {
            region: droplet.region,
            droplet: droplet.id.as_uuid(),
        })
        .unwrap_or_default();
        let id = format!("hibernate-{}-{}", droplet.id, droplet.version);
        Ok(self
            .bus
            .add(HIBERNATION_QUEUE, &id, &payload, Duration::ZERO)
            .await?
            == genesis_queue::AddOutcome::Created)
    }

    /// Wakes hibernating tenants that had a managed-service call or a dashboard sign-in since
    /// they went to sleep (spec 55.3's service-call and login triggers; the API records the
    /// activity and rings this reconciler).
    async fn wake_called(
        &self,
        db: &Database,
        report: &mut HibernationReport,
    ) -> Result<(), HibernationError> {
        for (ws, by_login) in db.hibernating_with_new_activity().await? {
            match wake(
                db,
                self.cloud.as_ref(),
                ws,
                if by_login { "login" } else { "service_call" },
                &self.settings.actor,
            )
            .await
            {
                Ok(_) => report.woken += 1,
                Err(WakeError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, "wake on new activity failed; next pass retries");
                }
            }
        }
        Ok(())
    }

    /// Wakes hibernating tenants whose scheduled campaign is near (spec 55.3's scheduled
    /// trigger; for High-Priority, spec 55.4's pre-warm 5 minutes ahead), and consumes the
    /// schedule so one campaign wakes a tenant once.
    async fn wake_scheduled(
        &self,
        db: &Database,
        report: &mut HibernationReport,
    ) -> Result<(), HibernationError> {
        let now = chrono::Utc::now();
        for tier in [Tier::HighPriority, Tier::Standard] {
            let Some(lead) = wake_lead_s(tier) else {
                continue;
            };
            let horizon = now + chrono::Duration::seconds(lead);
            for (ws, _) in db.hibernating_due(tier, horizon).await? {
                let trigger = if tier == Tier::HighPriority {
                    "prewarm"
                } else {
                    "campaign"
                };
                match wake(db, self.cloud.as_ref(), ws, trigger, &self.settings.actor).await {
                    Ok(_) => {
                        db.campaign_schedule_set(ws, None).await?;
                        if tier == Tier::HighPriority {
                            db.prewarmed(ws).await?;
                        } else {
                            db.activity_touch(ws, ActivityKind::Campaign, now).await?;
                        }
                        report.woken += 1;
                    }
                    Err(WakeError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(workspace = %ws, error = %e, "scheduled wake failed; next pass retries");
                    }
                }
            }
        }
        Ok(())
    }
}

impl Merge for HibernationReport {
    fn merge(&mut self, o: Self) {
        self.checked += o.checked;
        self.eligible += o.eligible;
        self.noticed += o.noticed;
        self.withdrawn += o.withdrawn;
        self.queued += o.queued;
        self.woken += o.woken;
    }
}

impl<C: Cloud + 'static> Reconciler for Hibernator<C> {
    type Report = HibernationReport;
    type Error = HibernationError;
    const NAME: &'static str = "hibernation";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<HibernationReport, HibernationError> {
        let mut report = HibernationReport::default();
        let now = chrono::Utc::now();
        let notice = chrono::Duration::from_std(self.settings.notice).unwrap_or_default();
        let db = &part.db;
        {
            self.wake_scheduled(db, &mut report).await?;
            self.wake_called(db, &mut report).await?;
            for c in db.hibernation_candidates(10_000).await? {
                report.checked += 1;
                let ws = c.droplet.workspace_id;
                // A tenant being deleted sleeps at once, with no notice and whatever its tier
                // or hold (spec 64.2, day 0): its campaigns are paused already.
                if c.deleting {
                    if self.queue(&c.droplet).await? {
                        report.queued += 1;
                    }
                    continue;
                }
                if let Some(at) = c.prewarmed_at {
                    // Up only because of a pre-warm: back to sleep after 2 idle hours, with
                    // no new notice (spec 55.4), unless it may not hibernate at all.
                    let may = c.activity.tier != Tier::Enterprise
                        && c.activity.workspace_active
                        && !c.activity.manual_hold;
                    if may
                        && prewarm_expired(at.timestamp(), now.timestamp())
                        && c.pending_executions == 0
                        && self.queue(&c.droplet).await?
                    {
                        report.queued += 1;
                    }
                    continue;
                }
                if !eligible(&c.activity, now.timestamp()) {
                    if c.notice_at.is_some() {
                        db.hibernation_notice_clear(ws).await?;
                        report.withdrawn += 1;
                    }
                    continue;
                }
                report.eligible += 1;
                let noticed_at = match c.notice_at {
                    Some(at) => at,
                    None => {
                        if db.hibernation_notice(ws, &self.settings.actor).await? {
                            report.noticed += 1;
                        }
                        now
                    }
                };
                if now < noticed_at + notice || c.pending_executions > 0 {
                    continue;
                }
                if self.queue(&c.droplet).await? {
                    report.queued += 1;
                }
            }
        }
        Ok(report)
    }

    fn noteworthy(r: &HibernationReport) -> bool {
        r.noticed + r.queued + r.woken > 0
    }
}

/// Runs hibernate jobs.
pub struct HibernateJobs<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    sidecar: SidecarClient,
    settings: HibernationSettings,
}

impl<C> HibernateJobs<C> {
    /// Hibernates through this cloud, collecting final metrics through `sidecar`.
    pub fn new(
        stores: RegionalStore,
        cloud: Arc<C>,
        sidecar: SidecarClient,
        settings: HibernationSettings,
    ) -> Self {
        Self {
            stores,
            cloud,
            sidecar,
            settings,
        }
    }
}

fn cloud_error(e: CloudError) -> JobError {
    if e.is_retryable() {
        JobError::Retry(e.to_string())
    } else {
        JobError::Permanent(e.to_string())
    }
}

impl<C: Cloud + 'static> HibernateJobs<C> {
    /// Powers the droplet off: a graceful shutdown, then a hard power-off if it is still on
    /// after `shutdown_wait`.
    async fn power_down(&self, provider: i64) -> Result<(), JobError> {
        if self
            .cloud
            .droplet_get(provider)
            .await
            .map_err(cloud_error)?
            .status
            == DropletStatus::Off
        {
            return Ok(());
        }
        let action = self
            .cloud
            .droplet_action(provider, PowerAction::Shutdown)
            .await
            .map_err(cloud_error)?;
        let graceful = self
            .cloud
            .action_wait(action.id, self.settings.shutdown_wait)
            .await
            .is_ok()
            && self
                .cloud
                .droplet_get(provider)
                .await
                .map_err(cloud_error)?
                .status
                == DropletStatus::Off;
        if !graceful {
            let off = self
                .cloud
                .droplet_action(provider, PowerAction::PowerOff)
                .await
                .map_err(cloud_error)?;
            self.cloud
                .action_wait(off.id, self.settings.shutdown_wait)
                .await
                .map_err(cloud_error)?;
        }
        Ok(())
    }

    async fn final_metrics(&self, droplet: &Droplet, provider: i64) -> serde_json::Value {
        let ip = match self.cloud.droplet_get(provider).await {
            Ok(d) => d.public_ipv4().map(str::to_owned),
            Err(_) => None,
        };
        let Some(ip) = ip else {
            return serde_json::Value::Null;
        };
        match self
            .sidecar
            .send(
                &ip,
                droplet.workspace_id.as_uuid(),
                provider,
                &Command::CollectMetrics,
            )
            .await
        {
            Ok(reply) => serde_json::to_value(reply).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(droplet = %droplet.id, error = %e, "no final metrics; hibernating anyway");
                serde_json::Value::Null
            }
        }
    }
}

impl<C: Cloud + 'static> Handler for HibernateJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let (_, db, droplet) =
            super::droplet_job::load::<HibernatePayload>(&self.stores, job).await?;
        if !matches!(
            droplet.state,
            DropletState::ActiveHealthy | DropletState::ActiveDegraded
        ) {
            return Ok(());
        }
        let provider = droplet
            .provider_id
            .ok_or_else(|| JobError::Permanent("the droplet has no cloud id".into()))?;
        let metrics = self.final_metrics(&droplet, provider).await;
        self.power_down(provider).await?;
        match db
            .droplet_hibernated(droplet.id, droplet.version, &metrics, &self.settings.actor)
            .await
        {
            Ok(_) => Ok(()),
            // Something else moved it while it powered down (a wake, an operator): leave the
            // machine as the new state wants it; the next pass decides again.
            Err(StoreError::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}

/// What a wake found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WakeOutcome {
    /// It was hibernating (or already waking): it is powering on.
    Waking {
        /// The droplet.
        droplet: DropletId,
    },
    /// It was not asleep.
    Awake {
        /// Its state.
        state: DropletState,
    },
}

/// Why a wake failed.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud refused or is unreachable; the droplet stays WAKING and a retry powers it on.
    #[error("the cloud did not power the droplet on: {0}")]
    Cloud(#[from] CloudError),
    /// The workspace has no droplet.
    #[error("the workspace has no droplet")]
    NoDroplet,
}

/// Spec 55.3's wake sequence for `ws`'s droplet, recording `trigger` (`api`, `login`,
/// `campaign`, `service_call`). Idempotent: a droplet already WAKING is powered on again.
pub async fn wake<C: Cloud>(
    db: &Database,
    cloud: &C,
    ws: WorkspaceId,
    trigger: &str,
    actor: &str,
) -> Result<WakeOutcome, WakeError> {
    let droplet = db
        .droplet_live_for_workspace(ws)
        .await?
        .into_iter()
        .next()
        .ok_or(WakeError::NoDroplet)?;
    let droplet = match droplet.state {
        DropletState::Hibernating => {
            db.droplet_wake_requested(droplet.id, droplet.version, trigger, actor)
                .await?
        }
        DropletState::Waking => droplet,
        state => return Ok(WakeOutcome::Awake { state }),
    };
    let provider = droplet.provider_id.ok_or(WakeError::NoDroplet)?;
    cloud.droplet_action(provider, PowerAction::PowerOn).await?;
    Ok(WakeOutcome::Waking {
        droplet: droplet.id,
    })
}
