//! The Genesis Wallet (spec 58): the kill-switch flow around every managed call, deposits,
//! and the alerts of 58.2.
//!
//! A managed call is priced from the service matrix, then reserved in the Redis cache
//! ([`genesis_queue::wallet`]) in one atomic step that never takes the balance below zero.
//! The upstream is called only with the money held. Success posts the real cost, failure
//! voids the hold; either is journaled in the same step, and the syncer
//! ([`super::wallet_sync`]) writes the journal to the ledger. Credits (deposits, top-ups,
//! refunds) go to the ledger first, and to the cache once the ledger has them.
//!
//! A reservation the balance does not cover is refused (402), the tenant's managed services
//! are halted (the kill-switch, audited and notified), and stay halted until money arrives.
//! With `kill_switch_enabled` off, the call goes ahead anyway and its cost is counted as
//! unbilled: metering stays on, enforcement is off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use genesis_core::money::{Millicents, TransferKind};
use genesis_core::services::{Service, ServiceMatrix};
use genesis_core::{Region, WorkspaceId};
use genesis_queue::limits::RateLimits;
use genesis_queue::wallet::{Reserve, Settle, WalletCache};
use genesis_store::ledger::{AlertLevel, NewTransfer, Phase, Refusal, TransferOutcome};
use genesis_store::{Database, RegionalStore};
use uuid::Uuid;

use super::payments::PaymentProvider;
use crate::Problem;

/// The alert thresholds of spec 58.2.
pub const LOW_5: Millicents = Millicents::from_dollars(5);
/// The second threshold.
pub const LOW_1: Millicents = Millicents::from_dollars(1);

/// How the wallet behaves.
#[derive(Debug, Clone)]
pub struct WalletSettings {
    /// Refuse calls the balance does not cover (spec 58.2). Off: meter only.
    pub kill_switch_enabled: bool,
    /// How long a reservation may wait for its post or void before it is expired. Longer
    /// than any upstream call may take.
    pub hold_timeout_s: i32,
    /// The price list.
    pub matrix: Arc<ServiceMatrix>,
}

impl Default for WalletSettings {
    fn default() -> Self {
        Self {
            kill_switch_enabled: true,
            hold_timeout_s: 120,
            matrix: Arc::new(ServiceMatrix::builtin().clone()),
        }
    }
}

/// How many journal entries a settlement that finds no hold looks through for its own
/// (the syncer keeps journals far shorter; a longer backlog falls back to the ledger, and
/// the drift check puts right what that gives back twice).
const JOURNAL_SCAN: usize = 20_000;

/// Money held for one managed call, until [`Wallets::post`] or [`Wallets::void`].
#[derive(Debug, Clone)]
pub struct Hold {
    /// The wallet.
    pub workspace: WorkspaceId,
    /// The pending transfer's id.
    pub id: Uuid,
    /// Its type.
    pub kind: TransferKind,
    /// What is held.
    pub amount: Millicents,
    /// What it is for (the reservation's reference): a settlement that must go to the ledger
    /// itself writes the very transfer the syncer would.
    pub reference: String,
    /// Nothing is held: the kill-switch is off and the balance did not cover the call.
    pub unbilled: bool,
}

/// The wallets of every workspace: the cache, the ledgers, the rules.
pub struct Wallets {
    cache: WalletCache,
    limits: RateLimits,
    stores: RegionalStore,
    settings: WalletSettings,
    regions: Mutex<HashMap<Uuid, Region>>,
    /// The provider automatic top-ups charge, and the client that calls it.
    payments: Option<(PaymentProvider, reqwest::Client)>,
    /// Each wallet's automatic top-up threshold (`None`: off), remembered for
    /// [`TOPUP_SETTINGS_TTL`] so that spending does not read the database on every call.
    topup_thresholds: Mutex<HashMap<Uuid, (Instant, Option<Millicents>)>>,
    /// When this process last asked the database for a top-up claim, per wallet: a wallet
    /// under its threshold is not asked about on every call while its top-up is under way.
    topup_asked: Mutex<HashMap<Uuid, Instant>>,
    /// Workspaces' own per-tenant limits, remembered ([`super::limit_overrides`]).
    overrides: super::limit_overrides::OverrideCache,
}

/// How long after asking for a top-up claim this process waits before asking again for the
/// same wallet.
pub const TOPUP_ASK_INTERVAL: Duration = Duration::from_secs(20);

