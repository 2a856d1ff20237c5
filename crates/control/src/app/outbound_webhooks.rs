//! Outbound webhooks (spec 65.3, 65.4): a tenant's endpoints, and each event delivered to
//! them signed per Standard Webhooks, on 65.4's schedule (immediate, then 5 s, 30 s and
//! 5 min later), then to the dead-letter queue, from which the tenant, an operator or the
//! CLI replays it.
//!
//! Server-side request forgery: an endpoint is a URL a tenant typed, which our servers
//! call. Outside test configuration ([`WebhookSettings::allow_private`]):
//! - it must be `https`;
//! - a literal private, loopback or link-local address is refused at registration and at
//!   every send;
//! - a host name is resolved by [`PublicOnly`] when the connection is made, and only its
//!   public addresses are connected to: the answer checked is the answer used, so a DNS
//!   record that changes between the check and the connection (rebinding) cannot reach
//!   our network;
//! - redirects are not followed (a 3xx is a failed attempt).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use genesis_core::WorkspaceId;
use genesis_protocol::webhook::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSigner, new_secret,
};
use genesis_store::outbound_webhooks::{EVENTS, Rotation, Settled, SettledState};
use genesis_store::{
    Database, DeliveryRow, DueDelivery, Endpoint, MasterKeys, NewEndpoint, StoreError,
};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::clock::Clock;
use crate::outbound::is_public;
use crate::{AppState, Problem};

/// The waits of spec 65.4 after the first, second and third failed attempt; the fourth
/// failure is final.
pub const SCHEDULE: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(300),
];

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Endpoints on private and loopback addresses, over plain `http`: tests and demos only.
    pub allow_private: bool,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The waits after each failed attempt ([`SCHEDULE`]).
    pub schedule: Vec<Duration>,
    /// How long a claimed delivery is held before another pass may take it.
    pub lease: Duration,
    /// The clock the schedule runs on.
    pub clock: Clock,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            schedule: SCHEDULE.to_vec(),
            lease: Duration::from_secs(60),
            clock: Clock::System,
        }
    }
}

use genesis_store::outbound_webhooks::secret_aad as aad;

/// A new endpoint, as the tenant sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// Where events are POSTed (`https://…`).
    pub url: String,
    /// What it receives: any of `tenant.active`, `tenant.hibernated`, `tenant.woken`,
    /// `lead.created`, `lead.replied`, `wallet.low`, `wallet.empty`, `campaign.error`.
    pub events: Vec<String>,
    /// A note for the tenant.
    #[serde(default)]
    pub description: Option<String>,
}

/// An endpoint just registered, with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    #[schema(inline)]
    pub endpoint: EndpointView,
    /// The signing secret (`whsec_…`). It is not shown again.
    pub secret: String,
}

/// An endpoint as the tenant sees it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// Its id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
    /// The tenant's note.
    pub description: String,
    /// Registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its secret last changed.
    pub rotated_at: chrono::DateTime<chrono::Utc>,
    /// False after a scheduled renewal until the new secret is shown (once, on request).
    pub secret_shown: bool,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            events: e.events,
            description: e.description,
            created_at: e.created_at,
            rotated_at: e.rotated_at,
            secret_shown: e.secret_shown,
        }
    }
}

/// Checks an endpoint's URL: a web address we may call.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, Problem> {
    let bad = |why: &str| Problem::invalid_field("url", why);
    let url = Url::parse(raw.trim())
        .map_err(|_| bad("enter a full address such as https://hooks.example.com/genesis"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(bad("must use https: events carry your data")),
        _ => return Err(bad("must be an https:// address")),
    }
    if raw.len() > 2000 {
        return Err(bad("is longer than 2,000 characters"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry a user name or password; the signature authenticates us",
        ));
    }
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    if !allow_private {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Err(bad("points to a private or internal network address"));
        }
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") || lower.ends_with(".internal") {
            return Err(bad("points to a private or internal network address"));
        }
    }
    Ok(url)
}

