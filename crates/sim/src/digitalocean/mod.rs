//! The DigitalOcean API v2 simulator (spec 45, DESIGN §6): droplets, droplet and image
//! actions, snapshots, regions and sizes, tag listing with pagination, DigitalOcean's error
//! body, per-token rate limits with `ratelimit-*` headers, per-droplet metadata, cloud-init
//! boots through a [`BootHook`], fault injection (`/sim/v1/faults`) with seeded randomness so
//! a failing run replays, and an optional state file so a demo can restart where it stopped.
//!
//! # Guarantees
//! - Same paths, JSON shapes, status codes and headers as DigitalOcean's OpenAPI description
//!   (`vendor/digitalocean/`); the contract tests validate every request and response.
//! - Without a boot hook, time-driven state (a create finishing, a power action completing)
//!   settles lazily from timestamps on each request: no task per droplet, so 15,000 droplets
//!   cost only their records. With a hook, each transition arms one timer.
//! - Every random decision comes from one seeded generator.
//!
//! # Caveats
//! - One token budget for the whole simulator (DigitalOcean counts per token; the fleet uses
//!   one token per process).
//! - Timers use wall-clock milliseconds, so a state file restored later settles everything
//!   that was due in between at the first request.

mod admin;
mod boot;
mod catalog;
mod drill;
mod droplets;
mod gate;
mod images;
mod metadata;
mod networks;
mod render;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::{
    Router, middleware,
    routing::{get, post},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

pub use boot::{BootContext, BootHook, HaltReason, HookEvent, RecordingHook};
pub use catalog::{IMAGES, MAX_USER_DATA, REGIONS, SIZES};

use state::World;

/// A duration drawn uniformly from `[min, max]` for each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl Span {
    /// No delay (fast tests).
    pub const ZERO: Span = Span {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// Always `d`.
    pub const fn fixed(d: Duration) -> Span {
        Span { min: d, max: d }
    }

    /// Uniform between `a` and `b` (in either order).
    pub fn between(a: Duration, b: Duration) -> Span {
        Span {
            min: a.min(b),
            max: a.max(b),
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let lo = self.min.as_millis() as u64;
        let hi = self.max.as_millis() as u64;
        Duration::from_millis(rng.random_range(lo..=hi))
    }
}

/// How long things take in the simulated cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Create to `active`.
    pub create: Span,
    /// `active` to the boot hook running (cloud-init inside the droplet).
    pub boot: Span,
    /// A power action.
    pub power: Span,
    /// A snapshot.
    pub snapshot: Span,
    /// An image transfer to another region.
    pub transfer: Span,
}

impl Timings {
    /// Everything immediate: unit and contract tests.
    pub const INSTANT: Timings = Timings {
        create: Span::ZERO,
        boot: Span::ZERO,
        power: Span::ZERO,
        snapshot: Span::ZERO,
        transfer: Span::ZERO,
    };

    /// Roughly what DigitalOcean takes, for the demo.
    pub fn realistic() -> Timings {
        let s = Duration::from_secs;
        Timings {
            create: Span::between(s(25), s(55)),
            boot: Span::between(s(15), s(40)),
            power: Span::between(s(5), s(15)),
            snapshot: Span::between(s(60), s(180)),
            transfer: Span::between(s(120), s(600)),
        }
    }

