//! Keeps the wallet cache and the ledger one: the syncer writes the cache's journal to the
//! ledger, and the check proves *ledger + unsynced journal = cache* for every cached wallet,
//! puts the cache right when it is not (the ledger is the truth for what it holds), and
//! expires reservations nobody settled.
//!
//! Both are safe to run twice and on any replica: journal entries carry their transfer ids,
//! so writing one again changes nothing, and a wallet's mark only moves forward.

use genesis_core::WorkspaceId;
use genesis_core::money::{Millicents, TransferKind};
use genesis_queue::wallet::Entry;
use genesis_store::Database;
use genesis_store::audit::AuditEvent;
use genesis_store::ledger::{NewTransfer, Phase, Refusal};
use serde::Serialize;
use uuid::Uuid;

use super::wallet::Wallets;
use crate::Problem;

/// Journal entries written per wallet per pass (the rest wait for the next).
const ENTRIES_PER_WALLET: usize = 2_000;
/// Wallets taken per pass.
const WALLETS_PER_PASS: usize = 1_000;

/// What one sync pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    /// Wallets whose journal was written.
    pub wallets: u64,
    /// Transfers written (or found written).
    pub transfers: u64,
    /// Entries the ledger refused (counted, never retried: retrying cannot help).
    pub refused: u64,
    /// The longest an entry of this pass waited in the journal, ms.
    pub max_lag_ms: u64,
    /// How long each entry written waited in the journal, ms (for benchmarks).
    #[serde(skip)]
    pub lags_ms: Vec<u32>,
}

/// The transfer a journal entry stands for.
fn transfer_of(workspace: WorkspaceId, e: &Entry) -> Option<NewTransfer> {
    let kind = TransferKind::from_code(&e.kind)?;
    let hold = Uuid::parse_str(&e.hold).ok()?;
    let (id, phase) = match e.op.as_str() {
        "R" => (
            hold,
            Phase::Pending {
                timeout_s: e.timeout_s?,
            },
        ),
        "P" => (
            Uuid::parse_str(e.id.as_deref()?).ok()?,
            Phase::Post { pending: hold },
        ),
        "V" => (
            Uuid::parse_str(e.id.as_deref()?).ok()?,
            Phase::Void { pending: hold },
        ),
        _ => return None,
    };
    Some(NewTransfer {
        id,
        workspace,
        kind,
        amount: Millicents(e.amount),
        phase,
        reference: e.reference.clone().filter(|r| !r.is_empty()),
    })
}

/// One database's share of a sync pass.
struct Batch {
    shard: usize,
    db: Database,
    /// One chain per journal entry.
    chains: Vec<Vec<NewTransfer>>,
    /// Each wallet's last entry written.
    marks: Vec<(WorkspaceId, i64)>,
}

/// One sync pass: takes the wallets with journal entries and writes them to their ledgers,
/// each database's share in one transaction with the wallets' marks, then drops the
/// entries written from the journal.
pub async fn sync(wallets: &Wallets) -> Result<SyncReport, Problem> {
    let cache = wallets.cache();
    let dirty = cache
        .take_dirty(WALLETS_PER_PASS)
        .await
        .map_err(Problem::unavailable)?;
    let mut report = SyncReport::default();
    // Per database: the chains, the marks, and the wallets.
    let mut batches: Vec<Batch> = Vec::new();
    let mut journaled_at: Vec<i64> = Vec::new();
    for id in dirty {
        let Ok(workspace) = WorkspaceId::parse(&id.to_string()) else {
            continue;
        };
        let Some(snap) = cache
            .snapshot(id, ENTRIES_PER_WALLET)
            .await
            .map_err(Problem::unavailable)?
        else {
            continue; // Flushed: nothing left to write.
        };
        if snap.journal.is_empty() {
            continue;
        }
        if snap.journal_len > snap.journal.len() as i64 {
            let _ = cache.mark(id).await; // More than a pass's share.
        }
        let (shard, db) = match wallets.shard_of(workspace).await {
            Ok(found) => found,
            Err(p) => {
                let _ = cache.mark(id).await;
                tracing::warn!(%workspace, detail = %p.detail, "wallet journal not synced");
                continue;
            }
        };
        let mark = snap.journal.last().map_or(0, |e| e.seq);
        journaled_at.extend(snap.journal.iter().filter_map(|e| e.at_ms));
        let chains: Vec<Vec<NewTransfer>> = snap
            .journal
            .iter()
            .filter_map(|e| {
                let t = transfer_of(workspace, e);
                if t.is_none() {
                    tracing::error!(%workspace, seq = e.seq, "a wallet journal entry that no transfer stands for");
                }
                t.map(|t| vec![t])
            })
            .collect();
        match batches.iter_mut().find(|b| b.shard == shard) {
            Some(b) => {
                b.chains.extend(chains);
                b.marks.push((workspace, mark));
            }
            None => batches.push(Batch {
                shard,
                db,
                chains,
                marks: vec![(workspace, mark)],
            }),
        }
    }
    for Batch {
        db, chains, marks, ..
    } in batches
    {
        let outcomes = match db.ledger_sync(&chains, &marks, "system:wallet-sync").await {
            Ok(o) => o,
            Err(e) => {
                for (ws, _) in &marks {
                    let _ = cache.mark(ws.as_uuid()).await;
                }
                return Err(e.into());
            }
        };
        for (chain, outcome) in chains.iter().zip(&outcomes) {
            match outcome {
                Ok(_) => report.transfers += 1,
                Err((_, refusal)) => {
                    report.refused += 1;
                    refused(chain.first(), *refusal);
                }
            }
        }
        for (ws, mark) in &marks {
            report.wallets += 1;
            if let Err(e) = cache.ack(ws.as_uuid(), *mark).await {
                // Written but not dropped: the next pass writes them again, to no effect.
                tracing::warn!(error = %e, "wallet journal not trimmed");
                let _ = cache.mark(ws.as_uuid()).await;
            }
        }
    }
    let now = genesis_queue::wallet::now_ms();
    report.lags_ms = journaled_at
        .iter()
        .map(|at| (now - at).clamp(0, i64::from(u32::MAX)) as u32)
        .collect();
    report.max_lag_ms = report.lags_ms.iter().copied().max().unwrap_or(0).into();
    metrics::counter!("genesis_wallet_synced_transfers_total").increment(report.transfers);
    metrics::gauge!("genesis_wallet_sync_lag_seconds").set(report.max_lag_ms as f64 / 1000.0);
    Ok(report)
}

