//! `genesis serve`: the control plane: its HTTP server and, when a cloud and Redis are
//! configured, the fleet worker and the background loops (with start-up recovery of
//! unfinished sagas), side by side under a [`Supervisor`](super::supervise::Supervisor):
//! whichever stops first is named with its reason, the rest are stopped and awaited, and
//! the process exits non-zero when one failed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use genesis_control::{AppState, auth::token_digest, serve};
use genesis_core::TenantRouter;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::CliError;
use crate::config::Config;

/// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
pub async fn run(cfg: Config) -> Result<(), CliError> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let stores = cfg.regional_store()?;
    let redis = cfg
        .redis
        .url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .map_err(|e| CliError::Usage(format!("redis.url: {e}")))?;
    if cfg.server.api_token.is_none() {
        tracing::warn!("server.api_token is not set: /api/v1 refuses every request");
    }
    let signer = match cfg.server.command_key.as_deref() {
        Some(b64) => {
            use base64::Engine as _;
            let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    CliError::Usage("server.command_key must be 32 bytes in base64".into())
                })?;
            genesis_protocol::CommandSigner::from_seed(&seed)
        }
        None => {
            tracing::warn!(
                "server.command_key is not set: using a throwaway command key (sidecars that hand-shake now cannot be commanded after a restart)"
            );
            genesis_protocol::CommandSigner::generate()
        }
    }
    .map_err(|e| CliError::Runtime(e.into()))?;
    let signer = Arc::new(signer);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every command sent to a sidecar is journaled (God Mode's droplet page), in the
    // coordinator database, flushed every second.
    let (journal, journaling) = genesis_control::command_journal::JournalSink::start(
        stores.distinct()[0].clone(),
        Duration::from_secs(1),
        stop_rx.clone(),
    );
    let igniter = build_igniter(&cfg, &stores, signer.clone(), journal.clone()).await?;
    let state = AppState {
        god: cfg.god_mode.settings(),
        handshakes: std::sync::Arc::new(genesis_control::attest::HandshakeGate::new(
            cfg.server.trusted_proxies.clone(),
        )),
        sign_ins: std::sync::Arc::new(genesis_control::god::sign_in_guard::SignInGuard::new(
            cfg.god_mode
                .sign_in_limits(cfg.server.trusted_proxies.clone()),
        )),
        stores: stores.clone(),
        redis,
        router: Arc::new(TenantRouter::new(cfg.legacy_tenant())),
        metrics: Some(metrics),
        api_token_sha256: cfg.server.api_token.as_deref().map(token_digest),
        command_signer: Some(signer),
        igniter: igniter.clone(),
        heartbeats: std::sync::Arc::new(genesis_control::heartbeats::HeartbeatSink::new(
            stores.clone(),
            std::time::Duration::from_secs(60),
        )),
        sidecar_config: genesis_protocol::SidecarConfig {
            heartbeat_interval_s: cfg.sidecar.heartbeat_interval_s,
            metrics_interval_s: cfg.sidecar.metrics_interval_s,
        },
    };
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    tracing::info!(address = %cfg.server.listen, "control plane listening");
    let mut tasks = super::supervise::Supervisor::default();
    tasks.spawn("http server", {
        let mut rx = stop_rx.clone();
        async move {
            serve(listener, state, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| e.to_string())
        }
    });
    tasks.spawn("command journal", async move {
        journaling.await.map_err(|e| e.to_string())
    });
    if let Some(ig) = igniter {
        let recovered = ig
            .recover()
            .await
            .map_err(|e| CliError::Runtime(anyhow::anyhow!("ignition recovery: {e}")))?;
        if recovered > 0 {
            tracing::info!(sagas = recovered, "resuming unfinished ignitions");
        }
        tasks.spawn(
            "orphan reaper",
            looping(reap_loop(ig.clone(), stop_rx.clone())),
        );
        tasks.spawn(
            "zombie detector",
            looping(zombie_loop(
                stores.clone(),
                ig.clone(),
                Duration::from_secs(cfg.sidecar.heartbeat_interval_s),
                stop_rx.clone(),
            )),
        );
        tasks.spawn(
            "watchdog",
            looping(watchdog_loop(
                stores.clone(),
                ig.bus().clone(),
                Duration::from_secs(cfg.sidecar.heartbeat_interval_s),
                stop_rx.clone(),
            )),
        );
        tasks.spawn(
            "hibernation",
            looping(hibernation_loop(
                stores.clone(),
                ig.clone(),
                stop_rx.clone(),
            )),
        );
        tasks.spawn(
            "rollout conductor",
            looping(rollout_loop(
                stores.clone(),
                ig.bus().clone(),
                stop_rx.clone(),
            )),
        );
        tasks.spawn(
            "standby pool",
            looping(standby_loop(
                stores.clone(),
                ig.clone(),
                cfg.standby.sizes(),
                stop_rx.clone(),
            )),
        );
        let oauth = genesis_ignition::OAuthRefresher::new(&cfg.oauth.google_token_url)
            .map_err(|e| CliError::Runtime(anyhow::anyhow!("oauth: {e}")))?;
        // One worker runs every queue of the fleet's set.
        let jobs = genesis_control::workers::jobs::FleetJobs::new(
            genesis_ignition::IgnitionJobs::new(ig.clone()),
            genesis_control::workers::zombies::RebootJobs::new(stores.clone(), ig.cloud().clone()),
            genesis_control::workers::heals::HealJobs::new(stores.clone(), ig.clone(), Some(oauth)),
            genesis_control::workers::rollouts::RolloutJobs::new(stores.clone(), ig.clone()),
            genesis_control::workers::hibernation::HibernateJobs::new(
                stores.clone(),
                ig.cloud().clone(),
                ig.sidecar().clone(),
                Default::default(),
            ),
            genesis_control::workers::standby::StandbyJobs::new(stores.clone(), ig.clone()),
        );
        let worker = genesis_queue::Worker::new(ig.bus().clone(), jobs, cfg.ignition.workers);
        let mut rx = stop_rx.clone();
        tasks.spawn("fleet worker", async move {
            worker
                .run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
                .map_err(|e| e.to_string())
        });
    }
    let outcome = tasks
        .run(shutdown_signal(), move || {
            let _ = stop_tx.send(true);
        })
        .await;
    match outcome {
        Ok(()) => {
            tracing::info!("control plane stopped");
            Ok(())
        }
        Err(why) => Err(CliError::Runtime(anyhow::anyhow!(why))),
    }
}

