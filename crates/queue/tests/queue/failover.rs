//! A Redis Cluster primary killed under load: the queue follows the promoted replica, loses no
//! acknowledged job, and the jobs whose leases were held during the failover run again, with
//! their effect applied once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use genesis_queue::testing::TestCluster;
use genesis_queue::{Bus, Claimed, GovernorConfig, Handler, JobError, QueueConfig, Worker};

/// Applies each job's effect at most once (as the control plane's handlers do, through the
/// saga's rows), and records every run and when it finished.
#[derive(Default)]
struct Effects {
    runs: Mutex<HashMap<String, u32>>,
    applied: Mutex<BTreeSet<String>>,
    finished: Mutex<Vec<Instant>>,
}

#[derive(Clone)]
struct Apply(Arc<Effects>);

impl Handler for Apply {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        *self
            .0
            .runs
            .lock()
            .expect("lock")
            .entry(job.id.clone())
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.0.applied.lock().expect("lock").insert(job.id.clone());
        self.0.finished.lock().expect("lock").push(Instant::now());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_without_losing_an_acknowledged_job() {
    let cluster = TestCluster::start();
    let set = format!("fo{}", uuid::Uuid::now_v7().simple());
    let cfg = GovernorConfig {
        rate_max: 100_000,
        lease: Duration::from_millis(1_500),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        max_stalls: 10,
        ..GovernorConfig::default()
    };
    let bus = Bus::connect(&cluster.url, &set, vec![QueueConfig::new("q", 1, 40)], cfg)
        .await
        .expect("bus");
    let effects = Arc::new(Effects::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let w = Worker::new(bus.clone(), Apply(effects.clone()), 20);
        let mut rx = stop_rx.clone();
        workers.push(tokio::spawn(w.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }

    // Adds go on through the failover; an add that errs is retried with the same id (ids
    // are idempotency keys), and only an `Ok` counts as acknowledged.
    const JOBS: usize = 600;
    let primary = cluster.primary_of(bus.prefix()).await;
    let mut acknowledged = BTreeSet::new();
    let mut killed_at = None;
    let mut add_errors = 0;
    let mut first_add_after_kill = None;
    for i in 0..JOBS {
        if i == JOBS / 2 {
            cluster.kill(primary);
            killed_at = Some(Instant::now());
        }
        let id = format!("j{i}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match bus.add("q", &id, "{}", Duration::ZERO).await {
                Ok(_) => break,
                Err(_) => {
                    add_errors += 1;
                    assert!(Instant::now() < deadline, "adds resume after the failover");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if killed_at.is_some() && first_add_after_kill.is_none() {
            first_add_after_kill = killed_at.map(|k| k.elapsed());
        }
        acknowledged.insert(id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = killed_at.expect("killed");

    let started = Instant::now();
    loop {
        let applied = effects.applied.lock().expect("lock").clone();
        if acknowledged.is_subset(&applied) {
            assert!(
                applied.is_subset(&acknowledged),
                "no job appeared from nowhere"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} acknowledged jobs never ran: {:?}",
            acknowledged.difference(&applied).count(),
            acknowledged
                .difference(&applied)
                .take(10)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    for w in workers {
        w.await.expect("join").expect("worker");
    }

    let runs = effects.runs.lock().expect("lock").clone();
    let reruns: u32 = runs.values().map(|r| r - 1).sum();
    let promoted = cluster.primary_of(bus.prefix()).await;
    assert_ne!(promoted, primary, "the replica took over the set's slot");
    // The stall between the kill and the first completion after it: the failover as the
    // queue sees it.
    let finished = effects.finished.lock().expect("lock").clone();
    let resumed = finished
        .iter()
        .filter(|t| **t > killed_at + Duration::from_millis(100))
        .min()
        .map(|t| *t - killed_at);
    eprintln!(
        "failover: primary :{primary} killed, :{promoted} promoted; adds resumed after {first_add_after_kill:?}, \
         completions after {resumed:?}; {add_errors} add attempts failed meanwhile; {reruns} reruns of {} jobs",
        runs.len()
    );
    assert!(
        reruns > 0,
        "jobs held during the failover were reaped and ran again"
    );
    let counts = bus.counts("q").await.expect("counts");
    assert_eq!(
        counts.waiting + counts.active + counts.delayed,
        0,
        "{counts:?}"
    );
    bus.destroy().await.expect("clean");
}
