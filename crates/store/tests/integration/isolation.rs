//! Tenant isolation: every session sees exactly its own rows, whatever the data.

use std::collections::{BTreeMap, BTreeSet};

use genesis_core::LeadStatus;
use genesis_store::{Caller, Database, RefusalReason, StoreError, testing::TestDb};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{lead, provision};

fn status_strategy() -> impl Strategy<Value = LeadStatus> {
    proptest::sample::select(LeadStatus::ALL.to_vec())
}

/// Per workspace: a set of (local part, status).
fn tenants_strategy() -> impl Strategy<Value = Vec<BTreeMap<String, LeadStatus>>> {
    proptest::collection::vec(
        proptest::collection::btree_map("[a-z]{1,8}", status_strategy(), 0..25),
        2..5,
    )
}

pub async fn check_isolation(db: &Database, tenants: &[BTreeMap<String, LeadStatus>]) {
    let mut ids = Vec::new();
    for leads in tenants {
        let ws = provision(db, "iso").await;
        let mut s = db.tenant_session(ws.id).await.expect("session");
        for (local, status) in leads {
            s.lead_insert(&lead(&format!("{local}@{}.example", ws.slug), *status))
                .await
                .expect("insert");
        }
        s.commit().await.expect("commit");
        ids.push(ws);
    }
    let mut all_lead_ids: Vec<(usize, uuid::Uuid)> = Vec::new();
    for (i, ws) in ids.iter().enumerate() {
        let mut s = db.tenant_session(ws.id).await.expect("session");
        assert_eq!(
            s.lead_count(None).await.expect("count"),
            tenants[i].len() as i64
        );
        let mut seen = BTreeSet::new();
        for status in LeadStatus::ALL {
            let mut cursor = None;
            loop {
                let page = s.lead_page(status, cursor, 7).await.expect("page");
                for l in &page.items {
                    assert_eq!(l.status, status);
                    assert!(seen.insert(l.email.clone()), "duplicate across pages");
                    all_lead_ids.push((i, l.id));
                }
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        let expected: BTreeSet<String> = tenants[i]
            .keys()
            .map(|local| format!("{local}@{}.example", ws.slug))
            .collect();
        assert_eq!(seen, expected, "tenant {i} sees exactly its own leads");
        s.commit().await.expect("commit");
    }
    // Another tenant's lead ids are invisible and undeletable.
    for (owner, lead_id) in &all_lead_ids {
        for (i, ws) in ids.iter().enumerate() {
            if i == *owner {
                continue;
            }
            let mut s = db.tenant_session(ws.id).await.expect("session");
            assert!(matches!(
                s.lead_get(*lead_id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(!s.lead_delete(*lead_id).await.expect("delete"));
            s.rollback().await.expect("rollback");
        }
    }
}

#[test]
fn every_tenant_session_sees_exactly_its_own_rows() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = rt.block_on(TestDb::create()).expect("test database");
    let mut runner = TestRunner::new(Config {
        cases: 8,
        ..Config::default()
    });
    runner
        .run(&tenants_strategy(), |tenants| {
            rt.block_on(check_isolation(&t.db, &tenants));
            Ok(())
        })
        .expect("isolation property holds");
    rt.block_on(t.cleanup()).expect("cleanup");
}

/// Raw context values on the runtime role: none and empty give zero rows, malformed an error.
pub async fn check_fail_closed(db: &Database) {
    let ws = provision(db, "fc").await;
    let mut s = db.tenant_session(ws.id).await.expect("session");
    s.lead_insert(&lead("a@fc.example", LeadStatus::New))
        .await
        .expect("insert");
    s.commit().await.expect("commit");

    // No context or an empty one: zero rows, even when the query names the tenant.
    for setting in [None, Some("")] {
        let mut tx = db.app_pool().begin().await.expect("tx");
        if let Some(v) = setting {
            sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
                .bind(v)
                .execute(&mut *tx)
                .await
                .expect("set");
        }
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM genesis.leads WHERE workspace_id = $1")
                .bind(ws.id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .expect("count");
        assert_eq!(n, 0, "context {setting:?} must see nothing");
        let all: i64 = sqlx::query_scalar("SELECT count(*) FROM genesis.leads")
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(all, 0, "context {setting:?} must see nothing");
        tx.rollback().await.expect("rollback");
    }
    // A malformed context: the statement fails (invalid_text_representation), no rows leak.
    for setting in [
        "not-a-uuid",
        "'; drop table x; --",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        let mut tx = db.app_pool().begin().await.expect("tx");
        sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
            .bind(setting)
            .execute(&mut *tx)
            .await
            .expect("set");
        let err = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM genesis.leads WHERE workspace_id = $1",
        )
        .bind(ws.id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .expect_err("malformed context must not return rows");
        assert_eq!(crate::helpers::sqlstate(&err), "22P02", "{setting}: {err}");
        tx.rollback().await.expect("rollback");
    }

    // Context of another tenant: neither reads nor writes reach this one.
    let other = provision(db, "fc2").await;
    let mut tx = db.app_pool().begin().await.expect("tx");
    sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
        .bind(other.id.to_string())
        .execute(&mut *tx)
        .await
        .expect("set");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM genesis.leads WHERE workspace_id = $1")
        .bind(ws.id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(n, 0);
    let insert = sqlx::query(
        "INSERT INTO genesis.leads (workspace_id, id, email) VALUES ($1, gen_random_uuid(), 'x@y.example')",
    )
    .bind(ws.id.as_uuid())
    .execute(&mut *tx)
    .await
    .expect_err("WITH CHECK refuses writes into another tenant");
    assert_eq!(crate::helpers::sqlstate(&insert), "42501");
    drop(tx);

    // The context does not leak into the next transaction on the same connection.
    let mut conn = db.app_pool().acquire().await.expect("conn");
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("tx");
    sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
        .bind(ws.id.to_string())
        .execute(&mut *tx)
        .await
        .expect("set");
    tx.commit().await.expect("commit");
    // The next transaction on the same connection starts without context. (A read in a
    // transaction: behind PgBouncer 1.18 the runtime never issues statements outside one.)
    let mut next = sqlx::Connection::begin(&mut *conn).await.expect("tx");
    let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM genesis.leads")
        .fetch_one(&mut *next)
        .await
        .expect("count");
    assert_eq!(leaked, 0, "SET LOCAL context ends with its transaction");
    next.rollback().await.expect("rollback");
}

#[tokio::test]
async fn fail_closed_without_valid_context() {
    let t = TestDb::create().await.expect("test database");
    check_fail_closed(&t.db).await;
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn the_gate_refuses_and_audits_bad_requests() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let a = provision(db, "gate_a").await;
    let b = provision(db, "gate_b").await;
    let caller = Caller::Tenant(a.id);
    let cases = [
        ("", RefusalReason::MissingContext),
        ("abc", RefusalReason::MalformedId),
        (
            "00000000-0000-0000-0000-000000000000",
            RefusalReason::MalformedId,
        ),
        (&*b.id.to_string(), RefusalReason::CallerMismatch),
    ];
    for (requested, reason) in &cases {
        match db.tenant_open(&caller, requested).await {
            Err(StoreError::AccessRefused(r)) => assert_eq!(r, *reason),
            other => panic!("{requested:?} must be refused, got {other:?}"),
        }
    }
    let denied = db
        .audit_list(Some(a.id), Some("PERMISSION_DENIED"), 10)
        .await
        .expect("audit");
    assert_eq!(denied.len(), cases.len(), "every refusal is audited");
    assert!(denied.iter().all(|e| e.actor == format!("tenant:{}", a.id)));
    let reasons: BTreeSet<String> = denied
        .iter()
        .filter_map(|e| e.details["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        reasons,
        ["caller_mismatch", "malformed_id", "missing_context"]
            .map(String::from)
            .into()
    );
    // The rightful caller gets in.
    let s = db
        .tenant_open(&caller, &a.id.to_string())
        .await
        .expect("own workspace");
    assert_eq!(s.workspace_id(), a.id);
    s.rollback().await.expect("rollback");
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn bulk_import_counts_duplicates_and_respects_isolation() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let a = provision(db, "imp_a").await;
    let b = provision(db, "imp_b").await;
    let batch: Vec<_> = (0..12_000)
        .map(|i| lead(&format!("user{}@imp.example", i % 10_000), LeadStatus::New))
        .collect();
    let mut s = db.tenant_session(a.id).await.expect("session");
    let report = s.lead_import(&batch).await.expect("import");
    assert_eq!(report.received, 12_000);
    assert_eq!(report.inserted, 10_000);
    assert_eq!(report.duplicates, 2_000);
    // Re-import in the same session: everything is a duplicate now.
    let again = s.lead_import(&batch[..100]).await.expect("import again");
    assert_eq!(again.inserted, 0);
    s.commit().await.expect("commit");
    let mut sb = db.tenant_session(b.id).await.expect("session");
    assert_eq!(sb.lead_count(None).await.expect("count"), 0);
    let mut sa = db.tenant_session(a.id).await.expect("session");
    assert_eq!(
        sa.lead_count(Some(LeadStatus::New)).await.expect("count"),
        10_000
    );
    // Awkward CSV content survives the COPY path.
    let mut odd = lead("odd@imp.example", LeadStatus::Replied);
    odd.company = Some("Quote \" comma , newline \n end".into());
    odd.first_name = None;
    sa.lead_import(std::slice::from_ref(&odd))
        .await
        .expect("import odd");
    let page = sa
        .lead_page(LeadStatus::Replied, None, 10)
        .await
        .expect("page");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].company, odd.company);
    assert_eq!(page.items[0].first_name, None);
    sa.commit().await.expect("commit");
    sb.commit().await.expect("commit");
    t.cleanup().await.expect("cleanup");
}

/// Used by the PgBouncer test to rerun the same checks through the pooler.
pub async fn run_all_isolation_checks(db: &Database) {
    let mut rng_tenants = Vec::new();
    for i in 0..3 {
        let mut m = BTreeMap::new();
        for j in 0..(5 + i * 3) {
            m.insert(
                format!("p{i}x{j}"),
                LeadStatus::ALL[j % LeadStatus::ALL.len()],
            );
        }
        rng_tenants.push(m);
    }
    check_isolation(db, &rng_tenants).await;
    check_fail_closed(db).await;
}