/// A background loop as a supervised task: loops end only when told to stop, so reaching
/// the end is `Ok` (the supervisor treats an end before the stop as a failure).
async fn looping(l: impl Future<Output = ()>) -> Result<(), String> {
    l.await;
    Ok(())
}

type Ig = genesis_ignition::Igniter<genesis_cloud::DigitalOcean>;

/// The ignition saga's dependencies, when the config has a cloud token and Redis.
async fn build_igniter(
    cfg: &Config,
    stores: &genesis_store::RegionalStore,
    signer: Arc<genesis_protocol::CommandSigner>,
    journal: Arc<genesis_control::command_journal::JournalSink>,
) -> Result<Option<Arc<Ig>>, CliError> {
    let (Some(token), Some(redis_url)) = (&cfg.cloud.token, &cfg.redis.url) else {
        tracing::warn!(
            "ignition is off: it needs cloud.token and redis.url (POST .../ignite answers 503)"
        );
        return Ok(None);
    };
    let mut o = genesis_cloud::ClientOptions::new(&cfg.cloud.url, token);
    o.per_minute = cfg.cloud.per_minute;
    o.per_hour = cfg.cloud.per_hour;
    let cloud =
        genesis_cloud::DigitalOcean::new(o).map_err(|e| CliError::Usage(format!("cloud: {e}")))?;
    let bus = genesis_queue::Bus::connect(
        redis_url,
        &cfg.ignition.queue_set,
        genesis_queue::config::fleet_queues(),
        genesis_queue::GovernorConfig::default(),
    )
    .await
    .map_err(|e| CliError::Runtime(anyhow::anyhow!("redis: {e}")))?;
    let templates = match &cfg.ignition.templates_dir {
        Some(dir) => genesis_ignition::TemplateSet::load(std::path::Path::new(dir)),
        None => genesis_ignition::TemplateSet::golden(),
    }
    .map_err(|e| CliError::Usage(format!("ignition.templates_dir: {e}")))?;
    let vault = cfg
        .vault
        .master_keys()
        .map_err(|p| CliError::Usage(p.to_string()))?;
    if vault.is_none() {
        tracing::warn!("vault has no master key: ignitions that carry credentials are refused");
    }
    let network = cfg
        .ignition
        .network()
        .map_err(|p| CliError::Usage(format!("{}: {}", p.field, p.message)))?;
    let ca = match &cfg.ignition.sidecar_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            CliError::Usage(format!("ignition.sidecar_ca_file: cannot read {path}: {e}"))
        })?),
        None => None,
    };
    let sidecar = genesis_ignition::SidecarClient::with_options(
        signer,
        cfg.ignition.sidecar_url.clone(),
        std::time::Duration::from_secs(30),
        genesis_ignition::sidecar_client::ClientTls {
            extra_root_pem: ca,
            host_suffix: Some(network.host_suffix.clone()),
        },
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let sidecar = match &cfg.ignition.sidecar_url_fallback {
        Some(url) => sidecar.with_fallback(url.clone()),
        None => sidecar,
    }
    .with_journal(journal);
    let settings = genesis_ignition::IgnitionSettings {
        dashboard_url: cfg
            .ignition
            .dashboard_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.server.listen)),
        images: genesis_ignition::Images {
            caddy: cfg.ignition.caddy_image.clone(),
            n8n: cfg.ignition.n8n_image.clone(),
            sidecar: cfg.ignition.sidecar_image.clone(),
        },
        require_digests: cfg.ignition.require_digests,
        droplet_size: cfg.ignition.droplet_size.clone(),
        droplet_image: cfg.ignition.droplet_image.clone(),
        timeouts: cfg.ignition.timeouts(),
        inline_wait: std::time::Duration::from_secs(2),
        lease: std::time::Duration::from_secs(cfg.ignition.lease_s),
        actor: "ignition".into(),
        network,
    };
    Ok(Some(Arc::new(genesis_ignition::Igniter::new(
        stores.clone(),
        Arc::new(cloud),
        sidecar,
        vault.map(Arc::new),
        Arc::new(templates),
        settings,
        bus,
    ))))
}