    /// Every span multiplied by `factor` (a demo that runs at 10x speed uses 0.1).
    pub fn scaled(self, factor: f64) -> Timings {
        // Bounded so that no input can make `mul_f64` overflow (it panics).
        let factor = if factor.is_finite() {
            factor.clamp(0.0, 1_000.0)
        } else {
            1.0
        };
        let f = |s: Span| Span {
            min: s.min.mul_f64(factor),
            max: s.max.mul_f64(factor),
        };
        Timings {
            create: f(self.create),
            boot: f(self.boot),
            power: f(self.power),
            snapshot: f(self.snapshot),
            transfer: f(self.transfer),
        }
    }
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random decision, so a run can be replayed.
    pub seed: u64,
    /// Requests allowed per `rate_window` per token (DigitalOcean: 250 per minute).
    pub per_window: u32,
    /// Requests allowed per 60 windows (DigitalOcean: 5,000 per hour).
    pub per_long_window: u32,
    /// The rate-limit window (60 s for realism; compress it in tests).
    pub rate_window: Duration,
    /// Lifecycle latencies.
    pub timings: Timings,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            per_window: 250,
            per_long_window: 5_000,
            rate_window: Duration::from_secs(60),
            timings: Timings::INSTANT,
        }
    }
}

/// Fault injection, settable at run time through `PUT /sim/v1/faults`. Probabilities are
/// clamped to `[0, 1]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability of a 500 before any `/v2` request is processed.
    pub error_rate: f64,
    /// The same, per endpoint, keyed `"<METHOD> <route>"` (e.g. `"POST /v2/droplets"`); it
    /// replaces `error_rate` for that endpoint.
    pub endpoint_error_rates: BTreeMap<String, f64>,
    /// Probability of a 500 *after* a write was processed (the response is "lost").
    pub lost_response_rate: f64,
    /// The next N requests get 429.
    pub force_429: u32,
    /// Probability that a new action ends `errored`.
    pub action_error_rate: f64,
    /// Probability that a new action takes `slow_action_ms` longer.
    pub slow_action_rate: f64,
    /// Extra time of a slow action, in milliseconds.
    pub slow_action_ms: u64,
    /// Probability that a new droplet reaches `active` but never boots.
    pub never_boot_rate: f64,
    /// Probability that a new droplet boots, then goes dark `dark_after_ms` later.
    pub dark_rate: f64,
    /// Delay before a doomed droplet goes dark, in milliseconds.
    pub dark_after_ms: u64,
}

/// Counters for tests and dashboards (`GET /sim/v1/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Requests accepted under the rate limit.
    pub accepted: u64,
    /// Requests answered 429 because of the limit (not counting forced ones).
    pub rate_limited: u64,
    /// Most requests accepted within any one window.
    pub max_in_window: u64,
    /// Injected 5xx answers.
    pub injected_errors: u64,
    /// Droplets alive now.
    pub droplets: u64,
    /// Boot hook calls.
    pub boots: u64,
    /// Droplets that reached `active` and never booted (fault).
    pub never_booted: u64,
    /// Boots refused because `user_data` is not a cloud-config document.
    pub cloud_init_failed: u64,
    /// Droplets that went dark (fault or admin request).
    pub went_dark: u64,
}

struct Inner {
    world: World,
    /// Datacenters down for a drill, with the droplets their outage darkened.
    failed_regions: std::collections::BTreeMap<String, Vec<i64>>,
    rng: StdRng,
    faults: Faults,
    window: VecDeque<Instant>,
    long_window: VecDeque<Instant>,
    stats: Stats,
}

impl Inner {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Records an action whose duration is drawn from `span`, made slow or doomed to
    /// `errored` by the faults in force.
    fn start_action(
        &mut self,
        kind: &str,
        resource_id: i64,
        resource_type: &str,
        region: &str,
        span: Span,
        effect: state::Effect,
    ) -> state::ActionRecord {
        let mut delay = span.draw(&mut self.rng);
        let (slow, errored) = (self.faults.slow_action_rate, self.faults.action_error_rate);
        if self.chance(slow) {
            delay += Duration::from_millis(self.faults.slow_action_ms);
        }
        let outcome = if self.chance(errored) {
            state::ActionStatus::Errored
        } else {
            state::ActionStatus::Completed
        };
        let id = self.world.take_id();
        self.world.add_action(
            state::ActionRecord {
                id,
                kind: kind.into(),
                status: state::ActionStatus::InProgress,
                resource_id,
                resource_type: resource_type.into(),
                started_at: state::iso(state::now_ms()),
                completed_at: None,
                region_slug: region.into(),
                done_at_ms: 0,
                outcome,
                effect,
            },
            delay,
        )
    }
}

