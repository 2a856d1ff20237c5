//! Running a workflow in the fake n8n: what happens after a webhook call, node by node, as
//! n8n 2.8.4 does it for the nodes the fake knows, and a failed execution for every node it
//! does not.
//!
//! The fake runs Webhook and Schedule Trigger (the start), Set (3.3 and later), HTTP
//! Request (4.x: no auth, header, basic or query auth through a generic credential), If
//! (2.x), Split Out (one field), Respond to Webhook, No Operation and the Code node's
//! simplest case, `return <expression>;` (see [`super::expr`]
//! for the expressions). Items flow along `connections.main` in order; a node that receives
//! no items does not run; a disabled node passes its items on; a node with `onError:
//! "continueRegularOutput"` turns its failure into an item. Every other node type fails the
//! execution with a message that names it: an execution is only ever `success` when every
//! node in its path really ran.
//!
//! The HTTP Request node makes real HTTP requests (from the droplet's own address in the
//! simulator), so a Golden Template's call back to the control plane really arrives.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::expr::{self, ExprError, Scope};

/// The most nodes one execution runs (a loop in the connections would otherwise never end).
const MAX_NODE_RUNS: usize = 200;
/// The longest an HTTP Request node waits.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a workflow run needs of the workflow, copied out of the fake's state.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub id: String,
    pub nodes: Vec<Value>,
    pub connections: Value,
}

impl Snapshot {
    pub(crate) fn node(&self, name: &str) -> Option<&Value> {
        self.nodes
            .iter()
            .find(|n| n.get("name").and_then(Value::as_str) == Some(name))
    }
}

/// Credentials by id: (type, data).
pub(crate) type Credentials = BTreeMap<String, (String, Value)>;

/// A node's failure, as n8n records it on the execution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeError {
    pub node: String,
    pub node_type: String,
    /// `NodeApiError`, `NodeOperationError`, `ExpressionError`.
    pub name: &'static str,
    pub message: String,
}

impl NodeError {
    pub(crate) fn render(&self) -> Value {
        json!({
            "name": self.name,
            "message": self.message,
            "node": {"name": self.node, "type": self.node_type},
        })
    }
}

/// What the Respond to Webhook node decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyBody {
    Json(Value),
    Text(String),
    Empty,
}

/// How a run went.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// Per node: its outputs (items' JSON per output), as `runData` keeps them.
    pub run_data: Map<String, Value>,
    pub last_node: Option<String>,
    /// The last node's first output items (what `responseMode: lastNode` answers).
    pub last_items: Vec<Value>,
    pub error: Option<NodeError>,
    pub reply: Option<Reply>,
}

struct ItemScope<'a> {
    json: &'a Value,
    input: &'a [Value],
    index: usize,
    outputs: &'a HashMap<String, Vec<Value>>,
    execution_id: &'a str,
    workflow_id: &'a str,
}

impl Scope for ItemScope<'_> {
    fn json(&self) -> Value {
        self.json.clone()
    }
    fn input(&self) -> Vec<Value> {
        self.input.to_vec()
    }
    fn node_output(&self, name: &str) -> Option<Vec<Value>> {
        self.outputs.get(name).cloned()
    }
    fn item_index(&self) -> usize {
        self.index
    }
    fn execution_id(&self) -> String {
        self.execution_id.to_owned()
    }
    fn workflow_id(&self) -> String {
        self.workflow_id.to_owned()
    }
}

/// The parameters of one node for one item, expressions resolved.
struct Params<'a> {
    raw: &'a Value,
    scope: ItemScope<'a>,
}

impl Params<'_> {
    fn get(&self, key: &str) -> Result<Option<Value>, ExprError> {
        match self.raw.get(key) {
            None => Ok(None),
            Some(v) => expr::resolve(v, &self.scope).map(Some),
        }
    }

    fn string(&self, key: &str, default: &str) -> Result<String, ExprError> {
        Ok(match self.get(key)? {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => default.to_owned(),
            Some(other) => expr::Js::Json(other).to_text(),
        })
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ExprError> {
        Ok(match self.get(key)? {
            Some(Value::Bool(b)) => b,
            _ => default,
        })
    }

    /// `{name, value}` pairs of a fixed collection (`headerParameters.parameters`).
    fn pairs(&self, key: &str) -> Result<Vec<(String, Value)>, ExprError> {
        Ok(self
            .get(key)?
            .and_then(|v| v.get("parameters").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?.to_owned();
                Some((name, p.get("value").cloned().unwrap_or(Value::Null)))
            })
            .collect())
    }
}

