//! Booting virtual droplets: the [`BootHook`] contract, the timers that call it, and
//! [`RecordingHook`], the hook tests use.
//!
//! A droplet boots `timings.boot` after it reaches `active` (create, power on, reboot, power
//! cycle), from its parsed cloud-init document, unless its fate says it never boots or its
//! `user_data` is not cloud-config. It halts when powered off, restarted, deleted, or when it
//! "goes dark" (the API still says `active`: spec 54's zombie).

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud_init::CloudConfig;

use super::Simulator;
use super::state::{ActionRecord, Fate, PowerChange, Status, now_ms};

/// What a booting droplet knows about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct BootContext {
    /// DigitalOcean id.
    pub droplet_id: i64,
    /// Hostname.
    pub name: String,
    /// Datacenter slug.
    pub region: String,
    /// Its public address on loopback (127.64.0.0/10): bind outgoing sockets to it so the
    /// metadata service and peers see the droplet, not the host.
    pub public_ipv4: Ipv4Addr,
    /// Tags.
    pub tags: Vec<String>,
    /// The parsed cloud-init document.
    pub cloud_config: CloudConfig,
    /// Whether Docker is there once cloud-init has run: the image has it (a Docker
    /// marketplace image, or a snapshot of a droplet that had it), or the document installs it.
    pub has_docker: bool,
    /// Base URL of the metadata service (`.../metadata/v1/...`), when one is served.
    pub metadata_url: Option<String>,
    /// Changes on every power transition; a hook can use it to ignore stale work.
    pub generation: u64,
}

/// Why a droplet stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltReason {
    /// `power_off` or `shutdown`.
    PowerOff,
    /// `reboot` or `power_cycle`; a boot follows.
    Restart,
    /// The droplet was deleted.
    Deleted,
    /// It stopped answering while the API still says `active`.
    Dark,
}

/// Runs what lives inside a virtual droplet. The simulator calls it from its timers, outside
/// its lock; implementations must not block (spawn the work) and must tolerate a `halt` for a
/// droplet they never booted.
pub trait BootHook: Send + Sync + 'static {
    /// The droplet finished booting: start what its cloud-init starts.
    fn boot(&self, ctx: BootContext);
    /// The droplet stopped: stop everything it runs.
    fn halt(&self, droplet_id: i64, reason: HaltReason);
}

/// One call a [`RecordingHook`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum HookEvent {
    /// `boot`.
    Booted(BootContext),
    /// `halt`.
    Halted {
        /// Droplet.
        droplet_id: i64,
        /// Why.
        reason: HaltReason,
    },
}

/// A hook that only records what it is told, for tests of the boot contract.
#[derive(Debug, Default)]
pub struct RecordingHook {
    events: Mutex<Vec<HookEvent>>,
    changed: tokio::sync::Notify,
}

impl RecordingHook {
    /// An empty recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Everything recorded so far, in order.
    pub fn events(&self) -> Vec<HookEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Waits until `pred` holds for the recorded events, or `timeout` passes (then false).
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&[HookEvent]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if pred(&self.events()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.events());
            }
        }
    }

    fn push(&self, e: HookEvent) {
        if let Ok(mut v) = self.events.lock() {
            v.push(e);
        }
        self.changed.notify_waiters();
    }
}

impl BootHook for RecordingHook {
    fn boot(&self, ctx: BootContext) {
        self.push(HookEvent::Booted(ctx));
    }

    fn halt(&self, droplet_id: i64, reason: HaltReason) {
        self.push(HookEvent::Halted { droplet_id, reason });
    }
}

