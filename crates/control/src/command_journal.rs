//! The control plane's side of the command journal: [`JournalSink`] takes what the
//! [`SidecarClient`](genesis_ignition::SidecarClient) reports about each command it sent,
//! buffers it in memory and writes it, one statement per database and flush, to the
//! database of the region the command's workspace lives in (the droplet page's "recent
//! commands", spec 44.1).
//!
//! The journal's `detail` is what a sidecar or n8n said when a command failed, which can
//! name a tenant's data; so it stays in the tenant's region (spec 62.2), and a tenant's
//! deletion finds it there (spec 64.2). An entry whose workspace no region holds (gone, or a
//! lookup that failed) goes to the coordinator's database, as other such records do.
//!
//! # Guarantees
//! - Sending a command never waits for the journal: recording is a push onto a buffer.
//! - A failed flush keeps its entries for the next one; the buffer holds at most
//!   [`MAX_BUFFERED`] entries, and beyond that the oldest are dropped and counted
//!   (`genesis_command_journal_dropped_total`): a journal must not take the control plane
//!   down with it while the database is away.
//! - Entries older than the retention (`genesis_store::command_journal::COMMAND_JOURNAL_DAYS`)
//!   are pruned by the flusher about once an hour.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, HashMap};

use genesis_core::{Region, WorkspaceId};
use genesis_ignition::sidecar_client::{CommandJournal, CommandRecord};
use genesis_store::command_journal::CommandEntry;
use genesis_store::{Database, RegionalStore, StoreError};

/// The most entries buffered between flushes.
pub const MAX_BUFFERED: usize = 100_000;

/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// The most workspaces whose region the sink remembers (a workspace never changes region;
/// the map is only emptied when it grows past this).
const REGIONS_REMEMBERED: usize = 100_000;

/// Buffers command records and writes them in batches.
pub struct JournalSink {
    stores: RegionalStore,
    pending: Mutex<VecDeque<CommandEntry>>,
    last_prune: Mutex<Option<Instant>>,
    regions: Mutex<HashMap<uuid::Uuid, Region>>,
}

impl JournalSink {
    /// A sink writing to the regional databases of `stores`.
    pub fn new(stores: RegionalStore) -> Self {
        Self {
            stores,
            pending: Mutex::new(VecDeque::new()),
            last_prune: Mutex::new(None),
            regions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<CommandEntry>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index (in `stores.distinct()`) of the database workspace `ws`'s entries go to.
    async fn home_of(&self, ws: uuid::Uuid) -> usize {
        let known = self
            .regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ws)
            .copied();
        let region = match known {
            Some(r) => Some(r),
            None => match WorkspaceId::from_uuid(ws) {
                Ok(id) => match self.stores.workspace_find(id).await {
                    Ok((w, _)) => {
                        let mut map = self.regions.lock().unwrap_or_else(|p| p.into_inner());
                        if map.len() >= REGIONS_REMEMBERED {
                            map.clear();
                        }
                        map.insert(ws, w.region);
                        Some(w.region)
                    }
                    Err(_) => None,
                },
                Err(_) => None,
            },
        };
        self.stores
            .index_of(region.unwrap_or(genesis_store::regions::COORDINATOR))
    }

    /// Writes what is buffered, each entry to its workspace's database; what a database
    /// refused goes back (in front of newer entries). Returns how many entries were written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let batch: Vec<CommandEntry> = self.lock().drain(..).collect();
        let mut by_db: BTreeMap<usize, Vec<CommandEntry>> = BTreeMap::new();
        for entry in batch {
            let home = self.home_of(entry.workspace_id).await;
            by_db.entry(home).or_default().push(entry);
        }
        let mut written = 0;
        let mut failed = None;
        let mut unwritten = Vec::new();
        for (home, entries) in by_db {
            let db: &Database = &self.stores.distinct()[home];
            match db.command_journal_append(&entries).await {
                Ok(()) => written += entries.len(),
                Err(e) => {
                    unwritten.extend(entries);
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            unwritten.sort_by_key(|e| e.sent_at);
            let mut pending = self.lock();
            for entry in unwritten.into_iter().rev() {
                pending.push_front(entry);
            }
            trim(&mut pending);
            return Err(e);
        }
        let prune_due = {
            let mut last = self.last_prune.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if prune_due {
            for db in self.stores.distinct() {
                db.command_journal_prune().await?;
            }
        }
        Ok(written)
    }

    /// A sink writing to `stores`, and its flusher running every `every` until `stop` turns
    /// true (what `genesis serve`, the benchmarks and the tests all start).
    pub fn start(
        stores: RegionalStore,
        every: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> (std::sync::Arc<Self>, tokio::task::JoinHandle<()>) {
        let sink = std::sync::Arc::new(Self::new(stores));
        let flusher = tokio::spawn({
            let sink = sink.clone();
            async move { sink.run(every, stop).await }
        });
        (sink, flusher)
    }

    /// Flushes every `every` until `stop` turns true, then once more.
    pub async fn run(&self, every: Duration, stop: tokio::sync::watch::Receiver<bool>) {
        let mut pace = Pace::new(every, stop);
        loop {
            let stopping = pace.wait().await;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "command journal not written; kept for the next flush");
            }
            if stopping {
                return;
            }
        }
    }
}

/// The flusher's clock: one interval, cut short when a stop is asked for.
///
/// When every sender of the stop channel is gone, nothing can stop the flusher any more and
/// it keeps its interval for the life of the process. (It used to spin there: a closed
/// channel is always "changed", and a benchmark that dropped its sender lost a good part of
/// a core to an empty flush loop.)
struct Pace {
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    stoppable: bool,
}

impl Pace {
    fn new(every: Duration, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            every,
            stop,
            stoppable: true,
        }
    }

    /// Waits for the next flush; answers whether it is the last one.
    async fn wait(&mut self) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.every) => {}
            changed = self.stop.changed(), if self.stoppable => self.stoppable = changed.is_ok(),
        }
        *self.stop.borrow()
    }
}

fn trim(pending: &mut VecDeque<CommandEntry>) {
    let over = pending.len().saturating_sub(MAX_BUFFERED);
    if over > 0 {
        pending.drain(..over);
        metrics::counter!("genesis_command_journal_dropped_total").increment(over as u64);
    }
}

impl CommandJournal for JournalSink {
    fn record(&self, r: CommandRecord) {
        let mut pending = self.lock();
        pending.push_back(CommandEntry {
            workspace_id: r.workspace,
            provider_id: r.provider_id,
            action: r.action.code().to_owned(),
            sent_at: r.sent_at,
            elapsed_ms: r.elapsed_ms,
            outcome: r.outcome.to_owned(),
            detail: r.detail,
        });
        trim(&mut pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn without_a_sender_the_flusher_keeps_its_interval() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        drop(tx);
        let mut pace = Pace::new(Duration::from_secs(1), rx);
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            assert!(!pace.wait().await, "nobody asked it to stop");
        }
        // The first wait may end early (the channel's closing is a change); the others
        // each take the whole interval.
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_cuts_the_interval_short() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut pace = Pace::new(Duration::from_secs(60), rx);
        let start = tokio::time::Instant::now();
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(true);
            tx
        });
        assert!(pace.wait().await, "the stop is seen");
        assert!(start.elapsed() < Duration::from_secs(60));
        drop(stopper.await);
    }
}
