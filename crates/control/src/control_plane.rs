//! The control plane, assembled in one place (issue 19; HOUSE_STYLE: Nexus's server
//! context): `genesis serve`, every test helper and every benchmark build it with the same
//! [`ControlPlaneBuilder`], so there is one wiring to get right.
//!
//! [`ControlPlane::run`] keeps `serve`'s promise: the HTTP server, the command journal, the
//! fleet worker, the wake-up listener and every reconciler run under one
//! [`Supervisor`]; whichever stops first is named with its reason, the rest are stopped and
//! awaited, and the run fails when one did.
//!
//! This module is the composition root: it alone knows every part (HTTP, God Mode, the
//! application layer, the workers), so the parts need not know each other.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::DigitalOcean;
use genesis_core::{LegacyTenant, Region, TenantRouter};
use genesis_ignition::{Igniter, OAuthRefresher};
use genesis_protocol::{CommandKeyRing, CommandSigner, SidecarConfig};
use genesis_store::RegionalStore;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::AppState;
use crate::command_journal::JournalSink;
use crate::credentials::token_digest;
use crate::god::GodSettings;
use crate::heartbeats::{HeartbeatSink, TokenPolicy};
use crate::sign_in_guard::{SignInGuard, SignInLimits};
use crate::supervise::Supervisor;
use crate::workers::driver::{Wakers, drive};
use crate::workers::hibernation::{HibernationSettings, Hibernator};
use crate::workers::jobs::FleetJobs;
use crate::workers::reaper::OrphanReaper;
use crate::workers::reconciler::Reconciler;
use crate::workers::rollouts::RolloutConductor;
use crate::workers::standby::{StandbyPool, StandbySettings};
use crate::workers::watchdog::Watchdog;
use crate::workers::zombies::{ZombieDetector, ZombieSettings};

/// The igniter of a real control plane (DigitalOcean's API, or a simulator that speaks it).
pub type FleetIgniter = Igniter<DigitalOcean>;

/// What the fleet side runs, besides the igniter.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Concurrent jobs of the fleet worker; 0 runs no worker (a test that runs its own).
    pub workers: u32,
    /// Whether this process runs the reconcilers (each only while it leads it).
    pub reconcilers: bool,
    /// The sidecars' heartbeat interval (the zombie detector's and the watchdog's pace).
    pub heartbeat_interval: Duration,
    /// Warm standbys wanted per region (spec 55.4).
    pub standby_sizes: BTreeMap<Region, usize>,
    /// Refreshes OAuth credentials for heals; `None` leaves expired credentials to people.
    pub oauth: Option<OAuthRefresher>,
    /// The hibernation flow's timings.
    pub hibernation: HibernationSettings,
    /// How often the orphan reaper runs.
    pub reap_every: Duration,
    /// When the command-signing key rotates.
    pub command_keys: crate::app::command_keys::CommandKeyPolicy,
    /// The snapshot schedule's pace and call budget (spec 66.2).
    pub snapshots: crate::workers::snapshots::SnapshotSettings,
    /// How region outages are judged, and whether a failed region's failover is declared
    /// without an operator (spec 66.1).
    pub region_watch: crate::workers::region_watch::RegionWatchSettings,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            workers: 8,
            reconcilers: true,
            heartbeat_interval: Duration::from_secs(60),
            standby_sizes: BTreeMap::new(),
            oauth: None,
            hibernation: HibernationSettings::default(),
            reap_every: Duration::from_secs(300),
            command_keys: Default::default(),
            snapshots: Default::default(),
            region_watch: Default::default(),
        }
    }
}

/// How often every replica reloads the stored command keys: a switch made by the leader
/// reaches the others' handshakes, heartbeat answers and commands within this.
const RING_REFRESH: Duration = Duration::from_secs(10);

/// Where the memory of inbound call ids lives in Redis.
const INBOUND_PREFIX: &str = "genesis:";

