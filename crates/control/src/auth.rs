//! API authentication: a bearer token compared in constant time through its SHA-256 digest.
//! Operator accounts and sessions replace this for humans in the God Mode work; machines
//! keep tokens.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, Problem};

use crate::credentials::token_digest;

/// How the audit log names whoever used the operators' API token. It is one shared token,
/// so it names no person; God Mode's actions carry `operator:<e-mail>`. Both start with
/// `operator:`, so "by" reads the same way wherever an action came from, and the audit
/// viewer's "operators" filter finds both (decision 80).
pub const API_ACTOR: &str = "operator:api-token";

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(req: &Request) -> Option<&str> {
    bearer_of(req.headers())
}

/// The bearer token of a request's headers.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether `token` is the operator's API token.
fn is_operator(state: &AppState, token: &str) -> bool {
    state
        .api_token_sha256
        .is_some_and(|expected| constant_time_eq(&token_digest(token), &expected))
}

/// The shape of a workspace token (`gws_` and 43 base64url characters): anything else is
/// refused before the database is asked.
pub fn looks_like_workspace_token(token: &str) -> bool {
    token
        .strip_prefix("gws_")
        .is_some_and(crate::credentials::token_shaped)
}

/// The workspace whose ingest token `token` is (the token a tenant's n8n holds), asked of
/// the database only when it has a workspace token's shape; `None` for anything else.
/// Callers count and refuse the `None`.
pub async fn workspace_of_ingest_token(
    state: &AppState,
    token: &str,
) -> Result<Option<genesis_core::WorkspaceId>, Problem> {
    if !looks_like_workspace_token(token) {
        return Ok(None);
    }
    Ok(state
        .stores
        .workspace_token_owner(token, genesis_store::WorkspaceTokenKind::Ingest)
        .await?)
}

/// Refuses the request unless it carries the operator's token, or the ingest token of the
/// workspace the path names (`/workspaces/{id}/...`). A workspace's token used on another
/// workspace's path is refused exactly like a wrong token: tokens are scoped.
pub async fn require_api_or_workspace_token(
    State(state): State<AppState>,
    axum::extract::Path(params): axum::extract::Path<std::collections::HashMap<String, String>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&req) else {
        return Problem::unauthorized("missing bearer token").into_response();
    };
    if is_operator(&state, token) {
        return next.run(req).await;
    }
    let workspace = params
        .get("id")
        .and_then(|id| genesis_core::WorkspaceId::parse(id).ok());
    let valid = match workspace {
        Some(ws) if looks_like_workspace_token(token) => {
            let checked = match state.stores.workspace_find(ws).await {
                Ok((_, db)) => {
                    db.workspace_token_valid(ws, token, genesis_store::WorkspaceTokenKind::Ingest)
                        .await
                }
                Err(e) => Err(e),
            };
            match checked {
                Ok(valid) => valid,
                Err(genesis_store::StoreError::NotFound { .. }) => false,
                Err(e) => return Problem::from(e).into_response(),
            }
        }
        _ => false,
    };
    if valid {
        return next.run(req).await;
    }
    metrics::counter!("genesis_api_auth_failures_total").increment(1);
    tracing::warn!("API call with a wrong or mis-scoped bearer token");
    Problem::unauthorized("wrong bearer token").into_response()
}

/// Refuses the request unless it carries the configured bearer token.
pub async fn require_api_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.api_token_sha256 else {
        return Problem::unauthorized("the API is disabled: no server.api_token is configured")
            .into_response();
    };
    match bearer(&req) {
        Some(token) if constant_time_eq(&token_digest(token), &expected) => next.run(req).await,
        Some(_) => {
            metrics::counter!("genesis_api_auth_failures_total").increment(1);
            tracing::warn!("API call with a wrong bearer token");
            Problem::unauthorized("wrong bearer token").into_response()
        }
        None => Problem::unauthorized("missing bearer token").into_response(),
    }
}
