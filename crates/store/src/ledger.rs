//! The Genesis Wallet's ledger (spec 58.1), after TigerBeetle's rules:
//!
//! - **Double entry, append-only, integers.** Every transfer debits one account and credits
//!   another by the same amount of millicents; transfers are never changed or removed (the
//!   database refuses it, whoever asks).
//! - **Balances are derived and held by the database.** An account's totals are updated from
//!   its transfers by a trigger, and a wallet's `debits ≤ credits` is a CHECK: a transfer that
//!   would overdraw is refused by PostgreSQL, not only by this code.
//! - **Client-chosen ids.** Submitting a transfer again with the same id and the same fields
//!   answers the stored transfer ([`TransferOutcome::Exists`]); with different fields it is
//!   refused ([`Refusal::ExistsWithDifferentFields`]).
//! - **Two-phase.** A pending transfer reserves money until a post (of all or part of it), a
//!   void, or its timeout's expiry resolves it, once.
//! - **Linked.** The transfers of one chain are applied all or none.
//!
//! The accounts of a transfer follow from its kind: a charge moves money from the wallet to
//! `platform:revenue`, a deposit from `platform:payments` to the wallet, a refund from
//! revenue back to the wallet. Every transfer is audited (Billing) in its transaction.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_core::money::{Direction, Millicents, TransferKind};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// Where deposits come from: the payment provider.
pub const PAYMENTS: &str = "platform:payments";
/// Where the wallets' spending goes.
pub const REVENUE: &str = "platform:revenue";

/// A wallet's account id.
pub fn wallet_account(workspace: WorkspaceId) -> String {
    format!("wallet:{}", workspace.as_uuid())
}

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Moves the money at once.
    Single,
    /// Reserves the money for at most `timeout_s` seconds.
    Pending {
        /// Seconds until it is expired if nothing resolves it (1 to 86,400).
        timeout_s: i32,
    },
    /// Posts (part of) a pending transfer: the amount is what is really moved.
    Post {
        /// The pending transfer.
        pending: Uuid,
    },
    /// Gives a pending transfer's money back.
    Void {
        /// The pending transfer.
        pending: Uuid,
    },
    /// A void by the timeout sweep.
    Expire {
        /// The pending transfer.
        pending: Uuid,
    },
}

impl Phase {
    fn code(self) -> &'static str {
        match self {
            Phase::Single => "single",
            Phase::Pending { .. } => "pending",
            Phase::Post { .. } => "post",
            Phase::Void { .. } => "void",
            Phase::Expire { .. } => "expire",
        }
    }

    fn pending_id(self) -> Option<Uuid> {
        match self {
            Phase::Post { pending } | Phase::Void { pending } | Phase::Expire { pending } => {
                Some(pending)
            }
            _ => None,
        }
    }

    fn timeout_s(self) -> Option<i32> {
        match self {
            Phase::Pending { timeout_s } => Some(timeout_s),
            _ => None,
        }
    }
}

/// A transfer to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// Chosen by the client; the same id is the same transfer.
    pub id: Uuid,
    /// The wallet's workspace.
    pub workspace: WorkspaceId,
    /// Its type (spec 58.1); decides its accounts.
    pub kind: TransferKind,
    /// How much. Ignored for a void or an expiry, which resolve the whole pending amount.
    pub amount: Millicents,
    /// What it does.
    pub phase: Phase,
    /// What it is for (a payment's id, a managed call, the transfer refunded).
    pub reference: Option<String>,
}

impl NewTransfer {
    /// The transfer as stored, from what the insert returned.
    fn stored(
        &self,
        (debit_account, credit_account): (String, String),
        (seq, amount, timeout_at, created_at): (i64, i64, Option<DateTime<Utc>>, DateTime<Utc>),
    ) -> Transfer {
        Transfer {
            id: self.id,
            seq,
            workspace: self.workspace,
            kind: self.kind,
            amount: Millicents(amount),
            phase: self.phase.code().to_owned(),
            pending_id: self.phase.pending_id(),
            timeout_at,
            debit_account,
            credit_account,
            reference: self.reference.clone(),
            created_at,
            timeout_s: self.phase.timeout_s(),
        }
    }

    fn accounts(&self) -> (String, String) {
        let wallet = wallet_account(self.workspace);
        match (self.kind, self.kind.direction()) {
            (TransferKind::Refund, _) => (REVENUE.into(), wallet),
            (_, Direction::Credit) => (PAYMENTS.into(), wallet),
            (_, Direction::Debit) => (wallet, REVENUE.into()),
        }
    }
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transfer {
    /// Its id.
    pub id: Uuid,
    /// The order it was applied in.
    pub seq: i64,
    /// The wallet's workspace.
    pub workspace: WorkspaceId,
    /// Its type.
    pub kind: TransferKind,
    /// The amount moved (or reserved, or released).
    pub amount: Millicents,
    /// single, pending, post, void or expire.
    pub phase: String,
    /// The pending transfer it resolves.
    pub pending_id: Option<Uuid>,
    /// When a pending transfer expires.
    pub timeout_at: Option<DateTime<Utc>>,
    /// The account debited.
    pub debit_account: String,
    /// The account credited.
    pub credit_account: String,
    /// What it is for.
    pub reference: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    timeout_s: Option<i32>,
}

/// Why the ledger refused a transfer. Nothing was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A transfer with this id exists with other fields.
    #[error("a different transfer with this id exists")]
    ExistsWithDifferentFields,
    /// The wallet's available balance does not cover it.
    #[error("the wallet's balance does not cover it")]
    InsufficientFunds,
    /// The workspace has no wallet yet.
    #[error("the workspace has no wallet")]
    NoWallet,
    /// It resolves a transfer that is not pending (or does not exist).
    #[error("the transfer it resolves is not a pending transfer")]
    NotPending,
    /// It resolves a pending transfer of another wallet or kind.
    #[error("it does not match the pending transfer it resolves")]
    PendingMismatch,
    /// It posts more than was reserved.
    #[error("it posts more than was reserved")]
    ExceedsPending,
    /// The pending transfer was posted, voided or expired already.
    #[error("the pending transfer was resolved already")]
    AlreadyResolved,
    /// A chain's later transfer was refused, so this one was not applied either.
    #[error("another transfer of its chain was refused")]
    LinkedFailed,
}

