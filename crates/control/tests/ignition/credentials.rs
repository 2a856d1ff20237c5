//! A tenant's own key update (spec 65.1, issue 24): `PUT
//! /api/v1/workspaces/{id}/credentials/{name}` through the vault to the droplet's n8n.

use std::time::Duration;

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
    w.finish().await;
}
