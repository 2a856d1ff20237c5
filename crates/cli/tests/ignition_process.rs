//! The ignition with real processes: `genesis sim-cloud --sidecars` (droplets boot the real
//! sidecar and a fake n8n) and `genesis serve`, killed with SIGKILL while a saga waits for a
//! droplet to be created and while another waits for its handshake, then restarted: both
//! sagas resume and finish with exactly one droplet each. `genesis tenants create --wait`
//! follows a third ignition to ACTIVE. Three replicas behind Caddy, on a Redis Cluster, run
//! 100 ignitions while one replica is killed and a Redis primary fails over, then an
//! operator signed in on one replica starts a rollout from another, watches it through the
//! load balancer, and the replica conducting it is killed.

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
    /// Sets (or replaces) one variable.
    fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_owned(), value.to_owned()));
    }

    /// Spawns with stderr (the log) written to `log`.
    fn spawn_logged(&self, args: &[&str], log: &std::path::Path) -> Proc {
        let file = std::fs::File::create(log).expect("log file");
        Proc(
            self.command(args)
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("spawn genesis"),
        )
    }

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

/// The simulated cloud on `port`, with high rate limits, booting real sidecars; instant
/// unless `pace` says otherwise.
async fn sim(env: &Env, port: u16, disks: &std::path::Path, pace: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "sim-cloud",
        "--listen",
        &listen,
        "--per-minute",
        "100000",
        "--per-hour",
        "1000000",
        "--sidecars",
        disks.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(pace);
    let sim = env.spawn(&args);
    wait_http(&format!("http://127.0.0.1:{port}/v2/regions")).await;
    sim
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
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    created_id_even_if_ignite_failed(o)
}

