//! `/api/v1/workflows...`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{FakeN8n, Workflow, error, now_iso};

/// Fields a write may carry: the four n8n stores, plus read-only ones it ignores.
const WRITABLE: [&str; 4] = ["name", "nodes", "connections", "settings"];
const READ_ONLY: [&str; 5] = ["id", "active", "tags", "createdAt", "updatedAt"];
/// Keys a workflow setting may have (`workflowSettings`, additionalProperties: false).
const SETTINGS: [&str; 11] = [
    "saveExecutionProgress",
    "saveManualExecutions",
    "saveDataErrorExecution",
    "saveDataSuccessExecution",
    "executionTimeout",
    "errorWorkflow",
    "timezone",
    "executionOrder",
    "callerPolicy",
    "callerIds",
    "timeSavedPerExecution",
];

pub(super) fn render(w: &Workflow) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "active": w.active,
        "createdAt": w.created_at,
        "updatedAt": w.updated_at,
        "nodes": w.nodes,
        "connections": w.connections,
        "settings": w.settings,
        "staticData": null,
        "tags": w.tags,
    })
}

/// The four stored fields of a write, or n8n's 400.
fn parse_write(body: &Value) -> Result<(String, Vec<Value>, Value, Value), String> {
    let Some(obj) = body.as_object() else {
        return Err("request/body must be object".into());
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| !WRITABLE.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()))
    {
        return Err(format!(
            "request/body must NOT have additional properties: {extra}"
        ));
    }
    for field in WRITABLE {
        if !obj.contains_key(field) {
            return Err(format!(
                "request/body must have required property '{field}'"
            ));
        }
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| String::from("request/body/name must be string"))?;
    let nodes = obj
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| String::from("request/body/nodes must be array"))?;
    let connections = obj.get("connections").cloned().unwrap_or(Value::Null);
    if !connections.is_object() {
        return Err("request/body/connections must be object".into());
    }
    let settings = obj.get("settings").cloned().unwrap_or(Value::Null);
    let Some(settings_obj) = settings.as_object() else {
        return Err("request/body/settings must be object".into());
    };
    if let Some(bad) = settings_obj
        .keys()
        .find(|k| !SETTINGS.contains(&k.as_str()))
    {
        return Err(format!(
            "request/body/settings must NOT have additional properties: {bad}"
        ));
    }
    Ok((name.to_owned(), nodes.clone(), connections, settings))
}

/// The chaos refusal of a workflow write, or `None` (and the write is counted).
fn refused(s: &mut super::State) -> Option<Response> {
    if s.refuse_writes {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "request/body/nodes could not be saved (chaos: writes refused)",
        ));
    }
    s.workflow_writes += 1;
    None
}

/// `POST /api/v1/workflows` (created inactive).
pub async fn create(State(n8n): State<FakeN8n>, Json(body): Json<Value>) -> Response {
    let (name, nodes, connections, settings) = match parse_write(&body) {
        Ok(w) => w,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let mut s = n8n.lock();
    if let Some(refused) = refused(&mut s) {
        return refused;
    }
    let id = s.new_id();
    let now = now_iso();
    let w = Workflow {
        id: id.clone(),
        name,
        active: false,
        nodes,
        connections,
        settings,
        created_at: now.clone(),
        updated_at: now,
        tags: Vec::new(),
        registered: Vec::new(),
    };
    let out = render(&w);
    s.workflows.insert(id, w);
    Json(out).into_response()
}

/// `limit` and `cursor` of every list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    workflow_id: Option<String>,
    active: Option<bool>,
    status: Option<String>,
    /// `/workflows`: names containing it (n8n's `LIKE '%name%'`).
    name: Option<String>,
    /// `/executions`: include each execution's run data.
    include_data: Option<bool>,
}

