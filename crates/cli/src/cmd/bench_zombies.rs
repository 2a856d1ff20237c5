//! `genesis bench zombies`: time to detect zombies at fleet scale (spec 54.3: within 3
//! heartbeat windows). N droplets exist in the DigitalOcean simulator (created through the real
//! client) and in a scratch database with their sidecar tokens. Lightweight senders post their
//! heartbeats over HTTP to the real control plane every `--interval-s`; the zombie detector runs
//! as a leader-elected reconciler and confirms power through the cloud API. After a warm-up,
//! `--kill-percent` of the senders stop at once; the bench measures how long each took to
//! become ZOMBIE, in heartbeat intervals. (Full sidecars per droplet would measure the
//! simulator, not the detector: `genesis bench ignition` covers those.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_cloud::{ClientOptions, Cloud, CreateDroplet, DigitalOcean, ImageRef};
use genesis_control::workers::zombies::{ZombieDetector, ZombieSettings};
use genesis_queue::{Bus, GovernorConfig};
use genesis_sim::digitalocean::{SimConfig, Simulator, serve};
use genesis_store::{RegionalStore, testing::TestDb};
use serde_json::json;

use super::CliError;

/// Runs the benchmark.
pub async fn run(
    redis_url: &str,
    droplets: usize,
    kill_percent: f64,
    interval_s: u64,
) -> Result<(), CliError> {
    if droplets == 0 || interval_s == 0 || !(0.0..=100.0).contains(&kill_percent) {
        return Err(CliError::Usage(
            "--droplets and --interval-s must be positive, --kill-percent within 0..=100".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, droplets, kill_percent, interval_s).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn create_in_cloud(cloud: Arc<DigitalOcean>, n: usize) -> Result<Vec<i64>, CliError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (cloud, sem) = (cloud.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem
                .acquire_owned()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (d, _) = cloud
                .droplet_create(&CreateDroplet {
                    name: format!("zombie-bench-{i}"),
                    region: "fra1".into(),
                    size: "s-1vcpu-1gb".into(),
                    image: ImageRef::Slug("ubuntu-22-04-x64".into()),
                    user_data: None,
                    tags: vec![format!("ws-{}", uuid::Uuid::now_v7())],
                    ssh_keys: vec![],
                    vpc_uuid: None,
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>((i, d.id))
        });
    }
    let mut ids = vec![0; n];
    while let Some(r) = tasks.join_next().await {
        let (i, id) = r.context("task")?.context("create")?;
        ids[i] = id;
    }
    Ok(ids)
}

async fn run_on(
    t: &TestDb,
    redis_url: &str,
    droplets: usize,
    kill_percent: f64,
    interval_s: u64,
) -> Result<(), CliError> {
    let interval = Duration::from_secs(interval_s);
    let sim = Simulator::new(SimConfig {
        per_window: 10_000_000,
        per_long_window: 100_000_000,
        ..SimConfig::default()
    });
    let sl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let sim_url = format!("http://{}", sl.local_addr().context("addr")?);
    tokio::spawn(serve(sl, sim, std::future::pending()));
    let mut o = ClientOptions::new(&sim_url, "bench");
    o.per_minute = 10_000_000;
    o.per_hour = 100_000_000;
    let cloud = Arc::new(DigitalOcean::new(o).map_err(|e| CliError::Runtime(e.into()))?);
    eprintln!("creating {droplets} droplets in the simulator");
    let providers = create_in_cloud(cloud.clone(), droplets).await?;
    let sidecars = Arc::new(t.db.bench_sidecars_seed_for(&providers).await?);

    let stores = RegionalStore::single(t.db.clone());
    let state =
        super::bench_heartbeats::sidecar_facing_state(stores.clone(), Duration::from_secs(600));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind")?;
    let url = format!(
        "http://{}/api/v1/sidecar/heartbeat",
        l.local_addr().context("addr")?
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    tokio::spawn(genesis_control::serve(l, state, async move {
        let _ = server_stop.changed().await;
    }));

    // Senders: one task per slice of droplets, one heartbeat per droplet per interval.
    let alive: Arc<Vec<AtomicBool>> =
        Arc::new((0..droplets).map(|_| AtomicBool::new(true)).collect());
    let slices = 64.min(droplets);
    for s in 0..slices {
        let (url, sidecars, alive) = (url.clone(), sidecars.clone(), alive.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                for i in (s..sidecars.len()).step_by(slices) {
                    if !alive[i].load(Ordering::Relaxed) {
                        continue;
                    }
                    let sc = &sidecars[i];
                    let body = json!({
                        "workspace_id": sc.workspace_id, "droplet_id": sc.provider_id,
                        "state": "ready", "n8n_status": "running", "n8n_pid": 1,
                        "active_workflows": 3, "pending_executions": 0,
                        "cpu_usage_percent": 10.0, "memory_usage_mb": 300,
                        "memory_total_mb": 1024, "disk_usage_percent": 20.0,
                        "uptime_seconds": 60, "refused_commands": []
                    });
                    let _ = http
                        .post(&url)
                        .bearer_auth(&sc.token)
                        .json(&body)
                        .send()
                        .await;
                }
            }
        });
    }

    // The detector, leader-elected as in `genesis serve`.
    let bus = Bus::connect(
        redis_url,
        &format!("zb{}", uuid::Uuid::now_v7().simple()),
        genesis_queue::config::fleet_queues(),
        GovernorConfig::default(),
    )
    .await
    .map_err(|e| CliError::Usage(format!("redis at {redis_url}: {e}")))?;
    let detector = Arc::new(ZombieDetector::new(
        stores,
        cloud,
        bus.clone(),
        ZombieSettings {
            heartbeat_interval: interval,
            batch: 100_000,
            ..ZombieSettings::default()
        },
    ));
    // Driven as in `genesis serve`: leader election, a pass a quarter interval apart.
    let every = (interval / 4).max(Duration::from_millis(250));
    tokio::spawn(genesis_control::workers::driver::drive(
        detector,
        every,
        t.db.clone(),
        Default::default(),
        stop_rx.clone(),
    ));

    eprintln!("warming up: 2 heartbeat intervals");
    tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
    let kill = ((droplets as f64 * kill_percent / 100.0).round() as usize).max(1);
    let victims: Vec<usize> = (0..kill).map(|k| k * droplets / kill).collect();
    let killed_at = chrono::Utc::now();
    let started = Instant::now();
    for v in &victims {
        alive[*v].store(false, Ordering::Relaxed);
    }
    eprintln!("killed {kill} senders; waiting for the detector");
    let deadline = interval * 10 + Duration::from_secs(60);
    let times = loop {
        let times = t.db.bench_zombie_times(killed_at).await?;
        if times.len() >= kill || started.elapsed() > deadline {
            break times;
        }
        eprint!(
            "\r  {:>5.1} s: {}/{kill} detected   ",
            started.elapsed().as_secs_f64(),
            times.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!();
    let _ = stop_tx.send(true);
    let _ = bus.destroy().await;

    let victim_ids: std::collections::BTreeSet<String> = victims
        .iter()
        .map(|v| sidecars[*v].droplet_id.to_string())
        .collect();
    let false_zombies = times
        .iter()
        .filter(|(s, _)| !victim_ids.contains(s))
        .count();
    let mut secs: Vec<f64> = times
        .iter()
        .filter(|(s, _)| victim_ids.contains(s))
        .map(|(_, at)| (*at - killed_at).num_milliseconds() as f64 / 1000.0)
        .collect();
    secs.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if secs.is_empty() {
            0.0
        } else {
            secs[(((secs.len() - 1) as f64) * p).round() as usize]
        }
    };
    let i = interval.as_secs_f64();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    outln!(
        "{}",
        json!({
            "bench": "zombies",
            "droplets": droplets,
            "killed": kill,
            "detected": secs.len(),
            "false_zombies": false_zombies,
            "interval_s": interval_s,
            "detect_s_p50": round(pct(0.5)),
            "detect_s_p100": round(pct(1.0)),
            "detect_intervals_p50": round(pct(0.5) / i),
            "detect_intervals_p100": round(pct(1.0) / i),
            "target_s": 3.0 * i + 5.0,
        })
    );
    if secs.len() < kill || false_zombies > 0 {
        return Err(CliError::CheckFailed(format!(
            "{} of {kill} detected, {false_zombies} false zombies",
            secs.len()
        )));
    }
    Ok(())
}
