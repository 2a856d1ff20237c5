//! The DigitalOcean API v2 simulator: droplets, droplet actions, actions, tag listing with
//! pagination, DigitalOcean's error body, per-token rate limits with `ratelimit-*` headers,
//! and fault injection (`/sim/v1/faults`) with seeded randomness so a failing run replays.
//!
//! Time-driven state (a create finishing, a power action completing) is settled lazily from
//! timestamps on every request, so the simulator runs no background tasks per droplet and
//! 15,000 droplets cost only their records.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use genesis_cloud::types::{
    Action, ActionStatus, CreateDroplet, Droplet, DropletStatus, NetworkV4, Networks, RegionRef,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Datacenters the simulator offers (DigitalOcean's slugs for spec 62.1's regions).
pub const REGIONS: [&str; 7] = ["nyc1", "nyc3", "sfo1", "sfo3", "fra1", "lon1", "sgp1"];
/// Sizes it offers.
pub const SIZES: [&str; 3] = ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-4gb"];
/// Images it offers.
pub const IMAGES: [&str; 2] = ["ubuntu-22-04-x64", "docker-20-04"];
/// DigitalOcean's cap on `user_data`.
pub const MAX_USER_DATA: usize = 64 * 1024;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random decision (faults), so a run can be replayed.
    pub seed: u64,
    /// Requests allowed per `rate_window` per token (DigitalOcean: 250 per minute).
    pub per_window: u32,
    /// Requests allowed per 60 windows (DigitalOcean: 5,000 per hour).
    pub per_long_window: u32,
    /// The rate-limit window (60 s for realism; compress it in tests).
    pub rate_window: Duration,
    /// Time from create to `active` (zero for fast tests).
    pub create_delay: Duration,
    /// Time a power action takes.
    pub action_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            per_window: 250,
            per_long_window: 5_000,
            rate_window: Duration::from_secs(60),
            create_delay: Duration::ZERO,
            action_delay: Duration::ZERO,
        }
    }
}

/// Fault injection, settable at run time through `PUT /sim/v1/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Probability of a 500 before the request is processed.
    #[serde(default)]
    pub error_rate: f64,
    /// Probability of a 500 *after* a write was processed (the response is "lost").
    #[serde(default)]
    pub lost_response_rate: f64,
    /// The next N requests get 429.
    #[serde(default)]
    pub force_429: u32,
    /// Probability that a new action ends `errored`.
    #[serde(default)]
    pub action_error_rate: f64,
}

/// Counters for tests and dashboards (`GET /sim/v1/stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Requests accepted under the rate limit.
    pub accepted: u64,
    /// Requests answered 429 because of the limit (not counting forced ones).
    pub rate_limited: u64,
    /// Most requests accepted within any one window.
    pub max_in_window: u64,
    /// Injected 5xx answers.
    pub injected_errors: u64,
    /// Droplets alive now.
    pub droplets: u64,
}

struct SimDroplet {
    droplet: Droplet,
}

struct SimAction {
    action: Action,
    done_at: Instant,
    outcome: ActionStatus,
    effect: Option<DropletStatus>,
}

struct Inner {
    droplets: BTreeMap<i64, SimDroplet>,
    actions: BTreeMap<i64, SimAction>,
    pending: Vec<i64>,
    next_id: i64,
    next_ip: u32,
    rng: StdRng,
    faults: Faults,
    window: VecDeque<Instant>,
    long_window: VecDeque<Instant>,
    stats: Stats,
}

/// A running simulator's shared state.
#[derive(Clone)]
pub struct Simulator {
    cfg: Arc<SimConfig>,
    inner: Arc<Mutex<Inner>>,
}

fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm), UTC.
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// DigitalOcean's error response.
fn error(status: StatusCode, id: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"id": id, "message": message.into()}))).into_response()
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 255
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'-')
}

