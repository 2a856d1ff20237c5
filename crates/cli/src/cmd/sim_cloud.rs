//! `genesis sim-cloud`: the DigitalOcean API simulator as a standalone server.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use genesis_sim::digitalocean::{SimConfig, Simulator, serve};

use super::CliError;

/// `sim-cloud` options.
#[derive(Debug, Args)]
pub struct SimCloudArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Seed of all random decisions (fault injection), for replayable runs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds from create to `active`.
    #[arg(long, default_value_t = 0)]
    create_delay_ms: u64,
    /// Milliseconds a power action takes.
    #[arg(long, default_value_t = 0)]
    action_delay_ms: u64,
    /// Requests per minute per token (DigitalOcean: 250).
    #[arg(long, default_value_t = 250)]
    per_minute: u32,
    /// Requests per hour per token (DigitalOcean: 5,000).
    #[arg(long, default_value_t = 5_000)]
    per_hour: u32,
}

/// Serves until Ctrl-C.
pub async fn run(a: SimCloudArgs) -> Result<(), CliError> {
    let sim = Simulator::new(SimConfig {
        seed: a.seed,
        per_window: a.per_minute,
        per_long_window: a.per_hour,
        rate_window: Duration::from_secs(60),
        create_delay: Duration::from_millis(a.create_delay_ms),
        action_delay: Duration::from_millis(a.action_delay_ms),
    });
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    tracing::info!(address = %a.listen, "DigitalOcean simulator listening (/v2, /sim/v1)");
    serve(listener, sim, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving the simulator")?;
    Ok(())
}
