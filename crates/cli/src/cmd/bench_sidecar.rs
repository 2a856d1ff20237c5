//! `genesis bench sidecar`: how much memory does an idle sidecar take (target < 20 MB)?
//! Starts a fake n8n and a stand-in control plane (handshake and heartbeat endpoints of
//! `genesis_protocol`) in this process, runs the `genesis-sidecar` binary as a child against
//! them, waits for it to hand-shake and heartbeat, lets it idle, and reads its resident
//! memory from `/proc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::{Json, Router, http::StatusCode, routing::post};
use genesis_protocol::{CommandSigner, HandshakeResponse, SidecarConfig};
use genesis_sim::n8n::{FakeN8n, FakeN8nConfig, serve};
use serde_json::json;

use super::CliError;
use super::bench_sim::{free_port, rss_bytes};

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the benchmark.
pub async fn run(idle_secs: u64) -> Result<(), CliError> {
    let exe = std::env::current_exe().context("locating the genesis binary")?;
    let sidecar = exe.with_file_name("genesis-sidecar");
    if !sidecar.exists() {
        return Err(CliError::Usage(format!(
            "{} not found: build it next to genesis (cargo build --release -p genesis-sidecar)",
            sidecar.display()
        )));
    }
    let n8n_port = free_port()?;
    let n8n = tokio::net::TcpListener::bind(("127.0.0.1", n8n_port))
        .await
        .context("binding the fake n8n")?;
    tokio::spawn(serve(
        n8n,
        FakeN8n::new(FakeN8nConfig::default()),
        std::future::pending(),
    ));

    let beats = Arc::new(AtomicU64::new(0));
    let signer = CommandSigner::generate().map_err(|e| CliError::Runtime(e.into()))?;
    let public = signer.public_key_b64();
    let counted = beats.clone();
    let app = Router::new()
        .route(
            "/api/v1/sidecar/handshake",
            post(move || {
                let public = public.clone();
                async move {
                    Json(HandshakeResponse {
                        sidecar_token: "bench".into(),
                        command_public_key: public,
                        command_key_id: String::new(),
                        config: SidecarConfig {
                            heartbeat_interval_s: 1,
                            metrics_interval_s: 3600,
                        },
                        inbound_secret: None,
                    })
                }
            }),
        )
        .route(
            "/api/v1/sidecar/heartbeat",
            post(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { StatusCode::NO_CONTENT }
            }),
        );
    let cp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the stand-in control plane")?;
    let cp_url = format!("http://{}", cp.local_addr().context("address")?);
    tokio::spawn(async move { axum::serve(cp, app).await });

    let dir = std::env::temp_dir().join(format!("genesis-bench-sidecar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("temp dir")?;
    let env_file = dir.join("genesis.env");
    std::fs::write(
        &env_file,
        format!(
            "GENESIS_DASHBOARD_URL={cp_url}\nGENESIS_WORKSPACE_ID={}\nGENESIS_PROVISIONING_TOKEN=bench\nGENESIS_REGION=eu-west\n",
            uuid::Uuid::now_v7()
        ),
    )
    .context("env file")?;
    let mut child = tokio::process::Command::new(&sidecar)
        .args(["--env-file"])
        .arg(&env_file)
        .args(["--droplet-id", "1", "--state-dir"])
        .arg(dir.join("state"))
        .args([
            "--n8n-url",
            &format!("http://127.0.0.1:{n8n_port}"),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("GENESIS_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .context("starting genesis-sidecar")?;
    let pid = child.id().context("sidecar pid")?;
    let started = Instant::now();
    eprintln!("waiting for the sidecar's first heartbeat ...");
    while beats.load(Ordering::Relaxed) == 0 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "no heartbeat within 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let boot = started.elapsed();
    eprintln!("idling {idle_secs} s ...");
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let rss = rss_bytes(pid).unwrap_or(0);
    let peak = vm_hwm(pid).unwrap_or(0);
    let heartbeats = beats.load(Ordering::Relaxed);
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mib = |b: u64| (b as f64 / (1 << 20) as f64 * 1000.0).round() / 1000.0;
    for (metric, value, unit, target, ok) in [
        ("boot_to_first_heartbeat", boot.as_secs_f64(), "s", "", None),
        ("heartbeats", heartbeats as f64, "count", "", None),
        (
            "sidecar_rss_idle",
            mib(rss),
            "MiB",
            "< 20 MB idle",
            Some(rss < 20_000_000),
        ),
        ("sidecar_rss_peak", mib(peak), "MiB", "", None),
    ] {
        outln!(
            "{}",
            json!({"bench": "sidecar", "metric": metric, "value": value, "unit": unit,
                "baseline": null, "target": target, "ok": ok})
        );
    }
    Ok(())
}
