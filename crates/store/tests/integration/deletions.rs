//! A tenant's deletion from day 0 to the end of its grace period (spec 64.1–64.2), on a
//! clock the test moves: the request, the reminders, calling it off, and every refusal.

use chrono::{SubsecRound, TimeDelta, Utc};
use genesis_core::deletion::DeletionTrigger;
use genesis_core::{DropletId, Region, WorkspaceEvent, WorkspaceId, WorkspaceStatus};
use genesis_store::desired_workflows::DesiredWorkflowRow;
use genesis_store::testing::TestDb;
use genesis_store::{Database, StoreError, Workspace};

use crate::helpers::provision;

async fn live(db: &Database, prefix: &str) -> (Workspace, DropletId) {
    let ws = provision(db, prefix).await;
    let ws = db
        .workspace_transition(ws.id, ws.version, WorkspaceEvent::IgnitionStarted, "test")
        .await
        .expect("start");
    let ws = db
        .workspace_transition(ws.id, ws.version, WorkspaceEvent::IgnitionSucceeded, "test")
        .await
        .expect("live");
    let droplet = DropletId::new();
    db.droplet_register(droplet, ws.id, Region::EuWest, "test")
        .await
        .expect("droplet");
    let row = |key: &str, active| DesiredWorkflowRow {
        workflow_id: format!("wf-{key}"),
        key: key.into(),
        active,
        template_version: "1".into(),
        error: None,
    };
    db.droplet_workflows_put(
        droplet,
        &[
            row("outreach", true),
            row("intake", true),
            row("digest", false),
        ],
    )
    .await
    .expect("workflows");
    (ws, droplet)
}

async fn active_keys(db: &Database, droplet: DropletId) -> Vec<String> {
    let mut keys: Vec<String> = db
        .droplet_workflows(droplet)
        .await
        .expect("workflows")
        .into_iter()
        .filter(|w| w.active)
        .map(|w| w.key)
        .collect();
    keys.sort();
    keys
}

async fn outbox(db: &Database, ws: &Workspace) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT kind, body FROM genesis.notifications WHERE workspace_id = $1 ORDER BY id",
    )
    .bind(ws.id.as_uuid())
    .fetch_all(db.app_pool())
    .await
    .expect("outbox")
}

async fn events(db: &Database, ws: &Workspace) -> Vec<String> {
    db.audit_list(Some(ws.id), None, 100)
        .await
        .expect("audit")
        .into_iter()
        .rev()
        .map(|e| e.event)
        .collect()
}