/// A transfer the ledger accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Applied now.
    Created(Transfer),
    /// Applied before, with the same fields.
    Exists(Transfer),
}

impl TransferOutcome {
    /// The transfer.
    pub fn transfer(&self) -> &Transfer {
        match self {
            TransferOutcome::Created(t) | TransferOutcome::Exists(t) => t,
        }
    }
}

/// What became of one chain: every transfer accepted, or the first refusal (at its index
/// in the chain) and nothing applied.
pub type ChainOutcome = Result<Vec<TransferOutcome>, (usize, Refusal)>;

/// A wallet's figures (spec 58.1), from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WalletBalance {
    /// Posted credits less posted debits.
    pub balance: Millicents,
    /// Reserved by pending transfers.
    pub reserved: Millicents,
    /// What may still be spent: the balance less what is reserved.
    pub available: Millicents,
    /// Everything ever deposited (deposits and automatic top-ups).
    pub lifetime_deposits: Millicents,
    /// Everything ever spent, less refunds.
    pub lifetime_usage: Millicents,
}

/// An account whose stored totals differ from its transfers' sums.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountMismatch {
    /// The account.
    pub account: String,
    /// Stored (debits_pending, debits_posted, credits_pending, credits_posted).
    pub stored: [i64; 4],
    /// Recomputed from the transfers.
    pub derived: [i64; 4],
}

/// The whole ledger's totals: debits equal credits when it balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LedgerTotals {
    /// Σ debits_posted.
    pub debits_posted: i64,
    /// Σ credits_posted.
    pub credits_posted: i64,
    /// Σ debits_pending.
    pub debits_pending: i64,
    /// Σ credits_pending.
    pub credits_pending: i64,
    /// Wallets whose debits exceed their credits (always 0: the CHECK forbids it).
    pub overdrawn_wallets: i64,
}

impl LedgerTotals {
    /// Whether debits equal credits, posted and pending.
    pub fn balances(&self) -> bool {
        self.debits_posted == self.credits_posted
            && self.debits_pending == self.credits_pending
            && self.overdrawn_wallets == 0
    }
}

struct Row {
    id: Uuid,
    seq: i64,
    workspace_id: Uuid,
    kind: String,
    amount: i64,
    phase: String,
    pending_id: Option<Uuid>,
    timeout_s: Option<i32>,
    timeout_at: Option<DateTime<Utc>>,
    debit_account: String,
    credit_account: String,
    reference: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Transfer {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Transfer {
            id: r.id,
            seq: r.seq,
            workspace: crate::accounts::workspace_id(r.workspace_id)?,
            kind: TransferKind::from_code(&r.kind).ok_or(StoreError::Corrupt {
                what: "transfer kind",
                value: r.kind.clone(),
            })?,
            amount: Millicents(r.amount),
            phase: r.phase,
            pending_id: r.pending_id,
            timeout_s: r.timeout_s,
            timeout_at: r.timeout_at,
            debit_account: r.debit_account,
            credit_account: r.credit_account,
            reference: r.reference,
            created_at: r.created_at,
        })
    }
}

/// Whether `stored` is what `new` asks for (the same id with the same fields).
fn same_fields(stored: &Transfer, new: &NewTransfer) -> bool {
    let (debit, credit) = new.accounts();
    let amount_matters = matches!(
        new.phase,
        Phase::Single | Phase::Pending { .. } | Phase::Post { .. }
    );
    stored.workspace == new.workspace
        && stored.kind == new.kind
        && stored.phase == new.phase.code()
        && stored.pending_id == new.phase.pending_id()
        && stored.timeout_s == new.phase.timeout_s()
        && stored.debit_account == debit
        && stored.credit_account == credit
        && stored.reference == new.reference
        && (!amount_matters || stored.amount == new.amount)
}

/// The refusal a database error stands for, if it is one.
fn refusal_of(e: &sqlx::Error) -> Option<Refusal> {
    let db = e.as_database_error()?;
    let constraint = db.constraint().unwrap_or_default();
    match db.code().as_deref()? {
        "GL001" => Some(Refusal::NotPending),
        "GL002" => Some(Refusal::PendingMismatch),
        "GL003" => Some(Refusal::ExceedsPending),
        "23514" if constraint == "ledger_accounts_no_overdraft" => Some(Refusal::InsufficientFunds),
        "23505" if constraint == "ledger_transfers_resolved_once" => Some(Refusal::AlreadyResolved),
        "GL005" => Some(Refusal::NoWallet),
        _ => None,
    }
}

