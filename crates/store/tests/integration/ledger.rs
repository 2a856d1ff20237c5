//! The Genesis Wallet's ledger against the real server: idempotent ids, two-phase
//! transfers, linked chains, expiry, and a database that refuses an overdraft whoever asks.

use std::sync::Arc;

use genesis_core::money::{Millicents, TransferKind};
use genesis_store::ledger::{NewTransfer, Phase, Refusal, TransferOutcome, wallet_account};
use genesis_store::testing::TestDb;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::helpers::{provision, sqlstate};

fn transfer(
    ws: genesis_core::WorkspaceId,
    kind: TransferKind,
    amount: i64,
    phase: Phase,
) -> NewTransfer {
    NewTransfer {
        id: Uuid::now_v7(),
        workspace: ws,
        kind,
        amount: Millicents(amount),
        phase,
        reference: None,
    }
}

async fn funded(db: &genesis_store::Database, millicents: i64) -> genesis_core::WorkspaceId {
    let ws = provision(db, "wallet").await.id;
    db.wallet_open(ws).await.expect("wallet");
    let deposit = transfer(ws, TransferKind::Deposit, millicents, Phase::Single);
    db.ledger_transfer(deposit, "test")
        .await
        .expect("db")
        .expect("deposit");
    ws
}

#[tokio::test]
async fn the_same_id_is_the_same_transfer() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = funded(db, 100_000).await;
    let charge = transfer(ws, TransferKind::CseSearch, 500, Phase::Single);
    let first = db
        .ledger_transfer(charge.clone(), "test")
        .await
        .expect("db");
    assert!(
        matches!(first, Ok(TransferOutcome::Created(_))),
        "{first:?}"
    );
    let again = db
        .ledger_transfer(charge.clone(), "test")
        .await
        .expect("db");
    match (&first, &again) {
        (Ok(a), Ok(TransferOutcome::Exists(b))) => assert_eq!(a.transfer(), b),
        _ => panic!("a repeat must answer the stored transfer: {again:?}"),
    }
    let mut changed = charge.clone();
    changed.amount = Millicents(501);
    let refused = db.ledger_transfer(changed, "test").await.expect("db");
    assert_eq!(refused, Err(Refusal::ExistsWithDifferentFields));
    let mut other_kind = charge;
    other_kind.kind = TransferKind::ApifyScrape;
    let refused = db.ledger_transfer(other_kind, "test").await.expect("db");
    assert_eq!(refused, Err(Refusal::ExistsWithDifferentFields));
    let balance = db.wallet_balance(ws).await.expect("db").expect("wallet");
    assert_eq!(balance.balance, Millicents(99_500), "charged once");
    assert_eq!(balance.lifetime_usage, Millicents(500));
    assert_eq!(balance.lifetime_deposits, Millicents(100_000));
    // Each transfer applied was audited once, under spec 63.1's names: the deposit that
    // funded the wallet, and the charge.
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT event FROM genesis.audit_log WHERE workspace_id = $1 AND category = 'billing' ORDER BY id",
    )
    .bind(ws.as_uuid())
    .fetch_all(db.owner_pool())
    .await
    .expect("events");
    assert_eq!(audited, ["WALLET_DEPOSIT", "WALLET_DEBIT"]);
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn reservations_are_posted_voided_or_expired_once() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = funded(db, 10_000).await;
    let hold = transfer(
        ws,
        TransferKind::ApifyScrape,
        2_000,
        Phase::Pending { timeout_s: 60 },
    );
    db.ledger_transfer(hold.clone(), "test")
        .await
        .expect("db")
        .expect("reserved");
    let b = db.wallet_balance(ws).await.expect("db").expect("wallet");
    assert_eq!(
        (b.balance, b.reserved, b.available),
        (Millicents(10_000), Millicents(2_000), Millicents(8_000))
    );

    let too_much = transfer(
        ws,
        TransferKind::ApifyScrape,
        2_001,
        Phase::Post { pending: hold.id },
    );
    assert_eq!(
        db.ledger_transfer(too_much, "test").await.expect("db"),
        Err(Refusal::ExceedsPending)
    );
    let wrong_kind = transfer(
        ws,
        TransferKind::CseSearch,
        1_000,
        Phase::Post { pending: hold.id },
    );
    assert_eq!(
        db.ledger_transfer(wrong_kind, "test").await.expect("db"),
        Err(Refusal::PendingMismatch)
    );
    // Post less than was reserved: the rest goes back.
    let post = transfer(
        ws,
        TransferKind::ApifyScrape,
        1_500,
        Phase::Post { pending: hold.id },
    );
    db.ledger_transfer(post, "test")
        .await
        .expect("db")
        .expect("posted");
    let b = db.wallet_balance(ws).await.expect("db").expect("wallet");
    assert_eq!(
        (b.balance, b.reserved, b.available),
        (Millicents(8_500), Millicents(0), Millicents(8_500))
    );
    let void = transfer(
        ws,
        TransferKind::ApifyScrape,
        0,
        Phase::Void { pending: hold.id },
    );
    assert_eq!(
        db.ledger_transfer(void, "test").await.expect("db"),
        Err(Refusal::AlreadyResolved)
    );
    let not_pending = transfer(
        ws,
        TransferKind::ApifyScrape,
        0,
        Phase::Void {
            pending: Uuid::now_v7(),
        },
    );
    assert_eq!(
        db.ledger_transfer(not_pending, "test").await.expect("db"),
        Err(Refusal::NotPending)
    );

    // A reservation nobody resolves is expired at its timeout, once.
    let short = transfer(
        ws,
        TransferKind::EmailVerify,
        300,
        Phase::Pending { timeout_s: 1 },
    );
    db.ledger_transfer(short.clone(), "test")
        .await
        .expect("db")
        .expect("reserved");
    assert!(
        db.ledger_expire_due(100).await.expect("sweep").is_empty(),
        "not due yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let expired = db.ledger_expire_due(100).await.expect("sweep");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].pending_id, Some(short.id));
    assert_eq!(
        expired[0].amount,
        Millicents(300),
        "an expiry releases the whole amount"
    );
    assert!(db.ledger_expire_due(100).await.expect("sweep").is_empty());
    let late = transfer(
        ws,
        TransferKind::EmailVerify,
        300,
        Phase::Post { pending: short.id },
    );
    assert_eq!(
        db.ledger_transfer(late, "test").await.expect("db"),
        Err(Refusal::AlreadyResolved)
    );
    let b = db.wallet_balance(ws).await.expect("db").expect("wallet");
    assert_eq!(b.available, Millicents(8_500));

    let totals = db.ledger_totals().await.expect("totals");
    assert!(totals.balances(), "{totals:?}");
    assert_eq!(db.ledger_mismatches().await.expect("audit"), vec![]);
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_chain_is_applied_whole_or_not_at_all() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = funded(db, 1_000).await;
    let other = funded(db, 1_000).await;
    let chains = vec![
        // Fits alone, but its partner overdraws: neither is applied.
        vec![
            transfer(ws, TransferKind::CseSearch, 600, Phase::Single),
            transfer(ws, TransferKind::CseSearch, 600, Phase::Single),
        ],
        // Independent of the first chain.
        vec![transfer(other, TransferKind::CseSearch, 600, Phase::Single)],
    ];
    let out = db.ledger_submit(&chains, "test").await.expect("db");
    assert_eq!(out[0], Err((1, Refusal::InsufficientFunds)));
    assert!(out[1].is_ok());
    assert_eq!(
        db.wallet_balance(ws).await.expect("db").expect("w").balance,
        Millicents(1_000)
    );
    assert_eq!(
        db.wallet_balance(other)
            .await
            .expect("db")
            .expect("w")
            .balance,
        Millicents(400)
    );
    assert!(db.ledger_get(chains[0][0].id).await.expect("db").is_none());
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_thousand_concurrent_debits_never_overdraw() {
    let t = TestDb::create().await.expect("test database");
    let db = Arc::new(t.db.clone());
    let ws = funded(&db, 100_000).await; // $1.00
    // All at once; a gate keeps the waiters for the wallet's row within the pool's reach.
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let db = db.clone();
        let gate = gate.clone();
        tasks.spawn(async move {
            let _turn = gate.acquire().await;
            let charge = transfer(ws, TransferKind::EmailVerify, 300, Phase::Single);
            db.ledger_transfer(charge, "test").await
        });
    }
    let mut ok = 0;
    let mut short = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task").expect("db") {
            Ok(_) => ok += 1,
            Err(Refusal::InsufficientFunds) => short += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, short), (333, 667));
    let b = db.wallet_balance(ws).await.expect("db").expect("wallet");
    assert_eq!(b.balance, Millicents(100), "$0.001 left");
    assert!(db.ledger_totals().await.expect("totals").balances());
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn the_runtime_role_cannot_rewrite_money() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = funded(db, 1_000).await;
    let app = db.app_pool();
    let wallet = wallet_account(ws);
    for sql in [
        format!(
            "UPDATE genesis.ledger_accounts SET credits_posted = 10000000 WHERE id = '{wallet}'"
        ),
        "UPDATE genesis.ledger_transfers SET amount = 0".to_string(),
        "DELETE FROM genesis.ledger_transfers".to_string(),
        "DELETE FROM genesis.ledger_open_pending".to_string(),
        "TRUNCATE genesis.ledger_transfers".to_string(),
    ] {
        let err = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(app)
            .await
            .expect_err(&sql);
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err}");
    }
    // The owner cannot rewrite history either.
    let err = sqlx::raw_sql("UPDATE genesis.ledger_transfers SET amount = 0")
        .execute(db.owner_pool())
        .await
        .expect_err("immutable");
    assert_eq!(sqlstate(&err), "GL004");
    // A new account starts empty, whatever the insert says.
    let forged = provision(db, "forged").await.id;
    sqlx::query(
        "INSERT INTO genesis.ledger_accounts (id, workspace_id, debits_must_not_exceed_credits, credits_posted)
         VALUES ($1, $2, true, 99999999)",
    )
    .bind(wallet_account(forged))
    .bind(forged.as_uuid())
    .execute(app)
    .await
    .expect("insert");
    let b = db
        .wallet_balance(forged)
        .await
        .expect("db")
        .expect("wallet");
    assert_eq!(b.balance, Millicents(0));
    // And the CHECK holds even against a hand-written transfer.
    let err = sqlx::query(
        "INSERT INTO genesis.ledger_transfers (id, debit_account, credit_account, amount, kind, phase, workspace_id)
         VALUES (gen_random_uuid(), $1, 'platform:revenue', 1, 'CSE_SEARCH', 'single', $2)",
    )
    .bind(wallet_account(forged))
    .bind(forged.as_uuid())
    .execute(app)
    .await
    .expect_err("overdraft");
    assert_eq!(sqlstate(&err), "23514");
    t.cleanup().await.expect("cleanup");
}