fn refusal(e: StoreError) -> String {
    match e {
        StoreError::Refused { message, .. } => message,
        other => panic!("expected a refusal in words, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_deletion_pauses_reminds_and_can_be_called_off_within_its_grace() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (ws, droplet) = live(db, "del").await;
    let day0 = Utc::now().trunc_subsecs(6);
    let day = |n: i64| day0 + TimeDelta::days(n);

    let d = db
        .deletion_request(ws.id, DeletionTrigger::User, None, "tenant:owner", day0)
        .await
        .expect("request");
    assert_eq!(d.purge_after, day(7));
    assert_eq!(d.previous_status, WorkspaceStatus::Active);
    assert!(d.reversible);
    let now = db.workspace_get(ws.id).await.expect("ws");
    assert_eq!(now.status, WorkspaceStatus::PendingDeletion);
    assert!(
        active_keys(db, droplet).await.is_empty(),
        "day 0 pauses every campaign"
    );
    let mail = outbox(db, &ws).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].0, "DELETION_REQUESTED");
    assert!(mail[0].1["deletes_at"].as_str().expect("date").len() > 8);
    let audit = events(db, &ws).await;
    for e in [
        "WORKFLOWS_DEACTIVATED",
        "WORKSPACE_STATUS_CHANGED",
        "DELETION_REQUESTED",
    ] {
        assert!(audit.iter().any(|a| a == e), "{e} in {audit:?}");
    }

    // Deleting twice is refused in words, and changes nothing.
    let again = db
        .deletion_request(
            ws.id,
            DeletionTrigger::Cancelled,
            None,
            "operator:x",
            day(1),
        )
        .await
        .expect_err("twice");
    assert!(refusal(again).contains("already being deleted"));
    assert_eq!(
        db.deletion_open(ws.id)
            .await
            .expect("open")
            .expect("one")
            .trigger,
        DeletionTrigger::User
    );

    // Reminders on day 3 and day 6, each once, whoever runs the pass and however often.
    assert_eq!(db.deletion_remind_due(day(2), 10).await.expect("remind"), 0);
    assert_eq!(db.deletion_remind_due(day(3), 10).await.expect("remind"), 1);
    assert_eq!(db.deletion_remind_due(day(4), 10).await.expect("remind"), 0);
    assert_eq!(db.deletion_remind_due(day(6), 10).await.expect("remind"), 1);
    assert_eq!(db.deletion_remind_due(day(6), 10).await.expect("remind"), 0);
    let kinds: Vec<_> = outbox(db, &ws)
        .await
        .into_iter()
        .map(|(k, b)| (k, b["day"].as_i64()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("DELETION_REQUESTED".to_owned(), None),
            ("DELETION_REMINDER".to_owned(), Some(3)),
            ("DELETION_REMINDER".to_owned(), Some(6)),
        ]
    );

    // Called off on day 6: back to ACTIVE, the paused campaigns running again (the one
    // that was paused before stays paused).
    let back = db
        .deletion_cancel(ws.id, "tenant:owner", day(6))
        .await
        .expect("cancel");
    assert_eq!(back.status, WorkspaceStatus::Active);
    assert_eq!(active_keys(db, droplet).await, ["intake", "outreach"]);
    assert!(db.deletion_open(ws.id).await.expect("open").is_none());
    assert!(events(db, &ws).await.ends_with(&[
        "WORKSPACE_STATUS_CHANGED".to_owned(),
        "WORKFLOWS_ACTIVATED".to_owned(),
        "DELETION_CANCELLED".to_owned()
    ]));
    let twice = db
        .deletion_cancel(ws.id, "tenant:owner", day(6))
        .await
        .expect_err("nothing to cancel");
    assert!(refusal(twice).contains("not being deleted"));

    // A new request after one was called off is a new request with its own grace.
    let d = db
        .deletion_request(ws.id, DeletionTrigger::Cancelled, None, "billing", day(10))
        .await
        .expect("again");
    assert_eq!(d.purge_after, day(40));
    // Too late: the grace period is over.
    let late = db
        .deletion_cancel(ws.id, "tenant:owner", day(40))
        .await
        .expect_err("after the grace period");
    assert!(refusal(late).contains("grace period ended"), "refused");
    // No reminder once the grace period is over.
    assert_eq!(
        db.deletion_remind_due(day(41), 10).await.expect("remind"),
        0
    );
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn tos_and_fraud_are_immediate_irreversible_and_need_a_reason() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (ws, _) = live(db, "fraud").await;
    let now = Utc::now().trunc_subsecs(6);
    let e = db
        .deletion_request(
            ws.id,
            DeletionTrigger::Fraud,
            Some("  "),
            "operator:ada",
            now,
        )
        .await
        .expect_err("no reason");
    assert!(
        matches!(
            e,
            StoreError::Invalid {
                field: "reason",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        db.workspace_get(ws.id).await.expect("ws").status,
        WorkspaceStatus::Active,
        "a refused request changes nothing"
    );
    let d = db
        .deletion_request(
            ws.id,
            DeletionTrigger::Fraud,
            Some("stolen cards"),
            "operator:ada",
            now,
        )
        .await
        .expect("request");
    assert_eq!(d.purge_after, now);
    assert!(!d.reversible);
    // The tenant is not offered a way back that does not exist.
    assert!(outbox(db, &ws).await.is_empty());
    let e = db
        .deletion_cancel(ws.id, "operator:bob", now)
        .await
        .expect_err("irreversible");
    assert!(refusal(e).contains("cannot be called off"));
    let reason: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM genesis.audit_log WHERE event = 'DELETION_REQUESTED' AND workspace_id = $1",
    )
    .bind(ws.id.as_uuid())
    .fetch_one(db.app_pool())
    .await
    .expect("audit");
    assert_eq!(reason["reason"], "stolen cards");
    assert_eq!(reason["trigger"], "fraud");
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_called_off_deletion_returns_to_the_status_it_came_from() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    // Never ignited: PENDING, and back to PENDING (not ACTIVE with no engine).
    let ws = provision(db, "never").await;
    let now = Utc::now().trunc_subsecs(6);
    db.deletion_request(ws.id, DeletionTrigger::User, None, "tenant:o", now)
        .await
        .expect("request");
    let back = db
        .deletion_cancel(ws.id, "tenant:o", now + TimeDelta::hours(1))
        .await
        .expect("cancel");
    assert_eq!(back.status, WorkspaceStatus::Pending);
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn the_saga_begins_after_the_grace_and_its_privileged_paths_open_only_in_order() {
    use genesis_core::deletion::DeletionStep;
    let t = TestDb::create().await.expect("db");
    let db = &t.db;
    let (ws, _) = live(db, "saga").await;
    let (bystander, _) = live(db, "bystander").await;
    let now = Utc::now().trunc_subsecs(6);
    db.deletion_request(ws.id, DeletionTrigger::User, None, "owner", now)
        .await
        .expect("request");

    // The runtime role reaches the privileged functions, but they act only for a tenant
    // whose saga stands at their step: neither a bystander nor this tenant yet.
    for w in [ws.id, bystander.id] {
        for sql in [
            "SELECT genesis.deletion_purge($1)",
            "SELECT genesis.wallet_close($1)",
            "SELECT genesis.audit_anonymise($1, '{}'::bigint[], '{}'::bytea[])",
        ] {
            let e = sqlx::query(sql)
                .bind(w.as_uuid())
                .execute(db.app_pool())
                .await
                .expect_err(sql);
            assert!(e.to_string().contains("is not at step"), "{sql}: {e}");
        }
    }
    // The ledger's one allowed change needs the owner: the flag set by hand does not do.
    let mut tx = db.app_pool().begin().await.expect("tx");
    sqlx::query("SELECT set_config('genesis.ledger_anonymise', $1, true)")
        .bind(ws.id.as_uuid().to_string())
        .execute(&mut *tx)
        .await
        .expect("flag");
    let e = sqlx::query("UPDATE genesis.ledger_transfers SET reference = 'anonymised'")
        .execute(&mut *tx)
        .await
        .expect_err("no UPDATE for the runtime role");
    assert!(e.to_string().contains("permission denied"), "{e}");
    drop(tx);

    // Not before the grace period is over; nothing out of order.
    let e = db
        .deletion_begin(ws.id, "test", now + TimeDelta::days(6))
        .await
        .expect_err("too early");
    assert!(e.to_string().contains("not over"), "{e}");
    let e = db
        .deletion_purge_rows(ws.id, "test")
        .await
        .expect_err("not begun");
    assert!(matches!(e, StoreError::Refused { .. }), "{e}");

    let after = now + TimeDelta::days(7) + TimeDelta::seconds(1);
    let p = db
        .deletion_begin(ws.id, "test", after)
        .await
        .expect("begin");
    assert_eq!((p.step, p.next()), (0, Some(DeletionStep::FinalExport)));
    // Begun, it cannot be called off, even by a clock still inside the grace period.
    let e = db
        .deletion_cancel(ws.id, "owner", now + TimeDelta::days(1))
        .await
        .expect_err("begun");
    assert!(e.to_string().contains("can no longer be called off"), "{e}");
    let e = db
        .deletion_step_done(
            ws.id,
            DeletionStep::LeadPartition,
            "test",
            serde_json::Value::Null,
            None,
        )
        .await
        .expect_err("step 3 before step 1");
    assert!(e.to_string().contains("not at step 3"), "{e}");
    let e = db
        .deletion_purge_rows(ws.id, "test")
        .await
        .expect_err("step 4 before step 1");
    assert!(e.to_string().contains("not at step 4"), "{e}");
    // A step recorded twice (a re-run after a crash) is recorded once.
    for (run, want) in [(1, true), (2, false)] {
        let moved = db
            .deletion_step_done(
                ws.id,
                DeletionStep::FinalExport,
                "test",
                serde_json::json!({ "run": run }),
                None,
            )
            .await
            .expect("record");
        assert_eq!(moved, want, "run {run}");
    }
    let p = db
        .deletion_progress(ws.id)
        .await
        .expect("db")
        .expect("deletion");
    assert_eq!(p.step, 1);
    assert_eq!(p.certificate.as_array().map(Vec::len), Some(1));
    assert_eq!(p.certificate[0]["removed"]["run"], 1);
    // The bystander is untouched.
    let b = db.workspace_get(bystander.id).await.expect("bystander");
    assert_eq!(b.status, WorkspaceStatus::Active);
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_non_payment_deletion_is_called_off_only_once_a_payment_arrives() {
    use genesis_core::money::{Millicents, TransferKind};
    use genesis_store::ledger::{NewTransfer, Phase};
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (ws, _) = live(db, "unpaid").await;
    db.wallet_open(ws.id).await.expect("wallet");
    let deposit = || NewTransfer {
        id: uuid::Uuid::now_v7(),
        workspace: ws.id,
        kind: TransferKind::Deposit,
        amount: Millicents(500_000),
        phase: Phase::Single,
        reference: None,
    };
    // Money paid before the deletion does not pay for it.
    db.wallet_credit(deposit(), "test")
        .await
        .expect("credit")
        .expect("credited");
    let now = Utc::now().trunc_subsecs(6) + TimeDelta::seconds(1);
    let d = db
        .deletion_request(
            ws.id,
            DeletionTrigger::NonPayment,
            None,
            "operator:billing",
            now,
        )
        .await
        .expect("request");
    assert!(d.reversible);
    let e = db
        .deletion_cancel(ws.id, "account:owner@x.test", now + TimeDelta::days(1))
        .await
        .expect_err("not paid yet");
    assert!(refusal(e).contains("once a payment arrives"));
    assert_eq!(
        db.workspace_get(ws.id).await.expect("ws").status,
        WorkspaceStatus::PendingDeletion
    );
    // A payment after the request: now it can be called off.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    db.wallet_credit(deposit(), "test")
        .await
        .expect("credit")
        .expect("credited");
    let back = db
        .deletion_cancel(ws.id, "system:payments", now + TimeDelta::days(1))
        .await
        .expect("paid, so reversible");
    assert_eq!(back.status, WorkspaceStatus::Active);
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_deleted_tenants_traces_in_the_coordinator_are_scrubbed_and_nothing_else() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (gone, kept) = (WorkspaceId::new(), WorkspaceId::new());
    let rollout = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO genesis.rollouts (id, target_version, scenario, policy, scope, status, batches, created_by)
         VALUES ($1, 'v2', 'bug_fix', '{}', '{}', 'COMPLETED', 1, 'test')",
    )
    .bind(rollout)
    .execute(db.owner_pool())
    .await
    .expect("rollout");
    for (ws, error) in [
        (
            gone,
            Some("n8n refused: credential 'Ada's Gmail' is invalid"),
        ),
        (gone, None),
        (
            kept,
            Some("n8n refused: credential 'Bob's Gmail' is invalid"),
        ),
    ] {
        sqlx::query(
            "INSERT INTO genesis.rollout_targets (rollout_id, droplet_id, workspace_id, region, batch, status, error)
             VALUES ($1, $2, $3, 'eu-west', 0, $4, $5)",
        )
        .bind(rollout)
        .bind(uuid::Uuid::now_v7())
        .bind(ws.as_uuid())
        .bind(if error.is_some() { "FAILED" } else { "DONE" })
        .bind(error)
        .execute(db.owner_pool())
        .await
        .expect("target");
        sqlx::query(
            "INSERT INTO genesis.command_journal (workspace_id, provider_id, action, sent_at, elapsed_ms, outcome, detail)
             VALUES ($1, 7, 'DEPLOY_WORKFLOW', now(), 1, 'failed', $2)",
        )
        .bind(ws.as_uuid())
        .bind(error)
        .execute(db.owner_pool())
        .await
        .expect("journal");
    }
    assert_eq!(
        db.deletion_coordinator_scrub(gone).await.expect("scrub"),
        (1, 2)
    );
    assert_eq!(
        db.deletion_coordinator_scrub(gone).await.expect("again"),
        (0, 0),
        "idempotent"
    );
    let errors: Vec<(uuid::Uuid, Option<String>)> = sqlx::query_as(
        "SELECT workspace_id, error FROM genesis.rollout_targets ORDER BY workspace_id, error",
    )
    .fetch_all(db.owner_pool())
    .await
    .expect("targets");
    assert_eq!(
        errors.len(),
        3,
        "the rows stay: the rollout keeps its counts"
    );
    for (ws, error) in errors {
        if ws == gone.as_uuid() {
            assert!(error.is_none_or(|e| e == genesis_store::deletion_saga::SCRUBBED_ERROR));
        } else {
            assert_eq!(
                error.as_deref(),
                Some("n8n refused: credential 'Bob's Gmail' is invalid")
            );
        }
    }
    let journal: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT workspace_id FROM genesis.command_journal")
            .fetch_all(db.owner_pool())
            .await
            .expect("journal");
    assert_eq!(journal, vec![kept.as_uuid()]);
    t.cleanup().await.expect("cleanup");
}
