//! What the runtime role must not be able to do, proven against the real server.

use genesis_store::testing::TestDb;
use sqlx::AssertSqlSafe;

use crate::helpers::{provision, sqlstate};

#[tokio::test]
async fn runtime_role_cannot_bypass_the_data_layer() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = provision(db, "priv").await;
    let partition = format!("genesis.\"{}\"", ws.slug.partition_table());
    let app = db.app_pool();

    let denied = |sql: String| async move {
        let err = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(app)
            .await
            .expect_err(&sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    };
    // No privilege on partitions themselves.
    denied(format!("SELECT count(*) FROM {partition}")).await;
    denied(format!("INSERT INTO {partition} (workspace_id, id, email) VALUES ('{}', gen_random_uuid(), 'a@b.co')", ws.id)).await;
    // Nor on the hash buckets between the root and the partitions.
    denied("SELECT count(*) FROM genesis.leads_h00".into()).await;
    // The audit log is append-only.
    denied("UPDATE genesis.audit_log SET actor = 'x'".into()).await;
    denied("DELETE FROM genesis.audit_log".into()).await;
    denied("TRUNCATE genesis.audit_log".into()).await;
    // No DDL: partitions only through the manager.
    denied(format!(
        "CREATE TABLE genesis.leads_p_evil PARTITION OF genesis.leads FOR VALUES IN ('{}')",
        uuid::Uuid::new_v4()
    ))
    .await;
    denied("CREATE TABLE genesis.evil (x int)".into()).await;
    denied(format!("DROP TABLE {partition}")).await;
    denied(format!(
        "ALTER TABLE genesis.leads DETACH PARTITION {partition}"
    ))
    .await;
    denied("ALTER TABLE genesis.leads DISABLE ROW LEVEL SECURITY".into()).await;
    denied("DROP POLICY leads_tenant_isolation ON genesis.leads".into()).await;
    // The runtime role cannot become the owner.
    denied("SET ROLE genesis_owner".into()).await;
    // Control tables the manager owns are read-only to the runtime role.
    denied("DELETE FROM genesis.partition_registry".into()).await;

    // What it may do: append to the audit log and read it.
    sqlx::raw_sql(AssertSqlSafe(
        "INSERT INTO genesis.audit_log (actor, category, event) VALUES ('t', 'security', 'PROBE')",
    ))
    .execute(app)
    .await
    .expect("append is allowed");
    // Its ids and times are the database's: a row that asks for id -1 gets the next id and
    // the time of its insert, and one that asks to be dated 2001 is refused.
    let (id, age): (i64, f64) = sqlx::query_as(
        "INSERT INTO genesis.audit_log (id, actor, category, event)
         VALUES (-1, 't', 'security', 'FORGED')
         RETURNING id, extract(epoch from now() - occurred_at)::float8",
    )
    .fetch_one(app)
    .await
    .expect("the insert is allowed; its id is not");
    assert!(id > 0, "id {id}");
    assert!(age.abs() < 1.0, "dated {age} s ago");
    let err = sqlx::query(
        "INSERT INTO genesis.audit_log (occurred_at, actor, category, event)
         VALUES ('2001-01-01', 't', 'security', 'FORGED')",
    )
    .execute(app)
    .await
    .expect_err("a chosen date is refused");
    assert_eq!(sqlstate(&err), "23514");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM genesis.audit_log WHERE id <= 0")
        .fetch_all(app)
        .await
        .expect("ids");
    assert!(ids.is_empty(), "{ids:?}");
    // And only under spec 63.1's categories: an invented one is refused, whoever writes it.
    for pool in [app, t.db.owner_pool()] {
        let err = sqlx::raw_sql(AssertSqlSafe(
            "INSERT INTO genesis.audit_log (actor, category, event) VALUES ('t', 'misc', 'PROBE')",
        ))
        .execute(pool)
        .await
        .expect_err("no such category");
        assert_eq!(sqlstate(&err), "23514");
    }

    let roles: (bool, bool, String) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, current_setting('plan_cache_mode') FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(app)
    .await
    .expect("role");
    assert_eq!(roles, (false, false, "force_custom_plan".to_string()));
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn the_context_function_is_never_immutable() {
    // An IMMUTABLE wrapper around current_setting can be folded into a cached plan and then
    // serve one tenant's rows to another; it must stay STABLE.
    let t = TestDb::create().await.expect("test database");
    let volatility: String = sqlx::query_scalar(
        "SELECT provolatile::text FROM pg_proc WHERE oid = 'genesis.current_workspace_id()'::regprocedure",
    )
    .fetch_one(t.db.owner_pool())
    .await
    .expect("pg_proc");
    assert_eq!(volatility, "s");
    t.cleanup().await.expect("cleanup");
}
