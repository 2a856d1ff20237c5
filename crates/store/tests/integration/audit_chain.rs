//! The audit log's hash chain against the real server (issue 25): sealed rows verify, and
//! every way of tampering by hand that the chain is meant to show is found and named.

use genesis_core::audit::AuditCategory;
use genesis_store::testing::TestDb;
use genesis_store::{AuditChainKey, AuditEvent, BreakKind, Database};

use crate::helpers::sqlstate;

async fn write(db: &Database, n: usize) {
    for i in 0..n {
        db.audit_record(
            &AuditEvent::new("operator:ada", AuditCategory::Security, "TEST_EVENT")
                .subject(format!("row-{i}"))
                .details(serde_json::json!({ "i": i, "email": "ada@example.com" })),
        )
        .await
        .expect("audit");
    }
}

async fn seal_all(db: &Database, key: &AuditChainKey) -> u64 {
    let mut total = 0;
    loop {
        let n = db.audit_seal_pending(key, 7).await.expect("seal");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// The id of the row at place `seq`.
async fn id_at(db: &Database, seq: i64) -> i64 {
    sqlx::query_scalar("SELECT id FROM genesis.audit_log WHERE chain_seq = $1")
        .bind(seq)
        .fetch_one(db.owner_pool())
        .await
        .expect("row")
}

#[tokio::test]
async fn a_sealed_log_verifies_and_each_kind_of_tampering_is_named() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let key = AuditChainKey::new([7; 32]);

    write(db, 20).await;
    let before = db.audit_verify(&key).await.expect("verify");
    assert_eq!((before.sealed, before.unsealed), (0, 20));
    // Sealed in batches of 7, each after the head the last one left.
    assert_eq!(seal_all(db, &key).await, 20);
    let ok = db.audit_verify(&key).await.expect("verify");
    assert!(ok.intact(), "{ok:?}");
    assert_eq!((ok.sealed, ok.unsealed), (20, 0));
    assert_eq!((ok.first_seq, ok.last_seq), (Some(1), Some(20)));
    // Another key does not verify it: the chain is the key's.
    let other = db
        .audit_verify(&AuditChainKey::new([8; 32]))
        .await
        .expect("verify");
    assert_eq!(other.broken, 20);

    // More rows join the chain after the head, and it still verifies.
    write(db, 3).await;
    assert_eq!(seal_all(db, &key).await, 3);
    assert!(db.audit_verify(&key).await.expect("verify").intact());

    // 1. A row changed by hand (the owner can; the runtime role cannot).
    let changed = id_at(db, 5).await;
    sqlx::query(
        "UPDATE genesis.audit_log SET details = '{\"i\": 4, \"email\": \"eve@example.com\"}' WHERE id = $1",
    )
    .bind(changed)
    .execute(db.owner_pool())
    .await
    .expect("tamper");
    let r = db.audit_verify(&key).await.expect("verify");
    let first = r.first_break.clone().expect("a break");
    assert_eq!(
        (first.seq, first.id, &first.kind),
        (5, changed, &BreakKind::Altered)
    );
    assert_eq!(r.broken, 1, "only the changed row's link breaks: {r:?}");
    assert!(first.to_string().contains(&changed.to_string()), "{first}");

    // 2. Rows removed by hand: the places they held are missing.
    sqlx::query("DELETE FROM genesis.audit_log WHERE chain_seq IN (10, 11)")
        .execute(db.owner_pool())
        .await
        .expect("remove");
    let r = db.audit_verify(&key).await.expect("verify");
    assert_eq!(r.broken, 2, "{r:?}");

    // 3. A row forged at the chain's end with a made-up link. An insert cannot arrive
    // sealed (the trigger empties the chain's columns), so the forger switches the trigger
    // off, as only the owner can.
    sqlx::raw_sql(
        "ALTER TABLE genesis.audit_log DISABLE TRIGGER audit_log_assign_id_and_time;
         INSERT INTO genesis.audit_log (id, actor, category, event, chain_seq, chain_hash)
         OVERRIDING SYSTEM VALUE
         SELECT 1000000, 'operator:eve', 'security', 'LOGIN', max(chain_seq) + 1, sha256('x')
         FROM genesis.audit_log;
         ALTER TABLE genesis.audit_log ENABLE TRIGGER audit_log_assign_id_and_time;",
    )
    .execute(db.owner_pool())
    .await
    .expect("forge");
    let r = db.audit_verify(&key).await.expect("verify");
    assert_eq!(r.broken, 3, "{r:?}");
    let last = r.last_seq.expect("last");
    assert_eq!(id_at(db, last).await, 1_000_000);

    // 4. A row inserted by hand with an old date, left for the sealer to seal.
    sqlx::raw_sql(
        "ALTER TABLE genesis.audit_log DISABLE TRIGGER audit_log_assign_id_and_time;
         INSERT INTO genesis.audit_log (id, occurred_at, actor, category, event)
         OVERRIDING SYSTEM VALUE VALUES (2000000, now() - interval '30 days', 'operator:eve', 'security', 'LOGIN');
         ALTER TABLE genesis.audit_log ENABLE TRIGGER audit_log_assign_id_and_time;",
    )
    .execute(db.owner_pool())
    .await
    .expect("backdate");
    assert_eq!(seal_all(db, &key).await, 1);
    let r = db.audit_verify(&key).await.expect("verify");
    assert_eq!(r.broken, 4, "{r:?}");
}

#[tokio::test]
async fn the_first_break_is_the_earliest_in_chain_order() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let key = AuditChainKey::new([7; 32]);
    write(db, 12).await;
    seal_all(db, &key).await;
    sqlx::query("DELETE FROM genesis.audit_log WHERE chain_seq = 9")
        .execute(db.owner_pool())
        .await
        .expect("remove");
    sqlx::query("UPDATE genesis.audit_log SET actor = 'operator:eve' WHERE chain_seq = 3")
        .execute(db.owner_pool())
        .await
        .expect("change");
    let r = db.audit_verify(&key).await.expect("verify");
    assert_eq!(r.broken, 2, "{r:?}");
    let first = r.first_break.expect("break");
    assert_eq!((first.seq, &first.kind), (3, &BreakKind::Altered));
    // The removal is named by the place after the gap.
    sqlx::query("UPDATE genesis.audit_log SET actor = 'operator:ada' WHERE chain_seq = 3")
        .execute(db.owner_pool())
        .await
        .expect("undo");
    let r = db.audit_verify(&key).await.expect("verify");
    let first = r.first_break.expect("break");
    assert_eq!(
        (first.seq, &first.kind),
        (10, &BreakKind::Missing { from_seq: 9 })
    );
    assert!(first.to_string().contains("missing"), "{first}");
}

