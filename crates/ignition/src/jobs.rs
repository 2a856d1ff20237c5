//! Ignition moves as jobs on the `ignition` queue (spec 52.1): a job advances one saga as far
//! as it can; when the saga must wait (a droplet booting, a handshake), the job ends and a
//! delayed continuation job is queued, so a waiting saga holds no worker slot.

use std::sync::Arc;

use genesis_cloud::Cloud;
use genesis_core::Region;
use genesis_queue::{Claimed, Handler, JobError};
use serde::Deserialize;
use uuid::Uuid;

use crate::executor::Advance;
use crate::igniter::Igniter;

/// The queue's name.
pub const QUEUE: &str = "ignition";

#[derive(Debug, Deserialize)]
struct Payload {
    region: String,
    ignition: Uuid,
}

/// Runs ignition jobs.
pub struct IgnitionJobs<C> {
    igniter: Arc<Igniter<C>>,
}

impl<C> IgnitionJobs<C> {
    /// Jobs driving `igniter`'s sagas.
    pub fn new(igniter: Arc<Igniter<C>>) -> Self {
        Self { igniter }
    }
}

impl<C: Cloud + 'static> Handler for IgnitionJobs<C> {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let p: Payload = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let region = Region::parse(&p.region)
            .map_err(|e| JobError::Permanent(format!("bad region: {e}")))?;
        match self.igniter.advance(region, p.ignition).await {
            Ok(Advance::Finished(phase)) => {
                tracing::debug!(ignition = %p.ignition, %phase, "saga finished");
                Ok(())
            }
            Ok(Advance::Wait(d)) => self
                .igniter
                .schedule(region, p.ignition, d)
                .await
                .map_err(|e| JobError::Retry(e.to_string())),
            Err(genesis_store::StoreError::NotFound { what }) => {
                Err(JobError::Permanent(format!("{what} not found")))
            }
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}
