//! `genesis bench sign-in-flood`: what a flood of bad God Mode sign-ins costs a running
//! `genesis serve` (issue 19: under 256 concurrent bad sign-ins, `serve` stays under 300 MB
//! RSS and other API calls keep p99 < 50 ms).
//!
//! A real `genesis serve` process is started over a scratch database (so its RSS is its
//! own, not the load generator's). An API probe (`GET /api/v1/workspaces`, one call every
//! 20 ms) runs first alone, as the baseline, then under the flood: `--concurrency` clients
//! that each post sign-ins with made-up addresses back to back, each from a new source
//! address (`X-Forwarded-For`, the server trusting loopback as its proxy): a botnet, the
//! worst case, which the per-source limit alone would not stop.
//!
//! The same is then done against a second `serve` with the guard's limits lifted (as many
//! password checks at once as clients, an unbounded queue, no per-source limit): close to
//! the behaviour before issue 19 (which also ran them on tokio's blocking pool at normal
//! priority), measured in the same run as the figures to compare against.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use genesis_store::testing::TestDb;
use serde_json::json;

use super::CliError;
use super::bench_ignition::round;

const TOKEN: &str = "bench-sign-in-flood-token";
/// The targets of the issue.
const MAX_RSS_MB: f64 = 300.0;
const MAX_API_P99_MS: f64 = 50.0;

fn runtime(e: impl Into<anyhow::Error>) -> CliError {
    CliError::Runtime(e.into())
}

