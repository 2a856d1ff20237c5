//! The support-grant sweep (spec 63.3): on each regional database, records the end of
//! every grant whose time is up (audited ACCESS_REVOKED, `why: expired`) and of every
//! request that waited for approval longer than
//! [`genesis_store::support_grants::REQUEST_TTL_MINUTES`] (`why: lapsed`).
//!
//! The checks never wait for it: a grant stops allowing anything the moment its
//! `expires_at` passes ([`crate::app::support_access::authorise`] compares with the
//! database's clock). The sweep makes the end visible in the audit trail and the tenant's
//! page, and frees the operator to ask again. Safe on any replica: rows are taken with
//! `SKIP LOCKED`, and an ended grant is never ended twice.

use std::time::Duration;

use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};

/// Its name.
pub const NAME: &str = "support-grants";
/// How often it looks: an expiry is in the audit trail within this.
pub const EVERY: Duration = Duration::from_secs(15);

/// Ends expired support grants.
pub struct SupportGrantSweep {
    stores: RegionalStore,
}

impl SupportGrantSweep {
    /// Over `stores`.
    pub fn new(stores: RegionalStore) -> Self {
        Self { stores }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    /// Grants recorded as expired.
    pub expired: u64,
    /// Requests recorded as lapsed.
    pub lapsed: u64,
}

impl Merge for SweepReport {
    fn merge(&mut self, o: Self) {
        self.expired += o.expired;
        self.lapsed += o.lapsed;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SweepError(#[from] StoreError);

impl Reconciler for SupportGrantSweep {
    type Report = SweepReport;
    type Error = SweepError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        for g in part.db.support_grants_expire().await? {
            match g.end_reason.as_deref() {
                Some("lapsed") => report.lapsed += 1,
                _ => report.expired += 1,
            }
        }
        Ok(report)
    }
}
