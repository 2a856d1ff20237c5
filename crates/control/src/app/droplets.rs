//! Finding one droplet among the regional databases.

use genesis_core::DropletId;
use genesis_store::{Database, Droplet, StoreError};

use crate::{AppState, Problem};

/// The droplet `raw_id` names and the regional database that holds it; 422 for an id that
/// is not a UUID, 404 when no region has it.
pub async fn locate(state: &AppState, raw_id: &str) -> Result<(Database, Droplet), Problem> {
    let id = uuid::Uuid::parse_str(raw_id)
        .map(DropletId::from_uuid)
        .map_err(|e| Problem::invalid_field("id", e))?;
    for db in state.stores.distinct() {
        match db.droplet_get(id).await {
            Ok(droplet) => return Ok((db.clone(), droplet)),
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::not_found("droplet"))
}
