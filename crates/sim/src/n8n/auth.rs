//! A fresh instance's owner setup, login, API keys, and the `X-N8N-API-KEY` gate with the
//! scopes each endpoint needs (names from n8n 2.8.4's `@n8n/permissions`).

use axum::{
    Json,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{FakeN8n, error, now_iso};

/// Scopes an owner's API key may carry (n8n 2.8.4, `OWNER_API_KEY_SCOPES`, the parts the
/// fake serves plus their neighbours).
const OWNER_SCOPES: [&str; 24] = [
    "workflow:create",
    "workflow:read",
    "workflow:update",
    "workflow:delete",
    "workflow:list",
    "workflow:move",
    "workflow:activate",
    "workflow:deactivate",
    "execution:delete",
    "execution:read",
    "execution:retry",
    "execution:list",
    "credential:create",
    "credential:update",
    "credential:move",
    "credential:delete",
    "credential:list",
    "tag:read",
    "tag:list",
    "tag:create",
    "tag:update",
    "tag:delete",
    "workflowTags:update",
    "workflowTags:list",
];

fn session(headers: &HeaderMap, n8n: &FakeN8n) -> bool {
    let cookies = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("n8n-auth="))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let s = n8n.lock();
    cookies.iter().any(|c| s.sessions.contains(c))
}

fn with_session(n8n: &FakeN8n, body: serde_json::Value) -> Response {
    let token = {
        let mut s = n8n.lock();
        let t = s.token("sess");
        s.sessions.insert(t.clone());
        t
    };
    let mut r = Json(body).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("n8n-auth={token}; Path=/; HttpOnly; SameSite=Lax"))
    {
        r.headers_mut().insert("set-cookie", v);
    }
    r
}

/// `POST /rest/owner/setup`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerSetup {
    email: String,
    first_name: String,
    last_name: String,
    password: String,
}

fn password_ok(p: &str) -> bool {
    (8..=64).contains(&p.len())
        && p.bytes().any(|b| b.is_ascii_digit())
        && p.bytes().any(|b| b.is_ascii_uppercase())
}

/// Creates the owner of a fresh instance and logs them in.
pub async fn owner_setup(
    State(n8n): State<FakeN8n>,
    body: Result<Json<OwnerSetup>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = n8n.rest_not_mounted("/rest/owner/setup") {
        return r;
    }
    let Ok(Json(o)) = body else {
        return error(StatusCode::BAD_REQUEST, "Invalid owner setup payload");
    };
    if !o.email.contains('@') {
        return error(StatusCode::BAD_REQUEST, "Invalid email address");
    }
    if !password_ok(&o.password) {
        return error(
            StatusCode::BAD_REQUEST,
            "Password must be 8 to 64 characters long and contain at least 1 number and 1 uppercase letter.",
        );
    }
    {
        let mut s = n8n.lock();
        if s.owner.is_some() {
            return error(StatusCode::BAD_REQUEST, "Instance owner already setup");
        }
        s.owner = Some((o.email.clone(), o.password));
    }
    with_session(
        &n8n,
        json!({"data": {"id": "owner", "email": o.email, "firstName": o.first_name,
            "lastName": o.last_name, "role": "global:owner"}}),
    )
}

/// `POST /rest/login`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    email_or_ldap_login_id: String,
    password: String,
}

/// Logs the owner in.
pub async fn login(
    State(n8n): State<FakeN8n>,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = n8n.rest_not_mounted("/rest/login") {
        return r;
    }
    let Ok(Json(l)) = body else {
        return error(StatusCode::BAD_REQUEST, "Invalid login payload");
    };
    let ok = n8n
        .lock()
        .owner
        .as_ref()
        .is_some_and(|(e, p)| *e == l.email_or_ldap_login_id && *p == l.password);
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "Wrong username or password. Do you have caps lock on?",
        );
    }
    with_session(
        &n8n,
        json!({"data": {"id": "owner", "email": l.email_or_ldap_login_id, "role": "global:owner"}}),
    )
}

