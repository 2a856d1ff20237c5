//! `genesis bench partitions`: partition creation rate, tenant query latency with and without
//! RLS at that partition count, and the worst delay DDL inflicts on a concurrent tenant query
//! while another tenant holds a transaction open. One JSON line per figure on stdout
//! (DESIGN §8), progress on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;
use genesis_core::{LeadStatus, Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::{Database, NewWorkspace, PartitionManager};
use serde_json::json;

use super::{CliError, leads::synthetic};
use crate::config::Config;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Partition physics at N partitions (spec 40).
    Partitions {
        /// Partitions to create in this run (on top of any that exist).
        #[arg(long, default_value_t = 1_000)]
        count: usize,
        /// Query samples per side for the RLS comparison.
        #[arg(long, default_value_t = 300)]
        samples: usize,
        /// Partitions created and dropped during the blocking measurement.
        #[arg(long, default_value_t = 10)]
        churn: usize,
        /// How long the other tenant's transaction stays open (seconds).
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
    },
    /// Creates N virtual droplets in a `genesis sim-cloud` child process through the real
    /// client; reports wall time, requests/s and the simulator's resident memory.
    SimCloud {
        /// Droplets to create.
        #[arg(long, default_value_t = 15_000)]
        count: usize,
        /// Concurrent creating tasks.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// N ignitions through the whole stack in one process (API, saga, queue, simulator with
    /// real sidecars): wall time and per-ignition control-plane time.
    Ignition {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants to ignite.
        #[arg(long, default_value_t = 1_000)]
        tenants: usize,
        /// DigitalOcean-like delays: 30 to 45 s from create to a booted droplet.
        #[arg(long)]
        realistic: bool,
        /// Create-and-ignite requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Ignition jobs the worker runs at once (spec 52.1's ignition queue allows 50).
        #[arg(long, default_value_t = 16)]
        workers: u32,
    },
    /// Template rollout (spec 52.3): N tenants ignited, then one rollout over all of them,
    /// every update a signed command to the droplet's own sidecar; wall time against the
    /// governor's bound.
    Rollout {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Virtual droplets.
        #[arg(long, default_value_t = 1_000)]
        droplets: usize,
        /// Spec 56.1's scenario (security_patch: one immediate batch).
        #[arg(long, default_value = "security_patch")]
        scenario: String,
        /// Give every droplet its own listeners and long-lived connections, as before
        /// shared listeners (a baseline; about 8 open files per droplet, so ~2,000 fit).
        #[arg(long)]
        own_listeners: bool,
    },
    /// Regional failover (spec 66.4): N tenants in fra1 restored in lon1 on a clock
    /// --speed times faster, under DigitalOcean's rate limits scaled alike; the RTO per
    /// phase in real time, and the cloud calls against the rate-limit bound.
    Failover {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants in the failed region (spec 66.4's scenario: 3,000).
        #[arg(long, default_value_t = 3_000)]
        tenants: usize,
        /// How much faster than real time the cloud and its limits run.
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
    },
    /// GDPR export (spec 64.3): N leads into ZIP parts, against copying them out of
    /// PostgreSQL alone; leads per second and peak RSS (targets: 100,000/s, < 100 MB).
    Export {
        /// Leads.
        #[arg(long, default_value_t = 1_000_000)]
        leads: i64,
    },
    /// Deletion (spec 64.2): N tenants ignited, given leads and a snapshot, deleted for
    /// fraud, then their deletion sagas run: wall time, time per tenant, and the cloud calls
    /// used against DigitalOcean's rate budget.
    Deletion {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// Sagas run at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Wake (spec 55.3): N tenants ignited, hibernated, then woken at once; the control
    /// plane's share of a wake with the simulated boot delay excluded.
    Wake {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// How long a power action takes in the simulator, seconds (the boot delay).
        #[arg(long, default_value_t = 10)]
        boot_s: u64,
    },
    /// The wizard (spec 60.1): server time per stage for N tenants going from sign-up to
    /// Start Engine, and the engine's time to run (issue 22: p99 per stage < 100 ms).
    Onboarding {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants through the wizard, one after another.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
    },
    /// The wallet's check path (issue 23): reserve+post pairs per second with N tenants and
    /// C callers, against a bare DECRBY loop; the latency at a fixed offered rate; the
    /// syncer's lag; overdrafts.
    Wallet {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Tenants (wallets).
        #[arg(long, default_value_t = 1_000)]
        tenants: usize,
        /// Concurrent callers.
        #[arg(long, default_value_t = 100)]
        callers: usize,
        /// Seconds each phase runs.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Pairs per second offered in the paced phase, whose latency is the target's.
        #[arg(long, default_value_t = 20_000)]
        rate: u32,
    },
    /// Webhooks (issue 24): signed inbound calls per second through the inbound guard and
    /// a queue add, against a bare JSON route; then outbound deliveries per second through
    /// the whole sender to a local receiver at 50 in flight, against bare POSTs.
    Webhooks {
        /// Deliveries to make.
        #[arg(long, default_value_t = 20_000)]
        deliveries: usize,
        /// Endpoints (one workspace each) they are spread over.
        #[arg(long, default_value_t = 50)]
        endpoints: usize,
        /// Signed inbound calls to send to the guarded route, and bare ones to the baseline.
        #[arg(long, default_value_t = 50_000)]
        inbound_calls: usize,
        /// Redis to use (the memory of inbound ids, the queue).
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
    },
    /// God Mode at fleet scale: server time (p50/p99) and weight of the overview, heatmap
    /// and regional pages over N droplets, against the sign-in page as baseline.
    GodMode {
        /// Droplets (one per workspace).
        #[arg(long, default_value_t = 15_000)]
        droplets: usize,
        /// Timed requests per page.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// A flood of bad God Mode sign-ins against a running `genesis serve`: its peak RSS and
    /// the p99 of other API calls, guarded and with the guard lifted, in the same run.
    SignInFlood {
        /// Concurrent clients signing in with made-up addresses.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// How long the flood lasts, seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Heartbeat ingestion: sustained heartbeats/s and latency, every one authenticated and
    /// recorded, against a bare JSON route in the same run.
    Heartbeats {
        /// Sidecars (each with its own token).
        #[arg(long, default_value_t = 15_000)]
        droplets: usize,
        /// Seconds of load per side.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Keep-alive connections of the load generator.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Zombie detection at fleet scale: N droplets heartbeating, a share killed, time to
    /// ZOMBIE in heartbeat intervals.
    Zombies {
        /// Redis to use (the reboot queue).
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Droplets.
        #[arg(long, default_value_t = 15_000)]
        droplets: usize,
        /// Share killed, percent.
        #[arg(long, default_value_t = 1.0)]
        kill_percent: f64,
        /// Heartbeat interval, seconds (spec 54.1: 60; compressed here).
        #[arg(long, default_value_t = 5)]
        interval_s: u64,
    },
    /// No-op job throughput of the Redis queue, and BullMQ's on the same Redis in the same run.
    Queue {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// A Redis Cluster (`redis+cluster://host:port,...`) to run the same workload on,
        /// after the single node: the cluster's cost as a ratio.
        #[arg(long)]
        cluster_url: Option<String>,
        /// Jobs.
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// Jobs in flight.
        #[arg(long, default_value_t = 100)]
        concurrency: u32,
        /// Skip the BullMQ side (no Node.js).
        #[arg(long)]
        no_bullmq: bool,
    },
    /// 15,000 template jobs through the spec 52.2 governor (100 concurrent, 200/s).
    FleetUpdate {
        /// Redis to use.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// Jobs.
        #[arg(long, default_value_t = 15_000)]
        jobs: usize,
    },
    /// Runs the `genesis-sidecar` binary against a fake n8n and a stand-in control plane;
    /// reports its resident memory once idle (target < 20 MB).
    Sidecar {
        /// Seconds to idle after the first heartbeat before measuring.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
    },
}

fn emit(
    metric: &str,
    value: f64,
    unit: &str,
    baseline: serde_json::Value,
    target: &str,
    ok: Option<bool>,
) {
    outln!(
        "{}",
        json!({"bench": "partitions", "metric": metric, "value": (value * 1000.0).round() / 1000.0,
               "unit": unit, "baseline": baseline, "target": target, "ok": ok})
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_workspace(run: &str, i: usize) -> Result<NewWorkspace, CliError> {
    Ok(NewWorkspace {
        id: WorkspaceId::new(),
        slug: Slug::parse(&format!("b{run}_{i}")).map_err(|e| CliError::Usage(e.to_string()))?,
        name: WorkspaceName::parse(&format!("Bench {i}"))
            .map_err(|e| CliError::Usage(e.to_string()))?,
        region: Region::UsEast,
        tier: Tier::Standard,
        onboarding: Default::default(),
    })
}

/// Runs a benchmark; only `partitions` needs the configuration (the others make their own
/// scratch databases and Redis sets).
pub async fn run(cmd: BenchCommand, cfg: Result<Config, CliError>) -> Result<(), CliError> {
    match cmd {
        BenchCommand::Partitions {
            count,
            samples,
            churn,
            hold_secs,
        } => partitions(cfg?, count, samples, churn, hold_secs).await,
        BenchCommand::SimCloud { count, concurrency } => {
            super::bench_sim::run(count, concurrency).await
        }
        BenchCommand::Sidecar { idle_secs } => super::bench_sidecar::run(idle_secs).await,
        BenchCommand::Queue {
            redis_url,
            cluster_url,
            jobs,
            concurrency,
            no_bullmq,
        } => {
            super::bench_queue::queue(
                &redis_url,
                cluster_url.as_deref(),
                jobs,
                concurrency,
                !no_bullmq,
            )
            .await
        }
        BenchCommand::FleetUpdate { redis_url, jobs } => {
            super::bench_queue::fleet_update(&redis_url, jobs).await
        }
        BenchCommand::Heartbeats {
            droplets,
            seconds,
            connections,
        } => super::bench_heartbeats::run(droplets, seconds, connections).await,
        BenchCommand::GodMode { droplets, requests } => {
            super::bench_god_mode::run(droplets, requests).await
        }
        BenchCommand::SignInFlood {
            concurrency,
            seconds,
        } => super::bench_sign_in_flood::run(concurrency, seconds).await,
        BenchCommand::Zombies {
            redis_url,
            droplets,
            kill_percent,
            interval_s,
        } => super::bench_zombies::run(&redis_url, droplets, kill_percent, interval_s).await,
        BenchCommand::Ignition {
            redis_url,
            tenants,
            realistic,
            concurrency,
            workers,
        } => super::bench_ignition::run(&redis_url, tenants, realistic, concurrency, workers).await,
        BenchCommand::Rollout {
            redis_url,
            droplets,
            scenario,
            own_listeners,
        } => super::bench_rollout::run(&redis_url, droplets, &scenario, !own_listeners).await,
        BenchCommand::Failover {
            redis_url,
            tenants,
            speed,
        } => super::bench_failover::run(&redis_url, tenants, speed).await,
        BenchCommand::Export { leads } => super::bench_export::run(leads).await,
        BenchCommand::Deletion {
            redis_url,
            tenants,
            concurrency,
        } => super::bench_deletion::run(&redis_url, tenants, concurrency).await,
        BenchCommand::Wake {
            redis_url,
            tenants,
            boot_s,
        } => super::bench_wake::run(&redis_url, tenants, boot_s).await,
        BenchCommand::Wallet {
            redis_url,
            tenants,
            callers,
            secs,
            rate,
        } => super::bench_wallet::run(&redis_url, tenants, callers, secs, rate).await,
        BenchCommand::Webhooks {
            deliveries,
            endpoints,
            inbound_calls,
            redis_url,
        } => {
            super::bench_inbound::run(&redis_url, inbound_calls).await?;
            super::bench_webhooks::run(deliveries, endpoints).await
        }
        BenchCommand::Onboarding { redis_url, tenants } => {
            super::bench_onboarding::run(&redis_url, tenants).await
        }
    }
}

async fn partitions(
    cfg: Config,
    count: usize,
    samples: usize,
    churn: usize,
    hold_secs: u64,
) -> Result<(), CliError> {
    if count < 3 {
        return Err(CliError::Usage("--count must be at least 3".into()));
    }
    let stores = cfg.regional_store()?;
    let db = stores.for_region(Region::UsEast).clone();
    db.migrate().await?;
    let mgr = PartitionManager::new(db.clone());
    let existing = mgr.count().await? as usize;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    eprintln!("creating {count} partitions (existing: {existing}) ...");

    // 1. Creation rate, overall and over the last tenth (the rate at ~N partitions).
    let started = Instant::now();
    let tail_from = count - count / 10;
    let mut tail_started = started;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        if i == tail_from {
            tail_started = Instant::now();
        }
        let ws = mgr
            .workspace_provision(&bench_workspace(run, i)?, "bench")
            .await?;
        ids.push(ws.id);
        if (i + 1) % (count / 20).max(1) == 0 {
            let rate = (i + 1) as f64 / started.elapsed().as_secs_f64() * 60.0;
            eprintln!("  {}/{count} created, {rate:.0}/min", i + 1);
        }
    }
    let total = started.elapsed();
    let tail = tail_started.elapsed();
    let per_min = count as f64 / total.as_secs_f64() * 60.0;
    let tail_per_min = (count - tail_from) as f64 / tail.as_secs_f64() * 60.0;
    let at = existing + count;
    emit(
        "partitions_created",
        at as f64,
        "partitions",
        serde_json::Value::Null,
        "",
        None,
    );
    emit(
        "partition_create_rate",
        per_min,
        "1/min",
        json!({"name": "spec 40 target", "value": 100}),
        ">= 1000/min",
        Some(per_min >= 1000.0),
    );
    emit(
        "partition_create_rate_last_10pct",
        tail_per_min,
        "1/min",
        json!({"name": "spec 40 target", "value": 100}),
        ">= 1000/min",
        Some(tail_per_min >= 1000.0),
    );

    // 2. Tenant query latency with and without RLS at this partition count.
    let target = ids[count / 2];
    let mut s = db.tenant_session(target).await?;
    s.lead_import(&synthetic("bench", 0, 20_000)).await?;
    s.commit().await?;
    eprintln!("timing the leads query ({samples} samples per side) ...");
    let t = db
        .bench_lead_query(target, LeadStatus::New, samples)
        .await?;
    let mut rls = t.rls.clone();
    rls.sort();
    let mut bypass = t.bypass.clone();
    bypass.sort();
    let rls_p50 = ms(percentile(&rls, 0.5));
    emit(
        "leads_query_p50_rls",
        rls_p50,
        "ms",
        if bypass.is_empty() {
            serde_json::Value::Null
        } else {
            json!({"name": "same query, RLS bypassed", "value": ms(percentile(&bypass, 0.5))})
        },
        "< 100 ms (spec 40)",
        Some(rls_p50 < 100.0),
    );
    emit(
        "leads_query_p95_rls",
        ms(percentile(&rls, 0.95)),
        "ms",
        serde_json::Value::Null,
        "",
        None,
    );
    if !bypass.is_empty() {
        let base = ms(percentile(&bypass, 0.5));
        let overhead = (rls_p50 - base) / base * 100.0;
        emit(
            "rls_overhead_p50",
            overhead,
            "%",
            json!({"name": "same query, RLS bypassed", "value": base}),
            "< 5 %",
            Some(overhead < 5.0),
        );
        emit(
            "rls_overhead_p50_abs",
            rls_p50 - base,
            "ms",
            serde_json::Value::Null,
            "< 1 ms (spec 40)",
            Some(rls_p50 - base < 1.0),
        );
    }

    // 3. Worst delay of a third tenant's query while partitions are created and dropped behind
    //    another tenant's open transaction, against the same probe without DDL.
    let baseline = probe_while(&db, ids[0], ids[1], hold_secs, None).await?;
    let with_ddl = probe_while(&db, ids[0], ids[1], hold_secs, Some((&mgr, run, churn))).await?;
    emit(
        "max_concurrent_query_delay",
        ms(with_ddl),
        "ms",
        json!({"name": "same probe, no DDL", "value": ms(baseline)}),
        "< 100 ms",
        Some(ms(with_ddl) < 100.0),
    );
    Ok(())
}

/// Holds a transaction on `holder` for `hold_secs`, probes `third` continuously, optionally
/// creating and dropping `churn` partitions meanwhile; returns the probe's worst latency.
async fn probe_while(
    db: &Database,
    holder: WorkspaceId,
    third: WorkspaceId,
    hold_secs: u64,
    ddl: Option<(&PartitionManager, &str, usize)>,
) -> Result<Duration, CliError> {
    let hold_db = db.clone();
    let hold = tokio::spawn(async move {
        let mut s = hold_db.tenant_session(holder).await?;
        s.lead_count(None).await?;
        tokio::time::sleep(Duration::from_secs(hold_secs)).await;
        s.commit().await
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (probe_db, probe_stop) = (db.clone(), stop.clone());
    let probe = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !probe_stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let mut s = probe_db.tenant_session(third).await?;
            s.lead_page(LeadStatus::New, None, 50).await?;
            s.commit().await?;
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, genesis_store::StoreError>(worst)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some((mgr, run, churn)) = ddl {
        eprintln!("creating and dropping {churn} partitions behind a {hold_secs}s transaction ...");
        for i in 0..churn {
            let ws = mgr
                .workspace_provision(&bench_workspace(&format!("{run}c"), i)?, "bench")
                .await?;
            mgr.drop(ws.id, "bench").await?;
        }
    }
    hold.await.map_err(|e| CliError::Runtime(e.into()))??;
    stop.store(true, Ordering::Relaxed);
    Ok(probe.await.map_err(|e| CliError::Runtime(e.into()))??)
}
