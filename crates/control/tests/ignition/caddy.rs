//! Caddy on the command path (issue 18): every droplet runs real Caddy (Debian's) in front
//! of its sidecar and n8n with the Caddyfile its cloud-init wrote; the control plane sends
//! its commands over HTTPS through it, trusting the CA its configuration names, and the
//! lead-intake webhook is reached through it too.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Options, credentials, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_and_webhooks_go_through_the_droplets_caddy_over_https() {
    let w = world(Options {
        caddy: true,
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("behind_caddy").await;
    let (s, ig) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(s, 202, "{ig}");
    let got = w.wait_finished(ws, Duration::from_secs(90)).await;
    assert_eq!(got["status"], "ACTIVE", "{got:#}");
    let row = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let provider = row.provider_id.expect("provider");
    let ip = genesis_cloud::Cloud::droplet_get(&*w.cloud, provider)
        .await
        .expect("droplet")
        .public_ipv4()
        .expect("address")
        .to_owned();

    // Every command of the ignition went over HTTPS through Caddy: the journal has them.
    // The journal is flushed in batches (every 100 ms here), so it may trail ACTIVE a little.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, d) = w.get(&format!("/api/v1/droplets/{}", row.id)).await;
        let sent = d["commands"].as_array().expect("commands").len();
        if sent >= 4 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{d:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, health) = w
        .post(&format!("/api/v1/droplets/{}/health", row.id), json!({}))
        .await;
    assert_eq!(s, 200, "{health}");

    // The webhook URL the control plane recorded is Caddy's HTTPS address, and a lead posted
    // there goes Caddy → n8n → control plane into the tenant's partition.
    let url = got["webhooks"][0]["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("https://{ip}:9443/webhook/")),
        "{url}"
    );
    let ca = std::fs::read(w.root.join("ca/sim-ca.crt")).expect("the CA");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .build()
        .expect("client");
    let token = ig["lead_intake"]["token"].as_str().expect("token");
    let r = https
        .post(&url)
        .header("X-Genesis-Token", token)
        .json(&json!({"email": "ana@lead.example", "first_name": "Ana"}))
        .send()
        .await
        .expect("webhook through Caddy");
    assert_eq!(r.status(), 200);
    let (_, leads) = w.get(&format!("/api/v1/workspaces/{ws}/leads")).await;
    assert_eq!(leads["items"][0]["email"], "ana@lead.example", "{leads}");

    // Anything else is a 404 from Caddy; n8n's editor and API are not reachable.
    for path in [
        "/",
        "/rest/settings",
        "/api/v1/workflows",
        "/webhook-test/x",
    ] {
        let r = https
            .get(format!("https://{ip}:9443{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404, "{path}");
    }
    // Without the CA, the certificate is not trusted: the client is not talking to just
    // anyone who answers on that address.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("https://{ip}:9443/"))
            .send()
            .await
            .is_err()
    );
    w.finish().await;
}