fn node_str<'a>(node: &'a Value, key: &str) -> &'a str {
    node.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn type_version(node: &Value) -> f64 {
    node.get("typeVersion")
        .and_then(Value::as_f64)
        .unwrap_or(1.0)
}

/// Runs `wf` from node `start` with one item, `first` (a Webhook node's output).
pub(crate) async fn run(
    wf: &Snapshot,
    credentials: &Credentials,
    start: &str,
    first: Value,
    http: &reqwest::Client,
    execution_id: &str,
) -> Run {
    let mut out = Run {
        run_data: Map::new(),
        last_node: None,
        last_items: Vec::new(),
        error: None,
        reply: None,
    };
    let mut outputs: HashMap<String, Vec<Value>> = HashMap::new();
    let mut queue: VecDeque<(String, Vec<Value>)> =
        VecDeque::from([(start.to_owned(), vec![first])]);
    let mut runs = 0;
    while let Some((name, input)) = queue.pop_front() {
        runs += 1;
        let Some(node) = wf.node(&name) else {
            continue;
        };
        let started = Instant::now();
        let node_type = node_str(node, "type").to_owned();
        let result = if runs > MAX_NODE_RUNS {
            Err(NodeError {
                node: name.clone(),
                node_type: node_type.clone(),
                name: "NodeOperationError",
                message: format!("more than {MAX_NODE_RUNS} node runs: a loop in the connections"),
            })
        } else if name == start || node.get("disabled").and_then(Value::as_bool) == Some(true) {
            Ok(vec![input.clone()])
        } else {
            let ctx = Ctx {
                node,
                name: &name,
                node_type: &node_type,
                input: &input,
                outputs: &outputs,
                credentials,
                execution_id,
                workflow_id: &wf.id,
            };
            match run_node(&ctx, http, &mut out.reply).await {
                Err(e) if continues_on_fail(node) => Ok(vec![vec![json!({"error": e.message})]]),
                other => other,
            }
        };
        let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        out.last_node = Some(name.clone());
        match result {
            Ok(produced) => {
                let main: Vec<Value> = produced
                    .iter()
                    .map(|items| Value::Array(items.iter().map(|j| json!({"json": j})).collect()))
                    .collect();
                out.run_data.insert(
                    name.clone(),
                    json!([{"executionTime": elapsed, "executionStatus": "success", "data": {"main": main}}]),
                );
                out.last_items = produced.first().cloned().unwrap_or_default();
                outputs.insert(name.clone(), produced.iter().flatten().cloned().collect());
                for (i, items) in produced.into_iter().enumerate() {
                    if items.is_empty() {
                        continue;
                    }
                    for target in targets(&wf.connections, &name, i) {
                        queue.push_back((target, items.clone()));
                    }
                }
            }
            Err(e) => {
                out.run_data.insert(
                    name.clone(),
                    json!([{"executionTime": elapsed, "executionStatus": "error", "error": e.render()}]),
                );
                out.error = Some(e);
                return out;
            }
        }
    }
    out
}

fn continues_on_fail(node: &Value) -> bool {
    node.get("onError").and_then(Value::as_str) == Some("continueRegularOutput")
        || node.get("continueOnFail").and_then(Value::as_bool) == Some(true)
}

/// The nodes output `index` of `from` leads to, in order.
fn targets(connections: &Value, from: &str, index: usize) -> Vec<String> {
    connections
        .get(from)
        .and_then(|c| c.get("main"))
        .and_then(|m| m.get(index))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("node").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

struct Ctx<'a> {
    node: &'a Value,
    name: &'a str,
    node_type: &'a str,
    input: &'a [Value],
    outputs: &'a HashMap<String, Vec<Value>>,
    credentials: &'a Credentials,
    execution_id: &'a str,
    workflow_id: &'a str,
}