/// Builds a [`ControlPlane`]; every setting has a default a development machine can run.
pub struct ControlPlaneBuilder {
    stores: RegionalStore,
    redis: Option<genesis_queue::RedisTarget>,
    legacy: Option<LegacyTenant>,
    metrics: Option<PrometheusHandle>,
    api_token: Option<String>,
    command_keys: Option<Arc<CommandKeyRing>>,
    inbound_key: Option<[u8; 32]>,
    sidecar_config: SidecarConfig,
    god: GodSettings,
    sign_in_limits: SignInLimits,
    trusted_proxies: Vec<IpAddr>,
    token_policy: Option<TokenPolicy>,
    token_ttl: Duration,
    vault: Option<Arc<genesis_store::MasterKeys>>,
    outbound: crate::outbound::FetchLimits,
    providers: crate::providers::Providers,
    wallets: Option<Arc<crate::app::wallet::Wallets>>,
    outbox: Option<Arc<crate::app::notifications::Outbox>>,
    audit_key: Option<genesis_store::AuditChainKey>,
    exports: std::path::PathBuf,
    webhooks: Option<crate::app::outbound_webhooks::WebhookSettings>,
    fleet: Option<(Arc<FleetIgniter>, FleetSettings)>,
    stop: (watch::Sender<bool>, watch::Receiver<bool>),
    tasks: Supervisor,
}

impl ControlPlaneBuilder {
    /// Redis (a node or a cluster), for readiness; the queues hold their own connections.
    pub fn redis(mut self, target: Option<genesis_queue::RedisTarget>) -> Self {
        self.redis = target;
        self
    }

    /// The Ohio router's legacy tenant.
    pub fn legacy_tenant(mut self, legacy: Option<LegacyTenant>) -> Self {
        self.legacy = legacy;
        self
    }

    /// What `/metrics` renders.
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The API's bearer token; without one, `/api/v1` refuses every call.
    pub fn api_token(mut self, token: Option<&str>) -> Self {
        self.api_token = token.map(str::to_owned);
        self
    }

    /// The key sidecar commands are signed with; without one, handshakes are refused.
    pub fn command_signer(mut self, signer: Arc<CommandSigner>) -> Self {
        self.command_keys = Some(Arc::new(CommandKeyRing::new(signer)));
        self
    }

    /// The ring sidecar commands are signed from: the same one the fleet's
    /// `SidecarClient` signs with, so a rotation's switch reaches both at once.
    pub fn command_keys(mut self, ring: Arc<CommandKeyRing>) -> Self {
        self.command_keys = Some(ring);
        self
    }

    /// The key each droplet's inbound-signing secret derives from (spec 65.3); without one,
    /// a key is made for this process, and sidecars that hand-shook with another process
    /// cannot call in until they hand-shake again.
    pub fn inbound_key(mut self, key: [u8; 32]) -> Self {
        self.inbound_key = Some(key);
        self
    }

    /// [`Self::inbound_key`] when there is one.
    pub fn inbound_key_opt(mut self, key: Option<[u8; 32]>) -> Self {
        self.inbound_key = key;
        self
    }

    /// What sidecars are told at their handshake.
    pub fn sidecar_config(mut self, config: SidecarConfig) -> Self {
        self.sidecar_config = config;
        self
    }

    /// God Mode's sign-in settings.
    pub fn god(mut self, god: GodSettings) -> Self {
        self.god = god;
        self
    }

    /// The limits on God Mode sign-ins.
    pub fn sign_in_limits(mut self, limits: SignInLimits) -> Self {
        self.sign_in_limits = limits;
        self
    }

    /// Proxies whose `X-Forwarded-For` is believed (the load balancer).
    pub fn trusted_proxies(mut self, proxies: Vec<IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// What fetching a tenant's web pages may cost (the brand stage's scrape); tests allow
    /// internal addresses here to serve sites on loopback.
    pub fn outbound(mut self, limits: crate::outbound::FetchLimits) -> Self {
        self.outbound = limits;
        self
    }

    /// Where the wizard's third parties are (Google, the AI vendors): the real ones by
    /// default, the simulator's in tests and the demo.
    pub fn providers(mut self, providers: crate::providers::Providers) -> Self {
        self.providers = providers;
        self
    }

    /// The vault's master keys (operators' second factors, tenants' credentials).
    pub fn vault(mut self, keys: Option<Arc<genesis_store::MasterKeys>>) -> Self {
        self.vault = keys;
        self
    }

    /// How long a cached sidecar token is believed before the database is asked again.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// When sidecar tokens are renewed on heartbeat.
    pub fn token_policy(mut self, policy: TokenPolicy) -> Self {
        self.token_policy = Some(policy);
        self
    }

    /// Starts the command journal (every command sent to a sidecar, for God Mode's droplet
    /// page), flushed every `every` into each workspace's regional database; its flusher
    /// runs with the control plane. The sink goes to the sidecar client the igniter is
    /// built with.
    pub fn command_journal(&mut self, every: Duration) -> Arc<JournalSink> {
        let (sink, flusher) = JournalSink::start(self.stores.clone(), every, self.stop.1.clone());
        self.tasks.spawn("command journal", async move {
            flusher.await.map_err(|e| e.to_string())
        });
        sink
    }

    /// The Genesis Wallet (spec 58): managed calls are refused (503) without it.
    pub fn wallets(mut self, wallets: Option<Arc<crate::app::wallet::Wallets>>) -> Self {
        self.wallets = wallets;
        self
    }

    /// E-mail: the outbox is sent through it. Without one, notifications wait in the
    /// outbox (the dashboard still shows them).
    pub fn outbox(mut self, outbox: Option<Arc<crate::app::notifications::Outbox>>) -> Self {
        self.outbox = outbox;
        self
    }

    /// The key the audit log's hash chain is computed with (`server.audit_key`); without
    /// one, audit rows are written but not sealed.
    pub fn audit_key(mut self, key: Option<genesis_store::AuditChainKey>) -> Self {
        self.audit_key = key;
        self
    }

    /// Where exports are written (a deletion's final export under `final/`); default
    /// `data/exports`.
    pub fn exports_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.exports = dir;
        self
    }

