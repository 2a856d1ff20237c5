//! `/api/v1/managed/{service}/{path}`: the managed-service gateway's door. The caller is a
//! tenant's n8n with its workspace token (`gws_…`), which names the wallet that pays, on a
//! call its droplet's relay signed (spec 65.3); the rest is [`crate::app::managed::call`].

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::inbound::refuse;
use crate::app::managed::{self, ManagedCall};
use crate::auth::{
    bearer_of, droplet_call, looks_like_workspace_token, serves, workspace_of_ingest_token,
};
use crate::{AppState, Problem};
use genesis_protocol::inbound::InboundRefusal;

/// What the tenant was charged for the call, in millicents, on every answer it paid for.
pub const CHARGED_HEADER: &str = "genesis-charged-millicents";

/// Forwards one managed call.
pub async fn call(
    State(state): State<AppState>,
    Path((service, path)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Body,
) -> Response {
    let peer = peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a);
    let Some(token) = bearer_of(&headers) else {
        return Problem::unauthorized("missing bearer token").into_response();
    };
    if !looks_like_workspace_token(token) {
        return wrong_token().into_response();
    }
    // Never more than an Actor's input; signed by a droplet (spec 65.3) before any lookup.
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
    let signer = match droplet_call(&state, &headers, peer, &body, None).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let workspace = match workspace_of_ingest_token(&state, token).await {
        Ok(Some(ws)) => match serves(&state, &signer, ws).await {
            Ok(true) => ws,
            Ok(false) => {
                return refuse(
                    &state,
                    Some(ws),
                    state.handshakes.source(peer, &headers),
                    InboundRefusal::MisScoped,
                )
                .await;
            }
            Err(refused) => return refused,
        },
        Ok(None) => return wrong_token().into_response(),
        Err(p) => return p.into_response(),
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

/// A 401 for a wrong token, counted.
fn wrong_token() -> Problem {
    metrics::counter!("genesis_api_auth_failures_total").increment(1);
    Problem::unauthorized("wrong bearer token")
}
