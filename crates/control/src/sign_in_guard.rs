//! What a sign-in attempt may cost before anyone is known (issue 19's sign-in flood).
//! A tenant's sign-up hashes its new password through the same pool ([`SignInGuard::hash_password`]).
//!
//! Checking a password is expensive on purpose: argon2id with OWASP's parameters takes
//! 19 MiB and tens of milliseconds of one core. Left unbounded, 256 concurrent sign-ins with
//! made-up addresses saturated both cores, grew `serve` from ~60 MB to 1.4 GB and took API
//! latency from 3 ms to 1.5 s. The guard puts four limits in front of that work:
//!
//! 1. **Per source.** Each address gets [`SignInLimits::per_source_per_minute`] attempts
//!    (a burst of that many, refilled over the minute), checked before the database or the
//!    hasher is touched. Past it: 429 with `Retry-After`.
//! 2. **A fixed pool of [`SignInLimits::hashers`] checker threads**, fewer than the cores,
//!    so memory is bounded by `hashers × 19 MiB`.
//! 3. **At a lower CPU priority** (nice 10): the API's threads win every contested core, so
//!    password checks only take what the API leaves.
//! 4. **A bounded queue** in front of the pool: at most [`SignInLimits::max_waiting`]
//!    attempts wait, for at most [`SignInLimits::max_wait`]; the rest are told at once to
//!    come back (503 with `Retry-After`), holding nothing, and before the database is asked
//!    anything ([`SignInGuard::saturated`]).
//!
//! Refusals that cost us nothing still cost the HTTP stack a request each, and a client that
//! is refused at once comes straight back: 256 such clients made ~5,000 requests a second,
//! enough to take the API's p99 past 200 ms on two cores. So a throttled or busy answer is
//! held for [`SignInLimits::refusal_delay`] before it is sent (a sleeping task, no CPU, at
//! most [`MAX_DELAYED`] at a time): a client that waits for its answer before trying again
//! (every browser, and most scripts) then gets one refusal per delay, not thousands.
//!
//! A dedicated pool rather than `spawn_blocking`: tokio's blocking pool grows to 512 threads
//! and is shared with everything else, and its threads' priority is not ours to lower.
//!
//! # Guarantees
//! - A wrong address and a wrong password cost the same: both go through the same queue and
//!   the same argon2id check (the unknown address against a decoy hash).
//! - The memory the guard holds is bounded: a fixed pool, a fixed queue, and a per-source
//!   table that forgets idle sources past [`crate::source_quota::MAX_SOURCES`].
//! - Refusals write a bounded number of audit rows (see [`crate::audit_budget`]).
//!
//! # Caveats
//! - If the checker threads cannot be started (the OS refuses threads), every check is
//!   refused as busy: sign-in fails closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::oneshot;

use crate::audit_budget::AuditBudget;
use crate::source_quota::SourceQuota;

/// Refusals held back at once; beyond this, they are sent at once (a sleeping task is
/// small, but not free).
pub const MAX_DELAYED: usize = 4096;

/// How much lower than the API's threads the checkers run (`nice` steps).
const CHECKER_NICENESS: i32 = 10;

/// The guard's knobs (`[god_mode]` in the configuration).
#[derive(Debug, Clone)]
pub struct SignInLimits {
    /// Attempts one source address may make per minute.
    pub per_source_per_minute: u32,
    /// Password checks that may run at once (checker threads).
    pub hashers: usize,
    /// Attempts that may wait for a checker; the rest are refused at once.
    pub max_waiting: usize,
    /// How long an attempt may wait for a checker.
    pub max_wait: Duration,
    /// How long a throttled or busy refusal is held before it is sent.
    pub refusal_delay: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            per_source_per_minute: 10,
            hashers: default_hashers(),
            max_waiting: 32,
            max_wait: Duration::from_secs(3),
            refusal_delay: Duration::from_secs(1),
        }
    }
}

/// Half the cores, at least one: the other half stays with the API.
pub fn default_hashers() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// Why an attempt was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// Every checker is busy and the queue is full, or the wait ran out.
    #[error("too many sign-ins are being checked; try again in a few seconds")]
    Saturated,
}

/// One password to check or hash. `work` is told whether the job waited past
/// `max_wait` (then it answers nothing: the attempt has been refused already).
struct Job {
    queued_at: Instant,
    work: Box<dyn FnOnce(bool) + Send>,
}

/// The guard; one per control plane, shared by every sign-in.
pub struct SignInGuard {
    limits: SignInLimits,
    attempts: SourceQuota,
    queue: Option<SyncSender<Job>>,
    queued: Arc<AtomicUsize>,
    delayed: AtomicUsize,
    /// LOGIN_FAILED rows: every refusal while the global budget lasts.
    pub(crate) failures_audit: AuditBudget<IpAddr>,
    /// Attempts refused by the per-source limit: one row per source per minute.
    pub(crate) throttled_audit: AuditBudget<IpAddr>,
}

impl std::fmt::Debug for SignInGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInGuard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for SignInGuard {
    fn default() -> Self {
        Self::new(SignInLimits::default(), Vec::new())
    }
}

