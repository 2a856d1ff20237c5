//! `genesis bench sim-cloud`: can one machine simulate the fleet? Spawns `genesis sim-cloud`
//! as a child process (so its memory is measured alone), creates N droplets through the real
//! DigitalOcean client, and reports wall time, requests/s and the child's RSS.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_cloud::{ClientOptions, Cloud, CreateDroplet, DigitalOcean};
use serde_json::json;

use super::CliError;

/// Resident memory of a process, from `/proc`.
pub(super) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A port nobody listens on now.
pub(super) fn free_port() -> Result<u16, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr().context("local address")?.port())
}

/// Runs the benchmark.
pub async fn run(count: usize, concurrency: usize) -> Result<(), CliError> {
    if count == 0 || concurrency == 0 {
        return Err(CliError::Usage(
            "--count and --concurrency must be positive".into(),
        ));
    }
    let port = free_port()?;
    let exe = std::env::current_exe().context("locating the genesis binary")?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "sim-cloud",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--per-minute",
            "100000000",
            "--per-hour",
            "1000000000",
        ])
        .env("GENESIS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting genesis sim-cloud")?;
    let pid = child.id().context("simulator pid")?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = rss_bytes(pid).unwrap_or(0);
    let mut opts = ClientOptions::new(format!("http://127.0.0.1:{port}"), "bench");
    opts.per_minute = 100_000_000;
    opts.per_hour = 1_000_000_000;
    let client = DigitalOcean::new(opts).map_err(|e| CliError::Runtime(e.into()))?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    eprintln!("creating {count} virtual droplets with {concurrency} tasks ...");
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, genesis_cloud::CloudError>(());
                    }
                    client
                        .droplet_create(&CreateDroplet {
                            name: format!("bench-{i}"),
                            region: "fra1".into(),
                            size: "s-1vcpu-1gb".into(),
                            image: "ubuntu-22-04-x64".into(),
                            user_data: Some("#cloud-config\n".into()),
                            tags: vec![format!("ws-bench-{i}")],
                            ssh_keys: vec![],
                            vpc_uuid: None,
                        })
                        .await?;
                    if (i + 1) % (count / 10).max(1) == 0 {
                        eprintln!("  {}/{count}", i + 1);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await
            .context("joining a task")?
            .map_err(|e| CliError::Runtime(e.into()))?;
    }
    let wall = started.elapsed();
    let rss = rss_bytes(pid).unwrap_or(0);
    let _ = child.kill().await;
    // Each create is three requests: the idempotency lookup, the POST, and the action read.
    let requests = count as f64 * 3.0;
    let emit = |metric: &str, value: f64, unit: &str, target: &str, ok: Option<bool>| {
        outln!(
            "{}",
            json!({"bench": "sim-cloud", "metric": metric, "value": (value * 1000.0).round() / 1000.0,
            "unit": unit, "baseline": null, "target": target, "ok": ok})
        );
    };
    emit("droplets", count as f64, "droplets", "", None);
    emit("wall_time", wall.as_secs_f64(), "s", "", None);
    emit(
        "requests_per_s",
        requests / wall.as_secs_f64(),
        "1/s",
        "",
        None,
    );
    emit(
        "simulator_rss",
        rss as f64 / (1 << 20) as f64,
        "MiB",
        "< 1024 MiB at 15,000 droplets",
        Some(rss < 1 << 30),
    );
    emit(
        "simulator_rss_idle",
        rss_before as f64 / (1 << 20) as f64,
        "MiB",
        "",
        None,
    );
    Ok(())
}
