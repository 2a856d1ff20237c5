//! `POST /api/v1/payments/webhook`: the payment provider's door. Unauthenticated until its
//! signature is checked, so it costs little before that: the body is capped at
//! [`MAX_WEBHOOK_BYTES`], the check is one HMAC, and nothing is written (not even an audit
//! event) for a delivery that fails it; refusals are only counted. The rest is
//! [`crate::app::payments::receive`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::app::payments::{self, Delivery};

pub use crate::app::payments::MAX_WEBHOOK_BYTES;

/// Receives one delivery: 200 once it is applied (or known, or of no use to us), so the
/// provider stops sending it; 4xx when it is refused.
pub async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match payments::receive(&state, signature, &body).await {
        Ok(d) => {
            let outcome = match d {
                Delivery::Credited(..) => "credited",
                Delivery::AlreadyCredited => "already credited",
                Delivery::FailureRecorded => "failure recorded",
                Delivery::Ignored(why) => why,
            };
            Json(json!({ "received": true, "outcome": outcome })).into_response()
        }
        Err(p) => p.into_response(),
    }
}
