//! The control plane's side of the command journal: [`JournalSink`] takes what the
//! [`SidecarClient`](genesis_ignition::SidecarClient) reports about each command it sent,
//! buffers it in memory and writes it to the coordinator database in one statement per
//! flush (the droplet page's "recent commands", spec 44.1).
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

use genesis_ignition::sidecar_client::{CommandJournal, CommandRecord};
use genesis_store::command_journal::CommandEntry;
use genesis_store::{Database, StoreError};

/// The most entries buffered between flushes.
pub const MAX_BUFFERED: usize = 100_000;

/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Buffers command records and writes them in batches.
pub struct JournalSink {
    db: Database,
    pending: Mutex<VecDeque<CommandEntry>>,
    last_prune: Mutex<Option<Instant>>,
}

impl JournalSink {
    /// A sink writing to `db` (the coordinator database).
    pub fn new(db: Database) -> Self {
        Self {
            db,
            pending: Mutex::new(VecDeque::new()),
            last_prune: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<CommandEntry>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what is buffered; on failure puts it back (in front of newer entries).
    /// Returns how many entries were written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let batch: Vec<CommandEntry> = self.lock().drain(..).collect();
        if !batch.is_empty()
            && let Err(e) = self.db.command_journal_append(&batch).await
        {
            let mut pending = self.lock();
            for entry in batch.into_iter().rev() {
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
            self.db.command_journal_prune().await?;
        }
        Ok(batch.len())
    }

    /// A sink writing to `db`, and its flusher running every `every` until `stop` turns
    /// true (what `genesis serve`, the benchmarks and the tests all start).
    pub fn start(
        db: Database,
        every: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> (std::sync::Arc<Self>, tokio::task::JoinHandle<()>) {
        let sink = std::sync::Arc::new(Self::new(db));
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