fn check_events(events: &[String]) -> Result<Vec<String>, Problem> {
    if events.is_empty() {
        return Err(Problem::invalid_field(
            "events",
            "choose at least one event",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(Problem::invalid_field(
                "events",
                format!("`{e}` is not an event; choose from {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn vault(state: &AppState) -> Result<&Arc<MasterKeys>, Problem> {
    state.vault.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "webhook endpoints need the vault's master key, which is not configured",
        )
    })
}

/// Registers an endpoint for `workspace` (in `db`), audited as `actor`; its secret is in
/// the answer and nowhere else in clear.
pub async fn register(
    state: &AppState,
    db: &Database,
    workspace: WorkspaceId,
    req: &EndpointRequest,
    actor: &str,
) -> Result<CreatedEndpoint, Problem> {
    let url = check_url(&req.url, state.webhooks.allow_private)?;
    let events = check_events(&req.events)?;
    let description = req.description.clone().unwrap_or_default();
    if description.chars().count() > 200 {
        return Err(Problem::invalid_field(
            "description",
            "is longer than 200 characters",
        ));
    }
    if db.webhook_endpoints(workspace).await?.len() >= MAX_ENDPOINTS {
        return Err(Problem::conflict(
            "url",
            format!("a workspace has at most {MAX_ENDPOINTS} endpoints; remove one first"),
        ));
    }
    let id = Uuid::now_v7();
    let secret = new_secret();
    let sealed = vault(state)?
        .for_region(db.workspace_region(workspace).await?)
        .seal(secret.as_bytes(), &aad(id))?;
    let endpoint = db
        .webhook_endpoint_create(
            &NewEndpoint {
                id,
                workspace,
                url: url.as_str(),
                events: &events,
                description: &description,
                secret: &sealed,
            },
            actor,
        )
        .await?;
    Ok(CreatedEndpoint {
        endpoint: endpoint.into(),
        secret,
    })
}

/// How long a previous secret keeps signing after a rotation the tenant asked for (they
/// have the new one in hand).
pub const ASKED_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// How long after a scheduled rotation (the tenant is told by e-mail, and must fetch the
/// new secret and deploy it).
pub const SCHEDULED_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Spec 65.1: webhook secrets are renewed every 90 days.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

fn later(d: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A secret renewed at the tenant's request: the new one, shown once, and until when the
/// previous one still signs beside it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The endpoint.
    #[serde(flatten)]
    #[schema(inline)]
    pub endpoint: EndpointView,
    /// The new signing secret (`whsec_…`). It is not shown again.
    pub secret: String,
    /// Until then, every delivery carries a signature with each secret.
    pub previous_valid_until: chrono::DateTime<chrono::Utc>,
}

/// Renews an endpoint's secret now (the tenant asked): both sign for [`ASKED_OVERLAP`].
pub async fn rotate(
    state: &AppState,
    db: &Database,
    workspace: WorkspaceId,
    id: Uuid,
    actor: &str,
) -> Result<RotatedSecret, Problem> {
    let secret = new_secret();
    let sealed = vault(state)?
        .for_region(db.workspace_region(workspace).await?)
        .seal(secret.as_bytes(), &aad(id))?;
    let until = later(ASKED_OVERLAP);
    let endpoint = db
        .webhook_endpoint_rotate(Some(workspace), id, &sealed, until, Rotation::Asked, actor)
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(RotatedSecret {
        endpoint: endpoint.into(),
        secret,
        previous_valid_until: until,
    })
}

/// The secret a scheduled rotation made, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevealedSecret {
    /// The endpoint's signing secret (`whsec_…`). It is not shown again.
    pub secret: String,
}

/// Shows the secret of an endpoint renewed on schedule, once; 409 when it was shown
/// already (a rotation gives a new one).
pub async fn reveal(
    state: &AppState,
    db: &Database,
    workspace: WorkspaceId,
    id: Uuid,
    actor: &str,
) -> Result<RevealedSecret, Problem> {
    let keys = vault(state)?;
    match db.webhook_secret_reveal(workspace, id, actor).await? {
        Some(sealed) => {
            let secret = String::from_utf8(keys.open(&sealed, &aad(id))?).map_err(|_| {
                tracing::error!(endpoint = %id, "a webhook secret is not UTF-8");
                Problem::internal()
            })?;
            Ok(RevealedSecret { secret })
        }
        None if db
            .webhook_endpoints(workspace)
            .await?
            .iter()
            .any(|e| e.id == id) =>
        {
            Err(Problem::conflict(
                "secret",
                "this secret was shown already; rotate the endpoint's secret to get a new one",
            ))
        }
        None => Err(Problem::not_found("webhook endpoint")),
    }
}

/// Renews, on spec 65.1's schedule, up to `limit` secrets of `db` older than
/// [`SECRET_LIFETIME`] on `clock`. Each is one statement: a crash between two leaves each
/// endpoint either renewed (both secrets signing through the overlap) or as it was.
pub async fn rotate_due(
    keys: &MasterKeys,
    db: &Database,
    clock: &Clock,
    limit: i64,
) -> Result<u64, StoreError> {
    let now = clock.now();
    let before = now - chrono::Duration::from_std(SECRET_LIFETIME).unwrap_or(chrono::Duration::MAX);
    let until =
        now + chrono::Duration::from_std(SCHEDULED_OVERLAP).unwrap_or(chrono::Duration::MAX);
    let mut rotated = 0;
    for e in db.webhook_endpoints_due_rotation(before, limit).await? {
        let region = db
            .workspace_region(WorkspaceId::from_uuid(e.workspace_id).map_err(|_| {
                StoreError::Corrupt {
                    what: "webhook endpoint workspace",
                    value: e.workspace_id.to_string(),
                }
            })?)
            .await?;
        let sealed = keys
            .for_region(region)
            .seal(new_secret().as_bytes(), &aad(e.id))?;
        if db
            .webhook_endpoint_rotate(
                None,
                e.id,
                &sealed,
                until,
                Rotation::Scheduled,
                "system:rotation",
            )
            .await?
            .is_some()
        {
            rotated += 1;
        }
    }
    Ok(rotated)
}

/// Endpoints a workspace may have.
pub const MAX_ENDPOINTS: usize = 10;

/// The workspace's endpoints.
pub async fn list(db: &Database, workspace: WorkspaceId) -> Result<Vec<EndpointView>, Problem> {
    Ok(db
        .webhook_endpoints(workspace)
        .await?
        .into_iter()
        .map(EndpointView::from)
        .collect())
}

/// Removes an endpoint; 404 when the workspace has no such endpoint.
pub async fn remove(
    db: &Database,
    workspace: WorkspaceId,
    id: Uuid,
    actor: &str,
) -> Result<(), Problem> {
    if db.webhook_endpoint_remove(workspace, id, actor).await? {
        Ok(())
    } else {
        Err(Problem::not_found("webhook endpoint"))
    }
}

/// The workspace's deliveries, newest first (the dead letters only, if asked).
pub async fn deliveries(
    db: &Database,
    workspace: WorkspaceId,
    dead_only: bool,
) -> Result<Vec<DeliveryRow>, Problem> {
    Ok(db.webhook_deliveries(workspace, dead_only, 200).await?)
}

/// Sends a dead letter again from the start of the schedule; `workspace` scopes it to a
/// tenant's own (None: an operator's replay). 404 when there is no such dead letter.
pub async fn replay(
    state: &AppState,
    db: &Database,
    workspace: Option<WorkspaceId>,
    id: Uuid,
    actor: &str,
) -> Result<(), Problem> {
    if db
        .webhook_replay(workspace, id, actor, chrono::Utc::now())
        .await?
    {
        if let Err(e) = state
            .stores
            .coordinator()
            .reconciler_wake(crate::workers::webhooks::NAME)
            .await
        {
            tracing::debug!(error = %e, "could not wake the webhook sender; it sends at its next pass");
        }
        Ok(())
    } else {
        Err(Problem::not_found("dead-lettered delivery"))
    }
}

/// A dead letter and the database it is in (God Mode).
#[derive(Debug, Clone)]
pub struct DeadDelivery {
    /// Which database (`us-east+us-west`…), for the replay.
    pub shard: String,
    /// The delivery.
    pub delivery: DeliveryRow,
}

/// Every database's dead deliveries, newest first.
pub async fn dead_letters(state: &AppState, limit: i64) -> Result<Vec<DeadDelivery>, Problem> {
    let mut all = Vec::new();
    for shard in state.stores.shards() {
        for delivery in shard.db.webhook_dead_letters(limit).await? {
            all.push(DeadDelivery {
                shard: shard.label(),
                delivery,
            });
        }
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.delivery.dead_at));
    all.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(all)
}

/// An operator replays dead letter `id` of `shard`.
pub async fn replay_any(
    state: &AppState,
    shard: &str,
    id: Uuid,
    actor: &str,
) -> Result<(), Problem> {
    let db = state
        .stores
        .shard_labelled(shard)
        .ok_or_else(|| Problem::not_found("database"))?
        .db;
    replay(state, db, None, id, actor).await
}

/// What became of one delivery this attempt (a [`Settled`] as counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; the next attempt is scheduled.
    Retrying,
    /// It failed for good: a dead letter.
    Dead,
}