/// The id `tenants create` printed, whether or not its ignition was accepted.
fn created_id_even_if_ignite_failed(o: &std::process::Output) -> WorkspaceId {
    let text = String::from_utf8_lossy(&o.stderr);
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
    let _sim = sim(
        &env,
        sim_port,
        disks,
        &["--pace", "realistic", "--speed", "15"],
    )
    .await;
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

    // Prometheus sees the queues and the cloud's budget (issue 21).
    let scrape = reqwest::get(format!("{cp_url}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let line = |prefix: &str| {
        scrape
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        line(r#"genesis_queue_jobs_total{queue="ignition",outcome="completed"}"#)
            .is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
    assert!(
        line(r#"genesis_queue_jobs{queue="ignition",status="waiting"}"#).is_some(),
        "{scrape}"
    );
    assert!(
        line("genesis_cloud_budget_remaining").is_some_and(|n| n > 0.0),
        "{scrape}"
    );
    // The governor reports its limits (queue latencies need 16 jobs to be sampled: the
    // queue's own tests check them).
    assert!(
        line(r#"genesis_governor_slots{limit="concurrency"}"#).is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
    assert!(
        line(r#"genesis_governor_slots_used{limit="rate"}"#).is_some(),
        "{scrape}"
    );

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
    let _sim = sim(&one, sim_port, disks, &[]).await;
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
            t.db.audit_droplet_transitions(None, 1_000)
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
        t.db.audit_droplet_transitions(None, 1_000)
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

/// Caddy (Debian's) as the load balancer in front of `backends`, on `port`.
fn load_balancer(dir: &std::path::Path, port: u16, backends: &[u16]) -> Proc {
    let upstreams: Vec<String> = backends.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let caddyfile = format!(
        "{{\n  admin off\n  auto_https off\n}}\nhttp://127.0.0.1:{port} {{\n  bind 127.0.0.1\n  \
         reverse_proxy {} {{\n    lb_policy round_robin\n    lb_try_duration 5s\n    \
         lb_try_interval 100ms\n    fail_duration 10s\n    health_uri /healthz\n    \
         health_interval 1s\n    flush_interval -1\n  }}\n}}\n",
        upstreams.join(" ")
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("Caddyfile");
    Proc(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("caddy.log")).expect("log"))
            .spawn()
            .expect("caddy (apt-get install caddy)"),
    )
}

/// One reconciler pass, as a replica logged it.
#[derive(Debug, Clone)]
struct Pass {
    replica: usize,
    reconciler: String,
    part: String,
    started_us: i64,
    ended_us: i64,
}

fn passes_in(log: &std::path::Path, replica: usize) -> Vec<Pass> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "genesis_passes")
        .filter_map(|v| {
            let f = &v["fields"];
            Some(Pass {
                replica,
                reconciler: f["reconciler"].as_str()?.to_owned(),
                part: f["part"].as_str()?.to_owned(),
                started_us: f["started_us"].as_i64()?,
                ended_us: f["ended_us"].as_i64()?,
            })
        })
        .collect()
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Makes an operator with `genesis admin create-operator`, signs in on the first replica
/// and reads the rollouts page's CSRF token on the second: (cookie, csrf).
async fn god_session(env: &Env, http: &reqwest::Client, ports: &[u16]) -> (String, String) {
    use std::io::Write;
    let mut make = env
        .command(&[
            "admin",
            "create-operator",
            "--email",
            "ops@genesis.test",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("genesis admin create-operator");
    make.stdin
        .take()
        .expect("stdin")
        .write_all(b"operator password\n")
        .expect("password");
    let made = tokio::task::block_in_place(|| make.wait_with_output()).expect("wait");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let r = http
        .post(format!("http://127.0.0.1:{}/god/sign-in", ports[0]))
        .form(&[
            ("email", "ops@genesis.test"),
            ("password", "operator password"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303, "signed in");
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let page = http
        .get(format!("http://127.0.0.1:{}/god/rollouts", ports[1]))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200, "the session holds on another replica");
    let page = page.text().await.expect("html");
    let at = page.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
    let csrf = page[at..].split('"').next().expect("token").to_owned();
    (cookie, csrf)
}

/// Follows a rollout's server-sent events at `url` until `end`, reconnecting as a browser's
/// `EventSource` does when the replica serving the stream goes away: (every (event, data)
/// pair, reconnections).
async fn watch_rollout(
    http: reqwest::Client,
    url: String,
    cookie: String,
) -> (Vec<(String, String)>, usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(400);
    let mut events = Vec::new();
    let mut reconnects = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never ended: {events:?}"
        );
        let resp = http
            .get(&url)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await;
        let mut resp = match resp {
            Ok(r) if r.status() == 200 => r,
            _ => {
                reconnects += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut buf = String::new();
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if buf.contains("event: end") {
                break;
            }
        }
        // Whole events only: a block cut by a broken connection is dropped.
        let complete = if buf.contains("event: end") {
            buf.as_str()
        } else {
            buf.rfind("\n\n").map_or("", |at| &buf[..at])
        };
        for block in complete.split("\n\n") {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if let Some(e) = event {
                events.push((e, data));
            }
        }
        if events.last().is_some_and(|(e, _)| e == "end") {
            return (events, reconnects);
        }
        reconnects += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_a_killed_replica_and_a_redis_failover() {
    const TENANTS: usize = 100;
    let cluster = genesis_queue::testing::TestCluster::start();
    let mut scratch = Scratch::new("r").await;
    scratch.redis = cluster.url.clone();
    let (t, db_url, set, disks) = (&scratch.t, &scratch.db_url, &scratch.set, &scratch.disks);
    std::fs::create_dir_all(disks).expect("dir");
    let sim_port = free_port();
    let lb_port = free_port();
    let mut ports = Vec::new();
    while ports.len() < 3 {
        let p = free_port();
        if p != sim_port && p != lb_port && !ports.contains(&p) {
            ports.push(p);
        }
    }
    let lb_url = format!("http://127.0.0.1:{lb_port}");
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let envs: Vec<Env> = ports
        .iter()
        .map(|p| {
            let mut e = stack_env(db_url, &cluster.url, set, sim_port, *p, 5);
            // Sidecars and the CLI reach the control plane through the load balancer.
            e.set("GENESIS_IGNITION__DASHBOARD_URL", &lb_url);
            e.set("GENESIS_API_URL", &lb_url);
            e.set("GENESIS_LOG", "warn,genesis_passes=debug");
            e.set("GENESIS_LOG__FORMAT", "json");
            // Caddy is the peer of every request: trust its X-Forwarded-For, or every
            // droplet's handshake counts against one address.
            e.set("GENESIS_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1\"]");
            e
        })
        .collect();
    let _sim = sim(&envs[0], sim_port, disks, &[]).await;
    let logs: Vec<std::path::PathBuf> = (0..3)
        .map(|i| disks.join(format!("replica-{i}.log")))
        .collect();
    let mut replicas: Vec<Option<Proc>> = envs
        .iter()
        .zip(&logs)
        .map(|(e, log)| Some(e.spawn_logged(&["serve"], log)))
        .collect();
    for p in &ports {
        wait_http(&format!("http://127.0.0.1:{p}/healthz")).await;
    }
    let _lb = load_balancer(disks, lb_port, &ports);
    wait_http(&format!("{lb_url}/healthz")).await;

    // 100 ignitions through the load balancer; a third of the way in one replica is killed,
    // two thirds in the Redis primary holding the queue set.
    let mut tenants = Vec::new();
    // (replica, when) for every control plane killed.
    let mut kills: Vec<(usize, i64)> = Vec::new();
    let mut victim = 0;
    let queue_prefix = format!("genesis:{{gov:{set}}}");
    let redis_primary = cluster.primary_of(&queue_prefix).await;
    for i in 0..TENANTS {
        if i == TENANTS / 3 {
            // The victim is a leader: the replica whose log shows the latest pass.
            let mut latest = None;
            for _ in 0..100 {
                latest = logs
                    .iter()
                    .enumerate()
                    .flat_map(|(r, l)| passes_in(l, r))
                    .max_by_key(|p| p.ended_us)
                    .map(|p| p.replica);
                if latest.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            victim = latest.expect("some replica leads something");
            replicas[victim] = None; // SIGKILL
            kills.push((victim, now_us()));
        }
        if i == 2 * TENANTS / 3 {
            cluster.kill(redis_primary);
        }
        let env = &envs[1];
        let slug = format!("tenant_{i}");
        // A request in flight on a connection to the replica just killed gets a 502 from
        // the load balancer; a user looks for the tenant and creates it again if missing.
        let mut created = None;
        for _ in 0..10 {
            let o = tokio::task::block_in_place(|| create(env, &slug, &["--ignite"]));
            if String::from_utf8_lossy(&o.stderr).contains("created ") {
                created = Some((created_id_even_if_ignite_failed(&o), o.status.success()));
                break;
            }
            let parsed = genesis_core::Slug::parse(&slug).expect("slug");
            if let Ok(w) = t.db.workspace_get_by_slug(&parsed).await {
                created = Some((w.id, false));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (ws, mut ok) = created.unwrap_or_else(|| panic!("{slug} was never created"));
        // What a user does after a 503 (Redis failing over): ignite again, until it takes.
        for _ in 0..60 {
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let id = ws.to_string();
            let again = tokio::task::block_in_place(|| {
                env.command(&[
                    "tenants",
                    "ignite",
                    &id,
                    "--credential",
                    r#"gmail={"clientId":"c","clientSecret":"s"}"#,
                    "--credential",
                    r#"openai={"apiKey":"sk-test"}"#,
                ])
                .output()
                .expect("genesis tenants ignite")
            });
            ok = again.status.success();
        }
        assert!(ok, "{slug} was ignited in the end");
        tenants.push(ws);
    }

    // Every saga ends; each tenant has one droplet or, rolled back, none.
    let mut o = ClientOptions::new(&sim_url, "sim-token");
    o.per_minute = 100_000;
    o.per_hour = 1_000_000;
    let cloud = DigitalOcean::new(o).expect("client");
    let deadline = std::time::Instant::now() + Duration::from_secs(400);
    let mut done = 0;
    for ws in &tenants {
        let ig = loop {
            let ig = t.db.ignition_latest(*ws).await.expect("saga").expect("one");
            if ig.phase.is_final() {
                break ig;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ws}'s saga never ended: {ig:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let droplets = cloud
            .droplet_list_by_tag(&format!("ws-{}", ws.as_uuid()))
            .await
            .expect("list");
        match ig.phase {
            SagaPhase::Done => {
                done += 1;
                assert_eq!(droplets.len(), 1, "exactly one droplet for {ws}");
                let w = t.db.workspace_get(*ws).await.expect("workspace");
                assert_eq!(w.status, genesis_core::WorkspaceStatus::Active, "{ws}");
            }
            _ => assert!(
                droplets.is_empty(),
                "{ws} rolled back and left {droplets:?}"
            ),
        }
    }
    let fleet = cloud.droplet_list_by_tag("genesis").await.expect("list");
    assert_eq!(fleet.len(), done, "no orphan droplet");
    assert!(
        done >= TENANTS * 9 / 10,
        "{done} of {TENANTS} ignitions finished"
    );

    // The killed replica comes back, as its supervisor would restart it, under a new log.
    let mut logs = logs;
    logs.push(disks.join("replica-restarted.log"));
    replicas.push(Some(envs[victim].spawn_logged(&["serve"], &logs[3])));
    wait_http(&format!("http://127.0.0.1:{}/healthz", ports[victim])).await;

    // An operator signs in on one replica, reads the rollouts page on a second and starts a
    // rollout from it on the third: the session and its CSRF token live in PostgreSQL.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (cookie, csrf) = god_session(&envs[0], &http, &ports).await;
    let r = http
        .post(format!("http://127.0.0.1:{}/god/rollouts", ports[2]))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("scenario", "bug_fix"),
            ("batch_size", "5"),
            ("pause_between_s", "0"),
        ])
        .send()
        .await
        .expect("start rollout");
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let id = uuid::Uuid::parse_str(
        r.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("ascii")
            .trim_start_matches("/god/rollouts/"),
    )
    .expect("uuid");

    // The operator watches it live through the load balancer, as the page's EventSource does.
    let watching = tokio::spawn(watch_rollout(
        http.clone(),
        format!("{lb_url}/god/api/rollouts/{id}/events"),
        cookie.clone(),
    ));

    // Once its first targets are done, the replica conducting it is killed.
    let conductor = loop {
        let tally = t.db.rollout_batches(id).await.expect("batches");
        if tally.iter().map(|b| b.done).sum::<i64>() > 0 {
            let latest = logs
                .iter()
                .enumerate()
                .flat_map(|(r, l)| passes_in(l, r))
                .filter(|p| p.reconciler == "rollouts")
                .max_by_key(|p| p.ended_us)
                .map(|p| p.replica);
            if let Some(r) = latest {
                break r;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        t.db.rollout_get(id).await.expect("rollout").status.code(),
        "RUNNING",
        "the rollout was still running when its conductor was killed"
    );
    replicas[conductor] = None; // SIGKILL
    kills.push((conductor, now_us()));

    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let status = t.db.rollout_get(id).await.expect("rollout").status;
        if status.code() != "RUNNING" {
            assert_eq!(status.code(), "COMPLETED", "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rollout never ended"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tally = t.db.rollout_batches(id).await.expect("batches");
    let settled: i64 = tally.iter().map(|b| b.done).sum();
    let open: i64 = tally
        .iter()
        .map(|b| b.pending + b.failed + b.deferred + b.cancelled)
        .sum();
    assert_eq!(
        settled as usize, done,
        "every target settled, DONE: {tally:?}"
    );
    assert_eq!(open, 0, "{tally:?}");
    // Through the API too, on whichever replica answers.
    let r: serde_json::Value = http
        .get(format!("{lb_url}/api/v1/rollouts/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("rollout")
        .json()
        .await
        .expect("json");
    assert_eq!(r["status"], "COMPLETED", "{r:#}");

    // The stream outlived its replica: it reconnected if it had to, and saw the end.
    let (events, reconnects) = watching.await.expect("join");
    assert_eq!(
        events.last().map(|e| e.0.as_str()),
        Some("end"),
        "{events:?}"
    );
    let last: serde_json::Value = events
        .iter()
        .rev()
        .find(|(e, _)| e == "progress")
        .map(|(_, d)| serde_json::from_str(d).expect("json"))
        .expect("a progress event");
    assert_eq!(last["status"], "COMPLETED", "{last:#}");
    assert_eq!(last["totals"]["done"], done as i64, "{last:#}");

    // No two replicas ran one reconciler's passes at the same time, and a reconciler a
    // killed replica led moved to another within its interval.
    let mut passes: Vec<Pass> = logs
        .iter()
        .enumerate()
        .flat_map(|(i, l)| passes_in(l, i))
        .collect();
    assert!(!passes.is_empty(), "the replicas logged their passes");
    passes.sort_by_key(|p| (p.reconciler.clone(), p.part.clone(), p.started_us));
    for w in passes.windows(2) {
        if w[0].reconciler == w[1].reconciler && w[0].replica != w[1].replica {
            assert!(
                w[1].started_us >= w[0].ended_us,
                "{} ran on replicas {} and {} at once: {w:?}",
                w[0].reconciler,
                w[0].replica,
                w[1].replica
            );
        }
    }
    let statuses = t.db.reconciler_statuses().await.expect("statuses");
    let mut handovers = Vec::new();
    for (victim, killed_at) in &kills {
        let (victim, killed_at) = (*victim, *killed_at);
        for s in &statuses {
            let led_by_killed = passes
                .iter()
                .any(|p| p.reconciler == s.name && p.replica == victim && p.started_us < killed_at);
            if !led_by_killed {
                continue;
            }
            let every_us = s.status["every_ms"].as_i64().unwrap_or(0) * 1_000;
            if killed_at + every_us + 1_000_000 > now_us() {
                continue; // its interval outlasts the test
            }
            // The restarted replica is another process, not the one killed.
            let next = passes
                .iter()
                .filter(|p| {
                    p.reconciler == s.name && p.replica != victim && p.started_us > killed_at
                })
                .map(|p| p.started_us)
                .min()
                .unwrap_or_else(|| panic!("{} never moved off killed replica {victim}", s.name));
            let after_s = (next - killed_at) as f64 / 1e6;
            handovers.push((victim, s.name.clone(), after_s));
            // Within one interval, plus a second of slack for the pass's own start.
            assert!(
                next - killed_at <= every_us + 1_000_000,
                "{} moved after {after_s} s (every {} s)",
                s.name,
                every_us as f64 / 1e6
            );
        }
    }
    assert!(
        handovers.iter().any(|(v, _, _)| *v == kills[0].0),
        "the replica killed during the ignitions led something"
    );
    assert!(
        handovers
            .iter()
            .any(|(v, name, _)| *v == conductor && name == "rollouts"),
        "the rollout moved off its killed conductor: {handovers:?}"
    );
    eprintln!(
        "leader hand-overs after the kills (replica, reconciler, s): {handovers:?}; \
         {done}/{TENANTS} ignitions done; the event stream reconnected {reconnects} times"
    );
    drop(replicas);
    scratch.cleanup().await;
}
