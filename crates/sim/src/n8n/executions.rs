//! Executions and production webhooks. A call to an active workflow's webhook is checked
//! against the Webhook node's authentication, then the workflow runs ([`super::engine`]) and
//! the caller is answered as the node's `responseMode` says: at once (`onReceived`), with
//! the last node's first item (`lastNode`), or with what a Respond to Webhook node decided
//! (`responseNode`). Every run is an execution, `success` only if every node in its path
//! really ran; `GET /executions?includeData=true` shows its run data and error, as n8n does.

use axum::{
    Json,
    body::to_bytes,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::engine::{self, Credentials, Reply, ReplyBody, Run, Snapshot};
use super::workflows::{ListQuery, page};
use super::{Execution, FakeN8n, error, now_iso};

/// The largest webhook body the fake reads (n8n's default payload limit is 16 MiB).
const MAX_BODY: usize = 16 * 1024 * 1024;

fn render(e: &Execution, include_data: bool) -> Value {
    // n8n 2.8.4 writes ids as strings (its OpenAPI document says numbers).
    let mut v = json!({
        "id": e.id.to_string(),
        "finished": e.status == "success",
        "mode": e.mode,
        "retryOf": null,
        "retrySuccessId": null,
        "status": e.status,
        "startedAt": e.started_at,
        "stoppedAt": e.stopped_at,
        "workflowId": e.workflow_id,
        "waitTill": null,
    });
    if include_data {
        v["data"] = e.data.clone();
        v["customData"] = json!({});
    }
    v
}

/// `GET /api/v1/executions[?workflowId=][&status=][&includeData=]`, newest first.
pub async fn list(State(n8n): State<FakeN8n>, Query(q): Query<ListQuery>) -> Response {
    let s = n8n.lock();
    let items = s
        .executions
        .values()
        .rev()
        .filter(|e| q.workflow_id().is_none_or(|w| w == e.workflow_id))
        .filter(|e| q.status().is_none_or(|st| st == e.status))
        .map(|e| render(e, q.include_data()))
        .collect();
    Json(page(items, &q)).into_response()
}

/// `GET /api/v1/executions/{id}[?includeData=]`.
pub async fn get_one(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let s = n8n.lock();
    match id.parse::<u64>().ok().and_then(|i| s.executions.get(&i)) {
        Some(e) => Json(render(e, q.include_data())).into_response(),
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

/// What a webhook call found: the workflow to run, from which node, and the credentials its
/// nodes name (copied, so the run holds no lock).
struct Found {
    wf: Snapshot,
    start: String,
    credentials: Credentials,
}

/// A workflow as a run needs it, with the credentials its nodes name.
fn snapshot(s: &super::State, w: &super::Workflow) -> (Snapshot, Credentials) {
    let credentials = w
        .nodes
        .iter()
        .filter_map(|n| n.get("credentials").and_then(Value::as_object))
        .flat_map(|c| c.values())
        .filter_map(|r| r.get("id").and_then(Value::as_str))
        .filter_map(|id| {
            s.credentials
                .get(id)
                .map(|c| (id.to_owned(), (c.kind.clone(), c.data.clone())))
        })
        .collect();
    (
        Snapshot {
            id: w.id.clone(),
            nodes: w.nodes.clone(),
            connections: w.connections.clone(),
        },
        credentials,
    )
}

/// Records a running execution of `workflow_id` started by `mode`; its id.
fn start_execution(n8n: &FakeN8n, workflow_id: &str, mode: &'static str) -> u64 {
    let mut s = n8n.lock();
    let id = s.next_execution;
    s.next_execution += 1;
    s.executions.insert(
        id,
        Execution {
            id,
            workflow_id: workflow_id.to_owned(),
            status: "running",
            mode,
            started_at: now_iso(),
            stopped_at: None,
            data: json!({}),
        },
    );
    id
}

/// What one run of a workflow did, for tests.
#[derive(Debug, Clone)]
pub struct TriggeredRun {
    /// The execution's id (see `GET /api/v1/executions/{id}`).
    pub execution_id: u64,
    /// Per node that ran: its output items, per output.
    pub outputs: std::collections::BTreeMap<String, Vec<Vec<Value>>>,
    /// The node that failed the execution, and its message.
    pub error: Option<(String, String)>,
}

impl FakeN8n {
    /// Fires the schedule trigger of active workflow `workflow_id` now, as its timer would,
    /// and runs the workflow to its end. `None` when there is no such active workflow with
    /// a schedule trigger.
    pub async fn fire_schedule(&self, workflow_id: &str) -> Option<TriggeredRun> {
        let (wf, credentials, start) = {
            let s = self.lock();
            let w = s.workflows.get(workflow_id).filter(|w| w.active)?;
            let start = w
                .nodes
                .iter()
                .find(|n| {
                    n.get("type").and_then(Value::as_str) == Some("n8n-nodes-base.scheduleTrigger")
                })?
                .get("name")?
                .as_str()?
                .to_owned();
            let (wf, credentials) = snapshot(&s, w);
            (wf, credentials, start)
        };
        let id = start_execution(self, &wf.id, "trigger");
        let now = chrono::Utc::now();
        // The item n8n's Schedule Trigger emits.
        let item = json!({
            "timestamp": now.to_rfc3339(),
            "Readable date": now.format("%B %-d, %Y, %-I:%M:%S %p").to_string(),
            "Day of week": now.format("%A").to_string(),
            "Timezone": "UTC",
        });
        let run = engine::run(
            &wf,
            &credentials,
            &start,
            item,
            &self.http(),
            &id.to_string(),
        )
        .await;
        finish(self, id, &run);
        let outputs = run
            .run_data
            .iter()
            .filter_map(|(name, data)| {
                let main = data.pointer("/0/data/main")?.as_array()?;
                let per_output = main
                    .iter()
                    .map(|items| {
                        items
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i.get("json").cloned())
                            .collect()
                    })
                    .collect();
                Some((name.clone(), per_output))
            })
            .collect();
        Some(TriggeredRun {
            execution_id: id,
            outputs,
            error: run.error.map(|e| (e.node, e.message)),
        })
    }
}

fn not_registered(method: &str, path: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "code": 404,
            "message": format!("The requested webhook \"{method} {path}\" is not registered."),
            "hint": "The workflow must be active for a production URL to run successfully.",
        })),
    )
        .into_response()
}

