//! Executions and production webhooks: calling an active workflow's webhook records an
//! execution; before activation the path is not registered (404).

use axum::{
    Json,
    extract::{Path, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::workflows::{ListQuery, page};
use super::{Execution, FakeN8n, error, now_iso};

fn render(e: &Execution) -> Value {
    // n8n 2.8.4 writes ids as strings (its OpenAPI document says numbers).
    json!({
        "id": e.id.to_string(),
        "finished": e.status == "success",
        "mode": "webhook",
        "retryOf": null,
        "retrySuccessId": null,
        "startedAt": e.started_at,
        "stoppedAt": e.stopped_at,
        "workflowId": e.workflow_id,
        "waitTill": null,
        "customData": {},
        "status": e.status,
    })
}

/// `GET /api/v1/executions[?workflowId=]`, newest first.
pub async fn list(State(n8n): State<FakeN8n>, Query(q): Query<ListQuery>) -> Response {
    let s = n8n.lock();
    let items = s
        .executions
        .values()
        .rev()
        .filter(|e| q.workflow_id().is_none_or(|w| w == e.workflow_id))
        .filter(|e| q.status().is_none_or(|st| st == e.status))
        .map(render)
        .collect();
    Json(page(items, &q)).into_response()
}

/// `GET /api/v1/executions/{id}`.
pub async fn get_one(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    let s = n8n.lock();
    match id.parse::<u64>().ok().and_then(|i| s.executions.get(&i)) {
        Some(e) => Json(render(e)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Why a registration no longer leads anywhere: the workflow was updated after it was
/// published and n8n could not publish the update (no trigger left, a webhook taken). n8n
/// 2.8.4 then fails every call to the old URL with a 500 and a JavaScript error, which is
/// what the fake answers too.
fn stale_registration(
    w: &super::Workflow,
    hook: &genesis_n8n::ProductionWebhook,
) -> Option<&'static str> {
    let current = genesis_n8n::production_webhooks(&w.id, &w.nodes);
    if current.contains(hook) {
        return None;
    }
    let node_there = w
        .nodes
        .iter()
        .any(|n| n.get("name").and_then(Value::as_str) == Some(hook.node.as_str()));
    Some(if node_there {
        "Cannot read properties of undefined (reading 'node')"
    } else {
        "Cannot read properties of null (reading 'disabled')"
    })
}

/// `ANY /webhook/{path}`: runs the active workflow listening there.
pub async fn webhook(
    State(n8n): State<FakeN8n>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let method = req.method().as_str().to_uppercase();
    let path = path.trim_matches('/').to_owned();
    let mut s = n8n.lock();
    let found = s.workflows.values().find_map(|w| {
        let hook = w
            .registered
            .iter()
            .find(|h| w.active && h.matches(&method, &path))?;
        Some((w.id.clone(), stale_registration(w, hook)))
    });
    let Some((workflow_id, stale)) = found else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({
                "code": 404,
                "message": format!("The requested webhook \"{method} {path}\" is not registered."),
                "hint": "The workflow must be active for a production URL to run successfully.",
            })),
        )
            .into_response();
    };
    if let Some(message) = stale {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"code": 0, "message": message})),
        )
            .into_response();
    }
    let id = s.next_execution;
    s.next_execution += 1;
    let now = now_iso();
    s.executions.insert(
        id,
        Execution {
            id,
            workflow_id,
            status: "success",
            started_at: now.clone(),
            stopped_at: now,
        },
    );
    Json(json!({"message": "Workflow was started"})).into_response()
}
