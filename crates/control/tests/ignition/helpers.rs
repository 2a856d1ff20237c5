//! One control plane, one DigitalOcean simulator whose droplets boot the real sidecar and a
//! fake n8n, one ignition worker on its own Redis key prefix, and one fresh database: every
//! test gets its own, so they run in parallel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{ClientOptions, Cloud, DigitalOcean};
use genesis_core::{IgnitionStep, WorkspaceId};
use genesis_ignition::{
    Igniter, IgnitionSettings, Images, OAuthRefresher, SidecarClient, TemplateSet,
};
use genesis_queue::{Bus, GovernorConfig, QueueConfig, Worker};
use genesis_sim::ai_providers::FakeAiProviders;
use genesis_sim::digitalocean::{Faults, SimConfig, Simulator, Timings, serve};
use genesis_sim::dns::Knot;
use genesis_sim::fleet::SidecarHook;
use genesis_sim::google_oauth::FakeGoogleOAuth;
use genesis_sim::wizard::WizardFakes;
use genesis_store::{MasterKeys, RegionalStore, testing::TestDb};
use serde_json::{Value, json};
use tokio::sync::watch;

pub const TOKEN: &str = "test-api-token";

/// The platform's OAuth client at the fake Google: id and secret. Tests register its
/// redirect URI once the control plane's address is known.
pub const GOOGLE_CLIENT: (&str, &str) = ("genesis-test.apps.googleusercontent.com", "GOCSPX-t");

/// Options a test may change before the world starts.
pub struct Options {
    /// Step timeouts (short ones make timeout tests fast).
    pub timeouts: BTreeMap<IgnitionStep, Duration>,
    /// Boot virtual droplets with the real sidecar (false: droplets boot but nothing
    /// hand-shakes).
    pub sidecars: bool,
    /// Another template set.
    pub templates: Option<TemplateSet>,
    /// Start the ignition worker (false: the test drives the saga itself).
    pub worker: bool,
    /// How long the simulated cloud takes.
    pub timings: Timings,
    /// Seconds between sidecars' metric reports (spec 44.2's 900 by default).
    pub metrics_interval_s: u64,
    /// The first droplet runs a real n8n 2.8.4 (installed where `GENESIS_N8N_HOME` says).
    pub real_n8n: bool,
    /// How sidecar tokens live and are renewed (a compressed clock in the renewal test).
    pub token_policy: genesis_control::heartbeats::TokenPolicy,
    /// Real Caddy in front of every droplet, and commands over HTTPS through it.
    pub caddy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeouts: BTreeMap::from([
                (IgnitionStep::DropletProvisioning, Duration::from_secs(20)),
                (IgnitionStep::HandshakePending, Duration::from_secs(30)),
            ]),
            sidecars: true,
            templates: None,
            worker: true,
            timings: Timings::INSTANT,
            metrics_interval_s: 900,
            real_n8n: false,
            token_policy: Default::default(),
            caddy: false,
        }
    }
}

/// Where the real n8n is installed: `GENESIS_N8N_HOME`, which `make test` sets after
/// `scripts/n8n-install.sh`.
pub fn real_n8n_home() -> std::path::PathBuf {
    let home = std::env::var_os("GENESIS_N8N_HOME").unwrap_or_else(|| {
        panic!(
            "GENESIS_N8N_HOME is not set: run `make test`, or export \
             GENESIS_N8N_HOME=$(scripts/n8n-install.sh)"
        )
    });
    std::path::PathBuf::from(home)
}

pub struct World {
    pub t: TestDb,
    /// The control plane's state (tests run its reconcilers themselves).
    #[allow(
        dead_code,
        reason = "used by the tracking-domain tests, which share these helpers"
    )]
    pub state: genesis_control::AppState,
    pub base: String,
    pub http: reqwest::Client,
    pub sim: Simulator,
    pub hook: Arc<SidecarHook>,
    pub cloud: Arc<DigitalOcean>,
    pub igniter: Arc<Igniter<DigitalOcean>>,
    /// Signed commands to the world's sidecars (the control plane's key).
    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub sidecar: SidecarClient,
    pub bus: Bus,
    /// Google's token endpoint, faked (the watchdog's OAuth refreshes go there).
    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub google: FakeGoogleOAuth,
    /// The AI vendors, faked (the wizard checks keys there).
    #[allow(
        dead_code,
        reason = "used by the wizard tests, which share these helpers"
    )]
    pub ai: FakeAiProviders,
    /// The authoritative DNS server of tenants' domains.
    #[allow(
        dead_code,
        reason = "used by the wizard tests, which share these helpers"
    )]
    pub knot: Arc<Knot>,
    /// The managed services' wholesale vendors, faked.
    #[allow(
        dead_code,
        reason = "used by the ignition tests, which share these helpers"
    )]
    pub wholesale: genesis_sim::managed::FakeWholesale,
    /// The tenants' wallets (the managed-service gateway charges them).
    #[allow(
        dead_code,
        reason = "used by the ignition tests, which share these helpers"
    )]
    pub wallets: Arc<genesis_control::app::wallet::Wallets>,
    oauth: OAuthRefresher,
    stop_worker: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<()>>,
    pub root: std::path::PathBuf,
}

