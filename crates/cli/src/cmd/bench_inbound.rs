//! `genesis bench webhooks`, inbound half (issue 24, spec 47.1: 5,000 inbound webhooks a
//! second; target 20,000/s with p99 under 20 ms): signed calls per second through the
//! control plane's inbound guard ([`genesis_control::inbound::InboundGuard`]: Standard
//! Webhooks signature, timestamp window, the id remembered in Redis) and then added to a
//! Redis queue ([`genesis_queue::Bus::add`]), against a bare JSON route (parse the body,
//! answer 202) served by the same process in the same run.
//!
//! Both routes get the same bodies from the same client at the same concurrency, over
//! loopback HTTP/1.1 with keep-alive; the calls are signed before the clock starts (signing
//! is the droplet's relay's work, not ours). The client shares the machine's two cores with
//! the server, which weighs on both routes alike: the ratio is the figure to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use genesis_control::inbound::{Checked, InboundGuard};
use genesis_queue::redis_conn::{LazyRedis, RedisTarget};
use genesis_queue::{Bus, GovernorConfig, QueueConfig};
use serde_json::json;

use super::CliError;
use super::bench_webhooks::{emit, runtime};

/// Calls in flight from the client.
const IN_FLIGHT: usize = 64;
/// The workspace and droplet the calls are signed as.
const DROPLET: i64 = 4_242;

#[derive(Clone)]
struct Served {
    guard: Arc<InboundGuard>,
    bus: Bus,
}

/// The guarded route: checked, remembered, queued.
async fn inbound(State(s): State<Served>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match s.guard.check(&headers, &body).await {
        Ok(_) => {}
        Err(Checked::Refused(_)) => return StatusCode::UNAUTHORIZED,
        Err(Checked::Unavailable(_)) => return StatusCode::SERVICE_UNAVAILABLE,
    }
    let id = headers
        .get(genesis_protocol::inbound::HEADER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let payload = String::from_utf8_lossy(&body);
    match s.bus.add("inbound", id, &payload, Duration::ZERO).await {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The baseline: a JSON body parsed and acknowledged.
async fn bare(axum::Json(_): axum::Json<serde_json::Value>) -> StatusCode {
    StatusCode::ACCEPTED
}

/// One call: its signature headers (none for the baseline) and its body.
type Call = (Vec<(&'static str, String)>, Vec<u8>);

/// Per-second rate and latency percentiles of `calls` (each a signed request's headers
/// and body) sent to `url`.
async fn drive(
    http: &reqwest::Client,
    url: &str,
    calls: Vec<Call>,
) -> Result<(f64, f64, f64), CliError> {
    let total = calls.len();
    let started = Instant::now();
    let mut latencies: Vec<f64> = futures_util::stream::iter(calls)
        .map(|(headers, body)| {
            let mut req = http
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            async move {
                let sent = Instant::now();
                let ok = req
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::ACCEPTED);
                ok.then(|| sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let took = started.elapsed().as_secs_f64();
    if latencies.len() != total {
        return Err(CliError::CheckFailed(format!(
            "{} of {total} calls to {url} were accepted",
            latencies.len()
        )));
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok((total as f64 / took, pct(0.50), pct(0.99)))
}

/// Runs the inbound half: `calls` calls to each route, with Redis at `redis_url`.
pub async fn run(redis_url: &str, calls: usize) -> Result<(), CliError> {
    if calls == 0 {
        return Err(CliError::Usage("--inbound-calls must be positive".into()));
    }
    let target = RedisTarget::parse(redis_url).map_err(runtime)?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let prefix = format!("bench{run}:");
    let guard = Arc::new(InboundGuard::new(
        [11; 32],
        Some((Arc::new(LazyRedis::new(target)), prefix.clone())),
    ));
    let bus = Bus::connect(
        redis_url,
        &format!("inb{}", &run[..12]),
        vec![QueueConfig::new("inbound", 1, 100)],
        GovernorConfig::default(),
    )
    .await
    .map_err(runtime)?;
    let app = axum::Router::new()
        .route("/inbound", axum::routing::post(inbound))
        .route("/bare", axum::routing::post(bare))
        .with_state(Served {
            guard: guard.clone(),
            bus: bus.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(runtime)?;
    let base = format!("http://{}", listener.local_addr().map_err(runtime)?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let workspace = uuid::Uuid::new_v4();
    let secret = guard.droplet_secret(workspace, DROPLET);
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let body = |i: usize| {
        serde_json::to_vec(&json!({
            "type": "lead.replied", "from": format!("lead{i}@lead.example"), "label": "interested"
        }))
        .unwrap_or_default()
    };
    let signed = (0..calls)
        .map(|i| {
            let b = body(i);
            genesis_protocol::inbound::sign(&secret, workspace, DROPLET, &b, now)
                .map(|h| (h.to_vec(), b))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(runtime)?;
    let unsigned: Vec<_> = (0..calls).map(|i| (Vec::new(), body(i))).collect();
    eprintln!("[bench webhooks] {calls} inbound calls per route, {IN_FLIGHT} in flight");

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .map_err(runtime)?;
    // Warm both routes (connections, the Redis connection, the scripts).
    let warm: Vec<_> = unsigned.iter().take(IN_FLIGHT).cloned().collect();
    drive(&http, &format!("{base}/bare"), warm).await?;
    let (bare_rate, bare_p50, bare_p99) = drive(&http, &format!("{base}/bare"), unsigned).await?;
    let replays: Vec<_> = signed.iter().take(100).cloned().collect();
    let (rate, p50, p99) = drive(&http, &format!("{base}/inbound"), signed).await?;
    emit("inbound_per_s", rate, "per_s", Some(bare_rate));
    emit("inbound_ratio_to_bare", rate / bare_rate, "ratio", None);
    emit("inbound_p50_ms", p50, "ms", Some(bare_p50));
    emit("inbound_p99_ms", p99, "ms", Some(bare_p99));

    // Every call was queued once, and a replay of any of them is refused.
    let mut refused = 0;
    for (headers, b) in replays {
        let mut req = http
            .post(format!("{base}/inbound"))
            .header("content-type", "application/json")
            .body(b);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if req.send().await.map_err(runtime)?.status() == StatusCode::UNAUTHORIZED {
            refused += 1;
        }
    }
    let counts = bus.counts("inbound").await.map_err(runtime)?;
    let queued = counts.waiting;
    cleanup(redis_url, &prefix, bus.prefix()).await;
    emit("inbound_queued", queued as f64, "count", Some(calls as f64));
    if queued != calls as u64 || refused != 100 {
        return Err(CliError::CheckFailed(format!(
            "{queued} of {calls} calls queued, {refused} of 100 replays refused"
        )));
    }
    Ok(())
}

/// Deletes the run's keys (the memory of ids expires by itself; the queue does not).
async fn cleanup(redis_url: &str, ids: &str, queue: &str) {
    let Ok(mut conn) = genesis_queue::RedisConn::connect(redis_url).await else {
        return;
    };
    for pattern in [format!("{ids}*"), format!("{queue}*")] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
}
