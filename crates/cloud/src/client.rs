//! [`DigitalOcean`]: the [`Cloud`] trait over DigitalOcean's API v2.
//!
//! # Guarantees
//! - One request budget per client (share one client per API token in a process): at most
//!   `per_minute` and `per_hour` requests (250/min, 5,000/h by default), enforced before each
//!   request by `governor` (GCRA), plus the server's own word: `ratelimit-remaining: 0` pauses
//!   every task until `ratelimit-reset`, and a 429 waits `retry-after`.
//! - 5xx and timeouts are retried with jittered exponential backoff, bounded; other 4xx are
//!   typed errors, never retried.
//! - Every call has an explicit timeout.
//! - `droplet_create` never makes a second droplet for the same workspace and name: before
//!   every attempt it looks the droplet up by its `ws-<uuid>` tag, and it never blindly resends
//!   a create whose outcome is unknown.
//!
//! - Replicas share a token's budget through a [`SharedBudget`] when one is given
//!   ([`DigitalOcean::with_shared_budget`]; Redis in production), asked before each request
//!   after the process's own limiter, with the client's [`CallPriority`]
//!   ([`DigitalOcean::prioritised`]). Without it, or while it cannot be reached, the budget
//!   is per process; the `ratelimit-*` headers remain the backstop.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;

use crate::{
    CallPriority, Cloud, CloudError, SharedBudget,
    types::{
        Action, ActionEnvelope, ActionStatus, ApiErrorBody, CreateDroplet, Droplet,
        DropletEnvelope, Firewall, Image, PowerAction, Region, Size, Snapshot, Vpc,
    },
};

/// How to reach the API and how patient to be.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `https://api.digitalocean.com` or the simulator's URL.
    pub base_url: String,
    /// API token (never logged).
    pub token: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per request for retryable failures.
    pub max_attempts: usize,
    /// Requests per minute for this token.
    pub per_minute: u32,
    /// Requests per hour for this token.
    pub per_hour: u32,
    /// Delay between action polls.
    pub poll_interval: Duration,
    /// First retry delay (doubles, with jitter, up to 30 s).
    pub min_backoff: Duration,
    /// The window `per_minute` applies to (60 s; compressed in tests). `per_hour` applies to
    /// 60 of them.
    pub rate_window: Duration,
}

impl ClientOptions {
    /// DigitalOcean's documented limits and sensible timeouts.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            timeout: Duration::from_secs(15),
            max_attempts: 6,
            per_minute: 250,
            per_hour: 5_000,
            poll_interval: Duration::from_millis(500),
            min_backoff: Duration::from_millis(200),
            rate_window: Duration::from_secs(60),
        }
    }
}

/// The DigitalOcean client. Cheap to clone; clones share the budget.
#[derive(Clone)]
pub struct DigitalOcean {
    http: reqwest::Client,
    opts: Arc<ClientOptions>,
    per_minute: Arc<DefaultDirectRateLimiter>,
    per_hour: Arc<DefaultDirectRateLimiter>,
    paused_until: Arc<Mutex<Option<Instant>>>,
    /// The API's last `ratelimit-remaining` (requests left in its hourly window), or
    /// [`UNKNOWN_BUDGET`] before any answer carried one: what operators watch run down.
    budget_remaining: Arc<std::sync::atomic::AtomicU64>,
    /// The budget every replica shares, if any.
    shared: Option<Arc<dyn SharedBudget>>,
    /// What this handle's requests weigh against the shared budget.
    priority: CallPriority,
    /// Whether the shared budget's absence was logged already (once per outage).
    shared_down: Arc<std::sync::atomic::AtomicBool>,
}

/// [`DigitalOcean::budget_remaining`] before the API said anything.
const UNKNOWN_BUDGET: u64 = u64::MAX;

impl std::fmt::Debug for DigitalOcean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigitalOcean")
            .field("base_url", &self.opts.base_url)
            .finish_non_exhaustive()
    }
}

