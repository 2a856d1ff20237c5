//! `/api/v1/managed/{service}/{path}`: the managed-service gateway's door. The caller is a
//! tenant's n8n with its workspace token (`gws_…`), which names the wallet that pays; the
//! rest is [`crate::app::managed::call`].

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::managed::{self, ManagedCall};
use crate::auth::{bearer_of, workspace_of_ingest_token};
use crate::{AppState, Problem};

/// What the tenant was charged for the call, in millicents, on every answer it paid for.
pub const CHARGED_HEADER: &str = "genesis-charged-millicents";

/// Forwards one managed call.
pub async fn call(
    State(state): State<AppState>,
    Path((service, path)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let workspace = match caller(&state, &headers).await {
        Ok(ws) => ws,
        Err(p) => return p.into_response(),
    };
    // Read only after the token checked out, and never more than an Actor's input.
    let Ok(body) = axum::body::to_bytes(body, managed::MAX_CALL_BODY).await else {
        return Problem::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a managed call's body is at most {} KiB",
                managed::MAX_CALL_BODY / 1024
            ),
        )
        .into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let call = ManagedCall {
        service,
        method,
        path,
        query,
        content_type,
        body,
    };
    match managed::call(&state, workspace, call).await {
        Ok(f) => {
            let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = (status, f.body).into_response();
            if let Some(ct) = f.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            for (k, v) in f.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp.headers_mut()
                .insert(CHARGED_HEADER, HeaderValue::from(f.charged.get()));
            resp
        }
        Err(p) => p.into_response(),
    }
}

/// The workspace whose token the call carries; 401 (counted) otherwise.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<genesis_core::WorkspaceId, Problem> {
    let Some(token) = bearer_of(headers) else {
        return Err(Problem::unauthorized("missing bearer token"));
    };
    if let Some(ws) = workspace_of_ingest_token(state, token).await? {
        return Ok(ws);
    }
    metrics::counter!("genesis_api_auth_failures_total").increment(1);
    Err(Problem::unauthorized("wrong bearer token"))
}
