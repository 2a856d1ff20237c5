//! The webhook-secret rotation (spec 65.1: every 90 days): on each regional database,
//! renews the secrets that are due ([`crate::app::outbound_webhooks::rotate_due`]). The old
//! secret signs beside the new one for a week, and the owners are told by e-mail.
//!
//! Inline rather than through the `security` queue: a renewal is one statement in our own
//! database and touches no droplet, so a queue would add a hop and nothing else. Safe on any
//! replica and any number of times: a renewed endpoint is not due for another 90 days.

use std::sync::Arc;
use std::time::Duration;

use genesis_store::{MasterKeys, RegionalStore};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};
use crate::app::outbound_webhooks::rotate_due;
use crate::clock::Clock;

/// Its name.
pub const NAME: &str = "webhook-secrets";
/// How often it looks (a renewal is due at most an hour late).
pub const EVERY: Duration = Duration::from_secs(3600);
/// Endpoints renewed per pass and database.
const BATCH: i64 = 500;

/// Renews webhook secrets on schedule.
pub struct WebhookSecrets {
    stores: RegionalStore,
    keys: Arc<MasterKeys>,
    clock: Clock,
}

impl WebhookSecrets {
    /// The rotation over `stores`, sealing with `keys`, on `clock`.
    pub fn new(stores: RegionalStore, keys: Arc<MasterKeys>, clock: Clock) -> Self {
        Self {
            stores,
            keys,
            clock,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct SecretsReport {
    /// Secrets renewed.
    pub rotated: u64,
}

impl Merge for SecretsReport {
    fn merge(&mut self, o: Self) {
        self.rotated += o.rotated;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SecretsError(#[from] genesis_store::StoreError);

impl Reconciler for WebhookSecrets {
    type Report = SecretsReport;
    type Error = SecretsError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &SecretsReport) -> bool {
        r.rotated > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<SecretsReport, SecretsError> {
        Ok(SecretsReport {
            rotated: rotate_due(&self.keys, &part.db, &self.clock, BATCH).await?,
        })
    }
}