/// Applies one transfer on `conn` (inside the caller's transaction and savepoint), audited.
async fn apply(
    conn: &mut PgConnection,
    t: &NewTransfer,
    actor: &str,
    audit: bool,
) -> Result<Result<TransferOutcome, Refusal>, StoreError> {
    if t.amount.get() < 0 {
        return Err(StoreError::Invalid {
            field: "amount",
            message: "a transfer's amount is never negative".into(),
        });
    }
    let (debit, credit) = t.accounts();
    type Inserted = (i64, i64, Option<DateTime<Utc>>, DateTime<Utc>);
    let inserted = sqlx::query_as::<_, Inserted>(
        "INSERT INTO genesis.ledger_transfers
            (id, debit_account, credit_account, amount, kind, phase, pending_id, timeout_s,
             timeout_at, workspace_id, reference)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::int, now() + make_interval(secs => $8::int), $9,
                 $10)
         ON CONFLICT (id) DO NOTHING
         RETURNING seq, amount, timeout_at, created_at",
    )
    .bind(t.id)
    .bind(&debit)
    .bind(&credit)
    .bind(t.amount.get())
    .bind(t.kind.code())
    .bind(t.phase.code())
    .bind(t.phase.pending_id())
    .bind(t.phase.timeout_s())
    .bind(t.workspace.as_uuid())
    .bind(&t.reference)
    .fetch_optional(&mut *conn)
    .await;
    let (seq, amount, timeout_at, created_at) = match inserted {
        Ok(Some(row)) => row,
        Ok(None) => {
            let stored = read_transfer(conn, t.id).await?;
            return Ok(if same_fields(&stored, t) {
                Ok(TransferOutcome::Exists(stored))
            } else {
                Err(Refusal::ExistsWithDifferentFields)
            });
        }
        Err(e) => match refusal_of(&e) {
            Some(refusal) => return Ok(Err(refusal)),
            None => return Err(e.into()),
        },
    };
    let stored = t.stored((debit, credit), (seq, amount, timeout_at, created_at));
    if audit {
        audit_transfer(conn, &stored, actor).await?;
    }
    Ok(Ok(TransferOutcome::Created(stored)))
}

/// How a batch's transfers are audited.
#[derive(Debug, Clone, Copy)]
enum BatchAudit {
    /// Each was audited as it was applied.
    Done,
    /// One event per transfer, now.
    Each,
    /// One event per wallet (the syncer's batches).
    PerWallet,
}

/// The audit event of one transfer (Billing).
async fn audit_transfer(
    conn: &mut PgConnection,
    t: &Transfer,
    actor: &str,
) -> Result<(), StoreError> {
    // Spec 63.1's names for money in and money out; a reservation's other moves keep
    // their own (money held, released, or let go).
    let event = match (t.phase.as_str(), t.kind.direction()) {
        ("pending", _) => "FUNDS_RESERVED",
        ("void", _) => "RESERVATION_VOIDED",
        ("expire", _) => "RESERVATION_EXPIRED",
        (_, genesis_core::money::Direction::Credit) => "WALLET_DEPOSIT",
        (_, genesis_core::money::Direction::Debit) => "WALLET_DEBIT",
    };
    record(
        conn,
        &AuditEvent::new(actor, AuditCategory::Billing, event)
            .workspace(t.workspace)
            .subject(t.id.to_string())
            .details(json!({
                "kind": t.kind.code(),
                "amount_millicents": t.amount.get(),
                "amount": t.amount.to_string(),
                "pending_id": t.pending_id,
                "reference": t.reference,
            })),
    )
    .await?;
    Ok(())
}