impl Simulator {
    /// A simulator with no droplets.
    pub fn new(cfg: SimConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        Self {
            cfg: Arc::new(cfg),
            inner: Arc::new(Mutex::new(Inner {
                droplets: BTreeMap::new(),
                actions: BTreeMap::new(),
                pending: Vec::new(),
                next_id: 100_000_000,
                next_ip: 1,
                rng,
                faults: Faults::default(),
                window: VecDeque::new(),
                long_window: VecDeque::new(),
                stats: Stats::default(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a simulator bug; keep serving regardless.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP surface: `/v2/...` as DigitalOcean, `/sim/v1/...` to steer the simulation.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v2/droplets", post(create).get(list))
            .route("/v2/droplets/{id}", get(droplet_get).delete(droplet_delete))
            .route("/v2/droplets/{id}/actions", post(droplet_action))
            .route("/v2/actions/{id}", get(action_get))
            .layer(middleware::from_fn_with_state(self.clone(), gate));
        Router::new()
            .merge(api)
            .route("/sim/v1/faults", get(faults_get).put(faults_put))
            .route("/sim/v1/stats", get(stats))
            .with_state(self.clone())
    }
}

impl Inner {
    fn settle(&mut self, now: Instant) {
        let mut still = Vec::with_capacity(self.pending.len());
        for id in std::mem::take(&mut self.pending) {
            let Some(a) = self.actions.get_mut(&id) else {
                continue;
            };
            if a.done_at > now {
                still.push(id);
                continue;
            }
            a.action.status = a.outcome;
            a.action.completed_at = Some(now_iso());
            if a.outcome == ActionStatus::Completed
                && let (Some(effect), Some(rid)) = (a.effect, a.action.resource_id)
                && let Some(d) = self.droplets.get_mut(&rid)
            {
                d.droplet.status = effect;
            }
        }
        // A droplet becomes `active` through its create action's effect, so settling only
        // walks pending actions, never the whole fleet.
        self.pending = still;
    }

    fn new_action(
        &mut self,
        kind: &str,
        droplet: i64,
        region: &str,
        delay: Duration,
        effect: Option<DropletStatus>,
    ) -> Action {
        self.next_id += 1;
        let id = self.next_id;
        let errored = self
            .rng
            .random_bool(self.faults.action_error_rate.clamp(0.0, 1.0));
        let action = Action {
            id,
            status: ActionStatus::InProgress,
            kind: kind.into(),
            resource_id: Some(droplet),
            resource_type: "droplet".into(),
            started_at: now_iso(),
            completed_at: None,
            region_slug: Some(region.into()),
        };
        self.actions.insert(
            id,
            SimAction {
                action: action.clone(),
                done_at: Instant::now() + delay,
                outcome: if errored {
                    ActionStatus::Errored
                } else {
                    ActionStatus::Completed
                },
                effect,
            },
        );
        self.pending.push(id);
        action
    }
}

/// Authentication, rate limiting, fault injection and settling, in front of every `/v2` call.
async fn gate(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if !headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you",
        );
    }
    let now = Instant::now();
    let (limit, remaining, reset, inject) = {
        let mut s = sim.lock();
        let w = sim.cfg.rate_window;
        while s
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= w)
        {
            s.window.pop_front();
        }
        while s
            .long_window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= w * 60)
        {
            s.long_window.pop_front();
        }
        let reset_in = s
            .window
            .front()
            .map(|t| w.saturating_sub(now.duration_since(*t)))
            .unwrap_or(w);
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + reset_in.as_secs().max(1);
        if s.faults.force_429 > 0 {
            s.faults.force_429 -= 1;
            return rate_limited(sim.cfg.per_window, reset_in);
        }
        if s.window.len() as u32 >= sim.cfg.per_window
            || s.long_window.len() as u32 >= sim.cfg.per_long_window
        {
            s.stats.rate_limited += 1;
            return rate_limited(sim.cfg.per_window, reset_in);
        }
        s.window.push_back(now);
        s.long_window.push_back(now);
        s.stats.accepted += 1;
        s.stats.max_in_window = s.stats.max_in_window.max(s.window.len() as u64);
        s.settle(now);
        let rate = s.faults.error_rate.clamp(0.0, 1.0);
        let inject = s.rng.random_bool(rate);
        if inject {
            s.stats.injected_errors += 1;
        }
        (
            sim.cfg.per_window,
            sim.cfg.per_window - s.window.len() as u32,
            reset,
            inject,
        )
    };
    let mut resp = if inject {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Unexpected server-side error",
        )
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(limit));
    h.insert("ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("ratelimit-reset", HeaderValue::from(reset));
    resp
}

fn rate_limited(limit: u32, reset_in: Duration) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "API Rate limit exceeded.",
    );
    let h = r.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(limit));
    h.insert("ratelimit-remaining", HeaderValue::from(0u32));
    h.insert("retry-after", HeaderValue::from(reset_in.as_secs().max(1)));
    r
}

/// A processed write whose response the network "loses" (answered 500).
fn maybe_lose(sim: &Simulator, resp: Response) -> Response {
    let mut s = sim.lock();
    let rate = s.faults.lost_response_rate.clamp(0.0, 1.0);
    if s.rng.random_bool(rate) {
        s.stats.injected_errors += 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Unexpected server-side error",
        );
    }
    resp
}

