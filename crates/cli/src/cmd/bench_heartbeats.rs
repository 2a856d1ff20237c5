//! `genesis bench heartbeats`: how many heartbeats per second the control plane ingests, and
//! at what latency, with every heartbeat authenticated by its own sidecar token and recorded
//! in PostgreSQL within the flush interval. The same load generator, in the same run, also
//! drives a bare axum route that only parses the JSON: the ratio between the two is the cost
//! of ingestion proper, on whatever machine runs it.
//!
//! Everything shares the machine: the load generator (`--connections` keep-alive HTTP/1.1
//! connections, one task each), the control plane, PostgreSQL. One JSON line per figure on
//! stdout (DESIGN §8), progress on stderr.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_control::AppState;
use genesis_store::{RegionalStore, bench::SeededSidecar, testing::TestDb};
use serde_json::json;

use super::CliError;

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

struct Load {
    sent: usize,
    failed: usize,
    micros: Vec<u32>,
}

fn body(s: &SeededSidecar, seq: u64) -> String {
    json!({
        "workspace_id": s.workspace_id, "droplet_id": s.provider_id, "state": "ready",
        "n8n_status": "running", "n8n_pid": 4242, "active_workflows": 3,
        "pending_executions": seq % 4, "cpu_usage_percent": 12.5, "memory_usage_mb": 310,
        "memory_total_mb": 1024, "disk_usage_percent": 23.0, "uptime_seconds": 3600 + seq,
        "refused_commands": []
    })
    .to_string()
}

/// Drives `url` with `connections` tasks for `duration`, sidecar `i` after sidecar `i`;
/// with `None`, sends exactly one heartbeat per sidecar.
async fn drive(
    url: &str,
    sidecars: Arc<Vec<SeededSidecar>>,
    connections: usize,
    duration: Option<Duration>,
) -> Result<(Load, Duration), CliError> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let url = url.to_owned();
        let sidecars = sidecars.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut load = Load {
                sent: 0,
                failed: 0,
                micros: Vec::with_capacity(100_000),
            };
            let mut i = c;
            while match duration {
                Some(d) => started.elapsed() < d,
                None => i < sidecars.len(),
            } {
                let s = &sidecars[i % sidecars.len()];
                let t0 = Instant::now();
                let ok = http
                    .post(&url)
                    .bearer_auth(&s.token)
                    .header("content-type", "application/json")
                    .body(body(s, load.sent as u64))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 204);
                load.micros
                    .push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                load.sent += 1;
                if !ok {
                    load.failed += 1;
                }
                i += connections;
            }
            Ok::<_, anyhow::Error>(load)
        });
    }
    let mut all = Load {
        sent: 0,
        failed: 0,
        micros: Vec::new(),
    };
    while let Some(r) = tasks.join_next().await {
        let l = r.context("load task")?.context("load")?;
        all.sent += l.sent;
        all.failed += l.failed;
        all.micros.extend(l.micros);
    }
    all.micros.sort_unstable();
    Ok((all, started.elapsed()))
}

/// A bare axum route that parses the same JSON into a map: the baseline.
async fn baseline_server() -> Result<SocketAddr, CliError> {
    use axum::{Json, Router, routing::post};
    let app = Router::new().route(
        "/api/v1/sidecar/heartbeat",
        post(
            |Json(_): Json<std::collections::BTreeMap<String, serde_json::Value>>| async {
                axum::http::StatusCode::NO_CONTENT
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let addr = l.local_addr().context("addr")?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}

/// A control plane that only serves sidecars (no API token, no ignition): what the
/// heartbeat and zombie benchmarks drive.
pub(crate) fn sidecar_facing_state(stores: RegionalStore, token_ttl: Duration) -> AppState {
    genesis_control::ControlPlane::builder(stores)
        .token_ttl(token_ttl)
        .build()
        .state()
        .clone()
}

/// Runs the benchmark.
pub async fn run(droplets: usize, seconds: u64, connections: usize) -> Result<(), CliError> {
    if droplets == 0 || seconds == 0 || connections == 0 {
        return Err(CliError::Usage(
            "--droplets, --seconds and --connections must be positive".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, droplets, seconds, connections).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(
    t: &TestDb,
    droplets: usize,
    seconds: u64,
    connections: usize,
) -> Result<(), CliError> {
    eprintln!("seeding {droplets} droplets with sidecar tokens");
    let sidecars = Arc::new(t.db.bench_sidecars_seed(droplets).await?);
    let stores = RegionalStore::single(t.db.clone());
    let state = sidecar_facing_state(stores, Duration::from_secs(60));
    let sink = state.heartbeats.clone();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let addr = l.local_addr().context("addr")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(genesis_control::serve(l, state, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}/api/v1/sidecar/heartbeat");
    let base_url = format!(
        "http://{}/api/v1/sidecar/heartbeat",
        baseline_server().await?
    );
    let duration = Some(Duration::from_secs(seconds));

    // Warm-up: every token verified once (the first heartbeat of each sidecar after a
    // restart costs a database lookup), then the steady state is measured.
    eprintln!("warming up: one heartbeat per sidecar");
    let (warm, warm_wall) = drive(&url, sidecars.clone(), connections, None).await?;
    if warm.failed > 0 {
        return Err(CliError::CheckFailed(format!(
            "{} warm-up heartbeats were refused",
            warm.failed
        )));
    }
    let warm_s = warm_wall.as_secs_f64();

    eprintln!("baseline: bare JSON route for {seconds} s");
    let (base, base_wall) = drive(&base_url, sidecars.clone(), connections, duration).await?;
    eprintln!("ingestion: {seconds} s");
    let since = chrono::Utc::now();
    let (load, wall) = drive(&url, sidecars.clone(), connections, duration).await?;
    // Durable within one flush interval: wait for it, then count in PostgreSQL.
    tokio::time::sleep(genesis_control::HEARTBEAT_FLUSH * 2).await;
    let pending = sink.pending();
    let recorded = t.db.bench_heartbeats_since(since).await?;
    let _ = stop.send(());
    let _ = server.await;

    let rate = load.sent as f64 / wall.as_secs_f64();
    let base_rate = base.sent as f64 / base_wall.as_secs_f64();
    let distinct = load.sent.min(droplets);
    outln!(
        "{}",
        json!({
            "bench": "heartbeats",
            "droplets": droplets,
            "connections": connections,
            "seconds": seconds,
            "heartbeats": load.sent,
            "refused_or_failed": load.failed,
            "per_s": rate.round(),
            "p50_ms": percentile(&load.micros, 0.50),
            "p99_ms": percentile(&load.micros, 0.99),
            "max_ms": percentile(&load.micros, 1.0),
            "baseline_per_s": base_rate.round(),
            "baseline_p99_ms": percentile(&base.micros, 0.99),
            "ratio_to_baseline": (rate / base_rate * 1000.0).round() / 1000.0,
            "droplets_recorded": recorded,
            "droplets_expected": distinct,
            "still_buffered": pending,
            "warm_up_s": (warm_s * 100.0).round() / 100.0,
        })
    );
    if load.failed > 0 || recorded < distinct as i64 {
        return Err(CliError::CheckFailed(format!(
            "{} heartbeats failed; {recorded} of {distinct} droplets recorded",
            load.failed
        )));
    }
    Ok(())
}
