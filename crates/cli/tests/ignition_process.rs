//! The ignition with real processes: `genesis sim-cloud --sidecars` (droplets boot the real
//! sidecar and a fake n8n) and `genesis serve`, killed with SIGKILL while a saga waits for a
//! droplet to be created and while another waits for its handshake, then restarted: both
//! sagas resume and finish with exactly one droplet each. `genesis tenants create --wait`
//! follows a third ignition to ACTIVE.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use genesis_cloud::{ClientOptions, Cloud, DigitalOcean};
use genesis_core::{IgnitionStep, SagaPhase, WorkspaceId};
use genesis_store::testing::TestDb;

const TOKEN: &str = "process-test-api-token";
// 32 bytes each, base64.
const COMMAND_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const VAULT_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// What one process test owns: a scratch database, a queue set, the droplets' disks.
struct Scratch {
    t: TestDb,
    db_url: String,
    redis: String,
    set: String,
    disks: std::path::PathBuf,
}

impl Scratch {
    async fn new(prefix: &str) -> Self {
        let t = TestDb::create().await.expect("test database");
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let db_url = format!("{}/{}", url.rsplit_once('/').expect("db").0, t.name);
        let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let set = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
        let disks = std::env::temp_dir().join(format!("genesis-proc-{set}"));
        Self {
            t,
            db_url,
            redis,
            set,
            disks,
        }
    }

    /// Drops the queue set's keys, the disks and the database.
    async fn cleanup(self) {
        let bus = genesis_queue::Bus::connect(
            &self.redis,
            &self.set,
            genesis_queue::config::fleet_queues(),
            genesis_queue::GovernorConfig::default(),
        )
        .await
        .expect("bus");
        let _ = bus.destroy().await;
        let _ = std::fs::remove_dir_all(&self.disks);
        self.t.cleanup().await.expect("cleanup");
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_genesis"));
        c.args(args).env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                c.env(key, v);
            }
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    fn spawn(&self, args: &[&str]) -> Proc {
        Proc(
            self.command(args)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn genesis"),
        )
    }
}