/// A GCRA quota that never admits more than `limit` requests in *any* window of length
/// `window` (the server may count with a sliding window). A plain "limit per window, burst
/// limit" quota admits up to twice that across a window boundary; a small burst `b` and an
/// emission interval of `window / (limit - b)` bound any window to `(limit - b) + b = limit`
/// (less a 5% margin, below).
fn quota(limit: u32, window: Duration) -> Result<Quota, CloudError> {
    if limit == 0 {
        return Err(CloudError::Decode("rate limit must be > 0".into()));
    }
    let burst = (limit / 10).clamp(1, 10);
    // 5% headroom: requests spaced here can arrive bunched at the server (scheduling and
    // network jitter), and a 429 costs a whole `retry-after`.
    let sustained = limit
        .saturating_sub(burst)
        .saturating_sub(limit / 20)
        .max(1);
    let q = Quota::with_period(window / sustained)
        .ok_or_else(|| CloudError::Decode("rate limit period must be > 0".into()))?;
    let burst =
        NonZeroU32::new(burst).ok_or_else(|| CloudError::Decode("burst must be > 0".into()))?;
    Ok(q.allow_burst(burst))
}

/// The request field a DigitalOcean validation message is about, if it names one: the field
/// named first ("The image you specified is not available in the selected region" is about
/// the image).
fn field_in(message: &str) -> Option<String> {
    let lower = message.to_lowercase();
    [
        "user_data",
        "region",
        "size",
        "image",
        "name",
        "tags",
        "ssh_keys",
        "vpc_uuid",
        "type",
    ]
    .into_iter()
    .filter_map(|f| {
        let spaced = f.replace('_', " ");
        let at = [lower.find(f), lower.find(&spaced)]
            .into_iter()
            .flatten()
            .min()?;
        Some((at, f))
    })
    .min()
    .map(|(_, f)| f.to_owned())
}

enum Retry {
    /// Safe to resend as is (reads, deletes, 429s which the server rejected unprocessed).
    Always,
    /// The outcome of a failed attempt is unknown; let the caller reconcile.
    OnlyRejected,
}