/// Applies single-transfer chains with one statement; `None` when the ledger refused one of
/// them (the caller rolls back and applies them one by one to find which). Transfers that
/// existed are compared with what was asked, as one by one.
async fn bulk(
    conn: &mut PgConnection,
    chains: &[Vec<NewTransfer>],
) -> Result<Option<Vec<ChainOutcome>>, StoreError> {
    let ts: Vec<&NewTransfer> = chains.iter().filter_map(|c| c.first()).collect();
    if ts.iter().any(|t| t.amount.get() < 0) {
        return Ok(None);
    }
    let accounts: Vec<(String, String)> = ts.iter().map(|t| t.accounts()).collect();
    type Inserted = (Uuid, i64, i64, Option<DateTime<Utc>>, DateTime<Utc>);
    let inserted = sqlx::query_as::<_, Inserted>(
        "INSERT INTO genesis.ledger_transfers
            (id, debit_account, credit_account, amount, kind, phase, pending_id, timeout_s,
             timeout_at, workspace_id, reference)
         SELECT id, d, c, a, k, ph, pid, ts, now() + make_interval(secs => ts), ws, r
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                     $7::uuid[], $8::int4[], $9::uuid[], $10::text[])
              WITH ORDINALITY AS u(id, d, c, a, k, ph, pid, ts, ws, r, ord)
         ORDER BY ord
         ON CONFLICT (id) DO NOTHING
         RETURNING id, seq, amount, timeout_at, created_at",
    )
    .bind(ts.iter().map(|t| t.id).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.0.clone()).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.1.clone()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.amount.get()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.kind.code()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.phase.code()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.phase.pending_id()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.phase.timeout_s()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.workspace.as_uuid()).collect::<Vec<_>>())
    .bind(ts.iter().map(|t| t.reference.clone()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await;
    let rows = match inserted {
        Ok(rows) => rows,
        Err(e) if refusal_of(&e).is_some() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut created: std::collections::HashMap<Uuid, Inserted> =
        rows.into_iter().map(|r| (r.0, r)).collect();
    let mut outcomes = Vec::with_capacity(ts.len());
    for (t, (debit, credit)) in ts.into_iter().zip(accounts) {
        let outcome = match created.remove(&t.id) {
            Some((_, seq, amount, timeout_at, created_at)) => Ok(vec![TransferOutcome::Created(
                t.stored((debit, credit), (seq, amount, timeout_at, created_at)),
            )]),
            None => {
                let stored = read_transfer(conn, t.id).await?;
                if same_fields(&stored, t) {
                    Ok(vec![TransferOutcome::Exists(stored)])
                } else {
                    Err((0, Refusal::ExistsWithDifferentFields))
                }
            }
        };
        outcomes.push(outcome);
    }
    Ok(Some(outcomes))
}

/// Applies a chain on `conn` until its first refusal (which the caller rolls back).
async fn apply_chain(
    conn: &mut PgConnection,
    chain: &[NewTransfer],
    actor: &str,
    audit: bool,
) -> Result<ChainOutcome, StoreError> {
    let mut done = Vec::with_capacity(chain.len());
    for (i, t) in chain.iter().enumerate() {
        match apply(conn, t, actor, audit).await? {
            Ok(outcome) => done.push(outcome),
            Err(refusal) => return Ok(Err((i, refusal))),
        }
    }
    Ok(Ok(done))
}

/// Reads one stored transfer.
async fn read_transfer(conn: &mut PgConnection, id: Uuid) -> Result<Transfer, StoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT id, seq, workspace_id, kind, amount, phase, pending_id, timeout_s, timeout_at,
                  debit_account, credit_account, reference, created_at
           FROM genesis.ledger_transfers WHERE id = $1"#,
        id
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

impl Database {
    /// Opens `workspace`'s wallet (its ledger account and settings) if it has none.
    pub async fn wallet_open(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            "INSERT INTO genesis.ledger_accounts (id, workspace_id, debits_must_not_exceed_credits)
             VALUES ($1, $2, true) ON CONFLICT DO NOTHING",
            wallet_account(workspace),
            workspace.as_uuid()
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            match e.as_database_error().map(|d| d.is_foreign_key_violation()) {
                Some(true) => StoreError::NotFound { what: "workspace" },
                _ => e.into(),
            }
        })?;
        sqlx::query!(
            "INSERT INTO genesis.wallets (workspace_id) VALUES ($1) ON CONFLICT DO NOTHING",
            workspace.as_uuid()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Submits chains of linked transfers in one database transaction: each chain is applied
    /// whole or not at all, independently of the others. Retries the whole batch when the
    /// database reports a deadlock or a serialization failure.
    pub async fn ledger_submit(
        &self,
        chains: &[Vec<NewTransfer>],
        actor: &str,
    ) -> Result<Vec<ChainOutcome>, StoreError> {
        self.ledger_sync(chains, &[], actor).await
    }

    /// Submits one transfer.
    pub async fn ledger_transfer(
        &self,
        transfer: NewTransfer,
        actor: &str,
    ) -> Result<Result<TransferOutcome, Refusal>, StoreError> {
        let mut out = self.ledger_submit(&[vec![transfer]], actor).await?;
        Ok(match out.pop() {
            Some(Ok(mut accepted)) => accepted.pop().ok_or(Refusal::LinkedFailed),
            Some(Err((_, refusal))) => Err(refusal),
            None => Err(Refusal::LinkedFailed),
        })
    }

    /// One stored transfer.
    pub async fn ledger_get(&self, id: Uuid) -> Result<Option<Transfer>, StoreError> {
        let mut conn = self.read().await?;
        match read_transfer(&mut conn, id).await {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::Database(sqlx::Error::RowNotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `workspace`'s wallet figures; `None` when it has no wallet.
    pub async fn wallet_balance(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<WalletBalance>, StoreError> {
        let mut conn = self.read().await?;
        let Some(a) = sqlx::query!(
            r#"SELECT debits_pending, debits_posted, credits_posted
               FROM genesis.ledger_accounts WHERE id = $1"#,
            wallet_account(workspace)
        )
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let sums = sqlx::query!(
            r#"SELECT coalesce(sum(amount) FILTER (WHERE kind IN ('DEPOSIT', 'AUTO_TOPUP')), 0)::bigint AS "deposits!",
                      coalesce(sum(amount) FILTER (WHERE kind = 'REFUND'), 0)::bigint AS "refunds!"
               FROM genesis.ledger_transfers
               WHERE workspace_id = $1 AND kind IN ('DEPOSIT', 'AUTO_TOPUP', 'REFUND')
                 AND phase IN ('single', 'post')"#,
            workspace.as_uuid()
        )
        .fetch_one(&mut *conn)
        .await?;
        let balance = a.credits_posted - a.debits_posted;
        Ok(Some(WalletBalance {
            balance: Millicents(balance),
            reserved: Millicents(a.debits_pending),
            available: Millicents(balance - a.debits_pending),
            lifetime_deposits: Millicents(sums.deposits),
            lifetime_usage: Millicents(a.debits_posted - sums.refunds),
        }))
    }

    /// `workspace`'s transfers, newest first, below `before_seq`.
    pub async fn wallet_transfers(
        &self,
        workspace: WorkspaceId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Transfer>, StoreError> {
        sqlx::query_as!(
            Row,
            r#"SELECT id, seq, workspace_id, kind, amount, phase, pending_id, timeout_s,
                      timeout_at, debit_account, credit_account, reference, created_at
               FROM genesis.ledger_transfers
               WHERE workspace_id = $1 AND seq < coalesce($2, 9223372036854775807)
               ORDER BY seq DESC LIMIT $3"#,
            workspace.as_uuid(),
            before_seq,
            limit
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    /// Expires up to `limit` pending transfers whose timeout has passed; the transfers
    /// written. One that is resolved meanwhile is left alone.
    pub async fn ledger_expire_due(&self, limit: i64) -> Result<Vec<Transfer>, StoreError> {
        let due = sqlx::query!(
            r#"SELECT t.id, t.workspace_id, t.kind
               FROM genesis.ledger_open_pending o
               JOIN genesis.ledger_transfers t ON t.id = o.transfer_id
               WHERE o.timeout_at <= now() ORDER BY o.timeout_at LIMIT $1"#,
            limit
        )
        .fetch_all(&self.app)
        .await?;
        let mut chains = Vec::with_capacity(due.len());
        for d in due {
            chains.push(vec![NewTransfer {
                id: Uuid::now_v7(),
                workspace: crate::accounts::workspace_id(d.workspace_id)?,
                kind: TransferKind::from_code(&d.kind).ok_or(StoreError::Corrupt {
                    what: "transfer kind",
                    value: d.kind.clone(),
                })?,
                amount: Millicents::ZERO,
                phase: Phase::Expire { pending: d.id },
                reference: None,
            }]);
        }
        let outcomes = self.ledger_submit(&chains, "system:ledger-expiry").await?;
        Ok(outcomes
            .into_iter()
            .filter_map(|o| o.ok())
            .flatten()
            .map(|o| o.transfer().clone())
            .collect())
    }

    /// The ledger's totals over every account.
    pub async fn ledger_totals(&self) -> Result<LedgerTotals, StoreError> {
        let r = sqlx::query!(
            r#"SELECT coalesce(sum(debits_posted), 0)::bigint AS "dp!",
                      coalesce(sum(credits_posted), 0)::bigint AS "cp!",
                      coalesce(sum(debits_pending), 0)::bigint AS "dq!",
                      coalesce(sum(credits_pending), 0)::bigint AS "cq!",
                      count(*) FILTER (WHERE debits_must_not_exceed_credits
                          AND debits_posted + debits_pending > credits_posted) AS "overdrawn!"
               FROM genesis.ledger_accounts"#
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(LedgerTotals {
            debits_posted: r.dp,
            credits_posted: r.cp,
            debits_pending: r.dq,
            credits_pending: r.cq,
            overdrawn_wallets: r.overdrawn,
        })
    }

    /// Accounts whose stored totals differ from the sums of their transfers (an audit of
    /// the trigger; empty when the ledger is sound). Reads every transfer.
    pub async fn ledger_mismatches(&self) -> Result<Vec<AccountMismatch>, StoreError> {
        let rows = sqlx::query!(
            r#"WITH resolved AS (
                   SELECT pending_id FROM genesis.ledger_transfers WHERE pending_id IS NOT NULL
               ), sides AS (
                   SELECT debit_account AS account, true AS debit, t.amount, t.phase,
                          (t.phase = 'pending' AND r.pending_id IS NULL) AS open
                   FROM genesis.ledger_transfers t LEFT JOIN resolved r ON r.pending_id = t.id
                   UNION ALL
                   SELECT credit_account, false, t.amount, t.phase,
                          (t.phase = 'pending' AND r.pending_id IS NULL)
                   FROM genesis.ledger_transfers t LEFT JOIN resolved r ON r.pending_id = t.id
               ), derived AS (
                   SELECT account,
                       coalesce(sum(amount) FILTER (WHERE debit AND open), 0)::bigint AS dq,
                       coalesce(sum(amount) FILTER (WHERE debit AND phase IN ('single', 'post')), 0)::bigint AS dp,
                       coalesce(sum(amount) FILTER (WHERE NOT debit AND open), 0)::bigint AS cq,
                       coalesce(sum(amount) FILTER (WHERE NOT debit AND phase IN ('single', 'post')), 0)::bigint AS cp
                   FROM sides GROUP BY account
               )
               SELECT a.id AS "account!", a.debits_pending AS "sdq!", a.debits_posted AS "sdp!",
                      a.credits_pending AS "scq!", a.credits_posted AS "scp!",
                      coalesce(d.dq, 0) AS "dq!", coalesce(d.dp, 0) AS "dp!",
                      coalesce(d.cq, 0) AS "cq!", coalesce(d.cp, 0) AS "cp!"
               FROM genesis.ledger_accounts a LEFT JOIN derived d ON d.account = a.id
               WHERE (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
                     IS DISTINCT FROM (coalesce(d.dq, 0), coalesce(d.dp, 0),
                                       coalesce(d.cq, 0), coalesce(d.cp, 0))"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AccountMismatch {
                account: r.account,
                stored: [r.sdq, r.sdp, r.scq, r.scp],
                derived: [r.dq, r.dp, r.cq, r.cp],
            })
            .collect())
    }
}

fn is_contention(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// A wallet's alert level (spec 58.2): the lowest threshold crossed since it was last above
/// $5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Above $5.
    Ok,
    /// Below $5: e-mail "wallet running low".
    Low5,
    /// Below $1: e-mail and a dashboard banner.
    Low1,
    /// A call was refused: the kill-switch.
    Empty,
}

impl AlertLevel {
    /// The stored name.
    pub fn code(self) -> &'static str {
        match self {
            AlertLevel::Ok => "ok",
            AlertLevel::Low5 => "low_5",
            AlertLevel::Low1 => "low_1",
            AlertLevel::Empty => "empty",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        [
            AlertLevel::Ok,
            AlertLevel::Low5,
            AlertLevel::Low1,
            AlertLevel::Empty,
        ]
        .into_iter()
        .find(|l| l.code() == code)
    }
}

/// A wallet's settings and standing (spec 58.1, 58.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WalletState {
    /// Recharge automatically.
    pub auto_topup_enabled: bool,
    /// Below this available balance.
    pub auto_topup_threshold: Millicents,
    /// By this much.
    pub auto_topup_amount: Millicents,
    /// The payment provider's customer.
    pub customer_ref: Option<String>,
    /// The saved payment method.
    pub payment_method_ref: Option<String>,
    /// The saved card's brand, as the provider named it.
    pub card_brand: Option<String>,
    /// Its last four digits.
    pub card_last4: Option<String>,
    /// Since when an automatic top-up awaits the provider's answer.
    pub topup_started_at: Option<DateTime<Utc>>,
    /// Where its alerts stand.
    pub alert_level: AlertLevel,
    /// Since when the kill-switch holds its managed services.
    pub halted_at: Option<DateTime<Utc>>,
    /// The syncer's mark in the Redis journal.
    pub synced_seq: i64,
}

/// What the cache is loaded from: the ledger's figures and the wallet's standing, read in
/// one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletLoad {
    /// Available: posted credits less posted and pending debits.
    pub available: Millicents,
    /// The wallet's posted credits: credits up to this are counted in `available`.
    pub credits_posted: i64,
    /// The kill-switch.
    pub halted: bool,
    /// The syncer's mark.
    pub synced_seq: i64,
}

impl Database {
    /// `workspace`'s wallet settings and standing; `None` without a wallet.
    pub async fn wallet_state(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<WalletState>, StoreError> {
        let Some(r) = sqlx::query!(
            r#"SELECT auto_topup_enabled, auto_topup_threshold, auto_topup_amount, customer_ref,
                      payment_method_ref, card_brand, card_last4, topup_started_at, alert_level,
                      halted_at, synced_seq
               FROM genesis.wallets WHERE workspace_id = $1"#,
            workspace.as_uuid()
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(WalletState {
            auto_topup_enabled: r.auto_topup_enabled,
            auto_topup_threshold: Millicents(r.auto_topup_threshold),
            auto_topup_amount: Millicents(r.auto_topup_amount),
            customer_ref: r.customer_ref,
            payment_method_ref: r.payment_method_ref,
            card_brand: r.card_brand,
            card_last4: r.card_last4,
            topup_started_at: r.topup_started_at,
            alert_level: AlertLevel::from_code(&r.alert_level).ok_or(StoreError::Corrupt {
                what: "wallet alert level",
                value: r.alert_level.clone(),
            })?,
            halted_at: r.halted_at,
            synced_seq: r.synced_seq,
        }))
    }

    /// Every workspace with a wallet here.
    pub async fn wallet_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        sqlx::query_scalar!("SELECT workspace_id FROM genesis.wallets ORDER BY workspace_id")
            .fetch_all(&mut *self.read().await?)
            .await?
            .into_iter()
            .map(crate::accounts::workspace_id)
            .collect()
    }

    /// What the cache loads `workspace`'s wallet from; `None` without a wallet.
    pub async fn wallet_load(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<WalletLoad>, StoreError> {
        let r = sqlx::query!(
            r#"SELECT a.credits_posted - a.debits_posted - a.debits_pending AS "available!",
                      a.credits_posted, w.halted_at IS NOT NULL AS "halted!", w.synced_seq
               FROM genesis.ledger_accounts a
               JOIN genesis.wallets w ON w.workspace_id = a.workspace_id
               WHERE a.id = $1"#,
            wallet_account(workspace)
        )
        .fetch_optional(&self.app)
        .await?;
        Ok(r.map(|r| WalletLoad {
            available: Millicents(r.available),
            credits_posted: r.credits_posted,
            halted: r.halted,
            synced_seq: r.synced_seq,
        }))
    }

    /// The last journal entry written for each of `workspaces` that has a wallet: what the
    /// syncer has already written, so a pass that repeats entries (its ack was lost) writes
    /// them the way it did the first time.
    pub async fn wallet_synced_seqs(
        &self,
        workspaces: &[WorkspaceId],
    ) -> Result<std::collections::HashMap<WorkspaceId, i64>, StoreError> {
        let ids: Vec<Uuid> = workspaces.iter().map(|w| w.as_uuid()).collect();
        let rows = sqlx::query!(
            "SELECT workspace_id, synced_seq FROM genesis.wallets WHERE workspace_id = ANY($1)",
            &ids
        )
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((WorkspaceId::from_uuid(r.workspace_id).ok()?, r.synced_seq)))
            .collect())
    }

    /// Credits `workspace`'s wallet (a deposit, a top-up, a refund) in one transaction with
    /// its audit; lifts the kill-switch and resets the alerts when the wallet is above $5
    /// afterwards. Answers the outcome and, for a new credit, the wallet's posted credits
    /// after it (the cache's mark).
    pub async fn wallet_credit(
        &self,
        transfer: NewTransfer,
        actor: &str,
    ) -> Result<Result<(TransferOutcome, Option<i64>), Refusal>, StoreError> {
        if transfer.kind.direction() != Direction::Credit || transfer.phase != Phase::Single {
            return Err(StoreError::Invalid {
                field: "kind",
                message: "only a posted credit is a wallet credit".into(),
            });
        }
        let ws = transfer.workspace;
        let mut tx = self.app.begin().await?;
        let outcome = match apply(&mut tx, &transfer, actor, true).await? {
            Ok(o) => o,
            Err(refusal) => {
                tx.rollback().await?;
                return Ok(Err(refusal));
            }
        };
        if matches!(outcome, TransferOutcome::Exists(_)) {
            tx.rollback().await?;
            return Ok(Ok((outcome, None)));
        }
        let r = sqlx::query!(
            r#"SELECT credits_posted, credits_posted - debits_posted - debits_pending AS "available!"
               FROM genesis.ledger_accounts WHERE id = $1"#,
            wallet_account(ws)
        )
        .fetch_one(&mut *tx)
        .await?;
        let lifted = sqlx::query_scalar!(
            r#"UPDATE genesis.wallets SET halted_at = NULL,
                   alert_level = CASE WHEN $2::bigint >= 500000 THEN 'ok' ELSE alert_level END,
                   updated_at = now()
               WHERE workspace_id = $1 AND halted_at IS NOT NULL AND $2::bigint > 0
               RETURNING workspace_id"#,
            ws.as_uuid(),
            r.available
        )
        .fetch_optional(&mut *tx)
        .await?;
        if lifted.is_some() {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Billing, "KILL_SWITCH_LIFTED")
                    .workspace(ws)
                    .details(json!({ "available": Millicents(r.available).to_string() })),
            )
            .await?;
        } else if r.available >= 500_000 {
            sqlx::query!(
                "UPDATE genesis.wallets SET alert_level = 'ok', updated_at = now()
                 WHERE workspace_id = $1 AND alert_level <> 'ok'",
                ws.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok((outcome, Some(r.credits_posted))))
    }

    /// Raises `workspace`'s alert to `level` if it is not there yet: the notification, the
    /// audit event and, for [`AlertLevel::Empty`], the kill-switch, in one transaction.
    /// Whether it was raised now.
    pub async fn wallet_alert(
        &self,
        workspace: WorkspaceId,
        level: AlertLevel,
        available: Millicents,
        halt: bool,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let raised = sqlx::query_scalar!(
            r#"UPDATE genesis.wallets SET alert_level = $2,
                   halted_at = CASE WHEN $3 THEN coalesce(halted_at, now()) ELSE halted_at END,
                   updated_at = now()
               WHERE workspace_id = $1
                 AND array_position(ARRAY['ok', 'low_5', 'low_1', 'empty'], alert_level)
                     < array_position(ARRAY['ok', 'low_5', 'low_1', 'empty'], $2)
               RETURNING workspace_id"#,
            workspace.as_uuid(),
            level.code(),
            halt
        )
        .fetch_optional(&mut *tx)
        .await?;
        if raised.is_none() {
            return Ok(false);
        }
        let (kind, subject, event) = match level {
            AlertLevel::Ok => return Ok(false),
            AlertLevel::Low5 => ("WALLET_LOW", "Your wallet is running low", "WALLET_LOW_5"),
            AlertLevel::Low1 => ("WALLET_LOW", "Your wallet is almost empty", "WALLET_LOW_1"),
            AlertLevel::Empty => (
                "WALLET_EMPTY",
                "Managed services are paused: your wallet is empty",
                if halt {
                    "KILL_SWITCH_ACTIVE"
                } else {
                    "WALLET_EMPTY_UNENFORCED"
                },
            ),
        };
        sqlx::query!(
            r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
               VALUES ($1, $2, $3, $4)"#,
            workspace.as_uuid(),
            kind,
            subject,
            json!({ "available": available.to_string(), "level": level.code() }),
        )
        .execute(&mut *tx)
        .await?;
        crate::outbound_webhooks::emit(
            &mut tx,
            workspace,
            if level == AlertLevel::Empty {
                "wallet.empty"
            } else {
                "wallet.low"
            },
            json!({
                "workspace_id": workspace,
                "available": available.to_string(),
                "level": level.code(),
                "services_paused": halt && level == AlertLevel::Empty,
            }),
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Billing, event)
                .workspace(workspace)
                .details(json!({ "available": available.to_string() })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The syncer's write: `chains` as [`Database::ledger_submit`] does, and each wallet's
    /// journal mark, in the same transaction, so a mark never runs ahead of its transfers.
    pub async fn ledger_sync(
        &self,
        chains: &[Vec<NewTransfer>],
        marks: &[(WorkspaceId, i64)],
        actor: &str,
    ) -> Result<Vec<ChainOutcome>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.submit_once(chains, marks, actor).await;
            match result {
                Err(StoreError::Database(e)) if attempt < 4 && is_contention(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// One attempt at a batch, in one transaction and without savepoints (thousands of
    /// savepoints in one transaction overflow PostgreSQL's subtransaction cache and slow
    /// every row lookup to a crawl). A chain the ledger refuses with an error aborts the
    /// transaction: it is rolled back and the batch applied again without that chain, so a
    /// batch costs one more round per refused chain, and refusals are rare (a flush, an
    /// expiry). Transfers submitted with marks (the syncer's) are audited per wallet and
    /// batch; the others one by one.
    async fn submit_once(
        &self,
        chains: &[Vec<NewTransfer>],
        marks: &[(WorkspaceId, i64)],
        actor: &str,
    ) -> Result<Vec<ChainOutcome>, StoreError> {
        let per_transfer_audit = marks.is_empty();
        if chains.len() > 1 && chains.iter().all(|c| c.len() == 1) {
            let mut tx = self.app.begin().await?;
            if let Some(outcomes) = bulk(&mut tx, chains).await? {
                let audit = if per_transfer_audit {
                    BatchAudit::Each
                } else {
                    BatchAudit::PerWallet
                };
                self.finish_batch(&mut tx, &outcomes, marks, actor, audit)
                    .await?;
                tx.commit().await?;
                return Ok(outcomes);
            }
            tx.rollback().await?;
        }
        let mut refused: Vec<Option<(usize, Refusal)>> = vec![None; chains.len()];
        'attempt: loop {
            let mut tx = self.app.begin().await?;
            let mut outcomes: Vec<ChainOutcome> = Vec::with_capacity(chains.len());
            for (i, chain) in chains.iter().enumerate() {
                if let Some(r) = refused[i] {
                    outcomes.push(Err(r));
                    continue;
                }
                match apply_chain(&mut tx, chain, actor, per_transfer_audit).await? {
                    Ok(done) => outcomes.push(Ok(done)),
                    Err(r) => {
                        refused[i] = Some(r);
                        tx.rollback().await?;
                        continue 'attempt;
                    }
                }
            }
            let audit = if per_transfer_audit {
                BatchAudit::Done
            } else {
                BatchAudit::PerWallet
            };
            self.finish_batch(&mut tx, &outcomes, marks, actor, audit)
                .await?;
            tx.commit().await?;
            return Ok(outcomes);
        }
    }

    /// A batch's end, in its transaction: the wallets' marks, and the per-wallet audit of a
    /// synced batch (or of a bulk batch, whose transfers were not audited one by one).
    async fn finish_batch(
        &self,
        tx: &mut PgConnection,
        outcomes: &[ChainOutcome],
        marks: &[(WorkspaceId, i64)],
        actor: &str,
        audit: BatchAudit,
    ) -> Result<(), StoreError> {
        for (ws, seq) in marks {
            sqlx::query!(
                "UPDATE genesis.wallets SET synced_seq = greatest(synced_seq, $2)
                 WHERE workspace_id = $1",
                ws.as_uuid(),
                seq
            )
            .execute(&mut *tx)
            .await?;
        }
        match audit {
            BatchAudit::Done => {}
            BatchAudit::Each => {
                for outcome in outcomes.iter().flatten() {
                    for o in outcome {
                        if let TransferOutcome::Created(t) = o {
                            audit_transfer(tx, t, actor).await?;
                        }
                    }
                }
            }
            BatchAudit::PerWallet => audit_per_wallet(tx, outcomes, actor).await?,
        }
        Ok(())
    }
}

/// One audit event per wallet for a synced batch: how many transfers of each phase it
/// wrote, their amounts, and the first and last transfer (each is in the ledger for good).
async fn audit_per_wallet(
    conn: &mut PgConnection,
    outcomes: &[ChainOutcome],
    actor: &str,
) -> Result<(), StoreError> {
    use std::collections::BTreeMap;
    let mut per: BTreeMap<WorkspaceId, BTreeMap<&'static str, (u64, i64)>> = BTreeMap::new();
    let mut span: BTreeMap<WorkspaceId, (Uuid, Uuid)> = BTreeMap::new();
    for outcome in outcomes.iter().flatten() {
        for o in outcome {
            let TransferOutcome::Created(t) = o else {
                continue;
            };
            let phase = match t.phase.as_str() {
                "pending" => "reserved",
                "post" => "posted",
                "void" => "voided",
                "expire" => "expired",
                _ => "single",
            };
            let e = per
                .entry(t.workspace)
                .or_default()
                .entry(phase)
                .or_default();
            e.0 += 1;
            e.1 += t.amount.get();
            span.entry(t.workspace)
                .and_modify(|s| s.1 = t.id)
                .or_insert((t.id, t.id));
        }
    }
    for (ws, phases) in per {
        let (first, last) = span.get(&ws).copied().unwrap_or_default();
        let details: serde_json::Map<String, serde_json::Value> = phases
            .into_iter()
            .map(|(k, (n, sum))| (k.to_owned(), json!({ "count": n, "millicents": sum })))
            .collect();
        record(
            conn,
            &AuditEvent::new(actor, AuditCategory::Billing, "WALLET_JOURNAL_SYNCED")
                .workspace(ws)
                .subject(format!("{first}..{last}"))
                .details(serde_json::Value::Object(details)),
        )
        .await?;
    }
    Ok(())
}
