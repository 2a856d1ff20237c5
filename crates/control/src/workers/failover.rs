//! The `failover` reconciler: phases 2 to 4 of every open regional failover (spec 66.4;
//! DECISIONS 109), on each regional database.
//!
//! A pass, per open failover:
//! 1. **Provisioning.** Starts waiting tenants' restore sagas until
//!    [`RESTORES_AT_ONCE`] run; the sagas do the work (droplet from the snapshot in the
//!    target, handshake, credentials, workflows, webhooks re-pointed) on the `ignition` queue.
//! 2. **Verification.** A restored tenant whose new droplet has sent a heartbeat since is
//!    verified and told its service is back. Once no restore waits, runs or awaits its
//!    heartbeat, the failover is `restored`.
//! 3. **Cleanup** (once the operator asks, `genesis dr cleanup`): deletes the replaced
//!    droplets at the cloud, which answers again once the region is back, and closes it.
//!
//! A failback (`genesis dr failback`, DECISIONS 114) is a failover too, whose tenants'
//! plan is `migrate`: before its restore, each tenant's droplet is snapshotted for the move
//! and the snapshot copied to the target, one step per pass.
//!
//! Every step reads the rows again, and a saga's start and end move its tenant's row in the
//! saga's own transactions, so a pass after a crash, or on another replica, picks up where
//! the last one stopped without starting any restore twice.

use std::sync::Arc;

use chrono::Utc;
use genesis_cloud::{Cloud, CloudError};
use genesis_core::dr::{FailoverPhase, RESTORES_AT_ONCE, RestorePlan, RestoreState};
use genesis_core::{DropletId, WorkspaceId};
use genesis_ignition::{IgniteError, Igniter, RestoreSpec};
use genesis_store::failovers::{Failover, FailoverCounts, FailoverTenant};
use genesis_store::{Database, IgnitionStart, RegionalStore, StoreError};
use serde::Serialize;

use super::pre_update::{PreUpdate, PreUpdateError, pre_update_snapshot};
use super::reaper::cloud_retry;
use super::reconciler::{Merge, Part, Reconciler, Retry};

/// Its name.
pub const NAME: &str = "failover";
/// How often a pass runs.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Replaced droplets deleted per pass.
const CLEANUP_PER_PASS: i64 = 50;

/// Runs open failovers.
pub struct FailoverConductor<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
}