async fn create(
    State(sim): State<Simulator>,
    body: Result<Json<CreateDroplet>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request body is not valid JSON for a Droplet create.",
        );
    };
    if !valid_name(&req.name) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "Name is invalid: only letters, digits, '.' and '-' are allowed.",
        );
    }
    if !REGIONS.contains(&req.region.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "You specified an invalid region for Droplet creation.",
        );
    }
    if !SIZES.contains(&req.size.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "You specified an invalid size for Droplet creation.",
        );
    }
    if !IMAGES.contains(&req.image.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "You specified an invalid image for Droplet creation.",
        );
    }
    if req
        .user_data
        .as_ref()
        .is_some_and(|u| u.len() > MAX_USER_DATA)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "user_data is limited to 64 KiB.",
        );
    }
    if let Some(bad) = req.tags.iter().find(|t| !valid_tag(t)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            format!("Tags are invalid: {bad:?}."),
        );
    }
    let (droplet, action) = {
        let mut s = sim.lock();
        s.next_id += 1;
        let id = s.next_id;
        // Public addresses from 127.64.0.0/10: every virtual droplet is reachable on loopback.
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 64, 0, 0)) + s.next_ip);
        s.next_ip += 1;
        let droplet = Droplet {
            id,
            name: req.name.clone(),
            status: DropletStatus::New,
            tags: req.tags.clone(),
            networks: Networks {
                v4: vec![NetworkV4 {
                    ip_address: ip.to_string(),
                    netmask: "255.192.0.0".into(),
                    gateway: Some("127.64.0.1".into()),
                    kind: "public".into(),
                }],
                v6: vec![],
            },
            region: RegionRef {
                slug: req.region.clone(),
            },
            size_slug: req.size.clone(),
            created_at: now_iso(),
        };
        let delay = sim.cfg.create_delay;
        s.droplets.insert(
            id,
            SimDroplet {
                droplet: droplet.clone(),
            },
        );
        let action = s.new_action(
            "create",
            id,
            &req.region,
            delay,
            Some(DropletStatus::Active),
        );
        s.stats.droplets = s.droplets.len() as u64;
        (droplet, action)
    };
    let body = json!({
        "droplet": droplet,
        "links": {"actions": [{"id": action.id, "rel": "create", "href": format!("/v2/actions/{}", action.id)}]},
    });
    maybe_lose(&sim, (StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    tag_name: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(State(sim): State<Simulator>, Query(q): Query<ListQuery>) -> Response {
    let per_page = q.per_page.unwrap_or(20).clamp(1, 200);
    let page = q.page.unwrap_or(1).max(1);
    let s = sim.lock();
    let matching: Vec<&Droplet> = s
        .droplets
        .values()
        .map(|d| &d.droplet)
        .filter(|d| q.tag_name.as_ref().is_none_or(|t| d.tags.contains(t)))
        .collect();
    let total = matching.len();
    let items: Vec<&Droplet> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let last = total.div_ceil(per_page).max(1);
    let tag = q
        .tag_name
        .as_ref()
        .map(|t| format!("&tag_name={t}"))
        .unwrap_or_default();
    let link = |p: usize| format!("/v2/droplets?page={p}&per_page={per_page}{tag}");
    let mut pages = serde_json::Map::new();
    if page > 1 {
        pages.insert("first".into(), link(1).into());
        pages.insert("prev".into(), link(page - 1).into());
    }
    if page < last {
        pages.insert("next".into(), link(page + 1).into());
        pages.insert("last".into(), link(last).into());
    }
    Json(json!({"droplets": items, "links": {"pages": pages}, "meta": {"total": total}}))
        .into_response()
}

/// DigitalOcean's 404.
fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse().ok()
}

async fn droplet_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match sim.lock().droplets.get(&id) {
        Some(d) => Json(json!({"droplet": d.droplet})).into_response(),
        None => not_found(),
    }
}

async fn droplet_delete(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let mut s = sim.lock();
    match s.droplets.remove(&id) {
        Some(_) => {
            s.stats.droplets = s.droplets.len() as u64;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

#[derive(Deserialize)]
struct ActionRequest {
    #[serde(rename = "type")]
    kind: String,
}

async fn droplet_action(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Result<Json<ActionRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let Ok(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request body is not valid JSON for a Droplet action.",
        );
    };
    let effect = match req.kind.as_str() {
        "power_on" | "power_cycle" | "reboot" => DropletStatus::Active,
        "power_off" | "shutdown" => DropletStatus::Off,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable_entity",
                "The action type is invalid.",
            );
        }
    };
    let action = {
        let mut s = sim.lock();
        let Some(region) = s.droplets.get(&id).map(|d| d.droplet.region.slug.clone()) else {
            return not_found();
        };
        s.new_action(&req.kind, id, &region, sim.cfg.action_delay, Some(effect))
    };
    maybe_lose(
        &sim,
        (StatusCode::CREATED, Json(json!({"action": action}))).into_response(),
    )
}

async fn action_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match sim.lock().actions.get(&id) {
        Some(a) => Json(json!({"action": a.action})).into_response(),
        None => not_found(),
    }
}

async fn faults_get(State(sim): State<Simulator>) -> Json<Faults> {
    Json(sim.lock().faults.clone())
}

async fn faults_put(State(sim): State<Simulator>, Json(f): Json<Faults>) -> Json<Faults> {
    sim.lock().faults = f.clone();
    Json(f)
}

async fn stats(State(sim): State<Simulator>) -> Json<Stats> {
    Json(sim.lock().stats.clone())
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}