/// What the droplet's (fake) n8n holds: credentials, workflows, and active workflows.
pub fn n8n_counts(w: &World, provider: i64) -> (usize, usize, usize) {
    let n8n = w.hook.n8n(provider).expect("n8n");
    let flows = n8n.workflow_summary();
    (
        n8n.credential_summary().len(),
        flows.len(),
        flows.iter().filter(|f| f.2).count(),
    )
}

pub async fn world(opts: Options) -> World {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .try_init();
    let t = TestDb::create().await.expect("test database");
    let stores = RegionalStore::single(t.db.clone());

    // The simulator, its droplets booting the real sidecar.
    let root = std::env::temp_dir().join(format!("genesis-ign-{}", uuid::Uuid::now_v7().simple()));
    let hook = if opts.real_n8n {
        SidecarHook::with_real_n8n(
            root.clone(),
            Duration::from_secs(20),
            genesis_sim::fleet::RealN8n {
                install_dir: real_n8n_home(),
                droplets: 1,
            },
        )
    } else {
        SidecarHook::with_ready_timeout(root.clone(), Duration::from_secs(20))
    };
    let mut sim = Simulator::new(SimConfig {
        per_window: 100_000,
        per_long_window: 1_000_000,
        timings: opts.timings,
        ..SimConfig::default()
    });
    if opts.sidecars {
        sim = sim.with_boot_hook(hook.clone());
    }
    let sl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim_url = format!("http://{}", sl.local_addr().expect("addr"));
    tokio::spawn(serve(sl, sim.clone(), std::future::pending()));
    let mut o = ClientOptions::new(&sim_url, "t");
    o.poll_interval = Duration::from_millis(10);
    o.min_backoff = Duration::from_millis(5);
    o.max_attempts = 3;
    o.per_minute = 100_000;
    o.per_hour = 1_000_000;
    let cloud = Arc::new(DigitalOcean::new(o).expect("client"));
    // Google, the AI vendors and the DNS provider (writing to a real Knot DNS server),
    // faked on one listener as `genesis sim-cloud` serves them.
    let fakes = WizardFakes::start(&root.join("dns"))
        .await
        .expect("knotd (Debian's knot package)");
    let wholesale = genesis_sim::managed::FakeWholesale::new();
    let google_app = fakes.router().merge(wholesale.router());
    let WizardFakes { google, ai, knot } = fakes;
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let google_base = format!("http://{}", gl.local_addr().expect("addr"));
    let oauth = OAuthRefresher::new(&format!("{google_base}/token")).expect("oauth client");
    tokio::spawn(async move { axum::serve(gl, google_app).await });

    // The queue, on a key prefix of its own.
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let set = format!("t{}", uuid::Uuid::now_v7().simple());
    let bus = Bus::connect(
        &redis,
        &set,
        vec![
            QueueConfig::new("ignition", 1, 50),
            QueueConfig::new("security", 2, 100),
            QueueConfig::new("reboot", 2, 25),
            QueueConfig::new("template", 3, 100),
            QueueConfig::new("hibernation", 4, 50),
        ],
        GovernorConfig {
            backoff_base: Duration::from_millis(50),
            lease: Duration::from_secs(10),
            ..GovernorConfig::default()
        },
    )
    .await
    .expect("bus");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let signer = Arc::new(genesis_protocol::CommandSigner::generate().expect("key"));
    let keys = MasterKeys::new(1, BTreeMap::from([(1, [7u8; 32])])).expect("keys");
    // Built as `genesis serve` builds it; commands are journaled as there, flushed often.
    // The wallet the Golden Template's managed calls are charged to, on the test's own
    // key prefix.
    let wallets = Arc::new(genesis_control::app::wallet::Wallets::new(
        genesis_queue::wallet::WalletCache::new(
            genesis_queue::RedisConn::connect(&redis)
                .await
                .expect("redis"),
            &format!("{set}:"),
        ),
        stores.clone(),
        genesis_control::app::wallet::WalletSettings::default(),
    ));
    let mut providers = genesis_control::providers::Providers::simulated(
        &google_base,
        Some((GOOGLE_CLIENT.0, GOOGLE_CLIENT.1)),
        Some(knot.addr()),
    );
    providers.managed.zerobounce_key = Some(genesis_sim::managed::ZEROBOUNCE_KEY.into());
    let mut builder = genesis_control::ControlPlane::builder(stores.clone())
        .vault(Some(Arc::new(keys.clone())))
        .providers(providers)
        .wallets(Some(wallets.clone()))
        .redis(genesis_queue::RedisTarget::parse(&redis).ok())
        .api_token(Some(TOKEN))
        .command_signer(signer.clone())
        .token_policy(opts.token_policy)
        // Tenants' websites in these tests are served on this machine.
        .outbound(genesis_control::outbound::FetchLimits {
            allow_private: true,
            ..Default::default()
        })
        .sidecar_config(genesis_protocol::SidecarConfig {
            heartbeat_interval_s: 1,
            metrics_interval_s: opts.metrics_interval_s,
        });
    let journal = builder.command_journal(Duration::from_millis(100));
    let (url, tls) = if opts.caddy {
        let front = genesis_sim::caddy::CaddyFront::prepare(&root.join("ca")).expect("caddy");
        let ca = std::fs::read(front.ca_cert()).expect("the CA");
        hook.front_with_caddy(front, usize::MAX);
        (
            "https://{ip}:9443/sidecar/v1/commands",
            genesis_ignition::sidecar_client::ClientTls {
                extra_root_pem: Some(ca),
                host_suffix: None,
            },
        )
    } else {
        ("http://{ip}:8443/sidecar/v1/commands", Default::default())
    };
    let sidecar = SidecarClient::with_options(
        signer.clone(),
        url,
        if opts.real_n8n {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(10)
        },
        tls,
    )
    .expect("sidecar client")
    .with_journal(journal);
    // The control plane answers heartbeats from the ring the commands are signed from.
    builder = builder.command_keys(sidecar.keys().clone());
    let templates = match opts.templates {
        Some(t) => t,
        None => TemplateSet::golden().expect("golden"),
    };
    let sidecar_for_tests = sidecar.clone();
    let igniter = Arc::new(Igniter::new(
        stores.clone(),
        cloud.clone(),
        sidecar,
        Some(Arc::new(keys)),
        Arc::new(templates),
        IgnitionSettings {
            dashboard_url: base.clone(),
            images: Images {
                caddy: "caddy:2".into(),
                n8n: "n8nio/n8n:2.8.4".into(),
                sidecar: "genesis-sidecar:dev".into(),
            },
            require_digests: false,
            droplet_size: "s-1vcpu-1gb".into(),
            droplet_image: "ubuntu-24-04-x64".into(),
            timeouts: opts.timeouts,
            inline_wait: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            actor: "ignition".into(),
            network: Default::default(),
            droplet_poll: Default::default(),
        },
        bus.clone(),
    ));
    // The tests run (and kill) their own worker, and drive reconcilers themselves.
    let control_plane = builder
        .fleet(
            igniter.clone(),
            genesis_control::FleetSettings {
                workers: 0,
                reconcilers: false,
                ..Default::default()
            },
        )
        .build();
    let state = control_plane.state().clone();
    tokio::spawn(control_plane.run(listener, std::future::pending()));
    google.register_client(
        GOOGLE_CLIENT.0,
        GOOGLE_CLIENT.1,
        &[&format!("{base}/app/oauth/google/callback")],
    );
    let mut w = World {
        t,
        state,
        base,
        http: reqwest::Client::new(),
        sim,
        hook,
        cloud,
        igniter,
        sidecar: sidecar_for_tests,
        bus,
        google,
        ai,
        knot,
        wholesale,
        wallets,
        oauth,
        stop_worker: watch::channel(false).0,
        worker: None,
        root,
    };
    if opts.worker {
        w.start_worker();
    }
    w
}

