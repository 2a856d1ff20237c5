//! `POST /api/v1/sidecar/handshake` (spec 42.2, DESIGN §3.2): a sidecar trades its one-time
//! provisioning token for a sidecar token and the key that signs its commands. No API token:
//! the provisioning token is the credential. Every refusal is a 401 without details (the
//! audit log has the reason), so a caller cannot probe which tokens exist.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse, response::Response};
use genesis_core::Region;
use genesis_protocol::{HandshakeRequest, HandshakeResponse, SidecarConfig};
use genesis_store::handshake::HandshakeClaim;

use crate::{AppState, Problem};

/// Completes a handshake.
pub async fn handshake(
    State(state): State<AppState>,
    body: Result<Json<HandshakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return Problem::invalid_field("body", e.body_text()).into_response();
        }
    };
    let Some(signer) = state.command_signer.clone() else {
        tracing::error!("handshake refused: no command signing key configured");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "command signing key not configured",
        )
            .into_response();
    };
    let Ok(region) = Region::parse(&req.region) else {
        return Problem::invalid_field("region", format!("{:?} is not a region", req.region))
            .into_response();
    };
    let db = state.stores.for_region(region);
    let claim = HandshakeClaim {
        provisioning_token: &req.provisioning_token,
        workspace_id: req.workspace_id,
        provider_id: req.droplet_id,
        webhook_base_url: &req.webhook_base_url,
        sidecar_public_key: &req.sidecar_public_key,
    };
    match db.handshake_complete(&claim, "sidecar").await {
        Ok(Ok(done)) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "completed").increment(1);
            Json(HandshakeResponse {
                sidecar_token: done.sidecar_token,
                command_public_key: signer.public_key_b64(),
                config: SidecarConfig::default(),
            })
            .into_response()
        }
        Ok(Err(reason)) => {
            metrics::counter!("genesis_handshakes_total", "outcome" => "refused").increment(1);
            tracing::warn!(?reason, workspace = %req.workspace_id, "handshake refused");
            Problem::unauthorized("the provisioning token is not valid").into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}
