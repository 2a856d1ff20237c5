// The queue's behaviour, included by `main.rs` once per kind of Redis (a node, a cluster),
// each of which defines `redis_url()`. Each test has its own governed set, so tests run in
// parallel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use genesis_queue::bus::Idle;
use genesis_queue::{
    AddOutcome, Bus, Claimed, FailOutcome, GovernorConfig, Handler, JobError, QueueConfig, Worker,
};

async fn bus(queues: Vec<QueueConfig>, cfg: GovernorConfig) -> Bus {
    let set = format!("t{}", uuid::Uuid::now_v7().simple());
    Bus::connect(&redis_url(), &set, queues, cfg)
        .await
        .expect("connect")
}

/// Short timings; the rate limit is high so it never binds except where a test sets it.
fn fast() -> GovernorConfig {
    GovernorConfig {
        rate_max: 100_000,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        lease: Duration::from_millis(300),
        ..GovernorConfig::default()
    }
}

#[tokio::test]
async fn priority_first_then_fifo_across_equal_priorities() {
    let b = bus(
        vec![
            QueueConfig::new("low", 4, 10),
            QueueConfig::new("b", 2, 10),
            QueueConfig::new("urgent", 1, 10),
            QueueConfig::new("c", 2, 10),
        ],
        fast(),
    )
    .await;
    for (q, id) in [
        ("low", "l1"),
        ("b", "b1"),
        ("c", "c1"),
        ("b", "b2"),
        ("urgent", "u1"),
        ("c", "c2"),
    ] {
        assert_eq!(
            b.add(q, id, "{}", Duration::ZERO).await.expect("add"),
            AddOutcome::Created
        );
    }
    let mut order = Vec::new();
    loop {
        let (jobs, idle) = b.claim("w", 1).await.expect("claim");
        match jobs.first() {
            Some(j) => order.push(j.id.clone()),
            None => {
                assert_eq!(idle, Idle::Empty);
                break;
            }
        }
    }
    assert_eq!(order, ["u1", "b1", "c1", "b2", "c2", "l1"]);
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn ids_are_idempotency_keys_and_caps_hold() {
    let cfg = GovernorConfig {
        max_concurrency: 3,
        ..fast()
    };
    let b = bus(
        vec![QueueConfig::new("a", 1, 2), QueueConfig::new("z", 2, 10)],
        cfg,
    )
    .await;
    assert_eq!(
        b.add("a", "same", "{}", Duration::ZERO).await.expect("add"),
        AddOutcome::Created
    );
    assert_eq!(
        b.add("a", "same", "{\"other\":1}", Duration::ZERO)
            .await
            .expect("add"),
        AddOutcome::Exists("waiting".into())
    );
    for i in 0..5 {
        b.add("a", &format!("a{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
        b.add("z", &format!("z{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
    }
    assert!(
        b.add("nope", "x", "{}", Duration::ZERO).await.is_err(),
        "unknown queue"
    );
    let (jobs, idle) = b.claim("w", 10).await.expect("claim");
    let per_queue = |q: &str| jobs.iter().filter(|j| j.queue == q).count();
    assert_eq!(jobs.len(), 3, "the global cap");
    assert_eq!(per_queue("a"), 2, "queue a's cap");
    assert_eq!(idle, Idle::Concurrency);
    assert_eq!(b.counts("a").await.expect("counts").active, 2);
    // Completing one and claiming the next is one round trip.
    let (counted, next, _) = b.complete("w", &jobs[0], 1).await.expect("complete");
    assert!(counted);
    assert_eq!(next.len(), 1);
    let (again, _, _) = b.complete("w", &jobs[0], 0).await.expect("complete twice");
    assert!(!again, "a job completes once");
    let done = b
        .add("a", &jobs[0].id, "{}", Duration::ZERO)
        .await
        .expect("re-add");
    assert_eq!(
        done,
        AddOutcome::Exists("completed".into()),
        "kept for idempotency"
    );
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn retries_back_off_then_dead_letter_and_permanent_failures_skip_retries() {
    let b = bus(vec![QueueConfig::new("q", 1, 10)], fast()).await;
    b.add("q", "flaky", "{}", Duration::ZERO)
        .await
        .expect("add");
    let mut delays = Vec::new();
    let mut attempts = Vec::new();
    loop {
        let started = Instant::now();
        let job = loop {
            let (mut jobs, _) = b.claim("w", 1).await.expect("claim");
            if let Some(j) = jobs.pop() {
                break j;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the retry came back"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if !attempts.is_empty() {
            delays.push(started.elapsed());
        }
        attempts.push(job.attempt);
        match b
            .fail("w", &job, &format!("boom {}", job.attempt), false)
            .await
            .expect("fail")
        {
            FailOutcome::Retry { .. } => continue,
            FailOutcome::Dead => break,
            FailOutcome::Lost => panic!("the lease was held"),
        }
    }
    assert_eq!(attempts, [1, 2, 3, 4, 5], "five attempts in all");
    // Equal jitter: each delay is between half and all of base·2^(n-1) (capped at 200 ms),
    // plus claim polling.
    for (i, d) in delays.iter().enumerate() {
        let full = (20u64 << i).min(200);
        assert!(
            d.as_millis() as u64 >= full / 2 && d.as_millis() as u64 <= full + 100,
            "retry {}: {d:?} for a {full} ms backoff",
            i + 1
        );
    }
    assert_eq!(
        b.dead("q").await.expect("dead"),
        vec![("flaky".to_string(), "boom 5".to_string())]
    );

    b.add("q", "hopeless", "{}", Duration::ZERO)
        .await
        .expect("add");
    let (jobs, _) = b.claim("w", 1).await.expect("claim");
    assert_eq!(
        b.fail("w", &jobs[0], "bad input", true)
            .await
            .expect("fail"),
        FailOutcome::Dead
    );
    let c = b.counts("q").await.expect("counts");
    assert_eq!((c.dead, c.failed, c.active), (2, 6, 0));
    // The events stream told the story: four retries, then two dead letters.
    let (_, failed_per_s) = b.rates("q", Duration::from_secs(60)).await.expect("rates");
    assert!((failed_per_s * 60.0 - 6.0).abs() < 0.01, "{failed_per_s}");
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn an_expired_lease_returns_the_job_and_the_old_worker_cannot_complete_it() {
    let b = bus(vec![QueueConfig::new("q", 1, 10)], fast()).await;
    b.add("q", "j", "{}", Duration::ZERO).await.expect("add");
    let (jobs, _) = b.claim("dead-worker", 1).await.expect("claim");
    let lost = jobs[0].clone();
    // The worker dies: no extension. After the lease, another worker gets the job.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (again, _) = b.claim("live-worker", 1).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("j", 2));
    let (counted, _, _) = b.complete("dead-worker", &lost, 0).await.expect("late");
    assert!(!counted, "the old worker lost the job");
    assert_eq!(
        b.fail("dead-worker", &lost, "late", false)
            .await
            .expect("fail"),
        FailOutcome::Lost
    );
    let (counted, _, _) = b
        .complete("live-worker", &again[0], 0)
        .await
        .expect("complete");
    assert!(counted);
    let c = b.counts("q").await.expect("counts");
    assert_eq!((c.stalled, c.completed), (1, 1));
    let (done_per_s, _) = b.rates("q", Duration::from_secs(10)).await.expect("rates");
    assert!((done_per_s * 10.0 - 1.0).abs() < 0.01, "{done_per_s}");

    // A lease that is extended is kept.
    b.add("q", "long", "{}", Duration::ZERO).await.expect("add");
    let (jobs, _) = b.claim("w", 1).await.expect("claim");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(b.extend("w", "long").await.expect("extend"));
    }
    assert!(b.claim("other", 1).await.expect("claim").0.is_empty());
    assert!(b.complete("w", &jobs[0], 0).await.expect("complete").0);

    // A job whose workers keep dying is dead-lettered after max_stalls (3) stalls.
    b.add("q", "cursed", "{}", Duration::ZERO)
        .await
        .expect("add");
    for attempt in 1..=4 {
        let (jobs, _) = loop {
            let r = b
                .claim(&format!("doomed-{attempt}"), 1)
                .await
                .expect("claim");
            if !r.0.is_empty() {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(jobs[0].attempt, attempt);
        tokio::time::sleep(Duration::from_millis(350)).await;
    }
    // The fourth lease expires; the next maintenance dead-letters the job.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(b.claim("w", 1).await.expect("claim").0.is_empty());
    let dead = b.dead("q").await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("stalled 4 times"), "{dead:?}");
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn delayed_paused_and_drained() {
    let b = bus(
        vec![QueueConfig::new("q", 1, 10), QueueConfig::new("r", 2, 10)],
        fast(),
    )
    .await;
    b.add("q", "later", "{}", Duration::from_millis(200))
        .await
        .expect("add");
    assert!(
        b.claim("w", 1).await.expect("claim").0.is_empty(),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(b.claim("w", 1).await.expect("claim").0[0].id, "later");

    b.pause("q").await.expect("pause");
    b.add("q", "held", "{}", Duration::ZERO).await.expect("add");
    b.add("r", "other", "{}", Duration::ZERO)
        .await
        .expect("add");
    let (jobs, _) = b.claim("w", 5).await.expect("claim");
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["other"],
        "a paused queue yields"
    );
    b.resume("q").await.expect("resume");
    b.add("q", "gone", "{}", Duration::from_secs(60))
        .await
        .expect("add");
    assert_eq!(b.drain("q").await.expect("drain"), 2, "held and gone");
    assert!(b.claim("w", 5).await.expect("claim").0.is_empty());
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn no_rate_window_holds_more_than_the_limit() {
    // 50 starts per 200 ms; 400 instant jobs from 4 workers in this process.
    let cfg = GovernorConfig {
        rate_max: 50,
        rate_window: Duration::from_millis(200),
        ..fast()
    };
    let b = bus(vec![QueueConfig::new("q", 1, 100)], cfg).await;
    for i in 0..400 {
        b.add("q", &format!("j{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
    }
    struct Stamp(Arc<Mutex<Vec<Instant>>>, Arc<AtomicU32>);
    impl Handler for Stamp {
        async fn handle(&self, _job: &Claimed) -> Result<(), JobError> {
            if let Ok(mut v) = self.0.lock() {
                v.push(Instant::now());
            }
            self.1.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU32::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let w = Worker::new(b.clone(), Stamp(stamps.clone(), done.clone()), 25);
        let mut rx = stop_rx.clone();
        workers.push(tokio::spawn(w.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < 400 {
        assert!(started.elapsed() < Duration::from_secs(10), "all jobs ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    for w in workers {
        w.await.expect("join").expect("worker");
    }
    let mut t = stamps.lock().expect("lock").clone();
    t.sort();
    // The limit holds by Redis's clock; handlers start a little later than their claim, so
    // allow 2 starts of jitter per window as measured here.
    let window = Duration::from_millis(200);
    let worst = (0..t.len())
        .map(|i| t[i..].iter().take_while(|x| **x - t[i] < window).count())
        .max()
        .unwrap_or(0);
    assert!(
        worst <= 52,
        "{worst} starts in one 200 ms window (set {})",
        b.prefix()
    );
    // 400 starts at 50 per 200 ms need at least 7 full windows.
    assert!(elapsed >= Duration::from_millis(1_400), "{elapsed:?}");
    assert_eq!(b.counts("q").await.expect("counts").completed, 400);
    let counts: HashMap<&str, u64> = HashMap::from([("q", 400)]);
    assert_eq!(counts["q"], 400);
    b.destroy().await.expect("clean");
}

#[tokio::test]
async fn latencies_and_governor_use_say_what_was_measured() {
    let b = bus(vec![QueueConfig::new("a", 1, 50)], fast()).await;
    // Nothing ran: no figure, rather than a latency of zero.
    assert_eq!(b.latencies("a").await.expect("latencies"), [None, None]);
    for i in 0..32 {
        b.add("a", &format!("j{i}"), "{}", Duration::ZERO)
            .await
            .expect("add");
    }
    let (jobs, _) = b.claim("w", 32).await.expect("claim");
    assert_eq!(jobs.len(), 32);
    let used = b.governor_use().await.expect("governor");
    assert_eq!((used.claimed, used.started_in_window), (32, 32));
    tokio::time::sleep(Duration::from_millis(30)).await;
    for job in &jobs {
        assert!(b.complete("w", job, 0).await.expect("complete").0);
    }
    assert_eq!(b.governor_use().await.expect("governor").claimed, 0);
    // One job in 16 is sampled: 32 jobs give two samples of each phase, and every job ran
    // for at least the 30 ms it was held.
    let [wait, run] = b.latencies("a").await.expect("latencies");
    assert!(wait.is_some());
    let (p50, p99) = run.expect("run times sampled");
    assert!(p50 >= 30 && p99 >= p50, "{p50} {p99}");
}
