//! The orphan reaper (`genesis_ignition`'s pass, DESIGN §4's invariant) as a [`Reconciler`]:
//! one part, the whole fleet, because it starts from the cloud's list, not a database.

use std::sync::Arc;

use genesis_cloud::{Cloud, CloudError};
use genesis_ignition::Igniter;
use genesis_ignition::reaper::{ReapError, ReapReport};
use genesis_store::RegionalStore;

use super::reconciler::{Merge, Part, Reconciler, Retry, Scope};

/// Deletes tagged droplets that no live workspace owns.
pub struct OrphanReaper<C> {
    igniter: Arc<Igniter<C>>,
}

impl<C> OrphanReaper<C> {
    /// A reaper over `igniter`'s cloud and databases.
    pub fn new(igniter: Arc<Igniter<C>>) -> Self {
        Self { igniter }
    }
}

impl Merge for ReapReport {
    fn merge(&mut self, o: Self) {
        self.examined += o.examined;
        self.deleted.extend(o.deleted);
    }
}

/// What a cloud error asks of a reconciler: wait as long as a rate limit said, else back
/// off.
pub(crate) fn cloud_retry(e: &CloudError) -> Retry {
    match e {
        CloudError::RateLimited { retry_after } => Retry::After(*retry_after),
        _ => Retry::Backoff,
    }
}

impl<C: Cloud + 'static> Reconciler for OrphanReaper<C> {
    type Report = ReapReport;
    type Error = ReapError;
    const NAME: &'static str = "orphan-reaper";

    fn stores(&self) -> &RegionalStore {
        self.igniter.stores()
    }

    fn scope(&self) -> Scope {
        Scope::Fleet
    }

    async fn reconcile_part(&self, _fleet: &Part) -> Result<ReapReport, ReapError> {
        self.igniter.reap_orphans().await
    }

    fn noteworthy(r: &ReapReport) -> bool {
        !r.deleted.is_empty()
    }

    fn error_policy(&self, error: &ReapError) -> Retry {
        match error {
            ReapError::Cloud(e) => cloud_retry(e),
            ReapError::Store(_) => Retry::Backoff,
        }
    }
}