/// How long a wallet's automatic top-up settings are remembered by a process that did not
/// change them.
pub const TOPUP_SETTINGS_TTL: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Wallets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallets")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn redis_down(e: genesis_queue::QueueError) -> Problem {
    tracing::warn!(error = %e, "wallet cache unavailable");
    Problem::unavailable("the wallet cannot be checked right now; try again shortly")
}

/// 402: the balance does not cover the call, or the kill-switch holds the workspace.
pub fn payment_required(detail: impl std::fmt::Display) -> Problem {
    Problem::with_status(axum::http::StatusCode::PAYMENT_REQUIRED, detail)
}

impl Wallets {
    /// Wallets over `cache` and the ledgers in `stores`.
    pub fn new(cache: WalletCache, stores: RegionalStore, settings: WalletSettings) -> Self {
        Self {
            limits: cache.rate_limits(),
            cache,
            stores,
            settings,
            regions: Mutex::new(HashMap::new()),
            payments: None,
            topup_thresholds: Mutex::new(HashMap::new()),
            topup_asked: Mutex::new(HashMap::new()),
            overrides: Default::default(),
        }
    }

    /// Wallets whose automatic top-ups charge through `provider`.
    pub fn with_payments(mut self, provider: PaymentProvider, http: reqwest::Client) -> Self {
        self.payments = Some((provider, http));
        self
    }

    /// What this process remembers of workspaces' own limits.
    pub(super) fn overrides(&self) -> &super::limit_overrides::OverrideCache {
        &self.overrides
    }

    /// Forgets what this process remembers of `workspace`'s automatic top-up settings
    /// (they were changed).
    pub fn forget_topup_settings(&self, workspace: WorkspaceId) {
        if let Ok(mut m) = self.topup_thresholds.lock() {
            m.remove(&workspace.as_uuid());
        }
        if let Ok(mut m) = self.topup_asked.lock() {
            m.remove(&workspace.as_uuid());
        }
    }

