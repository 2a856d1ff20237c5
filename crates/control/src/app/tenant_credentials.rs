//! A tenant's own key update (spec 65.1, issue 24): new data for one of the keys the tenant
//! gave at ignition (its OpenAI key; an OAuth sign-in is renewed by connecting again), into
//! the vault and then into its droplet's n8n, audited. The igniter does the work, because it
//! holds what the ignition recorded: which n8n credential the key went into, and the key the
//! sidecar seals to. An engine that is asleep or does not answer gets the key later, from
//! the `pending-credentials` reconciler ([`crate::workers::pending_credentials`]).

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_ignition::upkeep::CredentialOutcome;
use serde::{Deserialize, Serialize};

use crate::{AppState, Problem};

/// `PUT /api/v1/workspaces/{id}/credentials/{name}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    /// The credential's new data, shaped as at ignition (`{"apiKey": "sk-…"}` for `openai`).
    pub data: serde_json::Value,
}

/// Whether the new key is in the engine yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// In the vault and in the droplet's n8n.
    Applied,
    /// In the vault; the droplet's n8n gets it as soon as it serves (after a wake) or
    /// answers again. Nothing needs sending again.
    Pending,
}

/// What an update did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CredentialUpdated {
    /// The credential, as the templates call it (`openai`).
    pub name: String,
    /// Its name in the tenant's n8n.
    pub n8n_name: String,
    /// Whether the engine has it yet.
    pub status: UpdateStatus,
    /// When the droplet confirmed it (absent while pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<DateTime<Utc>>,
    /// Why it is pending, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Updates workspace `id`'s credential `name` to `update.data`, for `actor`.
pub async fn update(
    state: &AppState,
    id: WorkspaceId,
    name: &str,
    update: &CredentialUpdate,
    actor: &str,
) -> Result<CredentialUpdated, Problem> {
    let igniter = state.igniter.as_ref().ok_or_else(|| {
        Problem::unavailable("this control plane has no cloud configured; it cannot reach droplets")
    })?;
    let (ws, _) = state.stores.workspace_find(id).await?;
    let outcome = igniter
        .update_credential(&ws, name, &update.data, actor)
        .await
        .map_err(super::ignition::refused)?;
    Ok(match outcome {
        CredentialOutcome::Applied { n8n_name } => CredentialUpdated {
            name: name.to_owned(),
            n8n_name,
            status: UpdateStatus::Applied,
            rotated_at: Some(Utc::now()),
            detail: None,
        },
        CredentialOutcome::Pending { n8n_name, why } => CredentialUpdated {
            name: name.to_owned(),
            n8n_name,
            status: UpdateStatus::Pending,
            rotated_at: None,
            detail: Some(why),
        },
    })
}