/// Runs the benchmark.
pub async fn run(concurrency: usize, seconds: u64) -> Result<(), CliError> {
    if concurrency == 0 || seconds == 0 {
        return Err(CliError::Usage(
            "--concurrency and --seconds must be positive".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, concurrency, seconds).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(t: &TestDb, concurrency: usize, seconds: u64) -> Result<(), CliError> {
    let hash =
        genesis_control::credentials::hash_password("bench operator password").map_err(runtime)?;
    t.db.operator_create("ops@bench.local", &hash, "bench")
        .await?;
    let admin = std::env::var("DATABASE_URL")
        .map_err(|_| CliError::Usage("DATABASE_URL must point at PostgreSQL".into()))?;
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{}", t.name),
        None => return Err(CliError::Usage("DATABASE_URL has no database part".into())),
    };
    let mut failures = Vec::new();
    for guarded in [true, false] {
        let figures = measure(&url, guarded, concurrency, seconds).await?;
        if guarded {
            if figures.peak_rss_mb >= MAX_RSS_MB {
                failures.push(format!("peak RSS {:.0} MB", figures.peak_rss_mb));
            }
            if figures.flood_p99_ms >= MAX_API_P99_MS {
                failures.push(format!(
                    "API p99 {:.1} ms under the flood",
                    figures.flood_p99_ms
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::CheckFailed(failures.join("; ")))
    }
}

struct Figures {
    peak_rss_mb: f64,
    flood_p99_ms: f64,
}

/// A `genesis serve` child, killed when dropped.
struct Server {
    child: tokio::process::Child,
    config: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.config);
    }
}

async fn start_server(
    url: &str,
    guarded: bool,
    concurrency: usize,
) -> Result<(Server, String), CliError> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(runtime)?;
        l.local_addr().map_err(runtime)?.port()
    };
    let limits = if guarded {
        String::new()
    } else {
        format!(
            "sign_ins_per_minute = 100000000\npassword_checks = {concurrency}\n\
             sign_in_queue = 100000\nrefusal_delay_ms = 0\n"
        )
    };
    let config = std::env::temp_dir().join(format!(
        "genesis-bench-sign-in-{}-{guarded}.toml",
        std::process::id()
    ));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\napi_token = \"{TOKEN}\"\n\
             trusted_proxies = [\"127.0.0.1\"]\n[god_mode]\nsecure_cookies = false\n{limits}"
        ),
    )
    .map_err(runtime)?;
    let exe = std::env::current_exe().map_err(runtime)?;
    let child = tokio::process::Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .env("GENESIS_DATABASE__URL", url)
        .env_remove("GENESIS_REDIS__URL")
        .env("GENESIS_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(runtime)?;
    let server = Server { child, config };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok((server, base));
        }
        if Instant::now() > deadline {
            return Err(runtime(anyhow::anyhow!("genesis serve did not start")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident memory of `pid`, MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Calls `GET /api/v1/workspaces` every 20 ms for `for_`; the latencies, ms.
async fn probe(http: &reqwest::Client, base: &str, for_: Duration) -> Result<Vec<f64>, CliError> {
    let end = Instant::now() + for_;
    let mut ms = Vec::new();
    while Instant::now() < end {
        let started = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/workspaces"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .map_err(runtime)?;
        if !r.status().is_success() {
            return Err(runtime(anyhow::anyhow!("API probe: HTTP {}", r.status())));
        }
        r.bytes().await.map_err(runtime)?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

fn pct(ms: &[f64], p: f64) -> f64 {
    if ms.is_empty() {
        return 0.0;
    }
    ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1]
}

#[derive(Default)]
struct Outcomes {
    refused: AtomicU64,
    throttled: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
    errors: AtomicU64,
}

async fn measure(
    url: &str,
    guarded: bool,
    concurrency: usize,
    seconds: u64,
) -> Result<Figures, CliError> {
    let label = if guarded { "guarded" } else { "limits lifted" };
    eprintln!("{label}: starting genesis serve");
    let (server, base) = start_server(url, guarded, concurrency).await?;
    let pid = server.child.id().unwrap_or_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(runtime)?;
    // Warm-up, then the quiet baseline.
    probe(&http, &base, Duration::from_secs(1)).await?;
    let idle_rss = rss_mb(pid);
    let quiet = probe(&http, &base, Duration::from_secs(seconds.min(10))).await?;

    eprintln!("{label}: {concurrency} clients signing in badly for {seconds} s");
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Outcomes::default());
    let seq = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, base, stop, outcomes, seq) = (
            http.clone(),
            base.clone(),
            stop.clone(),
            outcomes.clone(),
            seq.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let source = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                let body = format!("email=nobody{n}%40flood.test&password=guess{n}");
                let r = http
                    .post(format!("{base}/god/sign-in"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-forwarded-for", source)
                    .body(body)
                    .send()
                    .await;
                let counter = match r.as_ref().map(|r| r.status().as_u16()) {
                    Ok(401) => &outcomes.refused,
                    Ok(429) => &outcomes.throttled,
                    Ok(503) => &outcomes.busy,
                    Ok(_) => &outcomes.other,
                    Err(_) => &outcomes.errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                }
            }
        }));
    }
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_mb(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let flood_started = Instant::now();
    let flood = probe(&http, &base, Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = flood_started.elapsed().as_secs_f64();
    for c in clients {
        let _ = c.await;
    }
    let peak = sampler.await.map_err(runtime)?.max(rss_mb(pid));
    let after = rss_mb(pid);
    let flood = flood?;
    let refused = outcomes.refused.load(Ordering::Relaxed);
    let (quiet_p99, flood_p99) = (pct(&quiet, 0.99), pct(&flood, 0.99));
    outln!(
        "{}",
        json!({
            "bench": "sign_in_flood",
            "server": if guarded { "guarded" } else { "limits_lifted" },
            "concurrency": concurrency,
            "seconds": seconds,
            "rss_idle_mb": round(idle_rss),
            "rss_peak_mb": round(peak),
            "rss_after_mb": round(after),
            "api_quiet_p50_ms": round(pct(&quiet, 0.5)),
            "api_quiet_p99_ms": round(quiet_p99),
            "api_flood_p50_ms": round(pct(&flood, 0.5)),
            "api_flood_p99_ms": round(flood_p99),
            "api_flood_max_ms": round(pct(&flood, 1.0)),
            "api_p99_over_quiet": round(flood_p99 / quiet_p99.max(0.01)),
            "sign_ins_checked_per_s": round(refused as f64 / elapsed),
            "sign_ins_refused": refused,
            "sign_ins_throttled": outcomes.throttled.load(Ordering::Relaxed),
            "sign_ins_busy": outcomes.busy.load(Ordering::Relaxed),
            "sign_ins_other": outcomes.other.load(Ordering::Relaxed),
            "sign_ins_failed_requests": outcomes.errors.load(Ordering::Relaxed),
            "target": if guarded { json!(format!("RSS < {MAX_RSS_MB} MB, API p99 < {MAX_API_P99_MS} ms")) } else { json!(null) },
            "ok": !guarded || (peak < MAX_RSS_MB && flood_p99 < MAX_API_P99_MS),
        })
    );
    drop(server);
    Ok(Figures {
        peak_rss_mb: peak,
        flood_p99_ms: flood_p99,
    })
}
