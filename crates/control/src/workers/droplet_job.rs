//! What every per-droplet job (reboot, heal, hibernate, standby) starts with: its payload
//! names the droplet's region and the droplet; the handler needs the region's database and
//! the droplet's current row (a job acts only on the state it was queued for).
//!
//! Payloads name a region, never a database's position in the configuration: reordering
//! `[database.regions]` between a job's queueing and its run must not send it elsewhere.

use genesis_core::{DropletId, Region};
use genesis_queue::{Claimed, JobError};
use genesis_store::{Database, Droplet, RegionalStore};
use serde::de::DeserializeOwned;

/// A payload that names its droplet.
pub(crate) trait DropletPayload: DeserializeOwned {
    /// The droplet's region (whose database holds it).
    fn region(&self) -> Region;
    /// The droplet.
    fn droplet(&self) -> uuid::Uuid;
}

/// Parses `job`'s payload and loads its database and droplet. A payload that does not parse
/// (an unknown region included) fails for good; a database error is retried.
pub(crate) async fn load<P: DropletPayload>(
    stores: &RegionalStore,
    job: &Claimed,
) -> Result<(P, Database, Droplet), JobError> {
    let p: P = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
    let db = stores.for_region(p.region()).clone();
    let droplet = db
        .droplet_get(DropletId::from_uuid(p.droplet()))
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    Ok((p, db, droplet))
}
