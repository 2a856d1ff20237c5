//! `POST /api/v1/sidecar/handshake` (spec 42.2, DESIGN §3.2): a sidecar trades its one-time
//! provisioning token for a sidecar token and the key that signs its commands. No API token:
//! the provisioning token is the credential, and it counts only from the droplet it was
//! issued for ([`crate::attest`]). Every refusal is a 401 without details (the audit log has
//! the reason), so a caller cannot probe which tokens exist.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Extension, Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    response::Response,
};
use genesis_cloud::Cloud;
use genesis_core::Region;
use genesis_protocol::{HandshakeRequest, HandshakeResponse};
use genesis_store::handshake::{
    HandshakeClaim, HandshakeExpectation, HandshakeRefusal, HandshakeRefusalRecord,
};

use crate::{AppState, Problem};

/// Why a handshake did not go through.
enum Refused {
    /// For good (401, audited).
    Because(HandshakeRefusal),
    /// The attestation could not be made now (503: the sidecar tries again).
    Unavailable(String),
}

/// Checks that a handshake comes from the droplet the token was issued for (module doc of
/// [`crate::attest`]); answers the address to record when it was learned from the cloud.
async fn attest(
    state: &AppState,
    expected: &HandshakeExpectation,
    claimed_provider: i64,
    source: IpAddr,
) -> Result<Option<String>, Refused> {
    if expected.provider_id.is_some_and(|p| p != claimed_provider) {
        return Err(Refused::Because(HandshakeRefusal::Mismatch));
    }
    let (address, learned) = match &expected.public_ipv4 {
        Some(ip) => (ip.clone(), false),
        None => {
            // The ignition has not recorded the address yet: ask the cloud, and check that
            // the droplet is the workspace's and sits in its region.
            let Some(cloud) = state.igniter.as_ref().map(|i| i.cloud().clone()) else {
                return Err(Refused::Unavailable(
                    "no cloud is configured to attest the handshake".into(),
                ));
            };
            let d = match cloud.droplet_get(claimed_provider).await {
                Ok(d) => d,
                Err(genesis_cloud::CloudError::NotFound) => {
                    return Err(Refused::Because(HandshakeRefusal::NotAttested));
                }
                Err(e) => return Err(Refused::Unavailable(e.to_string())),
            };
            let tag = format!("ws-{}", expected.workspace_id.as_uuid());
            if !d.tags.contains(&tag)
                || !expected
                    .region
                    .datacenters()
                    .contains(&d.region.slug.as_str())
            {
                return Err(Refused::Because(HandshakeRefusal::NotAttested));
            }
            match d.public_ipv4() {
                Some(ip) => (ip.to_owned(), true),
                None => return Err(Refused::Because(HandshakeRefusal::NotAttested)),
            }
        }
    };
    if address.parse::<IpAddr>().ok() != Some(source) {
        return Err(Refused::Because(HandshakeRefusal::NotAttested));
    }
    Ok(learned.then_some(address))
}

/// Completes a handshake: attested (see [`crate::attest`]), then the token is consumed.
pub async fn handshake(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<HandshakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let gate = state.handshakes.clone();
    let source = gate.source(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    // Unauthenticated traffic: a quota per source before anything is parsed or looked up.
    if let Some(ip) = source
        && !gate.admit(ip)
    {
        metrics::counter!("genesis_handshakes_total", "outcome" => "rate_limited").increment(1);
        let mut r =
            Problem::too_many("too many handshakes from this address; try again in a minute")
                .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return r;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return Problem::invalid_field("body", e.body_text()).into_response();
        }
    };
    let Some(signer) = state.command_keys.as_ref().map(|k| k.active()) else {
        tracing::error!("handshake refused: no command signing key configured");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "command signing key not configured",
        )
            .into_response();
    };
    let Ok(region) = Region::parse(&req.region) else {
        return Problem::invalid_field("region", format!("{:?} is not a region", req.region))
            .into_response();
    };
    let outcome = complete(&state, &req, region, source).await;
    match outcome {
        Ok(done) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "completed").increment(1);
            Json(HandshakeResponse {
                sidecar_token: done.sidecar_token,
                command_public_key: signer.public_key_b64(),
                command_key_id: signer.key_id().to_owned(),
                config: state.sidecar_config,
                inbound_secret: Some(
                    state
                        .inbound
                        .droplet_secret(req.workspace_id, req.droplet_id),
                ),
            })
            .into_response()
        }
        Err(Refused::Unavailable(why)) => {
            tracing::warn!(%why, workspace = %req.workspace_id, "handshake cannot be attested now");
            Problem::unavailable("the handshake cannot be checked now; try again").into_response()
        }
        Err(Refused::Because(reason)) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "refused").increment(1);
            tracing::warn!(?reason, workspace = %req.workspace_id, ?source, "handshake refused");
            audit_refusal(&state, source, req.workspace_id, req.droplet_id, reason).await;
            Problem::unauthorized("the provisioning token is not valid").into_response()
        }
    }
}

