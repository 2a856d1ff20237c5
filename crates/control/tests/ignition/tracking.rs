//! Tracking domains (spec 61.4) end to end: a tenant adds `track.acme.test` on the
//! dashboard; the record is created in a real authoritative DNS server (Knot); the control
//! plane finds it with a real DNS query, sends the signed `SET_TRACKING_DOMAINS` through the
//! droplet's real Caddy to its sidecar, which adds the host to that Caddy through its admin
//! API (a Unix socket); Caddy issues the host's certificate from its CA and serves n8n's
//! webhooks under the tenant's name, and nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::tracking_domains::TrackingDomains;
use genesis_sim::dns::DnsRecord;
use serde_json::json;

use crate::helpers::{Options, credentials, world};
use crate::wizard::{Person, location, sign_up};

fn cname(host: &str, target: &str) -> DnsRecord {
    DnsRecord {
        kind: "CNAME".into(),
        host: host.into(),
        value: target.into(),
        ttl: 60,
    }
}

/// The tracking page's row for `host`: its `data-state`.
fn state_of(html: &str, host: &str) -> Option<String> {
    let marker = format!(r#"data-host="{host}" data-state=""#);
    let at = html.find(&marker)? + marker.len();
    Some(html[at..].split('"').next().unwrap_or_default().to_owned())
}

async fn post(p: &Person, page: &str, action: &str, pairs: &[(&str, &str)]) -> (u16, String) {
    let r = p.submit(page, action, pairs).await;
    let status = r.status().as_u16();
    let to = location(&r);
    let body = r.text().await.unwrap_or_default();
    if status == 303 {
        assert_eq!(to, page, "back to the list");
        return (status, p.text(page).await);
    }
    (status, body)
}

/// An HTTPS client that trusts the simulator's CA and reaches `host` at the droplet.
fn client_for(ca: &[u8], host: &str, droplet: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca).expect("pem"))
        .resolve(host, droplet)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tracking_domain_is_found_in_dns_and_served_by_the_engines_caddy() {
    let w = world(Options {
        caddy: true,
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("tracked").await;
    let ada = sign_up(&w, "ada@acme.test").await;
    sqlx::query(
        "INSERT INTO genesis.workspace_members (workspace_id, account_id, account_region, email, role)
         SELECT $1, id, region, email, 'owner' FROM genesis.accounts WHERE email = 'ada@acme.test'",
    )
    .bind(ws.as_uuid())
    .execute(w.t.db.owner_pool())
    .await
    .expect("Ada owns the workspace");
    let page = format!("/app/workspaces/{ws}/tracking-domains");

    // Before the engine exists, a host waits, and the page says why.
    w.knot
        .apply("acme.test", &[cname("www", "acme.example")])
        .await
        .expect("zone");
    let (s, html) = post(&ada, &page, &page, &[("host", "https://Early.Acme.test/")]).await;
    assert_eq!(s, 303, "{html}");
    assert_eq!(
        state_of(&html, "early.acme.test").as_deref(),
        Some("pending")
    );
    assert!(html.contains("your engine has not started yet"), "{html}");
    assert!(html.contains(r#"id="no-engine""#));

    let (s, ig) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(s, 202, "{ig}");
    let got = w.wait_finished(ws, Duration::from_secs(90)).await;
    assert_eq!(got["status"], "ACTIVE", "{got:#}");
    let row = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let ip = genesis_cloud::Cloud::droplet_get(&*w.cloud, row.provider_id.expect("id"))
        .await
        .expect("droplet")
        .public_ipv4()
        .expect("address")
        .to_owned();
    let engine = format!("{}.sslip.io", ip.replace('.', "-"));
    let html = ada.text(&page).await;
    assert!(
        html.contains(&format!(r#"<code id="cname-target">{engine}</code>"#)),
        "the page names the CNAME's target: {html}"
    );

    // Bad input is refused in words, and changes nothing.
    for (typed, status, words) in [
        ("*.acme.test", 422, "not a wildcard"),
        ("track.acme.test:8443", 422, "without a port"),
        (&*engine, 422, "engine's own address"),
        ("early.acme.test", 409, "already in use"),
    ] {
        let (s, html) = post(&ada, &page, &page, &[("host", typed)]).await;
        assert_eq!(s, status, "{typed}: {html}");
        assert!(html.contains(words), "{typed}: {html}");
    }
    assert_eq!(w.t.db.tracking_domains(ws).await.expect("list").len(), 1);

    // A CNAME pointing elsewhere says where it points.
    w.knot
        .apply("acme.test", &[cname("track", "198-51-100-7.sslip.io")])
        .await
        .expect("record");
    let (s, html) = post(&ada, &page, &page, &[("host", "track.acme.test")]).await;
    assert_eq!(s, 303, "{html}");
    assert_eq!(
        state_of(&html, "track.acme.test").as_deref(),
        Some("wrong_target")
    );
    assert!(html.contains("CNAME 198-51-100-7.sslip.io"), "{html}");

    // Pointed at the engine, "Check now" finds it and the engine serves it at once.
    w.knot
        .apply("acme.test", &[cname("track", &engine)])
        .await
        .expect("record");
    let (s, html) = post(&ada, &page, &format!("{page}/track.acme.test/check"), &[]).await;
    assert_eq!(s, 303, "{html}");
    assert_eq!(
        state_of(&html, "track.acme.test").as_deref(),
        Some("active"),
        "{html}"
    );

    // Caddy now has a certificate for the tenant's name, from the CA the simulator's
    // droplets use, and serves n8n's webhooks under it: a lead posted to the intake
    // webhook at track.acme.test lands in the tenant's partition.
    let ca = std::fs::read(w.root.join("ca/sim-ca.crt")).expect("the CA");
    let droplet: SocketAddr = format!("{ip}:9443").parse().expect("addr");
    let https = client_for(&ca, "track.acme.test", droplet);
    let url = got["webhooks"][0]["url"].as_str().expect("url");
    let path = &url[url.find("/webhook/").expect("a webhook path")..];
    let token = ig["lead_intake"]["token"].as_str().expect("token");
    let r = https
        .post(format!("https://track.acme.test:9443{path}"))
        .header("X-Genesis-Token", token)
        .json(&json!({"email": "tracked@lead.example", "first_name": "Tia"}))
        .send()
        .await
        .expect("the webhook under the tenant's name");
    assert_eq!(r.status(), 200);
    let (_, leads) = w.get(&format!("/api/v1/workspaces/{ws}/leads")).await;
    assert_eq!(
        leads["items"][0]["email"], "tracked@lead.example",
        "{leads}"
    );
    // The sidecar is not reachable under that name, nor is anything but n8n's public paths.
    for p in ["/sidecar/v1/commands", "/", "/rest/settings"] {
        let r = https
            .get(format!("https://track.acme.test:9443{p}"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404, "{p}");
    }
    // Each change of state is in the audit trail.
    let audit =
        w.t.db
            .audit_list(Some(ws), Some("TRACKING_DOMAIN_ACTIVE"), 10)
            .await
            .expect("audit");
    assert_eq!(audit.len(), 1, "{audit:?}");

    // A second host whose record already exists: the reconciler's pass looks at it and
    // tells the engine, with no one pressing anything.
    w.knot
        .apply("acme.test", &[cname("go", &engine)])
        .await
        .expect("record");
    sqlx::query("UPDATE genesis.tracking_fronts SET sync_at = now() + interval '1 hour'")
        .execute(w.t.db.owner_pool())
        .await
        .expect("nothing due");
    let (s, html) = post(&ada, &page, &page, &[("host", "go.acme.test")]).await;
    assert_eq!(s, 303, "{html}");
    assert_eq!(state_of(&html, "go.acme.test").as_deref(), Some("verified"));
    let report = TrackingDomains::new(w.state.clone())
        .reconcile()
        .await
        .expect("a pass");
    assert_eq!(report.told, 1, "{report:?}");
    let html = ada.text(&page).await;
    assert_eq!(
        state_of(&html, "go.acme.test").as_deref(),
        Some("active"),
        "{html}"
    );
    // Its certificate is valid for its name (the request completes over verified TLS).
    let go = client_for(&ca, "go.acme.test", droplet);
    go.get("https://go.acme.test:9443/webhook/nothing-here")
        .send()
        .await
        .expect("served under its own certificate");

    // A rebooted droplet's Caddy starts from its Caddyfile, without the route: its sidecar
    // serves the saved list again, without the control plane.
    let provider = row.provider_id.expect("id");
    let rebooted_at = chrono::Utc::now();
    let reboot = genesis_cloud::Cloud::droplet_action(
        &*w.cloud,
        provider,
        genesis_cloud::PowerAction::Reboot,
    )
    .await
    .expect("reboot");
    genesis_cloud::Cloud::action_wait(&*w.cloud, reboot.id, Duration::from_secs(10))
        .await
        .expect("rebooted");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let beat =
            w.t.db
                .droplet_last_heartbeat(row.id)
                .await
                .expect("heartbeat");
        if beat.is_some_and(|(at, _)| at > rebooted_at) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat after the reboot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let again = client_for(&ca, "go.acme.test", droplet);
        if again
            .get("https://go.acme.test:9443/webhook/x")
            .send()
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sidecar did not serve its tracking domains again after the reboot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Removed, the host is no longer served: Caddy has no certificate for it any more.
    let (s, html) = post(&ada, &page, &format!("{page}/track.acme.test/remove"), &[]).await;
    assert_eq!(s, 303, "{html}");
    assert!(state_of(&html, "track.acme.test").is_none());
    let fresh = client_for(&ca, "track.acme.test", droplet);
    assert!(
        fresh
            .get("https://track.acme.test:9443/webhook/x")
            .send()
            .await
            .is_err(),
        "no longer served"
    );
    // A CNAME taken away later is noticed at the next look: the host leaves the engine.
    w.knot
        .remove("acme.test", "go", "CNAME")
        .await
        .expect("gone");
    sqlx::query("UPDATE genesis.tracking_domains SET next_check_at = now()")
        .execute(w.t.db.owner_pool())
        .await
        .expect("due");
    TrackingDomains::new(w.state.clone())
        .reconcile()
        .await
        .expect("a pass");
    let html = ada.text(&page).await;
    assert_eq!(
        state_of(&html, "go.acme.test").as_deref(),
        Some("pending"),
        "{html}"
    );
    let go = client_for(&ca, "go.acme.test", droplet);
    assert!(
        go.get("https://go.acme.test:9443/webhook/x")
            .send()
            .await
            .is_err()
    );
    w.finish().await;
}
