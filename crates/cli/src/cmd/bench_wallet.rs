//! `genesis bench wallet` (issue 23): reserve+post pairs per second through the gateway's
//! check path (the wallet cache, not the vendor), with N tenants and C concurrent callers,
//! against a bare Redis `DECRBY` loop by the same callers on the same Redis in the same run.
//!
//! Two phases: the callers as fast as they can (the throughput), then the same callers
//! offered `--rate` pairs a second (the latency at that load, which is the target's). At
//! saturation a closed loop's latency is only its callers divided by its throughput
//! (Little's law: 100 callers at 20,000 pairs/s wait 5 ms on average whatever the path
//! costs), so it is reported but not judged.
//!
//! The syncer runs meanwhile as in production; its lag (journal to ledger) is measured per
//! entry. Afterwards every wallet is checked: no negative balance in cache or ledger, the
//! ledger balances, and the cache equals the ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use genesis_control::app::wallet::{WalletSettings, Wallets};
use genesis_control::workers::reconciler::Reconciler;
use genesis_control::workers::wallet::{WalletCheck, WalletSyncer};
use genesis_core::money::{Millicents, TransferKind};
use genesis_core::{Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_queue::RedisConn;
use genesis_queue::wallet::WalletCache;
use genesis_store::testing::TestDb;
use genesis_store::{NewWorkspace, RegionalStore};
use serde_json::json;

use super::CliError;
use super::bench_ignition::{percentile, round, verdict};

const TARGET_PER_S: f64 = 20_000.0;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_LAG_P99_MS: f64 = 10_000.0;
/// One e-mail verification, $0.003.
const PRICE: Millicents = Millicents(300);

fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(anyhow::anyhow!("{e}"))
}

fn emit(metric: &str, value: f64, unit: &str, baseline: Option<f64>, target: &str) {
    outln!(
        "{}",
        json!({"bench": "wallet", "metric": metric, "value": round(value), "unit": unit,
            "baseline": baseline.map(round), "target": target})
    );
}

