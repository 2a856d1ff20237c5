//! Tenants being deleted (issue 25, spec 64.1–64.2), on each regional database:
//! - writes the day-3 and day-6 reminders that are due into the notifications outbox;
//! - moves the deletion saga of every tenant whose grace period is over
//!   ([`crate::app::deletion_saga`]);
//! - removes final exports once their 30 days are over, and exports asked for once their 7
//!   days are.
//!
//! Safe on any replica and any number of times: each reminder is claimed by moving the
//! request's `reminded_day` in the statement that finds it, so it is written once; each saga
//! is moved under its own lease.

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};
use crate::app::deletion_saga::{ACTOR, Purger};

/// Its name.
pub const NAME: &str = "deletions";
/// How often it looks: a reminder goes out, and a saga begins, within this of its time.
pub const EVERY: Duration = Duration::from_secs(60);
/// Reminders per pass and database.
const BATCH: i64 = 500;
/// Sagas moved per pass and database, one after the other (each is a few seconds of
/// database work and a handful of cloud calls).
const SAGAS: i64 = 50;

/// Reminds tenants being deleted, and deletes them when their time comes.
pub struct Deletions<C> {
    stores: RegionalStore,
    exports: std::path::PathBuf,
    purger: Option<Arc<Purger<C>>>,
}

impl<C> Deletions<C> {
    /// Over `stores`, with exports under `exports`; without a `purger` (no cloud
    /// configured, or the fleet's reconcilers run elsewhere), deletions whose grace period
    /// is over wait, and are reported as waiting.
    pub fn new(
        stores: RegionalStore,
        exports: std::path::PathBuf,
        purger: Option<Arc<Purger<C>>>,
    ) -> Self {
        Self {
            stores,
            exports,
            purger,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct DeletionsReport {
    /// Reminders written.
    pub reminded: u64,
    /// Tenants whose deletion finished (TERMINATED).
    pub terminated: u64,
    /// Sagas that stopped at a step that failed (retried next pass).
    pub failed: u64,
    /// Sagas due that nothing here can move (no cloud configured).
    pub waiting: u64,
    /// Final exports removed after their 30 days.
    pub exports_removed: u64,
}

impl Merge for DeletionsReport {
    fn merge(&mut self, o: Self) {
        self.reminded += o.reminded;
        self.terminated += o.terminated;
        self.failed += o.failed;
        self.waiting += o.waiting;
        self.exports_removed += o.exports_removed;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DeletionsError(#[from] StoreError);

impl<C: Cloud + 'static> Reconciler for Deletions<C> {
    type Report = DeletionsReport;
    type Error = DeletionsError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &DeletionsReport) -> bool {
        r.reminded + r.terminated + r.failed + r.exports_removed > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<DeletionsReport, DeletionsError> {
        let now = chrono::Utc::now();
        let mut report = DeletionsReport {
            reminded: part.db.deletion_remind_due(now, BATCH).await?,
            ..Default::default()
        };
        for (ws, file) in part.db.deletion_exports_expired(now, BATCH).await? {
            let path = self.exports.join(&file);
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, "a final export could not be removed");
                    continue;
                }
            }
            part.db.deletion_export_removed(ws, ACTOR).await?;
            report.exports_removed += 1;
        }
        // Exports asked for, once their 7 days are over.
        for job in part.db.exports_expire(now, BATCH).await? {
            let Ok(ws) = genesis_core::WorkspaceId::from_uuid(job.workspace_id) else {
                continue;
            };
            let dir = self
                .exports
                .join(crate::app::exports::request_dir(ws, job.id));
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(export = %job.id, error = %e, "an expired export could not be removed");
            }
            report.exports_removed += 1;
        }
        let due = part.db.deletion_due(now, SAGAS).await?;
        let Some(purger) = &self.purger else {
            report.waiting = due.len() as u64;
            return Ok(report);
        };
        for ws in due {
            match purger.advance(ws).await {
                Ok(Some(p)) if p.finished_at.is_some() => report.terminated += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, "a deletion step failed; retried next pass");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}