impl Simulator {
    /// With a hook, settles `action` the moment it is due (without one, the next request
    /// settles it: nobody can tell the difference).
    pub(super) fn arm(&self, action: &ActionRecord) {
        if self.hook.is_none() {
            return;
        }
        let sim = self.clone();
        let wait = Duration::from_millis(action.done_at_ms.saturating_sub(now_ms()));
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            sim.settle_and_notify();
        });
    }

    /// Applies due actions and tells the hook about droplets that went up or down.
    pub(super) fn settle_and_notify(&self) {
        let changes = self.lock().world.settle();
        let Some(hook) = &self.hook else {
            return;
        };
        for c in changes {
            match c {
                PowerChange::Up {
                    droplet,
                    generation,
                } => self.boot_later(droplet, generation),
                PowerChange::Down { droplet, restart } => hook.halt(
                    droplet,
                    if restart {
                        HaltReason::Restart
                    } else {
                        HaltReason::PowerOff
                    },
                ),
            }
        }
    }

    /// Tells the hook a droplet stopped.
    pub(super) fn halt(&self, droplet: i64, reason: HaltReason) {
        if let Some(hook) = &self.hook {
            hook.halt(droplet, reason);
        }
    }

    fn boot_later(&self, droplet: i64, generation: u64) {
        let delay = {
            let mut s = self.lock();
            let span = self.cfg.timings.boot;
            span.draw(&mut s.rng)
        };
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim.boot_now(droplet, generation);
        });
    }

    fn boot_now(&self, droplet: i64, generation: u64) {
        let Some(hook) = self.hook.clone() else {
            return;
        };
        let (ctx, dark_after) = {
            let mut s = self.lock();
            let Some(d) = s.world.droplets.get(&droplet) else {
                return;
            };
            if d.generation != generation || d.status != Status::Active {
                return;
            }
            let fate = d.fate;
            let parsed = CloudConfig::parse(d.user_data.as_deref().unwrap_or_default());
            let ctx = parsed.as_ref().ok().map(|cfg| BootContext {
                droplet_id: d.id,
                name: d.name.clone(),
                region: d.region.clone(),
                public_ipv4: d.ip,
                tags: d.tags.clone(),
                cloud_config: cfg.clone(),
                has_docker: super::catalog::IMAGES
                    .iter()
                    .find(|i| i.id == d.image_id)
                    .is_none_or(|i| i.slug.contains("docker"))
                    || cfg.installs_docker(),
                metadata_url: self.metadata_url.get().cloned(),
                generation,
            });
            if fate == Fate::NeverBoots {
                s.stats.never_booted += 1;
                return;
            }
            let Some(ctx) = ctx else {
                s.stats.cloud_init_failed += 1;
                if let Err(e) = parsed {
                    tracing::warn!(droplet, error = %e, "cloud-init failed; the droplet stays empty");
                }
                return;
            };
            s.stats.boots += 1;
            let dark_after = match fate {
                Fate::GoesDark(ms) => Some(Duration::from_millis(ms)),
                _ => None,
            };
            (ctx, dark_after)
        };
        hook.boot(ctx);
        if let Some(after) = dark_after {
            let sim = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                sim.go_dark(droplet, Some(generation));
            });
        }
    }

    /// From now on the droplet reaches `active` at the API but nothing boots inside, through
    /// any number of power cycles.
    pub fn never_boot_again(&self, droplet: i64) {
        if let Some(d) = self.lock().world.droplets.get_mut(&droplet) {
            d.fate = Fate::NeverBoots;
        }
    }

    /// Makes a running droplet stop answering while the API still says `active`. Returns
    /// false when it is not running (or `generation` is stale).
    pub fn go_dark(&self, droplet: i64, generation: Option<u64>) -> bool {
        {
            let mut s = self.lock();
            let Some(d) = s.world.droplets.get_mut(&droplet) else {
                return false;
            };
            if d.status != Status::Active || generation.is_some_and(|g| g != d.generation) {
                return false;
            }
            // A doomed droplet goes dark once; a power cycle brings it back for good.
            d.fate = Fate::Healthy;
            s.stats.went_dark += 1;
        }
        self.halt(droplet, HaltReason::Dark);
        true
    }
}
