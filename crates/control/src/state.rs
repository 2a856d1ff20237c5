//! Shared state of the HTTP handlers.

use std::sync::Arc;

use genesis_core::TenantRouter;
use genesis_store::RegionalStore;
use metrics_exporter_prometheus::PrometheusHandle;

/// Everything a handler may reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Per-region databases.
    pub stores: RegionalStore,
    /// Redis, a node or a cluster, connected on first use (readiness; the queues hold
    /// their own connections).
    pub redis: Option<Arc<genesis_queue::redis_conn::LazyRedis>>,
    /// Verifies the calls droplets make with their workspace's ingest token (spec 65.3).
    pub inbound: Arc<crate::inbound::InboundGuard>,
    /// The Ohio router.
    pub router: Arc<TenantRouter>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// SHA-256 of the API bearer token; `None` refuses every API call.
    pub api_token_sha256: Option<[u8; 32]>,
    /// The keys that sign sidecar command JWTs (the active one, and a rotation's next one);
    /// the active key's public half goes out in every handshake, the whole trust set in
    /// heartbeat answers. `None` refuses handshakes (503): a sidecar must never get a key it
    /// cannot be sent commands with.
    pub command_keys: Option<Arc<genesis_protocol::CommandKeyRing>>,
    /// Buffers heartbeats and writes them in batches (`serve` runs its flusher).
    pub heartbeats: Arc<crate::heartbeats::HeartbeatSink>,
    /// What sidecars are told at their handshake (heartbeat and metrics intervals).
    pub sidecar_config: genesis_protocol::SidecarConfig,
    /// Starts ignitions; `None` when the cloud or the queue is not configured (ignite: 503).
    pub igniter: Option<Arc<genesis_ignition::Igniter<genesis_cloud::DigitalOcean>>>,
    /// God Mode's sign-in settings.
    pub god: crate::god::GodSettings,
    /// The gate in front of sidecar handshakes: per-source quotas, audit budget, trusted
    /// proxies.
    pub handshakes: Arc<crate::attest::HandshakeGate>,
    /// The gate in front of God Mode sign-ins: per-source quotas, bounded password checks,
    /// audit budget.
    pub sign_ins: Arc<crate::sign_in_guard::SignInGuard>,
    /// The vault's master keys: open operators' second-factor secrets (and the igniter's
    /// credentials). `None` refuses every operator with a second factor.
    pub vault: Option<Arc<genesis_store::MasterKeys>>,
    /// The wake-up bells of the reconcilers this process drives.
    pub wakers: crate::workers::driver::Wakers,
    /// What fetching a tenant's web pages may cost, and whether internal addresses may be
    /// fetched (tests only).
    pub outbound: crate::outbound::FetchLimits,
    /// Where the wizard's third parties are (Google, the AI vendors).
    pub providers: crate::providers::Providers,
    /// DKIM keys made ahead for the wizard's DNS stage.
    pub dkim_keys: Arc<crate::app::dns::DkimKeys>,
    /// The Genesis Wallet: the cache, the ledgers and the kill-switch. `None` when Redis is
    /// not configured: managed calls answer 503.
    pub wallets: Option<Arc<crate::app::wallet::Wallets>>,
    /// Turns for CSV imports of leads ([`crate::app::lead_import::MAX_AT_ONCE`]).
    pub imports: Arc<tokio::sync::Semaphore>,
    /// How tenants' webhooks are sent, and whether their endpoints may be on private
    /// addresses (tests and demos only).
    pub webhooks: crate::app::outbound_webhooks::WebhookSettings,
    /// Where exports are written: a deletion's final export under `final/`, exports asked
    /// for under `requests/`. Every replica must see the same directory.
    pub exports_dir: std::path::PathBuf,
}