/// Spec 54.4's zombie detector, on whichever replica leads it, a few times per heartbeat
/// interval.
async fn zombie_loop(
    stores: genesis_store::RegionalStore,
    ig: Arc<Ig>,
    heartbeat_interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use genesis_control::workers::zombies::{ZombieDetector, ZombieSettings};
    let detector = Arc::new(ZombieDetector::new(
        stores.clone(),
        ig.cloud().clone(),
        ig.bus().clone(),
        ZombieSettings {
            heartbeat_interval,
            ..ZombieSettings::default()
        },
    ));
    let every = (heartbeat_interval / 4).max(Duration::from_millis(250));
    let coordinator = stores.distinct()[0].clone();
    genesis_control::workers::leader::run_as_leader(
        coordinator,
        "zombie-detector",
        every,
        stop,
        || {
            let d = detector.clone();
            async move {
                match d.reconcile().await {
                    Ok(r) if r.zombies + r.orphaned > 0 => {
                        tracing::warn!(zombies = r.zombies, orphaned = r.orphaned, "zombie pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "zombie pass failed"),
                }
            }
        },
    )
    .await;
}

/// Spec 55's hibernation reconciler, on whichever replica leads it, every 30 s (its
/// thresholds are days, but a scheduled campaign's wake lead is a minute).
async fn hibernation_loop(
    stores: genesis_store::RegionalStore,
    ig: Arc<Ig>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let hibernator = Arc::new(genesis_control::workers::hibernation::Hibernator::new(
        stores.clone(),
        ig.bus().clone(),
        ig.cloud().clone(),
        Default::default(),
    ));
    let coordinator = stores.distinct()[0].clone();
    genesis_control::workers::leader::run_as_leader(
        coordinator,
        "hibernation",
        Duration::from_secs(30),
        stop,
        || {
            let h = hibernator.clone();
            async move {
                match h.reconcile().await {
                    Ok(r) if r.noticed + r.queued + r.woken > 0 => {
                        tracing::info!(report = ?r, "hibernation pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "hibernation pass failed"),
                }
            }
        },
    )
    .await;
}

/// Spec 56's rollout conductor, on whichever replica leads it, every second (a batch's
/// end is noticed within a second; the conductor's own pause between batches is policy).
async fn rollout_loop(
    stores: genesis_store::RegionalStore,
    bus: genesis_queue::Bus,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let conductor = Arc::new(genesis_control::workers::rollouts::RolloutConductor::new(
        stores.clone(),
        bus,
    ));
    let coordinator = stores.distinct()[0].clone();
    genesis_control::workers::leader::run_as_leader(
        coordinator,
        "rollouts",
        Duration::from_secs(1),
        stop,
        || {
            let c = conductor.clone();
            async move {
                match c.reconcile().await {
                    Ok(r) if r.batches_judged + r.batches_started + r.woken_swaps > 0 => {
                        tracing::info!(report = ?r, "rollout pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "rollout pass failed"),
                }
            }
        },
    )
    .await;
}

/// The hot-standby pool (spec 55.4), on whichever replica leads it, every second: a waking
/// High-Priority tenant is claimed a standby within a second of its wake.
async fn standby_loop(
    stores: genesis_store::RegionalStore,
    ig: Arc<Ig>,
    sizes: std::collections::BTreeMap<genesis_core::Region, usize>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let pool = Arc::new(genesis_control::workers::standby::StandbyPool::new(
        stores.clone(),
        ig.bus().clone(),
        ig.clone(),
        genesis_control::workers::standby::StandbySettings {
            sizes,
            ..Default::default()
        },
    ));
    let coordinator = stores.distinct()[0].clone();
    genesis_control::workers::leader::run_as_leader(
        coordinator,
        "standby",
        Duration::from_secs(1),
        stop,
        || {
            let p = pool.clone();
            async move {
                match p.reconcile().await {
                    Ok(r) if r.claims + r.swap_backs + r.destroyed + r.created > 0 => {
                        tracing::info!(report = ?r, "standby pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "standby pass failed"),
                }
            }
        },
    )
    .await;
}

/// Spec 43's watchdog, on whichever replica leads it, once per heartbeat interval (each pass
/// sees every droplet's latest inventory).
async fn watchdog_loop(
    stores: genesis_store::RegionalStore,
    bus: genesis_queue::Bus,
    heartbeat_interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let watchdog = Arc::new(genesis_control::workers::watchdog::Watchdog::new(
        stores.clone(),
        bus,
    ));
    let coordinator = stores.distinct()[0].clone();
    genesis_control::workers::leader::run_as_leader(
        coordinator,
        "watchdog",
        heartbeat_interval.max(Duration::from_secs(1)),
        stop,
        || {
            let w = watchdog.clone();
            async move {
                match w.reconcile().await {
                    Ok(r) if !r.drifts.is_empty() => {
                        tracing::warn!(drifts = ?r.drifts, heals_queued = r.queued, "watchdog pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "watchdog pass failed"),
                }
            }
        },
    )
    .await;
}

/// The orphan reaper, every five minutes until shutdown.
async fn reap_loop(ig: Arc<Ig>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => match ig.reap_orphans().await {
                Ok(r) if !r.deleted.is_empty() => {
                    tracing::warn!(examined = r.examined, deleted = ?r.deleted, "reaped orphan droplets");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "orphan reaper pass failed"),
            },
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
