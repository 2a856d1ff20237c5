//! What every per-droplet job (reboot, heal, hibernate) starts with: its payload names a
//! database of the regional set by index and a droplet in it; the handler needs both, and
//! the droplet's current row (a job acts only on the state it was queued for).

use genesis_core::DropletId;
use genesis_queue::{Claimed, JobError};
use genesis_store::{Database, Droplet, RegionalStore};
use serde::de::DeserializeOwned;

/// A payload that names its droplet.
pub(crate) trait DropletPayload: DeserializeOwned {
    /// Index in the regional store's distinct databases.
    fn db(&self) -> usize;
    /// The droplet.
    fn droplet(&self) -> uuid::Uuid;
}

/// Parses `job`'s payload and loads its database and droplet. A payload that does not parse
/// or names no database fails for good; a database error is retried.
pub(crate) async fn load<P: DropletPayload>(
    stores: &RegionalStore,
    job: &Claimed,
) -> Result<(P, Database, Droplet), JobError> {
    let p: P = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
    let db = stores
        .distinct()
        .get(p.db())
        .ok_or_else(|| JobError::Permanent(format!("no database #{}", p.db())))?
        .clone();
    let droplet = db
        .droplet_get(DropletId::from_uuid(p.droplet()))
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    Ok((p, db, droplet))
}
