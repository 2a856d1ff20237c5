//! Keeps the wallet cache and the ledger one: the syncer writes the cache's journal to the
//! ledger, and the check proves *ledger + unsynced journal = cache* for every cached wallet,
//! puts the cache right when it is not (the ledger is the truth for what it holds), and
//! expires reservations nobody settled.
//!
//! Both are safe to run twice and on any replica: journal entries carry their transfer ids,
//! so writing one again changes nothing, and a wallet's mark only moves forward.

use futures_util::{StreamExt, stream};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
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

/// The transfers a wallet's journal entries stand for, in order, leaving out the entries
/// numbered up to `synced` (written by an earlier pass whose ack was lost).
///
/// A reservation posted within the same entries is written as one posted transfer under the
/// reservation's id: one ledger row instead of two, with the same effect on every balance
/// (a pending transfer that is posted before anyone reads it moves nothing a reader could
/// see). Most calls settle within milliseconds, so this halves what the ledger writes. It
/// is decided again the same way if the entries are written again: a repeat is only ever
/// of entries past `synced`, and those were not written, or were written in this very
/// shape by a pass that committed without acking (then the same ids make it a no-op).
fn transfers_of(workspace: WorkspaceId, entries: &[Entry], synced: i64) -> Vec<NewTransfer> {
    let fresh = || entries.iter().filter(|e| e.seq > synced);
    let reserved: std::collections::HashSet<&str> = fresh()
        .filter(|e| e.op == "R")
        .map(|e| e.hold.as_str())
        .collect();
    let posted: std::collections::HashMap<&str, i64> = fresh()
        .filter(|e| e.op == "P" && reserved.contains(e.hold.as_str()))
        .map(|e| (e.hold.as_str(), e.amount))
        .collect();
    fresh()
        .filter(|e| !(e.op == "P" && posted.contains_key(e.hold.as_str())))
        .filter_map(|e| {
            let t = transfer_of(workspace, e);
            if t.is_none() {
                tracing::error!(%workspace, seq = e.seq, "a wallet journal entry that no transfer stands for");
            }
            let mut t = t?;
            if let Some(&amount) = posted.get(e.hold.as_str()) {
                t.phase = Phase::Single;
                t.amount = Millicents(amount);
            }
            Some(t)
        })
        .collect()
}

/// Snapshots read, and acks sent, at once: each is a round trip, and a pass takes up to a
/// thousand wallets.
const IN_FLIGHT: usize = 32;

/// One database's share of a sync pass.
struct Batch {
    shard: usize,
    db: Database,
    /// Each wallet's entries, and its last entry (the mark).
    wallets: Vec<(WorkspaceId, Vec<Entry>, i64)>,
}

/// One sync pass: takes the wallets with journal entries and writes them to their ledgers,
/// each database's share in one transaction with the wallets' marks, then drops the
/// entries written from the journal. A wallet taken and not left with an empty journal is
/// marked again, whatever failed: its later entries do not mark it themselves.
pub async fn sync(wallets: &Wallets) -> Result<SyncReport, Problem> {
    let cache = wallets.cache();
    let taken = cache
        .take_dirty(WALLETS_PER_PASS)
        .await
        .map_err(Problem::unavailable)?;
    let mut done = std::collections::HashSet::new();
    let result = sync_taken(wallets, &taken, &mut done).await;
    let left: Vec<Uuid> = taken.into_iter().filter(|id| !done.contains(id)).collect();
    stream::iter(left)
        .for_each_concurrent(IN_FLIGHT, |id| async move {
            if let Err(e) = cache.mark(id).await {
                tracing::warn!(error = %e, wallet = %id, "wallet not marked for the next sync pass");
            }
        })
        .await;
    result
}