impl Attempt {
    /// `state`, counted in `genesis_webhook_deliveries_total`.
    pub fn counted(state: SettledState) -> Self {
        let (attempt, outcome) = match state {
            SettledState::Delivered => (Attempt::Delivered, "delivered"),
            SettledState::Retry => (Attempt::Retrying, "retrying"),
            SettledState::Dead => (Attempt::Dead, "dead"),
        };
        metrics::counter!("genesis_webhook_deliveries_total", "outcome" => outcome).increment(1);
        attempt
    }
}

/// Makes deliveries: one HTTP client (its resolver connects to public addresses only) and
/// the vault to open secrets with.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    vault: Arc<MasterKeys>,
    settings: WebhookSettings,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the webhook HTTP client cannot be built: {0}")]
pub struct SenderError(String);

impl WebhookSender {
    /// A sender opening secrets with `vault`.
    pub fn new(vault: Arc<MasterKeys>, settings: WebhookSettings) -> Result<Self, SenderError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .pool_max_idle_per_host(8)
            .user_agent(concat!(
                "GenesisEngine-Webhooks/",
                env!("CARGO_PKG_VERSION")
            ));
        if !settings.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            client: builder.build().map_err(|e| SenderError(e.to_string()))?,
            vault,
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Makes one attempt at `d` (claimed from `db`) and records what came of it.
    pub async fn deliver(&self, db: &Database, d: &DueDelivery) -> Result<Attempt, StoreError> {
        let outcome = self.attempt(d).await;
        db.webhook_settle(std::slice::from_ref(&outcome)).await?;
        Ok(Attempt::counted(outcome.state))
    }

