//! `genesis bench ignition`: N ignitions through the whole stack in one process: the control
//! plane's HTTP API, the ignition saga on the Redis queue, a scratch PostgreSQL database, the
//! DigitalOcean simulator whose droplets boot the real sidecar and a fake n8n, and the real
//! DigitalOcean client between them. Reports the wall time of the batch and, per ignition,
//! the control plane's time (the saga's `busy_ms`: executor time, waits excluded) and the
//! end-to-end time. With `--realistic`, droplets take DigitalOcean-like times to come up
//! (30 to 45 s from create to boot) and each ignition must stay under spec 1.4's 60 s.
//!
//! One JSON line per figure on stdout (DESIGN §8), progress on stderr.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use genesis_cloud::{ClientOptions, DigitalOcean};
use genesis_control::{ControlPlane, FleetSettings};
use genesis_core::{IgnitionStep, SagaPhase, WorkspaceId};
use genesis_ignition::{Igniter, IgnitionSettings, Images, SidecarClient, TemplateSet};
use genesis_queue::{Bus, GovernorConfig};
use genesis_sim::digitalocean::{SimConfig, Simulator, Span, Timings, serve};
use genesis_sim::fleet::SidecarHook;
use genesis_store::{MasterKeys, RegionalStore, testing::TestDb};
use serde_json::json;

use super::CliError;

pub(crate) const TOKEN: &str = "bench-api-token-0123456789";

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `x` to two decimals, as the benchmarks print figures.
pub(crate) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A benchmark's outcome: the targets it missed, if any.
pub(crate) fn verdict(failures: Vec<String>) -> Result<(), CliError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::CheckFailed(failures.join("; ")))
    }
}

