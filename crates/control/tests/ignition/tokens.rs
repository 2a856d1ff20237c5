//! Sidecar tokens on a compressed clock (spec 65.1, issue 18 finding 4): a token near its
//! end is renewed on heartbeat, with an overlap in which both work; a sidecar whose token
//! expired anyway re-attests from its own address instead of going silent; nobody else can.

use std::time::Duration;

use genesis_control::heartbeats::TokenPolicy;
use serde_json::{Value, json};

use crate::helpers::{Options, credentials, world};

/// The sidecar token the droplet's state file holds now.
fn token_on_disk(root: &std::path::Path, provider: i64) -> String {
    let file = root.join(format!("droplet-{provider}/sidecar.json"));
    let state: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("state file")).expect("json");
    state["sidecar_token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_are_renewed_before_they_expire_and_an_expired_one_re_attests() {
    // A 30-day token with 7 days of renewal window, squeezed into 8 s and 5 s.
    let w = world(Options {
        token_policy: TokenPolicy {
            ttl: Duration::from_secs(8),
            renew_before: Duration::from_secs(5),
        },
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("tokens").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["status"], "ACTIVE", "{got:#}");
    let row = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let provider = row.provider_id.expect("provider");
    let first = token_on_disk(&w.root, provider);

    // Renewed on a heartbeat once under 5 s are left, and the new token is kept on disk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let second = loop {
        let now = token_on_disk(&w.root, provider);
        if now != first {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "no renewal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let beat = |token: &str| {
        w.http
            .post(format!("{}/api/v1/sidecar/heartbeat", w.base))
            .bearer_auth(token)
            .json(&json!({
                "workspace_id": ws.as_uuid(), "droplet_id": provider, "state": "ready",
                "n8n_status": "running", "n8n_pid": null, "active_workflows": 3,
                "pending_executions": 0, "cpu_usage_percent": 1.0, "memory_usage_mb": 300,
                "disk_usage_percent": 10.0, "uptime_seconds": 60
            }))
            .send()
    };
    // The overlap: both tokens work until the first expires.
    assert!(beat(&first).await.expect("beat").status().is_success());
    assert!(beat(&second).await.expect("beat").status().is_success());
    let renewed =
        w.t.db
            .audit_list(Some(ws), Some("SIDECAR_TOKEN_RENEWED"), 10)
            .await
            .expect("audit");
    assert!(!renewed.is_empty());
    // Past the first token's end, it is refused; the droplet kept beating with the new ones.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(beat(&first).await.expect("beat").status(), 401);
    let (at, _) =
        w.t.db
            .droplet_last_heartbeat(row.id)
            .await
            .expect("hb")
            .expect("a heartbeat");
    assert!(
        chrono::Utc::now() - at < chrono::Duration::seconds(3),
        "the droplet never went silent (last beat {at})"
    );

    // Every token of the droplet expires at once (a droplet that slept past its token):
    // the sidecar re-attests from its own address and carries on.
    sqlx::query("UPDATE genesis.sidecar_tokens SET expires_at = now() WHERE droplet_id = $1")
        .bind(row.id.as_uuid())
        .execute(w.t.db.owner_pool())
        .await
        .expect("expire");
    let expired = token_on_disk(&w.root, provider);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reattested =
            w.t.db
                .audit_list(Some(ws), Some("SIDECAR_REATTESTED"), 10)
                .await
                .expect("audit");
        if !reattested.is_empty() && token_on_disk(&w.root, provider) != expired {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no re-attestation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = token_on_disk(&w.root, provider);
    assert!(beat(&fresh).await.expect("beat").status().is_success());

    // Anyone else asking for a token for this droplet is refused, and gets nothing.
    let thief = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .expect("client");
    let r = thief
        .post(format!("{}/api/v1/sidecar/reattest", w.base))
        .json(&json!({"workspace_id": ws.as_uuid(), "droplet_id": provider, "region": "eu-west"}))
        .send()
        .await
        .expect("reattest");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("problem");
    assert!(body.get("sealed_token").is_none(), "{body}");
    w.finish().await;
}