    /// Starts an automatic top-up in the background when `workspace`'s settings want one at
    /// `available`. The database decides, once, among every caller that gets here at the
    /// same time ([`genesis_store::Database::wallet_topup_claim`]).
    pub async fn maybe_top_up(&self, workspace: WorkspaceId, available: Millicents) {
        let Some((provider, http)) = &self.payments else {
            return;
        };
        let remembered = self.topup_thresholds.lock().ok().and_then(|m| {
            m.get(&workspace.as_uuid())
                .filter(|(at, _)| at.elapsed() < TOPUP_SETTINGS_TTL)
                .map(|(_, t)| *t)
        });
        let Ok(db) = self.ledger_of(workspace).await else {
            return;
        };
        let threshold = match remembered {
            Some(t) => t,
            None => {
                let t = match db.wallet_state(workspace).await {
                    Ok(Some(s)) if s.auto_topup_enabled => Some(s.auto_topup_threshold),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "top-up settings not read");
                        return;
                    }
                };
                if let Ok(mut m) = self.topup_thresholds.lock() {
                    if m.len() > 100_000 {
                        m.clear();
                    }
                    m.insert(workspace.as_uuid(), (Instant::now(), t));
                }
                t
            }
        };
        if threshold.is_none_or(|t| available >= t) {
            return;
        }
        let ask = self.topup_asked.lock().is_ok_and(|mut m| {
            let recently = m
                .get(&workspace.as_uuid())
                .is_some_and(|at| at.elapsed() < TOPUP_ASK_INTERVAL);
            if !recently {
                if m.len() > 100_000 {
                    m.clear();
                }
                m.insert(workspace.as_uuid(), Instant::now());
            }
            !recently
        });
        if !ask {
            return;
        }
        let (provider, http) = (provider.clone(), http.clone());
        tokio::spawn(async move {
            if let Err(p) =
                super::payments::auto_top_up(&db, &provider, &http, workspace, available).await
            {
                tracing::warn!(workspace = %workspace, detail = %p.detail, "automatic top-up not started");
            }
        });
    }

    /// The cache.
    pub fn cache(&self) -> &WalletCache {
        &self.cache
    }

    /// The rate-limit registry (spec 59.2) on the wallet's Redis.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The settings.
    pub fn settings(&self) -> &WalletSettings {
        &self.settings
    }

    /// The database holding `workspace`'s ledger (its region's), remembered.
    pub async fn ledger_of(&self, workspace: WorkspaceId) -> Result<Database, Problem> {
        Ok(self.shard_of(workspace).await?.1)
    }

    /// Which of the distinct databases holds `workspace`'s ledger, and that database.
    pub async fn shard_of(&self, workspace: WorkspaceId) -> Result<(usize, Database), Problem> {
        let known = self
            .regions
            .lock()
            .ok()
            .and_then(|m| m.get(&workspace.as_uuid()).copied());
        let region = match known {
            Some(region) => region,
            None => {
                let (ws, _) = self.stores.workspace_find(workspace).await?;
                if let Ok(mut m) = self.regions.lock() {
                    m.insert(workspace.as_uuid(), ws.region);
                }
                ws.region
            }
        };
        Ok((
            self.stores.index_of(region),
            self.stores.for_region(region).clone(),
        ))
    }

    /// Loads `workspace`'s wallet into the cache from its ledger (opening the wallet if it
    /// has none). Nothing changes when another caller loaded it first.
    pub async fn load(&self, workspace: WorkspaceId) -> Result<(), Problem> {
        let db = self.ledger_of(workspace).await?;
        let load = match db.wallet_load(workspace).await? {
            Some(l) => l,
            None => {
                db.wallet_open(workspace).await?;
                db.wallet_load(workspace)
                    .await?
                    .ok_or_else(Problem::internal)?
            }
        };
        self.cache
            .load(
                workspace.as_uuid(),
                load.available.get(),
                load.credits_posted,
                load.halted,
                load.synced_seq,
            )
            .await
            .map_err(redis_down)?;
        Ok(())
    }

    /// The per-call price of `units` operations of `service`.
    pub fn price(service: &Service, units: u32) -> Result<(Millicents, TransferKind), Problem> {
        let (price, _, kind) = service
            .per_call()
            .ok_or_else(|| Problem::not_found(&format!("managed service {:?}", service.id)))?;
        let total = price
            .checked_mul(i64::from(units.max(1)))
            .ok_or_else(|| Problem::invalid_field("units", "too many units at once"))?;
        Ok((total, kind))
    }

    /// Steps 1 to 3 of spec 58.2: holds `amount` for one call, or refuses it (402) and
    /// halts the workspace's managed services.
    pub async fn reserve(
        &self,
        workspace: WorkspaceId,
        kind: TransferKind,
        amount: Millicents,
        reference: &str,
    ) -> Result<Hold, Problem> {
        let id = Uuid::now_v7();
        let mut loaded = false;
        loop {
            let outcome = self
                .cache
                .reserve(
                    workspace.as_uuid(),
                    id,
                    amount.get(),
                    self.settings.hold_timeout_s,
                    kind.code(),
                    reference,
                )
                .await
                .map_err(redis_down)?;
            let hold = Hold {
                workspace,
                id,
                kind,
                amount,
                reference: reference.to_owned(),
                unbilled: false,
            };
            match outcome {
                Reserve::Reserved(left) | Reserve::AlreadyHeld(left) => {
                    self.after_spending(workspace, Millicents(left), amount)
                        .await;
                    return Ok(hold);
                }
                Reserve::NotLoaded if !loaded => {
                    self.load(workspace).await?;
                    loaded = true;
                }
                Reserve::NotLoaded => {
                    return Err(Problem::unavailable(
                        "the wallet could not be loaded; try again shortly",
                    ));
                }
                Reserve::Short(balance) | Reserve::Halted(balance) => {
                    let balance = Millicents(balance);
                    metrics::counter!("genesis_wallet_refusals_total", "kind" => kind.code())
                        .increment(1);
                    if !self.settings.kill_switch_enabled {
                        metrics::counter!("genesis_wallet_unbilled_millicents_total")
                            .increment(amount.get().unsigned_abs());
                        self.raise(workspace, AlertLevel::Empty, balance, false)
                            .await;
                        return Ok(Hold {
                            unbilled: true,
                            ..hold
                        });
                    }
                    self.halt(workspace, balance).await;
                    self.maybe_top_up(workspace, balance).await;
                    return Err(payment_required(format!(
                        "the wallet holds {balance}, and this call costs {amount}: managed \
                         services are paused until the wallet is topped up"
                    )));
                }
            }
        }
    }

    /// Turns the kill-switch on: in the cache at once, and in the database with its audit
    /// and notification (once).
    async fn halt(&self, workspace: WorkspaceId, balance: Millicents) {
        if let Err(e) = self.cache.set_halted(workspace.as_uuid(), true).await {
            tracing::warn!(error = %e, "kill-switch not set in the cache");
        }
        self.raise(workspace, AlertLevel::Empty, balance, true)
            .await;
    }

    /// Records an alert level (notification and audit), logging what fails: the refusal or
    /// the call it is about must not wait for it.
    async fn raise(&self, workspace: WorkspaceId, level: AlertLevel, left: Millicents, halt: bool) {
        let result = match self.ledger_of(workspace).await {
            Ok(db) => db
                .wallet_alert(workspace, level, left, halt, "system:wallet")
                .await
                .map_err(Problem::from),
            Err(p) => Err(p),
        };
        if let Err(p) = result {
            tracing::warn!(workspace = %workspace, detail = %p.detail, "wallet alert not recorded");
        }
    }

    /// The alerts of spec 58.2 when this spending crossed $5 or $1.
    async fn after_spending(&self, workspace: WorkspaceId, left: Millicents, spent: Millicents) {
        let before = left.checked_add(spent).unwrap_or(left);
        for (threshold, level) in [(LOW_1, AlertLevel::Low1), (LOW_5, AlertLevel::Low5)] {
            if before >= threshold && left < threshold {
                self.raise(workspace, level, left, false).await;
                break;
            }
        }
        self.maybe_top_up(workspace, left).await;
    }

    /// Step 3's end on success: posts what the call really cost (at most what was held).
    pub async fn post(&self, hold: &Hold, cost: Millicents) -> Result<(), Problem> {
        self.post_as(hold, Uuid::now_v7(), cost).await
    }

    /// [`Wallets::post`] as settlement `id`: a retry with the same id posts once.
    pub async fn post_as(&self, hold: &Hold, id: Uuid, cost: Millicents) -> Result<(), Problem> {
        self.settle(hold, id, Some(cost)).await
    }

    /// Step 3's end on failure: gives the held money back.
    pub async fn void(&self, hold: &Hold) -> Result<(), Problem> {
        self.void_as(hold, Uuid::now_v7()).await
    }

    /// [`Wallets::void`] as settlement `id`: a retry with the same id voids once.
    pub async fn void_as(&self, hold: &Hold, id: Uuid) -> Result<(), Problem> {
        self.settle(hold, id, None).await
    }

    /// Posts `cost` of `hold` (at most what it holds), or voids it for `None`, in the cache;
    /// in the ledger when the cache no longer has the hold.
    async fn settle(&self, hold: &Hold, id: Uuid, cost: Option<Millicents>) -> Result<(), Problem> {
        if hold.unbilled {
            return Ok(());
        }
        let ws = hold.workspace.as_uuid();
        let settled = match cost {
            Some(c) => {
                self.cache
                    .post(ws, hold.id, id, c.min(hold.amount).get())
                    .await
            }
            None => self.cache.void(ws, hold.id, id).await,
        }
        .map_err(redis_down)?;
        match settled {
            Settle::Done(_) => Ok(()),
            Settle::MoreThanHeld(_) => Err(Problem::internal()),
            Settle::NotLoaded | Settle::NoHold if self.cache_settled(hold).await => Ok(()),
            Settle::NotLoaded | Settle::NoHold => {
                let (phase, amount) = match cost {
                    Some(c) => (Phase::Post { pending: hold.id }, c.min(hold.amount)),
                    None => (Phase::Void { pending: hold.id }, Millicents::ZERO),
                };
                self.settle_in_ledger(hold, id, phase, amount).await
            }
        }
    }

    /// Whether the cache settled `hold` itself and its journal still carries that settlement
    /// to the ledger: a caller retrying after a lost answer, which has nothing left to do.
    /// Going to the ledger instead would give the unposted rest of the hold back to the
    /// cache a second time. An entry leaves the journal only once the ledger has it, so a
    /// settlement not found here is in the ledger, or was never made (a flush lost it).
    /// This reads the journal, which only this rare path does.
    async fn cache_settled(&self, hold: &Hold) -> bool {
        let id = hold.id.to_string();
        match self
            .cache
            .snapshot(hold.workspace.as_uuid(), JOURNAL_SCAN)
            .await
        {
            Ok(Some(snap)) => snap.journal.iter().any(|e| e.op != "R" && e.hold == id),
            _ => false,
        }
    }

    /// A settlement whose hold the cache no longer has (a flush lost it, the ledger expired
    /// it, or this is a retry of a settlement the cache made): straight to the ledger. A post
    /// whose reservation never reached the ledger is charged there directly if the balance
    /// still covers it (otherwise the platform bears it, counted), as the one posted transfer
    /// the syncer writes for a reservation and its post: same id, amount and reference. So
    /// when the cache did post it and the syncer writes it later, the ledger finds it written
    /// and nothing is refused or charged twice.
    async fn settle_in_ledger(
        &self,
        hold: &Hold,
        id: Uuid,
        phase: Phase,
        cost: Millicents,
    ) -> Result<(), Problem> {
        let db = self.ledger_of(hold.workspace).await?;
        let stored = db.ledger_get(hold.id).await?;
        if stored.as_ref().is_some_and(|t| t.phase == "single") {
            // The syncer wrote the reservation and its post as one posted transfer (or a
            // lost reservation was charged so before): this call is settled already.
            return Ok(());
        }
        let pending_known = stored.is_some();
        let transfer = if pending_known {
            NewTransfer {
                id,
                workspace: hold.workspace,
                kind: hold.kind,
                amount: cost,
                phase,
                reference: None,
            }
        } else if matches!(phase, Phase::Post { .. }) {
            NewTransfer {
                id: hold.id,
                workspace: hold.workspace,
                kind: hold.kind,
                amount: cost,
                phase: Phase::Single,
                reference: Some(hold.reference.clone()).filter(|r| !r.is_empty()),
            }
        } else {
            return Ok(()); // A void of a reservation the ledger never had: nothing to undo.
        };
        match db.ledger_transfer(transfer, "system:wallet").await? {
            Ok(TransferOutcome::Created(t)) => {
                // The ledger released what the post did not take, and the cache (reloaded
                // with the whole hold counted) must too; a wallet reloaded in between is
                // put right by the drift check.
                let back = hold.amount.get() - t.amount.get();
                if pending_known && back > 0 {
                    let _ = self
                        .cache
                        .credit(hold.workspace.as_uuid(), back, i64::MAX, false)
                        .await;
                }
                Ok(())
            }
            Ok(TransferOutcome::Exists(_)) => Ok(()),
            Err(Refusal::AlreadyResolved) => {
                metrics::counter!("genesis_wallet_late_settlements_total").increment(1);
                tracing::warn!(hold = %hold.id, "a settlement came after its reservation expired");
                Ok(())
            }
            Err(refusal) => {
                metrics::counter!("genesis_wallet_unbilled_millicents_total")
                    .increment(cost.get().unsigned_abs());
                tracing::warn!(hold = %hold.id, %refusal, "a call's cost could not be charged");
                Ok(())
            }
        }
    }

    /// Credits `workspace`'s wallet: the ledger first (idempotent on `id`), then the cache.
    pub async fn credit(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        kind: TransferKind,
        amount: Millicents,
        reference: Option<String>,
        actor: &str,
    ) -> Result<TransferOutcome, Problem> {
        if amount.get() <= 0 {
            return Err(Problem::invalid_field("amount", "must be above zero"));
        }
        let db = self.ledger_of(workspace).await?;
        db.wallet_open(workspace).await?;
        let transfer = NewTransfer {
            id,
            workspace,
            kind,
            amount,
            phase: Phase::Single,
            reference,
        };
        let (outcome, mark) = match db.wallet_credit(transfer, actor).await? {
            Ok(done) => done,
            Err(Refusal::ExistsWithDifferentFields) => {
                return Err(Problem::conflict(
                    "id",
                    "a different transfer with this id exists",
                ));
            }
            Err(refusal) => return Err(Problem::invalid_field("amount", refusal)),
        };
        if let Some(mark) = mark {
            // The cache learns of it now, or from the ledger at its next load.
            let cached = self
                .cache
                .credit(workspace.as_uuid(), amount.get(), mark, true)
                .await;
            if let Err(e) = cached {
                tracing::warn!(error = %e, "credit not applied to the cache; the check will");
            }
        }
        // Money in calls off a deletion for non-payment. Should this fail, the payment
        // stands, and calling the deletion off by hand finds it.
        if matches!(outcome, TransferOutcome::Created(_))
            && matches!(kind, TransferKind::Deposit | TransferKind::AutoTopup)
            && let Err(p) = super::deletion::paid(&db, workspace, actor).await
        {
            tracing::warn!(%workspace, detail = %p.detail, "a payment did not call off a non-payment deletion");
        }
        Ok(outcome)
    }
}