    /// Makes one attempt at `d` and says what should become of it, without writing it
    /// down: the sender records a whole round's outcomes in one statement
    /// ([`Database::webhook_settle`]), a commit per round instead of one per delivery.
    pub async fn attempt(&self, d: &DueDelivery) -> Settled {
        let now = self.settings.clock.now();
        let settled = |state, status: Option<i32>, error: Option<String>, at| Settled {
            id: d.id,
            state,
            at,
            status,
            error,
        };
        if d.endpoint_disabled {
            return settled(
                SettledState::Dead,
                None,
                Some("the endpoint was removed".into()),
                now,
            );
        }
        let (status, error) = match self.send(d).await {
            Ok(status) if (200..300).contains(&status) => {
                return settled(SettledState::Delivered, Some(i32::from(status)), None, now);
            }
            Ok(status) if (300..400).contains(&status) => (
                Some(i32::from(status)),
                format!("the endpoint answered HTTP {status} (a redirect, which is not followed)"),
            ),
            Ok(status) => (
                Some(i32::from(status)),
                format!("the endpoint answered HTTP {status}"),
            ),
            Err(SendFailure::Final(why)) => {
                return settled(SettledState::Dead, None, Some(why), now);
            }
            Err(SendFailure::Again(why)) => (None, why),
        };
        let attempt = usize::try_from(d.attempt).unwrap_or(usize::MAX);
        match self.settings.schedule.get(attempt.saturating_sub(1)) {
            Some(wait) => {
                let at = now + chrono::Duration::from_std(*wait).unwrap_or(chrono::Duration::MAX);
                settled(SettledState::Retry, status, Some(error), at)
            }
            None => {
                let why = format!("gave up after {} attempts: {error}", d.attempt);
                settled(SettledState::Dead, status, Some(why), now)
            }
        }
    }

