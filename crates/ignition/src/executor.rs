//! The saga executor: reads the saga row, makes one move (an action or an undo action),
//! records it, and repeats until the saga finishes or must wait.
//!
//! # Guarantees
//! - The saga row is the only input: after a crash, the next move starts from what was
//!   recorded, and re-runs at most the one action or undo whose result was not recorded
//!   (actions are idempotent, so that is safe).
//! - A step's timeout counts from when the step began, as recorded, across restarts.
//! - Two executors on one saga cannot both record a move (the row's version fences them);
//!   the loser re-reads and carries on from the winner's move.
//!
//! # Caveats
//! - An undo action that keeps failing (the cloud is down) keeps the saga UNWINDING and is
//!   retried with a growing delay; every failure is in the saga log. It never gives up on its
//!   own: leaking a droplet is worse than a slow unwind.

use std::time::{Duration, Instant};

use chrono::Utc;
use genesis_cloud::Cloud;
use genesis_core::{DropletEvent, DropletState, IgnitionStep, Region, SagaPhase};
use genesis_store::{Ignition, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::actions::{Act, StepError};
use crate::igniter::Igniter;

/// Where a saga stands after [`Igniter::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Finished (DONE or ROLLED_BACK).
    Finished(SagaPhase),
    /// Waiting; move again after this long.
    Wait(Duration),
}

/// How many undo failures a step has seen (from the log), for the retry delay.
fn undo_delay(attempts: usize) -> Duration {
    let exp = attempts.min(6) as u32;
    Duration::from_millis(500 * 2u64.pow(exp)).min(Duration::from_secs(30))
}

fn remaining(ig: &Ignition, timeout: Duration) -> Duration {
    let elapsed = (Utc::now() - ig.step_started_at)
        .to_std()
        .unwrap_or(Duration::ZERO);
    timeout.saturating_sub(elapsed)
}

impl<C: Cloud> Igniter<C> {
    /// Moves saga `id` (in `region`'s database) as far as it can go now. Only the holder of
    /// the saga's lease acts; anyone else is told to come back when the lease ends.
    pub async fn advance(&self, region: Region, id: Uuid) -> Result<Advance, StoreError> {
        let db = self.stores.for_region(region);
        let owner = Uuid::now_v7();
        let started = Instant::now();
        let mut slept = Duration::ZERO;
        let result = self.advance_leased(db, id, owner, &mut slept).await;
        let busy = started.elapsed().saturating_sub(slept);
        if let Err(e) = db.ignition_release(id, owner, busy).await {
            tracing::warn!(ignition = %id, error = %e, "lease not released; it will expire");
        }
        result
    }

