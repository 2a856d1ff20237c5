//! API authentication: a bearer token compared in constant time through its SHA-256 digest.
//! Operator accounts and sessions replace this for humans in the God Mode work; machines
//! keep tokens.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{AppState, Problem};

/// The digest stored in [`AppState`]; the token itself is not kept.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if constant_time_eq(&token_digest(token), &expected) => next.run(req).await,
        Some(_) => {
            metrics::counter!("genesis_api_auth_failures_total").increment(1);
            tracing::warn!("API call with a wrong bearer token");
            Problem::unauthorized("wrong bearer token").into_response()
        }
        None => Problem::unauthorized("missing bearer token").into_response(),
    }
}
