//! The command-key rotation's schedule (spec 65.1), one step per pass: see
//! [`crate::app::command_keys`] for the rotation itself.
//!
//! Not through the `security` queue: a step touches only our own databases (the keys reach
//! sidecars in heartbeat answers), so a queue would add a hop and nothing else. One pass
//! covers the fleet, since the keys live in the coordinator and a switch waits on every
//! region's droplets.

use std::time::Duration;

use genesis_store::RegionalStore;

use super::reconciler::{Merge, Part, Reconciler, Scope};
use crate::app::command_keys::{CommandKeyError, CommandKeys, KeyProgress};

/// Its name.
pub const NAME: &str = "command-keys";
/// How often it looks: a switch follows the last confirmation within this, plus a
/// heartbeat.
pub const EVERY: Duration = Duration::from_secs(10);
/// Who its audit rows name.
const ACTOR: &str = "command-key-rotation";

/// Runs the rotation's steps.
pub struct CommandKeyRotation {
    keys: CommandKeys,
    stores: RegionalStore,
}

impl CommandKeyRotation {
    /// The schedule of `keys` over `stores`.
    pub fn new(keys: CommandKeys, stores: RegionalStore) -> Self {
        Self { keys, stores }
    }
}

/// What one pass did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RotationReport(pub KeyProgress);

impl Merge for RotationReport {
    fn merge(&mut self, o: Self) {
        // One part (the fleet): the last word is the whole report.
        *self = o;
    }
}

impl Reconciler for CommandKeyRotation {
    type Report = RotationReport;
    type Error = CommandKeyError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn scope(&self) -> Scope {
        Scope::Fleet
    }

    fn noteworthy(r: &RotationReport) -> bool {
        r.0.began.is_some() || r.0.switched.is_some()
    }

    async fn reconcile_part(&self, _part: &Part) -> Result<RotationReport, CommandKeyError> {
        Ok(RotationReport(self.keys.step(ACTOR).await?))
    }
}