    async fn send(&self, d: &DueDelivery) -> Result<u16, SendFailure> {
        if let Err(p) = check_url(&d.url, self.settings.allow_private) {
            return Err(SendFailure::Final(format!(
                "the endpoint's address {}",
                p.detail
            )));
        }
        let mut secrets = Vec::with_capacity(d.secrets.len());
        for sealed in &d.secrets {
            let open = self.vault.open(sealed, &aad(d.endpoint_id)).map_err(|e| {
                SendFailure::Again(format!("the endpoint's secret cannot be opened: {e}"))
            })?;
            secrets.push(
                String::from_utf8(open)
                    .map_err(|_| SendFailure::Final("the endpoint's secret is not text".into()))?,
            );
        }
        let signer = WebhookSigner::new(&secrets)
            .map_err(|e| SendFailure::Final(format!("the endpoint's secret is unusable: {e}")))?;
        let body = d.payload.to_string();
        let id = format!("msg_{}", d.id.simple());
        let timestamp = u64::try_from(self.settings.clock.now().timestamp()).unwrap_or(0);
        let signature = signer
            .sign(&id, timestamp, body.as_bytes())
            .map_err(|e| SendFailure::Final(e.to_string()))?;
        let sent = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) if e.is_timeout() => Err(SendFailure::Again(format!(
                "the endpoint did not answer within {} s",
                self.settings.timeout.as_secs_f32()
            ))),
            Err(e) if is_refused_address(&e) => Err(SendFailure::Again(
                "the endpoint's host resolves only to private or internal addresses".into(),
            )),
            Err(_) => Err(SendFailure::Again(
                "the endpoint could not be reached".into(),
            )),
        }
    }
}

enum SendFailure {
    /// Worth the next attempt.
    Again(String),
    /// Another attempt would fail the same way.
    Final(String),
}

fn is_refused_address(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<PrivateAddress>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The resolver of the sender's client: a name's public addresses only, or an error when
/// it has none.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private or internal addresses")]
struct PrivateAddress(String);

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(PrivateAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_outside_tests_are_public_https() {
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://localhost:8080/x",
            "https://localhost./x",
            "https://db.internal/x",
            "https://user:pw@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "hooks.example.com",
        ] {
            let p = check_url(bad, false).expect_err(bad);
            assert_eq!(p.field.as_deref(), Some("url"), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/genesis", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[test]
    fn events_are_checked_and_deduplicated() {
        let e = check_events(&[
            "lead.created".into(),
            "lead.created".into(),
            "wallet.low".into(),
        ])
        .expect("ok");
        assert_eq!(e, ["lead.created", "wallet.low"]);
        let p = check_events(&["lead.deleted".into()]).expect_err("unknown");
        assert!(p.detail.contains("lead.deleted") && p.detail.contains("tenant.active"));
        assert!(check_events(&[]).is_err());
    }
}
