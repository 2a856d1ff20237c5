//! The mail sender: on each regional database, claims the notifications that are due and
//! sends them ([`crate::app::notifications::Outbox::deliver`]), a few at once.
//!
//! Safe on any replica and any number of times: a claim is a lease held in the row, so two
//! senders never hold the same notification, and one that dies leaves it to come due again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use genesis_store::RegionalStore;
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};
use crate::app::notifications::{Delivery, Outbox};

/// Its name (leader lock, status, wake-up).
pub const NAME: &str = "mail";
/// How often it runs: a verification link is in the inbox within a few seconds.
pub const EVERY: Duration = Duration::from_secs(2);
/// Notifications claimed per round.
const BATCH: i64 = 50;
/// Messages in flight at once (the SMTP pool's connections).
const AT_ONCE: usize = 4;
/// Rounds per pass: a backlog drains over passes, and the driver's status stays fresh.
const ROUNDS: usize = 20;

/// Sends the outbox.
pub struct MailSender {
    stores: RegionalStore,
    outbox: Arc<Outbox>,
}

impl MailSender {
    /// The sender over `stores`' outboxes.
    pub fn new(stores: RegionalStore, outbox: Arc<Outbox>) -> Self {
        Self { stores, outbox }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct MailReport {
    /// Notifications delivered.
    pub delivered: u64,
    /// Messages sent (one per addressee).
    pub messages: u64,
    /// Failed this time; tried again later.
    pub retrying: u64,
    /// Failed for good.
    pub dead: u64,
}

impl Merge for MailReport {
    fn merge(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.messages += o.messages;
        self.retrying += o.retrying;
        self.dead += o.dead;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct MailError(#[from] genesis_store::StoreError);

impl Reconciler for MailSender {
    type Report = MailReport;
    type Error = MailError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &MailReport) -> bool {
        r.retrying > 0 || r.dead > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<MailReport, MailError> {
        let mut report = MailReport::default();
        let Some(&region) = part.regions.first() else {
            return Ok(report);
        };
        for _ in 0..ROUNDS {
            let due = part
                .db
                .notification_claim(BATCH, self.outbox.lease())
                .await?;
            let claimed = due.len();
            // Owned values in, owned futures out: the stream's futures must be `Send` for
            // every lifetime, which borrowing from `due` would not give.
            let outcomes: Vec<_> = futures_util::stream::iter(due)
                .map(|n| {
                    let (outbox, db) = (self.outbox.clone(), part.db.clone());
                    async move { outbox.deliver(&db, region, &n).await }
                })
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome? {
                    Delivery::Delivered { sent } => {
                        report.delivered += 1;
                        report.messages += sent as u64;
                    }
                    Delivery::Retrying => report.retrying += 1,
                    Delivery::Dead => report.dead += 1,
                }
            }
            if claimed < BATCH as usize {
                break;
            }
        }
        Ok(report)
    }
}
