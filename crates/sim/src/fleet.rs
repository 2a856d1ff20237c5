//! Virtual droplets that run the real sidecar: [`SidecarHook`] is the DigitalOcean
//! simulator's [`BootHook`] that, when a droplet boots, starts a fake n8n and the real
//! `genesis_sidecar` agent in-process, both bound to the droplet's loopback address and fed
//! from the droplet's own cloud-init document, exactly as on a real droplet (DESIGN §6).
//!
//! A droplet's "disk" (the sidecar's state directory and its n8n's data) survives power
//! cycles and is wiped when the droplet is deleted.
//!
//! With [`RealN8n`], the first droplets to boot run a real n8n 2.8.4 process instead of the
//! fake (installed by `scripts/n8n-install.sh`), listening on the droplet's address, with
//! its data on the droplet's disk; the sidecar owns it through its process runtime, as it
//! owns the container on a real droplet.

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
/// Where a virtual droplet's sidecar relays its n8n's calls to the control plane (spec 65.3).
pub const RELAY_PORT: u16 = genesis_protocol::inbound::RELAY_PORT;

/// Droplets that run a real n8n 2.8.4 process instead of the fake.
#[derive(Debug, Clone)]
pub struct RealN8n {
    /// Where `scripts/n8n-install.sh` installed n8n (it holds `node_modules/.bin/n8n`).
    pub install_dir: PathBuf,
    /// How many droplets, the first to boot, get one. Hot standbys (tagged
    /// `genesis-standby`) are not counted: they serve nobody until claimed, and a real n8n
    /// costs a few hundred megabytes.
    pub droplets: usize,
}

/// The tag of the hot-standby pool's droplets.
const STANDBY_TAG: &str = "genesis-standby";

impl RealN8n {
    /// The n8n program, if the install is there.
    pub fn program(&self) -> Option<PathBuf> {
        let p = self.install_dir.join("node_modules/.bin/n8n");
        p.exists().then_some(p)
    }
}

/// How long a real n8n may take to answer its readiness probe after a start (about 30 s on
/// two cores; more while other droplets boot).
const REAL_N8N_READY: Duration = Duration::from_secs(240);

struct Disk {
    n8n: FakeN8n,
    /// Runs a real n8n instead of `n8n`.
    real: bool,
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
    /// Real n8n processes for the first droplets.
    real: Option<RealN8n>,
    /// Real Caddy in front of the first droplets whose cloud-init writes a Caddyfile: the
    /// front, how many droplets, and which have one (a rebooted droplet keeps its Caddy).
    caddy: std::sync::OnceLock<crate::caddy::CaddyFront>,
    /// How many more droplets may get Caddy at their first boot.
    caddy_slots: std::sync::atomic::AtomicUsize,
    caddy_droplets: Mutex<std::collections::HashSet<i64>>,
    /// Each running droplet's in-process n8n, so a test can crash it.
    n8n_runtimes: Mutex<HashMap<i64, Arc<InProcessN8n>>>,
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
    /// [`SIDECAR_PORT`], [`N8N_PORT`] and [`RELAY_PORT`]; their outgoing connections close after 2 idle
    /// seconds. This is what lets one process hold 15,000 droplets: about one open file
    /// each when idle, instead of eight.
    pub fn with_shared_listeners(root: PathBuf, hosts: Arc<VirtualHosts>) -> Arc<Self> {
        Self::build(root, Duration::from_secs(20), Some(hosts))
    }

    /// Droplets of which the first `real.droplets` to boot run a real n8n process; the
    /// others the fake.
    pub fn with_real_n8n(root: PathBuf, ready_timeout: Duration, real: RealN8n) -> Arc<Self> {
        Self::build_with(root, ready_timeout, None, Some(real))
    }

    /// Puts real Caddy in front of the first `droplets` droplets booted from now on (hot
    /// standbys aside; see [`crate::caddy`]): commands to them go to
    /// `https://<ip>:9443/sidecar/v1/commands`, trusting `front.ca_cert()`. A second call
    /// keeps the first front.
    pub fn front_with_caddy(&self, front: crate::caddy::CaddyFront, droplets: usize) {
        let _ = self.caddy.set(front);
        self.more_caddy(droplets);
    }

