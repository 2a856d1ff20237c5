//! The ignition saga end to end (spec 41, 42, 50.6): real PostgreSQL, Redis, control plane,
//! DigitalOcean simulator, sidecars and fake n8n, all over HTTP.

mod failures;
mod helpers;
mod recovery;

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
    let n8n = w.hook.n8n(provider).expect("the droplet's n8n");
    let creds = n8n.credential_summary();
    let kinds: Vec<&str> = creds.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(kinds.len(), 2, "{creds:?}");
    assert!(kinds.contains(&"gmailOAuth2") && kinds.contains(&"openAiApi"));
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

    // Igniting again is refused: the workspace is active.
    let (status, p) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 409, "{p}");
    // Every move is audited.
    let audit =
        w.t.db
            .audit_list(Some(ws), Some("IGNITION_STEP_DONE"), 50)
            .await
            .expect("audit");
    assert_eq!(audit.len(), 6);
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
            .audit_list(Some(ws), Some("DROPLET_STATE_CHANGED"), 50)
            .await
            .expect("audit")
            .iter()
            .rev() // the audit list is newest first
            .map(|a| a.details["to"].as_str().unwrap_or_default().to_owned())
            .collect();
    assert_eq!(states, ["INITIALIZING", "FAILED", "TERMINATED"]);
    w.finish().await;
}
