//! Partition DDL must not stall other tenants, even behind a long-open transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use genesis_core::LeadStatus;
use genesis_store::{PartitionManager, testing::TestDb};

use crate::helpers::{lead, new_workspace, provision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_does_not_delay_a_third_tenant_behind_an_open_transaction() {
    let t = TestDb::create().await.expect("test database");
    let db = t.db.clone();
    let holder = provision(&db, "hold").await;
    let third = provision(&db, "third").await;
    let mut s = db.tenant_session(third.id).await.expect("session");
    for i in 0..200 {
        s.lead_insert(&lead(&format!("l{i}@third.example"), LeadStatus::New))
            .await
            .expect("insert");
    }
    s.commit().await.expect("commit");

    // Tenant 1 holds a transaction that has read the parent table for 5 seconds.
    let hold_db = db.clone();
    let hold = tokio::spawn(async move {
        let mut s = hold_db.tenant_session(holder.id).await.expect("session");
        s.lead_count(None).await.expect("count");
        tokio::time::sleep(Duration::from_secs(5)).await;
        s.commit().await.expect("commit");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Tenant 3 queries continuously; record the worst latency.
    let stop = Arc::new(AtomicBool::new(false));
    let (q_db, q_stop) = (db.clone(), stop.clone());
    let probe = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let mut n = 0u32;
        while !q_stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let mut s = q_db.tenant_session(third.id).await.expect("session");
            let page = s.lead_page(LeadStatus::New, None, 50).await.expect("page");
            s.commit().await.expect("commit");
            assert_eq!(page.items.len(), 50);
            worst = worst.max(started.elapsed());
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (worst, n)
    });

    // Create and drop a partition for a fourth tenant meanwhile.
    let mgr = PartitionManager::new(db.clone());
    let ddl_started = Instant::now();
    let fourth = mgr
        .workspace_provision(&new_workspace("fourth"), "test")
        .await
        .expect("create while a transaction is open");
    let created_after = ddl_started.elapsed();
    mgr.drop(fourth.id, "test")
        .await
        .expect("drop while a transaction is open");
    hold.await.expect("holder");
    stop.store(true, Ordering::Relaxed);
    let (worst, n) = probe.await.expect("probe");

    assert!(
        created_after < Duration::from_secs(4),
        "ATTACH must not wait for the open transaction ({created_after:?})"
    );
    assert!(n > 20, "the probe kept running ({n} queries)");
    assert!(
        worst < Duration::from_millis(100),
        "third tenant's worst query took {worst:?}"
    );
    t.cleanup().await.expect("cleanup");
}
