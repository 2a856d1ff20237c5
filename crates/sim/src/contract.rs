//! Holding HTTP traffic to a vendor's OpenAPI 3.0 description: every request body and every
//! response (status, headers, body) is checked against the operation it belongs to.
//!
//! The simulators' contract tests wrap a simulator's router with [`checked`]: then the real
//! client's requests and the simulator's answers are both validated on every call, and the
//! [`ContractLog`] lists what broke the contract. A bug on either side shows up as a
//! violation, not as two wrong halves agreeing with each other.
//!
//! OpenAPI 3.0 schemas are JSON Schema draft 4 with extensions; the one that changes meaning,
//! `nullable: true`, is rewritten into draft 4 (`type: [T, "null"]`) when the description
//! loads. Validation uses the `jsonschema` crate.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::HeaderMap,
    middleware::{self, Next},
    response::Response,
};
use serde::Serialize;
use serde_json::{Value, json};

/// DigitalOcean's own OpenAPI description, cut to the fleet's operations
/// (`vendor/digitalocean/README.md`).
pub const DIGITALOCEAN_OPENAPI: &str =
    include_str!("../../../vendor/digitalocean/openapi-fleet-subset.yaml");

/// Largest body the checker reads (DigitalOcean's bodies are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// Not YAML/JSON.
    #[error("the OpenAPI description does not parse: {0}")]
    Parse(String),
    /// Not shaped like OpenAPI 3.0.
    #[error("the OpenAPI description has no {0}")]
    Shape(&'static str),
}

/// One way a message broke the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// `METHOD /path/template`, or the raw path when no operation matches.
    pub operation: String,
    /// `request`, or `response <status>`.
    pub part: String,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

#[derive(Debug)]
struct ResponseSpec {
    schema: Option<Value>,
    headers: Vec<String>,
}

#[derive(Debug)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    request: Option<Value>,
    request_required: bool,
    responses: BTreeMap<String, ResponseSpec>,
}

/// A loaded OpenAPI description with a cache of compiled validators.
pub struct Contract {
    /// Path prefix of the API (`servers[0].url` when it is a path, e.g. n8n's `/api/v1`).
    base_path: String,
    schemas: Value,
    ops: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("operations", &self.ops.len())
            .finish_non_exhaustive()
    }
}

/// Rewrites OpenAPI's `nullable: true` into draft 4, everywhere in `v`.
fn draft4(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                draft4(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = map.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(draft4),
        _ => {}
    }
}

/// Follows a local `$ref` (`#/components/...`) once.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|p| doc.pointer(p))
            .unwrap_or(v),
        None => v,
    }
}

fn json_schema(doc: &Value, content_holder: &Value) -> Option<Value> {
    deref(doc, content_holder)
        .get("content")?
        .get("application/json")?
        .get("schema")
        .cloned()
}

/// One line per failure, with `oneOf`/`anyOf` opened up so the line says which field of
/// which branch failed rather than repeating the whole document.
fn describe(e: &jsonschema::ValidationError<'_>) -> Vec<String> {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::OneOfNotValid { context } | K::AnyOf { context } => context
            .iter()
            .enumerate()
            .flat_map(|(i, errs)| {
                errs.iter()
                    .flat_map(describe)
                    .map(move |line| format!("branch {i}: {line}"))
            })
            .collect(),
        _ => {
            let mut msg = e.to_string();
            if msg.len() > 300 {
                let cut = (0..=300)
                    .rev()
                    .find(|i| msg.is_char_boundary(*i))
                    .unwrap_or(0);
                msg.truncate(cut);
                msg.push('…');
            }
            vec![format!("{}: {msg}", e.instance_path())]
        }
    }
}

impl Contract {
    /// DigitalOcean's API v2 (fleet subset).
    pub fn digitalocean() -> Result<Self, ContractError> {
        Self::from_yaml(DIGITALOCEAN_OPENAPI)
    }

