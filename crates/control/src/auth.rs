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
/// workspace the path names (`/workspaces/{id}/...`) on a call its droplet signed
/// ([`crate::inbound`]). A workspace's token used on another workspace's path is refused
/// exactly like a wrong token: tokens are scoped.
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
    let (Some(ws), true) = (workspace, looks_like_workspace_token(token)) else {
        return wrong_token();
    };
    let token = token.to_owned();
    let req = match signed_by_droplet_of(&state, ws, req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let checked = match state.stores.workspace_find(ws).await {
        Ok((_, db)) => {
            db.workspace_token_valid(ws, &token, genesis_store::WorkspaceTokenKind::Ingest)
                .await
        }
        Err(e) => Err(e),
    };
    match checked {
        Ok(true) => next.run(req).await,
        Ok(false) | Err(genesis_store::StoreError::NotFound { .. }) => wrong_token(),
        Err(e) => Problem::from(e).into_response(),
    }
}

fn wrong_token() -> Response {
    metrics::counter!("genesis_api_auth_failures_total").increment(1);
    tracing::warn!("API call with a wrong or mis-scoped bearer token");
    Problem::unauthorized("wrong bearer token").into_response()
}

/// The request back, whole, when `workspace`'s droplet signed it (spec 65.3); the refusal
/// to answer otherwise. Reads the body (at most [`MAX_SIGNED_BODY`]) to check it.
pub async fn signed_by_droplet_of(
    state: &AppState,
    workspace: genesis_core::WorkspaceId,
    req: Request,
) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
        return Err(Problem::with_status(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("a call's body is at most {} MiB", MAX_SIGNED_BODY >> 20),
        )
        .into_response());
    };
    let peer = peer_of(&parts.extensions);
    droplet_call(state, &parts.headers, peer, &bytes, Some(workspace)).await?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// The peer address axum recorded for a request.
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// Who signed a call with `headers` and `body` ([`crate::inbound`]), when its signature is
/// genuine, fresh, new, and (given `workspace`) that workspace's droplet's; the refusal to
/// answer otherwise, counted and audited.
pub async fn droplet_call(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
    body: &[u8],
    workspace: Option<genesis_core::WorkspaceId>,
) -> Result<genesis_protocol::inbound::MessageId, Response> {
    use genesis_protocol::inbound::InboundRefusal;
    let (refusal, named) = match state.inbound.check(headers, body).await {
        Ok(who) => match workspace {
            None => return Ok(who),
            Some(ws) if serves(state, &who, ws).await? => return Ok(who),
            Some(_) => (InboundRefusal::MisScoped, Some(who.workspace)),
        },
        Err(crate::inbound::Checked::Refused(r)) => (r, None),
        Err(crate::inbound::Checked::Unavailable(why)) => {
            tracing::error!(%why, "the memory of inbound call ids is unavailable");
            return Err(
                Problem::unavailable("the call cannot be checked now; try again").into_response(),
            );
        }
    };
    let source = state.handshakes.source(peer, headers);
    let on = workspace.or_else(|| named.and_then(|u| genesis_core::WorkspaceId::from_uuid(u).ok()));
    Err(crate::app::inbound::refuse(state, on, source, refusal).await)
}

/// Whether the droplet that signed `who` serves `workspace`: its own, or a standby it has
/// claimed (a standby's sidecar hand-shook as its pool's).
pub async fn serves(
    state: &AppState,
    who: &genesis_protocol::inbound::MessageId,
    workspace: genesis_core::WorkspaceId,
) -> Result<bool, Response> {
    if who.workspace == workspace.as_uuid() {
        return Ok(true);
    }
    let db = match state.stores.workspace_find(workspace).await {
        Ok((_, db)) => db,
        Err(genesis_store::StoreError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(Problem::from(e).into_response()),
    };
    db.standby_serves(who.droplet, workspace)
        .await
        .map_err(|e| Problem::from(e).into_response())
}

/// The largest body a signed call may have (axum's default limit for every route).
pub const MAX_SIGNED_BODY: usize = 2 << 20;

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