fn js_error(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"code": 0, "message": message})),
    )
        .into_response()
}

/// The Webhook node's authentication, checked as n8n checks it: 403 "Authorization data is
/// wrong!" for a wrong or missing header token, 401 for missing basic credentials.
#[allow(
    clippy::result_large_err,
    reason = "the refusal is the handler's answer, returned at once"
)]
fn authorize(found: &Found, headers: &HeaderMap) -> Result<(), Response> {
    let node = found.wf.node(&found.start).cloned().unwrap_or(Value::Null);
    let auth = node
        .pointer("/parameters/authentication")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let credential = |kind: &str| -> Option<&Value> {
        let id = node.pointer(&format!("/credentials/{kind}/id"))?.as_str()?;
        found
            .credentials
            .get(id)
            .filter(|(k, _)| k == kind)
            .map(|(_, d)| d)
    };
    let refuse = |status: StatusCode, text: &'static str| {
        (
            status,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Webhook\"")],
            text,
        )
            .into_response()
    };
    let field = |d: &Value, k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match auth {
        "none" => Ok(()),
        "headerAuth" => {
            let Some(c) = credential("httpHeaderAuth") else {
                return Err(js_error("No authentication data defined on node!"));
            };
            let given = headers
                .get(field(c, "name").as_str())
                .and_then(|v| v.to_str().ok());
            if given == Some(field(c, "value").as_str()) {
                Ok(())
            } else {
                Err(refuse(
                    StatusCode::FORBIDDEN,
                    "Authorization data is wrong!",
                ))
            }
        }
        "basicAuth" => {
            let Some(c) = credential("httpBasicAuth") else {
                return Err(js_error("No authentication data defined on node!"));
            };
            let Some(given) = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
            else {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "Authorization is required!",
                ));
            };
            use base64::Engine as _;
            let expected = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                field(c, "user"),
                field(c, "password")
            ));
            if given == expected {
                Ok(())
            } else {
                Err(refuse(
                    StatusCode::FORBIDDEN,
                    "Authorization data is wrong!",
                ))
            }
        }
        other => Err(js_error(&format!(
            "the fake n8n cannot check {other} webhook authentication"
        ))),
    }
}