impl SignInGuard {
    /// A guard with these limits, believing `X-Forwarded-For` only from `trusted_proxies`,
    /// and its checker threads (they end with the guard).
    pub fn new(limits: SignInLimits, trusted_proxies: Vec<IpAddr>) -> Self {
        let (tx, rx) = sync_channel::<Job>(limits.max_waiting);
        let rx = Arc::new(Mutex::new(rx));
        let queued = Arc::new(AtomicUsize::new(0));
        let mut started = 0;
        for i in 0..limits.hashers.max(1) {
            let (rx, queued, max_wait) = (rx.clone(), queued.clone(), limits.max_wait);
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || check_passwords(&rx, &queued, max_wait));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "a password checker could not start"),
            }
        }
        Self {
            attempts: SourceQuota::new(limits.per_source_per_minute, trusted_proxies),
            queue: (started > 0).then_some(tx),
            queued,
            delayed: AtomicUsize::new(0),
            failures_audit: AuditBudget::new(Duration::ZERO, 20),
            throttled_audit: AuditBudget::new(Duration::from_secs(60), 20),
            limits,
        }
    }

    /// The address an attempt came from: the peer, or the address a trusted proxy appended
    /// to `X-Forwarded-For`. Without a peer (never over TCP), every such attempt shares one
    /// "unknown" source, which is limited like any other.
    pub fn source(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        self.attempts
            .source(peer, headers)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// Whether `source` may make one more attempt now.
    pub fn admit(&self, source: IpAddr) -> bool {
        self.attempts.admit(source)
    }

    /// Holds a throttled or busy refusal for [`SignInLimits::refusal_delay`] (see the
    /// module documentation), unless [`MAX_DELAYED`] already are.
    pub async fn delay_refusal(&self) {
        if self.limits.refusal_delay.is_zero() {
            return;
        }
        if self.delayed.fetch_add(1, Ordering::AcqRel) < MAX_DELAYED {
            tokio::time::sleep(self.limits.refusal_delay).await;
        }
        self.delayed.fetch_sub(1, Ordering::AcqRel);
    }

    /// True when the queue is full: the attempt would be refused as busy, so nothing else
    /// (no database read) should be spent on it.
    pub fn saturated(&self) -> bool {
        self.queue.is_none() || self.queued.load(Ordering::Acquire) >= self.limits.max_waiting
    }

    /// Checks `password` against the PHC string `phc` on a checker thread, within the
    /// guard's queue limits.
    pub async fn check_password(&self, password: String, phc: String) -> Result<bool, Busy> {
        self.run(move || crate::credentials::verify_password(&password, &phc))
            .await
    }

    /// Hashes a new password (a sign-up) on a checker thread, within the same limits as a
    /// check: a sign-up costs what a sign-in costs, so it is bounded the same way.
    pub async fn hash_password(
        &self,
        password: String,
    ) -> Result<Result<String, crate::credentials::PasswordError>, Busy> {
        self.run(move || crate::credentials::hash_password(&password))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let queue = self.queue.as_ref().ok_or(Busy::Saturated)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            queued_at: Instant::now(),
            work: Box::new(move |late| {
                // The attempt gave up, or waited too long: its answer would go nowhere.
                if late || reply.is_closed() {
                    return;
                }
                let _ = reply.send(f());
            }),
        };
        self.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = queue.try_send(job) {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if matches!(e, TrySendError::Full(_)) {
                metrics::counter!("genesis_sign_in_busy_total").increment(1);
            }
            return Err(Busy::Saturated);
        }
        // A job past `max_wait` is dropped by its checker unanswered; the extra second
        // covers the check itself.
        tokio::time::timeout(self.limits.max_wait + Duration::from_secs(1), answer)
            .await
            .map_err(|_| Busy::Saturated)?
            .map_err(|_| Busy::Saturated)
    }
}

/// A checker thread: lowers its own priority, then checks passwords until the guard (and
/// with it the queue's sender) is gone.
fn check_passwords(rx: &Mutex<Receiver<Job>>, queued: &AtomicUsize, max_wait: Duration) {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), CHECKER_NICENESS) {
        tracing::warn!(error = %e, "a password checker runs at normal priority");
    }
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        queued.fetch_sub(1, Ordering::AcqRel);
        (job.work)(job.queued_at.elapsed() > max_wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_attempts_and_others_keep_theirs() {
        let guard = SignInGuard::new(
            SignInLimits {
                per_source_per_minute: 3,
                ..SignInLimits::default()
            },
            Vec::new(),
        );
        let a: IpAddr = "203.0.113.7".parse().expect("ip");
        let b: IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!((0..50).filter(|_| guard.admit(a)).count(), 3);
        assert!(guard.admit(b));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_past_the_queue_are_refused_at_once_and_the_rest_are_answered() {
        let guard = Arc::new(SignInGuard::new(
            SignInLimits {
                hashers: 1,
                max_waiting: 2,
                max_wait: Duration::from_secs(30),
                ..SignInLimits::default()
            },
            Vec::new(),
        ));
        let phc = crate::credentials::hash_password("correct horse battery").expect("hash");
        let attempts: Vec<_> = (0..40)
            .map(|_| {
                let (g, phc) = (guard.clone(), phc.clone());
                tokio::spawn(async move { g.check_password("wrong guess!!".into(), phc).await })
            })
            .collect();
        let mut answers = Vec::new();
        for a in attempts {
            answers.push(a.await.expect("task"));
        }
        let checked = answers.iter().filter(|a| **a == Ok(false)).count();
        let busy = answers
            .iter()
            .filter(|a| **a == Err(Busy::Saturated))
            .count();
        assert_eq!(checked + busy, 40, "every attempt is answered: {answers:?}");
        assert!(checked >= 1 && busy >= 30, "{checked} checked, {busy} busy");
        assert!(!guard.saturated(), "the queue drains");
        assert_eq!(
            guard
                .check_password("correct horse battery".into(), phc)
                .await,
            Ok(true)
        );
    }
}