/// A running simulator's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    cfg: Arc<SimConfig>,
    inner: Arc<Mutex<Inner>>,
    hook: Option<Arc<dyn BootHook>>,
    metadata_url: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("cfg", &self.cfg)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator with no droplets.
    pub fn new(cfg: SimConfig) -> Self {
        Self::from_world(cfg, World::new())
    }

    fn from_world(cfg: SimConfig, mut world: World) -> Self {
        world.reindex();
        let rng = StdRng::seed_from_u64(cfg.seed);
        let stats = Stats {
            droplets: world.droplets.len() as u64,
            ..Stats::default()
        };
        Self {
            cfg: Arc::new(cfg),
            inner: Arc::new(Mutex::new(Inner {
                world,
                failed_regions: Default::default(),
                rng,
                faults: Faults::default(),
                window: VecDeque::new(),
                long_window: VecDeque::new(),
                stats,
            })),
            hook: None,
            metadata_url: Arc::new(OnceLock::new()),
        }
    }

    /// Runs `hook` whenever a droplet boots or halts (the sidecar issue plugs the real sidecar
    /// in here). Set it before serving.
    pub fn with_boot_hook(mut self, hook: Arc<dyn BootHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a simulator bug; keep serving regardless.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// The HTTP surface: `/v2/...` as DigitalOcean, `/sim/v1/...` to steer the simulation.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v2/droplets", post(droplets::create).get(droplets::list))
            .route(
                "/v2/droplets/{id}",
                get(droplets::get_one).delete(droplets::delete),
            )
            .route("/v2/droplets/{id}/actions", post(droplets::action))
            .route(
                "/v2/droplets/{id}/snapshots",
                get(images::droplet_snapshots),
            )
            .route("/v2/actions/{id}", get(droplets::action_get))
            .route("/v2/snapshots", get(images::snapshots))
            .route(
                "/v2/snapshots/{id}",
                get(images::snapshot_get).delete(images::snapshot_delete),
            )
            .route("/v2/images/{id}", get(images::image_get))
            .route("/v2/images/{id}/actions", post(images::image_action))
            .route(
                "/v2/images/{id}/actions/{action_id}",
                get(images::image_action_get),
            )
            .route("/v2/regions", get(images::regions))
            .route("/v2/sizes", get(images::sizes))
            .route("/v2/vpcs", get(networks::vpcs))
            .route(
                "/v2/firewalls",
                get(networks::firewalls).post(networks::create_firewall),
            )
            .route_layer(middleware::from_fn_with_state(self.clone(), gate::gate));
        Router::new()
            .merge(api)
            .merge(admin::router())
            .merge(metadata::router())
            .fallback(gate::unknown_path)
            .with_state(self.clone())
    }

    fn set_metadata_url(&self, url: String) {
        // The first server to start names the service; later ones serve the same data.
        let _ = self.metadata_url.set(url);
    }

    /// Writes every droplet, snapshot and action to `path` (atomically: a temporary file,
    /// then a rename), so a restarted simulator can [`Simulator::restore`] them.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = {
            let s = self.lock();
            serde_json::to_vec(&s.world).map_err(std::io::Error::other)?
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    /// A simulator holding the state saved at `path`.
    pub fn restore(cfg: SimConfig, path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let world: World = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a simulator state file: {e}", path.display()),
            )
        })?;
        Ok(Self::from_world(cfg, world))
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, sim, |r| r, shutdown).await
}

/// [`serve`], with the router passed through `wrap` first (e.g. contract checking).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    wrap: impl FnOnce(Router) -> Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    sim.set_metadata_url(format!("http://{}", listener.local_addr()?));
    axum::serve(
        listener,
        wrap(sim.router()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

pub use metadata::serve_metadata;