/// [`sync`] of the wallets `taken`; those left with nothing to write go into `done`.
async fn sync_taken(
    wallets: &Wallets,
    taken: &[Uuid],
    done: &mut std::collections::HashSet<Uuid>,
) -> Result<SyncReport, Problem> {
    let cache = wallets.cache();
    let snapshots: Vec<_> = stream::iter(taken.iter().copied())
        .map(|id| async move { (id, cache.snapshot(id, ENTRIES_PER_WALLET).await) })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut report = SyncReport::default();
    let mut batches: Vec<Batch> = Vec::new();
    for (id, snap) in snapshots {
        let Some(snap) = snap.map_err(Problem::unavailable)? else {
            done.insert(id); // Flushed: nothing left to write.
            continue;
        };
        let Some(mark) = snap.journal.last().map(|e| e.seq) else {
            done.insert(id);
            continue;
        };
        let Ok(workspace) = WorkspaceId::from_uuid(id) else {
            done.insert(id); // The nil id: no wallet has it.
            continue;
        };
        let (shard, db) = match wallets.shard_of(workspace).await {
            Ok(found) => found,
            Err(p) => {
                tracing::warn!(%workspace, detail = %p.detail, "wallet journal not synced");
                continue;
            }
        };
        let entry = (workspace, snap.journal, mark);
        match batches.iter_mut().find(|b| b.shard == shard) {
            Some(b) => b.wallets.push(entry),
            None => batches.push(Batch {
                shard,
                db,
                wallets: vec![entry],
            }),
        }
    }
    let mut journaled_at: Vec<i64> = Vec::new();
    for Batch { db, wallets, .. } in batches {
        let ids: Vec<WorkspaceId> = wallets.iter().map(|(ws, ..)| *ws).collect();
        let synced = db.wallet_synced_seqs(&ids).await?;
        let mut chains: Vec<Vec<NewTransfer>> = Vec::new();
        let mut marks = Vec::with_capacity(wallets.len());
        for (ws, entries, mark) in &wallets {
            let already = synced.get(ws).copied().unwrap_or(0);
            journaled_at.extend(
                entries
                    .iter()
                    .filter(|e| e.seq > already)
                    .filter_map(|e| e.at_ms),
            );
            chains.extend(
                transfers_of(*ws, entries, already)
                    .into_iter()
                    .map(|t| vec![t]),
            );
            marks.push((*ws, *mark));
        }
        if !chains.is_empty() {
            let outcomes = db
                .ledger_sync(&chains, &marks, "system:wallet-sync")
                .await?;
            for (chain, outcome) in chains.iter().zip(&outcomes) {
                match outcome {
                    Ok(_) => report.transfers += 1,
                    Err((_, refusal)) => {
                        report.refused += 1;
                        refused(chain.first(), *refusal);
                    }
                }
            }
        }
        let acks: Vec<_> = stream::iter(marks)
            .map(|(ws, mark)| async move { (ws, cache.ack(ws.as_uuid(), mark).await) })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        for (ws, ack) in acks {
            report.wallets += 1;
            match ack {
                Ok(0) => {
                    done.insert(ws.as_uuid());
                }
                Ok(_) => {} // Entries came meanwhile: marked again for the next pass.
                // Written but not dropped: the next pass writes them again, to no effect.
                Err(e) => tracing::warn!(error = %e, "wallet journal not trimmed"),
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
    if snap.journal_len > 0 {
        // Only a journal's first entry marks its wallet; a mark lost to a Redis error
        // between the script and the mark is put back here.
        let _ = wallets.cache().mark(id).await;
    }
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
            &AuditEvent::new(
                "system:wallet-check",
                AuditCategory::Billing,
                "WALLET_CACHE_DRIFT",
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, op: &str, hold: Uuid, amount: i64, held: Option<i64>) -> Entry {
        Entry {
            seq,
            op: op.into(),
            hold: hold.to_string(),
            id: (op != "R").then(|| Uuid::now_v7().to_string()),
            kind: "CSE_SEARCH".into(),
            amount,
            held,
            timeout_s: (op == "R").then_some(60),
            reference: (op == "R").then(|| "managed:google_cse".into()),
            at_ms: Some(0),
        }
    }

    fn shape(ts: &[NewTransfer]) -> Vec<(Uuid, Phase, i64)> {
        ts.iter().map(|t| (t.id, t.phase, t.amount.get())).collect()
    }

    #[test]
    fn a_reservation_posted_in_the_same_entries_is_one_posted_transfer_under_its_id() {
        let ws = WorkspaceId::new();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let entries = [
            entry(1, "R", a, 500, None),
            entry(2, "R", b, 500, None),
            entry(3, "P", a, 300, Some(500)),
            entry(4, "V", b, 0, Some(500)),
            entry(5, "R", c, 700, None),
        ];
        let void_id = Uuid::parse_str(entries[3].id.as_deref().expect("an id")).expect("a uuid");
        let ts = transfers_of(ws, &entries, 0);
        assert_eq!(
            shape(&ts),
            vec![
                (a, Phase::Single, 300),
                (b, Phase::Pending { timeout_s: 60 }, 500),
                (void_id, Phase::Void { pending: b }, 0),
                (c, Phase::Pending { timeout_s: 60 }, 700),
            ],
            "a void keeps its reservation: the ledger records the call that failed"
        );
        assert_eq!(ts[0].reference.as_deref(), Some("managed:google_cse"));
    }

    #[test]
    fn entries_already_written_are_left_out_and_a_post_of_one_stays_a_post() {
        let ws = WorkspaceId::new();
        let a = Uuid::now_v7();
        let entries = [
            entry(7, "R", a, 500, None),
            entry(8, "P", a, 500, Some(500)),
        ];
        let ts = transfers_of(ws, &entries, 7);
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].phase, Phase::Post { pending: a });
        assert!(transfers_of(ws, &entries, 8).is_empty());
    }
}
