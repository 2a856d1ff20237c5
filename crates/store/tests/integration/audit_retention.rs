//! The audit log's retention (spec 63.2) against the real server: months past the online
//! window move to the archive once sealed, resuming a move a crash interrupted; months past
//! 7 years are dropped and leave a checkpoint; and the chain verifies through all of it.

use chrono::{Months, Utc};
use genesis_core::audit::AuditCategory;
use genesis_store::testing::TestDb;
use genesis_store::{AuditChainKey, AuditEvent, BreakKind, Database};

use crate::helpers::sqlstate;

async fn write(db: &Database, n: usize) {
    for i in 0..n {
        db.audit_record(
            &AuditEvent::new("operator:ada", AuditCategory::Security, "TEST_EVENT")
                .subject(format!("row-{i}")),
        )
        .await
        .expect("audit");
    }
}

async fn seal_all(db: &Database, key: &AuditChainKey) -> u64 {
    db.audit_seal_backlog(key, 100, None).await.expect("seal")
}

async fn count(db: &Database, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM genesis.{table}"
    )))
    .fetch_one(db.owner_pool())
    .await
    .expect("count")
}

/// The test moves the clock years ahead, but rows are dated by the database's own clock:
/// once the month they fall in has left the online log, it needs a partition again.
async fn partition_for_today(db: &Database) {
    sqlx::query("SELECT genesis.audit_partitions_ensure(now(), 0)")
        .execute(db.owner_pool())
        .await
        .expect("partition");
}

#[tokio::test]
async fn old_months_are_archived_then_dropped_and_the_chain_verifies_throughout() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let key = AuditChainKey::new([3; 32]);
    let now = Utc::now();
    let ahead = |months: u32| now.checked_add_months(Months::new(months)).expect("date");

    write(db, 5).await;
    assert_eq!(seal_all(db, &key).await, 5);
    // Today nothing is due; the months ahead are ready.
    let r = db.audit_retention_pass(now).await.expect("pass");
    assert!(r.archived.is_empty() && r.dropped.is_empty(), "{r:?}");

    // 14 months on, this month is due, but waits while a row of it is unsealed.
    write(db, 1).await;
    let r = db.audit_retention_pass(ahead(14)).await.expect("pass");
    assert_eq!(r.waiting, ["audit_log_p0"], "{r:?}");
    assert!(r.created >= 1, "the months ahead of the new date: {r:?}");
    assert_eq!(seal_all(db, &key).await, 1);

    // A move a crash interrupted between its detach and its attach is finished.
    sqlx::raw_sql(
        "INSERT INTO genesis.audit_partitions
           (name, bound, upper_bound, state, rows, first_seq, last_seq, last_hash)
         SELECT 'audit_log_p0', pg_get_expr(c.relpartbound, c.oid),
                genesis.audit_month(now()) + interval '1 month', 'archiving', 6, 1, 6,
                (SELECT chain_hash FROM genesis.audit_log WHERE chain_seq = 6)
         FROM pg_class c WHERE c.relname = 'audit_log_p0';
         ALTER TABLE genesis.audit_log DETACH PARTITION genesis.audit_log_p0;",
    )
    .execute(db.owner_pool())
    .await
    .expect("half a move");
    let r = db.audit_retention_pass(ahead(14)).await.expect("pass");
    assert_eq!(r.archived, ["audit_log_p0"], "{r:?}");
    assert_eq!(count(db, "audit_log").await, 0);
    assert_eq!(count(db, "audit_archive").await, 6);
    assert_eq!(count(db, "audit_history").await, 6);
    let months = db.audit_archived_months().await.expect("months");
    assert_eq!(
        months
            .iter()
            .map(|m| (m.name.as_str(), m.state.as_str(), m.rows, m.last_seq))
            .collect::<Vec<_>>(),
        [("audit_log_p0", "archived", 6, Some(6))]
    );
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    assert_eq!((v.sealed, v.first_seq, v.last_seq), (6, Some(1), Some(6)));

    // The runtime role reads the archive but cannot write it.
    let err = sqlx::query(
        "INSERT INTO genesis.audit_archive (id, actor, category, event) VALUES (1, 'x', 'security', 'X')",
    )
    .execute(db.app_pool())
    .await
    .expect_err("no insert");
    assert_eq!(sqlstate(&err), "42501");

    // New rows continue the chain after its archived head.
    partition_for_today(db).await;
    write(db, 2).await;
    assert_eq!(seal_all(db, &key).await, 2);
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.last_seq, Some(8));

    // 8 years on, the first month is past its 7 years: dropped, leaving a checkpoint, and
    // the month that followed it is archived.
    let r = db.audit_retention_pass(ahead(96)).await.expect("pass");
    assert!(r.dropped.contains(&"audit_log_p0".to_owned()), "{r:?}");
    assert_eq!(count(db, "audit_history").await, 2);
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    assert_eq!(
        (v.checkpoint_seq, v.first_seq, v.last_seq),
        (Some(6), Some(7), Some(8))
    );

    // Years later still, every month is gone; the chain goes on from the last checkpoint.
    db.audit_retention_pass(ahead(200)).await.expect("pass");
    assert_eq!(count(db, "audit_history").await, 0);
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    assert_eq!((v.checkpoint_seq, v.sealed), (Some(8), 0));
    partition_for_today(db).await;
    write(db, 1).await;
    assert_eq!(seal_all(db, &key).await, 1);
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    assert_eq!((v.first_seq, v.last_seq), (Some(9), Some(9)));

    // A checkpoint removed by hand does not hide the dropped places: they are missing.
    sqlx::query("DELETE FROM genesis.audit_partitions")
        .execute(db.owner_pool())
        .await
        .expect("tamper");
    let v = db.audit_verify(&key).await.expect("verify");
    assert_eq!(
        v.first_break.map(|b| b.kind),
        Some(BreakKind::Missing { from_seq: 1 })
    );
    t.cleanup().await.expect("cleanup");
}