impl<C: Cloud> FailoverConductor<C> {
    /// Starting restores through `igniter`.
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self { stores, igniter }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct FailoverReport {
    /// Open failovers seen.
    pub open: u64,
    /// Restore sagas started.
    pub started: u64,
    /// Tenants whose restore could not start this pass (another saga of theirs runs, or the
    /// queue failed): tried again next pass.
    pub deferred: u64,
    /// Tenants that cannot be restored at all (their restore is marked failed, with why).
    pub given_up: u64,
    /// Migrating tenants whose snapshot is still being taken or copied.
    pub preparing: u64,
    /// Tenants verified.
    pub verified: u64,
    /// Replaced droplets deleted.
    pub cleaned: u64,
    /// Phases moved.
    pub phases: u64,
}

impl Merge for FailoverReport {
    fn merge(&mut self, o: Self) {
        self.open += o.open;
        self.started += o.started;
        self.deferred += o.deferred;
        self.given_up += o.given_up;
        self.preparing += o.preparing;
        self.verified += o.verified;
        self.cleaned += o.cleaned;
        self.phases += o.phases;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum FailoverWorkError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud, during cleanup (the failed region still down, or a rate limit).
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// Where a failover in phase 2 or 3 goes next, from how its tenants stand: phase 2 ends
/// when no restore waits or runs, phase 3 when no restored tenant awaits its heartbeat.
fn next_phase(phase: FailoverPhase, c: &FailoverCounts) -> Option<FailoverPhase> {
    match phase {
        FailoverPhase::Provisioning
            if c.state(RestoreState::Waiting) == 0 && c.state(RestoreState::Restoring) == 0 =>
        {
            Some(FailoverPhase::Verifying)
        }
        FailoverPhase::Verifying if c.state(RestoreState::Restored) == 0 => {
            Some(FailoverPhase::Restored)
        }
        _ => None,
    }
}

impl<C: Cloud> FailoverConductor<C> {
    async fn provision(
        &self,
        db: &Database,
        f: &Failover,
        report: &mut FailoverReport,
    ) -> Result<(), FailoverWorkError> {
        let counts = db.failover_counts(f.id).await?;
        let slots = RESTORES_AT_ONCE - counts.state(RestoreState::Restoring);
        if slots > 0 {
            let waiting = db
                .failover_tenants(f.id, Some(RestoreState::Waiting), slots)
                .await?;
            for t in waiting {
                let Ok(id) = WorkspaceId::from_uuid(t.workspace_id) else {
                    continue;
                };
                let ws = db.workspace_get(id).await?;
                let image_id = match t.plan {
                    RestorePlan::Restore => t.image_id,
                    RestorePlan::Migrate => match self.migration_image(db, f, &t, report).await? {
                        Some(image) => Some(image),
                        None => continue,
                    },
                    RestorePlan::Reignite | RestorePlan::Held => None,
                };
                let spec = RestoreSpec {
                    failover_id: Some(f.id),
                    datacenter: f.to_datacenter.clone(),
                    image_id,
                    replaces: t.old_droplet_id,
                };
                match self.igniter.restore_start(db, &ws, spec).await {
                    Ok(IgnitionStart::Started(_)) => report.started += 1,
                    Ok(IgnitionStart::AlreadyRunning(_)) => report.deferred += 1,
                    // The tenant cannot be restored at all (deleted meanwhile, never
                    // ignited): it is given up, with why, rather than holding the failover
                    // in phase 2 for ever.
                    Err(IgniteError::State(why)) => {
                        db.failover_tenant_give_up(f.id, t.workspace_id, &why, NAME)
                            .await?;
                        report.given_up += 1;
                    }
                    // Another pass started it first: nothing to do.
                    Err(IgniteError::Store(StoreError::Refused { .. })) => report.deferred += 1,
                    Err(IgniteError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(workspace = %ws.id, error = %e, "a restore did not start");
                        report.deferred += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// A migrating tenant's image in the target, once there: its droplet's snapshot for this
    /// failback is taken, then copied to the target (each pass moves it one step; `None`
    /// until it is there). A snapshot that cannot be had gives the tenant up: it stays
    /// where it runs, and the operator is told why.
    async fn migration_image(
        &self,
        db: &Database,
        f: &Failover,
        t: &FailoverTenant,
        report: &mut FailoverReport,
    ) -> Result<Option<i64>, FailoverWorkError> {
        if let Some(image) = t.image_id {
            return Ok(Some(image));
        }
        let cloud = self.igniter.cloud().as_ref();
        let droplet = db
            .droplet_get(DropletId::from_uuid(t.old_droplet_id))
            .await?;
        let s = match pre_update_snapshot(db, cloud, &droplet, f.id, Utc::now()).await {
            Ok(PreUpdate::Ready(s)) => s,
            Ok(PreUpdate::Wait) => {
                report.preparing += 1;
                return Ok(None);
            }
            Ok(PreUpdate::Failed(why)) => {
                db.failover_tenant_give_up(f.id, t.workspace_id, &why, NAME)
                    .await?;
                report.given_up += 1;
                return Ok(None);
            }
            Err(PreUpdateError::Store(e)) => return Err(e.into()),
            Err(PreUpdateError::Cloud(e @ CloudError::RateLimited { .. })) => {
                return Err(e.into());
            }
            Err(PreUpdateError::Cloud(e)) => {
                tracing::warn!(droplet = %droplet.id, error = %e, "migration snapshot: next pass");
                report.preparing += 1;
                return Ok(None);
            }
        };
        let Some(image) = s.image_id else {
            return Ok(None);
        };
        let there = match cloud.image_get(image).await {
            Ok(i) => i.regions.contains(&f.to_datacenter),
            Err(e @ CloudError::RateLimited { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(image, error = %e, "migration snapshot's copy: next pass");
                false
            }
        };
        if there {
            db.failover_tenant_image(f.id, t.workspace_id, s.id, image, s.requested_at)
                .await?;
            return Ok(Some(image));
        }
        if s.transfer_state.is_none() {
            match cloud.image_transfer(image, &f.to_datacenter).await {
                Ok(action) => {
                    db.snapshot_transfer_started(s.id, &f.to_datacenter, action.id, Utc::now())
                        .await?;
                }
                Err(e @ CloudError::RateLimited { .. }) => return Err(e.into()),
                Err(e) => tracing::warn!(image, error = %e, "migration snapshot's copy: next pass"),
            }
        }
        report.preparing += 1;
        Ok(None)
    }

    async fn clean_up(
        &self,
        db: &Database,
        f: &Failover,
        report: &mut FailoverReport,
    ) -> Result<(), FailoverWorkError> {
        let left = db.failover_leftovers(f.id, CLEANUP_PER_PASS).await?;
        if left.is_empty() {
            report.phases += u64::from(
                db.failover_phase(f.id, FailoverPhase::Restored, FailoverPhase::Closed, NAME)
                    .await?,
            );
            return Ok(());
        }
        for (droplet, provider) in left {
            if let Some(p) = provider {
                match self.igniter.cloud().droplet_delete(p).await {
                    Ok(()) | Err(CloudError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            db.droplet_terminate(droplet, NAME).await?;
            report.cleaned += 1;
        }
        Ok(())
    }
}

impl<C: Cloud + 'static> Reconciler for FailoverConductor<C> {
    type Report = FailoverReport;
    type Error = FailoverWorkError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<FailoverReport, FailoverWorkError> {
        let db = &part.db;
        let mut report = FailoverReport::default();
        for f in db.failovers(true).await? {
            report.open += 1;
            if f.phase == FailoverPhase::Provisioning {
                self.provision(db, &f, &mut report).await?;
            }
            if matches!(
                f.phase,
                FailoverPhase::Provisioning | FailoverPhase::Verifying
            ) {
                report.verified += db.failover_verify(f.id, NAME).await?;
                let c = db.failover_counts(f.id).await?;
                if let Some(next) = next_phase(f.phase, &c) {
                    report.phases += u64::from(db.failover_phase(f.id, f.phase, next, NAME).await?);
                }
            }
            if f.phase == FailoverPhase::Restored && f.cleanup_requested_at.is_some() {
                self.clean_up(db, &f, &mut report).await?;
            }
        }
        Ok(report)
    }

    fn noteworthy(r: &FailoverReport) -> bool {
        r.started + r.given_up + r.verified + r.cleaned + r.phases > 0
    }

    fn error_policy(&self, e: &FailoverWorkError) -> Retry {
        match e {
            FailoverWorkError::Cloud(c) => cloud_retry(c),
            FailoverWorkError::Store(_) => Retry::Backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(RestoreState, i64)]) -> FailoverCounts {
        let mut c = FailoverCounts::default();
        for (s, n) in pairs {
            c.by_state.insert(s.code().to_owned(), *n);
        }
        c
    }

    #[test]
    fn each_phase_ends_only_when_its_tenants_are_through() {
        use FailoverPhase as P;
        use RestoreState as S;
        assert_eq!(
            next_phase(P::Provisioning, &counts(&[(S::Waiting, 1)])),
            None
        );
        assert_eq!(
            next_phase(P::Provisioning, &counts(&[(S::Restoring, 1)])),
            None
        );
        assert_eq!(
            next_phase(
                P::Provisioning,
                &counts(&[(S::Restored, 3), (S::Failed, 1)])
            ),
            Some(P::Verifying)
        );
        assert_eq!(next_phase(P::Verifying, &counts(&[(S::Restored, 1)])), None);
        assert_eq!(
            next_phase(P::Verifying, &counts(&[(S::Verified, 3), (S::Held, 2)])),
            Some(P::Restored)
        );
        assert_eq!(next_phase(P::Restored, &counts(&[])), None);
    }
}