    /// Loads an OpenAPI 3.0 description (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Self, ContractError> {
        let mut doc: Value =
            serde_norway::from_str(text).map_err(|e| ContractError::Parse(e.to_string()))?;
        draft4(&mut doc);
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or(ContractError::Shape("paths"))?;
        let mut ops = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if !["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                    continue;
                }
                let body = op.get("requestBody");
                let responses = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .map(|rs| {
                        rs.iter()
                            .map(|(code, r)| {
                                let headers = deref(&doc, r)
                                    .get("headers")
                                    .and_then(Value::as_object)
                                    .map(|h| h.keys().map(|k| k.to_lowercase()).collect())
                                    .unwrap_or_default();
                                (
                                    code.clone(),
                                    ResponseSpec {
                                        schema: json_schema(&doc, r),
                                        headers,
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ops.push(Operation {
                    method: method.to_uppercase(),
                    template: template.clone(),
                    segments: template
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect(),
                    request: body.and_then(|b| json_schema(&doc, b)),
                    request_required: body
                        .map(|b| deref(&doc, b))
                        .and_then(|b| b.get("required"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    responses,
                });
            }
        }
        let schemas = doc
            .pointer("/components/schemas")
            .cloned()
            .ok_or(ContractError::Shape("components.schemas"))?;
        let base_path = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with('/'))
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            base_path,
            schemas,
            ops,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the schema at `pointer` (under `components/schemas`, e.g.
    /// `/execution/properties/id`) with `schema`: for a documented difference between what a
    /// vendor's server does and what its description says. Each use must say why.
    pub fn with_patch(mut self, pointer: &str, schema: Value) -> Result<Self, ContractError> {
        let slot = self
            .schemas
            .pointer_mut(pointer)
            .ok_or(ContractError::Shape("the patched schema"))?;
        *slot = schema;
        if let Ok(mut cache) = self.validators.lock() {
            cache.clear();
        }
        Ok(self)
    }

    /// The operation serving `method path` (the most literal template wins, as routers do).
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_prefix(&self.base_path).unwrap_or(path);
        let parts: Vec<&str> = path.split('/').collect();
        self.ops
            .iter()
            .filter(|o| o.method == method && o.segments.len() == parts.len())
            .filter(|o| {
                o.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                    Some(lit) => lit == part,
                    None => !part.is_empty(),
                })
            })
            .max_by_key(|o| o.segments.iter().filter(|s| s.is_some()).count())
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        if let Some(v) = self
            .validators
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(v);
        }
        let root = json!({
            "$ref": "#/x-genesis-check",
            "x-genesis-check": schema,
            "components": {"schemas": self.schemas},
        });
        let v = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .build(&root)
                .map_err(|e| format!("schema does not compile: {e}"))?,
        );
        if let Ok(mut m) = self.validators.lock() {
            m.insert(key, v.clone());
        }
        Ok(v)
    }

    fn problems(&self, schema: &Value, body: &[u8]) -> Vec<String> {
        let instance: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return vec![format!("body is not JSON: {e}")],
        };
        match self.validator(schema) {
            Ok(v) => v
                .iter_errors(&instance)
                .flat_map(|e| describe(&e))
                .collect(),
            Err(e) => vec![e],
        }
    }

    /// Checks a request body against its operation.
    pub fn check_request(&self, method: &str, path: &str, body: &[u8]) -> Result<(), Violation> {
        let Some(op) = self.operation(method, path) else {
            return Err(Violation {
                operation: format!("{method} {path}"),
                part: "request".into(),
                problems: vec!["no such operation in the description".into()],
            });
        };
        let problems = match (&op.request, body.is_empty()) {
            (Some(_), true) if op.request_required => vec!["a body is required".into()],
            (Some(schema), false) => self.problems(schema, body),
            (None, false) => vec!["this operation takes no body".into()],
            _ => vec![],
        };
        if problems.is_empty() {
            return Ok(());
        }
        Err(Violation {
            operation: format!("{} {}", op.method, op.template),
            part: "request".into(),
            problems,
        })
    }

    /// Checks a response's status, declared headers and body against its operation.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Violation> {
        let Some(op) = self.operation(method, path) else {
            return Err(Violation {
                operation: format!("{method} {path}"),
                part: format!("response {status}"),
                problems: vec!["no such operation in the description".into()],
            });
        };
        let mut problems = Vec::new();
        match op
            .responses
            .get(&status.to_string())
            .or_else(|| op.responses.get("default"))
        {
            None => problems.push(format!("status {status} is not declared")),
            Some(spec) => {
                for h in &spec.headers {
                    if !headers.contains_key(h.as_str()) {
                        problems.push(format!("header {h} is missing"));
                    }
                }
                match &spec.schema {
                    Some(schema) => {
                        let json_type = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("application/json"));
                        if !json_type {
                            problems.push("content-type is not application/json".into());
                        }
                        problems.extend(self.problems(schema, body));
                    }
                    // No content in the description leaves the body unconstrained (vendors
                    // omit their error bodies), except that a 204 has none by definition.
                    None if status == 204 && !body.is_empty() => {
                        problems.push("a 204 response has a body".into())
                    }
                    None => {}
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Violation {
            operation: format!("{} {}", op.method, op.template),
            part: format!("response {status}"),
            problems,
        })
    }
}

/// What a checked server saw: how many messages, and which broke the contract.
#[derive(Debug)]
pub struct ContractLog {
    contract: Contract,
    prefix: String,
    checked: AtomicU64,
    violations: Mutex<Vec<Violation>>,
}

impl ContractLog {
    /// Checks every request whose path starts with `prefix` (e.g. `/v2/`) against `contract`.
    pub fn new(contract: Contract, prefix: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            contract,
            prefix: prefix.into(),
            checked: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        })
    }

    /// Messages checked (a request and its response count as two).
    pub fn checked(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }

    /// Everything that broke the contract so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    fn record(&self, outcome: Result<(), Violation>) {
        self.checked.fetch_add(1, Ordering::Relaxed);
        if let Err(v) = outcome {
            tracing::warn!(operation = %v.operation, part = %v.part, problems = ?v.problems, "contract violation");
            if let Ok(mut all) = self.violations.lock() {
                all.push(v);
            }
        }
    }
}

/// `router` with every request and response under the log's prefix checked.
pub fn checked(router: axum::Router, log: Arc<ContractLog>) -> axum::Router {
    router.layer(middleware::from_fn_with_state(log, check))
}

async fn check(State(log): State<Arc<ContractLog>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with(&log.prefix) {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    log.record(log.contract.check_request(&method, &path, &bytes));
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    log.record(log.contract.check_response(
        &method,
        &path,
        parts.status.as_u16(),
        &parts.headers,
        &bytes,
    ));
    Response::from_parts(parts, Body::from(bytes))
}
