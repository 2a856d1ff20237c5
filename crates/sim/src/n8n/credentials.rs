//! `/api/v1/credentials...`, with a small catalog of credential types and their schemas.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::workflows::{ListQuery, page};
use super::{Credential, FakeN8n, error, now_iso};

/// Credential types the fake knows, with their required data fields.
const TYPES: [(&str, &[&str]); 6] = [
    ("httpHeaderAuth", &["name", "value"]),
    ("openAiApi", &["apiKey"]),
    ("gmailOAuth2", &["clientId", "clientSecret"]),
    ("googleSheetsOAuth2Api", &["clientId", "clientSecret"]),
    ("postgres", &["host", "database", "user", "password"]),
    ("supabaseApi", &["host", "serviceRole"]),
];

fn required_fields(kind: &str) -> Option<&'static [&'static str]> {
    TYPES.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)
}

fn render(c: &Credential) -> Value {
    json!({"id": c.id, "name": c.name, "type": c.kind, "createdAt": c.created_at, "updatedAt": c.updated_at})
}

fn check_data(kind: &str, data: &Value) -> Result<(), String> {
    let Some(fields) = required_fields(kind) else {
        return Err(format!("req.body.type is not a known type: {kind}"));
    };
    let Some(obj) = data.as_object() else {
        return Err("request/body/data must be object".into());
    };
    if let Some(missing) = fields.iter().find(|f| !obj.contains_key(**f)) {
        return Err(format!("request.body.data requires property \"{missing}\""));
    }
    Ok(())
}

/// `POST /api/v1/credentials`.
pub async fn create(State(n8n): State<FakeN8n>, Json(body): Json<Value>) -> Response {
    let (Some(name), Some(kind), Some(data)) = (
        body.get("name").and_then(Value::as_str),
        body.get("type").and_then(Value::as_str),
        body.get("data"),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "request/body must have required properties name, type, data",
        );
    };
    if let Err(m) = check_data(kind, data) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    let mut s = n8n.lock();
    let id = s.new_id();
    let now = now_iso();
    let c = Credential {
        id: id.clone(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        data: data.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    let out = render(&c);
    s.credentials.insert(id, c);
    Json(out).into_response()
}

/// `PATCH /api/v1/credentials/{id}`: name and/or data (data replaces the old data).
pub async fn patch(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut s = n8n.lock();
    let Some(c) = s.credentials.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "Credential not found");
    };
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(&c.kind)
        .to_owned();
    if kind != c.kind && body.get("data").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "data is required when changing the credential type",
        );
    }
    if let Some(data) = body.get("data") {
        if let Err(m) = check_data(&kind, data) {
            return error(StatusCode::BAD_REQUEST, m);
        }
        c.data = data.clone();
    }
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        c.name = name.to_owned();
    }
    c.kind = kind;
    c.updated_at = now_iso();
    Json(render(c)).into_response()
}

/// `DELETE /api/v1/credentials/{id}`: answers the deleted credential, its data withheld.
pub async fn delete(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    match n8n.lock().credentials.remove(&id) {
        Some(c) => {
            let mut v = render(&c);
            v["data"] = json!({});
            Json(v).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Credential not found"),
    }
}

/// `GET /api/v1/credentials`: ids, names and types, never data.
pub async fn list(State(n8n): State<FakeN8n>, Query(q): Query<ListQuery>) -> Response {
    let s = n8n.lock();
    let items = s
        .credentials
        .values()
        .map(|c| {
            let mut v = render(c);
            v["shared"] = json!([]);
            v
        })
        .collect();
    Json(page(items, &q)).into_response()
}

/// `GET /api/v1/credentials/schema/{kind}`.
pub async fn schema(Path(kind): Path<String>) -> Response {
    match required_fields(&kind) {
        Some(fields) => {
            let props: serde_json::Map<String, Value> = fields
                .iter()
                .map(|f| ((*f).to_owned(), json!({"type": "string"})))
                .collect();
            Json(json!({"additionalProperties": false, "type": "object",
                "properties": props, "required": fields}))
            .into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("No credential type {kind}")),
    }
}
