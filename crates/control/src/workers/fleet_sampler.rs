//! The fleet sampler: once a minute, each regional database records how many droplets it
//! has per region and state, and forgets samples older than 30 days. God Mode's metrics
//! page draws fleet states over time from these samples.
//!
//! Safe on any replica and any number of times: a sample is keyed by its minute, so a
//! second pass in the same minute writes nothing.

use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};

/// How often the sampler runs.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Records fleet states over time.
pub struct FleetSampler {
    stores: RegionalStore,
}

impl FleetSampler {
    /// A sampler over these databases.
    pub fn new(stores: RegionalStore) -> Self {
        Self { stores }
    }
}

/// What one pass wrote.
#[derive(Debug, Default, Serialize)]
pub struct SampleReport {
    /// Rows written (region × state pairs; 0 when this minute was already sampled).
    pub rows: u64,
}

impl Merge for SampleReport {
    fn merge(&mut self, o: Self) {
        self.rows += o.rows;
    }
}

impl Reconciler for FleetSampler {
    type Report = SampleReport;
    type Error = StoreError;
    const NAME: &'static str = "fleet-sampler";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<SampleReport, StoreError> {
        Ok(SampleReport {
            rows: part.db.fleet_sample().await?,
        })
    }
}
