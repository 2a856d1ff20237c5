//! Support grants (spec 63.3) against the real database: self-service and approved tiers,
//! who may approve, one open grant per operator and tenant, expiry by the database's
//! clock, lapsed requests, the sweep, and what the audit log says about each.
//!
//! Time passes by moving a grant's own timestamps back with the owner's connection (the
//! grants expire by `now()`, which a test cannot move).

use genesis_core::WorkspaceId;
use genesis_core::support::{OperatorRole, SupportTier};
use genesis_store::testing::TestDb;
use genesis_store::{Approval, Database, GrantRequest, Operator, StoreError, SupportGrant};

use crate::helpers::{provision, sqlstate};

async fn operator(db: &Database, name: &str, role: OperatorRole) -> Operator {
    db.operator_create_with_role(
        &format!("{name}@genesis.test"),
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        role,
        "test",
    )
    .await
    .expect("operator")
}

fn req(
    ws: WorkspaceId,
    tier: SupportTier,
    incident: Option<&'static str>,
) -> GrantRequest<'static> {
    GrantRequest {
        workspace: ws,
        tier,
        reason: "customer reports failed executions since noon",
        incident,
    }
}

/// The grant's support events, oldest first, as `EVENT by actor`.
async fn story(db: &Database, g: &SupportGrant) -> Vec<String> {
    let mut v: Vec<String> = db
        .audit_list(Some(g.workspace_id), None, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.category == "support" && e.subject.as_deref() == Some(&g.id.to_string()))
        .map(|e| format!("{} by {}", e.event, e.actor))
        .collect();
    v.reverse();
    v
}

/// Moves grant `g`'s clock back by `minutes`, as if that much time had passed.
async fn age(db: &Database, g: &SupportGrant, minutes: i32) {
    sqlx::query(
        "UPDATE genesis.support_grants
         SET requested_at = requested_at - make_interval(mins => $2),
             granted_at = granted_at - make_interval(mins => $2),
             expires_at = expires_at - make_interval(mins => $2)
         WHERE id = $1",
    )
    .bind(g.id)
    .bind(minutes)
    .execute(db.owner_pool())
    .await
    .expect("age");
}

#[tokio::test]
async fn a_self_service_grant_is_live_at_once_for_its_tiers_time_and_then_dead() {
    let t = TestDb::create().await.expect("db");
    let db = &t.db;
    let ws = provision(db, "grants").await;
    let sam = operator(db, "sam", OperatorRole::Support).await;

    let g = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::ReadOnly, None))
        .await
        .expect("request");
    let now = db.now().await.expect("now");
    assert!(g.live_at(now), "{g:?}");
    let granted = g.granted_at.expect("granted");
    assert_eq!(g.expires_at, Some(granted + chrono::TimeDelta::minutes(30)));
    assert_eq!(
        story(db, &g).await,
        ["ACCESS_GRANTED by operator:sam@genesis.test"]
    );

    // One open grant per operator and tenant: a second request (even for another tier) is
    // refused, not merged.
    let again = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Debug, None))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { field: "tier", .. })),
        "{again:?}"
    );

    // Thirty-one minutes later it allows nothing, before any sweep ran...
    age(db, &g, 31).await;
    let open = db
        .support_grant_open(ws.id, sam.id)
        .await
        .expect("read")
        .expect("open");
    assert!(!open.live_at(db.now().await.expect("now")));
    assert_eq!(open.status_at(db.now().await.expect("now")), "expired");
    // ... and a new request is not blocked by it: the old one is recorded as expired first.
    let next = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Debug, None))
        .await
        .expect("a new request once the old grant is over");
    assert_eq!(
        next.expires_at
            .zip(next.granted_at)
            .map(|(e, g)| (e - g).num_minutes()),
        Some(60)
    );
    let old = db.support_grant_get(g.id).await.expect("old");
    assert_eq!(old.end_reason.as_deref(), Some("expired"));
    assert_eq!(
        story(db, &g).await,
        [
            "ACCESS_GRANTED by operator:sam@genesis.test",
            "ACCESS_REVOKED by system:support-expiry"
        ]
    );

    // Revoking ends it at once; revoking twice says so.
    let ended = db
        .support_grant_revoke(next.id, "operator:sam@genesis.test", "done")
        .await
        .expect("revoke")
        .expect("ended now");
    assert_eq!(ended.end_reason.as_deref(), Some("revoked"));
    assert!(!ended.live_at(db.now().await.expect("now")));
    assert!(
        db.support_grant_revoke(next.id, "operator:sam@genesis.test", "done")
            .await
            .expect("revoke")
            .is_none()
    );
    let unknown = db
        .support_grant_revoke(uuid::Uuid::now_v7(), "x", "y")
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn write_needs_one_approver_and_emergency_two_never_the_requester() {
    let t = TestDb::create().await.expect("db");
    let db = &t.db;
    let ws = provision(db, "approve").await;
    let sam = operator(db, "sam", OperatorRole::Support).await;
    let max = operator(db, "max", OperatorRole::Manager).await;
    let ada = operator(db, "ada", OperatorRole::Admin).await;

    let w = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Write, None))
        .await
        .expect("request");
    assert!(w.pending() && w.granted_at.is_none());
    let own = db.support_grant_approve(w.id, &sam).await;
    assert!(matches!(own, Err(StoreError::Refused { .. })), "{own:?}");
    let Approval::Granted(live) = db.support_grant_approve(w.id, &max).await.expect("approve")
    else {
        panic!("one approval grants Write");
    };
    assert_eq!(live.approvers, ["max@genesis.test"]);
    assert!(live.live_at(db.now().await.expect("now")));
    let late = db.support_grant_approve(w.id, &ada).await;
    assert!(
        matches!(late, Err(StoreError::Refused { .. })),
        "a live grant takes no approval: {late:?}"
    );
    assert_eq!(
        story(db, &w).await,
        [
            "ACCESS_REQUESTED by operator:sam@genesis.test",
            "ACCESS_GRANTED by operator:max@genesis.test"
        ]
    );
    db.support_grant_revoke(w.id, "operator:max@genesis.test", "done")
        .await
        .expect("revoke");

    // Emergency: an incident is required by the database too, and two distinct approvers.
    let no_incident = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Emergency, None))
        .await;
    assert!(no_incident.is_err(), "{no_incident:?}");
    let e = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Emergency, Some("INC-7")))
        .await
        .expect("request");
    let first = db.support_grant_approve(e.id, &max).await.expect("first");
    assert!(
        matches!(first, Approval::Recorded { remaining: 1 }),
        "{first:?}"
    );
    let twice = db.support_grant_approve(e.id, &max).await;
    assert!(
        matches!(twice, Err(StoreError::Refused { .. })),
        "{twice:?}"
    );
    let Approval::Granted(live) = db.support_grant_approve(e.id, &ada).await.expect("second")
    else {
        panic!("two approvals grant Emergency");
    };
    assert_eq!(live.approvers, ["max@genesis.test", "ada@genesis.test"]);
    assert_eq!(live.incident.as_deref(), Some("INC-7"));
    assert_eq!(
        live.expires_at
            .zip(live.granted_at)
            .map(|(x, g)| (x - g).num_minutes()),
        Some(15)
    );
    assert_eq!(
        story(db, &e).await,
        [
            "ACCESS_REQUESTED by operator:sam@genesis.test",
            "ACCESS_APPROVED by operator:max@genesis.test",
            "ACCESS_GRANTED by operator:ada@genesis.test"
        ]
    );

    // No writer can stretch a grant past its tier's time: the database refuses.
    let stretch = sqlx::query(
        "UPDATE genesis.support_grants SET expires_at = granted_at + interval '16 minutes' WHERE id = $1",
    )
    .bind(e.id)
    .execute(db.app_pool())
    .await
    .expect_err("an Emergency grant lasts 15 minutes");
    assert_eq!(sqlstate(&stretch), "23514");
}

