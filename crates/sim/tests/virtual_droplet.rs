//! A virtual droplet runs the real sidecar: created through the DigitalOcean client with a
//! cloud-init document, it boots a fake n8n and the sidecar on its own loopback address; the
//! sidecar asks the metadata service who it is, hand-shakes, heartbeats, and runs signed
//! commands that deploy and run a mapped workflow. Power off stops it; power on brings it
//! back without a second handshake.
//!
//! The control plane here is a stand-in that speaks the handshake and heartbeat contract
//! (`standin`); `crates/control/tests` run the same droplets against the real one.

mod standin;

use std::time::Duration;

use genesis_cloud::{Cloud, PowerAction};
use genesis_protocol::command::{CredentialRef, SwapOutcome, TemplateMapping};
use genesis_protocol::{Command, CommandName, CommandReply, RefusalReason, SealedSecret};
use serde_json::json;
use standin::{World, send, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_droplet_runs_the_real_sidecar() {
    let w = World::boot().await;
    let (ws, droplet, ip, hook, cloud, root) = (
        w.ws,
        w.droplet.clone(),
        w.ip.clone(),
        w.hook.clone(),
        &w.cloud,
        w.root.clone(),
    );
    let seen = w.dashboard.seen.clone();
    let hs = seen.lock().expect("lock").handshakes[0].clone();
    assert_eq!((hs.workspace_id, hs.droplet_id), (ws, droplet.id));
    assert_eq!(hs.webhook_base_url, format!("http://{ip}:5678"));

    let http = reqwest::Client::new();
    let url = w.command_url();
    let token = |c: &Command| w.token(c);

    // A credential, sealed to the sidecar's key from the handshake.
    let sealed = SealedSecret::seal(
        &hs.sidecar_public_key,
        br#"{"apiKey":"sk-acme","header":false}"#,
    )
    .expect("seal");
    let inject = Command::InjectCredential {
        name: "Acme OpenAI".into(),
        credential_type: "openAiApi".into(),
        data: sealed,
    };
    let (status, body) = send(&http, &url, &token(&inject), &inject).await;
    assert_eq!(status, 200, "{body}");
    let reply: CommandReply = serde_json::from_value(body).expect("reply");
    let CommandReply::InjectCredential { credential_id } = reply else {
        panic!("{reply:?}")
    };

    // A Golden Template, mapped and deployed active.
    let template = json!({
        "name": "Inbound for YOUR_COMPANY_NAME",
        "nodes": [
            {"name": "Inbound", "type": "n8n-nodes-base.webhook", "typeVersion": 2, "position": [0, 0],
             "parameters": {"path": "in-YOUR_WORKSPACE_ID", "httpMethod": "POST"}},
            {"name": "Score", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 1, "position": [200, 0],
             "parameters": {}, "credentials": {"openAiApi": {"id": "TEMPLATE_OPENAI_UUID", "name": "t"}}}
        ],
        "connections": {},
        "settings": {}
    });
    let mut mapping = TemplateMapping::default();
    mapping.credentials.insert(
        "TEMPLATE_OPENAI_UUID".into(),
        CredentialRef {
            id: credential_id.clone(),
            name: "Acme OpenAI".into(),
        },
    );
    mapping
        .variables
        .insert("YOUR_COMPANY_NAME".into(), "Acme".into());
    mapping
        .variables
        .insert("YOUR_WORKSPACE_ID".into(), ws.simple().to_string());
    let deploy = Command::DeployWorkflow {
        template: template.clone(),
        mapping: mapping.clone(),
        activate: true,
        template_version: Some("2026.11.1".into()),
    };
    let (status, body) = send(&http, &url, &token(&deploy), &deploy).await;
    assert_eq!(status, 200, "{body}");
    let CommandReply::DeployWorkflow {
        workflow_id,
        webhook_url,
    } = serde_json::from_value(body).expect("reply")
    else {
        panic!("not a deploy reply")
    };
    let webhook_url = webhook_url.expect("a webhook");
    let n8n = hook.n8n(droplet.id).expect("the droplet's n8n");
    assert_eq!(n8n.workflow_tag_names(&workflow_id), ["tpl:2026.11.1"]);
    // No webhookId on this template's trigger: n8n serves it under the workflow's id and
    // the node's name.
    assert_eq!(
        webhook_url,
        format!(
            "http://{ip}:5678/webhook/{workflow_id}/inbound/in-{}",
            ws.simple()
        )
    );
    let r = http
        .post(&webhook_url)
        .json(&json!({"email": "x@y.z"}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    let (status, body) = send(
        &http,
        &url,
        &token(&Command::CollectMetrics),
        &Command::CollectMetrics,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["total_executions"], 1);

    // A mapping that leaves a placeholder is refused before n8n sees it.
    let mut partial = mapping.clone();
    partial.variables.remove("YOUR_COMPANY_NAME");
    let bad = Command::DeployWorkflow {
        template: template.clone(),
        mapping: partial,
        activate: false,
        template_version: None,
    };
    let (status, body) = send(&http, &url, &token(&bad), &bad).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unmapped_placeholder")),
        "{body}"
    );

    // A droplet with no web front says so, in words, rather than pretending to serve a
    // tracking domain.
    let track = Command::SetTrackingDomains {
        hosts: vec!["track.acme.test".into()],
    };
    let (status, body) = send(&http, &url, &token(&track), &track).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("web_front")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no web front")),
        "{body}"
    );

    // A redeploy of a newer version updates the same workflow and moves its version tag.
    let newer = Command::DeployWorkflow {
        template,
        mapping: mapping.clone(),
        activate: true,
        template_version: Some("2026.12.0".into()),
    };
    let (status, body) = send(&http, &url, &token(&newer), &newer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["workflow_id"],
        workflow_id.as_str(),
        "{body}"
    );
    assert_eq!(n8n.workflow_tag_names(&workflow_id), ["tpl:2026.12.0"]);

    // Refusals over HTTP: a replayed token, a token for another command.
    let once = token(&Command::HealthCheck);
    assert_eq!(send(&http, &url, &once, &Command::HealthCheck).await.0, 200);
    let (status, body) = send(&http, &url, &once, &Command::HealthCheck).await;
    assert_eq!((status, body["refused"].as_str()), (403, Some("replayed")));
    let (status, _) = send(
        &http,
        &url,
        &token(&Command::HealthCheck),
        &Command::RestartN8n,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(&http, &url, "garbage", &Command::HealthCheck).await;
    assert_eq!(status, 401);
    wait_for("refusals reported in a heartbeat", || {
        let s = seen.lock().expect("lock");
        let reasons: Vec<RefusalReason> = s
            .heartbeats
            .iter()
            .flat_map(|h| h.refused_commands.iter().map(|r| r.reason))
            .collect();
        reasons.contains(&RefusalReason::Replayed)
            && reasons.contains(&RefusalReason::WrongAction)
            && reasons.contains(&RefusalReason::Malformed)
    })
    .await;

    // Blue-green: a good image swaps; a broken one rolls back and n8n serves again.
    let swap = |image: &str| Command::SwapContainer {
        image: image.into(),
        quiet_wait_s: 5,
    };
    let (status, body) = send(
        &http,
        &url,
        &token(&swap("n8nio/n8n:2.8.5")),
        &swap("n8nio/n8n:2.8.5"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(matches!(
        serde_json::from_value(body["result"].clone()),
        Ok(SwapOutcome::Swapped { .. })
    ));
    let (status, body) = send(
        &http,
        &url,
        &token(&swap("n8nio/n8n:broken")),
        &swap("n8nio/n8n:broken"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        matches!(
            serde_json::from_value(body["result"].clone()),
            Ok(SwapOutcome::RolledBack { .. })
        ),
        "{body}"
    );
    let r = http
        .post(&webhook_url)
        .json(&json!({}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200, "n8n is back, with its workflows");
    let (status, body) = send(
        &http,
        &url,
        &token(&Command::GetLogs { lines: 50 }),
        &Command::GetLogs { lines: 50 },
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["result"]["logs"].to_string().contains("broken"),
        "{body}"
    );

    for (name, cmd) in [
        (
            CommandName::DeactivateWorkflow,
            Command::DeactivateWorkflow {
                workflow_id: workflow_id.clone(),
            },
        ),
        (
            CommandName::DeleteWorkflow,
            Command::DeleteWorkflow {
                workflow_id: workflow_id.clone(),
            },
        ),
    ] {
        let (status, body) = send(&http, &url, &token(&cmd), &cmd).await;
        assert_eq!(status, 200, "{name}: {body}");
    }

    // Power off: the sidecar stops. Power on: it comes back without a second handshake.
    let off = cloud
        .droplet_action(droplet.id, PowerAction::PowerOff)
        .await
        .expect("off");
    cloud
        .action_wait(off.id, Duration::from_secs(5))
        .await
        .expect("off");
    wait_for("the sidecar to stop", || hook.running() == 0).await;
    let before = seen.lock().expect("lock").heartbeats.len();
    let on = cloud
        .droplet_action(droplet.id, PowerAction::PowerOn)
        .await
        .expect("on");
    cloud
        .action_wait(on.id, Duration::from_secs(5))
        .await
        .expect("on");
    wait_for("heartbeats after power on", || {
        seen.lock().expect("lock").heartbeats.len() > before + 1
    })
    .await;
    let (handshakes, refused) = {
        let s = seen.lock().expect("lock");
        (s.handshakes.len(), s.refused_handshakes)
    };
    assert_eq!(handshakes, 1, "the sidecar token survived the reboot");
    assert_eq!(refused, 0);

    cloud.droplet_delete(droplet.id).await.expect("delete");
    wait_for("the droplet's disk to be wiped", || {
        !root.join(format!("droplet-{}", droplet.id)).exists()
    })
    .await;
    let _ = std::fs::remove_dir_all(&root);
}
