//! The reconciler driver against real PostgreSQL: two regional databases, a reconciler
//! whose pass fails (or panics) on one of them, leader election, the published status, and
//! a wake-up sent through the database from "another replica".

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use genesis_control::workers::driver::{ReconcilerStatus, Wakers, drive};
use genesis_control::workers::reconciler::{Merge, Part, Reconciler, Retry};
use genesis_core::Region;
use genesis_store::RegionalStore;
use genesis_store::testing::TestDb;
use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Default, Serialize)]
struct Count {
    passes: u32,
}

impl Merge for Count {
    fn merge(&mut self, o: Self) {
        self.passes += o.passes;
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the {0} database is down")]
struct Down(String);

/// Counts its passes; the part serving `broken` fails (or panics), always.
struct Flaky {
    stores: RegionalStore,
    broken: Option<Region>,
    panic: bool,
    passes: AtomicU32,
}

impl Reconciler for Flaky {
    type Report = Count;
    type Error = Down;
    const NAME: &'static str = "test-flaky";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<Count, Down> {
        // Touch the database, as a real pass does.
        part.db
            .reconciler_statuses()
            .await
            .map_err(|e| Down(e.to_string()))?;
        if self.broken.is_some_and(|b| part.regions.contains(&b)) {
            if self.panic {
                panic!("a bug in one region");
            }
            return Err(Down(part.label.clone()));
        }
        let n = self.passes.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Count { passes: n })
    }

    fn error_policy(&self, _error: &Down) -> Retry {
        // Longer than the test: a failing part is tried once, then left alone.
        Retry::After(Duration::from_secs(3600))
    }
}

async fn published(db: &genesis_store::Database) -> Option<ReconcilerStatus> {
    db.reconciler_statuses()
        .await
        .expect("statuses")
        .into_iter()
        .find(|r| r.name == "test-flaky")
        .and_then(|r| serde_json::from_value(r.status).ok())
}

async fn wait_for(
    db: &genesis_store::Database,
    what: &str,
    ok: impl Fn(&ReconcilerStatus) -> bool,
) -> ReconcilerStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = published(db).await
            && ok(&s)
        {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failing_part_does_not_stop_the_others(panic: bool) {
    let (home, eu, stores) = genesis_store::testing::two_regions().await.expect("dbs");
    // Named by region, whatever the configuration's order: the coordinator is us-east's.
    assert_eq!(
        stores.coordinator().options().admin.get_database(),
        Some(home.name.as_str())
    );
    let flaky = Arc::new(Flaky {
        stores: stores.clone(),
        broken: Some(Region::EuWest),
        panic,
        passes: AtomicU32::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let driving = tokio::spawn(drive(
        flaky.clone(),
        Duration::from_millis(100),
        home.db.clone(),
        Default::default(),
        stopped,
    ));
    // The healthy part keeps passing while the broken one waits out its retry policy.
    let s = wait_for(&home.db, "the healthy part passes", |s| {
        s.parts
            .iter()
            .any(|p| p.part != "eu-west" && p.last_report.is_some() && p.consecutive_failures == 0)
            && s.parts
                .iter()
                .any(|p| p.part == "eu-west" && p.last_error.is_some())
    })
    .await;
    let broken = s
        .parts
        .iter()
        .find(|p| p.part == "eu-west")
        .expect("eu part");
    assert_eq!(
        broken.consecutive_failures, 1,
        "tried once, then backed off"
    );
    assert!(broken.retry_at.is_some());
    assert!(broken.last_report.is_none());
    let error = broken.last_error.as_deref().unwrap_or_default();
    if panic {
        assert!(error.contains("panicked: a bug in one region"), "{error}");
    } else {
        assert_eq!(error, "the eu-west database is down");
    }
    let before = flaky.passes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        flaky.passes.load(Ordering::SeqCst) >= before + 3,
        "the healthy part kept its period"
    );
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), driving)
        .await
        .expect("the driver stops when told")
        .expect("no panic escapes the driver");
    home.cleanup().await.expect("cleanup");
    eu.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_failing_region_is_retried_by_policy_while_the_others_run() {
    failing_part_does_not_stop_the_others(false).await;
}

#[tokio::test]
async fn a_panicking_region_is_reported_and_does_not_kill_the_loop() {
    failing_part_does_not_stop_the_others(true).await;
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_wake_reaches_it_from_another_replica() {
    let t = TestDb::create().await.expect("db");
    let stores = RegionalStore::single(t.db.clone());
    let (stop, stopped) = watch::channel(false);
    // Two replicas, each with its own bells and wake-up listener; a period far longer than
    // the test, so only wakes make passes (the first tick passes at once).
    let mut replicas = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let flaky = Arc::new(Flaky {
            stores: stores.clone(),
            broken: None,
            panic: false,
            passes: AtomicU32::new(0),
        });
        let wakers = Wakers::default();
        let bell = wakers.bell("test-flaky");
        tasks.push(tokio::spawn({
            let wakers = wakers.clone();
            let db = t.db.clone();
            let stopped = stopped.clone();
            async move { wakers.listen(db, stopped).await }
        }));
        tasks.push(tokio::spawn(drive(
            flaky.clone(),
            Duration::from_secs(3600),
            t.db.clone(),
            bell,
            stopped.clone(),
        )));
        replicas.push((flaky, wakers));
    }
    let first = wait_for(&t.db, "a first pass", |s| s.passes >= 1).await;
    // Let the listeners start, then wake from a third party (the database, as the API does).
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.db.reconciler_wake("test-flaky").await.expect("wake");
    let second = wait_for(&t.db, "a pass after the wake", |s| s.passes > first.passes).await;
    assert_eq!(second.passes, first.passes + 1);
    let passed: Vec<u32> = replicas
        .iter()
        .map(|(f, _)| f.passes.load(Ordering::SeqCst))
        .collect();
    assert!(
        passed.contains(&0) && passed.iter().sum::<u32>() == second.passes as u32,
        "one replica led, the other never passed: {passed:?}"
    );
    let _ = stop.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    t.cleanup().await.expect("cleanup");
}
