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
    /// Also serve the simulated residential proxy network (HTTP CONNECT) here, behind the
    /// control plane's managed proxy door.
    #[arg(long)]
    proxy_listen: Option<String>,
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
    /// With `--sidecars`: the first N droplets to boot (hot standbys aside) run a real n8n
    /// 2.8.4 process instead of the fake (installed by `scripts/n8n-install.sh`; see
    /// `--n8n-home`).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "sidecars")]
    real_n8n: usize,
    /// With `--sidecars`: the first N droplets to boot (hot standbys aside) get Debian's
    /// Caddy in front, with the Caddyfile their cloud-init wrote, on https://<ip>:9443 and a
    /// simulator CA kept in the sidecars directory (its path is logged: give it to the
    /// control plane as ignition.sidecar_ca_file).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "sidecars")]
    caddy: usize,
    /// Where n8n 2.8.4 is installed (the directory `scripts/n8n-install.sh` prints).
    #[arg(long, env = "GENESIS_N8N_HOME", value_name = "DIR")]
    n8n_home: Option<PathBuf>,
    /// Registers an OAuth client with the fake Google: `ID:SECRET:REDIRECT_URI[,URI...]`
    /// (the control plane's `<origin>/app/oauth/google/callback`). Repeatable.
    #[arg(long, value_name = "ID:SECRET:REDIRECT_URIS")]
    google_client: Vec<String>,
    /// Writes one working key per fake AI vendor to this file (JSON), for people to paste
    /// in the wizard: the fakes accept only keys they issued.
    #[arg(long, value_name = "FILE")]
    ai_keys_file: Option<PathBuf>,
    /// Runs Knot DNS (Debian's `knot`) as the authoritative server of tenants' domains, with
    /// its files in this directory, and serves the Entri-like provider that writes to it at
    /// `/entri/v1/apply`. Its address is written to `DIR/address`.
    #[arg(long, value_name = "DIR")]
    dns_dir: Option<PathBuf>,
}

/// The default place `scripts/n8n-install.sh` installs n8n.
fn default_n8n_home() -> Option<PathBuf> {
    let cache = std::env::var_os("GENESIS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("genesis")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/genesis")))?;
    Some(cache.join(format!("n8n-real-{}", genesis_n8n::N8N_VERSION)))
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
            let hook = if a.real_n8n > 0 {
                let real =
                    genesis_sim::fleet::RealN8n {
                        install_dir: a.n8n_home.clone().or_else(default_n8n_home).ok_or_else(
                            || {
                                CliError::Usage(
                                    "--real-n8n needs --n8n-home (or GENESIS_N8N_HOME)".into(),
                                )
                            },
                        )?,
                        droplets: a.real_n8n,
                    };
                if real.program().is_none() {
                    return Err(CliError::Usage(format!(
                        "--real-n8n: no n8n {} in {} (install it with scripts/n8n-install.sh, \
                         or point --n8n-home at the directory it prints)",
                        genesis_n8n::N8N_VERSION,
                        real.install_dir.display()
                    )));
                }
                tracing::info!(dir = %dir.display(), real = a.real_n8n, n8n = %real.install_dir.display(),
                    "droplets boot the real sidecar; the first ones a real n8n, the others a fake");
                genesis_sim::fleet::SidecarHook::with_real_n8n(
                    dir.clone(),
                    Duration::from_secs(20),
                    real,
                )
            } else {
                tracing::info!(dir = %dir.display(), "droplets boot the real sidecar and a fake n8n");
                genesis_sim::fleet::SidecarHook::new(dir.clone())
            };
            if a.caddy > 0 {
                let front = genesis_sim::caddy::CaddyFront::prepare(&dir.join("ca"))
                    .map_err(|e| CliError::Usage(format!("--caddy: {e}")))?;
                tracing::info!(droplets = a.caddy, ca = %front.ca_cert().display(),
                    "the first droplets get Caddy in front on https://<ip>:9443");
                hook.front_with_caddy(front, a.caddy);
            }
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
    if let Some(addr) = &a.proxy_listen {
        let pl = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(address = %addr, "residential proxy network listening (CONNECT)");
        tokio::spawn(genesis_sim::residential_proxy::FakeResidentialProxy::new().serve(pl));
    }
    tracing::info!(address = %a.listen, "DigitalOcean simulator listening (/v2, /sim/v1, /metadata/v1; Google's OAuth /token)");
    // Google's token endpoint rides on the same listener (another host in reality), so
    // `[oauth] google_token_url = "<this address>/token"` refreshes tenants' tokens here.
    let google = genesis_sim::google_oauth::FakeGoogleOAuth::new();
    for spec in &a.google_client {
        let mut parts = spec.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(secret), Some(redirects))
                if !id.is_empty()
                    && !secret.is_empty()
                    && redirects.split(',').all(|r| r.starts_with("http")) =>
            {
                let uris: Vec<&str> = redirects.split(',').collect();
                google.register_client(id, secret, &uris);
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "--google-client takes ID:SECRET:REDIRECT_URI, got {spec:?}"
                )));
            }
        }
    }
    // The AI vendors' fakes ride on the same listener too, under a prefix each.
    let ai = genesis_sim::ai_providers::FakeAiProviders::new();
    if let Some(path) = &a.ai_keys_file {
        use genesis_sim::ai_providers::Vendor;
        let keys = serde_json::json!({
            "openai": ai.issue(Vendor::OpenAi),
            "anthropic": ai.issue(Vendor::Anthropic),
            "relevance": ai.issue(Vendor::Relevance),
        });
        std::fs::write(path, keys.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let entri = match &a.dns_dir {
        Some(dir) => {
            let knot = genesis_sim::dns::Knot::start(dir)
                .await
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("{e}")))?;
            std::fs::write(dir.join("address"), knot.addr().to_string())
                .with_context(|| format!("writing {}", dir.join("address").display()))?;
            tracing::info!(address = %knot.addr(), "authoritative DNS (knotd) listening");
            Some(genesis_sim::dns::FakeEntri::new(knot))
        }
        None => None,
    };
    // The wholesale vendors of the managed-service gateway (Google CSE, ZeroBounce).
    let wholesale = genesis_sim::managed::FakeWholesale::new();
    // The payment provider behind wallet top-ups (Stripe's API, under /stripe).
    let stripe = genesis_sim::payments::FakeStripe::new();
    let hook_for_routes = hook.clone();
    serve_with(
        listener,
        sim.clone(),
        move |r| {
            // Chaos inside virtual droplets (drift, load) when they run the sidecar.
            let r = r
                .merge(google.router())
                .merge(ai.router())
                .merge(wholesale.router())
                .merge(stripe.router());
            let r = match &entri {
                Some(e) => r.merge(e.router()),
                None => r,
            };
            match hook_for_routes {
                Some(h) => r.merge(genesis_sim::fleet_admin::router(h)),
                None => r,
            }
        },
        stop_signal(),
    )
    .await
    .context("serving the simulator")?;
    if let Some(h) = &hook {
        // Real n8n processes and Caddy would otherwise outlive the simulator.
        h.shutdown(Duration::from_secs(30)).await;
    }
    if let Some(path) = &a.state_file {
        sim.save(path)
            .with_context(|| format!("saving state to {}", path.display()))?;
        tracing::info!(file = %path.display(), "state saved");
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (what `make demo`'s cleanup and process supervisors send).
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
