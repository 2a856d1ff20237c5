//! Virtual droplets that run the real sidecar: [`SidecarHook`] is the DigitalOcean
//! simulator's [`BootHook`] that, when a droplet boots, starts a fake n8n and the real
//! `genesis_sidecar` agent in-process, both bound to the droplet's loopback address and fed
//! from the droplet's own cloud-init document, exactly as on a real droplet (DESIGN §6).
//!
//! A droplet's "disk" (the sidecar's state directory and its n8n's data) survives power
//! cycles and is wiped when the droplet is deleted.

use crate::vhost::VirtualHosts;
use genesis_sidecar::sysstats::{HostSample, HostStats};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use genesis_sidecar::config::{EnvFile, Settings, droplet_id};
use tokio::sync::oneshot;

use crate::digitalocean::{BootContext, BootHook, HaltReason};
use crate::n8n::runtime::InProcessN8n;
use crate::n8n::{FakeN8n, FakeN8nConfig};

/// Where cloud-init writes the sidecar's env file.
pub const ENV_FILE: &str = "/opt/genesis/.env";
/// n8n's port on a droplet.
pub const N8N_PORT: u16 = 5678;
/// The sidecar's command port on a droplet.
pub const SIDECAR_PORT: u16 = 8443;

struct Disk {
    n8n: FakeN8n,
    state_dir: PathBuf,
    /// What the droplet's heartbeats report: virtual droplets share one host, so the host's
    /// own figures would say nothing about any one of them.
    load: Arc<Mutex<HostSample>>,
}

/// A calm droplet: spec 50.1's smallest size, lightly used.
pub const CALM: HostSample = HostSample {
    cpu_percent: 12.0,
    memory_used_mb: 310,
    memory_total_mb: 1024,
    disk_percent: 23.0,
};

/// A droplet's sidecar task: `stop` is taken when it is told to halt; the next boot waits
/// for `task` so the old sidecar has released the droplet's ports.
struct Live {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Boots the real sidecar and a fake n8n inside each virtual droplet.
pub struct SidecarHook {
    me: Weak<SidecarHook>,
    root: PathBuf,
    disks: Mutex<HashMap<i64, Disk>>,
    live: Mutex<HashMap<i64, Live>>,
    ready_timeout: Duration,
    /// Shared listeners for every droplet's sidecar and n8n (fleet-scale runs), instead of
    /// two listening sockets per droplet.
    shared: Option<Arc<VirtualHosts>>,
    /// Chaos for every droplet's n8n, present and future: refuse credential writes.
    refuse_credentials: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SidecarHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarHook")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl SidecarHook {
    /// Droplet disks live under `root` (one directory per droplet); n8n gets 20 s to be
    /// ready after a start, restart or swap.
    pub fn new(root: PathBuf) -> Arc<Self> {
        Self::with_ready_timeout(root, Duration::from_secs(20))
    }

    /// The same, with another readiness deadline (a failed swap waits this long before it
    /// rolls back).
    pub fn with_ready_timeout(root: PathBuf, ready_timeout: Duration) -> Arc<Self> {
        Self::build(root, ready_timeout, None)
    }

    /// Droplets whose sidecars and n8n are served through `hosts`, which must listen on
    /// [`SIDECAR_PORT`] and [`N8N_PORT`]; their outgoing connections close after 2 idle
    /// seconds. This is what lets one process hold 15,000 droplets: about one open file
    /// each when idle, instead of eight.
    pub fn with_shared_listeners(root: PathBuf, hosts: Arc<VirtualHosts>) -> Arc<Self> {
        Self::build(root, Duration::from_secs(20), Some(hosts))
    }

    fn build(
        root: PathBuf,
        ready_timeout: Duration,
        shared: Option<Arc<VirtualHosts>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            root,
            disks: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            ready_timeout,
            shared,
            refuse_credentials: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Chaos: every droplet's n8n, booted now or later, refuses credential writes as an n8n
    /// whose credential types differ from the pinned ones would (or accepts them again).
    pub fn chaos_refuse_credentials(&self, refuse: bool) {
        self.refuse_credentials
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
        for d in self
            .disks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            d.n8n.chaos_refuse_credentials(refuse);
        }
    }

    /// Droplets whose sidecar runs now.
    pub fn running(&self) -> usize {
        self.live
            .lock()
            .map(|l| l.values().filter(|x| x.stop.is_some()).count())
            .unwrap_or(0)
    }

    /// The fake n8n of droplet `id` (the cloud's id), if it ever booted: a window into a
    /// virtual droplet for tests and operators.
    pub fn n8n(&self, id: i64) -> Option<FakeN8n> {
        self.disks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|d| d.n8n.clone())
    }

    /// Sets what droplet `id`'s heartbeats report from now on (false if it never booted).
    pub fn set_load(&self, id: i64, sample: HostSample) -> bool {
        let disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        match disks.get(&id) {
            Some(d) => {
                *d.load.lock().unwrap_or_else(|p| p.into_inner()) = sample;
                true
            }
            None => false,
        }
    }