impl<'a> Ctx<'a> {
    fn params(&self, index: usize) -> Params<'a> {
        static EMPTY: Value = Value::Null;
        Params {
            raw: self.node.get("parameters").unwrap_or(&EMPTY),
            scope: ItemScope {
                json: self.input.get(index).unwrap_or(&EMPTY),
                input: self.input,
                index,
                outputs: self.outputs,
                execution_id: self.execution_id,
                workflow_id: self.workflow_id,
            },
        }
    }

    fn fail(&self, name: &'static str, message: impl Into<String>) -> NodeError {
        NodeError {
            node: self.name.to_owned(),
            node_type: self.node_type.to_owned(),
            name,
            message: message.into(),
        }
    }

    fn expression(&self, e: ExprError) -> NodeError {
        self.fail("ExpressionError", e.0)
    }

    /// The data of the credential of `kind` the node names.
    fn credential(&self, kind: &str) -> Result<&'a Value, NodeError> {
        let id = self
            .node
            .get("credentials")
            .and_then(|c| c.get(kind))
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.fail(
                    "NodeOperationError",
                    "Node does not have any credentials set",
                )
            })?;
        match self.credentials.get(id) {
            Some((k, data)) if k == kind => Ok(data),
            _ => Err(self.fail(
                "NodeOperationError",
                format!("Credential with ID \"{id}\" does not exist for type \"{kind}\"."),
            )),
        }
    }
}

async fn run_node(
    ctx: &Ctx<'_>,
    http: &reqwest::Client,
    reply: &mut Option<Reply>,
) -> Result<Vec<Vec<Value>>, NodeError> {
    match ctx.node_type {
        "n8n-nodes-base.noOp" => Ok(vec![ctx.input.to_vec()]),
        "n8n-nodes-base.set" => set(ctx).map(|items| vec![items]),
        "n8n-nodes-base.if" => if_node(ctx),
        "n8n-nodes-base.httpRequest" => {
            let mut items = Vec::new();
            for i in 0..ctx.input.len() {
                items.extend(http_request(ctx, i, http).await?);
            }
            Ok(vec![items])
        }
        "n8n-nodes-base.respondToWebhook" => {
            if reply.is_none() {
                *reply = Some(respond(ctx)?);
            }
            Ok(vec![ctx.input.to_vec()])
        }
        "n8n-nodes-base.code" => code(ctx).map(|items| vec![items]),
        "n8n-nodes-base.splitOut" => split_out(ctx).map(|items| vec![items]),
        other => Err(ctx.fail(
            "NodeOperationError",
            format!(
                "the fake n8n cannot run nodes of type {other} (node \"{}\")",
                ctx.name
            ),
        )),
    }
}

/// Split Out 1, as n8n 2.8.4 runs it for one field: each element of the field's list becomes
/// an item (an object element is the item itself unless other fields are included; any
/// other element is `{field: element}`); a field that is not a list splits into itself; an
/// item without the field yields nothing. The fake splits one field, and includes no other
/// fields or all of them.
fn split_out(ctx: &Ctx<'_>) -> Result<Vec<Value>, NodeError> {
    let mut out = Vec::new();
    for (i, item) in ctx.input.iter().enumerate() {
        let p = ctx.params(i);
        let x = |e| ctx.expression(e);
        let field = p.string("fieldToSplitOut", "").map_err(x)?;
        let field = field.trim();
        let field = field.strip_prefix("$json.").unwrap_or(field);
        if field.is_empty() || field.contains(',') {
            return Err(ctx.fail(
                "NodeOperationError",
                "the fake n8n splits out exactly one field",
            ));
        }
        let include = p.string("include", "noOtherFields").map_err(x)?;
        if include != "noOtherFields" && include != "allOtherFields" {
            return Err(ctx.fail(
                "NodeOperationError",
                format!("the fake n8n does not split out with include {include}"),
            ));
        }
        let found = field.split('.').try_fold(item, |v, k| v.get(k));
        let elements: Vec<Value> = match found {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Object(o)) => o.values().cloned().collect(),
            Some(other) => vec![other.clone()],
        };
        for element in elements {
            let mut json = match (&element, include.as_str()) {
                (Value::Object(_), "noOtherFields") => element,
                _ => json!({ field: element }),
            };
            if include == "allOtherFields"
                && let (Value::Object(rest), Value::Object(own)) = (item, &mut json)
            {
                let top = field.split('.').next().unwrap_or(field);
                for (k, v) in rest {
                    if k != top && !own.contains_key(k) {
                        own.insert(k.clone(), v.clone());
                    }
                }
            }
            out.push(json);
        }
    }
    Ok(out)
}

