//! The audit sealer (issue 25, spec 63.1): on each regional database, gives the audit rows
//! written since the last pass their place in the hash chain
//! ([`genesis_store::audit_chain`]).
//!
//! A pass seals in batches until nothing is left or [`MAX_BATCHES`] are done, so a backlog
//! (after the sealer was down) drains within a few passes without one pass holding the
//! chain's lock for long. Safe on any replica and any number of times: sealers of one
//! database queue on the chain's lock, and a sealed row is never sealed again.

use std::time::Duration;

use genesis_store::{AuditChainKey, RegionalStore, StoreError};
use serde::Serialize;

use super::reconciler::{Merge, Part, Reconciler};

/// Its name.
pub const NAME: &str = "audit-seal";
/// How often it looks: a row is sealed within this of its commit.
pub const EVERY: Duration = Duration::from_secs(5);
/// Rows per transaction.
const BATCH: i64 = 2_000;
/// Transactions per pass and database.
const MAX_BATCHES: usize = 25;

/// Seals audit rows into the chain.
pub struct AuditSealer {
    stores: RegionalStore,
    key: AuditChainKey,
}

impl AuditSealer {
    /// Over `stores`, with `key` (`server.audit_key`).
    pub fn new(stores: RegionalStore, key: AuditChainKey) -> Self {
        Self { stores, key }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct SealReport {
    /// Rows sealed.
    pub sealed: u64,
}

impl Merge for SealReport {
    fn merge(&mut self, o: Self) {
        self.sealed += o.sealed;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SealError(#[from] StoreError);

impl Reconciler for AuditSealer {
    type Report = SealReport;
    type Error = SealError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<SealReport, SealError> {
        Ok(SealReport {
            sealed: part
                .db
                .audit_seal_backlog(&self.key, BATCH, Some(MAX_BATCHES))
                .await?,
        })
    }
}
