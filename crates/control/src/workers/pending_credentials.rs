//! Key updates that are in the vault but not yet in the engine (issue 24, spec 65.1): a
//! tenant replaced a key while its droplet slept, or while it did not answer. Each pass finds
//! those whose droplet serves again (after the wake's first heartbeat) and applies them:
//! ROTATE_CREDENTIAL with the vault's latest version, the mark cleared once the droplet
//! confirms, audited `CREDENTIAL_ROTATED` ([`genesis_ignition::Igniter::apply_pending_credential`]).
//!
//! Inline rather than through the `security` queue: there is one such update per tenant
//! who typed a key while asleep, not a fleet-wide batch, and a failed one simply stays
//! marked for the next pass. Safe on any replica and any number of times: the mark is
//! cleared only up to the time it was read, so a newer update made meanwhile still applies.

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_ignition::{Igniter, StepError};
use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};

/// Its name.
pub const NAME: &str = "pending-credentials";
/// How often it looks: a woken engine has its new key within this of its first heartbeat.
pub const EVERY: Duration = Duration::from_secs(15);
/// Credentials applied per pass and database.
const BATCH: i64 = 50;
/// Who its audit rows name.
const ACTOR: &str = "pending-credentials";

/// Applies pending key updates.
pub struct PendingCredentials<C> {
    stores: RegionalStore,
    igniter: Arc<Igniter<C>>,
}

impl<C> PendingCredentials<C> {
    /// Over `stores`, through `igniter`'s sidecar client and vault.
    pub fn new(stores: RegionalStore, igniter: Arc<Igniter<C>>) -> Self {
        Self { stores, igniter }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct PendingReport {
    /// Keys now in their engine.
    pub applied: u64,
    /// Keys that could not be applied this time (tried again at the next pass).
    pub failed: u64,
}

impl Merge for PendingReport {
    fn merge(&mut self, o: Self) {
        self.applied += o.applied;
        self.failed += o.failed;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PendingError(#[from] StoreError);

impl<C: Cloud + 'static> Reconciler for PendingCredentials<C> {
    type Report = PendingReport;
    type Error = PendingError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &PendingReport) -> bool {
        r.applied + r.failed > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<PendingReport, PendingError> {
        let mut report = PendingReport::default();
        for p in part.db.vault_pending_on_serving(BATCH).await? {
            let ws = match part.db.workspace_get(p.workspace).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::warn!(workspace = %p.workspace, error = %e, "pending key: no workspace");
                    report.failed += 1;
                    continue;
                }
            };
            match self
                .igniter
                .apply_pending_credential(&ws, p.credential, p.since, ACTOR)
                .await
            {
                Ok(()) => report.applied += 1,
                Err(e) => {
                    let transient = matches!(e, StepError::Transient(_));
                    tracing::warn!(workspace = %p.workspace, credential = %p.name, transient, error = %e, "pending key not applied yet");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}