#[tokio::test]
async fn the_runtime_role_can_only_fill_empty_places_after_the_head() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let key = AuditChainKey::new([7; 32]);
    write(db, 3).await;
    seal_all(db, &key).await;
    write(db, 1).await;
    let app = db.app_pool();
    let sealed: i64 = sqlx::query_scalar("SELECT id FROM genesis.audit_log WHERE chain_seq = 2")
        .fetch_one(app)
        .await
        .expect("id");
    let unsealed: i64 =
        sqlx::query_scalar("SELECT id FROM genesis.audit_log WHERE chain_seq IS NULL")
            .fetch_one(app)
            .await
            .expect("id");
    let seal = |ids: Vec<i64>, first: i64| async move {
        sqlx::query("SELECT genesis.audit_seal($1, $2, $3)")
            .bind(ids.clone())
            .bind(vec![vec![0u8; 32]; ids.len()])
            .bind(first)
            .execute(app)
            .await
    };
    // A sealed row cannot be resealed, a place cannot be skipped or reused.
    assert!(seal(vec![sealed], 4).await.is_err(), "reseal");
    assert!(seal(vec![unsealed], 6).await.is_err(), "gap");
    assert!(seal(vec![unsealed], 2).await.is_err(), "reuse");
    // Nor can it write the columns itself.
    let err = sqlx::query("UPDATE genesis.audit_log SET chain_hash = NULL WHERE chain_seq = 2")
        .execute(app)
        .await
        .expect_err("no update");
    assert_eq!(sqlstate(&err), "42501");
    // Its insert arrives unsealed whatever it asks for.
    sqlx::query(
        "INSERT INTO genesis.audit_log (actor, category, event, chain_seq, chain_hash, personal_mac)
         VALUES ('t', 'security', 'X', 99, sha256('x'), sha256('y'))",
    )
    .execute(app)
    .await
    .expect("insert");
    let r = db.audit_verify(&key).await.expect("verify");
    assert!(r.intact(), "{r:?}");
    assert_eq!((r.sealed, r.unsealed), (3, 2));
    // A made-up link through the function is found like any other.
    seal(vec![unsealed], 4)
        .await
        .expect("the function fills an empty place");
    let r = db.audit_verify(&key).await.expect("verify");
    assert_eq!(
        r.first_break.map(|b| (b.seq, b.kind)),
        Some((4, BreakKind::Altered))
    );
}