    /// How outbound webhooks are delivered (default: spec 65.4's schedule, public
    /// endpoints only unless [`Self::outbound`] allows private ones). They are sent only
    /// when the vault has a master key (endpoints' secrets are sealed with it).
    pub fn webhooks(mut self, settings: crate::app::outbound_webhooks::WebhookSettings) -> Self {
        self.webhooks = Some(settings);
        self
    }

    /// The fleet side: ignition, its worker and the reconcilers.
    pub fn fleet(mut self, igniter: Arc<FleetIgniter>, settings: FleetSettings) -> Self {
        self.fleet = Some((igniter, settings));
        self
    }

    /// The control plane.
    pub fn build(self) -> ControlPlane {
        let mut heartbeats = HeartbeatSink::new(self.stores.clone(), self.token_ttl);
        if let Some(policy) = self.token_policy {
            heartbeats = heartbeats.with_token_policy(policy);
        }
        let wakers = Wakers::default();
        let webhooks =
            self.webhooks
                .unwrap_or_else(|| crate::app::outbound_webhooks::WebhookSettings {
                    allow_private: self.outbound.allow_private,
                    ..Default::default()
                });
        let redis = self
            .redis
            .map(|t| Arc::new(genesis_queue::redis_conn::LazyRedis::new(t)));
        let inbound_key = self.inbound_key.unwrap_or_else(|| {
            let mut k = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut k);
            k
        });
        let inbound = crate::inbound::InboundGuard::new(
            inbound_key,
            redis.clone().map(|r| (r, INBOUND_PREFIX.to_owned())),
        );
        let state = AppState {
            stores: self.stores,
            redis,
            inbound: Arc::new(inbound),
            router: Arc::new(TenantRouter::new(self.legacy)),
            metrics: self.metrics,
            api_token_sha256: self.api_token.as_deref().map(token_digest),
            command_keys: self.command_keys,
            heartbeats: Arc::new(heartbeats),
            sidecar_config: self.sidecar_config,
            igniter: self.fleet.as_ref().map(|(ig, _)| ig.clone()),
            god: self.god,
            sign_ins: Arc::new(SignInGuard::new(
                self.sign_in_limits,
                self.trusted_proxies.clone(),
            )),
            handshakes: Arc::new(crate::attest::HandshakeGate::new(self.trusted_proxies)),
            wakers,
            vault: self.vault,
            outbound: self.outbound,
            providers: self.providers,
            wallets: self.wallets,
            dkim_keys: Default::default(),
            imports: Arc::new(tokio::sync::Semaphore::new(
                crate::app::lead_import::MAX_AT_ONCE,
            )),
            webhooks,
            exports_dir: self.exports,
        };
        ControlPlane {
            state,
            outbox: self.outbox,
            audit_key: self.audit_key,
            fleet: self.fleet.map(|(_, s)| s),
            stop: self.stop,
            tasks: self.tasks,
        }
    }
}

/// A control plane, ready to run.
pub struct ControlPlane {
    state: AppState,
    outbox: Option<Arc<crate::app::notifications::Outbox>>,
    audit_key: Option<genesis_store::AuditChainKey>,
    fleet: Option<FleetSettings>,
    stop: (watch::Sender<bool>, watch::Receiver<bool>),
    tasks: Supervisor,
}