    /// Puts Caddy in front of `droplets` more droplets, the next to boot (what `make demo`
    /// asks once its populated fleet is up, so tenants who sign up get a front); false when
    /// no front was configured.
    pub fn more_caddy(&self, droplets: usize) -> bool {
        if self.caddy.get().is_none() {
            return false;
        }
        let _ = self.caddy_slots.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| Some(n.saturating_add(droplets)),
        );
        true
    }

    /// Stops every droplet's sidecar and the processes it runs (real n8n, Caddy), waiting up
    /// to `within` for them: what `genesis sim-cloud` does before it exits, so no process
    /// outlives the simulator.
    pub async fn shutdown(&self, within: Duration) {
        let live: Vec<Live> = match self.live.lock() {
            Ok(mut l) => l.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        let mut tasks = Vec::with_capacity(live.len());
        for mut l in live {
            if let Some(stop) = l.stop.take() {
                let _ = stop.send(());
            }
            tasks.push(l.task);
        }
        let all = await_each(tasks);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("some droplets did not stop in time");
        }
    }

    /// Whether droplet `id` boots behind Caddy (deciding it at its first boot).
    fn behind_caddy(&self, id: i64, standby: bool) -> bool {
        let Ok(mut chosen) = self.caddy_droplets.lock() else {
            return false;
        };
        if chosen.contains(&id) {
            return true;
        }
        let took = !standby
            && self
                .caddy_slots
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok();
        took && chosen.insert(id)
    }

    fn build(
        root: PathBuf,
        ready_timeout: Duration,
        shared: Option<Arc<VirtualHosts>>,
    ) -> Arc<Self> {
        Self::build_with(root, ready_timeout, shared, None)
    }

    fn build_with(
        root: PathBuf,
        ready_timeout: Duration,
        shared: Option<Arc<VirtualHosts>>,
        real: Option<RealN8n>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            root,
            disks: Mutex::new(HashMap::new()),
            n8n_runtimes: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            ready_timeout,
            shared,
            refuse_credentials: std::sync::atomic::AtomicBool::new(false),
            caddy: std::sync::OnceLock::new(),
            caddy_slots: std::sync::atomic::AtomicUsize::new(0),
            caddy_droplets: Mutex::new(Default::default()),
            real,
        })
    }

    /// Whether droplet `id` runs a real n8n (false if it never booted).
    pub fn runs_real_n8n(&self, id: i64) -> bool {
        self.disks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .is_some_and(|d| d.real)
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
    /// Where virtual droplet `id`'s sidecar writes support SSH keys.
    pub fn authorized_keys(&self, id: i64) -> PathBuf {
        self.root
            .join(format!("droplet-{id}"))
            .join("ssh")
            .join("authorized_keys")
    }

    /// How many virtual droplets run.
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

    /// Stops droplet `id`'s n8n as a crash would: its sidecar goes on, and reports n8n
    /// stopped until something restarts it (false when it runs no in-process n8n).
    pub async fn crash_n8n(&self, id: i64) -> bool {
        let runtime = self
            .n8n_runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        match runtime {
            Some(r) => {
                r.stop().await;
                true
            }
            None => false,
        }
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

    fn disk(
        &self,
        id: i64,
        ip: IpAddr,
        standby: bool,
    ) -> (FakeN8n, PathBuf, Arc<Mutex<HostSample>>, bool) {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let real_so_far = disks.values().filter(|d| d.real).count();
        let real = !standby && self.real.as_ref().is_some_and(|r| real_so_far < r.droplets);
        let d = disks.entry(id).or_insert_with(|| Disk {
            real,
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
        (d.n8n.clone(), d.state_dir.clone(), d.load.clone(), d.real)
    }

    async fn run(self: Arc<Self>, ctx: BootContext, stop: oneshot::Receiver<()>) {
        let id = ctx.droplet_id;
        if ctx.cloud_config.runs_docker() && !ctx.has_docker {
            // As on DigitalOcean: `docker compose up` fails, and nothing starts.
            tracing::warn!(
                droplet = id,
                "cloud-init runs docker, but the image has none and the document installs none"
            );
            return;
        }
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
        let standby = ctx.tags.iter().any(|t| t == STANDBY_TAG);
        let (n8n, state_dir, load, real) = self.disk(id, ip, standby);
        let mut settings = Settings {
            dashboard_url: env.dashboard_url,
            workspace_id: env.workspace_id,
            provisioning_token: env.provisioning_token,
            region: env.region,
            droplet_id: 0,
            n8n_url: format!("http://{ip}:{N8N_PORT}"),
            webhook_base_url: format!("http://{ip}:{N8N_PORT}"),
            state_dir: state_dir.clone(),
            listen: SocketAddr::new(ip, SIDECAR_PORT),
            bind_ip: Some(ip),
            owner_email: "owner@genesis.local".into(),
            n8n_ready_timeout: if real {
                self.ready_timeout.max(REAL_N8N_READY)
            } else {
                self.ready_timeout
            },
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
            trusted_proxies: Vec::new(),
            // A virtual droplet's restart keeps the host's page cache: no fsync per command.
            sync_state: false,
            caddy_admin: None,
            authorized_keys: Some(state_dir.join("ssh").join("authorized_keys")),
            relay: Some(genesis_sidecar::config::RelaySettings {
                listen: SocketAddr::new(ip, RELAY_PORT),
                url: format!("http://{ip}:{RELAY_PORT}"),
            }),
        };
        // Ask the metadata service who we are, as the sidecar does on DigitalOcean.
        let meta = ctx.metadata_url.clone().unwrap_or_default();
        match genesis_sidecar::agent::http_client(&settings) {
            Ok(http) => match droplet_id(&http, &meta).await {
                Ok(found) => settings.droplet_id = found,
                Err(e) => {
                    tracing::warn!(droplet = id, error = %e, "no droplet id");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(droplet = id, error = %e, "no HTTP client");
                return;
            }
        }
        // Caddy in front, as on a droplet: only when the document configures it.
        let mut _caddy = None;
        if let (Some(front), Some(file)) = (
            self.caddy.get(),
            ctx.cloud_config.file(crate::caddy::CADDYFILE),
        ) && self.behind_caddy(id, standby)
        {
            match front
                .start(&file.content, ip, &state_dir.join("caddy"))
                .await
            {
                Ok(child) => {
                    // Caddy reaches the sidecar from the host's loopback source address.
                    settings.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1])];
                    // n8n's webhooks are public through Caddy only, as on a droplet.
                    settings.webhook_base_url =
                        format!("https://{ip}:{}", crate::caddy::HTTPS_PORT);
                    // The sidecar drives this Caddy's admin API, as on a droplet.
                    settings.caddy_admin =
                        Some(crate::caddy::admin_socket(&state_dir.join("caddy")));
                    _caddy = Some(child);
                }
                Err(e) => {
                    tracing::warn!(droplet = id, error = %e, "Caddy did not start");
                    return;
                }
            }
        }
        match (real, self.real.as_ref()) {
            (true, Some(spec)) => {
                let runtime = match start_real_n8n(spec, &state_dir, ip).await {
                    Ok(r) => Arc::new(r),
                    Err(e) => {
                        tracing::warn!(droplet = id, error = %e, "the real n8n did not start");
                        return;
                    }
                };
                serve_sidecar(id, settings, runtime.clone(), stop).await;
                runtime.stop().await;
            }
            _ => {
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
                self.n8n_runtimes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, runtime.clone());
                serve_sidecar(id, settings, runtime.clone(), stop).await;
                runtime.stop().await;
            }
        }
    }
}