impl World {
    /// Starts (or restarts) the ignition worker: what a control-plane process runs.
    pub fn start_worker(&mut self) {
        let (tx, mut rx) = watch::channel(false);
        self.stop_worker = tx;
        // One worker runs every queue of the set, as in `genesis serve`.
        let jobs = genesis_control::workers::jobs::FleetJobs::for_igniter(
            self.igniter.clone(),
            Some(self.oauth.clone()),
            genesis_control::workers::hibernation::HibernationSettings {
                shutdown_wait: Duration::from_secs(10),
                ..Default::default()
            },
        );
        let worker = Worker::new(self.bus.clone(), jobs, 16);
        self.worker = Some(tokio::spawn(async move {
            let _ = worker
                .run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        }));
    }

    /// Kills the worker mid-flight (its in-flight jobs are dropped, as in a crash).
    pub async fn kill_worker(&mut self) {
        if let Some(w) = self.worker.take() {
            w.abort();
            let _ = w.await;
        }
    }

    /// Creates an operator and signs it in to God Mode: a client that does not follow
    /// redirects, and the session cookie (`name=value`).
    #[allow(
        dead_code,
        reason = "used by the rollout tests, which share these helpers"
    )]
    pub async fn god_session(&self) -> (reqwest::Client, String) {
        self.god_session_as(
            "ops@genesis.test",
            genesis_core::support::OperatorRole::Admin,
        )
        .await
    }

    /// The CSRF token of God Mode page `path` for the session `cookie`.
    pub async fn god_csrf(&self, http: &reqwest::Client, cookie: &str, path: &str) -> String {
        let page = http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
        page[at..].split('"').next().expect("token").to_owned()
    }

    /// [`Self::god_session`] for operator `email` with `role`.
    pub async fn god_session_as(
        &self,
        email: &str,
        role: genesis_core::support::OperatorRole,
    ) -> (reqwest::Client, String) {
        let hash = genesis_control::credentials::hash_password("operator password").expect("hash");
        self.t
            .db
            .operator_create_with_role(email, &hash, role, "test")
            .await
            .expect("operator");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let r = http
            .post(format!("{}/god/sign-in", self.base))
            .form(&[("email", email), ("password", "operator password")])
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 303);
        let cookie = r.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("cookie")
            .to_owned();
        (http, cookie)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, Value::Null).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a workspace with every onboarding value the Golden Template needs.
    pub async fn create_workspace(&self, slug: &str) -> WorkspaceId {
        let (status, ws) = self
            .post(
                "/api/v1/workspaces",
                json!({
                    "name": format!("Tenant {slug}"), "slug": slug, "region": "eu-west",
                    "onboarding": {
                        "sender_email": "ada@acme.example", "name": "Ada",
                        "company_name": "Acme", "calendly_link_1": "https://cal.example/ada"
                    }
                }),
            )
            .await;
        assert_eq!(status, 201, "{ws}");
        WorkspaceId::parse(ws["id"].as_str().expect("id")).expect("uuid")
    }

    /// Polls the workspace until its ignition finishes; returns the workspace JSON.
    pub async fn wait_finished(&self, ws: WorkspaceId, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, got) = self.get(&format!("/api/v1/workspaces/{ws}")).await;
            let phase = got["ignition"]["phase"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if phase == "DONE" || phase == "ROLLED_BACK" {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ignition did not finish in {within:?}: {got:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn faults(&self, f: Faults) {
        self.sim.set_faults(f);
    }

    /// Droplets the simulator holds for workspace `ws` (asked over its API).
    pub async fn cloud_droplets(&self, ws: WorkspaceId) -> usize {
        self.cloud
            .droplet_list_by_tag(&format!("ws-{}", ws.as_uuid()))
            .await
            .expect("list")
            .len()
    }

    /// Everything an ignition may leave behind, counted: the cloud's droplets, the
    /// partition, vault rows, webhook rows, live droplet rows.
    pub async fn residue(&self, ws: WorkspaceId) -> Residue {
        let db = &self.t.db;
        Residue {
            cloud_droplets: self.cloud_droplets(ws).await,
            partition: genesis_store::PartitionManager::new(db.clone())
                .get(ws)
                .await
                .expect("partition")
                .is_some(),
            vault_rows: db.vault_ids(ws).await.expect("vault").len(),
            webhook_rows: db.webhook_list(ws).await.expect("webhooks").len(),
            live_droplet_rows: db.droplet_live_for_workspace(ws).await.expect("rows").len(),
        }
    }

    /// Creates `n` workspaces named `<prefix>_<i>`, ignites them all at once, and waits for
    /// each ignition to finish; answers them in order.
    #[allow(
        dead_code,
        reason = "used by the fleet-sized tests, which share these helpers"
    )]
    pub async fn ignite_many(&self, prefix: &str, n: usize) -> Vec<WorkspaceId> {
        let mut tenants = Vec::with_capacity(n);
        for i in 0..n {
            let ws = self.create_workspace(&format!("{prefix}_{i}")).await;
            let (status, _) = self
                .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
                .await;
            assert_eq!(status, 202);
            tenants.push(ws);
        }
        for ws in &tenants {
            let got = self.wait_finished(*ws, Duration::from_secs(120)).await;
            assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        }
        tenants
    }

    /// Powers a droplet (the cloud's id) off or on through the cloud, and waits for it.
    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub async fn power(&self, provider: i64, action: genesis_cloud::PowerAction) {
        let a = self
            .cloud
            .droplet_action(provider, action)
            .await
            .expect("power action");
        self.cloud
            .action_wait(a.id, Duration::from_secs(10))
            .await
            .expect("the power action finished");
    }

    /// Powers a workspace's droplet off and records HIBERNATING, as a hibernate job does.
    #[allow(
        dead_code,
        reason = "used by the fleet tests, which share these helpers"
    )]
    pub async fn hibernate_now(&self, ws: WorkspaceId) -> genesis_store::Droplet {
        let d = self
            .t
            .db
            .droplet_live_for_workspace(ws)
            .await
            .expect("rows")[0]
            .clone();
        self.power(
            d.provider_id.expect("provider"),
            genesis_cloud::PowerAction::PowerOff,
        )
        .await;
        let d = self.t.db.droplet_get(d.id).await.expect("droplet");
        self.t
            .db
            .droplet_hibernated(d.id, d.version, &serde_json::Value::Null, "test")
            .await
            .expect("hibernated")
    }

    pub async fn finish(mut self) {
        self.kill_worker().await;
        let _ = self.bus.destroy().await;
        let _ = std::fs::remove_dir_all(&self.root);
        self.t.cleanup().await.expect("cleanup");
    }
}