impl DigitalOcean {
    /// Builds a client.
    pub fn new(opts: ClientOptions) -> Result<Self, CloudError> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("genesis-engine/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CloudError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            per_minute: Arc::new(RateLimiter::direct(quota(
                opts.per_minute,
                opts.rate_window,
            )?)),
            per_hour: Arc::new(RateLimiter::direct(quota(
                opts.per_hour,
                opts.rate_window * 60,
            )?)),
            opts: Arc::new(opts),
            paused_until: Arc::new(Mutex::new(None)),
            budget_remaining: Arc::new(std::sync::atomic::AtomicU64::new(UNKNOWN_BUDGET)),
            shared: None,
            priority: CallPriority::default(),
            shared_down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// This client, also asking `budget` before every request.
    pub fn with_shared_budget(mut self, budget: Arc<dyn SharedBudget>) -> Self {
        self.shared = Some(budget);
        self
    }

    /// Jittered exponential delays between attempts, `max_attempts` of them, capped at 30 s.
    fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.opts.min_backoff)
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(self.opts.max_attempts)
            .with_jitter()
            .build()
    }

    async fn wait_for_budget(&self) {
        let pause = self.paused_until.lock().ok().and_then(|g| *g);
        if let Some(until) = pause {
            tokio::time::sleep_until(until.into()).await;
        }
        self.per_hour.until_ready().await;
        self.per_minute.until_ready().await;
        let Some(shared) = &self.shared else {
            return;
        };
        loop {
            match shared.admit(self.priority).await {
                Ok(wait) if wait.is_zero() => {
                    self.shared_down
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                Ok(wait) => tokio::time::sleep(wait.min(Duration::from_secs(60))).await,
                Err(e) => {
                    if !self
                        .shared_down
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        tracing::warn!(
                            error = %e,
                            "the shared cloud budget cannot be reached; going on under this process's own limits"
                        );
                    }
                    return;
                }
            }
        }
    }

    /// Requests the API said are left in its window (its last `ratelimit-remaining`), once
    /// an answer carried the header.
    pub fn budget_remaining(&self) -> Option<u64> {
        match self
            .budget_remaining
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            UNKNOWN_BUDGET => None,
            n => Some(n),
        }
    }

    fn note_headers(&self, headers: &HeaderMap) {
        let num = |k: &str| headers.get(k)?.to_str().ok()?.parse::<u64>().ok();
        if let Some(left) = num("ratelimit-remaining") {
            self.budget_remaining.store(
                left.min(UNKNOWN_BUDGET - 1),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        if let (Some(0), Some(reset)) = (num("ratelimit-remaining"), num("ratelimit-reset")) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let wait = Duration::from_secs(reset.saturating_sub(now).min(3600));
            if let Ok(mut g) = self.paused_until.lock() {
                *g = Some(Instant::now() + wait);
            }
        }
    }

    /// Sends one logical request, retrying as `retry` allows; returns status and body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<(StatusCode, Vec<u8>), CloudError> {
        let mut delays = self.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_budget().await;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.opts.base_url))
                .bearer_auth(&self.opts.token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let outcome = req.send().await;
            let (status, headers, bytes) = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(b) => (status, headers, b.to_vec()),
                        Err(e) if e.is_timeout() => {
                            if matches!(retry, Retry::OnlyRejected)
                                || attempt >= self.opts.max_attempts
                            {
                                return Err(CloudError::Timeout(self.opts.timeout));
                            }
                            tokio::time::sleep(delays.next().unwrap_or(self.opts.min_backoff))
                                .await;
                            continue;
                        }
                        Err(e) => return Err(CloudError::Transport(e.to_string())),
                    }
                }
                Err(e) => {
                    let err = if e.is_timeout() {
                        CloudError::Timeout(self.opts.timeout)
                    } else {
                        CloudError::Transport(e.to_string())
                    };
                    // A connect failure never reached the server; anything else might have.
                    let safe = matches!(retry, Retry::Always) || e.is_connect();
                    if !safe || attempt >= self.opts.max_attempts {
                        return Err(err);
                    }
                    tokio::time::sleep(delays.next().unwrap_or(self.opts.min_backoff)).await;
                    continue;
                }
            };
            self.note_headers(&headers);
            if status == StatusCode::TOO_MANY_REQUESTS {
                let after = headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1));
                if attempt >= self.opts.max_attempts {
                    return Err(CloudError::RateLimited { retry_after: after });
                }
                tracing::debug!(?after, "rate limited by the cloud");
                tokio::time::sleep(after).await;
                continue;
            }
            if status.is_server_error() {
                if matches!(retry, Retry::OnlyRejected) || attempt >= self.opts.max_attempts {
                    return Err(CloudError::Unavailable {
                        status: status.as_u16(),
                        attempts: attempt,
                    });
                }
                tokio::time::sleep(delays.next().unwrap_or(self.opts.min_backoff)).await;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                return Err(CloudError::NotFound);
            }
            if status.is_client_error() {
                let parsed: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
                let (id, message) = parsed.map(|b| (b.id, b.message)).unwrap_or_else(|| {
                    (
                        "unknown".into(),
                        String::from_utf8_lossy(&bytes).into_owned(),
                    )
                });
                return Err(CloudError::Refused {
                    status: status.as_u16(),
                    field: field_in(&message),
                    id,
                    message,
                });
            }
            return Ok((status, bytes));
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<T, CloudError> {
        let (_, bytes) = self.send(method, path, body, retry).await?;
        serde_json::from_slice(&bytes).map_err(|e| CloudError::Decode(format!("{path}: {e}")))
    }

    /// Every item of a paginated collection (`{key: [...], meta: {total}}`), 200 a page.
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, CloudError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1.. {
            let url = format!("{path}{sep}page={page}&per_page=200");
            let mut v: serde_json::Value =
                self.json(Method::GET, &url, None, Retry::Always).await?;
            let total = v.pointer("/meta/total").and_then(serde_json::Value::as_u64);
            let items: Vec<T> = serde_json::from_value(v[key].take())
                .map_err(|e| CloudError::Decode(format!("{path}: {key}: {e}")))?;
            let got = items.len();
            all.extend(items);
            if got == 0 || total.is_none_or(|t| all.len() as u64 >= t) {
                break;
            }
        }
        Ok(all)
    }

    /// Posts an action whose resend could act twice (a second snapshot, a second transfer),
    /// so an unknown outcome is returned to the caller rather than retried blindly.
    async fn post_action(&self, path: &str, body: serde_json::Value) -> Result<Action, CloudError> {
        let env: ActionEnvelope = self
            .json(Method::POST, path, Some(&body), Retry::OnlyRejected)
            .await?;
        Ok(env.action)
    }

    fn find_existing<'a>(existing: &'a [Droplet], name: &str) -> Option<&'a Droplet> {
        existing.iter().find(|d| d.name == name)
    }
}

