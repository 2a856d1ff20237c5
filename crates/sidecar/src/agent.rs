//! The sidecar's life: bootstrap n8n, hand-shake once, serve commands, heartbeat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use genesis_n8n::bootstrap::{BootstrapOptions, bootstrap};
use genesis_protocol::handshake::Versions;
use genesis_protocol::{
    CommandVerifier, CredentialState, HandshakeRequest, HandshakeResponse, Heartbeat,
    MetricsReport, N8nStatus, WorkflowState,
};

use crate::commands::Executor;
use crate::config::Settings;
use crate::expiry::CredentialExpiry;
use crate::runtime::ContainerRuntime;
use crate::server::CommandService;
use crate::state::SidecarState;

/// Why the sidecar cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Settings.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The state file.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// n8n.
    #[error(transparent)]
    N8n(#[from] genesis_n8n::N8nError),
    /// The control plane refused or never answered the handshake.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// Sockets and HTTP clients.
    #[error("{0}")]
    Io(String),
}

/// A running sidecar's handles (tests and the simulator look inside).
pub struct Running<R> {
    /// The command endpoint's address.
    pub command_addr: SocketAddr,
    /// The command service (refusal counts).
    pub service: Arc<CommandService<R>>,
    /// The executor (n8n client, runtime).
    pub executor: Arc<Executor<R>>,
    /// The heartbeat loop; ends with the shutdown signal.
    pub heartbeats: tokio::task::JoinHandle<()>,
}

/// An HTTP client whose connections leave from `settings.bind_ip` (a virtual droplet's own
/// address, so the metadata service and the control plane see the droplet).
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, SidecarError> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(settings.idle_connection_timeout);
    if let Some(ip) = settings.bind_ip {
        b = b.local_address(ip);
    }
    b.build().map_err(|e| SidecarError::Io(e.to_string()))
}

fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn handshake(
    http: &reqwest::Client,
    settings: &Settings,
    state: &SidecarState,
) -> Result<HandshakeResponse, SidecarError> {
    let req = HandshakeRequest {
        provisioning_token: settings.provisioning_token.clone(),
        workspace_id: settings.workspace_id,
        droplet_id: settings.droplet_id,
        region: settings.region.clone(),
        webhook_base_url: settings.webhook_base_url.clone(),
        sidecar_public_key: state.sealing.public_key_b64(),
        versions: Versions {
            sidecar: crate::VERSION.into(),
            n8n: genesis_n8n::N8N_VERSION.into(),
        },
        relay_url: settings.relay.as_ref().map(|r| r.url.clone()),
    };
    let url = format!("{}/api/v1/sidecar/handshake", settings.dashboard_url);
    // The provisioning token lives 15 minutes: retry transient failures well inside that.
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(25)
        .with_jitter()
        .build();
    loop {
        let outcome = http.post(&url).json(&req).send().await;
        let retry_reason = match outcome {
            Ok(r) if r.status().is_success() => {
                return r
                    .json()
                    .await
                    .map_err(|e| SidecarError::Handshake(format!("unreadable answer: {e}")));
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                return Err(SidecarError::Handshake(format!(
                    "the control plane refused the provisioning token ({status}): {body}"
                )));
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        let Some(delay) = delays.next() else {
            return Err(SidecarError::Handshake(format!(
                "gave up after repeated failures; last: {retry_reason}"
            )));
        };
        tracing::warn!(reason = %retry_reason, ?delay, "handshake failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Boots the sidecar on `runtime` (n8n must already be starting) and returns once commands
/// are served and heartbeats run; they stop when `shutdown` resolves.
pub async fn start<R: ContainerRuntime>(
    settings: Settings,
    runtime: Arc<R>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running<R>, SidecarError> {
    let http = http_client(&settings)?;
    let mut state = SidecarState::load_or_create(&settings.state_dir)?;
    let n8n = bootstrap(
        &http,
        &BootstrapOptions {
            base_url: settings.n8n_url.clone(),
            state_file: settings.state_dir.join("n8n-owner.json"),
            owner_email: settings.owner_email.clone(),
            readiness_timeout: settings.n8n_ready_timeout,
        },
    )
    .await?
    .client;
    if state.sidecar_token.is_none() || state.command_public_key.is_none() {
        let answer = handshake(&http, &settings, &state).await?;
        state.sidecar_token = Some(answer.sidecar_token);
        state.command_public_key = Some(answer.command_public_key);
        state.config = Some(answer.config);
        state.inbound_secret = answer.inbound_secret;
        state.save()?;
        tracing::info!(droplet = settings.droplet_id, "handshake complete");
    }
    let (Some(token), Some(key)) = (
        state.sidecar_token.clone(),
        state.command_public_key.clone(),
    ) else {
        return Err(SidecarError::Handshake(
            "no sidecar token after the handshake".into(),
        ));
    };
    let config = state.config.unwrap_or_default();
    let inbound_secret = state.inbound_secret.clone();
    let sealing = Arc::new(state.sealing);
    let verifier = CommandVerifier::new(&key, settings.workspace_id, settings.droplet_id)
        .map_err(|e| SidecarError::Handshake(format!("the command key is unusable: {e}")))?;
    // A key rotation seen before a restart: trust what the control plane last said.
    if !state.command_keys.is_empty()
        && let Err(e) = verifier.trust_exactly(&state.command_keys)
    {
        tracing::warn!(error = %e, "the saved command keys are unusable; trusting the handshake's key");
    }
    let executor = Executor::new(
        n8n,
        runtime,
        sealing.clone(),
        settings.webhook_base_url.clone(),
        http.clone(),
        settings.n8n_ready_timeout,
        settings.host_stats.clone(),
    )
    .with_credential_expiry(CredentialExpiry::load_with(
        settings.state_dir.join("credential-expiry.json"),
        settings.sync_state,
    ))
    .with_ssh_keys(crate::ssh_keys::SshKeys::new(
        settings.authorized_keys.clone(),
    ));
    let executor = Arc::new(match &settings.caddy_admin {
        Some(socket) => executor.with_front(
            crate::front::WebFront::new(socket, &settings.n8n_url)
                .map_err(|e| SidecarError::Io(format!("the web front: {e}")))?,
            crate::front::TrackingDomains::in_dir(&settings.state_dir),
        ),
        None => executor,
    });
    // A restarted droplet's Caddy starts from its Caddyfile: serve the tracking domains
    // again without waiting for the control plane.
    let restoring = executor.clone();
    tokio::spawn(async move { restoring.restore_tracking().await });
    // The ids of commands accepted before a restart stay spent.
    let (used, live) = crate::guard::UsedIds::open(
        settings.state_dir.join("used-commands.log"),
        settings.sync_state,
        unix_now(),
    )
    .map_err(|e| SidecarError::Io(format!("the used-command log: {e}")))?;
    for (jti, exp) in &live {
        verifier.remember(jti, *exp);
    }
    let service = CommandService::guarded(
        verifier,
        executor.clone(),
        crate::server::Guarding {
            used: Some(used),
            trusted_proxies: settings.trusted_proxies.clone(),
            limiter: crate::guard::SourceLimiter::default(),
        },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let command_addr = serve_at(
        settings.attach.clone(),
        settings.listen,
        service.router(),
        stop_rx.clone(),
    )
    .await?;
    match (&settings.relay, inbound_secret) {
        (Some(relay), Some(secret)) => {
            let app = crate::relay::Relay::new(
                http.clone(),
                &settings.dashboard_url,
                settings.workspace_id,
                settings.droplet_id,
                secret,
            )
            .router();
            serve_at(settings.attach.clone(), relay.listen, app, stop_rx.clone()).await?;
        }
        (Some(_), None) => tracing::warn!(
            "the control plane gave no inbound secret at the handshake: n8n's calls to it \
             cannot be signed, and it refuses them"
        ),
        (None, _) => {}
    }
    let heartbeats = tokio::spawn(report_loop(
        http,
        settings,
        token,
        config,
        executor.clone(),
        service.clone(),
        sealing,
        stop_rx,
    ));
    Ok(Running {
        command_addr,
        service,
        executor,
        heartbeats,
    })
}

/// Serves `app` at `addr` until `stop` turns true: through the shared listener `attach`
/// when there is one (virtual droplets), else on a socket of its own. Answers the address
/// it serves (the bound one, when `addr`'s port is 0).
async fn serve_at(
    attach: Option<Arc<dyn crate::server::Attach>>,
    addr: SocketAddr,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<SocketAddr, SidecarError> {
    if let Some(shared) = attach {
        shared.attach(addr, app);
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            shared.detach(addr);
        });
        return Ok(addr);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| SidecarError::Io(format!("binding {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| SidecarError::Io(e.to_string()))?;
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(bound)
}

/// Builds one heartbeat (spec 54.1).
pub async fn heartbeat<R: ContainerRuntime>(
    settings: &Settings,
    executor: &Executor<R>,
    service: &CommandService<R>,
) -> Heartbeat {
    let status = executor.n8n_status().await;
    let rt = executor.runtime.status().await;
    let host = executor.host_sample();
    let (cpu, mem, disk, total_mb) = (
        host.cpu_percent,
        host.memory_used_mb,
        host.disk_percent,
        host.memory_total_mb,
    );
    let (inventory, pending) = if status == N8nStatus::Running {
        (
            inventory(executor).await,
            executor.pending_executions().await.unwrap_or(0),
        )
    } else {
        (None, 0)
    };
    let (workflows, credentials, inventory_at_ms) = match inventory {
        Some(i) => (i.workflows, i.credentials, Some(i.taken_at_ms)),
        None => (Vec::new(), Vec::new(), None),
    };
    let active = workflows.iter().filter(|w| w.active).count() as u32;
    let refused = service.take_refusals();
    let mut beat = Heartbeat {
        workspace_id: settings.workspace_id,
        droplet_id: settings.droplet_id,
        state: if status == N8nStatus::Running {
            "ready"
        } else {
            "degraded"
        }
        .into(),
        n8n_status: status,
        n8n_pid: rt.pid,
        active_workflows: active,
        pending_executions: pending,
        cpu_usage_percent: cpu,
        memory_usage_mb: mem,
        memory_total_mb: total_mb,
        disk_usage_percent: disk,
        uptime_seconds: rt.uptime_s,
        refused_commands: Vec::new(),
        refusal_counts: Default::default(),
        workflows,
        credentials,
        inventory_at_ms,
        command_key_ids: service.trusted_key_ids(),
    };
    beat.refused_commands = refused.latest.into();
    beat.refusal_counts = refused.counts;
    cap_size(&mut beat);
    beat
}

/// The largest heartbeat a sidecar sends, in bytes of JSON. The control plane accepts up to
/// 2 MiB; a beat is a few kilobytes, and only an n8n with thousands of workflows comes near
/// this.
pub const MAX_HEARTBEAT_BYTES: usize = 256 * 1024;

/// Keeps `beat` under [`MAX_HEARTBEAT_BYTES`]: an inventory that does not fit is left out
/// whole (the watchdog then compares nothing this time, rather than a part that would read
/// as missing workflows).
fn cap_size(beat: &mut Heartbeat) {
    let size = serde_json::to_vec(beat).map(|v| v.len()).unwrap_or(0);
    if size <= MAX_HEARTBEAT_BYTES {
        return;
    }
    tracing::warn!(
        size,
        workflows = beat.workflows.len(),
        "the heartbeat is too large; leaving the inventory out"
    );
    beat.workflows.clear();
    beat.credentials.clear();
    beat.inventory_at_ms = None;
}

/// What n8n runs, read whole or not at all.
struct Inventory {
    workflows: Vec<WorkflowState>,
    credentials: Vec<CredentialState>,
    taken_at_ms: i64,
}

/// Reads n8n's workflows and credentials. `None` when either list fails: a partial or
/// empty inventory would tell the watchdog that workflows vanished (spec 43.2's
/// `orphan_db_record`) when n8n merely did not answer.
async fn inventory<R: ContainerRuntime>(executor: &Executor<R>) -> Option<Inventory> {
    let taken_at_ms = chrono::Utc::now().timestamp_millis();
    let workflows = executor
        .n8n
        .workflow_list()
        .await
        .map_err(|e| tracing::warn!(error = %e, "n8n's workflow list failed; no inventory"))
        .ok()?
        .into_iter()
        .map(|w| WorkflowState {
            template_version: w.template_version().map(str::to_owned),
            id: w.id,
            name: w.name,
            active: w.active,
        })
        .collect();
    let credentials = executor
        .n8n
        .credential_list()
        .await
        .map_err(|e| tracing::warn!(error = %e, "n8n's credential list failed; no inventory"))
        .ok()?
        .into_iter()
        .map(|c| CredentialState {
            expires_at: executor.expiry.get(&c.id),
            id: c.id,
            name: c.name,
            kind: c.kind,
        })
        .collect();
    Some(Inventory {
        workflows,
        credentials,
        taken_at_ms,
    })
}

/// How a report was received.
enum Delivery {
    /// Taken (and maybe answered with a renewed token or the command keys to trust).
    Taken(genesis_protocol::HeartbeatAnswer),
    /// The token was refused: it expired, or was revoked.
    Unauthorized,
}

async fn post<T: serde::Serialize>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &T,
) -> Result<Delivery, String> {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match r.status() {
        reqwest::StatusCode::UNAUTHORIZED => Ok(Delivery::Unauthorized),
        s if s == reqwest::StatusCode::OK => {
            let answer: genesis_protocol::HeartbeatAnswer = r.json().await.unwrap_or_default();
            Ok(Delivery::Taken(answer))
        }
        s if s.is_success() => Ok(Delivery::Taken(Default::default())),
        s => Err(format!("status {s}")),
    }
}

/// Asks the control plane for a new token after the old one was refused (a droplet that
/// slept past its token's end): accepted from this droplet's address only, and sealed to
/// this sidecar's key.
async fn reattest(
    http: &reqwest::Client,
    settings: &Settings,
    sealing: &genesis_protocol::SealingKey,
) -> Result<String, String> {
    let url = format!("{}/api/v1/sidecar/reattest", settings.dashboard_url);
    let req = genesis_protocol::ReattestRequest {
        workspace_id: settings.workspace_id,
        droplet_id: settings.droplet_id,
        region: settings.region.clone(),
    };
    let r = http
        .post(&url)
        .json(&req)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("the control plane refused it ({})", r.status()));
    }
    let answer: genesis_protocol::ReattestResponse = r
        .json()
        .await
        .map_err(|e| format!("unreadable answer: {e}"))?;
    let raw = sealing
        .open(&answer.sealed_token)
        .map_err(|e| format!("the sealed token does not open: {e}"))?;
    String::from_utf8(raw).map_err(|_| "the token is not text".into())
}

/// Trusts exactly the command keys the control plane named (a key rotation, spec 65.1),
/// and keeps them in the state file so a restart does not go back to the handshake's key.
/// The answer comes over the same authenticated channel as the handshake's key did.
fn trust_keys<R: ContainerRuntime>(
    settings: &Settings,
    service: &CommandService<R>,
    keys: &[String],
) {
    match service.trust_exactly(keys) {
        Ok(false) => {}
        Ok(true) => {
            let ids = service.trusted_key_ids();
            match SidecarState::load_or_create(&settings.state_dir).and_then(|mut s| {
                s.command_keys = keys.to_vec();
                s.save()
            }) {
                Ok(()) => tracing::info!(?ids, "command keys rotated"),
                Err(e) => {
                    tracing::warn!(error = %e, ?ids, "the new command keys are in use but not saved")
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the control plane named command keys that cannot be used; keeping the current ones")
        }
    }
}

/// Keeps `token` as the sidecar token, in memory and in the state file.
fn adopt(settings: &Settings, current: &mut String, token: String, why: &str) {
    match SidecarState::load_or_create(&settings.state_dir).and_then(|mut s| {
        s.sidecar_token = Some(token.clone());
        s.save()
    }) {
        Ok(()) => tracing::info!("sidecar token {why}"),
        Err(e) => tracing::warn!(error = %e, "the new sidecar token is in use but not saved"),
    }
    *current = token;
}

#[allow(
    clippy::too_many_arguments,
    reason = "the loop's whole world, passed once"
)]
async fn report_loop<R: ContainerRuntime>(
    http: reqwest::Client,
    settings: Settings,
    mut token: String,
    config: genesis_protocol::SidecarConfig,
    executor: Arc<Executor<R>>,
    service: Arc<CommandService<R>>,
    sealing: Arc<genesis_protocol::SealingKey>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // After a refused token, re-attestation is tried at most this often (doubling to 5
    // minutes while the control plane keeps refusing).
    let mut reattest_after = tokio::time::Instant::now();
    let mut reattest_wait = Duration::from_secs(config.heartbeat_interval_s.max(1));
    let hb_url = format!("{}/api/v1/sidecar/heartbeat", settings.dashboard_url);
    let metrics_url = format!("{}/api/v1/sidecar/metrics", settings.dashboard_url);
    let mut hb = tokio::time::interval(Duration::from_secs(config.heartbeat_interval_s.max(1)));
    let mut metrics = tokio::time::interval(Duration::from_secs(config.metrics_interval_s.max(1)));
    metrics.tick().await; // the first report waits a full interval
    // Each report counts the executions since the last one delivered; an undelivered
    // report's period is folded into the next.
    let mut period_start = unix_now_ms();
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = hb.tick() => {
                // Support keys whose time is up go on every beat (sshd refuses them already,
                // by their `expiry-time`).
                match executor.ssh_keys.sweep(i64::try_from(unix_now()).unwrap_or(i64::MAX)) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired support SSH keys removed"),
                    Err(e) => tracing::warn!(error = %e, "expired support SSH keys not removed"),
                }
                let beat = heartbeat(&settings, &executor, &service).await;
                let delivered = post(&http, &hb_url, &token, &beat).await;
                match delivered {
                    Ok(Delivery::Taken(answer)) => {
                        if let Some(r) = answer.renewed {
                            adopt(&settings, &mut token, r.sidecar_token, "renewed");
                        }
                        if let Some(keys) = answer.command_keys {
                            trust_keys(&settings, &service, &keys);
                        }
                    }
                    other => {
                        if let Err(e) = &other {
                            tracing::warn!(error = %e, at = unix_now(), "heartbeat not delivered");
                        }
                        // Refusals are evidence: keep them for the next beat.
                        service.requeue_refusals(crate::guard::Taken {
                            counts: beat.refusal_counts,
                            latest: beat.refused_commands.into(),
                        });
                        if matches!(other, Ok(Delivery::Unauthorized))
                            && tokio::time::Instant::now() >= reattest_after
                        {
                            match reattest(&http, &settings, &sealing).await {
                                Ok(t) => {
                                    adopt(&settings, &mut token, t, "re-attested");
                                    reattest_wait = Duration::from_secs(config.heartbeat_interval_s.max(1));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the token was refused and re-attestation failed");
                                    reattest_after = tokio::time::Instant::now() + reattest_wait;
                                    reattest_wait = (reattest_wait * 2).min(Duration::from_secs(300));
                                }
                            }
                        }
                    }
                }
                service.forget_idle_sources();
            }
            _ = metrics.tick() => {
                let period_end = unix_now_ms();
                let report: MetricsReport =
                    match executor.metrics_in(Some((period_start, period_end))).await {
                        Ok(m) => m,
                        Err(e) => { tracing::warn!(error = %e, "metrics unavailable"); continue; }
                    };
                match post(&http, &metrics_url, &token, &report).await {
                    Ok(Delivery::Taken(_)) => period_start = period_end,
                    Ok(Delivery::Unauthorized) => tracing::warn!("metrics not delivered: the token was refused"),
                    Err(e) => tracing::warn!(error = %e, "metrics not delivered"),
                }
            }
        }
    }
}