/// The handshake's checks and the token's consumption.
async fn complete(
    state: &AppState,
    req: &HandshakeRequest,
    region: Region,
    source: Option<IpAddr>,
) -> Result<genesis_store::handshake::HandshakeDone, Refused> {
    let store = |e: genesis_store::StoreError| Refused::Unavailable(e.to_string());
    let Some(source) = source else {
        return Err(Refused::Because(HandshakeRefusal::NotAttested));
    };
    let Ok(workspace) = genesis_core::WorkspaceId::from_uuid(req.workspace_id) else {
        return Err(Refused::Because(HandshakeRefusal::Unknown));
    };
    let db = match state.stores.workspace_find(workspace).await {
        Ok((ws, _)) if ws.region != region => {
            return Err(Refused::Because(HandshakeRefusal::WrongRegion));
        }
        Ok((ws, _)) => state.stores.for_region(ws.region),
        Err(genesis_store::StoreError::NotFound { .. }) => {
            return Err(Refused::Because(HandshakeRefusal::Unknown));
        }
        Err(e) => return Err(store(e)),
    };
    let claim = HandshakeClaim {
        provisioning_token: &req.provisioning_token,
        workspace_id: req.workspace_id,
        provider_id: req.droplet_id,
        webhook_base_url: &req.webhook_base_url,
        sidecar_public_key: &req.sidecar_public_key,
        relay_url: req.relay_url.as_deref(),
    };
    if let Some(expected) = db
        .handshake_expectation(&req.provisioning_token)
        .await
        .map_err(store)?
    {
        if expected.workspace_id != workspace {
            return Err(Refused::Because(HandshakeRefusal::Mismatch));
        }
        if let Some(ip) = attest(state, &expected, req.droplet_id, source).await? {
            db.droplet_set_address(expected.droplet_id, &ip)
                .await
                .map_err(store)?;
        }
    }
    // An unknown, used or expired token has no expectation: the store says which it is.
    let ttl = chrono::Duration::from_std(state.heartbeats.token_policy().ttl)
        .unwrap_or(genesis_store::handshake::SIDECAR_TTL);
    match db.handshake_complete(&claim, ttl, "sidecar").await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(reason)) => Err(Refused::Because(reason)),
        Err(e) => Err(store(e)),
    }
}