/// Counts a journal entry the ledger refused. The cache and the ledger disagreed (a flush
/// lost entries, or a reservation expired before its post); the check puts the cache right.
fn refused(transfer: Option<&NewTransfer>, refusal: Refusal) {
    let reason = match refusal {
        Refusal::InsufficientFunds => "insufficient_funds",
        Refusal::AlreadyResolved => "already_resolved",
        Refusal::NotPending => "not_pending",
        _ => "other",
    };
    metrics::counter!("genesis_wallet_sync_refusals_total", "reason" => reason).increment(1);
    if let Some(t) = transfer {
        tracing::warn!(workspace = %t.workspace, transfer = %t.id, %refusal, "the ledger refused a journal entry");
    }
}

/// What one check pass found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    /// Reservations expired at their timeout.
    pub expired: u64,
    /// Cached wallets compared with their ledger.
    pub compared: u64,
    /// Wallets whose cache differed from the ledger, and was rebuilt from it.
    pub drifted: u64,
}

/// How far the cache is from the ledger: `Some(cache - expected, seq, expected)` when they
/// can be compared now.
async fn drift(
    wallets: &Wallets,
    db: &Database,
    workspace: WorkspaceId,
) -> Result<Option<(i64, i64, i64, bool)>, Problem> {
    let id = workspace.as_uuid();
    let Some(snap) = wallets
        .cache()
        .snapshot(id, 10_000)
        .await
        .map_err(Problem::unavailable)?
    else {
        return Ok(None);
    };
    if snap.journal_len > snap.journal.len() as i64 {
        return Ok(None); // A backlog: compare once the syncer has caught up.
    }
    let Some(load) = db.wallet_load(workspace).await? else {
        return Ok(None);
    };
    if load.synced_seq > snap.seq {
        return Ok(None); // Synced past the snapshot meanwhile: look again next pass.
    }
    let unsynced: i64 = snap
        .journal
        .iter()
        .filter(|e| e.seq > load.synced_seq)
        .map(Entry::effect)
        .sum();
    let expected = load.available.get() + unsynced;
    if load.halted != snap.halted {
        let _ = wallets.cache().set_halted(id, load.halted).await;
    }
    Ok(Some((
        snap.avail - expected,
        snap.seq,
        expected,
        snap.holds > 0,
    )))
}

/// One check pass over `db`: expires reservations past their timeout (in the ledger, then in
/// the cache), then compares every cached wallet with the ledger and rebuilds the ones that
/// differ twice in a row, with an alarm: a metric, a log line and an audit event.
pub async fn check(wallets: &Wallets, db: &Database) -> Result<CheckReport, Problem> {
    let mut report = CheckReport::default();
    loop {
        let expired = db.ledger_expire_due(500).await?;
        for t in &expired {
            if let Some(pending) = t.pending_id {
                let _ = wallets
                    .cache()
                    .drop_hold(t.workspace.as_uuid(), pending)
                    .await;
            }
        }
        report.expired += expired.len() as u64;
        if expired.len() < 500 {
            break;
        }
    }
    for workspace in db.wallet_workspaces().await? {
        let Some((first, ..)) = drift(wallets, db, workspace).await? else {
            continue;
        };
        report.compared += 1;
        if first == 0 {
            continue;
        }
        // Look again: a settlement between the two reads can look like drift once.
        let Some((again, seq, expected, _)) = drift(wallets, db, workspace).await? else {
            continue;
        };
        if again == 0 {
            continue;
        }
        report.drifted += 1;
        metrics::counter!("genesis_wallet_drift_total").increment(1);
        tracing::error!(%workspace, drift = again, "wallet cache differs from the ledger; rebuilding it");
        let rebuilt = wallets
            .cache()
            .rebuild(workspace.as_uuid(), seq, expected)
            .await
            .unwrap_or(false);
        db.audit_record(
            &AuditEvent::new("system:wallet-check", "billing", "WALLET_CACHE_DRIFT")
                .workspace(workspace)
                .details(serde_json::json!({
                    "cache_minus_ledger": Millicents(again).to_string(),
                    "rebuilt": rebuilt,
                })),
        )
        .await?;
    }
    Ok(report)
}