impl Cloud for DigitalOcean {
    fn prioritised(&self, priority: CallPriority) -> Self {
        Self {
            priority,
            ..self.clone()
        }
    }

    async fn droplet_create(
        &self,
        req: &CreateDroplet,
    ) -> Result<(Droplet, Option<Action>), CloudError> {
        let ws_tag = req
            .tags
            .iter()
            .find(|t| t.starts_with("ws-"))
            .cloned()
            .ok_or_else(|| CloudError::Refused {
                status: 0,
                id: "client".into(),
                message: "a create needs a ws-<workspace uuid> tag so a retry can find it".into(),
                field: Some("tags".into()),
            })?;
        let mut body = req.clone();
        if !body.tags.iter().any(|t| t == "genesis") {
            body.tags.insert(0, "genesis".into());
        }
        let body = serde_json::to_value(&body).map_err(|e| CloudError::Decode(e.to_string()))?;
        let mut delays = self.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(d) =
                Self::find_existing(&self.droplet_list_by_tag(&ws_tag).await?, &req.name)
            {
                return Ok((d.clone(), None));
            }
            match self
                .json::<DropletEnvelope>(
                    Method::POST,
                    "/v2/droplets",
                    Some(&body),
                    Retry::OnlyRejected,
                )
                .await
            {
                Ok(env) => {
                    let action = match env.links.and_then(|l| l.actions.into_iter().next()) {
                        Some(link) => Some(self.action_get(link.id).await?),
                        None => None,
                    };
                    return Ok((env.droplet, action));
                }
                // The outcome is unknown: look again by tag before deciding to resend.
                Err(e) if e.is_retryable() && attempt < self.opts.max_attempts => {
                    tracing::debug!(error = %e, attempt, "create outcome unknown; reconciling by tag");
                    tokio::time::sleep(delays.next().unwrap_or(self.opts.min_backoff)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn droplet_get(&self, id: i64) -> Result<Droplet, CloudError> {
        let env: DropletEnvelope = self
            .json(
                Method::GET,
                &format!("/v2/droplets/{id}"),
                None,
                Retry::Always,
            )
            .await?;
        Ok(env.droplet)
    }

    async fn droplet_list_by_tag(&self, tag: &str) -> Result<Vec<Droplet>, CloudError> {
        self.list_all(
            &format!("/v2/droplets?tag_name={}", encode(tag)),
            "droplets",
        )
        .await
    }

    async fn droplet_delete(&self, id: i64) -> Result<(), CloudError> {
        match self
            .send(
                Method::DELETE,
                &format!("/v2/droplets/{id}"),
                None,
                Retry::Always,
            )
            .await
        {
            Ok(_) | Err(CloudError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn droplet_action(&self, id: i64, action: PowerAction) -> Result<Action, CloudError> {
        let body = serde_json::json!({ "type": action.code() });
        // Power actions converge on a state, so resending one is harmless.
        let env: ActionEnvelope = self
            .json(
                Method::POST,
                &format!("/v2/droplets/{id}/actions"),
                Some(&body),
                Retry::Always,
            )
            .await?;
        Ok(env.action)
    }

    async fn droplet_snapshot(&self, id: i64, name: &str) -> Result<Action, CloudError> {
        self.post_action(
            &format!("/v2/droplets/{id}/actions"),
            serde_json::json!({"type": "snapshot", "name": name}),
        )
        .await
    }

    async fn droplet_snapshots(&self, id: i64) -> Result<Vec<Snapshot>, CloudError> {
        // This list leaves out `resource_id` (every entry is of this droplet): filled in, a
        // snapshot reads the same from here as from `/v2/snapshots`.
        let mut snaps: Vec<Snapshot> = self
            .list_all(&format!("/v2/droplets/{id}/snapshots"), "snapshots")
            .await?;
        for s in &mut snaps {
            s.resource_id.get_or_insert_with(|| id.to_string());
        }
        Ok(snaps)
    }

    async fn snapshot_list(&self) -> Result<Vec<Snapshot>, CloudError> {
        self.list_all("/v2/snapshots?resource_type=droplet", "snapshots")
            .await
    }

    async fn snapshot_get(&self, id: i64) -> Result<Snapshot, CloudError> {
        #[derive(serde::Deserialize)]
        struct Env {
            snapshot: Snapshot,
        }
        let env: Env = self
            .json(
                Method::GET,
                &format!("/v2/snapshots/{id}"),
                None,
                Retry::Always,
            )
            .await?;
        Ok(env.snapshot)
    }

    async fn snapshot_delete(&self, id: i64) -> Result<(), CloudError> {
        match self
            .send(
                Method::DELETE,
                &format!("/v2/snapshots/{id}"),
                None,
                Retry::Always,
            )
            .await
        {
            Ok(_) | Err(CloudError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn image_get(&self, id: i64) -> Result<Image, CloudError> {
        #[derive(serde::Deserialize)]
        struct Env {
            image: Image,
        }
        let env: Env = self
            .json(
                Method::GET,
                &format!("/v2/images/{id}"),
                None,
                Retry::Always,
            )
            .await?;
        Ok(env.image)
    }

    async fn image_transfer(&self, id: i64, region: &str) -> Result<Action, CloudError> {
        self.post_action(
            &format!("/v2/images/{id}/actions"),
            serde_json::json!({"type": "transfer", "region": region}),
        )
        .await
    }

    async fn regions(&self) -> Result<Vec<Region>, CloudError> {
        self.list_all("/v2/regions", "regions").await
    }

    async fn sizes(&self) -> Result<Vec<Size>, CloudError> {
        self.list_all("/v2/sizes", "sizes").await
    }

    async fn firewall_list(&self) -> Result<Vec<Firewall>, CloudError> {
        self.list_all("/v2/firewalls", "firewalls").await
    }

    async fn firewall_create(&self, firewall: &Firewall) -> Result<Firewall, CloudError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            firewall: Firewall,
        }
        let body = serde_json::to_value(firewall).map_err(|e| CloudError::Refused {
            status: 0,
            id: "client".into(),
            message: format!("cannot encode the firewall: {e}"),
            field: None,
        })?;
        // A create is not idempotent: a retry after a lost answer would make a second
        // firewall. Callers list first (`ensure`), and only rejected requests are retried.
        let env: Envelope = self
            .json(
                Method::POST,
                "/v2/firewalls",
                Some(&body),
                Retry::OnlyRejected,
            )
            .await?;
        Ok(env.firewall)
    }

    async fn vpc_list(&self) -> Result<Vec<Vpc>, CloudError> {
        self.list_all("/v2/vpcs", "vpcs").await
    }

    async fn action_get(&self, id: i64) -> Result<Action, CloudError> {
        let env: ActionEnvelope = self
            .json(
                Method::GET,
                &format!("/v2/actions/{id}"),
                None,
                Retry::Always,
            )
            .await?;
        Ok(env.action)
    }

    async fn action_wait(&self, id: i64, deadline: Duration) -> Result<Action, CloudError> {
        let started = Instant::now();
        loop {
            let a = self.action_get(id).await?;
            match a.status {
                ActionStatus::Completed => return Ok(a),
                ActionStatus::Errored => {
                    return Err(CloudError::ActionErrored { id, kind: a.kind });
                }
                ActionStatus::InProgress if started.elapsed() >= deadline => {
                    return Err(CloudError::ActionDeadline { id, deadline });
                }
                ActionStatus::InProgress => tokio::time::sleep(self.opts.poll_interval).await,
            }
        }
    }
}

/// Percent-encodes a query value (tags are `[a-zA-Z0-9_:-]`, so this is belt and braces).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::field_in;

    #[test]
    fn the_first_named_field_is_the_one_at_fault() {
        assert_eq!(
            field_in("The image you specified is not available in the selected region.").as_deref(),
            Some("image")
        );
        assert_eq!(
            field_in("You specified an invalid region for Droplet creation.").as_deref(),
            Some("region")
        );
        assert_eq!(
            field_in("user_data is limited to 64 KiB.").as_deref(),
            Some("user_data")
        );
        assert_eq!(field_in("Something else went wrong."), None);
    }
}
