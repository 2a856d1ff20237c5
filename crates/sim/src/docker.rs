//! A fake Docker Engine on a unix socket: the handful of Engine API calls the sidecar's
//! `DockerRuntime` makes (inspect, start, stop, restart, rename, create, remove, pull, logs),
//! with Docker's status codes (404 no such container or image, 409 name in use, 304 already
//! started/stopped) and its multiplexed log frames. There is no Docker engine on our build
//! machines; this is what the Docker runtime is tested against.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

struct Container {
    id: String,
    image: String,
    running: bool,
    pid: u32,
    started_at: String,
    config: Value,
    host_config: Value,
    logs: Vec<(u8, String)>,
}

#[derive(Default)]
struct Engine {
    containers: BTreeMap<String, Container>,
    images: BTreeSet<String>,
    next: u32,
}

/// The fake engine. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeDocker {
    engine: Arc<Mutex<Engine>>,
}

impl std::fmt::Debug for FakeDocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDocker").finish_non_exhaustive()
    }
}

fn message(status: StatusCode, m: impl Into<String>) -> Response {
    (status, Json(json!({"message": m.into()}))).into_response()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Engine {
    fn start(&mut self, name: &str) -> Option<bool> {
        self.next += 1;
        let pid = 1000 + self.next;
        let c = self.containers.get_mut(name)?;
        if c.running {
            return Some(false);
        }
        c.running = true;
        c.pid = pid;
        c.started_at = now();
        c.logs
            .push((1, format!("n8n ready on port 5678 (image {})", c.image)));
        Some(true)
    }

    fn stop(&mut self, name: &str) -> Option<bool> {
        let c = self.containers.get_mut(name)?;
        if !c.running {
            return Some(false);
        }
        c.running = false;
        c.pid = 0;
        c.logs.push((2, "received SIGTERM, shutting down".into()));
        Some(true)
    }
}

impl FakeDocker {
    /// An engine running `name` from `image` (already pulled).
    pub fn with_container(name: &str, image: &str) -> Self {
        let d = Self::default();
        {
            let mut e = d.lock();
            e.images.insert(image.to_owned());
            e.containers.insert(
                name.to_owned(),
                Container {
                    id: format!("{:064x}", 1),
                    image: image.to_owned(),
                    running: false,
                    pid: 0,
                    started_at: String::new(),
                    config: json!({"Image": image, "Env": ["N8N_PORT=5678"]}),
                    host_config: json!({"PortBindings": {"5678/tcp": [{"HostPort": "5678"}]}}),
                    logs: vec![],
                },
            );
            e.start(name);
        }
        d
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names of existing containers with their image and whether they run.
    pub fn containers(&self) -> Vec<(String, String, bool)> {
        self.lock()
            .containers
            .iter()
            .map(|(n, c)| (n.clone(), c.image.clone(), c.running))
            .collect()
    }

    /// The Engine API routes (version prefix as a path parameter).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{v}/containers/{name}/json", get(inspect))
            .route("/{v}/containers/{name}/start", post(start))
            .route("/{v}/containers/{name}/stop", post(stop))
            .route("/{v}/containers/{name}/restart", post(restart))
            .route("/{v}/containers/{name}/rename", post(rename))
            .route("/{v}/containers/{name}/logs", get(logs))
            .route("/{v}/containers/create", post(create))
            .route("/{v}/containers/{name}", delete(remove))
            .route("/{v}/images/create", post(pull))
            .with_state(self.clone())
    }
}

/// Serves the engine on a unix socket until `shutdown` resolves.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    docker: FakeDocker,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, docker.router())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn inspect(State(d): State<FakeDocker>, Path((_, name)): Path<(String, String)>) -> Response {
    let e = d.lock();
    let Some(c) = e.containers.get(&name) else {
        return message(StatusCode::NOT_FOUND, format!("No such container: {name}"));
    };
    Json(json!({
        "Id": c.id,
        "Name": format!("/{name}"),
        "State": {"Running": c.running, "Pid": c.pid, "StartedAt": c.started_at,
                  "Status": if c.running { "running" } else { "exited" }},
        "Config": c.config,
        "HostConfig": c.host_config,
    }))
    .into_response()
}

fn transition(d: &FakeDocker, name: &str, f: fn(&mut Engine, &str) -> Option<bool>) -> Response {
    match f(&mut d.lock(), name) {
        None => message(StatusCode::NOT_FOUND, format!("No such container: {name}")),
        Some(true) => StatusCode::NO_CONTENT.into_response(),
        Some(false) => StatusCode::NOT_MODIFIED.into_response(),
    }
}