#[tokio::test]
async fn a_request_nobody_approves_lapses_and_the_sweep_records_every_end_once() {
    let t = TestDb::create().await.expect("db");
    let db = &t.db;
    let ws = provision(db, "lapse").await;
    let other = provision(db, "lapse_other").await;
    let sam = operator(db, "sam", OperatorRole::Support).await;
    let max = operator(db, "max", OperatorRole::Manager).await;

    let pending = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Write, None))
        .await
        .expect("request");
    age(db, &pending, 61).await;
    let late = db.support_grant_approve(pending.id, &max).await;
    match late {
        Err(StoreError::Refused { message, .. }) => {
            assert!(message.contains("lapsed"), "{message}")
        }
        other => panic!("a lapsed request is not approved: {other:?}"),
    }
    assert_eq!(
        db.support_grant_get(pending.id)
            .await
            .expect("get")
            .end_reason
            .as_deref(),
        Some("lapsed")
    );

    let live = db
        .support_grant_request(&sam, &req(other.id, SupportTier::ReadOnly, None))
        .await
        .expect("request");
    let expired = db
        .support_grant_request(&sam, &req(ws.id, SupportTier::Debug, None))
        .await
        .expect("request");
    age(db, &expired, 61).await;
    let swept = db.support_grants_expire().await.expect("sweep");
    assert_eq!(swept.iter().map(|g| g.id).collect::<Vec<_>>(), [expired.id]);
    assert!(
        db.support_grants_expire().await.expect("sweep").is_empty(),
        "each end is recorded once"
    );
    assert!(
        db.support_grant_get(live.id)
            .await
            .expect("get")
            .ended_at
            .is_none()
    );
    let open = db.support_grants_open(50).await.expect("open");
    assert_eq!(open.iter().map(|g| g.id).collect::<Vec<_>>(), [live.id]);

    // A request for a tenant that does not exist is a not-found, not a database error.
    let ghost = db
        .support_grant_request(&sam, &req(WorkspaceId::new(), SupportTier::ReadOnly, None))
        .await;
    assert!(
        matches!(ghost, Err(StoreError::NotFound { .. })),
        "{ghost:?}"
    );
}

#[tokio::test]
async fn an_operators_role_is_kept_read_back_and_changed_with_an_audit_event() {
    let t = TestDb::create().await.expect("db");
    let db = &t.db;
    let sam = operator(db, "sam", OperatorRole::Support).await;
    let found = db
        .operator_credentials("sam@genesis.test")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.operator.role, OperatorRole::Support);
    let old = db
        .operator_create(
            "old@genesis.test",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "test",
        )
        .await
        .expect("admin");
    assert_eq!(
        old.role,
        OperatorRole::Admin,
        "accounts made without a role are admins"
    );
    let before = db
        .operator_set_role(&sam.email, OperatorRole::Manager, "cli")
        .await
        .expect("set");
    assert_eq!(before, OperatorRole::Support);
    let changed = db
        .audit_list(None, Some("ROLE_CHANGED"), 5)
        .await
        .expect("audit");
    assert_eq!(changed[0].details["from"], "support");
    assert_eq!(changed[0].details["to"], "manager");
    let nobody = db
        .operator_set_role("nobody@genesis.test", OperatorRole::Admin, "cli")
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound { .. })));
    let forged = sqlx::query("UPDATE genesis.operators SET role = 'root' WHERE id = $1")
        .bind(sam.id)
        .execute(db.app_pool())
        .await
        .expect_err("no such role");
    assert_eq!(sqlstate(&forged), "23514");
}
