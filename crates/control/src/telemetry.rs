//! What `/metrics` says: every family's HELP text, and the fleet's figures, read from the
//! databases at each scrape.
//!
//! The fleet gauges are computed when Prometheus asks rather than kept up to date by every
//! state change: three `GROUP BY`s over indexed tables cost a few milliseconds at 15,000
//! droplets, every replica answers the same (the database is the truth, not a process's
//! memory), and a replica that just started reports the right figures at once. Every known
//! label combination is set, zero included, so that a state the fleet left reads 0 instead
//! of keeping its last value.

use genesis_core::{DropletState, IgnitionStep, Region, WorkspaceStatus};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};

use crate::AppState;

/// What a family is, for its TYPE line (and its unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A histogram of seconds.
    Seconds,
}

/// Every family the control plane exposes, with its HELP text. The dashboards and alert
/// rules in `deploy/observability/` may name only these (a test checks).
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "genesis_mail_sent_total",
        Kind::Counter,
        "E-mail messages the SMTP server took, one per addressee, by notification kind.",
    ),
    (
        "genesis_mail_retried_total",
        Kind::Counter,
        "Notifications whose send failed for now and were scheduled again.",
    ),
    (
        "genesis_mail_dead_total",
        Kind::Counter,
        "Notifications that failed for good (dead letters), by kind.",
    ),
    (
        "genesis_mail_unsubscribed_total",
        Kind::Counter,
        "One-click unsubscribes from advisory notices, by kind.",
    ),
    (
        "genesis_inbound_refusals_total",
        Kind::Counter,
        "Calls with an ingest token refused for their droplet signature (spec 65.3), by reason.",
    ),
    (
        "genesis_webhook_deliveries_total",
        Kind::Counter,
        "Outbound webhook attempts, by outcome (delivered, retrying, dead).",
    ),
    (
        "genesis_wallet_refusals_total",
        Kind::Counter,
        "Managed calls the wallet's balance or kill-switch refused, by transaction type.",
    ),
    (
        "genesis_wallet_unbilled_millicents_total",
        Kind::Counter,
        "Cost of managed calls that could not be charged (kill-switch off, or a lost reservation), millicents.",
    ),
    (
        "genesis_wallet_late_settlements_total",
        Kind::Counter,
        "Settlements that came after their reservation expired.",
    ),
    (
        "genesis_wallet_synced_transfers_total",
        Kind::Counter,
        "Wallet journal entries written to the ledger.",
    ),
    (
        "genesis_wallet_sync_refusals_total",
        Kind::Counter,
        "Wallet journal entries the ledger refused, by reason.",
    ),
    (
        "genesis_wallet_sync_lag_seconds",
        Kind::Gauge,
        "The longest a wallet journal entry waited for the ledger in the last sync pass.",
    ),
    (
        "genesis_wallet_drift_total",
        Kind::Counter,
        "Wallets whose cache differed from the ledger and was rebuilt from it.",
    ),
    (
        "genesis_managed_calls_total",
        Kind::Counter,
        "Managed-service gateway calls, by service and outcome (charged, not_delivered, unreachable).",
    ),
    (
        "genesis_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route template and status.",
    ),
    (
        "genesis_http_request_seconds",
        Kind::Seconds,
        "Time to answer an HTTP request, by method and route template.",
    ),
    (
        "genesis_api_auth_failures_total",
        Kind::Counter,
        "API requests refused for a missing or wrong bearer token.",
    ),
    (
        "genesis_audit_write_failures_total",
        Kind::Counter,
        "Audit events that could not be written.",
    ),
    (
        "genesis_command_journal_dropped_total",
        Kind::Counter,
        "Sidecar command journal entries dropped because the journal was full.",
    ),
    (
        "genesis_handshakes_total",
        Kind::Counter,
        "Sidecar handshakes, by outcome.",
    ),
    (
        "genesis_reattestations_total",
        Kind::Counter,
        "Sidecar re-attestations, by outcome.",
    ),
    (
        "genesis_heartbeats_total",
        Kind::Counter,
        "Sidecar heartbeats received, by outcome.",
    ),
    (
        "genesis_heartbeats_recorded_total",
        Kind::Counter,
        "Heartbeats written to the database in batches.",
    ),
    (
        "genesis_sidecar_command_refusals_total",
        Kind::Counter,
        "Commands a sidecar refused (unsigned, expired, replayed, mis-scoped), by reason.",
    ),
    (
        "genesis_sidecar_reports_refused_total",
        Kind::Counter,
        "Sidecar metric reports refused, by reason.",
    ),
    (
        "genesis_sidecar_tokens_renewed_total",
        Kind::Counter,
        "Sidecar tokens renewed.",
    ),
    (
        "genesis_sign_ins_total",
        Kind::Counter,
        "God Mode sign-in attempts, by outcome.",
    ),
    (
        "genesis_sign_in_busy_total",
        Kind::Counter,
        "God Mode sign-ins refused because the password checks were all busy.",
    ),
    (
        "genesis_tenant_access_refused_total",
        Kind::Counter,
        "Tenant data access refused by the fail-closed checks, by reason.",
    ),
    (
        "genesis_support_denied_total",
        Kind::Counter,
        "Support staff refused an action on a tenant (spec 63.3), by why: no grant, pending, expired, beyond the tier, fleet-only.",
    ),
    (
        "genesis_partitions_created_total",
        Kind::Counter,
        "Lead partitions created.",
    ),
    (
        "genesis_partitions_dropped_total",
        Kind::Counter,
        "Lead partitions dropped.",
    ),
    (
        "genesis_reconciler_passes_total",
        Kind::Counter,
        "Reconciler passes, by reconciler and outcome (ok, error or panic).",
    ),
    (
        "genesis_reconciler_pass_seconds",
        Kind::Seconds,
        "Time a reconciler pass took, by reconciler.",
    ),
    (
        "genesis_droplets",
        Kind::Gauge,
        "Live droplets, by region and state (read from the database at each scrape).",
    ),
    (
        "genesis_tenants",
        Kind::Gauge,
        "Tenants (workspaces), by status (read from the database at each scrape).",
    ),
    (
        "genesis_rollouts_running",
        Kind::Gauge,
        "Rollouts in flight (RUNNING).",
    ),
    (
        "genesis_ignitions_in_flight",
        Kind::Gauge,
        "Ignition sagas running or unwinding, by step.",
    ),
    (
        "genesis_queue_jobs",
        Kind::Gauge,
        "Jobs in a queue now, by queue and status (waiting, delayed, active).",
    ),
    (
        "genesis_queue_jobs_total",
        Kind::Counter,
        "Jobs a queue finished since its counters began, by queue and outcome (completed, \
         failed, dead, stalled); rate() gives throughput.",
    ),
    (
        "genesis_queue_latency_seconds",
        Kind::Gauge,
        "Quantiles (0.5, 0.99) of a queue's recent jobs (one in 16 sampled, the last 1,000 \
         samples), by queue and phase: wait (added or due to claimed) and run (claimed to \
         finished). Absent until a job of the queue was sampled.",
    ),
    (
        "genesis_governor_slots",
        Kind::Gauge,
        "The queue governor's limits, by limit: concurrency (jobs claimed at once) and rate \
         (starts per rate window).",
    ),
    (
        "genesis_governor_slots_used",
        Kind::Gauge,
        "How much of each governor limit is taken now: jobs claimed, and starts in the last \
         rate window.",
    ),
    (
        "genesis_cloud_budget_remaining",
        Kind::Gauge,
        "Requests the cloud API says are left in its rate-limit window (its last \
         ratelimit-remaining header).",
    ),
];

