//! `genesis bench deletion`: N tenants deleted end to end (spec 64.2). They are ignited
//! through the whole stack (`bench_ignition::Stack`), each given 100 leads and a snapshot at
//! the cloud, then deleted for fraud (no grace period) through the API; their deletion
//! sagas then run, `--concurrency` at a time, as the `deletions` reconciler runs them.
//!
//! Reported: the wall time, the time per tenant (p50, p99), and the cloud calls the sagas
//! made, per tenant and against DigitalOcean's budget (250 requests a minute, 5,000 an
//! hour): how many tenants an hour the budget allows for deletions alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_cloud::Cloud;
use genesis_control::app::deletion_saga::Purger;
use genesis_sim::digitalocean::Timings;
use genesis_store::{AuditChainKey, RegionalStore, testing::TestDb};
use serde_json::json;

use super::CliError;
use super::bench_ignition::{Stack, TOKEN, percentile, round, start_all, wait_all};

/// DigitalOcean's budget: requests per minute and per hour.
const PER_MINUTE: f64 = 250.0;
const PER_HOUR: f64 = 5_000.0;

/// Runs the benchmark.
pub async fn run(redis_url: &str, tenants: usize, concurrency: usize) -> Result<(), CliError> {
    if tenants == 0 {
        return Err(CliError::Usage("--tenants must be at least 1".into()));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, tenants, concurrency.max(1)).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(
    t: &TestDb,
    redis_url: &str,
    tenants: usize,
    concurrency: usize,
) -> Result<(), CliError> {
    let stack = Stack::start(t, redis_url, Timings::INSTANT, 16, 60, false).await?;
    eprintln!("igniting {tenants} tenants");
    let http = reqwest::Client::new();
    let ids = start_all(&http, &stack.base, tenants, 32).await?;
    wait_all(t, &ids, Instant::now()).await?;

    eprintln!("giving each 100 leads and a snapshot, then deleting them for fraud");
    for (i, ws) in ids.iter().enumerate() {
        let leads: Vec<_> = (0..100)
            .map(|j| json!({"email": format!("lead{j}.t{i}@example.org"), "first_name": "Ada"}))
            .collect();
        let r = http
            .post(format!("{}/api/v1/workspaces/{ws}/leads", stack.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "leads": leads }))
            .send()
            .await
            .context("leads")?;
        if !r.status().is_success() {
            return Err(CliError::Runtime(anyhow::anyhow!("leads: {}", r.status())));
        }
        let d = t.db.droplet_live_for_workspace(*ws).await?[0].clone();
        let provider = d.provider_id.context("no provider id")?;
        let a = stack
            .cloud
            .droplet_snapshot(provider, &format!("daily-{i}"))
            .await
            .context("snapshot")?;
        stack
            .cloud
            .action_wait(a.id, Duration::from_secs(60))
            .await
            .context("snapshot")?;
        let r = http
            .post(format!("{}/api/v1/workspaces/{ws}/deletion", stack.base))
            .bearer_auth(TOKEN)
            .json(&json!({"trigger": "fraud", "reason": "benchmark"}))
            .send()
            .await
            .context("deletion")?;
        if !r.status().is_success() {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "deletion: {}",
                r.status()
            )));
        }
    }

    let exports =
        std::env::temp_dir().join(format!("genesis-bench-exports-{}", uuid::Uuid::now_v7()));
    let purger = Arc::new(Purger::new(
        RegionalStore::single(t.db.clone()),
        stack.cloud.clone(),
        None,
        exports.clone(),
        Some(AuditChainKey::new(rand::random())),
    ));
    eprintln!("running {tenants} deletion sagas, {concurrency} at a time");
    let calls_before = stack.sim.stats().accepted;
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for ws in ids.clone() {
        let (purger, sem) = (purger.clone(), sem.clone());
        tasks.spawn(async move {
            let _turn = sem.acquire_owned().await;
            let at = Instant::now();
            let p = purger.advance(ws).await?;
            Ok::<_, anyhow::Error>((p.and_then(|p| p.finished_at).is_some(), at.elapsed()))
        });
    }
    let mut per = Vec::new();
    let mut failed = 0usize;
    while let Some(r) = tasks.join_next().await {
        match r.context("task")? {
            Ok((true, took)) => per.push(took.as_secs_f64() * 1000.0),
            Ok((false, _)) => failed += 1,
            Err(e) => {
                eprintln!("a deletion failed: {e}");
                failed += 1;
            }
        }
    }
    let wall = started.elapsed();
    let calls = stack.sim.stats().accepted - calls_before;
    let left = stack.sim.stats().droplets;
    stack.finish().await;
    let _ = std::fs::remove_dir_all(&exports);
    per.sort_by(f64::total_cmp);
    let per_tenant = calls as f64 / tenants as f64;
    let line = json!({
        "bench": "deletion",
        "tenants": tenants,
        "concurrency": concurrency,
        "failed": failed,
        "wall_s": round(wall.as_secs_f64()),
        "tenants_per_s": round(tenants as f64 / wall.as_secs_f64()),
        "saga_ms_p50": round(percentile(&per, 0.50)),
        "saga_ms_p99": round(percentile(&per, 0.99)),
        "cloud_calls": calls,
        "cloud_calls_per_tenant": round(per_tenant),
        "budget_tenants_per_minute": round(PER_MINUTE / per_tenant),
        "budget_tenants_per_hour": round(PER_HOUR / per_tenant),
        "droplets_left": left,
    });
    outln!("{line}");
    let mut failures = Vec::new();
    if failed > 0 {
        failures.push(format!("{failed} deletions did not finish"));
    }
    if left > 0 {
        failures.push(format!("{left} droplets left at the cloud"));
    }
    super::bench_ignition::verdict(failures)
}
