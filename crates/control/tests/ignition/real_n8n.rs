//! The droplet path on a real n8n 2.8.4 (issue 18): a tenant ignited through the real
//! control plane, its droplet running the real sidecar in front of a real n8n process
//! (`scripts/n8n-install.sh`), and a lead posted to the Golden Template's webhook at the URL
//! the control plane recorded, which lands in the tenant's partition through the template's
//! own call back to the control plane, made as n8n makes it; then a tenant's key update
//! rotated into that n8n.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Options, Residue, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_reaches_the_partition_through_a_real_n8n() {
    let mut timeouts = Options::default().timeouts;
    // A real n8n takes half a minute to start on two cores.
    timeouts.insert(
        genesis_core::IgnitionStep::HandshakePending,
        Duration::from_secs(300),
    );
    let w = world(Options {
        real_n8n: true,
        timeouts,
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("real_n8n").await;
    // The payloads as the wizard's Start Engine builds them: the Gmail credential carries
    // the grant "Connect Gmail" obtained (n8n's `oauthTokenData`), which a real n8n must
    // accept as the fake does.
    let (status, ig) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/ignite"),
            json!({"credentials": {
                "gmail": {
                    "clientId": "cid.apps.example",
                    "clientSecret": "gsecret",
                    "oauthTokenData": {
                        "access_token": "ya29.real-n8n-test",
                        "refresh_token": "1//0real-n8n-test",
                        "scope": "https://www.googleapis.com/auth/gmail.send openid email",
                        "token_type": "Bearer",
                        "expires_in": 3599,
                        "expiry_date": 1_800_000_000_000i64
                    }
                },
                "openai": {"apiKey": "sk-test-acme"}
            }}),
        )
        .await;
    assert_eq!(status, 202, "{ig}");
    let token = ig["lead_intake"]["token"]
        .as_str()
        .expect("the lead-intake token")
        .to_owned();
    let got = w.wait_finished(ws, Duration::from_secs(420)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    assert_eq!(got["status"], "ACTIVE");
    let rows = w.t.db.droplet_live_for_workspace(ws).await.expect("rows");
    let provider = rows[0].provider_id.expect("provider id");
    assert!(
        w.hook.runs_real_n8n(provider),
        "the droplet runs a real n8n"
    );

    let hooks = got["webhooks"].as_array().expect("webhooks");
    let url = hooks
        .iter()
        .find(|h| h["name"] == "lead-intake")
        .and_then(|h| h["url"].as_str())
        .expect("the lead-intake URL")
        .to_owned();
    let post = |token: &str, email: &str| {
        w.http
            .post(&url)
            .header("X-Genesis-Token", token)
            .json(
                &json!({"email": email, "first_name": "Rea", "company": "Real Co",
                          "source": "a field the template does not pass on"}),
            )
            .send()
    };
    let r = post(&token, "rea@real.example").await.expect("webhook");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("the import report");
    assert_eq!(report["inserted"], 1, "{report}");
    let (_, leads) = w.get(&format!("/api/v1/workspaces/{ws}/leads")).await;
    let found: Vec<(&str, &str)> = leads["items"]
        .as_array()
        .expect("leads")
        .iter()
        .map(|l| {
            (
                l["email"].as_str().unwrap_or_default(),
                l["company"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(found, [("rea@real.example", "Real Co")], "{leads}");
    let wrong = post("whk_not-the-token", "mallory@real.example")
        .await
        .expect("webhook");
    assert_eq!(wrong.status(), 403, "n8n checks the token");
    // A tenant's own key update (issue 24) reaches the real n8n: the sidecar's PATCH of the
    // credential must be one n8n 2.8.4 accepts, or the droplet does not confirm (503).
    let (status, updated) = w
        .put(
            &format!("/api/v1/workspaces/{ws}/credentials/openai"),
            json!({"data": {"apiKey": "sk-test-rotated"}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(w.residue(ws).await, Residue::IGNITED);
    w.finish().await;
}
