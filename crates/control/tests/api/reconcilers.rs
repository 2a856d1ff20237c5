//! `GET /api/v1/fleet/reconcilers` and `POST /api/v1/fleet/reconcilers/{name}/wake`: what
//! operators see of the background reconcilers, whichever replica they ask.

use serde_json::json;

use super::spawn_app;

#[tokio::test]
async fn every_reconciler_is_listed_with_what_its_leader_published() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/fleet/reconcilers").await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().expect("items");
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "audit-retention",
            "audit-seal",
            "command-keys",
            "deletions",
            "droplet-restore",
            "failover",
            "fleet-sampler",
            "hibernation",
            "mail",
            "oauth-ahead",
            "orphan-reaper",
            "pending-credentials",
            "region-watch",
            "rollouts",
            "snapshots",
            "standby",
            "support-grants",
            "tracking-domains",
            "wallet-check",
            "wallet-sync",
            "watchdog",
            "webhook-secrets",
            "webhooks",
            "zombie-detector"
        ]
    );
    // No fleet side, no mail server and no audit key here: nothing has published but the
    // webhook sender and secret rotation, which run wherever the vault has a key, and the
    // deletion reminders, the support-grant sweep and the audit retention, which run
    // everywhere.
    assert!(
        items
            .iter()
            .filter(|i| ![
                "webhooks",
                "webhook-secrets",
                "deletions",
                "support-grants",
                "audit-retention"
            ]
            .contains(&i["name"].as_str().unwrap_or_default()))
            .all(|i| i["liveness"] == "never_ran"),
        "{body}"
    );

    // What a leader (on another replica) published is shown, failing part and all.
    let published = json!({
        "name": "watchdog", "every_ms": 60000, "passes": 3,
        "last_pass_at": chrono::Utc::now(),
        "parts": [
            {"part": "us-east+us-west+eu-north+apac", "last_report": {"checked": 12},
             "last_ok_at": chrono::Utc::now(), "last_error": null, "last_error_at": null,
             "consecutive_failures": 0, "retry_at": null},
            {"part": "eu-west", "last_report": null, "last_ok_at": null,
             "last_error": "database unavailable", "last_error_at": chrono::Utc::now(),
             "consecutive_failures": 2, "retry_at": chrono::Utc::now()}
        ]
    });
    app.t
        .db
        .reconciler_status_put("watchdog", "replica-b:42", &published)
        .await
        .expect("publish");
    let (_, body) = app.get("/api/v1/fleet/reconcilers").await;
    let watchdog = body["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "watchdog"))
        .expect("watchdog");
    assert_eq!(watchdog["liveness"], "failing", "{watchdog}");
    assert_eq!(watchdog["leader"], "replica-b:42");
    assert_eq!(
        watchdog["status"]["parts"][1]["last_error"],
        "database unavailable"
    );
}

#[tokio::test]
async fn a_wake_is_accepted_for_a_reconciler_and_refused_for_anything_else() {
    let app = spawn_app().await;
    let (status, _, _) = app
        .post("/api/v1/fleet/reconcilers/watchdog/wake", json!(null))
        .await;
    assert_eq!(status, 202);
    let r = app
        .send(
            app.http
                .post(format!("{}/api/v1/fleet/reconcilers/mars/wake", app.base)),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap_or_default(),
        "application/problem+json"
    );
    // Without the API token, nothing.
    let r = app
        .http
        .post(format!(
            "{}/api/v1/fleet/reconcilers/watchdog/wake",
            app.base
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
}
