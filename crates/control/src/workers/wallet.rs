//! The wallet's two reconcilers (spec 58.3): the syncer writes the cache's journal to the
//! ledgers at least every second (the spec asks for every 10 s at most), and the check
//! expires unsettled reservations and proves the cache equals the ledger on each database.
//! The steps are [`crate::app::wallet_sync`]'s; these only pace them.

use std::sync::Arc;

use genesis_store::RegionalStore;

use super::reconciler::{Merge, Part, Reconciler, Scope};
use crate::Problem;
use crate::app::wallet::Wallets;
use crate::app::wallet_sync::{self, CheckReport, SyncReport};

/// How often the syncer runs.
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often the check runs.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.detail)]
pub struct WalletError(pub Problem);

impl Merge for SyncReport {
    fn merge(&mut self, o: Self) {
        self.wallets += o.wallets;
        self.transfers += o.transfers;
        self.refused += o.refused;
        self.max_lag_ms = self.max_lag_ms.max(o.max_lag_ms);
        self.lags_ms.extend(o.lags_ms);
    }
}

impl Merge for CheckReport {
    fn merge(&mut self, o: Self) {
        self.expired += o.expired;
        self.compared += o.compared;
        self.drifted += o.drifted;
    }
}

/// Writes wallet journals to the ledgers.
pub struct WalletSyncer {
    wallets: Arc<Wallets>,
    stores: RegionalStore,
}

impl WalletSyncer {
    /// The syncer of `wallets`.
    pub fn new(wallets: Arc<Wallets>, stores: RegionalStore) -> Self {
        Self { wallets, stores }
    }
}

impl Reconciler for WalletSyncer {
    type Report = SyncReport;
    type Error = WalletError;
    const NAME: &'static str = "wallet-sync";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    /// One global set of wallets to sync, spread over the databases by the pass itself.
    fn scope(&self) -> Scope {
        Scope::Fleet
    }

    fn noteworthy(r: &SyncReport) -> bool {
        r.refused > 0
    }

    async fn reconcile_part(&self, _part: &Part) -> Result<SyncReport, WalletError> {
        let mut total = SyncReport::default();
        // Until the set is empty, so one pass catches up with a burst.
        loop {
            let r = wallet_sync::sync(&self.wallets)
                .await
                .map_err(WalletError)?;
            let done = r.wallets == 0;
            total.merge(r);
            if done {
                return Ok(total);
            }
        }
    }
}

/// Expires reservations and compares the cache with the ledgers.
pub struct WalletCheck {
    wallets: Arc<Wallets>,
    stores: RegionalStore,
}

impl WalletCheck {
    /// The check of `wallets`.
    pub fn new(wallets: Arc<Wallets>, stores: RegionalStore) -> Self {
        Self { wallets, stores }
    }
}

impl Reconciler for WalletCheck {
    type Report = CheckReport;
    type Error = WalletError;
    const NAME: &'static str = "wallet-check";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    fn noteworthy(r: &CheckReport) -> bool {
        r.drifted > 0
    }

    async fn reconcile_part(&self, part: &Part) -> Result<CheckReport, WalletError> {
        wallet_sync::check(&self.wallets, &part.db)
            .await
            .map_err(WalletError)
    }
}
