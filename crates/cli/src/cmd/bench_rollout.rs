//! `genesis bench rollout`: a template rollout over N virtual droplets (spec 52.3), each
//! update a real signed command over HTTP to the droplet's own sidecar, which updates its
//! fake n8n (three workflows per droplet, through the UUID mapper).
//!
//! The tenants are ignited through the whole stack first (`bench_ignition::Stack`), then a
//! rollout of the chosen scenario starts through `POST /api/v1/rollouts` and the conductor
//! runs as it does in `genesis serve` (every 200 ms here). The governor is spec 52.2's
//! (concurrency 100, 200 jobs/s). Reported: the wall time from the start call to COMPLETED,
//! the timeline of completed updates (spec 52.3's table), the rate-limit bound (N / 200 s)
//! and the updates per second.
//!
//! Every virtual droplet lives in this one process. Their sidecars and n8n are served through
//! one shared listener per port (`genesis_sim::vhost`), and idle connections close within
//! seconds, so an idle droplet costs no open file and 15,000 fit under this machine's limit
//! of 20,000. The benchmark still checks the limit (`ulimit -Hn`) first and says what fits
//! instead of failing half-way.

use std::time::{Duration, Instant};

use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::rollouts::RolloutConductor;
use genesis_sim::digitalocean::Timings;
use genesis_store::{RegionalStore, testing::TestDb};
use serde_json::{Value, json};

use super::CliError;
use super::bench_ignition::{Stack, TOKEN, start_all, wait_all};

/// Open files to budget per virtual droplet with shared listeners: an idle one holds none,
/// and the connections of the ones being updated or heartbeating come and go (measured: 661
/// open for 300 ignited droplets, of which about 250 are the process's own).
const FDS_PER_DROPLET: u64 = 1;

/// The same with `--own-listeners`: two listeners and kept-alive connections each (measured:
/// 16,187 open for 2,000 droplets).
const FDS_PER_OWN_DROPLET: u64 = 9;

fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Runs the benchmark.
pub async fn run(
    redis_url: &str,
    droplets: usize,
    scenario: &str,
    shared_listeners: bool,
) -> Result<(), CliError> {
    if droplets == 0 {
        return Err(CliError::Usage("--droplets must be at least 1".into()));
    }
    if let Some(limit) = open_file_limit() {
        let per = if shared_listeners {
            FDS_PER_DROPLET
        } else {
            FDS_PER_OWN_DROPLET
        };
        let fits = limit.saturating_sub(2_000) / per;
        if droplets as u64 > fits {
            return Err(CliError::Usage(format!(
                "--droplets {droplets}: this process may open {limit} files; keeping 2,000 for itself \
                 and budgeting {per} per virtual droplet, at most {fits} fit"
            )));
        }
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, droplets, scenario, shared_listeners).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(
    t: &TestDb,
    redis_url: &str,
    n: usize,
    scenario: &str,
    shared_listeners: bool,
) -> Result<(), CliError> {
    let stack = Stack::start(t, redis_url, Timings::INSTANT, 100, 300, shared_listeners).await?;
    eprintln!("igniting {n} tenants");
    let started = Instant::now();
    let http = reqwest::Client::new();
    let ids = start_all(&http, &stack.base, n, 64).await?;
    wait_all(t, &ids, started).await?;
    eprintln!(
        "ignited in {:.1} s; {} files open",
        started.elapsed().as_secs_f64(),
        open_files()
    );

    let conductor = RolloutConductor::new(RegionalStore::single(t.db.clone()), stack.bus.clone());
    let r: Value = http
        .post(format!("{}/api/v1/rollouts", stack.base))
        .bearer_auth(TOKEN)
        .json(&json!({ "scenario": scenario }))
        .send()
        .await
        .map_err(|e| CliError::Runtime(e.into()))?
        .json()
        .await
        .map_err(|e| CliError::Runtime(e.into()))?;
    let id = uuid::Uuid::parse_str(r["id"].as_str().unwrap_or_default())
        .map_err(|_| CliError::Runtime(anyhow::anyhow!("the rollout did not start: {r}")))?;
    let t0 = Instant::now();
    // The conductor runs on its own, as in `genesis serve` (its first pass queues every job
    // of the batch, which takes a while at 15,000); progress is sampled every second.
    let (stop_conductor, mut stopped) = tokio::sync::watch::channel(false);
    let conducting = tokio::spawn(async move {
        while !*stopped.borrow() {
            if let Err(e) = conductor.reconcile().await {
                eprintln!("conductor: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stopped.changed() => {}
            }
        }
    });
    let mut timeline: Vec<(f64, i64)> = Vec::new();
    let mut next_sample = 1.0;
    let status = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rollout = t.db.rollout_get(id).await?;
        let elapsed = t0.elapsed().as_secs_f64();
        if elapsed >= next_sample || rollout.status.is_final() {
            let done: i64 =
                t.db.rollout_batches(id)
                    .await?
                    .iter()
                    .map(|b| b.done + b.failed)
                    .sum();
            timeline.push(((elapsed * 10.0).round() / 10.0, done));
            eprint!("\r  {elapsed:>6.1} s: {done}/{n} updated          ");
            next_sample = (elapsed.floor() + 1.0).max(next_sample + 1.0);
        }
        if rollout.status != genesis_core::rollout::RolloutStatus::Running {
            break rollout.status;
        }
        if t0.elapsed() > Duration::from_secs(1_800) {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "not finished in 30 minutes"
            )));
        }
    };
    let _ = stop_conductor.send(true);
    let _ = conducting.await;
    let wall = t0.elapsed().as_secs_f64();
    eprintln!("\n{} files open after the rollout", open_files());
    let totals = t.db.rollout_batches(id).await?;
    let (done, failed): (i64, i64) = totals
        .iter()
        .fold((0, 0), |(d, f), b| (d + b.done, f + b.failed));
    stack.finish().await;
    let bound = n as f64 / 200.0;
    outln!(
        "{}",
        json!({
            "bench": "rollout",
            "droplets": n,
            "scenario": scenario,
            "listeners": if shared_listeners { "shared" } else { "own" },
            "status": status.code(),
            "done": done,
            "failed": failed,
            "wall_s": (wall * 100.0).round() / 100.0,
            "updates_per_s": ((done + failed) as f64 / wall * 10.0).round() / 10.0,
            "rate_limit_bound_s": bound,
            "wall_over_bound": (wall / bound * 100.0).round() / 100.0,
            "timeline": timeline,
        })
    );
    if failed > 0 || status != genesis_core::rollout::RolloutStatus::Completed {
        return Err(CliError::CheckFailed(format!(
            "{failed} updates failed; the rollout ended {status}"
        )));
    }
    Ok(())
}