/// Set 3.3 and later: `assignments.assignments[]` of `{name, value, type}`.
fn set(ctx: &Ctx<'_>) -> Result<Vec<Value>, NodeError> {
    if type_version(ctx.node) < 3.3 {
        return Err(ctx.fail(
            "NodeOperationError",
            "the fake n8n runs Set nodes of typeVersion 3.3 and later",
        ));
    }
    let mut out = Vec::new();
    for (i, item) in ctx.input.iter().enumerate() {
        let p = ctx.params(i);
        if p.string("mode", "manual").map_err(|e| ctx.expression(e))? != "manual" {
            return Err(ctx.fail(
                "NodeOperationError",
                "the fake n8n runs Set nodes in manual mode only",
            ));
        }
        let include = p
            .boolean("includeOtherFields", false)
            .map_err(|e| ctx.expression(e))?;
        let mut json = if include { item.clone() } else { json!({}) };
        let assignments = p
            .get("assignments")
            .map_err(|e| ctx.expression(e))?
            .and_then(|a| a.get("assignments").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        for a in assignments {
            let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
            let kind = a.get("type").and_then(Value::as_str).unwrap_or("string");
            let value = convert(a.get("value").cloned().unwrap_or(Value::Null), kind)
                .map_err(|m| ctx.fail("NodeOperationError", format!("'{name}' {m}")))?;
            set_path(&mut json, name, value);
        }
        out.push(json);
    }
    Ok(out)
}

/// A Set assignment's value as its declared type, as n8n converts it.
fn convert(v: Value, kind: &str) -> Result<Value, String> {
    Ok(match (kind, v) {
        ("string", Value::String(s)) => Value::String(s),
        ("string", Value::Null) => Value::String(String::new()),
        ("string", other) => Value::String(expr::Js::Json(other).to_text()),
        ("number", Value::Number(n)) => Value::Number(n),
        ("number", Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => expr::num(f).into_json(),
            _ => return Err(format!("expects a number but we got '{s}'")),
        },
        ("boolean", Value::Bool(b)) => Value::Bool(b),
        ("boolean", Value::String(s)) if s == "true" || s == "false" => Value::Bool(s == "true"),
        ("array", Value::Array(a)) => Value::Array(a),
        ("object", Value::Object(o)) => Value::Object(o),
        ("array" | "object", Value::String(s)) => {
            serde_json::from_str(&s).map_err(|_| format!("expects an {kind} but we got '{s}'"))?
        }
        (kind, v) => return Err(format!("expects a {kind} but we got {v}")),
    })
}

/// Sets `a.b.c` in `json` (n8n's dot notation), making objects on the way.
fn set_path(json: &mut Value, path: &str, value: Value) {
    let mut here = json;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !here.is_object() {
            *here = json!({});
        }
        let Some(obj) = here.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            obj.insert(part.to_owned(), value);
            return;
        }
        here = obj.entry(part.to_owned()).or_insert_with(|| json!({}));
    }
}

/// If 2.x: a filter of conditions, items to output 0 (true) or 1 (false).
fn if_node(ctx: &Ctx<'_>) -> Result<Vec<Vec<Value>>, NodeError> {
    if type_version(ctx.node) < 2.0 {
        return Err(ctx.fail(
            "NodeOperationError",
            "the fake n8n runs If nodes of typeVersion 2 and later",
        ));
    }
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for (i, item) in ctx.input.iter().enumerate() {
        let p = ctx.params(i);
        let filter = p
            .get("conditions")
            .map_err(|e| ctx.expression(e))?
            .unwrap_or(Value::Null);
        // n8n 2.8.4 evaluates a filter without its combinator and options to true for every
        // item (found with a real n8n: the Golden Template's token check let everything
        // through). The fake refuses to guess.
        let (Some(combinator), Some(options)) = (
            filter.get("combinator").and_then(Value::as_str),
            filter.get("options"),
        ) else {
            return Err(ctx.fail(
                "NodeOperationError",
                "the If node's conditions lack `combinator` and `options`; n8n 2.8.4 would let every item through",
            ));
        };
        let case_sensitive = options
            .get("caseSensitive")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let conditions = filter
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut results = Vec::new();
        for c in &conditions {
            results
                .push(condition(c, case_sensitive).map_err(|m| ctx.fail("NodeOperationError", m))?);
        }
        let pass = match combinator {
            "and" => results.iter().all(|r| *r),
            "or" => results.iter().any(|r| *r),
            other => {
                return Err(ctx.fail(
                    "NodeOperationError",
                    format!("Unknown filter combinator \"{other}\""),
                ));
            }
        };
        if pass {
            yes.push(item.clone())
        } else {
            no.push(item.clone())
        }
    }
    Ok(vec![yes, no])
}

