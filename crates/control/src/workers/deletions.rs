//! Tenants being deleted (issue 25, spec 64.1): on each regional database, writes the day-3
//! and day-6 reminders that are due into the notifications outbox.
//!
//! Safe on any replica and any number of times: each reminder is claimed by moving the
//! request's `reminded_day` in the statement that finds it, so it is written once.

use std::time::Duration;

use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};

/// Its name.
pub const NAME: &str = "deletions";
/// How often it looks: a reminder goes out within this of its day.
pub const EVERY: Duration = Duration::from_secs(60);
/// Reminders per pass and database.
const BATCH: i64 = 500;

/// Reminds tenants being deleted.
pub struct Deletions {
    stores: RegionalStore,
}

impl Deletions {
    /// Over `stores`.
    pub fn new(stores: RegionalStore) -> Self {
        Self { stores }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct DeletionsReport {
    /// Reminders written.
    pub reminded: u64,
}

impl Merge for DeletionsReport {
    fn merge(&mut self, o: Self) {
        self.reminded += o.reminded;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DeletionsError(#[from] StoreError);

impl Reconciler for Deletions {
    type Report = DeletionsReport;
    type Error = DeletionsError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &DeletionsReport) -> bool {
        r.reminded > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<DeletionsReport, DeletionsError> {
        Ok(DeletionsReport {
            reminded: part
                .db
                .deletion_remind_due(chrono::Utc::now(), BATCH)
                .await?,
        })
    }
}
