//! `genesis serve`: reads the configuration, builds the control plane with
//! [`ControlPlane::builder`] (the same builder tests and benchmarks use) and runs it until
//! Ctrl-C or SIGTERM. Everything it runs is supervised: the process exits non-zero, naming
//! the task, when one stops on its own or fails.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use genesis_control::{ControlPlane, FleetSettings};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::CliError;
use crate::config::Config;

/// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
pub async fn run(cfg: Config) -> Result<(), CliError> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    genesis_control::telemetry::describe();
    let stores = cfg.regional_store()?;
    let redis = cfg
        .redis
        .url
        .as_deref()
        .map(genesis_queue::RedisTarget::parse)
        .transpose()
        .map_err(|e| CliError::Usage(format!("redis.url: {e}")))?;
    if cfg.server.api_token.is_none() {
        tracing::warn!("server.api_token is not set: /api/v1 refuses every request");
    }
    // One ring for the handshake, heartbeat answers and every command sent: a key rotation
    // switches them together.
    let ring = Arc::new(genesis_protocol::CommandKeyRing::new(Arc::new(
        command_signer(&cfg)?,
    )));
    let vault = cfg
        .vault
        .master_keys()
        .map_err(|p| CliError::Usage(p.to_string()))?
        .map(Arc::new);
    if vault.is_none() {
        tracing::warn!(
            "vault has no master key: ignitions that carry credentials, and operators with a second factor, are refused"
        );
    }
    if !cfg.god_mode.require_totp {
        tracing::warn!(
            "god_mode.require_totp is off: operators without a second factor sign in with a password alone"
        );
    }
    // The service matrix is checked before anything starts: a bad edit stops here.
    let wallet_settings = cfg.wallet.settings()?;
    let payments = cfg.payments.provider()?;
    let providers_base = genesis_control::providers::Providers::default();
    let wallets = match &cfg.redis.url {
        Some(url) => {
            let conn = genesis_queue::RedisConn::connect(url)
                .await
                .map_err(|e| CliError::Runtime(anyhow::anyhow!("redis: {e}")))?;
            let wallets = genesis_control::app::wallet::Wallets::new(
                genesis_queue::wallet::WalletCache::new(conn, ""),
                stores.clone(),
                wallet_settings,
            );
            Some(Arc::new(match &payments {
                Some(p) => wallets.with_payments(p.clone(), providers_base.http.clone()),
                None => wallets,
            }))
        }
        None => {
            tracing::warn!("redis.url is not set: managed services are off (they answer 503)");
            None
        }
    };
    if !cfg.wallet.kill_switch_enabled {
        tracing::warn!(
            "wallet.kill_switch_enabled is off: managed calls are metered but never refused"
        );
    }
    let outbox = cfg.mail.outbox(&cfg.server.listen)?;
    if outbox.is_none() {
        tracing::warn!("mail.smtp_url is not set: notifications wait in the outbox, unsent");
    }
    let inbound = inbound_key(&cfg)?;
    let mut builder = ControlPlane::builder(stores.clone())
        .wallets(wallets)
        .outbox(outbox)
        .webhooks(cfg.webhooks.settings())
        .vault(vault.clone())
        .redis(redis)
        .metrics(metrics)
        .api_token(cfg.server.api_token.as_deref())
        .command_keys(ring.clone())
        .sidecar_config(genesis_protocol::SidecarConfig {
            heartbeat_interval_s: cfg.sidecar.heartbeat_interval_s,
            metrics_interval_s: cfg.sidecar.metrics_interval_s,
        })
        .god(cfg.god_mode.settings())
        .sign_in_limits(cfg.god_mode.sign_in_limits())
        .trusted_proxies(cfg.server.trusted_proxies.clone())
        .inbound_key_opt(inbound)
        .audit_key(audit_key(&cfg, false)?)
        .exports_dir(cfg.server.exports_dir.clone())
        .providers({
            let base = providers_base;
            genesis_control::providers::Providers {
                google: cfg.oauth.google_app(),
                openai_url: cfg.ai.openai_url.clone(),
                anthropic_url: cfg.ai.anthropic_url.clone(),
                relevance_url: cfg.ai.relevance_url.clone(),
                dns_server: cfg.dns.server_addr(),
                dns_provider: cfg.dns.provider(&base.http),
                managed: cfg.managed.upstreams(),
                payments,
                ..base
            }
        })
        .legacy_tenant(cfg.legacy_tenant());
    // Every command sent to a sidecar is journaled (God Mode's droplet page).
    let journal = builder.command_journal(Duration::from_secs(1));
    if let Some(igniter) = build_igniter(&cfg, &stores, ring, journal, vault).await? {
        let oauth = genesis_ignition::OAuthRefresher::new(&cfg.oauth.google_token_url)
            .map_err(|e| CliError::Runtime(anyhow::anyhow!("oauth: {e}")))?;
        builder = builder.fleet(
            igniter,
            FleetSettings {
                workers: cfg.ignition.workers,
                heartbeat_interval: Duration::from_secs(cfg.sidecar.heartbeat_interval_s),
                standby_sizes: cfg.standby.sizes(),
                region_watch: cfg.dr.region_watch(),
                oauth: Some(oauth),
                ..FleetSettings::default()
            },
        );
    }
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    tracing::info!(address = %cfg.server.listen, "control plane listening");
    let control_plane = builder.build();
    if let Some(addr) = cfg.managed.proxy_listen {
        if cfg.managed.proxy_addr.is_none() {
            tracing::warn!(
                "managed.proxy_listen is set without managed.proxy_addr: every tunnel answers 503"
            );
        }
        let door = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the proxy door {addr}"))?;
        tracing::info!(address = %addr, "managed proxy door listening");
        // It stops with the process; tunnels are bounded in time (app::proxy_tunnel).
        tokio::spawn(genesis_control::proxy_door::serve(
            control_plane.state().clone(),
            door,
            std::future::pending(),
        ));
    }
    match control_plane.run(listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("control plane stopped");
            Ok(())
        }
        Err(why) => Err(CliError::Runtime(anyhow::anyhow!(why))),
    }
}