fn condition(c: &Value, case_sensitive: bool) -> Result<bool, String> {
    let op = c.get("operator").cloned().unwrap_or(Value::Null);
    let kind = op.get("type").and_then(Value::as_str).unwrap_or("string");
    let operation = op
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("equals");
    let left = c.get("leftValue").cloned().unwrap_or(Value::Null);
    let right = c.get("rightValue").cloned().unwrap_or(Value::Null);
    let exists = !left.is_null();
    match operation {
        "exists" => return Ok(exists),
        "notExists" => return Ok(!exists),
        _ => {}
    }
    match kind {
        "string" => {
            let text = |v: &Value| -> Result<String, String> {
                let s = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => return Err(format!("Wrong type: '{other}' is not a string")),
                };
                Ok(if case_sensitive { s } else { s.to_lowercase() })
            };
            let (l, r) = (text(&left)?, text(&right)?);
            Ok(match operation {
                "empty" => l.is_empty(),
                "notEmpty" => !l.is_empty(),
                "equals" => l == r,
                "notEquals" => l != r,
                "contains" => l.contains(&r),
                "notContains" => !l.contains(&r),
                "startsWith" => l.starts_with(&r),
                "notStartsWith" => !l.starts_with(&r),
                "endsWith" => l.ends_with(&r),
                "notEndsWith" => !l.ends_with(&r),
                other => {
                    return Err(format!(
                        "the fake n8n does not run the string operation {other}"
                    ));
                }
            })
        }
        "number" => {
            let n = |v: &Value| match v {
                Value::Number(n) => Ok(n.as_f64()),
                Value::Null => Ok(None),
                other => Err(format!("Wrong type: '{other}' is not a number")),
            };
            let (l, r) = (n(&left)?, n(&right)?);
            Ok(match (operation, l, r) {
                ("empty", l, _) => l.is_none(),
                ("notEmpty", l, _) => l.is_some(),
                ("equals", l, r) => l == r,
                ("notEquals", l, r) => l != r,
                ("gt", Some(l), Some(r)) => l > r,
                ("lt", Some(l), Some(r)) => l < r,
                ("gte", Some(l), Some(r)) => l >= r,
                ("lte", Some(l), Some(r)) => l <= r,
                ("gt" | "lt" | "gte" | "lte", _, _) => false,
                (other, _, _) => {
                    return Err(format!(
                        "the fake n8n does not run the number operation {other}"
                    ));
                }
            })
        }
        "boolean" => {
            let b = match &left {
                Value::Bool(b) => Some(*b),
                Value::Null => None,
                other => return Err(format!("Wrong type: '{other}' is not a boolean")),
            };
            Ok(match operation {
                "true" => b == Some(true),
                "false" => b == Some(false),
                "equals" => b == right.as_bool(),
                "notEquals" => b != right.as_bool(),
                "empty" => b.is_none(),
                "notEmpty" => b.is_some(),
                other => {
                    return Err(format!(
                        "the fake n8n does not run the boolean operation {other}"
                    ));
                }
            })
        }
        other => Err(format!("the fake n8n does not run {other} conditions")),
    }
}

