//! `genesis bench god-mode`: how long God Mode's fleet pages take to serve at fleet scale
//! (issue 9: fleet overview and heatmap with 15,000 droplets, p99 under 300 ms; issue 21:
//! every page, the filtered heatmap, search, the audit log and a tenant's page too), and
//! how much they weigh, plain and gzipped.
//!
//! A scratch database is seeded with N workspaces over every region and tier, one droplet
//! each in a production-like mix of states; a control plane serves it on loopback; an
//! operator signs in over HTTP like a browser. Each page is then fetched `--requests` times
//! in a row (after a few warm-up requests), timing each from the request to the last byte
//! of the body. The sign-in page, which reads nothing from the database, is fetched the same
//! way as the baseline: the pages' figures are also given as a ratio to it, which carries
//! across machines better than milliseconds do.

use std::time::{Duration, Instant};

use genesis_store::RegionalStore;
use genesis_store::testing::TestDb;
use serde_json::json;

use super::CliError;
use super::bench_heartbeats::sidecar_facing_state;
use super::bench_ignition::{round, verdict};

const EMAIL: &str = "bench@genesis.local";
const PASSWORD: &str = "bench operator password";

/// The p99 server time the issue asks of the overview and the heatmap.
const TARGET_P99_MS: f64 = 300.0;

/// Pages measured, with whether the target applies to them (every page but the
/// baseline); a tenant's page is added once a seeded slug is known.
const PAGES: [(&str, bool); 13] = [
    ("/god/sign-in", false),
    ("/god", true),
    ("/god/heatmap", true),
    ("/god/heatmap?state=ACTIVE_HEALTHY&tier=standard", true),
    ("/god/regions", true),
    ("/god/alerts", true),
    ("/god/metrics", true),
    ("/god/metrics?hours=720", true),
    ("/god/rollouts", true),
    ("/god/reconcilers", true),
    ("/god/audit", true),
    ("/god/search?q=gm_", true),
    ("/god/api/fleet", true),
];

/// Runs the benchmark.
pub async fn run(droplets: usize, requests: usize) -> Result<(), CliError> {
    if droplets == 0 || requests < 10 {
        return Err(CliError::Usage(
            "--droplets must be positive and --requests at least 10".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, droplets, requests).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

fn runtime(e: impl Into<anyhow::Error>) -> CliError {
    CliError::Runtime(e.into())
}

async fn run_on(t: &TestDb, droplets: usize, requests: usize) -> Result<(), CliError> {
    eprintln!("seeding {droplets} droplets");
    let seeded = Instant::now();
    t.db.bench_fleet_seed(droplets).await?;
    let samples = t.db.bench_fleet_history_seed().await?;
    eprintln!(
        "seeded in {:.1} s (with {samples} fleet samples: 30 days of history)",
        seeded.elapsed().as_secs_f64()
    );
    let hash = genesis_control::credentials::hash_password(PASSWORD).map_err(runtime)?;
    t.db.operator_create(EMAIL, &hash, "bench").await?;

    let state = sidecar_facing_state(RegionalStore::single(t.db.clone()), Duration::from_secs(60));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(runtime)?;
    let base = format!("http://{}", listener.local_addr().map_err(runtime)?);
    tokio::spawn(genesis_control::serve(
        listener,
        state,
        std::future::pending(),
    ));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(runtime)?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", EMAIL)
        .append_pair("password", PASSWORD)
        .finish();
    let signed_in = http
        .post(format!("{base}/god/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(runtime)?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| runtime(anyhow::anyhow!("sign-in gave no session cookie")))?;

    let some_tenant =
        t.db.workspace_list(None, 1)
            .await?
            .into_iter()
            .next()
            .map(|w| format!("/god/tenants/{}", w.slug));
    let pages: Vec<(String, bool)> = PAGES
        .iter()
        .map(|(p, t)| ((*p).to_owned(), *t))
        .chain(some_tenant.map(|p| (p, true)))
        .collect();
    let mut baseline_p99 = None;
    let mut failures = Vec::new();
    for (path, targeted) in &pages {
        let (path, targeted) = (path.as_str(), *targeted);
        let plain = fetch(&http, &base, path, &cookie, false).await?;
        let gzip = fetch(&http, &base, path, &cookie, true).await?;
        // Warm-up, then the measured run (gzipped, as browsers ask).
        for _ in 0..5 {
            fetch(&http, &base, path, &cookie, true).await?;
        }
        let mut ms = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = Instant::now();
            fetch(&http, &base, path, &cookie, true).await?;
            ms.push(started.elapsed().as_secs_f64() * 1_000.0);
            if (i + 1) % 50 == 0 {
                eprint!("\r  {path}: {}/{requests}      ", i + 1);
            }
        }
        eprintln!("\r  {path}: {requests} requests      ");
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
        let (p50, p99, max) = (pct(0.50), pct(0.99), ms[ms.len() - 1]);
        let base_p99 = *baseline_p99.get_or_insert(p99);
        let ok = !targeted || p99 < TARGET_P99_MS;
        if !ok {
            failures.push(format!("{path}: p99 {p99:.1} ms"));
        }
        outln!(
            "{}",
            json!({
                "bench": "god_mode",
                "page": path,
                "droplets": droplets,
                "requests": requests,
                "p50_ms": round(p50),
                "p99_ms": round(p99),
                "max_ms": round(max),
                "p99_over_baseline": round(p99 / base_p99),
                "bytes": plain,
                "gzip_bytes": gzip,
                "target": if targeted { json!(format!("p99 < {TARGET_P99_MS} ms")) } else { json!(null) },
                "ok": ok,
            })
        );
    }
    verdict(failures)
}

/// Fetches `path` whole; returns the bytes that crossed the wire.
async fn fetch(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    gzip: bool,
) -> Result<usize, CliError> {
    let r = http
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("accept-encoding", if gzip { "gzip" } else { "identity" })
        .send()
        .await
        .map_err(runtime)?;
    if !r.status().is_success() {
        return Err(runtime(anyhow::anyhow!("{path}: HTTP {}", r.status())));
    }
    Ok(r.bytes().await.map_err(runtime)?.len())
}
