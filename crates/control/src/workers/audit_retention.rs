//! The audit log's retention (spec 63.2; DECISIONS 104): on each regional database, keeps
//! monthly partitions ready ahead, moves months past the online window to the archive, and
//! drops archived months at the end of their 7 years
//! ([`genesis_store::audit_retention`] holds the steps and why each survives a crash).
//!
//! Safe on any replica, though one leads it: partition DDL serialises in PostgreSQL, a
//! month's move is recorded before it starts and resumed from wherever it stopped, and an
//! archived or dropped month is never moved twice.

use std::time::Duration;

use genesis_store::{RegionalStore, RetentionReport, StoreError};

use super::reconciler::{Merge, Part, Reconciler};
use crate::clock::Clock;

/// Its name.
pub const NAME: &str = "audit-retention";
/// How often it looks: months change slowly, and partitions are made three months ahead.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Applies the audit log's retention.
pub struct AuditRetention {
    stores: RegionalStore,
    clock: Clock,
}

impl AuditRetention {
    /// Over `stores`, on `clock`.
    pub fn new(stores: RegionalStore, clock: Clock) -> Self {
        Self { stores, clock }
    }
}

impl Merge for RetentionReport {
    fn merge(&mut self, o: Self) {
        self.created += o.created;
        self.archived.extend(o.archived);
        self.dropped.extend(o.dropped);
        self.waiting.extend(o.waiting);
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RetentionError(#[from] StoreError);

impl Reconciler for AuditRetention {
    type Report = RetentionReport;
    type Error = RetentionError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &RetentionReport) -> bool {
        r.created > 0 || !r.archived.is_empty() || !r.dropped.is_empty()
    }

    async fn reconcile_part(&self, part: &Part) -> Result<RetentionReport, RetentionError> {
        Ok(part.db.audit_retention_pass(self.clock.now()).await?)
    }
}
