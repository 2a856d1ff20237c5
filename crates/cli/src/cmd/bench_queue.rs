//! `genesis bench queue` (no-op throughput against BullMQ on the same Redis, in the same run)
//! and `genesis bench fleet-update` (15,000 template jobs through the spec 52.2 governor).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_queue::{Bus, Claimed, GovernorConfig, Handler, JobError, QueueConfig, Worker};
use serde_json::json;

use super::CliError;

fn emit(
    bench: &str,
    metric: &str,
    value: f64,
    unit: &str,
    baseline: Option<f64>,
    target: &str,
    ok: Option<bool>,
) {
    outln!(
        "{}",
        json!({"bench": bench, "metric": metric, "value": (value * 1000.0).round() / 1000.0,
            "unit": unit, "baseline": baseline, "target": target, "ok": ok})
    );
}

struct Count {
    done: Arc<AtomicU64>,
    sleep: Option<(u64, u64)>,
    starts: Option<Arc<std::sync::Mutex<Vec<Instant>>>>,
}

impl Handler for Count {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        if let Some(s) = &self.starts
            && let Ok(mut v) = s.lock()
        {
            v.push(Instant::now());
        }
        if let Some((lo, hi)) = self.sleep {
            // A stable per-job duration in [lo, hi] ms, from the id.
            let h = job
                .id
                .bytes()
                .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
            tokio::time::sleep(Duration::from_millis(lo + h % (hi - lo + 1))).await;
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn fill(bus: &Bus, queue: &str, jobs: usize) -> Result<(), CliError> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (bus, next, queue) = (bus.clone(), next.clone(), queue.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= jobs {
                    return Ok::<_, genesis_queue::QueueError>(());
                }
                bus.add(&queue, &format!("j{i}"), "{}", Duration::ZERO)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await
            .context("joining")?
            .map_err(|e| CliError::Runtime(e.into()))?;
    }
    Ok(())
}

/// Runs `worker` until `done` reaches `jobs`; returns the elapsed time.
async fn drain<H: Handler>(worker: Worker<H>, done: &AtomicU64, jobs: u64) -> Duration {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run(async {
        let _ = rx.await;
    }));
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let _ = tx.send(());
    let _ = handle.await;
    elapsed
}

fn set_name(kind: &str) -> String {
    format!("bench{kind}{}", std::process::id())
}

