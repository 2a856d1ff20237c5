//! The webhook sender: on each regional database, claims the deliveries that are due and
//! makes one attempt at each ([`crate::app::outbound_webhooks::WebhookSender::deliver`]),
//! up to [`AT_ONCE`] in flight.
//!
//! Safe on any replica and any number of times: a claim is a lease held in the row, so two
//! senders never hold the same delivery, and one that dies leaves it to come due again
//! (its receiver deduplicates on `webhook-id`, which every attempt repeats).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use genesis_store::RegionalStore;
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};
use crate::app::outbound_webhooks::{Attempt, WebhookSender};

/// Its name (leader lock, status, wake-up).
pub const NAME: &str = "webhooks";
/// How often it runs: "immediate" is within a second.
pub const EVERY: Duration = Duration::from_secs(1);
/// Deliveries claimed per round.
const BATCH: i64 = 200;
/// Attempts in flight at once.
pub const AT_ONCE: usize = 50;
/// Rounds per pass.
const ROUNDS: usize = 50;

/// Sends webhooks.
pub struct WebhookDeliveries {
    stores: RegionalStore,
    sender: Arc<WebhookSender>,
}

impl WebhookDeliveries {
    /// The sender over `stores`' deliveries.
    pub fn new(stores: RegionalStore, sender: Arc<WebhookSender>) -> Self {
        Self { stores, sender }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct WebhookReport {
    /// Answered 2xx.
    pub delivered: u64,
    /// Failed; tried again on the schedule.
    pub retrying: u64,
    /// Failed for good.
    pub dead: u64,
}

impl Merge for WebhookReport {
    fn merge(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.dead += o.dead;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct WebhookError(#[from] genesis_store::StoreError);

impl Reconciler for WebhookDeliveries {
    type Report = WebhookReport;
    type Error = WebhookError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &WebhookReport) -> bool {
        r.dead > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<WebhookReport, WebhookError> {
        let mut report = WebhookReport::default();
        let settings = self.sender.settings();
        for _ in 0..ROUNDS {
            let due = part
                .db
                .webhook_claim(settings.clock.now(), BATCH, settings.lease)
                .await?;
            let claimed = due.len();
            // Owned values in, owned futures out (see the mail sender). The round's outcomes
            // are written in one statement: one commit per round, not per delivery.
            let outcomes: Vec<_> = futures_util::stream::iter(due)
                .map(|d| {
                    let sender = self.sender.clone();
                    async move { sender.attempt(&d).await }
                })
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
            part.db.webhook_settle(&outcomes).await?;
            for outcome in &outcomes {
                match Attempt::counted(outcome.state) {
                    Attempt::Delivered => report.delivered += 1,
                    Attempt::Retrying => report.retrying += 1,
                    Attempt::Dead => report.dead += 1,
                }
            }
            if claimed < BATCH as usize {
                break;
            }
        }
        Ok(report)
    }
}
