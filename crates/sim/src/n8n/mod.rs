//! A fake n8n 2.8.4: the public API v1 subset the sidecar uses, the owner-setup and API-key
//! endpoints of a fresh instance, and production webhooks, with the behaviour of the real
//! thing (see `genesis_n8n::client`): flat objects, `{data, nextCursor}` lists, four-field
//! workflow writes, unknown credential ids accepted, string execution ids, webhooks that 404
//! until their workflow is active and record an execution when called.
//!
//! It is small so that thousands of virtual droplets can each run one in-process: one mutex,
//! a few maps, no background tasks. Its conformance to n8n's own OpenAPI document is tested
//! (`crates/n8n/tests`).

mod auth;
mod credentials;
mod engine;
mod executions;
pub mod expr;
pub mod runtime;
mod tags;
mod workflows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeN8nConfig {
    /// Time from start to `GET /healthz/readiness` answering 200.
    pub ready_after: Duration,
    /// Time from start until `/rest/...` is mounted (404 before). n8n 2.8.4 says it is
    /// ready a few seconds before this.
    pub rest_after: Duration,
    /// Seed of generated ids.
    pub seed: u64,
    /// The address the HTTP Request node's requests leave from (a virtual droplet's own, so
    /// the control plane sees the droplet; any when `None`).
    pub http_from: Option<std::net::IpAddr>,
}

impl Default for FakeN8nConfig {
    fn default() -> Self {
        Self {
            ready_after: Duration::ZERO,
            rest_after: Duration::ZERO,
            seed: 1,
            http_from: None,
        }
    }
}

pub(crate) struct Workflow {
    id: String,
    name: String,
    active: bool,
    nodes: Vec<Value>,
    connections: Value,
    settings: Value,
    created_at: String,
    updated_at: String,
    /// The workflow's tags, as n8n renders them (copies, see `tags`).
    tags: Vec<Value>,
    /// The webhooks registered when it was last published (n8n's `webhook_entity` rows):
    /// what its production URLs answer to. An update that n8n cannot re-publish leaves the
    /// old registrations in place while the definition changes under them.
    registered: Vec<genesis_n8n::ProductionWebhook>,
}

/// One n8n tag.
pub(crate) struct Tag {
    id: String,
    name: String,
    created_at: String,
    updated_at: String,
}

pub(crate) struct Credential {
    id: String,
    name: String,
    kind: String,
    data: Value,
    created_at: String,
    updated_at: String,
}

pub(crate) struct Execution {
    id: u64,
    workflow_id: String,
    /// `running`, `success` or `error`.
    status: &'static str,
    /// `webhook` or `trigger`.
    mode: &'static str,
    started_at: String,
    stopped_at: Option<String>,
    /// What `includeData=true` shows: `{resultData: {runData, lastNodeExecuted, error}}`.
    data: Value,
}

pub(crate) struct State {
    started: Instant,
    owner: Option<(String, String)>,
    sessions: HashSet<String>,
    api_keys: HashMap<String, Vec<String>>,
    workflows: BTreeMap<String, Workflow>,
    credentials: BTreeMap<String, Credential>,
    tags: BTreeMap<String, Tag>,
    executions: BTreeMap<u64, Execution>,
    next_execution: u64,
    rng: StdRng,
    /// Workflow creations and updates accepted so far.
    workflow_writes: u64,
    /// Chaos: refuse workflow writes (a broken n8n, for rollout failure rates).
    refuse_writes: bool,
    /// Chaos: refuse credential writes as n8n refuses data its schema does not allow (an
    /// n8n whose credential types are not the pinned ones).
    refuse_credentials: bool,
}

impl State {
    /// An n8n-style id: 16 letters and digits.
    fn new_id(&mut self) -> String {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..16)
            .map(|_| ALNUM[self.rng.random_range(0..ALNUM.len())] as char)
            .collect()
    }

    fn token(&mut self, prefix: &str) -> String {
        format!("{prefix}{}{}", self.new_id(), self.new_id())
    }
}

/// One fake n8n instance. Cheap to clone.
#[derive(Clone)]
pub struct FakeN8n {
    cfg: Arc<FakeN8nConfig>,
    state: Arc<Mutex<State>>,
    /// The HTTP Request node's client, made when a workflow first needs it: thousands of
    /// virtual droplets whose workflows never call out pay nothing for it.
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl std::fmt::Debug for FakeN8n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeN8n").finish_non_exhaustive()
    }
}

/// ISO 8601 with milliseconds, as n8n writes timestamps.
pub(crate) fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// n8n's error body.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"message": message.into()}))).into_response()
}