/// Runs the real sidecar on `runtime` until the droplet halts (`stop`).
async fn serve_sidecar<R: genesis_sidecar::runtime::ContainerRuntime>(
    id: i64,
    settings: Settings,
    runtime: Arc<R>,
    stop: oneshot::Receiver<()>,
) {
    let (halt_tx, halt_rx) = oneshot::channel::<()>();
    let started = genesis_sidecar::agent::start(settings, runtime, async {
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
}

/// Starts a real n8n 2.8.4 for the droplet at `ip`: on its address, port 5678, its data on
/// the droplet's disk, telemetry off, its webhooks announced at its own address. Its task
/// runner's broker takes a free loopback port (n8n's runners always dial 127.0.0.1).
async fn start_real_n8n(
    spec: &RealN8n,
    state_dir: &std::path::Path,
    ip: IpAddr,
) -> Result<genesis_sidecar::runtime::ProcessRuntime, String> {
    let program = spec.program().ok_or_else(|| {
        format!(
            "no n8n in {} (run scripts/n8n-install.sh)",
            spec.install_dir.display()
        )
    })?;
    let data = state_dir.join("n8n-data");
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let broker = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for n8n's task broker: {e}"))?
        .port();
    let env = [
        ("N8N_USER_FOLDER", data.display().to_string()),
        ("N8N_PORT", N8N_PORT.to_string()),
        ("N8N_LISTEN_ADDRESS", ip.to_string()),
        ("N8N_HOST", ip.to_string()),
        ("N8N_PROTOCOL", "http".into()),
        ("WEBHOOK_URL", format!("http://{ip}:{N8N_PORT}/")),
        ("N8N_RUNNERS_BROKER_PORT", broker.to_string()),
        ("N8N_DIAGNOSTICS_ENABLED", "false".into()),
        ("N8N_VERSION_NOTIFICATIONS_ENABLED", "false".into()),
        ("N8N_DYNAMIC_BANNERS_ENABLED", "false".into()),
        ("N8N_PERSONALIZATION_ENABLED", "false".into()),
        ("N8N_SECURE_COOKIE", "false".into()),
    ];
    genesis_sidecar::runtime::ProcessRuntime::start(genesis_sidecar::runtime::ProcessSpec {
        program: program.display().to_string(),
        args: vec!["start".into()],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        pull: None,
        image: genesis_n8n::N8N_VERSION.into(),
    })
    .await
    .map_err(|e| e.to_string())
}

async fn await_each(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caddy_goes_in_front_of_as_many_droplets_as_asked_and_stays_with_them() {
        let root = std::env::temp_dir().join(format!("fleet-caddy-{}", uuid::Uuid::now_v7()));
        let hook = SidecarHook::new(root.clone());
        assert!(!hook.more_caddy(3), "no front configured");
        assert!(!hook.behind_caddy(1, false));
        let front = crate::caddy::CaddyFront::prepare(&root.join("ca")).expect("caddy");
        hook.front_with_caddy(front, 1);
        assert!(!hook.behind_caddy(9, true), "a standby never takes a slot");
        assert!(hook.behind_caddy(1, false));
        assert!(!hook.behind_caddy(2, false), "the one slot is taken");
        assert!(
            hook.behind_caddy(1, false),
            "a rebooted droplet keeps its Caddy"
        );
        assert!(hook.more_caddy(2));
        assert!(hook.behind_caddy(2, false) && hook.behind_caddy(3, false));
        assert!(!hook.behind_caddy(4, false));
        let _ = std::fs::remove_dir_all(root);
    }
}
