//! `genesis bench wake`: what a wake costs the control plane (spec 55.3), with the droplet's
//! boot delay simulated and excluded.
//!
//! N tenants are ignited through the whole stack (`bench_ignition::Stack`: real API, saga,
//! sidecars, fake n8n, simulator), then hibernated (power-off through the cloud, HIBERNATING
//! recorded), then woken all at once through `POST /api/v1/workspaces/{id}/wake`. Power
//! actions take exactly `--boot-s` in the simulator. Reported, per wake:
//! - `api_ms`: the wake call (state machine, episode, `power_on` request): the control
//!   plane's synchronous share;
//! - `end_to_end_ms`: from the call to ACTIVE_HEALTHY (from the audit log);
//! - `beyond_boot_ms`: end to end minus the simulated boot: what the control plane, the
//!   sidecar's restart and the first heartbeat add to the boot.

use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_cloud::{Cloud, PowerAction};
use genesis_core::DropletState;
use genesis_sim::digitalocean::{Span, Timings};
use genesis_store::testing::TestDb;
use serde_json::json;

use super::CliError;
use super::bench_ignition::{Stack, TOKEN, percentile, start_all, wait_all};

/// Runs the benchmark.
pub async fn run(redis_url: &str, tenants: usize, boot_s: u64) -> Result<(), CliError> {
    if tenants == 0 {
        return Err(CliError::Usage("--tenants must be at least 1".into()));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, tenants, boot_s).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(t: &TestDb, redis_url: &str, tenants: usize, boot_s: u64) -> Result<(), CliError> {
    let boot = Duration::from_secs(boot_s);
    let timings = Timings {
        power: Span::fixed(boot),
        ..Timings::INSTANT
    };
    let stack = Stack::start(t, redis_url, timings, 16, 1, false).await?;
    eprintln!("igniting {tenants} tenants");
    let started = Instant::now();
    let http = reqwest::Client::new();
    let ids = start_all(&http, &stack.base, tenants, 32).await?;
    wait_all(t, &ids, started).await?;

    eprintln!("hibernating them (power-off takes {boot_s} s in the simulator)");
    let mut tasks = tokio::task::JoinSet::new();
    for ws in &ids {
        let d = t.db.droplet_live_for_workspace(*ws).await?[0].clone();
        let (db, cloud) = (t.db.clone(), stack.cloud.clone());
        tasks.spawn(async move {
            let provider = d.provider_id.context("no provider id")?;
            let a = cloud
                .droplet_action(provider, PowerAction::PowerOff)
                .await?;
            cloud.action_wait(a.id, Duration::from_secs(120)).await?;
            db.droplet_hibernated(d.id, d.version, &serde_json::Value::Null, "bench")
                .await?;
            Ok::<_, anyhow::Error>(d.id)
        });
    }
    let mut droplets = Vec::new();
    while let Some(r) = tasks.join_next().await {
        droplets.push(r.context("task")?.context("hibernating")?);
    }

    eprintln!("waking {tenants} tenants at once");
    let mut tasks = tokio::task::JoinSet::new();
    for ws in ids.clone() {
        let (http, base) = (http.clone(), stack.base.clone());
        tasks.spawn(async move {
            let at = chrono::Utc::now();
            let t0 = Instant::now();
            let r = http
                .post(format!("{base}/api/v1/workspaces/{ws}/wake"))
                .bearer_auth(TOKEN)
                .json(&json!({}))
                .send()
                .await?;
            let status = r.status().as_u16();
            anyhow::ensure!(status == 202, "wake answered {status}");
            Ok::<_, anyhow::Error>((ws, at, t0.elapsed()))
        });
    }
    let mut calls = Vec::new();
    while let Some(r) = tasks.join_next().await {
        calls.push(r.context("task")?.context("wake")?);
    }
    let deadline = Instant::now() + Duration::from_secs(300 + boot_s * 2);
    let mut e2e = Vec::new();
    let mut api = Vec::new();
    for (ws, at, api_latency) in &calls {
        let d = t.db.droplet_live_for_workspace(*ws).await?[0].clone();
        let awake_at =
            loop {
                let history = t.db.droplet_history(d.id, 20).await?;
                if let Some(h) = history.iter().rev().find(|h| {
                    h.to.as_deref() == Some(DropletState::ActiveHealthy.code()) && h.at > *at
                }) {
                    break h.at;
                }
                if Instant::now() > deadline {
                    return Err(CliError::Runtime(anyhow::anyhow!("{} never woke", d.id)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
        api.push(api_latency.as_secs_f64() * 1000.0);
        e2e.push((awake_at - *at).num_milliseconds() as f64);
    }
    stack.finish().await;
    api.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    let boot_ms = boot.as_millis() as f64;
    let beyond: Vec<f64> = e2e.iter().map(|e| (e - boot_ms).max(0.0)).collect();
    let round = |x: f64| (x * 10.0).round() / 10.0;
    outln!(
        "{}",
        json!({
            "bench": "wake",
            "tenants": tenants,
            "boot_s": boot_s,
            "api_ms_p50": round(percentile(&api, 0.50)),
            "api_ms_p99": round(percentile(&api, 0.99)),
            "end_to_end_ms_p50": percentile(&e2e, 0.50),
            "end_to_end_ms_p99": percentile(&e2e, 0.99),
            "beyond_boot_ms_p50": percentile(&beyond, 0.50),
            "beyond_boot_ms_p99": percentile(&beyond, 0.99),
            "spec_55_3_target_s": 60,
        })
    );
    Ok(())
}
