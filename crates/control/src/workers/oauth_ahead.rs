//! OAuth refreshes ahead of expiry (spec 65.1: Gmail and Sheets, 14 days before expiry;
//! 65.2: a daily pass queues the jobs on the `security` queue, 50 at once).
//!
//! Each pass reads every serving droplet's latest credential inventory (the expiries its
//! sidecar noted when it injected or rotated each token) and queues a refresh for each token
//! that expires within [`AHEAD`] but has not expired yet. An expired one is the watchdog's
//! (`credential_expired`): splitting the two keeps a token from being refreshed twice by
//! both. The refresh itself is the heal job's (provider, vault, ROTATE_CREDENTIAL, audited
//! `CREDENTIAL_ROTATED`), run by the fleet's workers under the queue's governor.
//!
//! A job's id names the droplet, the credential and the day, so passes within a day (a
//! restart, a wake from the API, another replica) queue it once, and a refresh that failed
//! for good is tried again the next day. A hibernated droplet sends no inventory and is
//! skipped: its tokens are the watchdog's after the wake.

use std::time::Duration;

use genesis_core::drift::DriftKind;
use genesis_protocol::CredentialState;
use genesis_queue::{AddOutcome, Bus};
use genesis_store::{RegionalStore, StoreError};
use serde::Serialize;

use super::heals::{HealPayload, SECURITY_QUEUE};
use super::reconciler::{Merge, Part, Reconciler};
use crate::clock::Clock;

/// Its name.
pub const NAME: &str = "oauth-ahead";
/// How often it looks (spec 65.2: a daily cron).
pub const EVERY: Duration = Duration::from_secs(86_400);
/// How far ahead of its expiry a token is refreshed (spec 65.1: 14 days).
pub const AHEAD: chrono::Duration = chrono::Duration::days(14);

/// The credentials in `inventory` whose token expires after `now` and no later than
/// `now + ahead` (Unix seconds), in the inventory's order.
pub fn expiring(
    inventory: &[CredentialState],
    now: i64,
    ahead: chrono::Duration,
) -> Vec<&CredentialState> {
    let horizon = now.saturating_add(ahead.num_seconds());
    inventory
        .iter()
        .filter(|c| c.expires_at.is_some_and(|e| e > now && e <= horizon))
        .collect()
}

/// Queues the refreshes that are due.
pub struct OAuthAhead {
    stores: RegionalStore,
    bus: Bus,
    clock: Clock,
}

impl OAuthAhead {
    /// Over every regional database, queueing on `bus` (which must know the `security`
    /// queue), with the day and the horizon read from `clock`.
    pub fn new(stores: RegionalStore, bus: Bus, clock: Clock) -> Self {
        Self { stores, bus, clock }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AheadReport {
    /// Droplets whose inventory was read.
    pub droplets: usize,
    /// Tokens expiring within the horizon.
    pub expiring: usize,
    /// Refresh jobs queued (new ones only).
    pub queued: usize,
}

impl Merge for AheadReport {
    fn merge(&mut self, o: Self) {
        self.droplets += o.droplets;
        self.expiring += o.expiring;
        self.queued += o.queued;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum AheadError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] genesis_queue::QueueError),
}

impl Reconciler for OAuthAhead {
    type Report = AheadReport;
    type Error = AheadError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &AheadReport) -> bool {
        r.queued > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<AheadReport, AheadError> {
        let now = self.clock.now().timestamp();
        let day = now.div_euclid(86_400);
        let mut report = AheadReport::default();
        for watched in part.db.droplets_watched(10_000).await? {
            report.droplets += 1;
            let inventory: Vec<CredentialState> =
                serde_json::from_value(watched.heartbeat["credentials"].clone())
                    .unwrap_or_default();
            for c in expiring(&inventory, now, AHEAD) {
                report.expiring += 1;
                let droplet = &watched.droplet;
                let payload = HealPayload {
                    region: droplet.region,
                    droplet: droplet.id.as_uuid(),
                    kind: DriftKind::CredentialExpired,
                    subject: c.id.clone(),
                    ahead: true,
                };
                let job_id = format!("oauth-ahead-{}-{}-{day}", droplet.id, c.id);
                let payload = serde_json::to_string(&payload).unwrap_or_default();
                if self
                    .bus
                    .add(SECURITY_QUEUE, &job_id, &payload, Duration::ZERO)
                    .await?
                    == AddOutcome::Created
                {
                    report.queued += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(id: &str, expires_at: Option<i64>) -> CredentialState {
        CredentialState {
            id: id.into(),
            name: format!("{id} credential"),
            kind: "gmailOAuth2".into(),
            expires_at,
        }
    }

    #[test]
    fn only_tokens_expiring_within_the_horizon_and_not_yet_expired_are_due() {
        let now = 1_800_000_000;
        let day = 86_400;
        let inventory = [
            cred("expired", Some(now - 1)),
            cred("now", Some(now)),
            cred("in-an-hour", Some(now + 3_600)),
            cred("in-14-days", Some(now + 14 * day)),
            cred("in-15-days", Some(now + 15 * day)),
            cred("api-key", None),
        ];
        let due: Vec<&str> = expiring(&inventory, now, AHEAD)
            .into_iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(due, ["in-an-hour", "in-14-days"]);
    }
}
