//! The one driver of every [`Reconciler`]: leader election, a pass every period or at once
//! when woken, parts isolated from each other, a retry policy per error, and a published
//! status (HOUSE_STYLE: kube-rs's `Controller`, Nexus's background-task driver).
//!
//! # Guarantees
//! - A pass runs only on the replica that holds the reconciler's leader lock, checked
//!   before every pass (`genesis_store::leader`).
//! - A part that fails (an error or a panic) is retried after its reconciler's
//!   [`Reconciler::error_policy`]; the other parts run on schedule meanwhile.
//! - After each pass the leader publishes the status of every part (last report, last error,
//!   consecutive failures, next retry) in the coordinating database, throttled to one write
//!   per [`PUBLISH_EVERY`] unless an error is new or the pass was asked for, so that any
//!   replica can show it.
//! - A wake (`Database::reconciler_wake`, a PostgreSQL `NOTIFY`) reaches the leader on any
//!   replica, this one included, through [`Wakers::listen`], and starts a pass at once;
//!   parts in back-off stay in back-off.
//!
//! # Caveats
//! - Parts run one after another, as the loops did before the driver: one slow database
//!   delays the others' pass, but never stops it.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use genesis_store::{Database, Leadership};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::reconciler::{Reconciler, Retry, backoff};

/// The longest a status goes unpublished while nothing new happens.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(5);

/// What one part last did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartStatus {
    /// The part (`us-east+us-west`, or `fleet`).
    pub part: String,
    /// The last successful pass's report.
    pub last_report: Option<serde_json::Value>,
    /// When it ended.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// The last error (or panic), for people.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// While failing: when the part is tried again.
    pub retry_at: Option<DateTime<Utc>>,
}

/// What a reconciler last did, as its leader publishes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReconcilerStatus {
    /// Its name.
    pub name: String,
    /// Its period, in milliseconds.
    pub every_ms: u64,
    /// Passes run by the current leader since it took the lead.
    pub passes: u64,
    /// When the last pass ended.
    pub last_pass_at: Option<DateTime<Utc>>,
    /// Each part.
    pub parts: Vec<PartStatus>,
}

/// The wake-up bells of the reconcilers this process drives, by name.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    bells: Arc<std::sync::Mutex<BTreeMap<&'static str, Arc<Notify>>>>,
}

impl Wakers {
    /// The bell of `name` (created on first use).
    pub fn bell(&self, name: &'static str) -> Arc<Notify> {
        self.bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .clone()
    }

    /// Rings `name`'s bell, if a reconciler of that name runs in this process.
    fn ring(&self, name: &str) {
        let bells = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = bells.get(name) {
            b.notify_one();
        }
    }

    /// Rings the bells named by wake-ups sent from any replica, until `stop`.
    pub async fn listen(&self, coordinator: Database, mut stop: watch::Receiver<bool>) {
        loop {
            let mut wakes = match coordinator.reconciler_wakes().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for reconciler wake-ups; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    next = wakes.next() => match next {
                        Ok(name) => self.ring(&name),
                        Err(e) => {
                            tracing::warn!(error = %e, "reconciler wake-ups interrupted");
                            break;
                        }
                    },
                }
            }
        }
    }
}

/// The name this replica publishes statuses under: host and process.
pub fn replica_name() -> String {
    let host = rustix::system::uname();
    format!(
        "{}:{}",
        host.nodename().to_string_lossy(),
        std::process::id()
    )
}

/// Per-part state between passes.
#[derive(Default)]
struct PartState {
    status: PartStatus,
    retry_at: Option<Instant>,
}