    fn disk(&self, id: i64, ip: IpAddr) -> (FakeN8n, PathBuf, Arc<Mutex<HostSample>>) {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let d = disks.entry(id).or_insert_with(|| Disk {
            n8n: FakeN8n::new(FakeN8nConfig {
                seed: id as u64,
                // Its workflows' calls out leave from the droplet's address, as on a real
                // droplet.
                http_from: Some(ip),
                ..FakeN8nConfig::default()
            }),
            state_dir: self.root.join(format!("droplet-{id}")),
            load: Arc::new(Mutex::new(CALM)),
        });
        d.n8n.chaos_refuse_credentials(
            self.refuse_credentials
                .load(std::sync::atomic::Ordering::SeqCst),
        );
        (d.n8n.clone(), d.state_dir.clone(), d.load.clone())
    }

    async fn run(self: Arc<Self>, ctx: BootContext, stop: oneshot::Receiver<()>) {
        let id = ctx.droplet_id;
        let Some(file) = ctx.cloud_config.file(ENV_FILE) else {
            tracing::warn!(
                droplet = id,
                "cloud-init wrote no {ENV_FILE}; the sidecar cannot start"
            );
            return;
        };
        let env = match EnvFile::parse(&file.content) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(droplet = id, error = %e, "the sidecar's env file is unusable");
                return;
            }
        };
        let ip = IpAddr::V4(ctx.public_ipv4);
        let (n8n, state_dir, load) = self.disk(id, ip);
        let runtime = match InProcessN8n::start_on(
            SocketAddr::new(ip, N8N_PORT),
            n8n,
            genesis_n8n::N8N_VERSION,
            self.shared.clone(),
        )
        .await
        {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::warn!(droplet = id, error = %e, "n8n did not start");
                return;
            }
        };
        let mut settings = Settings {
            dashboard_url: env.dashboard_url,
            workspace_id: env.workspace_id,
            provisioning_token: env.provisioning_token,
            region: env.region,
            droplet_id: 0,
            n8n_url: format!("http://{ip}:{N8N_PORT}"),
            webhook_base_url: format!("http://{ip}:{N8N_PORT}"),
            state_dir,
            listen: SocketAddr::new(ip, SIDECAR_PORT),
            bind_ip: Some(ip),
            owner_email: "owner@genesis.local".into(),
            n8n_ready_timeout: self.ready_timeout,
            host_stats: HostStats::Simulated(load),
            attach: self
                .shared
                .clone()
                .map(|h| h as Arc<dyn genesis_sidecar::server::Attach>),
            idle_connection_timeout: if self.shared.is_some() {
                Duration::from_secs(2)
            } else {
                genesis_sidecar::config::IDLE_CONNECTION_TIMEOUT
            },
        };
        // Ask the metadata service who we are, as the sidecar does on DigitalOcean.
        let meta = ctx.metadata_url.clone().unwrap_or_default();
        match genesis_sidecar::agent::http_client(&settings) {
            Ok(http) => match droplet_id(&http, &meta).await {
                Ok(found) => settings.droplet_id = found,
                Err(e) => {
                    tracing::warn!(droplet = id, error = %e, "no droplet id");
                    runtime.stop().await;
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(droplet = id, error = %e, "no HTTP client");
                return;
            }
        }
        let (halt_tx, halt_rx) = oneshot::channel::<()>();
        let started = genesis_sidecar::agent::start(settings, runtime.clone(), async {
            let _ = halt_rx.await;
        })
        .await;
        match started {
            Ok(running) => {
                let _ = stop.await;
                let _ = halt_tx.send(());
                let _ = running.heartbeats.await;
            }
            Err(e) => {
                tracing::warn!(droplet = id, error = %e, "the sidecar did not start");
                let _ = stop.await;
            }
        }
        runtime.stop().await;
    }
}

impl BootHook for SidecarHook {
    fn boot(&self, ctx: BootContext) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        let id = ctx.droplet_id;
        let old = live.remove(&id);
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            if let Some(mut old) = old {
                if let Some(stop) = old.stop.take() {
                    let _ = stop.send(());
                }
                let _ = old.task.await;
            }
            me.run(ctx, rx).await;
        });
        live.insert(
            id,
            Live {
                stop: Some(tx),
                task,
            },
        );
    }

    fn halt(&self, droplet_id: i64, reason: HaltReason) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        if let Some(stop) = live.get_mut(&droplet_id).and_then(|l| l.stop.take()) {
            let _ = stop.send(());
        }
        if reason != HaltReason::Deleted {
            return;
        }
        let task = live.remove(&droplet_id).map(|l| l.task);
        let disk = self
            .disks
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&droplet_id));
        if let Some(d) = disk {
            tokio::spawn(async move {
                if let Some(t) = task {
                    let _ = t.await;
                }
                let _ = std::fs::remove_dir_all(&d.state_dir);
            });
        }
    }
}
