//! The ignition saga end to end (spec 41, 42, 50.6): real PostgreSQL, Redis, control plane,
//! DigitalOcean simulator, sidecars and fake n8n, all over HTTP.

mod caddy;
mod contract;
mod credentials;
mod droplet_ops;
mod failures;
mod helpers;
mod real_n8n;
mod recovery;
mod tokens;
mod tracking;
mod wizard;

use std::time::Duration;

use genesis_core::{DropletState, IgnitionStep};
use helpers::{Options, Residue, assert_unwound, credentials, world};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workspace_ignites_to_active_with_its_workflows_running() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("happy_path").await;
    let (status, ig) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202, "{ig}");
    assert_eq!(ig["steps_total"], 6);

    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    assert_eq!(got["status"], "ACTIVE");
    for s in got["ignition"]["steps"].as_array().expect("steps") {
        assert_eq!(s["status"], "done", "{s}");
    }
    // The lead-intake webhook is registered with the droplet's n8n address.
    let hooks = got["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 1, "{got:#}");
    assert_eq!(hooks[0]["name"], "lead-intake");
    let url = hooks[0]["url"].as_str().expect("url");
    assert!(url.contains(&format!("/webhook/leads-{ws}")), "{url}");

    // The droplet: hand-shook, recorded, and its n8n holds the tenant's credentials and the
    // three template workflows, mapped and active.
    let rows = w.t.db.droplet_live_for_workspace(ws).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, DropletState::ActiveHealthy);
    let provider = rows[0].provider_id.expect("provider id");
    let (webhook_base, _) =
        w.t.db
            .droplet_handshake_record(rows[0].id)
            .await
            .expect("record")
            .expect("handshake recorded");
    assert!(url.starts_with(&webhook_base), "{url} vs {webhook_base}");
    // Behind the fleet's Cloud Firewall (443 and 80 only: no SSH range is configured) and
    // in its region's default VPC.
    let firewalls = genesis_cloud::Cloud::firewall_list(&*w.cloud)
        .await
        .expect("firewalls");
    assert_eq!(firewalls.len(), 1, "{firewalls:?}");
    assert_eq!(firewalls[0].tags, ["genesis"]);
    let open: Vec<&str> = firewalls[0]
        .inbound_rules
        .iter()
        .map(|r| r.ports.as_str())
        .collect();
    assert_eq!(open, ["443", "80"]);
    let cloud_droplet = genesis_cloud::Cloud::droplet_get(&*w.cloud, provider)
        .await
        .expect("droplet");
    let vpcs = genesis_cloud::Cloud::vpc_list(&*w.cloud)
        .await
        .expect("vpcs");
    let vpc = vpcs
        .iter()
        .find(|v| Some(&v.id) == cloud_droplet.vpc_uuid.as_ref())
        .expect("the droplet is in a VPC");
    assert!(vpc.default && vpc.region == cloud_droplet.region.slug);
    let n8n = w.hook.n8n(provider).expect("the droplet's n8n");
    let creds = n8n.credential_summary();
    let kinds: Vec<&str> = creds.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(kinds.len(), 4, "{creds:?}");
    assert!(kinds.contains(&"gmailOAuth2") && kinds.contains(&"openAiApi"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "httpHeaderAuth").count(),
        2,
        "the lead-intake token and the API token: {creds:?}"
    );
    let flows = n8n.workflow_summary();
    assert_eq!(flows.len(), 3, "{flows:?}");
    assert!(flows.iter().all(|f| f.2), "all active: {flows:?}");
    assert!(
        flows.iter().all(|f| f.1.contains("(Acme)")),
        "mapped: {flows:?}"
    );

    // Heartbeats arrive and say three workflows are active.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((_, hb)) = w.t.db.droplet_last_heartbeat(rows[0].id).await.expect("hb")
            && hb["active_workflows"] == 3
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat with 3 active workflows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A lead posted to the lead-intake webhook, with the token the ignite answer showed once,
    // goes through the tenant's n8n and comes back to the control plane with the
    // workspace's own API token: it lands in the tenant's partition.
    let token = ig["lead_intake"]["token"]
        .as_str()
        .expect("the token, shown once");
    assert_eq!(ig["lead_intake"]["header"], "X-Genesis-Token");
    let http = reqwest::Client::new();
    let post = |token: Option<&str>, email: &str| {
        let mut req = http
            .post(url)
            .json(&json!({"email": email, "first_name": "Lin", "utm_source": "ads"}));
        if let Some(t) = token {
            req = req.header("X-Genesis-Token", t);
        }
        req.send()
    };
    let r = post(Some(token), "lin@lead.example")
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.expect("the import report");
    assert_eq!(report["inserted"], 1, "{report}");
    let (_, leads) = w.get(&format!("/api/v1/workspaces/{ws}/leads")).await;
    let emails: Vec<&str> = leads["items"]
        .as_array()
        .expect("leads")
        .iter()
        .filter_map(|l| l["email"].as_str())
        .collect();
    assert_eq!(emails, ["lin@lead.example"], "{leads}");
    // n8n itself refuses a caller without the token, or with another.
    for wrong in [None, Some("whk_not-the-token")] {
        let r = post(wrong, "mallory@lead.example").await.expect("webhook");
        assert_eq!(r.status(), 403, "{wrong:?}");
    }
    // A lead the control plane refuses fails the execution; the caller hears so.
    let r = post(Some(token), "not-an-email").await.expect("webhook");
    assert_eq!(r.status(), 500);
    // The API token in the tenant's n8n reaches that workspace's leads and nothing else.
    let api = creds
        .iter()
        .find(|c| c.1 == "Genesis API")
        .and_then(|c| n8n.credential_data(&c.0))
        .expect("the API credential");
    let bearer = api["value"].as_str().expect("value").to_owned();
    assert!(bearer.starts_with("Bearer gws_"), "{api}");
    let other = w.create_workspace("someone_else").await;
    // n8n reaches the control plane through its sidecar's relay, which signs each call
    // (spec 65.3); the same token straight to the control plane, unsigned, is refused.
    let relay =
        w.t.db
            .droplet_relay_url(rows[0].id)
            .await
            .expect("db")
            .expect("the sidecar reported its relay");
    let direct = http
        .get(format!("{}/api/v1/workspaces/{ws}/leads", w.base))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("call");
    assert_eq!(
        direct.status(),
        401,
        "an unsigned call with the ingest token"
    );
    let as_tenant = |method: reqwest::Method, path: String| {
        http.request(method, format!("{relay}{path}"))
            .header("authorization", &bearer)
            .json(&json!({}))
            .send()
    };
    for (method, path, expected) in [
        (
            reqwest::Method::GET,
            format!("/api/v1/workspaces/{ws}/leads"),
            200,
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/workspaces/{other}/leads"),
            401,
        ),
        (reqwest::Method::GET, "/api/v1/workspaces".to_owned(), 401),
        (
            reqwest::Method::GET,
            format!("/api/v1/workspaces/{ws}"),
            401,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/workspaces/{ws}/wake"),
            401,
        ),
    ] {
        let r = as_tenant(method.clone(), path.clone()).await.expect("call");
        assert_eq!(r.status(), expected, "{method} {path}");
    }

    // The reply handler's call home, with the same token: a reply takes the lead out of its
    // sequence (the outreach workflow mails only `new` leads), once, and is audited.
    let reply = |ws: String, from: &str, label: &str| {
        http.post(format!("{relay}/api/v1/workspaces/{ws}/replies"))
            .header("authorization", &bearer)
            .json(&json!({"from": from, "label": label}))
            .send()
    };
    let mut outcomes = Vec::new();
    for (from, label) in [
        ("Lin Example <lin@lead.example>", "Out of office."),
        ("Lin Example <lin@lead.example>", "Interested."),
        ("lin@lead.example", "unsubscribe"),
        ("Nobody <nobody@lead.example>", "interested"),
    ] {
        let r = reply(ws.to_string(), from, label).await.expect("reply");
        assert_eq!(r.status(), 200, "{from} {label}");
        let body: serde_json::Value = r.json().await.expect("json");
        outcomes.push((
            body["outcome"].as_str().unwrap_or_default().to_owned(),
            body["status"].clone(),
        ));
    }
    assert_eq!(
        outcomes,
        [
            ("auto_reply".to_owned(), json!(null)),
            ("marked".to_owned(), json!("replied")),
            ("marked".to_owned(), json!("unsubscribed")),
            ("no_lead".to_owned(), json!(null)),
        ]
    );
    let (_, fresh) = w
        .get(&format!("/api/v1/workspaces/{ws}/leads?status=new"))
        .await;
    assert_eq!(fresh["items"].as_array().map(Vec::len), Some(0), "{fresh}");

    // The outreach workflow, its schedule fired now, verifies each new lead's address
    // through the managed-service gateway, paid from the workspace's wallet (spec 57.2,
    // 58.2), and writes only to deliverable addresses.
    let outreach = flows
        .iter()
        .find(|f| f.1.starts_with("Genesis: outreach"))
        .map(|f| f.0.clone())
        .expect("the outreach workflow");
    let r = post(Some(token), "bounce@lead.example")
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    // An empty wallet: the gateway refuses (402), the node carries the refusal on, and
    // nobody is written to.
    let run = n8n.fire_schedule(&outreach).await.expect("a schedule");
    assert_eq!(run.error, None, "{run:?}");
    let verified = &run.outputs["Verify the address"][0];
    assert!(
        verified[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("402")),
        "{verified:?}"
    );
    assert!(!run.outputs.contains_key("Write the email"), "{run:?}");
    assert_eq!(w.wholesale.calls("email_verify"), 0);
    // With money: one verification, charged once, and the undeliverable address is left.
    w.wallets
        .credit(
            ws,
            uuid::Uuid::now_v7(),
            genesis_core::money::TransferKind::Deposit,
            genesis_core::money::Millicents::from_dollars(1),
            None,
            "test",
        )
        .await
        .expect("deposit");
    let run = n8n.fire_schedule(&outreach).await.expect("a schedule");
    assert_eq!(run.error, None, "{run:?}");
    assert_eq!(
        run.outputs["Deliverable?"],
        [
            vec![],
            vec![run.outputs["Verify the address"][0][0].clone()]
        ]
    );
    assert_eq!(
        run.outputs["Verify the address"][0][0]["address"],
        "bounce@lead.example"
    );
    assert!(!run.outputs.contains_key("Write the email"), "{run:?}");
    assert_eq!(w.wholesale.calls("email_verify"), 1);
    // The journal reaches the ledger.
    genesis_control::workers::reconciler::Reconciler::reconcile(
        &genesis_control::workers::wallet::WalletSyncer::new(
            w.wallets.clone(),
            w.state.stores.clone(),
        ),
    )
    .await
    .expect("sync");
    let (_, wallet) = w.get(&format!("/api/v1/workspaces/{ws}/wallet")).await;
    assert_eq!(
        wallet["balance_millicents"],
        100_000 - 300,
        "one verification at $0.003: {wallet}"
    );
    let bad = reply(ws.to_string(), "not an address", "interested")
        .await
        .expect("reply");
    assert_eq!(bad.status(), 422);
    let foreign = reply(other.to_string(), "lin@lead.example", "interested")
        .await
        .expect("reply");
    assert_eq!(
        foreign.status(),
        401,
        "the token reaches its own workspace only"
    );

    // Igniting again is refused: the workspace is active.
    let (status, p) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 409, "{p}");
    assert!(p.get("lead_intake").is_none(), "the token is shown once");
    // Every move is audited.
    let audit =
        w.t.db
            .audit_list(Some(ws), Some("IGNITION_STEP_DONE"), 50)
            .await
            .expect("audit");
    assert_eq!(audit.len(), 6);
    let replies =
        w.t.db
            .audit_list(Some(ws), Some("LEAD_REPLIED"), 50)
            .await
            .expect("audit");
    assert_eq!(replies.len(), 2, "one event per change of the lead");
    assert_eq!(w.residue(ws).await, Residue::IGNITED);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_ignite_requests_are_refused_by_name_and_start_nothing() {
    let w = world(Options::default()).await;
    // A workspace without the onboarding values the templates need.
    let (status, ws) = w
        .post(
            "/api/v1/workspaces",
            json!({"name": "Bare", "slug": "bare", "region": "eu-west",
                   "onboarding": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(status, 201);
    let bare = ws["id"].as_str().expect("id").to_owned();
    let (status, p) = w
        .post(&format!("/api/v1/workspaces/{bare}/ignite"), credentials())
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["field"], "onboarding.calendly_link_1", "{p}");

    let ws = w.create_workspace("bad_input").await;
    let path = format!("/api/v1/workspaces/{ws}/ignite");
    let (status, p) = w
        .post(&path, json!({"credentials": {"openai": {"apiKey": "k"}}}))
        .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (422, Some("credentials.gmail")),
        "{p}"
    );
    let (status, p) = w
        .post(
            &path,
            json!({"credentials": {"gmail": {}, "openai": {}, "slack": {}}}),
        )
        .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (422, Some("credentials.slack")),
        "{p}"
    );
    let (status, p) = w
        .post(&path, json!({"credentials": {"gmail": "x", "openai": {}}}))
        .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (422, Some("credentials.gmail")),
        "{p}"
    );
    let (status, _) = w
        .post(
            "/api/v1/workspaces/00000000-0000-7000-8000-000000000000/ignite",
            credentials(),
        )
        .await;
    assert_eq!(status, 404);
    // Nothing started.
    assert_eq!(w.residue(ws).await, Residue::default());
    assert!(w.t.db.ignition_latest(ws).await.expect("latest").is_none());

    // A workspace in its deletion grace period cannot be ignited.
    let doomed = w.create_workspace("doomed").await;
    let current = w.t.db.workspace_get(doomed).await.expect("workspace");
    w.t.db
        .workspace_transition(
            doomed,
            current.version,
            genesis_core::WorkspaceEvent::DeletionRequested,
            "test",
        )
        .await
        .expect("deletion requested");
    let (status, p) = w
        .post(
            &format!("/api/v1/workspaces/{doomed}/ignite"),
            credentials(),
        )
        .await;
    assert_eq!((status, p["field"].as_str()), (409, Some("status")), "{p}");
    assert!(
        w.t.db
            .ignition_latest(doomed)
            .await
            .expect("latest")
            .is_none()
    );
    assert_eq!(w.residue(doomed).await, Residue::default());

    // Igniting twice returns the running ignition.
    let (first, a) = w.post(&path, credentials()).await;
    let (second, b) = w.post(&path, credentials()).await;
    assert_eq!((first, second), (202, 200), "{a} {b}");
    assert_eq!(a["id"], b["id"]);
    w.wait_finished(ws, Duration::from_secs(60)).await;
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handshake_that_never_comes_unwinds_everything() {
    let mut timeouts = Options::default().timeouts;
    timeouts.insert(IgnitionStep::HandshakePending, Duration::from_secs(3));
    let w = world(Options {
        timeouts,
        sidecars: false,
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("no_handshake").await;
    let (status, _) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202);
    let got = assert_unwound(&w, ws, IgnitionStep::HandshakePending).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    let notes = w.t.db.notification_list(ws).await.expect("notifications");
    assert_eq!(notes[0].kind, "IGNITION_FAILED");
    // Spec 50.5: the droplet that booted but never called home failed to provision (it
    // never finished INITIALIZING as far as anyone can tell) and was then destroyed.
    let states: Vec<String> =
        w.t.db
            .audit_droplet_transitions(Some(ws), 50)
            .await
            .expect("audit")
            .iter()
            .rev() // the audit list is newest first
            .map(|a| a.details["to"].as_str().unwrap_or_default().to_owned())
            .collect();
    assert_eq!(states, ["INITIALIZING", "FAILED", "TERMINATED"]);
    w.finish().await;
}