/// A 32-byte key written in the config as base64, or the usage error that names `setting`.
pub(crate) fn key_32(b64: &str, setting: &str) -> Result<[u8; 32], CliError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| CliError::Usage(format!("{setting} must be 32 bytes in base64")))
}

/// The key droplets' inbound-signing secrets derive from (spec 65.3): `server.inbound_key`,
/// or none (the control plane makes a throwaway one, and says so).
fn inbound_key(cfg: &Config) -> Result<Option<[u8; 32]>, CliError> {
    match cfg.server.inbound_key.as_deref() {
        Some(b64) => key_32(b64, "server.inbound_key").map(Some),
        None => {
            tracing::warn!(
                "server.inbound_key is not set: using a throwaway inbound key (droplets that hand-shake now cannot call the control plane after a restart)"
            );
            Ok(None)
        }
    }
}

/// The audit chain's key (`server.audit_key`). Without one, `serve` warns that rows stay
/// unsealed, and a command that needs it (`required`) is refused.
pub(crate) fn audit_key(
    cfg: &Config,
    required: bool,
) -> Result<Option<genesis_store::AuditChainKey>, CliError> {
    match cfg.server.audit_key.as_deref() {
        Some(b64) => Ok(Some(genesis_store::AuditChainKey::new(key_32(
            b64,
            "server.audit_key",
        )?))),
        None if required => Err(CliError::Usage(
            "server.audit_key is not set: the audit chain is computed with it (32 bytes, base64)"
                .into(),
        )),
        None => {
            tracing::warn!(
                "server.audit_key is not set: audit rows are written but not sealed into the hash chain"
            );
            Ok(None)
        }
    }
}

/// The key sidecar commands are signed with: `server.command_key`, or a throwaway one.
fn command_signer(cfg: &Config) -> Result<genesis_protocol::CommandSigner, CliError> {
    match cfg.server.command_key.as_deref() {
        Some(b64) => genesis_protocol::CommandSigner::from_seed(&key_32(b64, "server.command_key")?),
        None => {
            tracing::warn!(
                "server.command_key is not set: using a throwaway command key (sidecars that hand-shake now cannot be commanded after a restart)"
            );
            genesis_protocol::CommandSigner::generate()
        }
    }
    .map_err(|e| CliError::Runtime(e.into()))
}

type Ig = genesis_ignition::Igniter<genesis_cloud::DigitalOcean>;

/// The ignition saga's dependencies, when the config has a cloud token and Redis.
async fn build_igniter(
    cfg: &Config,
    stores: &genesis_store::RegionalStore,
    ring: Arc<genesis_protocol::CommandKeyRing>,
    journal: Arc<genesis_control::command_journal::JournalSink>,
    vault: Option<Arc<genesis_store::MasterKeys>>,
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
    // Every replica asks one budget in Redis before each request (DECISIONS 107).
    let budget_conn = genesis_queue::RedisConn::connect(redis_url)
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("redis: {e}")))?;
    let budget = genesis_control::cloud_budget::RedisCloudBudget::for_token(budget_conn, token, &o);
    let cloud = genesis_cloud::DigitalOcean::new(o)
        .map_err(|e| CliError::Usage(format!("cloud: {e}")))?
        .with_shared_budget(std::sync::Arc::new(budget));
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
        ring.active(),
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
    .with_keys(ring)
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
        droplet_poll: genesis_ignition::DropletPoll {
            first_look: std::time::Duration::from_millis(cfg.ignition.droplet_first_look_ms),
            every: std::time::Duration::from_millis(cfg.ignition.droplet_poll_ms),
        },
    };
    Ok(Some(Arc::new(genesis_ignition::Igniter::new(
        stores.clone(),
        Arc::new(cloud),
        sidecar,
        vault,
        Arc::new(templates),
        settings,
        bus,
    ))))
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