impl ControlPlane {
    /// A builder over these regional databases.
    pub fn builder(stores: RegionalStore) -> ControlPlaneBuilder {
        ControlPlaneBuilder {
            stores,
            redis: None,
            legacy: None,
            metrics: None,
            api_token: None,
            command_keys: None,
            inbound_key: None,
            sidecar_config: SidecarConfig::default(),
            god: GodSettings::default(),
            sign_in_limits: SignInLimits::default(),
            trusted_proxies: Vec::new(),
            token_policy: None,
            token_ttl: Duration::from_secs(60),
            vault: None,
            outbound: crate::outbound::FetchLimits::default(),
            providers: crate::providers::Providers::default(),
            wallets: None,
            outbox: None,
            audit_key: None,
            exports: std::path::PathBuf::from("data/exports"),
            webhooks: None,
            fleet: None,
            stop: watch::channel(false),
            tasks: Supervisor::default(),
        }
    }

    /// What the handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves on `listener` and runs everything else until `stop_requested` resolves or a
    /// task stops; then stops the rest and waits for them. `Err` names the first task that
    /// failed, and why. Unfinished ignitions are resumed first.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        stop_requested: impl Future<Output = ()>,
    ) -> Result<(), String> {
        let ControlPlane {
            state,
            outbox,
            audit_key,
            fleet,
            stop: (stop_tx, stop_rx),
            mut tasks,
        } = self;
        // The command keys as stored: loaded before anything is served (a restarted process
        // signs with the key the stored ring says), then again on every replica.
        if let (Some(vault), Some(ring)) = (state.vault.clone(), state.command_keys.clone()) {
            let keys = crate::app::command_keys::CommandKeys::new(
                state.stores.clone(),
                vault,
                ring,
                Default::default(),
                crate::clock::Clock::System,
            );
            if let Err(e) = keys.load().await {
                tracing::error!(error = %e, "the stored command keys cannot be loaded yet; signing with the configured key");
            }
            let mut rx = stop_rx.clone();
            tasks.spawn("command-key ring", async move {
                loop {
                    tokio::select! {
                        _ = rx.wait_for(|s| *s) => return Ok(()),
                        _ = tokio::time::sleep(RING_REFRESH) => {}
                    }
                    if let Err(e) = keys.load().await {
                        tracing::warn!(error = %e, "the stored command keys cannot be reloaded");
                    }
                }
            });
        }
        // Only a process that runs the fleet's reconcilers destroys tenants' resources.
        let fleet_reconcilers = fleet.as_ref().is_some_and(|s| s.reconcilers);
        if let (Some(ig), Some(settings)) = (state.igniter.clone(), fleet) {
            let recovered = ig
                .recover()
                .await
                .map_err(|e| format!("ignition recovery: {e}"))?;
            if recovered > 0 {
                tracing::info!(sagas = recovered, "resuming unfinished ignitions");
            }
            if settings.workers > 0 {
                let jobs = FleetJobs::for_igniter(
                    ig.clone(),
                    settings.oauth.clone(),
                    settings.hibernation.clone(),
                );
                let worker = genesis_queue::Worker::new(ig.bus().clone(), jobs, settings.workers);
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
            if settings.reconcilers {
                spawn_reconcilers(&mut tasks, &state, &ig, &settings, &stop_rx);
            }
        }
        // Every minute: a deletion's reminders go out on their day (spec 64.1), and a
        // deletion whose grace period is over runs its saga (64.2).
        let purger = state
            .igniter
            .as_ref()
            .filter(|_| fleet_reconcilers)
            .map(|ig| {
                Arc::new(crate::app::deletion_saga::Purger::new(
                    state.stores.clone(),
                    ig.cloud().clone(),
                    state.wallets.clone(),
                    state.exports_dir.clone(),
                    audit_key.clone(),
                ))
            });
        supervise(
            &mut tasks,
            &state,
            crate::workers::deletions::Deletions::new(
                state.stores.clone(),
                state.exports_dir.clone(),
                purger,
            ),
            crate::workers::deletions::EVERY,
            &stop_rx,
        );
        // Every 15 s: support grants whose time is up are recorded as ended (spec 63.3).
        supervise(
            &mut tasks,
            &state,
            crate::workers::support_grants::SupportGrantSweep::new(state.stores.clone()),
            crate::workers::support_grants::EVERY,
            &stop_rx,
        );
        // Hourly: audit partitions ahead, old months archived, expired ones dropped (63.2).
        supervise(
            &mut tasks,
            &state,
            crate::workers::audit_retention::AuditRetention::new(
                state.stores.clone(),
                state.webhooks.clock.clone(),
            ),
            crate::workers::audit_retention::EVERY,
            &stop_rx,
        );
        // Every 5 s: an audit row joins its region's hash chain within seconds of its commit.
        if let Some(key) = audit_key {
            supervise(
                &mut tasks,
                &state,
                crate::workers::audit_seal::AuditSealer::new(state.stores.clone(), key),
                crate::workers::audit_seal::EVERY,
                &stop_rx,
            );
        }
        if let Some(outbox) = outbox {
            let sender = crate::workers::mail::MailSender::new(state.stores.clone(), outbox);
            supervise(
                &mut tasks,
                &state,
                sender,
                crate::workers::mail::EVERY,
                &stop_rx,
            );
        }
        if let Some(vault) = state.vault.clone() {
            let secrets = crate::workers::webhook_secrets::WebhookSecrets::new(
                state.stores.clone(),
                vault.clone(),
                state.webhooks.clock.clone(),
            );
            supervise(
                &mut tasks,
                &state,
                secrets,
                crate::workers::webhook_secrets::EVERY,
                &stop_rx,
            );
            let sender =
                crate::app::outbound_webhooks::WebhookSender::new(vault, state.webhooks.clone())
                    .map_err(|e| e.to_string())?;
            let deliveries = crate::workers::webhooks::WebhookDeliveries::new(
                state.stores.clone(),
                Arc::new(sender),
            );
            supervise(
                &mut tasks,
                &state,
                deliveries,
                crate::workers::webhooks::EVERY,
                &stop_rx,
            );
        }
        tasks.spawn("http server", {
            let mut rx = stop_rx.clone();
            let state = state.clone();
            async move {
                crate::serve(listener, state, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
                .map_err(|e| e.to_string())
            }
        });
        tasks
            .run(stop_requested, move || {
                let _ = stop_tx.send(true);
            })
            .await
    }
}

/// Every reconciler of the fleet, each under the driver, and the listener that brings
/// wake-ups asked of other replicas.
fn spawn_reconcilers(
    tasks: &mut Supervisor,
    state: &AppState,
    ig: &Arc<FleetIgniter>,
    settings: &FleetSettings,
    stop: &watch::Receiver<bool>,
) {
    let stores = &state.stores;
    let beat = settings.heartbeat_interval;
    let zombies = ZombieDetector::new(
        stores.clone(),
        ig.cloud().clone(),
        ig.bus().clone(),
        ZombieSettings {
            heartbeat_interval: beat,
            ..ZombieSettings::default()
        },
    );
    let watchdog = Watchdog::new(stores.clone(), ig.bus().clone());
    let oauth_ahead = crate::workers::oauth_ahead::OAuthAhead::new(
        stores.clone(),
        ig.bus().clone(),
        state.webhooks.clock.clone(),
    );
    let hibernation = Hibernator::new(
        stores.clone(),
        ig.bus().clone(),
        ig.cloud().clone(),
        settings.hibernation.clone(),
    );
    let rollouts = RolloutConductor::new(stores.clone(), ig.bus().clone());
    let standby = StandbyPool::new(
        stores.clone(),
        ig.bus().clone(),
        ig.clone(),
        StandbySettings {
            sizes: settings.standby_sizes.clone(),
            ..Default::default()
        },
    );
    let reaper = OrphanReaper::new(ig.clone());
    // Every 10 s: a switch follows the last sidecar's confirmation within a pass.
    if let (Some(vault), Some(ring)) = (state.vault.clone(), state.command_keys.clone()) {
        let keys = crate::app::command_keys::CommandKeys::new(
            stores.clone(),
            vault,
            ring,
            settings.command_keys,
            state.webhooks.clock.clone(),
        );
        supervise(
            tasks,
            state,
            crate::workers::command_keys::CommandKeyRotation::new(keys, stores.clone()),
            crate::workers::command_keys::EVERY,
            stop,
        );
    }
    // A few times per heartbeat interval: a zombie is declared within a quarter interval
    // of its third missed window.
    supervise(
        tasks,
        state,
        zombies,
        (beat / 4).max(Duration::from_millis(250)),
        stop,
    );
    // Once per heartbeat interval: each pass sees every droplet's latest inventory.
    supervise(
        tasks,
        state,
        watchdog,
        beat.max(Duration::from_secs(1)),
        stop,
    );
    // Daily (spec 65.2); a wake from the API runs it at once.
    supervise(
        tasks,
        state,
        oauth_ahead,
        crate::workers::oauth_ahead::EVERY,
        stop,
    );
    // Every 30 s: thresholds are days, but a scheduled campaign's wake lead is a minute.
    supervise(tasks, state, hibernation, Duration::from_secs(30), stop);
    // Every second: a batch's end is noticed within a second.
    supervise(tasks, state, rollouts, Duration::from_secs(1), stop);
    // Every second: a waking High-Priority tenant is claimed a standby within a second.
    supervise(tasks, state, standby, Duration::from_secs(1), stop);
    supervise(tasks, state, reaper, settings.reap_every, stop);
    // Every minute, within a call budget: each droplet's daily snapshot, its cross-region
    // copy, and the deletion of what spec 66.5 lets go.
    // Routine work: it yields to everything else when the shared cloud budget runs short.
    let snapshots = crate::workers::snapshots::SnapshotSchedule::new(
        stores.clone(),
        Arc::new(genesis_cloud::Cloud::prioritised(
            ig.cloud().as_ref(),
            genesis_cloud::CallPriority::Routine,
        )),
        state.webhooks.clock.clone(),
        settings.snapshots,
    );
    supervise(tasks, state, snapshots, settings.snapshots.every, stop);
    // Every 2 s: open regional failovers (spec 66.4) start their next restores as soon as
    // slots free up, and verified tenants are told within seconds.
    supervise(
        tasks,
        state,
        crate::workers::failover::FailoverConductor::new(stores.clone(), ig.clone()),
        crate::workers::failover::EVERY,
        stop,
    );
    // Every 30 s: a region's outage (spec 66.1) is opened within a pass of its heartbeats'
    // third missed window, and confirmed after its confirmation time.
    let watch = crate::workers::region_watch::RegionWatchSettings {
        heartbeat_interval: beat,
        ..settings.region_watch
    };
    supervise(
        tasks,
        state,
        crate::workers::region_watch::RegionWatch::new(stores.clone(), ig.cloud().clone(), watch),
        watch.every,
        stop,
    );
    // Every 15 s: a droplet a reboot did not bring back (ORPHAN) is restored from its newest
    // snapshot within a pass (spec 66.1's single droplet, RTO 5 minutes).
    supervise(
        tasks,
        state,
        crate::workers::droplet_restore::DropletRestorer::new(stores.clone(), ig.clone()),
        crate::workers::droplet_restore::EVERY,
        stop,
    );
    // Every 15 s: a key saved while the engine slept reaches it soon after the wake.
    supervise(
        tasks,
        state,
        crate::workers::pending_credentials::PendingCredentials::new(stores.clone(), ig.clone()),
        crate::workers::pending_credentials::EVERY,
        stop,
    );
    // Once a minute: fleet states over time, at the resolution the chart draws.
    let sampler = crate::workers::fleet_sampler::FleetSampler::new(stores.clone());
    supervise(
        tasks,
        state,
        sampler,
        crate::workers::fleet_sampler::EVERY,
        stop,
    );
    // Every 15 s: a host whose CNAME appears is served within a minute of its due look.
    supervise(
        tasks,
        state,
        crate::workers::tracking_domains::TrackingDomains::new(state.clone()),
        crate::workers::tracking_domains::EVERY,
        stop,
    );
    if let Some(wallets) = &state.wallets {
        use crate::workers::wallet::{CHECK_EVERY, SYNC_EVERY, WalletCheck, WalletSyncer};
        let syncer = WalletSyncer::new(wallets.clone(), stores.clone());
        supervise(tasks, state, syncer, SYNC_EVERY, stop);
        let check = WalletCheck::new(wallets.clone(), stores.clone());
        supervise(tasks, state, check, CHECK_EVERY, stop);
    }
    let wakers = state.wakers.clone();
    let coordinator = stores.coordinator().clone();
    let rx = stop.clone();
    tasks.spawn("reconciler wake-ups", async move {
        wakers.listen(coordinator, rx).await;
        Ok(())
    });
}

fn supervise<R: Reconciler>(
    tasks: &mut Supervisor,
    state: &AppState,
    reconciler: R,
    every: Duration,
    stop: &watch::Receiver<bool>,
) {
    let bell = state.wakers.bell(R::NAME);
    let coordinator = state.stores.coordinator().clone();
    let stop = stop.clone();
    tasks.spawn(R::NAME, async move {
        drive(Arc::new(reconciler), every, coordinator, bell, stop).await;
        Ok(())
    });
}
