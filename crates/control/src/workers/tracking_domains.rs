//! The tracking-domain reconciler (spec 61.4): on each regional database, looks at the DNS
//! of the hosts that are due, then tells each engine whose list changed (or is due a
//! reminder) the whole list it should serve. The steps are
//! [`crate::app::tracking_domains`]'s; this only paces them.
//!
//! Safe on any replica and any number of times: a look records what DNS says now, and the
//! command carries the whole list, so sending it twice changes nothing.

use genesis_store::RegionalStore;
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};
use crate::AppState;
use crate::app::tracking_domains::{look, sync_front};

/// How often it runs.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(15);
/// Hosts looked at, and engines told, per pass and database.
const BATCH: i64 = 200;

/// Looks after tracking domains.
pub struct TrackingDomains {
    state: AppState,
}

impl TrackingDomains {
    /// The reconciler over `state`'s databases, resolver and cloud.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct TrackingReport {
    /// Hosts whose DNS was looked at.
    pub looked: u64,
    /// Looks that failed (DNS or the cloud did not answer); tried at the next pass.
    pub look_failures: u64,
    /// Engines told their list.
    pub told: u64,
    /// Engines that did not confirm (asleep, unreachable); tried again later.
    pub not_told: u64,
}

impl Merge for TrackingReport {
    fn merge(&mut self, o: Self) {
        self.looked += o.looked;
        self.look_failures += o.look_failures;
        self.told += o.told;
        self.not_told += o.not_told;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TrackingError(#[from] genesis_store::StoreError);

impl Reconciler for TrackingDomains {
    type Report = TrackingReport;
    type Error = TrackingError;
    const NAME: &'static str = "tracking-domains";

    fn stores(&self) -> &RegionalStore {
        &self.state.stores
    }

    fn noteworthy(r: &TrackingReport) -> bool {
        r.told > 0 || r.look_failures > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<TrackingReport, TrackingError> {
        let mut report = TrackingReport::default();
        for domain in part.db.tracking_domains_due(BATCH).await? {
            match look(&self.state, &part.db, &domain).await {
                Ok(_) => report.looked += 1,
                Err(p) => {
                    report.look_failures += 1;
                    tracing::debug!(host = %domain.host, detail = %p.detail, "tracking domain not looked at");
                }
            }
        }
        for front in part.db.tracking_fronts_due(BATCH).await? {
            match sync_front(&self.state, &part.db, &front).await {
                Ok(()) => report.told += 1,
                Err(_) => report.not_told += 1,
            }
        }
        Ok(report)
    }
}