/// `POST /rest/api-keys`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKey {
    label: String,
    scopes: Vec<String>,
    expires_at: Option<i64>,
}

/// Mints an API key for the logged-in owner; the raw key is shown once, as `rawApiKey`.
pub async fn api_key_create(
    State(n8n): State<FakeN8n>,
    headers: HeaderMap,
    body: Result<Json<NewKey>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = n8n.rest_not_mounted("/rest/api-keys") {
        return r;
    }
    if !session(&headers, &n8n) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let Ok(Json(k)) = body else {
        return error(StatusCode::BAD_REQUEST, "Invalid API key payload");
    };
    if let Some(bad) = k
        .scopes
        .iter()
        .find(|s| !OWNER_SCOPES.contains(&s.as_str()))
    {
        return error(StatusCode::BAD_REQUEST, format!("Invalid scope: {bad}"));
    }
    let raw = {
        let mut s = n8n.lock();
        let raw = s.token("n8n_api_");
        s.api_keys.insert(raw.clone(), k.scopes.clone());
        raw
    };
    let now = now_iso();
    Json(json!({"data": {
        "id": raw[8..24].to_string(),
        "label": k.label,
        "apiKey": format!("******{}", &raw[raw.len() - 4..]),
        "rawApiKey": raw,
        "scopes": k.scopes,
        "expiresAt": k.expires_at,
        "createdAt": now,
        "updatedAt": now,
    }}))
    .into_response()
}

/// The scope an endpoint needs.
fn needed(method: &str, route: &str) -> &'static str {
    match (method, route) {
        ("GET", "/api/v1/workflows") => "workflow:list",
        ("POST", "/api/v1/workflows") => "workflow:create",
        ("GET", "/api/v1/workflows/{id}") => "workflow:read",
        ("PUT", "/api/v1/workflows/{id}") => "workflow:update",
        ("DELETE", "/api/v1/workflows/{id}") => "workflow:delete",
        ("POST", "/api/v1/workflows/{id}/activate") => "workflow:activate",
        ("POST", "/api/v1/workflows/{id}/deactivate") => "workflow:deactivate",
        ("GET", "/api/v1/credentials") => "credential:list",
        ("POST", "/api/v1/credentials") => "credential:create",
        ("PATCH", "/api/v1/credentials/{id}") => "credential:update",
        ("DELETE", "/api/v1/credentials/{id}") => "credential:delete",
        ("GET", "/api/v1/credentials/schema/{kind}") => "credential:create",
        ("GET", "/api/v1/workflows/{id}/tags") => "workflowTags:list",
        ("PUT", "/api/v1/workflows/{id}/tags") => "workflowTags:update",
        ("GET", "/api/v1/tags") => "tag:list",
        ("POST", "/api/v1/tags") => "tag:create",
        ("GET", "/api/v1/tags/{id}") => "tag:read",
        ("PUT", "/api/v1/tags/{id}") => "tag:update",
        ("DELETE", "/api/v1/tags/{id}") => "tag:delete",
        ("GET", "/api/v1/executions") => "execution:list",
        ("GET", "/api/v1/executions/{id}") => "execution:read",
        _ => "global:owner",
    }
}

/// The `X-N8N-API-KEY` gate.
pub async fn api_key(State(n8n): State<FakeN8n>, req: Request, next: Next) -> Response {
    let Some(key) = req
        .headers()
        .get("x-n8n-api-key")
        .and_then(|v| v.to_str().ok())
    else {
        return error(StatusCode::UNAUTHORIZED, "'X-N8N-API-KEY' header required");
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let scope = needed(req.method().as_str(), &route);
    let allowed = match n8n.lock().api_keys.get(key) {
        None => return error(StatusCode::UNAUTHORIZED, "unauthorized"),
        Some(scopes) => scopes.iter().any(|s| s == scope),
    };
    if !allowed {
        return error(StatusCode::FORBIDDEN, "Forbidden");
    }
    next.run(req).await
}