impl FakeN8n {
    /// A fresh instance: no owner, no API key, nothing in it.
    pub fn new(cfg: FakeN8nConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        Self {
            http: Arc::new(std::sync::OnceLock::new()),
            cfg: Arc::new(cfg),
            state: Arc::new(Mutex::new(State {
                started: Instant::now(),
                owner: None,
                sessions: HashSet::new(),
                api_keys: HashMap::new(),
                workflows: BTreeMap::new(),
                credentials: BTreeMap::new(),
                tags: BTreeMap::new(),
                executions: BTreeMap::new(),
                next_execution: 1,
                rng,
                workflow_writes: 0,
                refuse_writes: false,
                refuse_credentials: false,
            })),
        }
    }

    /// The client the HTTP Request node uses (idle connections close after 2 s: a virtual
    /// droplet's workflows call out rarely).
    pub(crate) fn http(&self) -> reqwest::Client {
        self.http
            .get_or_init(|| {
                let mut b = reqwest::Client::builder()
                    .pool_idle_timeout(Duration::from_secs(2))
                    .user_agent("axios/1.12.0");
                if let Some(ip) = self.cfg.http_from {
                    b = b.local_address(ip);
                }
                b.build().unwrap_or_default()
            })
            .clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Express's 404 for a route not mounted yet, while n8n is still starting.
    pub(crate) fn rest_not_mounted(&self, path: &str) -> Option<Response> {
        (self.lock().started.elapsed() < self.cfg.rest_after).then(|| {
            (
                StatusCode::NOT_FOUND,
                [("content-type", "text/html; charset=utf-8")],
                format!("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot POST {path}</pre>\n</body>\n</html>\n"),
            )
                .into_response()
        })
    }

    /// Workflows as `(id, name, active)`, by id: what an operator (or a test) sees when it
    /// looks inside a virtual droplet's n8n.
    pub fn workflow_summary(&self) -> Vec<(String, String, bool)> {
        self.lock()
            .workflows
            .values()
            .map(|w| (w.id.clone(), w.name.clone(), w.active))
            .collect()
    }

    /// Credentials as `(id, name, type)`, by id (never their data).
    pub fn credential_summary(&self) -> Vec<(String, String, String)> {
        self.lock()
            .credentials
            .values()
            .map(|c| (c.id.clone(), c.name.clone(), c.kind.clone()))
            .collect()
    }

    /// A credential's data, as whoever holds the droplet could read it from n8n's database
    /// (tests use it to play that attacker); `None` when there is no such credential.
    pub fn credential_data(&self, id: &str) -> Option<Value> {
        self.lock().credentials.get(id).map(|c| c.data.clone())
    }

    /// Chaos: flips a workflow's active flag behind the control plane's back (drift, spec
    /// 43.2's `state_mismatch`). False if there is no such workflow.
    pub fn chaos_set_active(&self, id: &str, active: bool) -> bool {
        match self.lock().workflows.get_mut(id) {
            Some(w) => {
                w.active = active;
                w.registered = if active {
                    genesis_n8n::production_webhooks(&w.id, &w.nodes)
                } else {
                    Vec::new()
                };
                w.updated_at = now_iso();
                true
            }
            None => false,
        }
    }

    /// Chaos: a workflow someone made by hand in the tenant's n8n (spec 43.2's
    /// `orphan_workflow`). Returns its id.
    pub fn chaos_add_workflow(&self, name: &str, active: bool) -> String {
        let mut s = self.lock();
        let id = s.new_id();
        let now = now_iso();
        let w = Workflow {
            id: id.clone(),
            name: name.to_owned(),
            active,
            nodes: vec![serde_json::json!({
                "name": "Every hour", "type": "n8n-nodes-base.scheduleTrigger",
                "typeVersion": 1, "position": [0, 0], "parameters": {}
            })],
            connections: serde_json::json!({}),
            settings: serde_json::json!({}),
            created_at: now.clone(),
            updated_at: now,
            tags: Vec::new(),
            registered: Vec::new(),
        };
        s.workflows.insert(id.clone(), w);
        id
    }

    /// Chaos: someone deleted a workflow in the tenant's n8n by hand (spec 43.2's
    /// `orphan_db_record`). False if there is no such workflow.
    pub fn chaos_delete_workflow(&self, id: &str) -> bool {
        self.lock().workflows.remove(id).is_some()
    }

    /// Chaos: someone deleted the tag `name` by hand; the workflows that carried it lose
    /// it. False if there is no such tag.
    pub fn chaos_delete_tag(&self, name: &str) -> bool {
        let mut s = self.lock();
        let Some(id) = s
            .tags
            .values()
            .find(|t| t.name == name)
            .map(|t| t.id.clone())
        else {
            return false;
        };
        s.tags.remove(&id);
        tags::refresh_workflows(&mut s, &id);
        true
    }

    /// Chaos: someone re-tagged a workflow by hand, e.g. back to an older template version
    /// (spec 43.2's `version_mismatch`). Its tags become the one tag `name`, created when
    /// missing. False if there is no such workflow.
    pub fn chaos_retag(&self, id: &str, name: &str) -> bool {
        let mut s = self.lock();
        if !s.workflows.contains_key(id) {
            return false;
        }
        let tag_id = match s.tags.values().find(|t| t.name == name) {
            Some(t) => t.id.clone(),
            None => {
                let tag_id = s.new_id();
                let now = now_iso();
                s.tags.insert(
                    tag_id.clone(),
                    Tag {
                        id: tag_id.clone(),
                        name: name.to_owned(),
                        created_at: now.clone(),
                        updated_at: now,
                    },
                );
                tag_id
            }
        };
        let rendered = s.tags.get(&tag_id).map(tags::render);
        match (s.workflows.get_mut(id), rendered) {
            (Some(w), Some(t)) => {
                w.tags = vec![t];
                w.updated_at = now_iso();
                true
            }
            _ => false,
        }
    }

    /// Chaos: from now on every workflow creation or update is refused with n8n's 400 (or
    /// accepted again with `false`).
    pub fn chaos_refuse_writes(&self, refuse: bool) {
        self.lock().refuse_writes = refuse;
    }

    /// Chaos: from now on every credential creation or update is refused with n8n's 400, as
    /// an n8n whose credential types differ from the pinned ones would refuse the data (or
    /// accepted again with `false`).
    pub fn chaos_refuse_credentials(&self, refuse: bool) {
        self.lock().refuse_credentials = refuse;
    }

    /// Workflow creations and updates accepted so far (how a test sees that a droplet was
    /// updated, and how many times).
    pub fn workflow_writes(&self) -> u64 {
        self.lock().workflow_writes
    }

    /// The names of a workflow's tags (empty when there is no such workflow).
    pub fn workflow_tag_names(&self, id: &str) -> Vec<String> {
        self.lock()
            .workflows
            .get(id)
            .map(|w| {
                w.tags
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Executions recorded so far (for tests and the dashboard).
    pub fn execution_count(&self) -> usize {
        self.lock().executions.len()
    }

    /// Each execution's `(status, error message)`, oldest first: how a test sees what a
    /// workflow did.
    pub fn execution_outcomes(&self) -> Vec<(String, Option<String>)> {
        self.lock()
            .executions
            .values()
            .map(|e| {
                (
                    e.status.to_owned(),
                    e.data
                        .pointer("/resultData/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
            })
            .collect()
    }

    /// The HTTP surface.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route(
                "/api/v1/workflows",
                get(workflows::list).post(workflows::create),
            )
            .route(
                "/api/v1/workflows/{id}",
                get(workflows::get_one)
                    .put(workflows::update)
                    .delete(workflows::delete),
            )
            .route("/api/v1/workflows/{id}/activate", post(workflows::activate))
            .route(
                "/api/v1/workflows/{id}/tags",
                get(tags::workflow_get).put(tags::workflow_put),
            )
            .route("/api/v1/tags", get(tags::list).post(tags::create))
            .route(
                "/api/v1/tags/{id}",
                get(tags::get_one).put(tags::update).delete(tags::delete),
            )
            .route(
                "/api/v1/workflows/{id}/deactivate",
                post(workflows::deactivate),
            )
            .route(
                "/api/v1/credentials",
                get(credentials::list).post(credentials::create),
            )
            .route(
                "/api/v1/credentials/{id}",
                axum::routing::patch(credentials::patch).delete(credentials::delete),
            )
            .route(
                "/api/v1/credentials/schema/{kind}",
                get(credentials::schema),
            )
            .route("/api/v1/executions", get(executions::list))
            .route("/api/v1/executions/{id}", get(executions::get_one))
            .route_layer(middleware::from_fn_with_state(self.clone(), auth::api_key));
        Router::new()
            .merge(api)
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/healthz/readiness", get(readiness))
            .route("/rest/owner/setup", post(auth::owner_setup))
            .route("/rest/login", post(auth::login))
            .route("/rest/api-keys", post(auth::api_key_create))
            .route("/webhook/{*path}", any(executions::webhook))
            .with_state(self.clone())
    }
}

async fn readiness(axum::extract::State(n8n): axum::extract::State<FakeN8n>) -> Response {
    if n8n.lock().started.elapsed() >= n8n.cfg.ready_after {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error"})),
        )
            .into_response()
    }
}

/// Serves `n8n` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    n8n: FakeN8n,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, n8n, |r| r, shutdown).await
}

/// [`serve`] with the router passed through `wrap` (e.g. contract checking).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    n8n: FakeN8n,
    wrap: impl FnOnce(Router) -> Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, wrap(n8n.router()))
        .with_graceful_shutdown(shutdown)
        .await
}
