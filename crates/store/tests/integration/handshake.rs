//! The atomic handshake: single use, expiry, mismatch, the droplet's state machine, audit.

use genesis_core::{DropletEvent, DropletId, DropletState, Region};
use genesis_store::handshake::{HandshakeClaim, HandshakeRefusal, SIDECAR_TTL};
use genesis_store::testing::TestDb;
use sqlx::Connection;

use genesis_store::{Database, Workspace};

use crate::helpers::provision;

/// A workspace with a registered droplet and a provisioning token for it.
async fn droplet_with_token(db: &Database, prefix: &str) -> (Workspace, DropletId, String) {
    let ws = provision(db, prefix).await;
    let droplet = DropletId::new();
    db.droplet_register(droplet, ws.id, Region::EuWest, "test")
        .await
        .expect("register");
    let token = db
        .provisioning_token_issue(ws.id, droplet, "test")
        .await
        .expect("issue");
    (ws, droplet, token)
}

/// What a sidecar of `ws` would send with `token`.
fn claim<'a>(ws: &Workspace, token: &'a str) -> HandshakeClaim<'a> {
    HandshakeClaim {
        provisioning_token: token,
        workspace_id: ws.id.as_uuid(),
        provider_id: 4242,
        webhook_base_url: "http://127.64.0.9:5678",
        sidecar_public_key: "c2lkZWNhcg==",
        relay_url: Some("http://127.64.0.9:8444"),
    }
}

#[tokio::test]
async fn a_token_works_once_and_every_refusal_is_audited() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (ws, droplet, token) = droplet_with_token(db, "hs").await;

    // Another workspace presenting this token: refused, and the token is not spent.
    let mut foreign = claim(&ws, &token);
    let other = uuid::Uuid::now_v7();
    foreign.workspace_id = other;
    assert_eq!(
        db.handshake_complete(&foreign, SIDECAR_TTL, "sidecar")
            .await
            .expect("db")
            .err(),
        Some(HandshakeRefusal::Mismatch)
    );

    let done = db
        .handshake_complete(&claim(&ws, &token), SIDECAR_TTL, "sidecar")
        .await
        .expect("db")
        .expect("accepted");
    assert_eq!(done.droplet.state, DropletState::ActiveHealthy);
    assert_eq!(done.droplet.provider_id, Some(4242));
    assert_eq!(done.sidecar_token.len(), 64);
    assert_eq!(
        db.droplet_relay_url(droplet)
            .await
            .expect("relay")
            .as_deref(),
        Some("http://127.64.0.9:8444"),
        "the relay the sidecar reported is kept for the ignition's mapping"
    );
    let who = db
        .sidecar_token_verify(&done.sidecar_token)
        .await
        .expect("verify")
        .expect("valid");
    assert_eq!((who.workspace_id, who.droplet_id), (ws.id, droplet));
    assert!(
        db.sidecar_token_verify("forged")
            .await
            .expect("verify")
            .is_none()
    );

    // A replay gets nothing.
    assert_eq!(
        db.handshake_complete(&claim(&ws, &token), SIDECAR_TTL, "sidecar")
            .await
            .expect("db")
            .err(),
        Some(HandshakeRefusal::Consumed)
    );
    assert_eq!(
        db.handshake_complete(&claim(&ws, "never-issued"), SIDECAR_TTL, "sidecar")
            .await
            .expect("db")
            .err(),
        Some(HandshakeRefusal::Unknown)
    );
    // The store refuses without writing to the audit log: the control plane decides which
    // refusals are written (rate-limited per source) and writes them through this.
    assert!(
        db.audit_list(None, Some("HANDSHAKE_REFUSED"), 10)
            .await
            .expect("audit")
            .is_empty()
    );
    db.handshake_refusal_record(
        &genesis_store::handshake::HandshakeRefusalRecord {
            workspace_id: ws.id.as_uuid(),
            provider_id: 9,
            reason: HandshakeRefusal::NotAttested,
            source: Some("203.0.113.9"),
            suppressed: 41,
        },
        "sidecar",
    )
    .await
    .expect("audited");
    let refused = db
        .audit_list(Some(ws.id), Some("HANDSHAKE_REFUSED"), 10)
        .await
        .expect("audit");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].details["reason"], "not_attested");
    assert_eq!(refused[0].details["source"], "203.0.113.9");
    assert_eq!(refused[0].details["suppressed"], 41);
    // The droplet walked its state machine, each step audited.
    let steps = db
        .audit_list(Some(ws.id), Some("DROPLET_STATE_CHANGED"), 10)
        .await
        .expect("audit");
    assert_eq!(
        steps.len(),
        3,
        "PENDING -> INITIALIZING -> HANDSHAKE_PENDING -> ACTIVE_HEALTHY"
    );
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_expired_token_or_a_dead_droplet_is_refused() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let (ws, _, token) = droplet_with_token(db, "hs_exp").await;
    // Age the token past its 15 minutes (as the owner: the runtime role cannot rewrite it).
    let mut admin = sqlx::postgres::PgConnection::connect_with(&t.db.options().admin)
        .await
        .expect("admin");
    sqlx::query("UPDATE genesis.provisioning_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut admin)
        .await
        .expect("age");
    let expired = claim(&ws, &token);
    assert_eq!(
        db.handshake_complete(&expired, SIDECAR_TTL, "sidecar")
            .await
            .expect("db")
            .err(),
        Some(HandshakeRefusal::Expired)
    );

    let dead = DropletId::new();
    db.droplet_register(dead, ws.id, Region::EuWest, "test")
        .await
        .expect("register");
    db.droplet_transition(dead, 0, DropletEvent::Destroyed, "test")
        .await
        .expect("destroy");
    let token = db
        .provisioning_token_issue(ws.id, dead, "test")
        .await
        .expect("issue");
    let dead_claim = claim(&ws, &token);
    assert_eq!(
        db.handshake_complete(&dead_claim, SIDECAR_TTL, "sidecar")
            .await
            .expect("db")
            .err(),
        Some(HandshakeRefusal::WrongState)
    );
    t.cleanup().await.expect("cleanup");
}
