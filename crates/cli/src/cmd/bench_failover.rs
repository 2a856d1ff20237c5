//! `genesis bench failover`: spec 66.4's scenario in the simulator. N tenants are ignited in
//! Frankfurt through the whole stack (`bench_ignition::Stack`), snapshotted and copied to
//! London by the snapshot schedule, then Frankfurt fails and a failover is declared; the
//! `failover` reconciler restores every tenant in London as `genesis serve` runs it.
//!
//! Time runs `--speed` times faster than real: the simulated cloud's delays are
//! DigitalOcean's (`Timings::realistic`) divided by the speed, and so are its rate limits'
//! windows (250 requests a minute and 5,000 an hour, each window `--speed` times shorter).
//! The limits are enforced on the client, as the shared budget enforces them in production
//! ([`genesis_cloud::SharedBudget`]), from the failover's declaration on; the setup
//! (ignitions, snapshots) runs without them.
//!
//! Reported, one JSON line: the RTO per phase and in total, in wall time and converted back
//! to real time; the cloud calls used, against the fewest a restore can make (list the
//! tenant's droplets, create one, see it active: 3); the rate-limit bound those calls imply;
//! and the tenants restored, re-ignited and failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use genesis_cloud::{CallPriority, SharedBudget};
use genesis_control::app::failover::{FailoverRequest, declare};
use genesis_control::workers::failover::FailoverConductor;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::snapshots::{SnapshotSchedule, SnapshotSettings};
use genesis_core::dr::{FailoverPhase, RestorePlan, RestoreState};
use genesis_sim::digitalocean::Timings;
use genesis_store::{RegionalStore, testing::TestDb};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::CliError;
use super::bench_ignition::{Stack, round, start_all, wait_all};

/// DigitalOcean's limits: requests per minute and per hour.
const PER_MINUTE: u32 = 250;
const PER_HOUR: u32 = 5_000;
/// The fewest calls one restore makes: list the tenant's droplets (a retried create must
/// find an earlier one), create one, and read it back active.
const MIN_CALLS_PER_RESTORE: u64 = 3;
/// A sidecar's heartbeat interval in real time (spec 54.2's 60 s).
const HEARTBEAT_REAL_S: f64 = 60.0;
/// The shortest heartbeat interval of the benchmark's sidecars, in wall time.
const MIN_HEARTBEAT_WALL_S: f64 = 5.0;
/// Spec 66.4's total RTO.
const RTO_TARGET: Duration = Duration::from_secs(4 * 3600);

/// DigitalOcean's limits on a clock `speed` times faster, switched on when the failover
/// starts: a GCRA per window, as the client's own limiter and the shared budget are.
#[derive(Debug)]
struct ScaledLimits {
    on: AtomicBool,
    minute: DefaultDirectRateLimiter,
    hour: DefaultDirectRateLimiter,
}

impl ScaledLimits {
    fn new(speed: f64) -> Result<Self, CliError> {
        let quota = |limit: u32, window: Duration| {
            let n = std::num::NonZeroU32::new(limit).ok_or_else(|| CliError::Usage("0".into()))?;
            Quota::with_period(window.div_f64(speed) / limit)
                .map(|q| q.allow_burst(n))
                .ok_or_else(|| CliError::Usage(format!("--speed {speed} is too fast")))
        };
        Ok(Self {
            on: AtomicBool::new(false),
            minute: RateLimiter::direct(quota(PER_MINUTE, Duration::from_secs(60))?),
            hour: RateLimiter::direct(quota(PER_HOUR, Duration::from_secs(3600))?),
        })
    }
}

impl SharedBudget for ScaledLimits {
    fn admit(
        &self,
        _priority: CallPriority,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Duration, String>> + Send + '_>> {
        Box::pin(async move {
            if !self.on.load(Ordering::Relaxed) {
                return Ok(Duration::ZERO);
            }
            // The minute's first: a call it refuses waits without spending the hour's
            // budget (one the hour refuses has spent a minute cell, which only makes the
            // limits a little stricter than DigitalOcean's while the hour binds).
            let clock = governor::clock::DefaultClock::default();
            use governor::clock::Clock as _;
            let wait = |n: governor::NotUntil<_>| {
                n.wait_time_from(clock.now()).max(Duration::from_micros(1))
            };
            if let Err(not_until) = self.minute.check() {
                return Ok(wait(not_until));
            }
            match self.hour.check() {
                Ok(()) => Ok(Duration::ZERO),
                Err(not_until) => Ok(wait(not_until)),
            }
        })
    }
}