/// Runs the benchmark.
pub async fn run(
    redis_url: &str,
    tenants: usize,
    realistic: bool,
    concurrency: usize,
    workers: u32,
) -> Result<(), CliError> {
    if tenants == 0 {
        return Err(CliError::Usage("--tenants must be at least 1".into()));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, tenants, realistic, concurrency, workers).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(
    t: &TestDb,
    redis_url: &str,
    tenants: usize,
    realistic: bool,
    concurrency: usize,
    workers: u32,
) -> Result<(), CliError> {
    let timings = if realistic {
        // 30 to 45 s from the create call to a booted droplet.
        Timings {
            create: Span::between(Duration::from_secs(20), Duration::from_secs(30)),
            boot: Span::between(Duration::from_secs(10), Duration::from_secs(15)),
            ..Timings::INSTANT
        }
    } else {
        Timings::INSTANT
    };
    let stack = Stack::start(t, redis_url, timings, workers, 60, false).await?;
    let base = stack.base.clone();
    eprintln!(
        "igniting {tenants} tenants ({}), {concurrency} requests at a time",
        if realistic {
            "boot 30-45 s"
        } else {
            "zero boot delay"
        }
    );
    let started = Instant::now();
    let http = reqwest::Client::new();
    let ids = start_all(&http, &base, tenants, concurrency).await?;
    let requested = started.elapsed();
    let finished = wait_all(t, &ids, started).await?;
    let wall = started.elapsed();
    stack.finish().await;

    let failed = finished
        .iter()
        .filter(|f| f.phase != SagaPhase::Done)
        .count();
    let mut cp: Vec<f64> = finished.iter().map(|f| f.busy_ms as f64).collect();
    let mut e2e: Vec<f64> = finished.iter().map(|f| f.e2e_ms as f64).collect();
    cp.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    let line = json!({
        "bench": if realistic { "ignition-realistic" } else { "ignition" },
        "tenants": tenants,
        "workers": workers,
        "failed": failed,
        "wall_s": (wall.as_secs_f64() * 100.0).round() / 100.0,
        "requests_s": (requested.as_secs_f64() * 100.0).round() / 100.0,
        "ignitions_per_s": (tenants as f64 / wall.as_secs_f64() * 10.0).round() / 10.0,
        "control_plane_ms_p50": percentile(&cp, 0.50),
        "control_plane_ms_p99": percentile(&cp, 0.99),
        "control_plane_ms_max": percentile(&cp, 1.0),
        "end_to_end_ms_p50": percentile(&e2e, 0.50),
        "end_to_end_ms_p99": percentile(&e2e, 0.99),
        "end_to_end_ms_max": percentile(&e2e, 1.0),
    });
    outln!("{line}");
    if failed > 0 {
        return Err(CliError::CheckFailed(format!("{failed} ignitions failed")));
    }
    Ok(())
}

/// What some benchmarks change in [`Stack`].
#[derive(Default)]
pub(crate) struct StackExtras {
    /// The wizard's third parties.
    pub providers: genesis_control::providers::Providers,
    /// Asked before every cloud call (a benchmark's rate limits).
    pub budget: Option<Arc<dyn genesis_cloud::budget::SharedBudget>>,
    /// How the ignition saga looks at droplets being created.
    pub droplet_poll: genesis_ignition::DropletPoll,
}

/// The whole stack in one process: a scratch database, the simulator whose droplets boot the
/// real sidecar and a fake n8n, the real DigitalOcean client, the queue on its own key
/// prefix, the control plane's HTTP API, and a worker running every fleet job. Shared by the
/// benchmarks that need real tenants (`ignition`, `wake`).
pub(crate) struct Stack {
    /// The API's base URL.
    pub base: String,
    /// The cloud client.
    pub cloud: Arc<DigitalOcean>,
    /// The simulator behind it (its request counts).
    pub sim: Simulator,
    /// The queue.
    pub bus: Bus,
    /// The igniter its worker runs (a benchmark's reconcilers start sagas with it).
    pub igniter: Arc<Igniter<DigitalOcean>>,
    disks: std::path::PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    control_plane: tokio::task::JoinHandle<Result<(), String>>,
}

impl Stack {
    /// Starts it; sidecars heartbeat every `heartbeat_s`. With `shared_listeners`, every
    /// droplet's sidecar and n8n are served through one listener per port (fleet scale:
    /// `genesis_sim::vhost`).
    pub async fn start(
        t: &TestDb,
        redis_url: &str,
        timings: Timings,
        workers: u32,
        heartbeat_s: u64,
        shared_listeners: bool,
    ) -> Result<Self, CliError> {
        Self::start_with(
            t,
            redis_url,
            timings,
            workers,
            heartbeat_s,
            shared_listeners,
            StackExtras::default(),
        )
        .await
    }

    /// [`Stack::start`], with `extras`.
    pub async fn start_with(
        t: &TestDb,
        redis_url: &str,
        timings: Timings,
        workers: u32,
        heartbeat_s: u64,
        shared_listeners: bool,
        extras: StackExtras,
    ) -> Result<Self, CliError> {
        let StackExtras {
            providers,
            budget,
            droplet_poll,
        } = extras;
        let stores = RegionalStore::single(t.db.clone());
        let run_id = uuid::Uuid::now_v7().simple().to_string();
        let disks = std::env::temp_dir().join(format!("genesis-bench-{run_id}"));
        let hook = if shared_listeners {
            let hosts = genesis_sim::vhost::VirtualHosts::new();
            for port in [
                genesis_sim::fleet::SIDECAR_PORT,
                genesis_sim::fleet::N8N_PORT,
                genesis_sim::fleet::RELAY_PORT,
            ] {
                hosts.listen(port).await.with_context(|| {
                    format!("listening on port {port} for every virtual droplet")
                })?;
            }
            SidecarHook::with_shared_listeners(disks.clone(), hosts)
        } else {
            SidecarHook::new(disks.clone())
        };
        let sim = Simulator::new(SimConfig {
            per_window: 1_000_000,
            per_long_window: 10_000_000,
            timings,
            ..SimConfig::default()
        })
        .with_boot_hook(hook);
        let sl = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind")?;
        let sim_url = format!("http://{}", sl.local_addr().context("addr")?);
        tokio::spawn(serve(sl, sim.clone(), std::future::pending()));
        let mut o = ClientOptions::new(&sim_url, "bench");
        o.per_minute = 1_000_000;
        o.per_hour = 10_000_000;
        o.poll_interval = Duration::from_millis(50);
        let mut cloud = DigitalOcean::new(o).map_err(|e| CliError::Runtime(e.into()))?;
        if let Some(b) = budget {
            cloud = cloud.with_shared_budget(b);
        }
        let cloud = Arc::new(cloud);
        let set = format!("bench{run_id}");
        let bus = Bus::connect(
            redis_url,
            &set,
            genesis_queue::config::fleet_queues(),
            GovernorConfig::default(),
        )
        .await
        .map_err(|e| CliError::Usage(format!("redis at {redis_url}: {e}")))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind")?;
        let base = format!("http://{}", listener.local_addr().context("addr")?);
        let signer = Arc::new(
            genesis_protocol::CommandSigner::generate().map_err(|e| CliError::Runtime(e.into()))?,
        );
        let keys = MasterKeys::new(1, BTreeMap::from([(1, rand_key())]))
            .map_err(|e| CliError::Runtime(e.into()))?;
        // Built as `genesis serve` builds it; commands are journaled as there.
        let mut builder = ControlPlane::builder(stores.clone())
            .vault(Some(Arc::new(keys.clone())))
            .providers(providers)
            // The loopback peer stands for the load balancer: a benchmark's people name
            // their own addresses with `X-Forwarded-For` (per-source sign-in quotas).
            .trusted_proxies(vec![std::net::IpAddr::from([127, 0, 0, 1])])
            // The benchmark's tenants' pages (booking links) are served on this machine.
            .outbound(genesis_control::outbound::FetchLimits {
                allow_private: true,
                ..Default::default()
            })
            .api_token(Some(TOKEN))
            .command_signer(signer.clone())
            .sidecar_config(genesis_protocol::SidecarConfig {
                heartbeat_interval_s: heartbeat_s,
                ..genesis_protocol::SidecarConfig::default()
            });
        let journal = builder.command_journal(Duration::from_secs(1));
        let sidecar = SidecarClient::new(
            signer.clone(),
            "http://{ip}:8443/sidecar/v1/commands",
            Duration::from_secs(30),
        )
        .map_err(|e| CliError::Runtime(e.into()))?
        .with_journal(journal);
        let igniter = Arc::new(Igniter::new(
            stores.clone(),
            cloud.clone(),
            sidecar.clone(),
            Some(Arc::new(keys)),
            Arc::new(TemplateSet::golden().map_err(|e| CliError::Runtime(e.into()))?),
            IgnitionSettings {
                dashboard_url: base.clone(),
                images: Images {
                    caddy: "caddy:2.8".into(),
                    n8n: "n8nio/n8n:2.8.4".into(),
                    sidecar: "genesis-sidecar:bench".into(),
                },
                require_digests: false,
                droplet_size: "s-1vcpu-1gb".into(),
                droplet_image: "ubuntu-24-04-x64".into(),
                timeouts: BTreeMap::new(),
                inline_wait: Duration::from_secs(2),
                lease: Duration::from_secs(60),
                actor: "ignition".into(),
                network: Default::default(),
                droplet_poll,
            },
            bus.clone(),
        ));
        // The fleet worker runs every queue, as in `genesis serve`; the reconcilers are the
        // benchmarks' own business.
        let control_plane = builder
            .fleet(
                igniter.clone(),
                FleetSettings {
                    workers: workers.max(1),
                    reconcilers: false,
                    ..FleetSettings::default()
                },
            )
            .build();
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let control_plane = tokio::spawn(control_plane.run(listener, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        Ok(Self {
            base,
            cloud,
            sim,
            bus,
            igniter,
            disks,
            stop,
            control_plane,
        })
    }

    /// Stops the control plane (worker and API), and removes what the run left (queue keys,
    /// droplet disks). The API stops before the scratch database goes, so the fleet's last
    /// heartbeats find no API rather than an API without a database (which logged an error
    /// for each).
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        if let Ok(Ok(Err(why))) =
            tokio::time::timeout(Duration::from_secs(30), self.control_plane).await
        {
            eprintln!("warning: the control plane stopped badly: {why}");
        }
        let _ = self.bus.destroy().await;
        let _ = std::fs::remove_dir_all(&self.disks);
    }
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&uuid::Uuid::new_v4().as_bytes().repeat(2));
    k
}

/// Creates and ignites every tenant over the API, `concurrency` requests at a time.
pub(crate) async fn start_all(
    http: &reqwest::Client,
    base: &str,
    tenants: usize,
    concurrency: usize,
) -> Result<Vec<WorkspaceId>, CliError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..tenants {
        let (http, base, sem) = (http.clone(), base.to_owned(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let ws: serde_json::Value = http
                .post(format!("{base}/api/v1/workspaces"))
                .bearer_auth(TOKEN)
                .json(&json!({
                    "name": format!("Bench {i}"), "slug": format!("bench_{i}"), "region": "eu-west",
                    "onboarding": {"sender_email": "ada@acme.example", "name": "Ada",
                                   "company_name": "Acme", "calendly_link_1": "https://cal.example/ada"}
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = WorkspaceId::parse(ws["id"].as_str().unwrap_or_default())?;
            http.post(format!("{base}/api/v1/workspaces/{id}/ignite"))
                .bearer_auth(TOKEN)
                .json(&json!({"credentials": {
                    "gmail": {"clientId": "c", "clientSecret": "s"},
                    "openai": {"apiKey": "sk-bench"}
                }}))
                .send()
                .await?
                .error_for_status()?;
            Ok::<_, anyhow::Error>(id)
        });
    }
    let mut ids = Vec::with_capacity(tenants);
    while let Some(r) = tasks.join_next().await {
        ids.push(r.context("task")?.context("create and ignite")?);
    }
    Ok(ids)
}

pub(crate) struct Finished {
    phase: SagaPhase,
    busy_ms: i64,
    e2e_ms: i64,
}

/// Waits until every saga is final, showing progress.
pub(crate) async fn wait_all(
    t: &TestDb,
    ids: &[WorkspaceId],
    started: Instant,
) -> Result<Vec<Finished>, CliError> {
    let deadline = Duration::from_secs(900);
    loop {
        let mut done = Vec::new();
        let mut steps: BTreeMap<&'static str, usize> = BTreeMap::new();
        for id in ids {
            match t.db.ignition_latest(*id).await? {
                Some(ig) if ig.phase.is_final() => done.push(Finished {
                    phase: ig.phase,
                    busy_ms: ig.busy_ms,
                    e2e_ms: ig
                        .finished_at
                        .map_or(0, |f| (f - ig.started_at).num_milliseconds()),
                }),
                Some(ig) => {
                    *steps
                        .entry(ig.step.map_or("?", IgnitionStep::code))
                        .or_default() += 1
                }
                None => *steps.entry("NOT_STARTED").or_default() += 1,
            }
        }
        eprint!(
            "\r  {:>6.1} s: {}/{} finished {:?}          ",
            started.elapsed().as_secs_f64(),
            done.len(),
            ids.len(),
            steps
        );
        if done.len() == ids.len() {
            eprintln!();
            return Ok(done);
        }
        if started.elapsed() > deadline {
            return Err(CliError::Runtime(anyhow::anyhow!(
                "not finished after {deadline:?}: {steps:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
