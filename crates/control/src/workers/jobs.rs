//! One handler for every queue of the fleet's governed set: a worker claims jobs of all the
//! set's queues (priority order, one governor), so it must be able to run each kind. Jobs are
//! routed by their queue's name.

use genesis_cloud::Cloud;
use genesis_ignition::IgnitionJobs;
use genesis_queue::{Claimed, Handler, JobError};

use super::heals::{HealJobs, SECURITY_QUEUE, TEMPLATE_QUEUE};
use super::hibernation::{HIBERNATION_QUEUE, HibernateJobs};
use super::n8n_restart::{N8N_RESTART_PREFIX, N8nRestartJobs};
use super::rollouts::{ROLLOUT_JOB_PREFIX, RolloutJobs};
use super::standby::{STANDBY_JOB_PREFIX, StandbyJobs};
use super::zombies::{REBOOT_QUEUE, RebootJobs};

/// Routes claimed jobs to the handler of their queue.
pub struct FleetJobs<C> {
    ignition: IgnitionJobs<C>,
    reboot: RebootJobs<C>,
    n8n_restart: N8nRestartJobs<C>,
    heals: HealJobs<C>,
    rollouts: RolloutJobs<C>,
    hibernate: HibernateJobs<C>,
    standby: StandbyJobs<C>,
}

impl<C: genesis_cloud::Cloud> FleetJobs<C> {
    /// Every handler, over `igniter`'s databases, cloud, sidecar client and queue.
    pub fn for_igniter(
        igniter: std::sync::Arc<genesis_ignition::Igniter<C>>,
        oauth: Option<genesis_ignition::OAuthRefresher>,
        hibernation: super::hibernation::HibernationSettings,
    ) -> Self {
        let stores = igniter.stores().clone();
        Self::new(
            IgnitionJobs::new(igniter.clone()),
            RebootJobs::new(stores.clone(), igniter.cloud().clone()),
            N8nRestartJobs::new(stores.clone(), igniter.clone()),
            HealJobs::new(stores.clone(), igniter.clone(), oauth),
            RolloutJobs::new(stores.clone(), igniter.clone()),
            HibernateJobs::new(
                stores.clone(),
                igniter.cloud().clone(),
                igniter.sidecar().clone(),
                hibernation,
            ),
            StandbyJobs::new(stores, igniter),
        )
    }
}

impl<C> FleetJobs<C> {
    /// The fleet's handlers.
    pub fn new(
        ignition: IgnitionJobs<C>,
        reboot: RebootJobs<C>,
        n8n_restart: N8nRestartJobs<C>,
        heals: HealJobs<C>,
        rollouts: RolloutJobs<C>,
        hibernate: HibernateJobs<C>,
        standby: StandbyJobs<C>,
    ) -> Self {
        Self {
            ignition,
            reboot,
            n8n_restart,
            heals,
            rollouts,
            hibernate,
            standby,
        }
    }
}

impl<C: Cloud + 'static> Handler for FleetJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        match job.queue.as_str() {
            genesis_ignition::jobs::QUEUE => self.ignition.handle(job).await,
            // The reboot queue carries power cycles and n8n restarts; the job id says which.
            REBOOT_QUEUE if job.id.starts_with(N8N_RESTART_PREFIX) => {
                self.n8n_restart.handle(job).await
            }
            REBOOT_QUEUE => self.reboot.handle(job).await,
            // The template queue carries rollout updates and workflow heals; the job id says
            // which.
            TEMPLATE_QUEUE if job.id.starts_with(ROLLOUT_JOB_PREFIX) => {
                self.rollouts.handle(job).await
            }
            TEMPLATE_QUEUE | SECURITY_QUEUE => self.heals.handle(job).await,
            // The hibernation queue carries hibernations and the hot-standby pool's jobs.
            HIBERNATION_QUEUE if job.id.starts_with(STANDBY_JOB_PREFIX) => {
                self.standby.handle(job).await
            }
            HIBERNATION_QUEUE => self.hibernate.handle(job).await,
            other => Err(JobError::Permanent(format!(
                "no handler for queue {other:?} in this build"
            ))),
        }
    }
}
