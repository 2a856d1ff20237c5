//! `/workspaces/{id}/credentials/{name}`: a tenant's own key update
//! ([`crate::app::tenant_credentials`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::doc;
use crate::app::tenant_credentials::{self, CredentialUpdate, CredentialUpdated, UpdateStatus};
use crate::extract::ApiJson;
use crate::{AppState, Problem};

/// Replace one of a workspace's credentials
///
/// New data for a key the tenant gave at ignition (`openai`), checked as the ignition
/// checks it: stored in the vault as the credential's new version, then rotated into the
/// droplet's n8n (ROTATE_CREDENTIAL), and audited (`CREDENTIAL_ROTATED`). An OAuth sign-in
/// (`gmail`) is refused: it is renewed by connecting the account again. 202 with
/// `status: pending` when the engine is asleep or did not answer: the key is saved, and it
/// reaches the engine as soon as it serves again, with nothing to send again.
#[utoipa::path(
    put,
    path = "/workspaces/{id}/credentials/{name}",
    tag = "workspaces",
    params(
        ("id" = genesis_core::schema::WorkspaceRef, Path, description = "The workspace's id, or its slug"),
        ("name" = String, Path, description = "The credential, as the ignite request names it (`openai`)"),
    ),
    request_body = CredentialUpdate,
    responses(
        (status = 200, description = "Rotated into the droplet's n8n.", body = CredentialUpdated),
        (status = 202, description = "Saved; the engine gets it when it serves again.", body = CredentialUpdated),
        doc::NotFound,
        doc::Conflict,
        doc::Unavailable,
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    ApiJson(update): ApiJson<CredentialUpdate>,
) -> Result<(StatusCode, Json<CredentialUpdated>), Problem> {
    let ws = crate::app::workspaces::resolve(&state, &id).await?;
    let done =
        tenant_credentials::update(&state, ws, &name, &update, crate::auth::API_ACTOR).await?;
    let status = match done.status {
        UpdateStatus::Applied => StatusCode::OK,
        UpdateStatus::Pending => StatusCode::ACCEPTED,
    };
    Ok((status, Json(done)))
}