/// Spec 63.2, "GDPR: can delete on request": a tenant's deletion anonymises its audit rows
/// in archived months as in the online log, and the chain still verifies.
#[tokio::test]
async fn a_deletion_anonymises_the_tenants_archived_months_too() {
    use genesis_core::deletion::{DeletionStep, DeletionTrigger};
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let key = AuditChainKey::new([4; 32]);
    let now = Utc::now();
    let ws = crate::helpers::provision(db, "archived").await;
    db.audit_record(
        &AuditEvent::new(
            "account:zelda@bakery.example",
            AuditCategory::Data,
            "EXPORTED",
        )
        .workspace(ws.id)
        .subject("zelda@bakery.example"),
    )
    .await
    .expect("audit");
    seal_all(db, &key).await;
    let r = db
        .audit_retention_pass(now.checked_add_months(Months::new(14)).expect("date"))
        .await
        .expect("pass");
    assert_eq!(r.archived, ["audit_log_p0"], "{r:?}");
    partition_for_today(db).await;

    // The saga, brought to step 6.
    db.deletion_request(
        ws.id,
        DeletionTrigger::Fraud,
        Some("stolen cards"),
        "operator:ada",
        now,
    )
    .await
    .expect("request");
    db.deletion_begin(ws.id, "test", Utc::now())
        .await
        .expect("begin");
    for step in &DeletionStep::ALL[..5] {
        db.deletion_step_done(ws.id, *step, "test", serde_json::json!({}), None)
            .await
            .expect("step");
    }
    assert!(
        db.deletion_anonymise_audit(ws.id, "test", &key)
            .await
            .expect("anonymise")
    );
    let (archived, personal): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE actor <> 'anonymised'
                                            OR strpos(coalesce(subject, ''), 'zelda') > 0)
         FROM genesis.audit_archive WHERE workspace_id = $1",
    )
    .bind(ws.id.as_uuid())
    .fetch_one(db.owner_pool())
    .await
    .expect("archive");
    assert!(archived >= 2, "the tenant's archived rows: {archived}");
    assert_eq!(personal, 0);
    seal_all(db, &key).await;
    let v = db.audit_verify(&key).await.expect("verify");
    assert!(v.intact(), "{v:?}");
    t.cleanup().await.expect("cleanup");
}

/// An hourly pass with nothing to create takes no lock on the online log: a transaction
/// holding audit rows open does not make it wait (nor, behind it, every audited insert).
#[tokio::test]
async fn a_pass_with_nothing_to_do_does_not_wait_for_open_transactions() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    db.audit_retention_pass(Utc::now())
        .await
        .expect("first pass");
    let mut open = db.app_pool().begin().await.expect("tx");
    sqlx::query(
        "INSERT INTO genesis.audit_log (actor, category, event) VALUES ('t', 'security', 'OPEN')",
    )
    .execute(&mut *open)
    .await
    .expect("insert");
    let pass = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        db.audit_retention_pass(Utc::now()),
    )
    .await
    .expect("the pass does not wait for the open transaction")
    .expect("pass");
    assert_eq!(pass.created, 0, "{pass:?}");
    open.rollback().await.expect("rollback");
    t.cleanup().await.expect("cleanup");
}