/// Registers the HELP text (and unit) of every family in [`FAMILIES`]. Called once, right
/// after the recorder is installed.
pub fn describe() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
            Kind::Seconds => describe_histogram!(*name, Unit::Seconds, *help),
        }
    }
}

/// Fleet gauges younger than this are served as they are: `/metrics` needs no token, and a
/// flood of scrapes must not turn into a flood of queries.
pub const FLEET_GAUGES_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(2);

/// Sets the fleet gauges from every regional database, unless another scrape did within
/// [`FLEET_GAUGES_MAX_AGE`] (concurrent scrapes wait for one refresh instead of each making
/// their own). A database that fails leaves the gauges as they were and the error is
/// logged: a scrape must still answer.
pub async fn refresh_fleet_gauges(state: &AppState) {
    static LAST: tokio::sync::Mutex<Option<std::time::Instant>> =
        tokio::sync::Mutex::const_new(None);
    let mut last = LAST.lock().await;
    if last.is_some_and(|t| t.elapsed() < FLEET_GAUGES_MAX_AGE) {
        return;
    }
    match refresh(state).await {
        Ok(()) => *last = Some(std::time::Instant::now()),
        Err(e) => tracing::warn!(error = %e, "fleet gauges not refreshed"),
    }
}

async fn refresh(state: &AppState) -> Result<(), genesis_store::StoreError> {
    let mut droplets = std::collections::BTreeMap::<(String, String), i64>::new();
    let mut tenants = std::collections::BTreeMap::<String, i64>::new();
    let mut steps = std::collections::BTreeMap::<String, i64>::new();
    for db in state.stores.distinct() {
        for (region, by_state) in db.fleet_counts().await?.by_region {
            for (s, n) in by_state {
                *droplets.entry((region.clone(), s)).or_default() += n;
            }
        }
        for (s, n) in db.workspace_status_counts().await? {
            *tenants.entry(s).or_default() += n;
        }
        for (s, n) in db.ignition_step_counts().await? {
            *steps.entry(s).or_default() += n;
        }
    }
    let running = state.stores.coordinator().rollouts_running().await?.len();
    for region in Region::ALL {
        for s in DropletState::ALL {
            if s == DropletState::Terminated {
                continue;
            }
            let n = droplets
                .get(&(region.code().to_owned(), s.code().to_owned()))
                .copied()
                .unwrap_or(0);
            gauge!("genesis_droplets", "region" => region.code(), "state" => s.code())
                .set(n as f64);
        }
    }
    for s in WorkspaceStatus::ALL {
        let n = tenants.get(s.code()).copied().unwrap_or(0);
        gauge!("genesis_tenants", "status" => s.code()).set(n as f64);
    }
    let step_codes = IgnitionStep::ALL
        .iter()
        .map(|s| s.code())
        .chain(std::iter::once("none"));
    for code in step_codes {
        let n = steps.get(code).copied().unwrap_or(0);
        gauge!("genesis_ignitions_in_flight", "step" => code).set(n as f64);
    }
    gauge!("genesis_rollouts_running").set(running as f64);
    if let Some(ig) = &state.igniter {
        queue_gauges(ig.bus()).await;
        if let Some(left) = ig.cloud().budget_remaining() {
            gauge!("genesis_cloud_budget_remaining").set(left as f64);
        }
    }
    Ok(())
}