/// Runs the benchmark.
pub async fn run(
    redis_url: &str,
    tenants: usize,
    callers: usize,
    secs: u64,
    rate: u32,
) -> Result<(), CliError> {
    if tenants == 0 || callers == 0 || secs == 0 || rate == 0 {
        return Err(CliError::Usage(
            "--tenants, --callers, --secs and --rate must be positive".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, redis_url, tenants, callers, secs, rate).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

/// What `drive` measured: every operation's latency (µs, sorted), the part of each that
/// the operation reported itself (µs, sorted: the reservation inside a pair), and the rate.
struct Driven {
    lat: Vec<f64>,
    inner: Vec<f64>,
    rate: f64,
}

/// `callers` tasks running `op` for `secs`, as fast as they can (`rate` `None`: the
/// throughput), or starting operations at `rate` a second (the latency at that load). `op`
/// answers how long its own first step took, if it has one worth reporting.
///
/// Paced, an operation's latency counts from when it was due if it started late because
/// every caller was busy (the queueing a real client would see, not hidden by the callers
/// waiting: "coordinated omission"), and from when it started otherwise (tokio's timer
/// wakes up to a millisecond late, which is the harness's delay, not the system's).
async fn drive<F, Fut>(
    callers: usize,
    secs: u64,
    rate: Option<f64>,
    op: F,
) -> Result<Driven, CliError>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<f64>, CliError>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (op, stop, seq) = (op.clone(), stop.clone(), seq.clone());
        tasks.spawn(async move {
            let (mut lat, mut inner) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                let t0 = match rate {
                    None => Instant::now(),
                    Some(rate) => {
                        let due = started + Duration::from_secs_f64(i as f64 / rate);
                        if due > Instant::now() {
                            tokio::time::sleep_until(due.into()).await;
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            Instant::now()
                        } else {
                            due
                        }
                    }
                };
                inner.extend(op(i).await?);
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            Ok::<_, CliError>((lat, inner))
        });
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut inner) = (Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        let (l, i) = r.map_err(runtime)??;
        lat.extend(l);
        inner.extend(i);
    }
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    inner.sort_by(f64::total_cmp);
    Ok(Driven { lat, inner, rate })
}

/// One call's trip through the check path: reserve, then post what was reserved. Answers
/// how long the reservation (the check) took, µs.
async fn one_pair(
    ids: &[WorkspaceId],
    wallets: &Wallets,
    refused: &AtomicU64,
    i: u64,
) -> Result<Option<f64>, CliError> {
    let ws = ids[(i as usize * 7919) % ids.len()];
    let t0 = Instant::now();
    let reserved = wallets
        .reserve(ws, TransferKind::EmailVerify, PRICE, "bench")
        .await;
    let check_us = t0.elapsed().as_secs_f64() * 1e6;
    match reserved {
        Ok(hold) => {
            wallets
                .post(&hold, PRICE)
                .await
                .map_err(|p| runtime(p.detail))?;
        }
        Err(p) if p.status == 402 => {
            refused.fetch_add(1, Ordering::Relaxed);
        }
        Err(p) => return Err(runtime(p.detail)),
    }
    Ok(Some(check_us))
}

async fn run_on(
    t: &TestDb,
    redis_url: &str,
    tenants: usize,
    callers: usize,
    secs: u64,
    target_rate: u32,
) -> Result<(), CliError> {
    let stores = RegionalStore::single(t.db.clone());
    let conn = RedisConn::connect(redis_url).await.map_err(runtime)?;
    let prefix = format!("bench{}:", uuid::Uuid::now_v7().simple());
    let cache = WalletCache::new(conn.clone(), &prefix);
    let wallets = Arc::new(Wallets::new(
        cache.clone(),
        stores.clone(),
        WalletSettings::default(),
    ));
    eprintln!("creating {tenants} tenants with $2.00 each…");
    let mut ids = Vec::with_capacity(tenants);
    let run = &uuid::Uuid::now_v7().simple().to_string()[20..];
    for i in 0..tenants {
        let ws = NewWorkspace {
            id: WorkspaceId::new(),
            slug: Slug::parse(&format!("w{run}_{i}")).map_err(runtime)?,
            name: WorkspaceName::parse(&format!("Wallet {i}")).map_err(runtime)?,
            region: Region::UsEast,
            tier: Tier::Standard,
            onboarding: Default::default(),
        };
        stores
            .workspace_create_unique(&ws, "bench")
            .await
            .map_err(runtime)?;
        wallets
            .credit(
                ws.id,
                uuid::Uuid::now_v7(),
                TransferKind::Deposit,
                Millicents::from_dollars(2),
                None,
                "bench",
            )
            .await
            .map_err(|p| runtime(p.detail))?;
        wallets.load(ws.id).await.map_err(|p| runtime(p.detail))?;
        ids.push(ws.id);
    }
    let ids = Arc::new(ids);

    eprintln!("baseline: bare DECRBY, {callers} callers, {secs} s…");
    let keys: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|w| format!("{prefix}base:{{{}}}", w.as_uuid()))
            .collect(),
    );
    let Driven {
        lat: base_lat,
        rate: base_rate,
        ..
    } = {
        let (keys, conn) = (keys.clone(), conn.clone());
        drive(callers, secs, None, move |i| {
            let (keys, mut conn) = (keys.clone(), conn.clone());
            async move {
                let key = &keys[(i as usize * 7919) % keys.len()];
                let _: i64 = redis::cmd("DECRBY")
                    .arg(key)
                    .arg(PRICE.get())
                    .query_async(&mut conn)
                    .await
                    .map_err(runtime)?;
                Ok(None)
            }
        })
        .await?
    };

    eprintln!("wallet: reserve+post pairs, {callers} callers, {secs} s, syncer running…");
    let refused = Arc::new(AtomicU64::new(0));
    let stop_sync = Arc::new(AtomicBool::new(false));
    let syncer = {
        let (wallets, stores, stop) = (wallets.clone(), stores.clone(), stop_sync.clone());
        tokio::spawn(async move {
            let s = WalletSyncer::new(wallets, stores);
            let mut lags: Vec<u32> = Vec::new();
            let mut transfers = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match s.reconcile().await {
                    Ok(r) => {
                        transfers += r.transfers;
                        lags.extend(r.lags_ms);
                    }
                    Err(e) => eprintln!("sync pass failed: {e}"),
                }
                tokio::time::sleep(genesis_control::workers::wallet::SYNC_EVERY).await;
            }
            (lags, transfers)
        })
    };
    let op = {
        let (ids, wallets, refused) = (ids.clone(), wallets.clone(), refused.clone());
        move |i| {
            let (ids, wallets, refused) = (ids.clone(), wallets.clone(), refused.clone());
            async move { one_pair(&ids, &wallets, &refused, i).await }
        }
    };
    let Driven {
        lat,
        inner: reserve_lat,
        rate,
    } = drive(callers, secs, None, op.clone()).await?;
    eprintln!("wallet: {target_rate} pairs/s offered, {callers} callers, {secs} s…");
    let paced = drive(callers, secs, Some(f64::from(target_rate)), op).await?;
    eprintln!("draining the journal…");
    let drain_started = Instant::now();
    loop {
        if cache.dirty_count().await.map_err(runtime)? == 0
            || drain_started.elapsed() > Duration::from_secs(300)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_sync.store(true, Ordering::Relaxed);
    let (mut lags, _) = syncer.await.map_err(runtime)?;
    // Whatever the last pass left.
    let last = WalletSyncer::new(wallets.clone(), stores.clone())
        .reconcile()
        .await
        .map_err(runtime)?;
    lags.extend(last.lags_ms);
    let drain_s = drain_started.elapsed().as_secs_f64();
    let check = WalletCheck::new(wallets.clone(), stores.clone())
        .reconcile()
        .await
        .map_err(runtime)?;

    // Overdrafts: any negative balance, cached or in the ledger, and the ledger's sums.
    let mut overdrafts = 0u64;
    for ws in ids.iter() {
        let l = t.db.wallet_balance(*ws).await.map_err(runtime)?;
        if l.is_none_or(|l| l.available.get() < 0 || l.balance.get() < 0) {
            overdrafts += 1;
        }
        if let Some(s) = cache.snapshot(ws.as_uuid(), 1).await.map_err(runtime)?
            && s.avail < 0
        {
            overdrafts += 1;
        }
    }
    let totals = t.db.ledger_totals().await.map_err(runtime)?;
    if !totals.balances() {
        overdrafts += 1;
    }
    let mut lag_sorted: Vec<f64> = lags.iter().map(|&l| f64::from(l)).collect();
    lag_sorted.sort_by(f64::total_cmp);
    let (p50, p99) = (
        percentile(&lat, 0.5) / 1000.0,
        percentile(&lat, 0.99) / 1000.0,
    );
    let (b50, b99) = (
        percentile(&base_lat, 0.5) / 1000.0,
        percentile(&base_lat, 0.99) / 1000.0,
    );
    let lag_p99 = percentile(&lag_sorted, 0.99);
    let (paced50, paced99) = (
        percentile(&paced.lat, 0.5) / 1000.0,
        percentile(&paced.lat, 0.99) / 1000.0,
    );
    emit("pairs_per_s", rate, "1/s", Some(base_rate), ">= 20000");
    emit("pairs_vs_decrby", rate / base_rate, "ratio", None, "");
    emit("saturated_pair_p50", p50, "ms", Some(b50), "");
    emit("saturated_pair_p99", p99, "ms", Some(b99), "");
    emit(
        "saturated_check_p99",
        percentile(&reserve_lat, 0.99) / 1000.0,
        "ms",
        Some(b99),
        "",
    );
    emit(
        "paced_pairs_per_s",
        paced.rate,
        "1/s",
        None,
        &format!("{target_rate} offered"),
    );
    emit("paced_pair_p50", paced50, "ms", None, "");
    emit("paced_pair_p99", paced99, "ms", None, "< 5");
    emit(
        "paced_check_p99",
        percentile(&paced.inner, 0.99) / 1000.0,
        "ms",
        None,
        "",
    );
    emit(
        "refused_402",
        refused.load(Ordering::Relaxed) as f64,
        "calls",
        None,
        "",
    );
    emit("overdrafts", overdrafts as f64, "wallets", None, "0");
    emit("sync_lag_p50", percentile(&lag_sorted, 0.5), "ms", None, "");
    emit("sync_lag_p99", lag_p99, "ms", None, "< 10000");
    emit("sync_drain_after_load", drain_s, "s", None, "");
    emit("entries_synced", lags.len() as f64, "entries", None, "");
    emit("cache_drifted", check.drifted as f64, "wallets", None, "0");
    let mut failures = Vec::new();
    if rate < TARGET_PER_S {
        failures.push(format!("{rate:.0} pairs/s < {TARGET_PER_S}"));
    }
    if paced.rate < 0.98 * f64::from(target_rate) {
        failures.push(format!(
            "{:.0} pairs/s kept up of {target_rate} offered",
            paced.rate
        ));
    }
    if paced99 > TARGET_P99_MS {
        failures.push(format!(
            "pair p99 {paced99:.2} ms > {TARGET_P99_MS} ms at {target_rate} pairs/s"
        ));
    }
    if lag_p99 > TARGET_LAG_P99_MS {
        failures.push(format!(
            "sync lag p99 {lag_p99:.0} ms > {TARGET_LAG_P99_MS} ms"
        ));
    }
    if overdrafts > 0 || check.drifted > 0 {
        failures.push(format!(
            "{overdrafts} overdrafts, {} drifted wallets",
            check.drifted
        ));
    }
    verdict(failures)
}