/// HTTP Request 4.x for one item.
async fn http_request(
    ctx: &Ctx<'_>,
    i: usize,
    http: &reqwest::Client,
) -> Result<Vec<Value>, NodeError> {
    if type_version(ctx.node) < 4.0 {
        return Err(ctx.fail(
            "NodeOperationError",
            "the fake n8n runs HTTP Request nodes of typeVersion 4 and later",
        ));
    }
    let p = ctx.params(i);
    let x = |e| ctx.expression(e);
    let method = p.string("method", "GET").map_err(x)?.to_uppercase();
    let url = p.string("url", "").map_err(x)?;
    let mut parsed = reqwest::Url::parse(&url)
        .map_err(|_| ctx.fail("NodeOperationError", format!("Invalid URL: {url}")))?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
        ctx.fail(
            "NodeOperationError",
            format!("not an HTTP method: {method}"),
        )
    })?;
    let mut query: Vec<(String, String)> = Vec::new();
    if p.boolean("sendQuery", false).map_err(x)? {
        query.extend(
            p.pairs("queryParameters")
                .map_err(x)?
                .into_iter()
                .map(|(k, v)| (k, expr::Js::Json(v).to_text())),
        );
    }
    let auth = p.string("authentication", "none").map_err(x)?;
    let generic = p.string("genericAuthType", "").map_err(x)?;
    if auth == "genericCredentialType" && generic == "httpQueryAuth" {
        let c = ctx.credential("httpQueryAuth")?;
        query.push((
            node_str(c, "name").to_owned(),
            node_str(c, "value").to_owned(),
        ));
    }
    if !query.is_empty() {
        parsed.query_pairs_mut().extend_pairs(query);
    }
    let mut req = http.request(method, parsed).timeout(HTTP_TIMEOUT);
    match auth.as_str() {
        "none" => {}
        "genericCredentialType" => match generic.as_str() {
            "httpHeaderAuth" => {
                let c = ctx.credential("httpHeaderAuth")?;
                req = req.header(node_str(c, "name"), node_str(c, "value"));
            }
            "httpBasicAuth" => {
                let c = ctx.credential("httpBasicAuth")?;
                req = req.basic_auth(node_str(c, "user"), Some(node_str(c, "password")));
            }
            "httpQueryAuth" => {}
            other => {
                return Err(ctx.fail(
                    "NodeOperationError",
                    format!("the fake n8n does not send {other} credentials"),
                ));
            }
        },
        other => {
            return Err(ctx.fail(
                "NodeOperationError",
                format!("the fake n8n cannot authenticate with {other} (only generic credentials)"),
            ));
        }
    }
    if p.boolean("sendHeaders", false).map_err(x)? {
        for (k, v) in p.pairs("headerParameters").map_err(x)? {
            req = req.header(k, expr::Js::Json(v).to_text());
        }
    }
    if p.boolean("sendBody", false).map_err(x)? {
        let content = p.string("contentType", "json").map_err(x)?;
        let specify = p.string("specifyBody", "keypair").map_err(x)?;
        let body: Value = if specify == "json" {
            match p.get("jsonBody").map_err(x)? {
                Some(Value::String(s)) => serde_json::from_str(&s).map_err(|_| {
                    ctx.fail(
                        "NodeOperationError",
                        "JSON parameter needs to be valid JSON",
                    )
                })?,
                Some(other) => other,
                None => json!({}),
            }
        } else {
            Value::Object(p.pairs("bodyParameters").map_err(x)?.into_iter().collect())
        };
        req = match content.as_str() {
            "json" => req.json(&body),
            "form-urlencoded" => {
                let form: Vec<(String, String)> = body
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), expr::Js::Json(v.clone()).to_text()))
                    .collect();
                req.form(&form)
            }
            other => {
                return Err(ctx.fail(
                    "NodeOperationError",
                    format!("the fake n8n does not send {other} bodies"),
                ));
            }
        };
    }
    let resp = req.send().await.map_err(|e| {
        ctx.fail(
            "NodeApiError",
            format!("The connection cannot be established: {e}"),
        )
    })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| ctx.fail("NodeApiError", format!("The connection was aborted: {e}")))?;
    let never_error = ctx
        .node
        .pointer("/parameters/options/response/response/neverError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !status.is_success() && !never_error {
        return Err(ctx.fail(
            "NodeApiError",
            format!("{} - {}", status.as_u16(), Value::String(text)),
        ));
    }
    Ok(match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Object(o)) => vec![Value::Object(o)],
        Ok(other) => vec![json!({"data": other})],
        Err(_) if text.is_empty() => vec![json!({})],
        Err(_) => vec![json!({"data": text})],
    })
}