/// Each queue's jobs now, its outcome counters and latencies, and the governor's use. A
/// queue that cannot be read (Redis away) keeps its last figures; the failure is logged once
/// per scrape.
async fn queue_gauges(bus: &genesis_queue::Bus) {
    let limits = bus.config();
    match bus.governor_use().await {
        Ok(used) => {
            for (limit, cap, n) in [
                ("concurrency", limits.max_concurrency, used.claimed),
                ("rate", limits.rate_max, used.started_in_window),
            ] {
                gauge!("genesis_governor_slots", "limit" => limit).set(f64::from(cap));
                gauge!("genesis_governor_slots_used", "limit" => limit).set(n as f64);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "queue figures not refreshed");
            return;
        }
    }
    for queue in bus.queue_names() {
        if let Ok([wait, run]) = bus.latencies(&queue).await {
            for (phase, (p50, p99)) in [("wait", wait), ("run", run)]
                .into_iter()
                .filter_map(|(phase, q)| Some((phase, q?)))
            {
                for (quantile, ms) in [("0.5", p50), ("0.99", p99)] {
                    gauge!("genesis_queue_latency_seconds", "queue" => queue.clone(), "phase" => phase, "quantile" => quantile)
                        .set(ms as f64 / 1000.0);
                }
            }
        }
        match bus.counts(&queue).await {
            Ok(c) => {
                for (status, n) in [
                    ("waiting", c.waiting),
                    ("delayed", c.delayed),
                    ("active", c.active),
                ] {
                    gauge!("genesis_queue_jobs", "queue" => queue.clone(), "status" => status)
                        .set(n as f64);
                }
                for (outcome, n) in [
                    ("completed", c.completed),
                    ("failed", c.failed),
                    ("dead", c.dead),
                    ("stalled", c.stalled),
                ] {
                    metrics::counter!("genesis_queue_jobs_total", "queue" => queue.clone(), "outcome" => outcome)
                        .absolute(n);
                }
            }
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "queue figures not refreshed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `genesis_*` names in `text`, without the `_sum`/`_count` a summary adds.
    fn names_in(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("genesis_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let name = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            names.push(name.to_owned());
            rest = &tail[end..];
        }
        names
    }

    #[test]
    fn the_dashboard_and_the_alerts_name_only_families_we_expose() {
        let known: Vec<&str> = FAMILIES.iter().map(|f| f.0).collect();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/observability/");
        let dashboard =
            std::fs::read_to_string(format!("{root}grafana-dashboard.json")).expect("dashboard");
        let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("JSON");
        let exprs: Vec<String> = parsed["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t["expr"].as_str().map(str::to_owned))
            .collect();
        assert!(exprs.len() >= 10, "{exprs:?}");
        let alerts = std::fs::read_to_string(format!("{root}alerts.yml")).expect("alerts");
        let used: Vec<String> = exprs
            .iter()
            .flat_map(|e| names_in(e))
            .chain(names_in(&alerts))
            .collect();
        assert!(used.len() > 10);
        for name in used {
            // The file's own `genesis-control-plane` group and uid are not families.
            assert!(known.contains(&name.as_str()), "{name} is not exposed");
        }
    }

    #[test]
    fn every_family_is_named_once_with_a_sentence() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "a family named twice");
        for (name, kind, help) in FAMILIES {
            assert!(help.ends_with('.'), "{name}");
            assert_eq!(
                name.ends_with("_total"),
                *kind == Kind::Counter,
                "{name}: counters and only counters end in _total"
            );
        }
    }
}