/// The environment of a control plane on `cp_port` using the simulator on `sim_port`.
fn stack_env(
    db_url: &str,
    redis: &str,
    set: &str,
    sim_port: u16,
    cp_port: u16,
    heartbeat_s: u64,
) -> Env {
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let cp_url = format!("http://127.0.0.1:{cp_port}");
    let listen = format!("127.0.0.1:{cp_port}");
    let heartbeat = heartbeat_s.to_string();
    Env {
        vars: [
            ("GENESIS_LOG", "warn"),
            ("GENESIS_DATABASE__URL", db_url),
            ("GENESIS_REDIS__URL", redis),
            ("GENESIS_SERVER__LISTEN", listen.as_str()),
            ("GENESIS_SERVER__API_TOKEN", TOKEN),
            ("GENESIS_SERVER__COMMAND_KEY", COMMAND_KEY),
            ("GENESIS_CLOUD__URL", sim_url.as_str()),
            ("GENESIS_CLOUD__TOKEN", "sim-token"),
            ("GENESIS_CLOUD__PER_MINUTE", "100000"),
            ("GENESIS_CLOUD__PER_HOUR", "1000000"),
            // No hot-standby pool: this test counts the fleet's droplets.
            ("GENESIS_STANDBY__TOTAL", "0"),
            (
                "GENESIS_IGNITION__SIDECAR_URL",
                "http://{ip}:8443/sidecar/v1/commands",
            ),
            ("GENESIS_IGNITION__REQUIRE_DIGESTS", "false"),
            ("GENESIS_IGNITION__LEASE_S", "3"),
            ("GENESIS_IGNITION__QUEUE_SET", set),
            ("GENESIS_VAULT__CURRENT", "1"),
            ("GENESIS_VAULT__KEYS__1", VAULT_KEY),
            ("GENESIS_SIDECAR__HEARTBEAT_INTERVAL_S", heartbeat.as_str()),
            ("GENESIS_API_URL", cp_url.as_str()),
            ("GENESIS_API_TOKEN", TOKEN),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }
}

async fn wait_http(url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

async fn wait_step(t: &TestDb, ws: WorkspaceId, step: IgnitionStep) {
    for _ in 0..600 {
        if let Some(ig) = t.db.ignition_latest(ws).await.expect("saga")
            && ig.step == Some(step)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the saga never reached {step}");
}

fn create(env: &Env, slug: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "-o",
        "json",
        "tenants",
        "create",
        "--name",
        slug,
        "--slug",
        slug,
        "--region",
        "eu-west",
        "--onboarding",
        "sender_email=ada@acme.example",
        "--onboarding",
        "name=Ada",
        "--onboarding",
        "company_name=Acme",
        "--onboarding",
        "calendly_link_1=https://cal.example/ada",
        "--credential",
        r#"gmail={"clientId":"c","clientSecret":"s"}"#,
        "--credential",
        r#"openai={"apiKey":"sk-test"}"#,
    ];
    args.extend_from_slice(extra);
    env.command(&args).output().expect("genesis tenants create")
}

fn created_id(o: &std::process::Output) -> WorkspaceId {
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("created ").and_then(|r| r.split('(').nth(1)))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no id in {text}"));
    WorkspaceId::parse(id).expect("uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_control_plane_resumes_its_ignitions() {
    let scratch = Scratch::new("p").await;
    let (t, db_url, redis, set, disks) = (
        &scratch.t,
        &scratch.db_url,
        &scratch.redis,
        &scratch.set,
        &scratch.disks,
    );
    let (sim_port, cp_port) = (free_port(), free_port());
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let cp_url = format!("http://127.0.0.1:{cp_port}");
    let env = stack_env(db_url, redis, set, sim_port, cp_port, 2);
    // Creates take 1.7 to 3.7 s and boots 1 to 2.7 s: long enough to kill a saga mid-step.
    let _sim = env.spawn(&[
        "sim-cloud",
        "--listen",
        &format!("127.0.0.1:{sim_port}"),
        "--pace",
        "realistic",
        "--speed",
        "15",
        "--per-minute",
        "100000",
        "--per-hour",
        "1000000",
        "--sidecars",
        disks.to_str().expect("utf-8 path"),
    ]);
    wait_http(&format!("{sim_url}/v2/regions")).await;
    let mut cp = env.spawn(&["serve"]);
    wait_http(&format!("{cp_url}/healthz")).await;

    let mut killed = Vec::new();
    for (slug, step) in [
        ("killed_creating", IgnitionStep::DropletProvisioning),
        ("killed_handshaking", IgnitionStep::HandshakePending),
    ] {
        let ws = created_id(&create(&env, slug, &["--ignite"]));
        wait_step(t, ws, step).await;
        drop(cp); // SIGKILL, mid-step
        cp = env.spawn(&["serve"]);
        wait_http(&format!("{cp_url}/healthz")).await;
        killed.push(ws);
    }

    // The CLI follows a fresh ignition to the end.
    let o = create(&env, "followed", &["--wait"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(shown["status"], "ACTIVE", "{shown:#}");
    assert_eq!(shown["webhooks"].as_array().map(Vec::len), Some(1));

    let mut o = ClientOptions::new(&sim_url, "sim-token");
    o.per_minute = 100_000;
    o.per_hour = 1_000_000;
    let cloud = DigitalOcean::new(o).expect("client");
    for ws in killed {
        let mut finished = None;
        for _ in 0..600 {
            let ig = t.db.ignition_latest(ws).await.expect("saga").expect("one");
            if ig.phase.is_final() {
                finished = Some(ig);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ig = finished.expect("the resumed saga finished");
        assert_eq!(ig.phase, SagaPhase::Done, "{:?}", ig.error);
        let droplets = cloud
            .droplet_list_by_tag(&format!("ws-{}", ws.as_uuid()))
            .await
            .expect("list");
        assert_eq!(droplets.len(), 1, "exactly one droplet for {ws}");
    }
    drop(cp);
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_control_planes_reboot_each_zombie_exactly_once() {
    let scratch = Scratch::new("z").await;
    let (t, db_url, redis, set, disks) = (
        &scratch.t,
        &scratch.db_url,
        &scratch.redis,
        &scratch.set,
        &scratch.disks,
    );
    let (sim_port, cp1, cp2) = (free_port(), free_port(), free_port());
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let one = stack_env(db_url, redis, set, sim_port, cp1, 1);
    let two = stack_env(db_url, redis, set, sim_port, cp2, 1);
    let _sim = one.spawn(&[
        "sim-cloud",
        "--listen",
        &format!("127.0.0.1:{sim_port}"),
        "--per-minute",
        "100000",
        "--per-hour",
        "1000000",
        "--sidecars",
        disks.to_str().expect("utf-8 path"),
    ]);
    wait_http(&format!("{sim_url}/v2/regions")).await;
    // Two replicas on one database and one queue set, as behind a load balancer.
    let _a = one.spawn(&["serve"]);
    let _b = two.spawn(&["serve"]);
    wait_http(&format!("http://127.0.0.1:{cp1}/healthz")).await;
    wait_http(&format!("http://127.0.0.1:{cp2}/healthz")).await;

    let mut droplets = Vec::new();
    for slug in ["zombie_a", "zombie_b", "steady_c"] {
        let ws = created_id(&create(&one, slug, &["--wait"]));
        let d = t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
        droplets.push(d);
    }
    let http = reqwest::Client::new();
    for d in &droplets[..2] {
        let r = http
            .post(format!(
                "{sim_url}/sim/v1/droplets/{}/go-dark",
                d.provider_id.expect("provider")
            ))
            .send()
            .await
            .expect("go-dark");
        assert_eq!(r.status().as_u16(), 204);
    }
    // Both zombies are rebooted and come back.
    let reboots_of = |d: &genesis_store::Droplet, audit: &[genesis_store::AuditEntry]| {
        audit
            .iter()
            .filter(|a| {
                a.subject.as_deref() == Some(&d.id.to_string()) && a.details["to"] == "REBOOTING"
            })
            .count()
    };
    let mut back = false;
    for _ in 0..600 {
        let audit =
            t.db.audit_list(None, Some("DROPLET_STATE_CHANGED"), 1_000)
                .await
                .expect("audit");
        let mut done = 0;
        for d in &droplets[..2] {
            let state = t.db.droplet_get(d.id).await.expect("droplet").state;
            if reboots_of(d, &audit) > 0 && state == genesis_core::DropletState::ActiveHealthy {
                done += 1;
            }
        }
        if done == 2 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "both zombies rebooted and back");
    // Let both detectors run a few more passes, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let audit =
        t.db.audit_list(None, Some("DROPLET_STATE_CHANGED"), 1_000)
            .await
            .expect("audit");
    for d in &droplets[..2] {
        assert_eq!(reboots_of(d, &audit), 1, "{}: exactly one reboot", d.id);
    }
    assert_eq!(
        reboots_of(&droplets[2], &audit),
        0,
        "the steady droplet was left alone"
    );
    // Both replicas' watchdogs watched throughout (ignitions, reboots): heartbeats taken
    // before a deploy or while n8n restarted never read as missing workflows.
    let noise =
        t.db.audit_list(None, Some("DRIFT_DETECTED"), 100)
            .await
            .expect("audit");
    assert!(noise.is_empty(), "no drift was made up: {noise:#?}");
    scratch.cleanup().await;
}
