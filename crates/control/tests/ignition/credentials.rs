//! A tenant's own key update (spec 65.1, issue 24): `PUT
//! /api/v1/workspaces/{id}/credentials/{name}` through the vault to the droplet's n8n, at
//! once, or at the wake when the engine sleeps.

use std::time::Duration;

use genesis_control::workers::pending_credentials::PendingCredentials;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_core::DropletState;
use serde_json::json;

use super::helpers::{Options, credentials, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_replaces_its_openai_key_in_the_vault_and_in_its_n8n_audited() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("key_update").await;
    let path = |name: &str| format!("/api/v1/workspaces/{ws}/credentials/{name}");
    let new_key = json!({"data": {"apiKey": "sk-test-rotated"}});

    // Before its ignition a workspace has no n8n to give a key to.
    let (status, p) = w.put(&path("openai"), new_key.clone()).await;
    assert_eq!(status, 409, "{p}");

    let (status, ig) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202, "{ig}");
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["status"], "ACTIVE", "{got:#}");

    // Refused by name, before anything is stored: an unknown credential, one the platform
    // makes itself, an OAuth sign-in (typed data would drop its tokens), and data n8n's own
    // schema for the type would refuse.
    for (name, body, field) in [
        ("slack", new_key.clone(), "name"),
        ("genesis_api", new_key.clone(), "name"),
        (
            "gmail",
            json!({"data": {"clientId": "cid.apps.example", "clientSecret": "s"}}),
            "name",
        ),
        ("openai", json!({"data": {}}), "data.apiKey"),
    ] {
        let (status, p) = w.put(&path(name), body).await;
        assert_eq!(status, 422, "{name}: {p}");
        assert_eq!(p["field"], field, "{name}: {p}");
    }

    let (status, done) = w.put(&path("openai"), new_key.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["n8n_name"], "OpenAI (Genesis)");

    // The droplet's n8n holds the new key, under the same credential.
    let rows = w.t.db.droplet_live_for_workspace(ws).await.expect("rows");
    let n8n = w
        .hook
        .n8n(rows[0].provider_id.expect("provider id"))
        .expect("the droplet's n8n");
    let creds = n8n.credential_summary();
    let openai: Vec<_> = creds.iter().filter(|c| c.2 == "openAiApi").collect();
    assert_eq!(openai.len(), 1, "replaced, not added: {creds:?}");
    let data = n8n.credential_data(&openai[0].0).expect("data");
    assert_eq!(data["apiKey"], "sk-test-rotated", "{data}");

    // Audited: the vault's new version, and the rotation the droplet confirmed.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event FROM genesis.audit_log WHERE workspace_id = $1 \
         AND event IN ('VAULT_CREDENTIAL_STORED', 'CREDENTIAL_ROTATED') ORDER BY id",
    )
    .bind(ws.as_uuid())
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(
        events.iter().filter(|e| *e == "CREDENTIAL_ROTATED").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("CREDENTIAL_ROTATED")
    );
    assert!(
        w.t.db
            .vault_pending_on_serving(10)
            .await
            .expect("pending")
            .is_empty(),
        "nothing waits once the droplet confirmed"
    );

    // The engine goes to sleep; a key typed now is saved at once, and reaches n8n when the
    // engine wakes, with nothing sent again.
    let d = w.hibernate_now(ws).await;
    let asleep_key = json!({"data": {"apiKey": "sk-test-typed-while-asleep"}});
    let (status, done) = w.put(&path("openai"), asleep_key).await;
    assert_eq!(status, 202, "{done}");
    assert_eq!(done["status"], "pending", "{done}");
    assert!(
        done["detail"]
            .as_str()
            .is_some_and(|d| d.contains("asleep")),
        "{done}"
    );
    let pending = PendingCredentials::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.igniter.clone(),
    );
    let r = pending.reconcile().await.expect("pass");
    assert_eq!(r.applied, 0, "nothing is sent to a sleeping engine");
    assert_eq!(
        n8n.credential_data(&openai[0].0).expect("data")["apiKey"],
        "sk-test-rotated",
        "the sleeping engine keeps its key until it wakes"
    );

    let (status, _) = w
        .post(&format!("/api/v1/workspaces/{ws}/wake"), json!({}))
        .await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = pending.reconcile().await.expect("pass");
        if r.applied == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never applied: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        w.t.db.droplet_get(d.id).await.expect("droplet").state,
        DropletState::ActiveHealthy
    );
    let creds = n8n.credential_summary();
    let now_openai: Vec<_> = creds.iter().filter(|c| c.2 == "openAiApi").collect();
    assert_eq!(now_openai.len(), 1, "replaced, not added: {creds:?}");
    assert_eq!(
        n8n.credential_data(&now_openai[0].0).expect("data")["apiKey"],
        "sk-test-typed-while-asleep"
    );
    assert_eq!(
        pending.reconcile().await.expect("pass").applied,
        0,
        "applied once"
    );
    let rotations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE workspace_id = $1 \
         AND event = 'CREDENTIAL_ROTATED'",
    )
    .bind(ws.as_uuid())
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(rotations, 2, "the wake-time rotation is audited too");
    w.finish().await;
}
