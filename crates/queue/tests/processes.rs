//! The queue across OS processes (`genesis-queue-worker`): caps hold across four worker
//! processes, a job whose worker is killed with SIGKILL runs again and completes once, and a
//! Redis restart (AOF on) loses no job.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use genesis_queue::{Bus, GovernorConfig, QueueConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WORKER: &str = env!("CARGO_BIN_EXE_genesis-queue-worker");

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL (make test starts Redis and sets it)")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

async fn spawn_worker(url: &str, set: &str, queues: &str, record: &str, extra: &[&str]) -> Child {
    let mut child = Command::new(WORKER)
        .args([
            "--redis", url, "--set", set, "--queues", queues, "--record", record,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("worker starts")
        .expect("read");
    assert!(
        first.is_some_and(|l| l.starts_with("ready")),
        "worker said ready"
    );
    child
}

async fn hgetall(url: &str, key: &str) -> HashMap<String, i64> {
    let client = redis::Client::open(url).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("hgetall")
}

async fn wait_completed(bus: &Bus, queues: &[&str], want: u64, limit: Duration) {
    let started = Instant::now();
    loop {
        let mut done = 0;
        for q in queues {
            if let Ok(c) = bus.counts(q).await {
                done += c.completed;
            }
        }
        if done >= want {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{done}/{want} completed in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cleanup(url: &str, bus: &Bus, record: &str) {
    let _ = bus.destroy().await;
    if let Ok(client) = redis::Client::open(url)
        && let Ok(mut c) = client.get_multiplexed_async_connection().await
    {
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(format!("{record}:inflight"))
            .arg(format!("{record}:max"))
            .arg(format!("{record}:done"))
            .query_async(&mut c)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_never_exceed_the_caps() {
    let url = redis_url();
    let (set, record) = (unique("p"), unique("genesis-test-record:"));
    let spec = "a:1:5,b:2:8";
    let queues = vec![QueueConfig::new("a", 1, 5), QueueConfig::new("b", 2, 8)];
    // The rate limit is set high so that the concurrency caps are what binds.
    let cfg = GovernorConfig {
        max_concurrency: 10,
        rate_max: 100_000,
        ..GovernorConfig::default()
    };
    let bus = Bus::connect(&url, &set, queues, cfg).await.expect("bus");
    for i in 0..120 {
        let q = if i % 2 == 0 { "a" } else { "b" };
        bus.add(q, &format!("j{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
    }
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(
            spawn_worker(
                &url,
                &set,
                spec,
                &record,
                &[
                    "--capacity",
                    "50",
                    "--job-ms",
                    "30",
                    "--max-concurrency",
                    "10",
                    "--rate-max",
                    "100000",
                ],
            )
            .await,
        );
    }
    wait_completed(&bus, &["a", "b"], 120, Duration::from_secs(60)).await;
    for mut w in workers {
        let _ = w.kill().await;
    }
    let max = hgetall(&url, &format!("{record}:max")).await;
    assert!(
        max.get("*").copied().unwrap_or(0) <= 10,
        "global cap: {max:?}"
    );
    assert!(max.get("a").copied().unwrap_or(0) <= 5, "queue a: {max:?}");
    assert!(max.get("b").copied().unwrap_or(0) <= 8, "queue b: {max:?}");
    assert_eq!(
        max.get("*").copied().unwrap_or(0),
        10,
        "the cap was reached: {max:?}"
    );
    let done = hgetall(&url, &format!("{record}:done")).await;
    assert_eq!(done.len(), 120);
    assert!(done.values().all(|n| *n == 1), "each job ran once");
    cleanup(&url, &bus, &record).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_runs_again_and_completes_once() {
    let url = redis_url();
    let (set, record) = (unique("k"), unique("genesis-test-record:"));
    let cfg = GovernorConfig {
        lease: Duration::from_millis(600),
        ..GovernorConfig::default()
    };
    let bus = Bus::connect(&url, &set, vec![QueueConfig::new("q", 1, 10)], cfg)
        .await
        .expect("bus");
    bus.add("q", "victim", "{}", Duration::ZERO)
        .await
        .expect("add");
    let lease = ["--lease-ms", "600", "--job-ms", "5000"];
    let mut first = spawn_worker(&url, &set, "q:1:10", &record, &lease).await;
    let started = Instant::now();
    while hgetall(&url, &format!("{record}:inflight"))
        .await
        .get("q")
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.start_kill().expect("SIGKILL");
    let _ = first.wait().await;
    let mut second = spawn_worker(
        &url,
        &set,
        "q:1:10",
        &record,
        &["--lease-ms", "600", "--job-ms", "10"],
    )
    .await;
    wait_completed(&bus, &["q"], 1, Duration::from_secs(20)).await;
    let _ = second.kill().await;
    let c = bus.counts("q").await.expect("counts");
    assert_eq!((c.completed, c.stalled, c.dead), (1, 1, 0));
    let done = hgetall(&url, &format!("{record}:done")).await;
    assert_eq!(done.get("victim"), Some(&1), "completed once: {done:?}");
    cleanup(&url, &bus, &record).await;
}

struct TempRedis {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl TempRedis {
    fn start(dir: &std::path::Path, port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (make test installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// SHUTDOWN (which flushes the AOF), as an orderly restart does.
    fn stop(mut self) -> std::path::PathBuf {
        let _ = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown"])
            .status();
        let _ = self.child.wait();
        self.dir.clone()
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_job() {
    let dir = std::env::temp_dir().join(unique("genesis-redis-"));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let redis = TempRedis::start(&dir, port);
    let url = format!("redis://127.0.0.1:{port}");
    let (set, record) = (unique("r"), unique("genesis-test-record:"));
    let cfg = GovernorConfig {
        lease: Duration::from_millis(800),
        ..GovernorConfig::default()
    };
    let bus = Bus::connect(&url, &set, vec![QueueConfig::new("q", 1, 20)], cfg)
        .await
        .expect("bus");
    for i in 0..400 {
        bus.add("q", &format!("j{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
    }
    let extra = ["--lease-ms", "800", "--job-ms", "20"];
    let mut a = spawn_worker(&url, &set, "q:1:20", &record, &extra).await;
    let mut b = spawn_worker(&url, &set, "q:1:20", &record, &extra).await;
    // Let some jobs finish, then restart Redis mid-run.
    wait_completed(&bus, &["q"], 50, Duration::from_secs(30)).await;
    let dir = redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _redis = TempRedis::start(&dir, port);
    wait_completed(&bus, &["q"], 400, Duration::from_secs(60)).await;
    let _ = a.kill().await;
    let _ = b.kill().await;
    let done = hgetall(&url, &format!("{record}:done")).await;
    assert_eq!(done.len(), 400, "every job ran");
    let c = bus.counts("q").await.expect("counts");
    assert_eq!((c.completed, c.waiting, c.dead), (400, 0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
