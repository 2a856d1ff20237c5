//! A stand-in control plane and one virtual droplet booted against it: what the sidecar
//! tests of this crate share. The stand-in speaks the handshake and heartbeat contract
//! (`genesis_protocol`) and keeps what it was sent; like the real control plane, it refuses
//! bodies over 2 MiB. The droplet is created through the real DigitalOcean client with the
//! real cloud-init document, and boots the real sidecar in front of a fake n8n.

#![allow(dead_code, reason = "each test binary uses a part of it")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use genesis_cloud::{ClientOptions, Cloud, CreateDroplet, DigitalOcean, Droplet};
use genesis_protocol::{
    Command, CommandSigner, HandshakeRequest, HandshakeResponse, Heartbeat, SidecarConfig,
};
use genesis_sim::digitalocean::{SimConfig, Simulator, serve};
use genesis_sim::fleet::{SIDECAR_PORT, SidecarHook};
use serde_json::Value;
use uuid::Uuid;

pub const PROVISIONING_TOKEN: &str = "pt-one-time";

#[derive(Default)]
pub struct Seen {
    pub handshakes: Vec<HandshakeRequest>,
    pub refused_handshakes: u32,
    pub heartbeats: Vec<Heartbeat>,
    /// Heartbeat bodies refused for their size (over 2 MiB).
    pub oversized: u32,
}

#[derive(Clone)]
pub struct Dashboard {
    pub signer: Arc<CommandSigner>,
    pub seen: Arc<Mutex<Seen>>,
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
        inbound_secret: None,
    })
    .into_response()
}

async fn heartbeat(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer st-30-days") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // The control plane's limit (axum's default body limit).
    if body.len() > 2 * 1024 * 1024 {
        d.seen.lock().expect("lock").oversized += 1;
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    match serde_json::from_slice::<Heartbeat>(&body) {
        Ok(hb) => {
            d.seen.lock().expect("lock").heartbeats.push(hb);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY.into_response(),
    }
}

pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub async fn send(http: &reqwest::Client, url: &str, token: &str, cmd: &Command) -> (u16, Value) {
    send_bytes(http, url, token, serde_json::to_vec(cmd).expect("json")).await
}

/// Sends `body` as it is (a test may send other bytes than the token was signed for).
pub async fn send_bytes(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("command");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One virtual droplet, booted and hand-shaken against a stand-in control plane.
pub struct World {
    pub ws: Uuid,
    pub dashboard: Dashboard,
    pub hook: Arc<SidecarHook>,
    pub cloud: DigitalOcean,
    pub droplet: Droplet,
    pub ip: String,
    pub root: std::path::PathBuf,
}

impl World {
    pub async fn boot() -> Self {
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
            // Bodies are limited in the handler, as the control plane limits them.
            .layer(axum::extract::DefaultBodyLimit::disable())
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
        // The real cloud-init document the control plane sends (images by tag: the
        // simulator pulls nothing).
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
            &Default::default(),
            false,
        )
        .expect("cloud-init");
        let (droplet, action) = cloud
            .droplet_create(&CreateDroplet {
                name: "tenant-acme".into(),
                region: "fra1".into(),
                size: "s-1vcpu-1gb".into(),
                image: "ubuntu-24-04-x64".into(),
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
        let seen = dashboard.seen.clone();
        let id = droplet.id;
        wait_for("a heartbeat from the droplet", || {
            seen.lock()
                .expect("lock")
                .heartbeats
                .iter()
                .any(|h| h.droplet_id == id && h.n8n_status == genesis_protocol::N8nStatus::Running)
        })
        .await;
        Self {
            ws,
            dashboard,
            hook,
            cloud,
            droplet,
            ip,
            root,
        }
    }

    /// The sidecar's command endpoint.
    pub fn command_url(&self) -> String {
        format!("http://{}:{SIDECAR_PORT}/sidecar/v1/commands", self.ip)
    }

    /// A token for exactly `cmd`'s body, from the control plane's key.
    pub fn token(&self, cmd: &Command) -> String {
        let body = serde_json::to_vec(cmd).expect("json");
        self.dashboard
            .signer
            .sign(self.ws, self.droplet.id, cmd.name(), &body, now())
            .expect("sign")
    }

    /// Heartbeats received so far.
    pub fn heartbeats(&self) -> usize {
        self.dashboard.seen.lock().expect("lock").heartbeats.len()
    }
}
