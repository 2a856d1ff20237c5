//! `/api/v1/credentials...`, checked against n8n 2.8.4's own credential types
//! (`genesis_n8n::credential_types`): data n8n would refuse is refused here too, with n8n's
//! status and words, and `GET /credentials/schema/{type}` answers n8n's schema.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use genesis_n8n::CredentialTypes;
use serde_json::{Value, json};

use super::workflows::{ListQuery, page};
use super::{Credential, FakeN8n, error, now_iso};

/// What a refused credential write answers under chaos.
const CHAOS_REFUSAL: &str =
    "request.body.data requires property \"apiKey\" (chaos: credential writes refused)";

fn render(c: &Credential) -> Value {
    json!({"id": c.id, "name": c.name, "type": c.kind, "createdAt": c.created_at, "updatedAt": c.updated_at})
}

fn check_data(kind: &str, data: &Value) -> Result<(), String> {
    let Some(t) = CredentialTypes::pinned().get(kind) else {
        return Err("req.body.type is not a known type".into());
    };
    t.check(data).map_err(|p| p.n8n_message())
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
    if s.refuse_credentials {
        return error(StatusCode::BAD_REQUEST, CHAOS_REFUSAL);
    }
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
    if s.refuse_credentials {
        return error(StatusCode::BAD_REQUEST, CHAOS_REFUSAL);
    }
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
    match CredentialTypes::pinned().get(&kind) {
        Some(t) => Json(t.json_schema()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}