    async fn advance_leased(
        &self,
        db: &genesis_store::Database,
        id: Uuid,
        owner: Uuid,
        slept: &mut Duration,
    ) -> Result<Advance, StoreError> {
        let started = Instant::now();
        let mut undo_failures = 0usize;
        loop {
            // Renewed before every action: an action must finish within the lease.
            if let Some(held) = db.ignition_lease(id, owner, self.settings.lease).await? {
                tracing::debug!(ignition = %id, ?held, "another executor holds the saga");
                return Ok(Advance::Wait(held.max(Duration::from_millis(200))));
            }
            let ig = db.ignition_get(id).await?;
            let ws = db.workspace_get(ig.workspace_id).await?;
            let Some(step) = ig.step else {
                return Ok(Advance::Finished(ig.phase));
            };
            let moved = match ig.phase {
                SagaPhase::Done | SagaPhase::RolledBack => return Ok(Advance::Finished(ig.phase)),
                SagaPhase::Running => {
                    let timeout = self.settings.timeout(step);
                    let outcome = self.act(step, &ig, &ws, db).await;
                    let left = remaining(&ig, timeout);
                    let (wait, last_error) = match outcome {
                        Ok(Act::Done(out)) => {
                            let moved =
                                db.ignition_step_done(&ig, &out, &self.settings.actor).await;
                            match moved {
                                Ok(_) | Err(StoreError::VersionConflict { .. }) => continue,
                                Err(e) => return Err(e),
                            }
                        }
                        Err(StepError::Fail(e)) => match self.fail(db, &ig, step, &e).await {
                            Ok(_) | Err(StoreError::VersionConflict { .. }) => continue,
                            Err(e) => return Err(e),
                        },
                        Ok(Act::Wait(d)) => (d, None),
                        Err(StepError::Transient(e)) => (Duration::from_millis(500), Some(e)),
                    };
                    if left.is_zero() {
                        let why = match last_error {
                            Some(e) => format!(
                                "{step} timed out after {} s; last error: {e}",
                                timeout.as_secs()
                            ),
                            None => format!(
                                "{step} timed out after {} s{}",
                                timeout.as_secs(),
                                waiting_for(step)
                            ),
                        };
                        self.fail(db, &ig, step, &why).await
                    } else if started.elapsed() < self.settings.inline_wait {
                        let nap = wait.min(left);
                        tokio::time::sleep(nap).await;
                        *slept += nap;
                        continue;
                    } else {
                        if let Some(e) = last_error {
                            tracing::debug!(ignition = %id, %step, error = %e, "transient; will retry");
                        }
                        return Ok(Advance::Wait(wait.max(Duration::from_secs(1)).min(left)));
                    }
                }
                SagaPhase::Unwinding => match self.undo(step, &ig, &ws, db).await {
                    Ok(detail) => {
                        // A restore's tenant keeps its vault and webhooks: they were there
                        // before the restore and are still its own.
                        let restoring =
                            crate::actions::params(&ig).is_ok_and(|p| p.restore.is_some());
                        if step == IgnitionStep::ALL[0] && !restoring {
                            // Spec 50.6 steps 3 and 4, whatever step failed: no credential and
                            // no webhook outlives a rolled-back ignition.
                            let vault = db
                                .vault_delete_workspace(ws.id, &self.settings.actor)
                                .await?;
                            let hooks = db
                                .webhook_delete_workspace(ws.id, &self.settings.actor)
                                .await?;
                            tracing::debug!(ignition = %id, vault, hooks, "final cleanup");
                        }
                        let note = json!({
                            "reason": ig.error,
                            "failed_step": ig.failed_step.map(IgnitionStep::code),
                            "troubleshooting": troubleshooting(ig.failed_step),
                        });
                        db.ignition_step_undone(&ig, &detail, &note, &self.settings.actor)
                            .await
                    }
                    Err(e) => {
                        db.ignition_undo_failed(&ig, &e.to_string()).await?;
                        undo_failures += 1;
                        tracing::warn!(ignition = %id, %step, error = %e, "undo failed; will retry");
                        return Ok(Advance::Wait(undo_delay(undo_failures)));
                    }
                },
            };
            match moved {
                Ok(_) | Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records `step`'s failure in `db`, the saga's own regional database (the caller holds
    /// it: no region is looked up again).
    async fn fail(
        &self,
        db: &genesis_store::Database,
        ig: &Ignition,
        step: IgnitionStep,
        why: &str,
    ) -> Result<Ignition, StoreError> {
        tracing::info!(ignition = %ig.id, %step, error = why, "ignition step failed; unwinding");
        if matches!(
            step,
            IgnitionStep::DropletProvisioning | IgnitionStep::HandshakePending
        ) {
            // Spec 50.5: a droplet that never hand-shook failed to provision (still booting:
            // FAILED) or is an orphan (booted, never called home: ORPHAN) until it is deleted.
            if let Ok(d) = db.droplet_get(ig.droplet_id).await {
                let event = match d.state {
                    DropletState::HandshakePending => Some(DropletEvent::HandshakeTimedOut),
                    DropletState::Pending | DropletState::Initializing => {
                        Some(DropletEvent::ProvisioningFailed)
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    let _ = db
                        .droplet_transition(d.id, d.version, event, &self.settings.actor)
                        .await;
                }
            }
        }
        db.ignition_step_failed(ig, why, &self.settings.actor).await
    }

    /// Runs one step's action by itself and records nothing: the idempotency test helper
    /// (run each action twice; the second run must change nothing).
    pub async fn run_action_once(
        &self,
        region: Region,
        id: Uuid,
        step: IgnitionStep,
    ) -> Result<Result<Act, StepError>, StoreError> {
        let db = self.stores.for_region(region);
        let ig = db.ignition_get(id).await?;
        let ws = db.workspace_get(ig.workspace_id).await?;
        Ok(self.act(step, &ig, &ws, db).await)
    }

    /// Runs one step's undo action by itself and records nothing (test helper: an undo run
    /// twice changes nothing the second time).
    pub async fn run_undo_once(
        &self,
        region: Region,
        id: Uuid,
        step: IgnitionStep,
    ) -> Result<Result<serde_json::Value, StepError>, StoreError> {
        let db = self.stores.for_region(region);
        let ig = db.ignition_get(id).await?;
        let ws = db.workspace_get(ig.workspace_id).await?;
        Ok(self.undo(step, &ig, &ws, db).await)
    }
}

fn waiting_for(step: IgnitionStep) -> &'static str {
    match step {
        IgnitionStep::DropletProvisioning => " waiting for the droplet to boot",
        IgnitionStep::HandshakePending => " waiting for the sidecar's handshake",
        _ => "",
    }
}

/// What the user is told to check, by failure point (spec 50.6 step 6).
pub fn troubleshooting(failed: Option<IgnitionStep>) -> Vec<&'static str> {
    match failed {
        Some(IgnitionStep::PartitionCreating) => {
            vec!["This is on our side; try again in a few minutes."]
        }
        Some(IgnitionStep::DropletProvisioning | IgnitionStep::HandshakePending) => vec![
            "The cloud could not start your server in time; this is usually temporary.",
            "Try again in a few minutes; nothing from this attempt was kept.",
        ],
        Some(IgnitionStep::CredentialsInjecting) => vec![
            "One of your credentials was refused: check your Gmail and OpenAI settings.",
            "Re-enter them and start again.",
        ],
        Some(IgnitionStep::WorkflowsDeploying | IgnitionStep::Activating) => vec![
            "Your workflows could not be set up: check your onboarding answers (name, company, booking link).",
        ],
        None => vec![],
    }
}