/// Checks a rolled-back ignition: the workspace is ROLLBACK_COMPLETE with the reason, nothing
/// is left anywhere, the user has a notification, and the saga log shows the undo actions of
/// every step from the failed one back to the first, in that order, each once.
pub async fn assert_unwound(w: &World, ws: WorkspaceId, failed: IgnitionStep) -> Value {
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "ROLLED_BACK", "{got:#}");
    assert_eq!(got["status"], "ROLLBACK_COMPLETE", "{got:#}");
    assert_eq!(got["ignition"]["failed_step"], failed.code(), "{got:#}");
    assert!(got["ignition"]["error"].is_string(), "{got:#}");
    assert_eq!(
        w.residue(ws).await,
        Residue::default(),
        "residue after {failed}"
    );
    let ig =
        w.t.db
            .ignition_latest(ws)
            .await
            .expect("latest")
            .expect("ignition");
    let undone: Vec<IgnitionStep> =
        w.t.db
            .ignition_log(ig.id)
            .await
            .expect("log")
            .into_iter()
            .filter(|e| e.event == genesis_core::SagaEvent::UndoDone)
            .map(|e| e.step)
            .collect();
    let want: Vec<IgnitionStep> = IgnitionStep::ALL
        .into_iter()
        .filter(|s| *s <= failed)
        .rev()
        .collect();
    assert_eq!(undone, want, "undo actions, in order");
    let notes = w.t.db.notification_list(ws).await.expect("notifications");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].body["failed_step"], failed.code());
    assert!(
        !notes[0].body["troubleshooting"]
            .as_array()
            .expect("steps")
            .is_empty()
    );
    got
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Residue {
    pub cloud_droplets: usize,
    pub partition: bool,
    pub vault_rows: usize,
    pub webhook_rows: usize,
    pub live_droplet_rows: usize,
}

impl Residue {
    /// What one ignited tenant owns: a droplet (in the cloud and in the database), its
    /// partition, four credentials in the vault (Gmail and OpenAI from the tenant; the
    /// lead-intake token and the API token the platform made), one webhook.
    pub const IGNITED: Residue = Residue {
        cloud_droplets: 1,
        partition: true,
        vault_rows: 4,
        webhook_rows: 1,
        live_droplet_rows: 1,
    };
}

pub fn credentials() -> Value {
    json!({
        "credentials": {
            "gmail": {"clientId": "cid.apps.example", "clientSecret": "gsecret"},
            "openai": {"apiKey": "sk-test-acme"}
        }
    })
}