/// Respond to Webhook: the answer the webhook's caller gets.
fn respond(ctx: &Ctx<'_>) -> Result<Reply, NodeError> {
    let p = ctx.params(0);
    let x = |e| ctx.expression(e);
    let status = p
        .get("options")
        .map_err(x)?
        .and_then(|o| o.get("responseCode").and_then(Value::as_u64))
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(200);
    let headers = p
        .get("options")
        .map_err(x)?
        .and_then(|o| {
            o.pointer("/responseHeaders/entries")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            Some((
                e.get("name")?.as_str()?.to_owned(),
                e.get("value")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let body = match p
        .string("respondWith", "firstIncomingItem")
        .map_err(x)?
        .as_str()
    {
        "firstIncomingItem" => ReplyBody::Json(ctx.input.first().cloned().unwrap_or(json!({}))),
        "allIncomingItems" => ReplyBody::Json(Value::Array(ctx.input.to_vec())),
        "json" => match p.get("responseBody").map_err(x)? {
            Some(Value::String(s)) => ReplyBody::Json(serde_json::from_str(&s).map_err(|_| {
                ctx.fail(
                    "NodeOperationError",
                    "Invalid JSON in 'Response Body' field",
                )
            })?),
            Some(v) => ReplyBody::Json(v),
            None => ReplyBody::Json(json!({})),
        },
        "text" => ReplyBody::Text(p.string("responseBody", "").map_err(x)?),
        "noData" => ReplyBody::Empty,
        other => {
            return Err(ctx.fail(
                "NodeOperationError",
                format!("the fake n8n does not respond with {other}"),
            ));
        }
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// The Code node's simplest case: `return <expression>;`, in JavaScript, once for all items
/// (with `items` and `$input`) or once per item (with `$json` too).
fn code(ctx: &Ctx<'_>) -> Result<Vec<Value>, NodeError> {
    let p = ctx.params(0);
    let x = |e| ctx.expression(e);
    if p.string("language", "javaScript").map_err(x)? != "javaScript" {
        return Err(ctx.fail(
            "NodeOperationError",
            "the fake n8n runs JavaScript Code nodes only",
        ));
    }
    let source = p.string("jsCode", "").map_err(x)?;
    let body: String = source
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join(" ");
    let Some(expression) = body
        .strip_prefix("return ")
        .map(|e| e.trim().trim_end_matches(';'))
        .filter(|e| !e.contains(';') && !e.contains("=>") && !e.contains("return "))
    else {
        return Err(ctx.fail(
            "NodeOperationError",
            "the fake n8n runs only Code nodes that are one `return <expression>;`",
        ));
    };
    let each = p.string("mode", "runOnceForAllItems").map_err(x)? == "runOnceForEachItem";
    let mut out = Vec::new();
    let runs = if each { ctx.input.len() } else { 1 };
    for i in 0..runs {
        let p = ctx.params(i);
        let mut locals = BTreeMap::new();
        locals.insert(
            "items".to_owned(),
            Value::Array(ctx.input.iter().map(|j| json!({"json": j})).collect()),
        );
        let value = expr::evaluate(expression, &p.scope, &locals)
            .map_err(x)?
            .into_json();
        let produced = match value {
            Value::Array(a) => a,
            Value::Object(_) => vec![value],
            other => {
                return Err(ctx.fail(
                    "NodeOperationError",
                    format!("Code doesn't return items properly: {other}"),
                ));
            }
        };
        for v in produced {
            match v {
                Value::Object(mut o) => out.push(match o.remove("json") {
                    Some(j @ Value::Object(_)) => j,
                    Some(_) => {
                        return Err(
                            ctx.fail("NodeOperationError", "A 'json' property isn't an object")
                        );
                    }
                    None => Value::Object(o),
                }),
                other => {
                    return Err(ctx.fail(
                        "NodeOperationError",
                        format!("Code doesn't return items properly: {other} is not an object"),
                    ));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(nodes: Value, connections: Value) -> Snapshot {
        Snapshot {
            id: "w1".into(),
            nodes: nodes.as_array().cloned().unwrap_or_default(),
            connections,
        }
    }

    fn hook() -> Value {
        json!({"name": "Hook", "type": "n8n-nodes-base.webhook", "typeVersion": 2, "parameters": {}})
    }

    async fn go(w: &Snapshot, first: Value) -> Run {
        run(
            w,
            &Credentials::new(),
            "Hook",
            first,
            &reqwest::Client::new(),
            "1",
        )
        .await
    }

    #[tokio::test]
    async fn set_if_code_and_respond_run_as_n8n_runs_them() {
        let w = wf(
            json!([hook(),
                {"name": "Tag", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "parameters": {
                    "assignments": {"assignments": [
                        {"name": "email", "value": "={{ $json.body.email.toLowerCase() }}", "type": "string"},
                        {"name": "score.value", "value": "={{ $json.body.n }}", "type": "number"}]},
                    "includeOtherFields": false}},
                {"name": "Big?", "type": "n8n-nodes-base.if", "typeVersion": 2.2, "parameters": {
                    "conditions": {"options": {"caseSensitive": true, "typeValidation": "strict"},
                        "combinator": "and", "conditions": [{"leftValue": "={{ $json.score.value }}", "rightValue": 10,
                            "operator": {"type": "number", "operation": "gt"}}]}}},
                {"name": "Shape", "type": "n8n-nodes-base.code", "typeVersion": 2, "parameters": {
                    "jsCode": "// one line\nreturn [{ json: { who: $input.first().json.email, big: true } }];"}},
                {"name": "Answer", "type": "n8n-nodes-base.respondToWebhook", "typeVersion": 1.1, "parameters": {
                    "respondWith": "json", "responseBody": "={{ JSON.stringify({ ok: $json.who }) }}",
                    "options": {"responseCode": 201}}}
            ]),
            json!({"Hook": {"main": [[{"node": "Tag", "type": "main", "index": 0}]]},
                   "Tag": {"main": [[{"node": "Big?", "type": "main", "index": 0}]]},
                   "Big?": {"main": [[{"node": "Shape", "type": "main", "index": 0}], []]},
                   "Shape": {"main": [[{"node": "Answer", "type": "main", "index": 0}]]}}),
        );
        let big = go(
            &w,
            json!({"body": {"email": "ADA@acme.example", "n": "12"}}),
        )
        .await;
        assert_eq!(big.error, None);
        assert_eq!(
            big.reply,
            Some(Reply {
                status: 201,
                headers: vec![],
                body: ReplyBody::Json(json!({"ok": "ada@acme.example"}))
            })
        );
        assert_eq!(big.last_node.as_deref(), Some("Answer"));
        let small = go(&w, json!({"body": {"email": "b@x.y", "n": "2"}})).await;
        assert_eq!(small.error, None);
        assert_eq!(small.reply, None, "the false branch leads nowhere");
        assert_eq!(small.last_node.as_deref(), Some("Big?"));
        assert!(small.run_data.get("Shape").is_none());
    }

    #[tokio::test]
    async fn what_the_fake_cannot_run_fails_the_execution_and_names_it() {
        let w = wf(
            json!([hook(), {"name": "Write", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 1, "parameters": {}}]),
            json!({"Hook": {"main": [[{"node": "Write", "type": "main", "index": 0}]]}}),
        );
        let r = go(&w, json!({})).await;
        let e = r.error.expect("failed");
        assert_eq!(e.node, "Write");
        assert!(
            e.message.contains("@n8n/n8n-nodes-langchain.openAi"),
            "{}",
            e.message
        );
        let broken_if = wf(
            json!([hook(), {"name": "Check", "type": "n8n-nodes-base.if", "typeVersion": 2, "parameters": {
                "conditions": {"conditions": [{"leftValue": "={{ $json.x }}", "rightValue": "y",
                    "operator": {"type": "string", "operation": "equals"}}]}}}]),
            json!({"Hook": {"main": [[{"node": "Check", "type": "main", "index": 0}]]}}),
        );
        assert!(
            go(&broken_if, json!({})).await.error.is_some(),
            "a filter n8n would pass everything through is refused"
        );
        let code = wf(
            json!([hook(), {"name": "Loop", "type": "n8n-nodes-base.code", "typeVersion": 2,
                "parameters": {"jsCode": "for (const i of items) { i.json.x = 1 }\nreturn items;"}}]),
            json!({"Hook": {"main": [[{"node": "Loop", "type": "main", "index": 0}]]}}),
        );
        assert!(go(&code, json!({})).await.error.is_some());
        let mut lenient = wf(
            json!([hook(), {"name": "Write", "type": "x.unknown", "onError": "continueRegularOutput", "parameters": {}}]),
            json!({"Hook": {"main": [[{"node": "Write", "type": "main", "index": 0}]]}}),
        );
        assert_eq!(
            go(&lenient, json!({})).await.error,
            None,
            "onError: continueRegularOutput"
        );
        lenient.nodes[1]["disabled"] = json!(true);
        lenient.nodes[1]
            .as_object_mut()
            .map(|n| n.remove("onError"));
        assert_eq!(
            go(&lenient, json!({})).await.error,
            None,
            "a disabled node passes items on"
        );
    }

    #[test]
    fn set_paths_and_conversions() {
        let mut j = json!({"a": 1});
        set_path(&mut j, "b.c", json!(2));
        assert_eq!(j, json!({"a": 1, "b": {"c": 2}}));
        assert_eq!(convert(json!("5"), "number"), Ok(json!(5)));
        assert!(convert(json!("five"), "number").is_err());
        assert_eq!(convert(json!(5), "string"), Ok(json!("5")));
        assert_eq!(convert(json!("true"), "boolean"), Ok(json!(true)));
    }
}