/// The least time `calls` requests take under the limits, in real time: each window's
/// burst is free, the rest comes at the window's rate.
fn rate_bound(calls: u64) -> Duration {
    let by_minute =
        calls.saturating_sub(u64::from(PER_MINUTE)) as f64 * 60.0 / f64::from(PER_MINUTE);
    let by_hour = calls.saturating_sub(u64::from(PER_HOUR)) as f64 * 3600.0 / f64::from(PER_HOUR);
    Duration::from_secs_f64(by_minute.max(by_hour))
}

/// Runs the benchmark.
pub async fn run(redis_url: &str, tenants: usize, speed: f64) -> Result<(), CliError> {
    if tenants == 0 {
        return Err(CliError::Usage("--tenants must be at least 1".into()));
    }
    if !(1.0..=10_000.0).contains(&speed) {
        return Err(CliError::Usage(
            "--speed must be between 1 and 10000".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, tenants, speed).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(t: &TestDb, redis_url: &str, n: usize, speed: f64) -> Result<(), CliError> {
    let limits = Arc::new(ScaledLimits::new(speed)?);
    // A sidecar heartbeats every minute of real time: at 60x, every second, which for
    // 3,000 droplets in one process on two cores is more than the process can answer
    // besides the restores. So they heartbeat at most every 5 s of wall time; at high
    // speeds that lengthens phase 3 (it waits for each new droplet's first heartbeat)
    // beyond what it would take in real time, and the report says so.
    let heartbeat_s = (HEARTBEAT_REAL_S / speed).round().max(MIN_HEARTBEAT_WALL_S) as u64;
    let timings = Timings::realistic().scaled(1.0 / speed);
    let stack = Stack::start_with(
        t,
        redis_url,
        timings,
        // Saga jobs at once: a job may wait in-process for up to 2 s before it hands the
        // wait to a delayed job, so 100 restores need about as many.
        100,
        heartbeat_s,
        true,
        super::bench_ignition::StackExtras {
            budget: Some(limits.clone()),
            droplet_poll: genesis_ignition::DropletPoll::DIGITALOCEAN.scaled(speed),
            ..Default::default()
        },
    )
    .await?;
    let stores = RegionalStore::single(t.db.clone());
    eprintln!("igniting {n} tenants in fra1");
    let http = reqwest::Client::new();
    let ids = start_all(&http, &stack.base, n, 64).await?;
    wait_all(t, &ids, Instant::now()).await?;

    eprintln!("taking each one's snapshot and copying it to lon1");
    let schedule = SnapshotSchedule::new(
        stores.clone(),
        stack.cloud.clone(),
        genesis_control::clock::Clock::manual(chrono::Utc::now()),
        SnapshotSettings {
            look_after: Duration::ZERO,
            calls_per_pass: u32::MAX,
            ..Default::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        schedule
            .reconcile()
            .await
            .map_err(|e| CliError::Runtime(e.into()))?;
        let c = t.db.snapshot_coverage(chrono::Utc::now()).await?;
        if c.fresh_cross_region as usize >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "only {} of {n} tenants have a copy in lon1 after 15 minutes",
                c.fresh_cross_region
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    eprintln!("fra1 fails; the failover starts under DigitalOcean's limits at {speed}x");
    stack.sim.fail_region("fra1");
    limits.on.store(true, Ordering::Relaxed);
    let calls_before = stack.sim.stats().accepted;
    let t0 = Instant::now();
    let req = FailoverRequest {
        from: "fra1".into(),
        to: None,
        residency_override: false,
        operator: "bench".into(),
        reason: "bench failover".into(),
    };
    let (_, f) = declare(&stores, &req, "bench")
        .await
        .map_err(|e| CliError::Runtime(e.into()))?;
    let assessed = t0.elapsed();
    let conductor = FailoverConductor::new(stores.clone(), stack.igniter.clone());
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut last_report = Instant::now();
    loop {
        conductor
            .reconcile()
            .await
            .map_err(|e| CliError::Runtime(e.into()))?;
        let now = t.db.failover_get(f.id).await?;
        if now.phase == FailoverPhase::Restored {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let c = t.db.failover_counts(f.id).await?;
            eprintln!(
                "  {:>5.0} s: {} restoring, {} restored, {} verified, {} failed",
                t0.elapsed().as_secs_f64(),
                c.state(RestoreState::Restoring),
                c.state(RestoreState::Restored),
                c.state(RestoreState::Verified),
                c.state(RestoreState::Failed)
            );
            last_report = Instant::now();
        }
        if Instant::now() > deadline {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "the failover did not finish within an hour of wall time"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = t0.elapsed();
    let calls = stack.sim.stats().accepted - calls_before;
    let f = t.db.failover_get(f.id).await?;
    let c = t.db.failover_counts(f.id).await?;
    stack.finish().await;

    let secs = |d: chrono::TimeDelta| d.num_milliseconds().max(0) as f64 / 1000.0;
    let provisioning = f
        .provisioned_at
        .map(|p| secs(p - f.started_at))
        .unwrap_or(0.0);
    let verification = match (f.provisioned_at, f.restored_at) {
        (Some(p), Some(r)) => secs(r - p),
        _ => 0.0,
    };
    let restores = (c.total() - c.plan(RestorePlan::Held)).max(0) as u64;
    let min_calls = restores * MIN_CALLS_PER_RESTORE;
    let bound_min = rate_bound(min_calls);
    let bound_used = rate_bound(calls);
    let real = |wall_s: f64| round(wall_s * speed);
    let total_real = Duration::from_secs_f64(wall.as_secs_f64() * speed);
    let line = json!({
        "bench": "failover",
        "tenants": n,
        "speed": speed,
        "heartbeat_real_s": heartbeat_s as f64 * speed,
        "restored": c.state(RestoreState::Verified),
        "reignited": c.plan(RestorePlan::Reignite),
        "failed": c.state(RestoreState::Failed),
        "lost": c.state(RestoreState::Failed) + c.plan(RestorePlan::Held),
        "wall_s": round(wall.as_secs_f64()),
        "rto_real_s": {
            "assessment": real(assessed.as_secs_f64()),
            "provisioning": real(provisioning),
            "verification": real(verification),
            "total": real(wall.as_secs_f64()),
        },
        "cloud_calls": calls,
        "cloud_calls_per_restore": round(calls as f64 / restores.max(1) as f64),
        "min_calls": min_calls,
        "rate_bound_real_s": {
            "for_min_calls": round(bound_min.as_secs_f64()),
            "for_calls_used": round(bound_used.as_secs_f64()),
        },
        "wall_over_bound_for_calls_used": round(
            total_real.as_secs_f64() / bound_used.as_secs_f64().max(1.0)
        ),
    });
    outln!("{line}");
    let mut failures = Vec::new();
    if (c.state(RestoreState::Verified) as u64) < restores {
        failures.push(format!(
            "{} of {restores} tenants restored",
            c.state(RestoreState::Verified)
        ));
    }
    if total_real > RTO_TARGET {
        failures.push(format!(
            "the RTO was {:.1} h in real time, over spec 66.4's 4 h",
            total_real.as_secs_f64() / 3600.0
        ));
    }
    // Only meaningful once the limits bind: a few hundred calls fit in one burst.
    if bound_used > Duration::from_secs(60)
        && total_real.as_secs_f64() > 1.2 * bound_used.as_secs_f64()
    {
        failures.push(format!(
            "the failover took {:.0} s of real time, over 1.2x the {:.0} s its calls need",
            total_real.as_secs_f64(),
            bound_used.as_secs_f64()
        ));
    }
    super::bench_ignition::verdict(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_takes_the_slower_window_after_each_burst() {
        assert_eq!(rate_bound(200), Duration::ZERO);
        // 1,000 calls: 750 past the minute's burst, at 250 a minute: 3 minutes.
        assert_eq!(rate_bound(1_000), Duration::from_secs(180));
        // 9,000: 35 minutes by the minute, 48 by the hour (4,000 past its burst).
        assert_eq!(rate_bound(9_000), Duration::from_secs(48 * 60));
    }
}