async fn start(State(d): State<FakeDocker>, Path((_, name)): Path<(String, String)>) -> Response {
    transition(&d, &name, Engine::start)
}

async fn stop(State(d): State<FakeDocker>, Path((_, name)): Path<(String, String)>) -> Response {
    transition(&d, &name, Engine::stop)
}

async fn restart(State(d): State<FakeDocker>, Path((_, name)): Path<(String, String)>) -> Response {
    let mut e = d.lock();
    if e.stop(&name).is_none() {
        return message(StatusCode::NOT_FOUND, format!("No such container: {name}"));
    }
    e.start(&name);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

async fn rename(
    State(d): State<FakeDocker>,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<NameQuery>,
) -> Response {
    let Some(to) = q.name.filter(|n| !n.is_empty()) else {
        return message(StatusCode::BAD_REQUEST, "a new name is required");
    };
    let mut e = d.lock();
    if e.containers.contains_key(&to) {
        return message(
            StatusCode::CONFLICT,
            format!("Conflict. The name \"/{to}\" is already in use"),
        );
    }
    match e.containers.remove(&name) {
        Some(c) => {
            e.containers.insert(to, c);
            StatusCode::NO_CONTENT.into_response()
        }
        None => message(StatusCode::NOT_FOUND, format!("No such container: {name}")),
    }
}

async fn create(
    State(d): State<FakeDocker>,
    Query(q): Query<NameQuery>,
    Json(body): Json<Value>,
) -> Response {
    let Some(name) = q.name.filter(|n| !n.is_empty()) else {
        return message(
            StatusCode::BAD_REQUEST,
            "the fake engine wants named containers",
        );
    };
    let Some(image) = body.get("Image").and_then(Value::as_str).map(str::to_owned) else {
        return message(StatusCode::BAD_REQUEST, "Config.Image is required");
    };
    let mut e = d.lock();
    if !e.images.contains(&image) {
        return message(StatusCode::NOT_FOUND, format!("No such image: {image}"));
    }
    if e.containers.contains_key(&name) {
        return message(
            StatusCode::CONFLICT,
            format!("Conflict. The container name \"/{name}\" is already in use"),
        );
    }
    e.next += 1;
    let id = format!("{:064x}", 1000 + e.next);
    let mut config = body.clone();
    let host_config = config
        .as_object_mut()
        .and_then(|o| o.remove("HostConfig"))
        .unwrap_or_else(|| json!({}));
    e.containers.insert(
        name,
        Container {
            id: id.clone(),
            image,
            running: false,
            pid: 0,
            started_at: String::new(),
            config,
            host_config,
            logs: vec![],
        },
    );
    (StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response()
}

#[derive(Deserialize)]
struct RemoveQuery {
    force: Option<bool>,
}

async fn remove(
    State(d): State<FakeDocker>,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<RemoveQuery>,
) -> Response {
    let mut e = d.lock();
    match e.containers.get(&name) {
        None => message(StatusCode::NOT_FOUND, format!("No such container: {name}")),
        Some(c) if c.running && !q.force.unwrap_or(false) => message(
            StatusCode::CONFLICT,
            format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                c.id
            ),
        ),
        Some(_) => {
            e.containers.remove(&name);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullQuery {
    from_image: String,
    tag: Option<String>,
}

async fn pull(State(d): State<FakeDocker>, Query(q): Query<PullQuery>) -> Response {
    let image = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => format!("{}:{t}", q.from_image),
        None => q.from_image.clone(),
    };
    // Like Docker, a failure after the pull started is a 200 whose stream ends in an error.
    let mut lines = vec![json!({"status": format!("Pulling from {}", q.from_image)})];
    if image.contains("missing") {
        lines.push(
            json!({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}),
        );
    } else {
        lines.push(json!({"status": format!("Status: Downloaded newer image for {image}")}));
        d.lock().images.insert(image);
    }
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

#[derive(Deserialize)]
struct LogsQuery {
    tail: Option<usize>,
}

async fn logs(
    State(d): State<FakeDocker>,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let e = d.lock();
    let Some(c) = e.containers.get(&name) else {
        return message(StatusCode::NOT_FOUND, format!("No such container: {name}"));
    };
    let tail = q.tail.unwrap_or(usize::MAX);
    let mut body = Vec::new();
    for (stream, line) in c.logs.iter().skip(c.logs.len().saturating_sub(tail)) {
        let payload = format!("{line}\n");
        body.push(*stream);
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        body.extend_from_slice(payload.as_bytes());
    }
    (
        StatusCode::OK,
        [("content-type", "application/vnd.docker.multiplexed-stream")],
        body,
    )
        .into_response()
}