/// Runs `reconciler` every `every` (or at once when `wake` rings) while this process leads
/// it on `coordinator`, until `stop`.
pub async fn drive<R: Reconciler>(
    reconciler: Arc<R>,
    every: Duration,
    coordinator: Database,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let replica = replica_name();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: Option<Leadership> = None;
    let mut parts: BTreeMap<String, PartState> = BTreeMap::new();
    let mut status = ReconcilerStatus {
        name: R::NAME.into(),
        every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
        ..Default::default()
    };
    let mut published: Option<Instant> = None;
    loop {
        let woken = tokio::select! {
            _ = tick.tick() => false,
            () = wake.notified() => true,
            _ = stop.changed() => return,
        };
        if let Some(l) = held.as_mut()
            && !l.still_held().await
        {
            tracing::warn!(
                reconciler = R::NAME,
                "lost leadership (its connection died)"
            );
            held = None;
        }
        if held.is_none() {
            match coordinator.leader_try(R::NAME).await {
                Ok(Some(l)) => {
                    tracing::info!(reconciler = R::NAME, "leading");
                    held = Some(l);
                    status.passes = 0;
                    parts.clear();
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(reconciler = R::NAME, error = %e, "cannot try leadership");
                    continue;
                }
            }
        }
        let mut new_error = false;
        for part in reconciler.parts() {
            let state = parts.entry(part.label.clone()).or_default();
            state.status.part.clone_from(&part.label);
            if state.retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            let started = Instant::now();
            let started_at = Utc::now();
            let outcome = AssertUnwindSafe(reconciler.reconcile_part(&part))
                .catch_unwind()
                .await;
            let seconds = started.elapsed().as_secs_f64();
            // Each pass's wall-clock span, from the replica's own log: how leadership can be
            // checked from outside (no two replicas' passes of one reconciler overlap).
            tracing::debug!(
                target: "genesis_passes",
                reconciler = R::NAME,
                part = %part.label,
                started_us = started_at.timestamp_micros(),
                ended_us = Utc::now().timestamp_micros(),
                "pass ran"
            );
            let (outcome_label, error, retry) = match outcome {
                Ok(Ok(report)) => {
                    if R::noteworthy(&report) {
                        tracing::info!(reconciler = R::NAME, part = %part.label, report = ?report, "pass");
                    }
                    state.status.last_report = serde_json::to_value(&report).ok();
                    state.status.last_ok_at = Some(Utc::now());
                    state.status.consecutive_failures = 0;
                    state.status.retry_at = None;
                    state.retry_at = None;
                    ("ok", None, None)
                }
                Ok(Err(e)) => (
                    "error",
                    Some(e.to_string()),
                    Some(reconciler.error_policy(&e)),
                ),
                Err(panic) => (
                    "panic",
                    Some(format!("panicked: {}", panic_message(panic.as_ref()))),
                    Some(Retry::Backoff),
                ),
            };
            metrics::counter!("genesis_reconciler_passes_total", "reconciler" => R::NAME, "part" => part.label.clone(), "outcome" => outcome_label)
                .increment(1);
            metrics::histogram!("genesis_reconciler_pass_seconds", "reconciler" => R::NAME)
                .record(seconds);
            if let (Some(error), Some(retry)) = (error, retry) {
                state.status.consecutive_failures += 1;
                let wait = match retry {
                    Retry::Backoff => backoff(every, state.status.consecutive_failures),
                    Retry::After(d) => d,
                };
                tracing::warn!(
                    reconciler = R::NAME,
                    part = %part.label,
                    failures = state.status.consecutive_failures,
                    retry_in_s = wait.as_secs_f64(),
                    error = %error,
                    "pass failed"
                );
                new_error |= state.status.last_error.as_deref() != Some(error.as_str())
                    || state.status.consecutive_failures == 1;
                state.status.last_error = Some(error);
                state.status.last_error_at = Some(Utc::now());
                state.retry_at = Some(Instant::now() + wait);
                state.status.retry_at =
                    Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
            }
        }
        status.passes += 1;
        status.last_pass_at = Some(Utc::now());
        status.parts = parts.values().map(|p| p.status.clone()).collect();
        if woken || new_error || published.is_none_or(|at| at.elapsed() >= PUBLISH_EVERY) {
            match serde_json::to_value(&status) {
                Ok(json) => match coordinator
                    .reconciler_status_put(R::NAME, &replica, &json)
                    .await
                {
                    Ok(()) => published = Some(Instant::now()),
                    Err(e) => {
                        tracing::warn!(reconciler = R::NAME, error = %e, "cannot publish status");
                    }
                },
                Err(e) => tracing::warn!(reconciler = R::NAME, error = %e, "status is not JSON"),
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".into()
    }
}