/// The Webhook node's output item for this request.
fn webhook_item(headers: &HeaderMap, query: Option<&str>, body: &[u8], url: String) -> Value {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_lowercase(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let query: Map<String, Value> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let kind = headers
        .get("content-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body = if kind.contains("json") {
        serde_json::from_slice(body).unwrap_or_else(|_| json!({}))
    } else if kind.contains("x-www-form-urlencoded") {
        Value::Object(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    } else {
        json!({})
    };
    json!({"headers": headers, "params": {}, "query": query, "body": body,
           "webhookUrl": url, "executionMode": "production"})
}

/// Records how run `id` ended.
fn finish(n8n: &FakeN8n, id: u64, run: &Run) {
    let mut data =
        json!({"resultData": {"runData": run.run_data, "lastNodeExecuted": run.last_node}});
    if let Some(e) = &run.error {
        data["resultData"]["error"] = e.render();
    }
    let mut s = n8n.lock();
    if let Some(e) = s.executions.get_mut(&id) {
        e.status = if run.error.is_some() {
            "error"
        } else {
            "success"
        };
        e.stopped_at = Some(now_iso());
        e.data = data;
    }
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut resp = match r.body {
        ReplyBody::Json(v) => (status, Json(v)).into_response(),
        ReplyBody::Text(t) => (status, t).into_response(),
        ReplyBody::Empty => status.into_response(),
    };
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn workflow_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"message": "Error in workflow"})),
    )
        .into_response()
}

/// `ANY /webhook/{path}`: runs the active workflow listening there.
pub async fn webhook(
    State(n8n): State<FakeN8n>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let method = req.method().as_str().to_uppercase();
    let path = path.trim_matches('/').to_owned();
    let found = {
        let s = n8n.lock();
        let hit = s.workflows.values().find_map(|w| {
            let hook = w
                .registered
                .iter()
                .find(|h| w.active && h.matches(&method, &path))?;
            Some((w, hook.clone()))
        });
        match hit {
            None => return not_registered(&method, &path),
            Some((w, hook)) => {
                if let Some(message) = stale_registration(w, &hook) {
                    return js_error(message);
                }
                let (wf, credentials) = snapshot(&s, w);
                Found {
                    wf,
                    start: hook.node.clone(),
                    credentials,
                }
            }
        }
    };
    let (parts, body) = req.into_parts();
    if let Err(refused) = authorize(&found, &parts.headers) {
        return refused;
    }
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "request entity too large");
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let item = webhook_item(
        &parts.headers,
        parts.uri.query(),
        &body,
        format!("http://{host}/webhook/{path}"),
    );
    let node = found.wf.node(&found.start).cloned().unwrap_or(Value::Null);
    let param = |k: &str| node.pointer(&format!("/parameters/{k}")).cloned();
    let id = start_execution(&n8n, &found.wf.id, "webhook");
    let http = n8n.http();
    let mode = param("responseMode")
        .and_then(|m| m.as_str().map(str::to_owned))
        .unwrap_or_else(|| "onReceived".into());
    let execute = {
        let n8n = n8n.clone();
        async move {
            let run = engine::run(
                &found.wf,
                &found.credentials,
                &found.start,
                item,
                &http,
                &id.to_string(),
            )
            .await;
            finish(&n8n, id, &run);
            run
        }
    };
    match mode.as_str() {
        "lastNode" => {
            let run = execute.await;
            if run.error.is_some() {
                return workflow_error();
            }
            let all = param("options")
                .and_then(|o| {
                    o.get("responseData")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .is_some_and(|d| d == "allEntries");
            if all {
                Json(Value::Array(run.last_items)).into_response()
            } else {
                Json(
                    run.last_items
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| json!({})),
                )
                .into_response()
            }
        }
        "responseNode" => {
            let run = execute.await;
            match (run.error, run.reply) {
                (None, Some(r)) => reply(r),
                (None, None) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"message": "No Respond to Webhook node ran in this execution"})),
                )
                    .into_response(),
                (Some(_), _) => workflow_error(),
            }
        }
        _ => {
            tokio::spawn(execute);
            let status = param("options")
                .and_then(|o| o.get("responseCode").and_then(Value::as_u64))
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
            (status, Json(json!({"message": "Workflow was started"}))).into_response()
        }
    }
}