/// Runs BullMQ's side from `benches/bullmq` (installing it on first use).
async fn bullmq(redis_url: &str, jobs: usize, concurrency: u32) -> Result<f64, CliError> {
    let dir = Path::new("benches/bullmq");
    if !dir.join("noop.mjs").exists() {
        return Err(CliError::Usage(
            "run from the repository root (benches/bullmq is needed)".into(),
        ));
    }
    if !dir.join("node_modules/bullmq").exists() {
        eprintln!("installing bullmq (npm ci) ...");
        let st = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .await
            .context("running npm (Node.js 20 is needed for the BullMQ side)")?;
        if !st.success() {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "npm ci failed in benches/bullmq"
            )));
        }
    }
    let out = tokio::process::Command::new("node")
        .arg("noop.mjs")
        .arg(redis_url)
        .arg(jobs.to_string())
        .arg(concurrency.to_string())
        .current_dir(dir)
        .output()
        .await
        .context("running node")?;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(|| {
        format!(
            "BullMQ said: {line} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    v["jobs_per_s"]
        .as_f64()
        .ok_or_else(|| CliError::Runtime(anyhow::anyhow!("no jobs_per_s from BullMQ")))
}

/// `genesis bench queue`.
pub async fn queue(
    redis_url: &str,
    cluster_url: Option<&str>,
    jobs: usize,
    concurrency: u32,
    with_bullmq: bool,
) -> Result<(), CliError> {
    if jobs == 0 || concurrency == 0 {
        return Err(CliError::Usage(
            "--jobs and --concurrency must be positive".into(),
        ));
    }
    let (adds, ours) = ours(redis_url, jobs, concurrency).await?;
    emit("queue", "genesis_adds_per_s", adds, "1/s", None, "", None);
    emit("queue", "genesis_jobs_per_s", ours, "1/s", None, "", None);
    if let Some(cluster) = cluster_url {
        eprintln!("the same on the cluster ...");
        let (c_adds, c_jobs) = self::ours(cluster, jobs, concurrency).await?;
        emit("queue", "cluster_adds_per_s", c_adds, "1/s", None, "", None);
        emit("queue", "cluster_jobs_per_s", c_jobs, "1/s", None, "", None);
        emit(
            "queue",
            "cluster_vs_node_adds",
            c_adds / adds,
            "x",
            Some(1.0),
            "",
            None,
        );
        emit(
            "queue",
            "cluster_vs_node_jobs",
            c_jobs / ours,
            "x",
            Some(1.0),
            "",
            None,
        );
    }
    if with_bullmq {
        eprintln!("running the same workload with BullMQ ...");
        let theirs = bullmq(redis_url, jobs, concurrency).await?;
        emit("queue", "bullmq_jobs_per_s", theirs, "1/s", None, "", None);
        emit(
            "queue",
            "ratio_vs_bullmq",
            ours / theirs,
            "x",
            Some(1.0),
            ">= 1.0x BullMQ",
            Some(ours >= theirs),
        );
    }
    Ok(())
}

/// Our queue on `redis_url`: adds per second (32 adders), then no-op jobs per second.
async fn ours(redis_url: &str, jobs: usize, concurrency: u32) -> Result<(f64, f64), CliError> {
    let cfg = GovernorConfig {
        max_concurrency: concurrency,
        rate_max: u32::MAX,
        keep_completed: Duration::ZERO,
        ..GovernorConfig::default()
    };
    let bus = Bus::connect(
        redis_url,
        &set_name("q"),
        vec![QueueConfig::new("noop", 1, concurrency)],
        cfg,
    )
    .await
    .map_err(|e| CliError::Runtime(e.into()))?;
    eprintln!("adding {jobs} jobs ...");
    let started = Instant::now();
    fill(&bus, "noop", jobs).await?;
    let adds = jobs as f64 / started.elapsed().as_secs_f64();
    eprintln!("running them with concurrency {concurrency} ...");
    let done = Arc::new(AtomicU64::new(0));
    let worker = Worker::new(
        bus.clone(),
        Count {
            done: done.clone(),
            sleep: None,
            starts: None,
        },
        concurrency,
    );
    let elapsed = drain(worker, &done, jobs as u64).await;
    let _ = bus.destroy().await;
    Ok((adds, jobs as f64 / elapsed.as_secs_f64()))
}

/// `genesis bench fleet-update`.
pub async fn fleet_update(redis_url: &str, jobs: usize) -> Result<(), CliError> {
    let cfg = GovernorConfig::default();
    let bound = jobs as f64 / cfg.rate_max as f64;
    let bus = Bus::connect(
        redis_url,
        &set_name("f"),
        genesis_queue::config::fleet_queues(),
        cfg,
    )
    .await
    .map_err(|e| CliError::Runtime(e.into()))?;
    eprintln!("adding {jobs} template jobs ...");
    fill(&bus, "template", jobs).await?;
    eprintln!("running them through the governor (100 concurrent, 200/s, 50-500 ms each) ...");
    let done = Arc::new(AtomicU64::new(0));
    let starts = Arc::new(std::sync::Mutex::new(Vec::with_capacity(jobs)));
    // Two workers, as two replicas would run: the governor is shared through Redis.
    let mut handles = Vec::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    for _ in 0..2 {
        let w = Worker::new(
            bus.clone(),
            Count {
                done: done.clone(),
                sleep: Some((50, 500)),
                starts: Some(starts.clone()),
            },
            100,
        );
        let mut rx = rx.clone();
        handles.push(tokio::spawn(w.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }
    let started = Instant::now();
    let mut last = 0;
    while done.load(Ordering::Relaxed) < jobs as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let d = done.load(Ordering::Relaxed);
        if d / 1500 != last / 1500 {
            eprintln!("  {d}/{jobs} at {:.1} s", started.elapsed().as_secs_f64());
        }
        last = d;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    let counts = bus
        .counts("template")
        .await
        .map_err(|e| CliError::Runtime(e.into()))?;
    let _ = bus.destroy().await;
    let mut t = starts.lock().map(|v| v.clone()).unwrap_or_default();
    t.sort();
    let window = Duration::from_secs(1);
    let mut worst = 0;
    let mut j = 0;
    for i in 0..t.len() {
        while j < t.len() && t[j] - t[i] < window {
            j += 1;
        }
        worst = worst.max(j - i);
    }
    emit("fleet-update", "jobs", jobs as f64, "jobs", None, "", None);
    emit(
        "fleet-update",
        "completion_time",
        elapsed,
        "s",
        Some(bound),
        "<= 77 s for 15,000 (bound 75 s; spec 52.3 timeline 150 s)",
        Some(elapsed <= bound + 2.0),
    );
    emit(
        "fleet-update",
        "max_starts_in_any_1s_window",
        worst as f64,
        "starts",
        None,
        "<= 200",
        Some(worst <= 200),
    );
    emit(
        "fleet-update",
        "lost",
        (jobs as u64).saturating_sub(counts.completed) as f64,
        "jobs",
        None,
        "0",
        Some(counts.completed == jobs as u64),
    );
    Ok(())
}