impl ListQuery {
    /// (offset, limit), n8n's default 100 and maximum 250.
    pub fn window(&self) -> (usize, usize) {
        let offset = self
            .cursor
            .as_deref()
            .and_then(|c| c.strip_prefix("c"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (offset, self.limit.unwrap_or(100).clamp(1, 250))
    }

    /// The workflow filter of `/executions`.
    pub fn workflow_id(&self) -> Option<&str> {
        self.workflow_id.as_deref()
    }

    /// The status filter of `/executions`.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// `includeData` of `/executions`.
    pub fn include_data(&self) -> bool {
        self.include_data.unwrap_or(false)
    }
}

/// `{data, nextCursor}` for one window of `items`.
pub fn page(items: Vec<Value>, q: &ListQuery) -> Value {
    let (offset, limit) = q.window();
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let next = (offset + limit < total).then(|| format!("c{}", offset + limit));
    json!({"data": data, "nextCursor": next})
}

/// `GET /api/v1/workflows`.
pub async fn list(State(n8n): State<FakeN8n>, Query(q): Query<ListQuery>) -> Response {
    let s = n8n.lock();
    let items = s
        .workflows
        .values()
        .filter(|w| q.active.is_none_or(|a| a == w.active))
        .filter(|w| q.name.as_deref().is_none_or(|n| w.name.contains(n)))
        .map(render)
        .collect();
    Json(page(items, &q)).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// `GET /api/v1/workflows/{id}`.
pub async fn get_one(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    match n8n.lock().workflows.get(&id) {
        Some(w) => Json(render(w)).into_response(),
        None => not_found(),
    }
}

/// `PUT /api/v1/workflows/{id}`: replaces name, nodes, connections and settings.
pub async fn update(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let (name, nodes, connections, settings) = match parse_write(&body) {
        Ok(w) => w,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let mut s = n8n.lock();
    if !s.workflows.contains_key(&id) {
        return not_found();
    }
    if let Some(refused) = refused(&mut s) {
        return refused;
    }
    // n8n re-publishes an active workflow with its new definition. When that fails, n8n
    // 2.8.4 keeps the new definition and the workflow stays active, still registered at
    // its old webhooks, which then answer 500; the caller hears why with a 400.
    let republish = match s.workflows.get(&id) {
        Some(w) if w.active => Some(activation_refusal(&s.workflows, &id, &nodes)),
        _ => None,
    };
    let Some(w) = s.workflows.get_mut(&id) else {
        return not_found();
    };
    w.name = name;
    w.nodes = nodes;
    w.connections = connections;
    w.settings = settings;
    w.updated_at = now_iso();
    match republish {
        Some(Some(refusal)) => return error(StatusCode::BAD_REQUEST, refusal),
        Some(None) => w.registered = production_webhooks(&w.id, &w.nodes),
        None => {}
    }
    Json(render(w)).into_response()
}

/// `DELETE /api/v1/workflows/{id}`: answers the deleted workflow.
pub async fn delete(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    match n8n.lock().workflows.remove(&id) {
        Some(w) => Json(render(&w)).into_response(),
        None => not_found(),
    }
}

/// n8n 2.8.4's refusal to publish a workflow that nothing can start.
pub(super) const NO_TRIGGER: &str = "Workflow cannot be activated because it has no trigger node. At least one trigger, webhook, or polling node is required.";
/// n8n 2.8.4's refusal to publish a workflow whose webhook another workflow holds (it names
/// neither).
const CONFLICT: &str = "There is a conflict with one of the webhooks.";

/// A node that can start a workflow on its own (not the manual trigger).
fn is_trigger(node: &Value) -> bool {
    let t = node.get("type").and_then(Value::as_str).unwrap_or_default();
    let disabled = node
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    !disabled
        && t != "n8n-nodes-base.manualTrigger"
        && (t == "n8n-nodes-base.webhook" || t.ends_with("Trigger"))
}

/// Why n8n would refuse to publish workflow `id` with `nodes`: no node can start it, or one
/// of its webhooks is another active workflow's.
fn activation_refusal(
    workflows: &std::collections::BTreeMap<String, Workflow>,
    id: &str,
    nodes: &[Value],
) -> Option<String> {
    if !nodes.iter().any(is_trigger) {
        return Some(NO_TRIGGER.into());
    }
    let hooks = production_webhooks(id, nodes);
    workflows
        .values()
        .filter(|o| o.id != id)
        .flat_map(|o| &o.registered)
        .any(|theirs| {
            hooks
                .iter()
                .any(|h| h.method == theirs.method && h.path == theirs.path)
        })
        .then(|| CONFLICT.to_owned())
}

/// `POST /api/v1/workflows/{id}/activate`.
pub async fn activate(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    body: Option<Json<Map<String, Value>>>,
) -> Response {
    let _ = body;
    let mut s = n8n.lock();
    let Some(w) = s.workflows.get(&id) else {
        return not_found();
    };
    if let Some(refusal) = activation_refusal(&s.workflows, &id, &w.nodes) {
        return error(StatusCode::BAD_REQUEST, refusal);
    }
    let Some(w) = s.workflows.get_mut(&id) else {
        return not_found();
    };
    w.active = true;
    w.registered = production_webhooks(&w.id, &w.nodes);
    w.updated_at = now_iso();
    Json(render(w)).into_response()
}

/// `POST /api/v1/workflows/{id}/deactivate`.
pub async fn deactivate(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    let mut s = n8n.lock();
    let Some(w) = s.workflows.get_mut(&id) else {
        return not_found();
    };
    w.active = false;
    w.registered.clear();
    w.updated_at = now_iso();
    Json(render(w)).into_response()
}

pub(super) use genesis_n8n::production_webhooks;
