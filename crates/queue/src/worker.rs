//! [`Worker`]: claims jobs within the governor and runs them, extending their leases while
//! they run. On the hot path a finished job's completion and the next claim are one round
//! trip; idle workers poll with a short sleep (or the rate window's hint).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::bus::{Bus, Claimed, FailOutcome, Idle, QueueError};

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Try again after the backoff (until attempts run out).
    Retry(String),
    /// Never retry: straight to dead letters.
    Permanent(String),
}

/// Runs jobs. Jobs may run more than once (at-least-once): handlers must be idempotent;
/// `job.attempt` says which run this is.
pub trait Handler: Send + Sync + 'static {
    /// Runs one job.
    fn handle(&self, job: &Claimed) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A worker process's loop.
pub struct Worker<H> {
    bus: Bus,
    handler: Arc<H>,
    id: String,
    capacity: u32,
    poll: Duration,
}

impl<H: Handler> Worker<H> {
    /// A worker running up to `capacity` jobs at once in this process (the governor still
    /// bounds the total across processes).
    pub fn new(bus: Bus, handler: H, capacity: u32) -> Self {
        Self {
            bus,
            handler: Arc::new(handler),
            id: format!("w-{}", uuid::Uuid::now_v7().simple()),
            capacity: capacity.max(1),
            poll: Duration::from_millis(20),
        }
    }

    /// This worker's id (recorded on the jobs it holds).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` resolves, then lets running jobs finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), QueueError> {
        let mut tasks: JoinSet<()> = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let free = self.capacity.saturating_sub(tasks.len() as u32);
            let mut wait = self.poll;
            if free > 0 {
                match self.bus.claim(&self.id, free).await {
                    Ok((jobs, idle)) => {
                        let got = !jobs.is_empty();
                        for job in jobs {
                            tasks.spawn(run_chain(
                                self.bus.clone(),
                                self.handler.clone(),
                                self.id.clone(),
                                job,
                            ));
                        }
                        if let Idle::Rate(d) = idle {
                            wait = d;
                        } else if got {
                            wait = Duration::ZERO;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claim failed; retrying");
                        wait = Duration::from_millis(500);
                    }
                }
            }
            if wait.is_zero() {
                // More may be claimable at once; only stop if asked to.
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break,
                    _ = std::future::ready(()) => continue,
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// Runs `job`, then whatever the completion claimed next, until nothing comes back.
async fn run_chain<H: Handler>(bus: Bus, handler: Arc<H>, worker: String, first: Claimed) {
    let mut next = Some(first);
    while let Some(job) = next.take() {
        let outcome = with_lease(&bus, &worker, &job, handler.handle(&job)).await;
        match outcome {
            Ok(()) => match bus.complete(&worker, &job, 1).await {
                Ok((counted, mut more, _)) => {
                    if !counted {
                        tracing::warn!(job = %job.id, "completed after losing the lease; another worker has it");
                    }
                    next = more.pop();
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "completion not recorded; the job will run again")
                }
            },
            Err(err) => {
                let (msg, permanent) = match &err {
                    JobError::Retry(m) => (m.as_str(), false),
                    JobError::Permanent(m) => (m.as_str(), true),
                };
                match bus.fail(&worker, &job, msg, permanent).await {
                    Ok(FailOutcome::Dead) => {
                        tracing::warn!(job = %job.id, error = msg, "job dead-lettered")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = %e, "failure not recorded; the job will run again")
                    }
                }
            }
        }
    }
}

/// Runs `work`, extending the job's lease every third of its length.
async fn with_lease<F: Future<Output = Result<(), JobError>>>(
    bus: &Bus,
    worker: &str,
    job: &Claimed,
    work: F,
) -> Result<(), JobError> {
    let every = bus.config().lease / 3;
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.tick().await;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = ticker.tick() => {
                if let Ok(false) = bus.extend(worker, &job.id).await {
                    tracing::warn!(job = %job.id, "lease lost while running");
                }
            }
        }
    }
}
