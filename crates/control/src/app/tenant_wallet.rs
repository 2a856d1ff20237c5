//! The wallet as its tenant sees and steers it (spec 58.1): the figures, the money that
//! moved, the card, and the automatic top-up settings. The dashboard's wallet page and the
//! tenant API both read it here.

use genesis_core::money::{Direction, Millicents};
use genesis_store::Database;
use genesis_store::ledger::{AlertLevel, Transfer, WalletBalance, WalletState};
use serde::Serialize;

use super::payments::MIN_TOP_UP;
use super::tenant_access::Access;
use crate::{AppState, Problem};

/// A wallet's figures and settings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalletView {
    /// Posted credits less posted debits, in millicents (thousandths of a cent).
    pub balance_millicents: i64,
    /// What can be spent now: the balance less what calls in flight hold.
    pub available_millicents: i64,
    /// Everything ever deposited or topped up.
    pub lifetime_deposits_millicents: i64,
    /// Everything ever spent, less refunds.
    pub lifetime_usage_millicents: i64,
    /// The balance for people (`$12.345`).
    pub balance: String,
    /// The lowest alert reached since it was last above $5: ok, low_5, low_1, empty.
    pub alert_level: String,
    /// Managed services are halted (the kill-switch).
    pub halted: bool,
    /// Recharge automatically.
    pub auto_topup_enabled: bool,
    /// Below this available balance (millicents).
    pub auto_topup_threshold_millicents: i64,
    /// By this much (millicents).
    pub auto_topup_amount_millicents: i64,
    /// The saved card (`visa ending 4242`), if any.
    pub card: Option<String>,
}

impl WalletView {
    fn of(balance: &WalletBalance, state: &WalletState) -> Self {
        Self {
            balance_millicents: balance.balance.get(),
            available_millicents: balance.available.get(),
            lifetime_deposits_millicents: balance.lifetime_deposits.get(),
            lifetime_usage_millicents: balance.lifetime_usage.get(),
            balance: balance.balance.to_string(),
            alert_level: state.alert_level.code().to_owned(),
            halted: state.halted_at.is_some(),
            auto_topup_enabled: state.auto_topup_enabled,
            auto_topup_threshold_millicents: state.auto_topup_threshold.get(),
            auto_topup_amount_millicents: state.auto_topup_amount.get(),
            card: match (&state.card_brand, &state.card_last4) {
                (Some(b), Some(l)) => Some(format!("{b} ending {l}")),
                _ => None,
            },
        }
    }

    /// The dashboard's banner (spec 58.2: at $1, and when the kill-switch holds).
    pub fn banner(&self) -> Option<String> {
        if self.halted {
            return Some(
                "Managed services are paused: your wallet is empty. Top up to resume them.".into(),
            );
        }
        (self.alert_level == AlertLevel::Low1.code()
            || self.alert_level == AlertLevel::Empty.code())
        .then(|| {
            format!(
                "Your wallet holds {}: managed services stop when it is empty.",
                Millicents(self.available_millicents)
            )
        })
    }
}

/// One movement of money, as the tenant reads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalletLine {
    /// The ledger's order (page with `before`).
    pub seq: i64,
    /// The transaction type of spec 58.1 (DEPOSIT, CSE_SEARCH, …).
    pub kind: String,
    /// Signed: credits positive, charges negative (millicents).
    pub amount_millicents: i64,
    /// For people (`-$0.005`).
    pub amount: String,
    /// What it was for.
    pub reference: Option<String>,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl WalletLine {
    fn of(t: &Transfer) -> Self {
        let signed = match t.kind.direction() {
            Direction::Credit => t.amount.get(),
            Direction::Debit => -t.amount.get(),
        };
        let shown = Millicents(signed.abs());
        Self {
            seq: t.seq,
            kind: t.kind.code().to_owned(),
            amount_millicents: signed,
            amount: if signed < 0 {
                format!("-{shown}")
            } else {
                format!("+{shown}")
            },
            reference: t.reference.clone(),
            at: t.created_at,
        }
    }
}

/// The workspace's wallet (opened empty the first time it is looked at).
pub async fn view(db: &Database, access: &Access) -> Result<WalletView, Problem> {
    let ws = access.workspace.id;
    db.wallet_open(ws).await?;
    let balance = db.wallet_balance(ws).await?.ok_or_else(Problem::internal)?;
    let state = db.wallet_state(ws).await?.ok_or_else(Problem::internal)?;
    Ok(WalletView::of(&balance, &state))
}

/// The banner the workspace's pages show (none for a workspace without a wallet yet).
pub async fn banner(db: &Database, access: &Access) -> Result<Option<String>, Problem> {
    let ws = access.workspace.id;
    let (Some(balance), Some(state)) = (db.wallet_balance(ws).await?, db.wallet_state(ws).await?)
    else {
        return Ok(None);
    };
    Ok(WalletView::of(&balance, &state).banner())
}

/// The money that moved (charges posted, credits), newest first, before ledger position
/// `before`; at most `limit` lines (1 to 200).
pub async fn lines(
    db: &Database,
    access: &Access,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<WalletLine>, Problem> {
    let limit = limit.clamp(1, 200);
    let mut out = Vec::new();
    let mut cursor = before;
    // Holds, voids and expiries are how a charge is made, not money that moved: skipped,
    // reading on until the page is full.
    while out.len() < limit as usize {
        let batch = db
            .wallet_transfers(access.workspace.id, cursor, limit * 2)
            .await?;
        let Some(last) = batch.last() else { break };
        cursor = Some(last.seq);
        let done = batch.len() < (limit * 2) as usize;
        out.extend(
            batch
                .iter()
                .filter(|t| t.phase == "single" || t.phase == "post")
                .map(WalletLine::of),
        );
        if done {
            break;
        }
    }
    out.truncate(limit as usize);
    Ok(out)
}

/// Sets the automatic top-up (owners only): on needs a card; the threshold is at least $0
/// and the amount at least $5.
pub async fn set_auto_top_up(
    state: &AppState,
    db: &Database,
    access: &Access,
    enabled: bool,
    threshold: Millicents,
    amount: Millicents,
) -> Result<(), Problem> {
    access.owner("change automatic top-up")?;
    if amount < MIN_TOP_UP || !amount.is_whole_cents() {
        return Err(Problem::invalid_field(
            "amount",
            format!("top up by at least {MIN_TOP_UP}, in whole cents"),
        ));
    }
    if threshold.get() < 0 || !threshold.is_whole_cents() {
        return Err(Problem::invalid_field(
            "threshold",
            "a threshold of $0 or more, in whole cents",
        ));
    }
    let ws = access.workspace.id;
    db.wallet_open(ws).await?;
    db.wallet_autotopup_set(ws, enabled, threshold, amount, &access.actor)
        .await?;
    if let Some(w) = &state.wallets {
        w.forget_topup_settings(ws);
        if enabled {
            // Already under the new threshold: the first top-up starts now.
            let available = db
                .wallet_balance(ws)
                .await?
                .map_or(Millicents::ZERO, |b| b.available);
            w.maybe_top_up(ws, available).await;
        }
    }
    Ok(())
}
