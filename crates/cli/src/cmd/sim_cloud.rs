//! `genesis sim-cloud`: the DigitalOcean API simulator as a standalone server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use genesis_sim::digitalocean::{
    Faults, SimConfig, Simulator, Timings, serve_metadata, serve_with,
};

use super::CliError;

/// How long simulated work takes.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Pace {
    /// Everything immediate.
    Instant,
    /// DigitalOcean's usual latencies (create ~40 s, boot ~30 s, snapshot ~2 min), divided
    /// by `--speed`.
    Realistic,
}

/// `sim-cloud` options.
#[derive(Debug, Args)]
pub struct SimCloudArgs {
    /// Listen address of the API (`/v2`, `/sim/v1`, and `/metadata/v1` for droplets).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Also serve the metadata service alone here, e.g. `127.169.254.254:8169`.
    #[arg(long)]
    metadata_listen: Option<String>,
    /// Seed of all random decisions (latencies, faults), for replayable runs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Latencies of creates, boots, power actions, snapshots and transfers.
    #[arg(long, value_enum, default_value = "instant")]
    pace: Pace,
    /// With `--pace realistic`, run this many times faster than DigitalOcean.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Requests per minute per token (DigitalOcean: 250).
    #[arg(long, default_value_t = 250)]
    per_minute: u32,
    /// Requests per hour per token (DigitalOcean: 5,000).
    #[arg(long, default_value_t = 5_000)]
    per_hour: u32,
    /// Faults in force at start, as the JSON `PUT /sim/v1/faults` takes.
    #[arg(long)]
    faults: Option<String>,
    /// Load state from this file at start (if it exists) and save it there on Ctrl-C.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Boot every droplet for real: the sidecar and a fake n8n, fed from the droplet's own
    /// cloud-init, on the droplet's 127.64/10 address, with its disk under this directory.
    #[arg(long, value_name = "DIR")]
    sidecars: Option<PathBuf>,
}

/// Serves until Ctrl-C.
pub async fn run(a: SimCloudArgs) -> Result<(), CliError> {
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(CliError::Usage(format!(
            "--speed must be a positive number, got {}",
            a.speed
        )));
    }
    let cfg = SimConfig {
        seed: a.seed,
        per_window: a.per_minute,
        per_long_window: a.per_hour,
        rate_window: Duration::from_secs(60),
        timings: match a.pace {
            Pace::Instant => Timings::INSTANT,
            Pace::Realistic => Timings::realistic().scaled(1.0 / a.speed),
        },
    };
    let sim = match &a.state_file {
        Some(path) if path.exists() => {
            let sim = Simulator::restore(cfg, path)
                .with_context(|| format!("restoring {}", path.display()))?;
            tracing::info!(file = %path.display(), droplets = sim.stats().droplets, "state restored");
            sim
        }
        _ => Simulator::new(cfg),
    };
    let (sim, hook) = match &a.sidecars {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            tracing::info!(dir = %dir.display(), "droplets boot the real sidecar and a fake n8n");
            let hook = genesis_sim::fleet::SidecarHook::new(dir.clone());
            (sim.with_boot_hook(hook.clone()), Some(hook))
        }
        None => (sim, None),
    };
    if let Some(json) = &a.faults {
        let faults: Faults = serde_json::from_str(json)
            .map_err(|e| CliError::Usage(format!("--faults is not valid: {e}")))?;
        sim.set_faults(faults);
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    if let Some(addr) = &a.metadata_listen {
        let ml = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(address = %addr, "metadata service listening (/metadata/v1)");
        tokio::spawn(serve_metadata(ml, sim.clone(), std::future::pending()));
    }
    tracing::info!(address = %a.listen, "DigitalOcean simulator listening (/v2, /sim/v1, /metadata/v1; Google's OAuth /token)");
    // Google's token endpoint rides on the same listener (another host in reality), so
    // `[oauth] google_token_url = "<this address>/token"` refreshes tenants' tokens here.
    let google = genesis_sim::google_oauth::FakeGoogleOAuth::new();
    serve_with(
        listener,
        sim.clone(),
        move |r| {
            // Chaos inside virtual droplets (drift, load) when they run the sidecar.
            let r = r.merge(google.router());
            match hook {
                Some(h) => r.merge(genesis_sim::fleet_admin::router(h)),
                None => r,
            }
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await
    .context("serving the simulator")?;
    if let Some(path) = &a.state_file {
        sim.save(path)
            .with_context(|| format!("saving state to {}", path.display()))?;
        tracing::info!(file = %path.display(), "state saved");
    }
    Ok(())
}