/// Authenticates a sidecar report: the bearer sidecar token must be valid and, when the body
/// names a workspace, belong to it. Every refusal is a bare 401.
async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    workspace: Option<uuid::Uuid>,
) -> Result<crate::heartbeats::Authenticated, Response> {
    let unauthorized = || Problem::unauthorized("the sidecar token is not valid").into_response();
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    match state.heartbeats.authenticate(token, workspace).await {
        Ok(Some(who)) => Ok(who),
        Ok(None) => {
            metrics::counter!("genesis_sidecar_reports_refused_total").increment(1);
            Err(unauthorized())
        }
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

/// `POST /api/v1/sidecar/heartbeat` (spec 54.1): authenticated and buffered; the flusher
/// records it (and applies spec 54.3's rules) within one flush interval.
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<genesis_protocol::Heartbeat>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(hb) = match body {
        Ok(b) => b,
        Err(e) => return Problem::invalid_field("body", e.body_text()).into_response(),
    };
    let who = match authenticate(&state, &headers, Some(hb.workspace_id)).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    count_refusals(&hb);
    let mut answer = genesis_protocol::HeartbeatAnswer {
        command_keys: keys_to_trust(&state, &hb.command_key_ids),
        ..Default::default()
    };
    state.heartbeats.accept(who, hb);
    metrics::counter!("genesis_heartbeats_total").increment(1);
    // A token near its end is renewed here (spec 65.1); the old one works until it expires.
    let policy = state.heartbeats.token_policy();
    let left = (who.identity.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    if left < policy.renew_before
        && let Some(token) = bearer_token(&headers)
    {
        let db = &state.stores.distinct()[who.db];
        let ttl =
            chrono::Duration::from_std(policy.ttl).unwrap_or(genesis_store::handshake::SIDECAR_TTL);
        match db.sidecar_token_renew(token, ttl, "sidecar").await {
            Ok(Some(issued)) => {
                metrics::counter!("genesis_sidecar_tokens_renewed_total").increment(1);
                answer.renewed = Some(genesis_protocol::RenewedToken {
                    sidecar_token: issued.token,
                    expires_at_ms: issued.expires_at.timestamp_millis(),
                });
            }
            Ok(None) => {}
            // The heartbeat is taken; the renewal is tried again at the next one.
            Err(e) => tracing::warn!(error = %e, "sidecar token renewal failed"),
        }
    }
    if answer == genesis_protocol::HeartbeatAnswer::default() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(answer).into_response()
    }
}

/// The command keys a sidecar should trust, when they differ from the ids it reported:
/// during a key rotation, and afterwards for one that slept through it (spec 65.1).
fn keys_to_trust(state: &AppState, reported: &[String]) -> Option<Vec<String>> {
    let ring = state.command_keys.as_ref().filter(|r| r.settled())?;
    let mut reported = reported.to_vec();
    reported.sort();
    reported.dedup();
    (reported != ring.trusted_ids()).then(|| ring.trusted())
}

/// Counts the command refusals a sidecar reports, by reason (spec 51.3: every refused
/// command is counted).
fn count_refusals(hb: &genesis_protocol::Heartbeat) {
    for (reason, n) in &hb.refusal_counts {
        let reason = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        metrics::counter!("genesis_sidecar_command_refusals_total", "reason" => reason)
            .increment(*n);
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `POST /api/v1/sidecar/reattest`: a sidecar whose token expired (a droplet that slept
/// past its token's end) gets a new one, without a provisioning token: the request must
/// come from the address the cloud reports for the droplet, in the workspace's region, and
/// the token is sealed to the X25519 key the sidecar hand-shook with, so only that sidecar
/// can read it.
pub async fn reattest(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<genesis_protocol::ReattestRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let gate = state.handshakes.clone();
    let source = gate.source(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    if let Some(ip) = source
        && !gate.admit(ip)
    {
        return Problem::too_many("too many attempts from this address; try again in a minute")
            .into_response();
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return Problem::invalid_field("body", e.body_text()).into_response(),
    };
    match reattest_checked(&state, &req, source).await {
        Ok(answer) => {
            metrics::counter!("genesis_reattestations_total", "outcome" => "reattested")
                .increment(1);
            Json(answer).into_response()
        }
        Err(Refused::Unavailable(why)) => {
            tracing::warn!(%why, "re-attestation cannot be made now");
            Problem::unavailable("the droplet cannot be attested now; try again").into_response()
        }
        Err(Refused::Because(reason)) => {
            metrics::counter!("genesis_reattestations_total", "outcome" => "refused").increment(1);
            tracing::warn!(?reason, workspace = %req.workspace_id, ?source, "re-attestation refused");
            audit_refusal(&state, source, req.workspace_id, req.droplet_id, reason).await;
            Problem::unauthorized("the droplet could not be attested").into_response()
        }
    }
}

async fn reattest_checked(
    state: &AppState,
    req: &genesis_protocol::ReattestRequest,
    source: Option<IpAddr>,
) -> Result<genesis_protocol::ReattestResponse, Refused> {
    let store = |e: genesis_store::StoreError| Refused::Unavailable(e.to_string());
    let no = |r| Err(Refused::Because(r));
    let (Some(source), Ok(region)) = (source, Region::parse(&req.region)) else {
        return no(HandshakeRefusal::NotAttested);
    };
    let Ok(workspace) = genesis_core::WorkspaceId::from_uuid(req.workspace_id) else {
        return no(HandshakeRefusal::Unknown);
    };
    let db = match state.stores.workspace_find(workspace).await {
        Ok((ws, _)) if ws.region != region => return no(HandshakeRefusal::WrongRegion),
        Ok((ws, _)) => state.stores.for_region(ws.region),
        Err(genesis_store::StoreError::NotFound { .. }) => return no(HandshakeRefusal::Unknown),
        Err(e) => return Err(store(e)),
    };
    let target = match db.reattest_target(req.droplet_id).await.map_err(store)? {
        Some(t) if t.droplet.workspace_id == workspace => t,
        _ => return no(HandshakeRefusal::Mismatch),
    };
    let (Some(address), Some(key)) = (&target.public_ipv4, &target.sidecar_public_key) else {
        return no(HandshakeRefusal::NotAttested);
    };
    if address.parse::<IpAddr>().ok() != Some(source) {
        return no(HandshakeRefusal::NotAttested);
    }
    let ttl = chrono::Duration::from_std(state.heartbeats.token_policy().ttl)
        .unwrap_or(genesis_store::handshake::SIDECAR_TTL);
    let issued = db
        .sidecar_token_reissue(&target.droplet, &source.to_string(), ttl, "sidecar")
        .await
        .map_err(store)?;
    let sealed =
        genesis_protocol::SealedSecret::seal(key, issued.token.as_bytes()).map_err(|e| {
            Refused::Unavailable(format!("the droplet's recorded key cannot seal: {e}"))
        })?;
    Ok(genesis_protocol::ReattestResponse {
        sealed_token: sealed,
        expires_at_ms: issued.expires_at.timestamp_millis(),
    })
}

/// Writes a `HANDSHAKE_REFUSED` audit event, if the gate's budget for `source` allows
/// (with the count of those skipped since the last one written).
async fn audit_refusal(
    state: &AppState,
    source: Option<IpAddr>,
    workspace_id: uuid::Uuid,
    provider_id: i64,
    reason: HandshakeRefusal,
) {
    let Some(suppressed) = state.handshakes.audit_slot(source) else {
        return;
    };
    let source = source.map(|s| s.to_string());
    let record = HandshakeRefusalRecord {
        workspace_id,
        provider_id,
        reason,
        source: source.as_deref(),
        suppressed,
    };
    let (db, _) = state
        .stores
        .record_home(genesis_core::WorkspaceId::from_uuid(workspace_id).ok())
        .await;
    if let Err(e) = db.handshake_refusal_record(&record, "sidecar").await {
        tracing::error!(error = %e, "the refusal could not be audited");
    }
}

/// Error types one report may name, and how long a name may be: a report is aggregate
/// counts by class, and a sidecar gone wrong must not fill the history with noise.
const MAX_ERROR_TYPES: usize = 50;
const MAX_ERROR_TYPE_LEN: usize = 100;

/// Refuses a report that cannot be right: a period that ends before it starts or in the
/// future (clocks may differ by a few minutes), a rate outside 0..=1, or too many error
/// types.
fn check_report(
    m: &genesis_protocol::MetricsReport,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    if !(m.success_rate.is_finite() && (0.0..=1.0).contains(&m.success_rate)) {
        return Err(Problem::invalid_field(
            "success_rate",
            "must be between 0 and 1",
        ));
    }
    if m.error_types.len() > MAX_ERROR_TYPES
        || m.error_types
            .keys()
            .any(|k| k.is_empty() || k.len() > MAX_ERROR_TYPE_LEN)
    {
        return Err(Problem::invalid_field(
            "error_types",
            format!("at most {MAX_ERROR_TYPES} types, each 1 to {MAX_ERROR_TYPE_LEN} characters"),
        ));
    }
    match (m.period_start_ms, m.period_end_ms) {
        (None, None) => Ok(()),
        (Some(start), Some(end))
            if start <= end && end <= now.timestamp_millis() + 5 * 60 * 1_000 =>
        {
            Ok(())
        }
        _ => Err(Problem::invalid_field(
            "period_end_ms",
            "the period must have a start and an end, in order, and not end in the future",
        )),
    }
}

/// What a report adds to the fleet's history: counts, with the rate and mean turned back
/// into sums so that buckets add up.
fn figures_of(m: &genesis_protocol::MetricsReport) -> genesis_store::MetricsFigures {
    let executions = i64::try_from(m.total_executions).unwrap_or(i64::MAX);
    let rate = if m.success_rate.is_finite() {
        m.success_rate.clamp(0.0, 1.0)
    } else {
        1.0
    };
    genesis_store::MetricsFigures {
        executions,
        succeeded: (rate * executions as f64).round() as i64,
        duration_ms_sum: i64::try_from(m.avg_duration_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(executions),
        emails_sent: i64::try_from(m.email_sent_count).unwrap_or(i64::MAX),
        errors: m
            .error_types
            .iter()
            .map(|(t, n)| (t.clone(), i64::try_from(*n).unwrap_or(i64::MAX)))
            .collect(),
    }
}

/// `POST /api/v1/sidecar/metrics` (spec 44.2): records the droplet's latest aggregate counts.
pub async fn metrics_report(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<genesis_protocol::MetricsReport>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(m) = match body {
        Ok(b) => b,
        Err(e) => return Problem::invalid_field("body", e.body_text()).into_response(),
    };
    if let Err(p) = check_report(&m, chrono::Utc::now()) {
        return p.into_response();
    }
    let who = match authenticate(&state, &headers, None).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let db = &state.stores.distinct()[who.db];
    let value = match serde_json::to_value(&m) {
        Ok(v) => v,
        Err(e) => return Problem::invalid_field("body", e.to_string()).into_response(),
    };
    if let Err(e) = db
        .droplet_report_record(who.identity.droplet_id, &value, true)
        .await
    {
        return Problem::from(e).into_response();
    }
    // A report that names its period goes into the fleet's history (spec 44.2), once.
    if let Some(end) = m
        .period_end_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        && let Err(e) = db
            .fleet_metrics_add(who.identity.droplet_id, end, &figures_of(&m))
            .await
    {
        return Problem::from(e).into_response();
    }
    // Executions are activity (spec 55.1): a tenant whose workflows run is not idle.
    if m.total_executions > 0
        && let Err(e) = db
            .activity_touch(
                who.identity.workspace_id,
                genesis_store::ActivityKind::Execution,
                chrono::Utc::now(),
            )
            .await
    {
        return Problem::from(e).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}
