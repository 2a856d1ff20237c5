//! `/api/v1/tags...` and `/api/v1/workflows/{id}/tags`: n8n's tags, which the sidecar uses to
//! mark the Golden Template version a workflow was deployed from (the watchdog's
//! `version_mismatch`, spec 43.2).
//!
//! As in n8n 2.8.4: tag names are unique (409 on a duplicate), at most 24 characters, and a
//! workflow's `tags` are the full tag objects. A workflow keeps copies of its tags' objects,
//! refreshed when a tag is renamed or deleted. n8n answers a name that its database refuses
//! (empty, or over 24 characters) as it answers a duplicate, 409 "Tag already exists", and
//! an unknown tag id in a workflow's tags with 404 "Some tags not found".

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::workflows::{ListQuery, page};
use super::{FakeN8n, State as N8nState, Tag, error, now_iso};

/// n8n's limit on a tag's name (its `tag_entity.name` column).
const MAX_NAME: usize = 24;

pub(super) fn render(t: &Tag) -> Value {
    json!({"id": t.id, "name": t.name, "createdAt": t.created_at, "updatedAt": t.updated_at})
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// Why a tag write is refused: the request's shape (400) or the name (n8n's 409).
enum NameRefusal {
    Shape(String),
    Name,
}

/// n8n's answer to a refused tag name.
fn refuse(r: NameRefusal) -> Response {
    match r {
        NameRefusal::Shape(m) => error(StatusCode::BAD_REQUEST, m),
        NameRefusal::Name => error(StatusCode::CONFLICT, "Tag already exists"),
    }
}

/// The name of a tag write.
fn parse_name(body: &Value) -> Result<String, NameRefusal> {
    let Some(obj) = body.as_object() else {
        return Err(NameRefusal::Shape("request/body must be object".into()));
    };
    if let Some(extra) = obj
        .keys()
        .find(|k| !["id", "name", "createdAt", "updatedAt"].contains(&k.as_str()))
    {
        return Err(NameRefusal::Shape(format!(
            "request/body must NOT have additional properties: {extra}"
        )));
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            NameRefusal::Shape("request/body must have required property 'name'".into())
        })?
        .trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(NameRefusal::Name);
    }
    Ok(name.to_owned())
}

fn conflict(s: &N8nState, name: &str, except: Option<&str>) -> bool {
    s.tags
        .values()
        .any(|t| t.name == name && Some(t.id.as_str()) != except)
}

/// Re-copies tag `id` into every workflow that carries it (or drops it when deleted).
pub(super) fn refresh_workflows(s: &mut N8nState, id: &str) {
    let current = s.tags.get(id).map(render);
    for w in s.workflows.values_mut() {
        if let Some(pos) = w.tags.iter().position(|t| t["id"] == id) {
            match &current {
                Some(t) => w.tags[pos] = t.clone(),
                None => {
                    w.tags.remove(pos);
                }
            }
        }
    }
}

/// `POST /api/v1/tags`.
pub async fn create(State(n8n): State<FakeN8n>, Json(body): Json<Value>) -> Response {
    let name = match parse_name(&body) {
        Ok(n) => n,
        Err(r) => return refuse(r),
    };
    let mut s = n8n.lock();
    if conflict(&s, &name, None) {
        return error(StatusCode::CONFLICT, "Tag already exists");
    }
    let id = s.new_id();
    let now = now_iso();
    let t = Tag {
        id: id.clone(),
        name,
        created_at: now.clone(),
        updated_at: now,
    };
    let out = render(&t);
    s.tags.insert(id, t);
    (StatusCode::CREATED, Json(out)).into_response()
}

/// `GET /api/v1/tags`.
pub async fn list(State(n8n): State<FakeN8n>, Query(q): Query<ListQuery>) -> Response {
    let items = n8n.lock().tags.values().map(render).collect();
    Json(page(items, &q)).into_response()
}

/// `GET /api/v1/tags/{id}`.
pub async fn get_one(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    match n8n.lock().tags.get(&id) {
        Some(t) => Json(render(t)).into_response(),
        None => not_found(),
    }
}

/// `PUT /api/v1/tags/{id}`: renames.
pub async fn update(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let name = match parse_name(&body) {
        Ok(n) => n,
        Err(r) => return refuse(r),
    };
    let mut s = n8n.lock();
    if !s.tags.contains_key(&id) {
        return not_found();
    }
    if conflict(&s, &name, Some(&id)) {
        return error(StatusCode::CONFLICT, "Tag already exists");
    }
    let out = match s.tags.get_mut(&id) {
        Some(t) => {
            t.name = name;
            t.updated_at = now_iso();
            render(t)
        }
        None => return not_found(),
    };
    refresh_workflows(&mut s, &id);
    Json(out).into_response()
}

/// `DELETE /api/v1/tags/{id}`: answers the deleted tag; workflows lose it.
pub async fn delete(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    let mut s = n8n.lock();
    let Some(t) = s.tags.remove(&id) else {
        return not_found();
    };
    refresh_workflows(&mut s, &id);
    Json(render(&t)).into_response()
}

/// `GET /api/v1/workflows/{id}/tags`.
pub async fn workflow_get(State(n8n): State<FakeN8n>, Path(id): Path<String>) -> Response {
    match n8n.lock().workflows.get(&id) {
        Some(w) => Json(Value::Array(w.tags.clone())).into_response(),
        None => not_found(),
    }
}

/// `PUT /api/v1/workflows/{id}/tags` with `[{id}]`: replaces the workflow's tags.
pub async fn workflow_put(
    State(n8n): State<FakeN8n>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(items) = body.as_array() else {
        return error(StatusCode::BAD_REQUEST, "request/body must be array");
    };
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_object() {
            Some(o) if o.len() == 1 && o.get("id").is_some_and(Value::is_string) => {
                ids.push(o["id"].as_str().unwrap_or_default().to_owned());
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("request/body/{i} must have only the required property 'id'"),
                );
            }
        }
    }
    let mut s = n8n.lock();
    if !s.workflows.contains_key(&id) {
        return not_found();
    }
    let mut tags = Vec::with_capacity(ids.len());
    for tag_id in &ids {
        match s.tags.get(tag_id) {
            Some(t) if !tags.iter().any(|x: &Value| x["id"] == t.id.as_str()) => {
                tags.push(render(t))
            }
            Some(_) => {}
            None => return error(StatusCode::NOT_FOUND, "Some tags not found"),
        }
    }
    let Some(w) = s.workflows.get_mut(&id) else {
        return not_found();
    };
    w.tags = tags.clone();
    w.updated_at = now_iso();
    Json(Value::Array(tags)).into_response()
}
