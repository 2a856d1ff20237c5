//! A virtual droplet runs the real sidecar: created through the DigitalOcean client with a
//! cloud-init document, it boots a fake n8n and the sidecar on its own loopback address; the
//! sidecar asks the metadata service who it is, hand-shakes, heartbeats, and runs signed
//! commands that deploy and run a mapped workflow. Power off stops it; power on brings it
//! back without a second handshake.
//!
//! The control plane here is a stand-in that speaks the handshake and heartbeat contract
//! (`genesis_protocol`); the real endpoints arrive with the ignition issue.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use genesis_cloud::{ClientOptions, Cloud, CreateDroplet, DigitalOcean, PowerAction};
use genesis_protocol::command::{CredentialRef, SwapOutcome, TemplateMapping};
use genesis_protocol::{
    Command, CommandName, CommandReply, CommandSigner, HandshakeRequest, HandshakeResponse,
    Heartbeat, RefusalReason, SealedSecret, SidecarConfig,
};
use genesis_sim::digitalocean::{SimConfig, Simulator, serve};
use genesis_sim::fleet::{SIDECAR_PORT, SidecarHook};
use serde_json::{Value, json};
use uuid::Uuid;

const PROVISIONING_TOKEN: &str = "pt-one-time";

#[derive(Default)]
struct Seen {
    handshakes: Vec<HandshakeRequest>,
    refused_handshakes: u32,
    heartbeats: Vec<Heartbeat>,
}

#[derive(Clone)]
struct Dashboard {
    signer: Arc<CommandSigner>,
    seen: Arc<Mutex<Seen>>,
}

async fn handshake(State(d): State<Dashboard>, Json(req): Json<HandshakeRequest>) -> Response {
    let mut seen = d.seen.lock().expect("lock");
    // Single use: a second handshake with the same token is refused.
    if req.provisioning_token != PROVISIONING_TOKEN || !seen.handshakes.is_empty() {
        seen.refused_handshakes += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    seen.handshakes.push(req);
    Json(HandshakeResponse {
        sidecar_token: "st-30-days".into(),
        command_public_key: d.signer.public_key_b64(),
        command_key_id: d.signer.key_id().to_owned(),
        config: SidecarConfig {
            heartbeat_interval_s: 1,
            metrics_interval_s: 3600,
        },
    })
    .into_response()
}

async fn heartbeat(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Json(hb): Json<Heartbeat>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer st-30-days") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    d.seen.lock().expect("lock").heartbeats.push(hb);
    StatusCode::NO_CONTENT.into_response()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn send(http: &reqwest::Client, url: &str, token: &str, cmd: &Command) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(cmd).expect("json"))
        .send()
        .await
        .expect("command");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_droplet_runs_the_real_sidecar() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .try_init();
    let ws = Uuid::now_v7();
    let dashboard = Dashboard {
        signer: Arc::new(CommandSigner::generate().expect("key")),
        seen: Arc::new(Mutex::new(Seen::default())),
    };
    let dl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dashboard_url = format!("http://{}", dl.local_addr().expect("addr"));
    let app = Router::new()
        .route("/api/v1/sidecar/handshake", post(handshake))
        .route("/api/v1/sidecar/heartbeat", post(heartbeat))
        .route(
            "/api/v1/sidecar/metrics",
            post(|| async { StatusCode::NO_CONTENT }),
        )
        .with_state(dashboard.clone());
    tokio::spawn(async move { axum::serve(dl, app).await });

    let root = std::env::temp_dir().join(format!("genesis-fleet-{}", ws.simple()));
    let hook = SidecarHook::with_ready_timeout(root.clone(), Duration::from_secs(2));
    let sim = Simulator::new(SimConfig::default()).with_boot_hook(hook.clone());
    let sl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim_url = format!("http://{}", sl.local_addr().expect("addr"));
    tokio::spawn(serve(sl, sim, std::future::pending()));

    let mut o = ClientOptions::new(&sim_url, "t");
    o.poll_interval = Duration::from_millis(10);
    let cloud = DigitalOcean::new(o).expect("client");
    // The real cloud-init document the control plane sends (images by tag: the simulator
    // pulls nothing).
    let user_data = genesis_ignition::render(
        &genesis_ignition::IgnitionEnv {
            dashboard_url: dashboard_url.clone(),
            workspace_id: ws,
            provisioning_token: PROVISIONING_TOKEN.into(),
            region: "eu-west".into(),
        },
        &genesis_ignition::Images {
            caddy: "caddy:2".into(),
            n8n: "n8nio/n8n:2.8.4".into(),
            sidecar: "genesis-sidecar:dev".into(),
        },
        false,
    )
    .expect("cloud-init");
    let (droplet, action) = cloud
        .droplet_create(&CreateDroplet {
            name: "tenant-acme".into(),
            region: "fra1".into(),
            size: "s-1vcpu-1gb".into(),
            image: "ubuntu-22-04-x64".into(),
            user_data: Some(user_data),
            tags: vec![format!("ws-{ws}")],
            ssh_keys: vec![],
            vpc_uuid: None,
        })
        .await
        .expect("create");
    cloud
        .action_wait(action.expect("action").id, Duration::from_secs(5))
        .await
        .expect("active");
    let ip = droplet.public_ipv4().expect("address").to_owned();

    // Boot: metadata, n8n bootstrap, handshake, heartbeats.
    let seen = dashboard.seen.clone();
    wait_for("a heartbeat from the droplet", || {
        seen.lock().expect("lock").heartbeats.iter().any(|h| {
            h.droplet_id == droplet.id && h.n8n_status == genesis_protocol::N8nStatus::Running
        })
    })
    .await;
    let hs = seen.lock().expect("lock").handshakes[0].clone();
    assert_eq!((hs.workspace_id, hs.droplet_id), (ws, droplet.id));
    assert_eq!(hs.webhook_base_url, format!("http://{ip}:5678"));

    let http = reqwest::Client::new();
    let url = format!("http://{ip}:{SIDECAR_PORT}/sidecar/v1/commands");
    let signer = dashboard.signer.clone();
    // A token for exactly this command's body.
    let token = |c: &Command| {
        let body = serde_json::to_vec(c).expect("json");
        signer
            .sign(ws, droplet.id, c.name(), &body, now())
            .expect("sign")
    };

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
