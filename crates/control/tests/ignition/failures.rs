//! Fail at each step in turn, with a real fault at the real boundary (the cloud's API, the
//! droplet's boot, the tenant's n8n): exactly the compensations of spec 50.6 run, in reverse,
//! and nothing is left behind.

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_core::IgnitionStep;
use genesis_ignition::TemplateSet;
use genesis_sim::digitalocean::{Faults, Span, Timings};
use serde_json::json;

use crate::helpers::{Options, assert_unwound, credentials, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cloud_failing_beyond_retries_unwinds_the_partition() {
    let w = world(Options::default()).await;
    w.faults(Faults {
        endpoint_error_rates: BTreeMap::from([("POST /v2/droplets".to_owned(), 1.0)]),
        ..Faults::default()
    });
    let ws = w.create_workspace("cloud_down").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = assert_unwound(&w, ws, IgnitionStep::DropletProvisioning).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("create droplet"), "{error}");
    assert!(w.sim.stats().injected_errors >= 3, "the client retried");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_droplet_still_creating_at_the_deadline_is_deleted() {
    let mut timeouts = Options::default().timeouts;
    timeouts.insert(IgnitionStep::DropletProvisioning, Duration::from_secs(2));
    let w = world(Options {
        timeouts,
        // The cloud takes a minute to create it: past spec 41.1's budget (shortened here).
        timings: Timings {
            create: Span::between(Duration::from_secs(60), Duration::from_secs(60)),
            ..Timings::INSTANT
        },
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("slow_create").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = assert_unwound(&w, ws, IgnitionStep::DropletProvisioning).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("waiting for the droplet to boot"), "{error}");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_droplet_whose_boot_fails_is_deleted_after_the_handshake_timeout() {
    // DigitalOcean says "active" when the hypervisor starts, not when cloud-init runs: a
    // boot that fails inside the droplet shows as a handshake that never comes.
    let mut timeouts = Options::default().timeouts;
    timeouts.insert(IgnitionStep::HandshakePending, Duration::from_secs(3));
    let w = world(Options {
        timeouts,
        ..Options::default()
    })
    .await;
    w.faults(Faults {
        never_boot_rate: 1.0,
        ..Faults::default()
    });
    let ws = w.create_workspace("never_boots").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = assert_unwound(&w, ws, IgnitionStep::HandshakePending).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("handshake"), "{error}");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credential_n8n_refuses_unwinds_droplet_partition_and_vault() {
    let w = world(Options::default()).await;
    // An n8n whose credential types are not the pinned ones refuses what the control
    // plane shaped for the pinned ones.
    w.hook.chaos_refuse_credentials(true);
    let ws = w.create_workspace("bad_credential").await;
    let (status, _) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202);
    let got = assert_unwound(&w, ws, IgnitionStep::CredentialsInjecting).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("apiKey"), "{error}");
    w.finish().await;
}

/// Credential data n8n's schema would refuse is refused at the door, naming the field, and
/// starts nothing: the payloads README once documented (`openai={"apiKey":...}`,
/// `gmail={"clientId":...,"clientSecret":...}`) are shaped into what n8n 2.8.4 takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credential_data_n8n_would_refuse_is_named_at_ignite_and_starts_nothing() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("named_fields").await;
    for (body, field) in [
        (
            json!({"credentials": {"gmail": {"clientId": "c", "clientSecret": "s"},
                "openai": {"organizationId": "org-without-a-key"}}}),
            "credentials.openai.apiKey",
        ),
        (
            json!({"credentials": {"gmail": {"clientId": "c"}, "openai": {"apiKey": "sk"}}}),
            "credentials.gmail.clientSecret",
        ),
        (
            json!({"credentials": {"gmail": {"clientId": "c", "clientSecret": "s"},
                "openai": {"apiKey": "sk", "api_key": "sk"}}}),
            "credentials.openai.api_key",
        ),
    ] {
        let (status, problem) = w
            .post(&format!("/api/v1/workspaces/{ws}/ignite"), body)
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (_, got) = w.get(&format!("/api/v1/workspaces/{ws}")).await;
    assert_eq!(got["status"], "PENDING", "{got}");
    assert!(got["ignition"].is_null(), "nothing started: {got}");
    w.finish().await;
}

/// The Golden Template with one file changed.
fn templates_with(file: &str, edit: impl Fn(&mut serde_json::Value)) -> TemplateSet {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/golden");
    let dir = std::env::temp_dir().join(format!("genesis-tpl-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    for entry in std::fs::read_dir(&src).expect("golden") {
        let entry = entry.expect("entry");
        let mut text = std::fs::read_to_string(entry.path()).expect("read");
        if entry.file_name() == file {
            let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
            edit(&mut v);
            text = v.to_string();
        }
        std::fs::write(dir.join(entry.file_name()), text).expect("write");
    }
    let set = TemplateSet::load(&dir).expect("template set");
    let _ = std::fs::remove_dir_all(&dir);
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workflow_n8n_refuses_unwinds_everything_including_webhooks() {
    // n8n 2.8.4 refuses workflow settings it does not know (400); lead-intake (with its
    // webhook) is deployed first, so its webhook row must be undone too.
    let w = world(Options {
        templates: Some(templates_with("outreach.json", |v| {
            v["settings"]["notARealSetting"] = json!(true);
        })),
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("bad_workflow").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = assert_unwound(&w, ws, IgnitionStep::WorkflowsDeploying).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("DEPLOY_WORKFLOW"), "{error}");
    let deleted =
        w.t.db
            .audit_list(Some(ws), Some("WEBHOOKS_DELETED"), 10)
            .await
            .expect("audit");
    assert!(
        deleted.iter().any(|a| a.details["webhooks"] == 1),
        "the lead-intake webhook row was removed by the undo: {deleted:?}"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_activation_n8n_refuses_unwinds_everything() {
    // A workflow whose only trigger is disabled cannot be activated.
    let w = world(Options {
        templates: Some(templates_with("reply-handler.json", |v| {
            v["nodes"][0]["disabled"] = json!(true);
        })),
        ..Options::default()
    })
    .await;
    let ws = w.create_workspace("bad_activation").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = assert_unwound(&w, ws, IgnitionStep::Activating).await;
    let error = got["ignition"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("trigger"), "{error}");
    w.finish().await;
}
