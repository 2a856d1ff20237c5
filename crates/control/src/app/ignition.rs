//! Ignition for the API: start the saga of spec 41.1 (or find the one in flight), and how a
//! saga is shown (its steps, its failure) wherever a workspace is.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use genesis_core::{IgnitionStep, SagaEvent, SagaPhase, WorkspaceId};
use genesis_ignition::IgniteError;
use genesis_store::{Database, Ignition, IgnitionStart, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, Problem};
/// `POST /api/v1/workspaces/{id}/ignite` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IgniteRequest {
    /// Credential data by the template set's credential key (`gmail`, `openai`).
    #[serde(default)]
    pub credentials: BTreeMap<String, serde_json::Value>,
}

/// One step as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// Step code.
    pub step: IgnitionStep,
    /// `pending`, `running`, `done`, `failed`, `undoing`, `undone`.
    pub status: &'static str,
    /// How long the action took (done or failed).
    pub elapsed_ms: Option<i64>,
}

/// An ignition as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IgnitionView {
    /// Saga id.
    pub id: Uuid,
    /// RUNNING, UNWINDING, DONE, ROLLED_BACK.
    pub phase: SagaPhase,
    /// The step being done or undone.
    pub step: Option<IgnitionStep>,
    /// 1-based number of `step`.
    pub step_number: Option<usize>,
    /// Steps in all.
    pub steps_total: usize,
    /// The step whose failure started the unwind.
    pub failed_step: Option<IgnitionStep>,
    /// The last error.
    pub error: Option<String>,
    /// Every step with its status and time.
    pub steps: Vec<StepView>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall time so far (or in all, once finished).
    pub elapsed_ms: i64,
    /// Of which the control plane spent working (waits for the cloud and the droplet
    /// excluded).
    pub control_plane_ms: i64,
}

/// Builds the view of `ig` from its saga log.
pub async fn view(db: &Database, ig: &Ignition) -> Result<IgnitionView, StoreError> {
    let log = db.ignition_log(ig.id).await?;
    let steps = IgnitionStep::ALL
        .into_iter()
        .map(|step| {
            let last = log.iter().rev().find(|e| e.step == step);
            let status = match last.map(|e| e.event) {
                None => "pending",
                Some(SagaEvent::ActionStarted) => "running",
                Some(SagaEvent::ActionDone) => "done",
                Some(SagaEvent::ActionFailed) => "failed",
                Some(SagaEvent::UndoStarted | SagaEvent::UndoFailed) => "undoing",
                Some(SagaEvent::UndoDone) => "undone",
            };
            let elapsed_ms = log
                .iter()
                .rev()
                .find(|e| {
                    e.step == step
                        && matches!(e.event, SagaEvent::ActionDone | SagaEvent::ActionFailed)
                })
                .and_then(|e| e.elapsed_ms);
            StepView {
                step,
                status,
                elapsed_ms,
            }
        })
        .collect();
    let end = ig.finished_at.unwrap_or_else(Utc::now);
    Ok(IgnitionView {
        id: ig.id,
        phase: ig.phase,
        step: ig.step,
        step_number: ig.step.map(IgnitionStep::number),
        steps_total: IgnitionStep::ALL.len(),
        failed_step: ig.failed_step,
        error: ig.error.clone(),
        steps,
        started_at: ig.started_at,
        finished_at: ig.finished_at,
        elapsed_ms: (end - ig.started_at).num_milliseconds(),
        control_plane_ms: ig.busy_ms,
    })
}

/// How to call the lead-intake webhook: shown once, in the answer that started the saga.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LeadIntakeAccess {
    /// The header n8n checks.
    pub header: &'static str,
    /// Its value (kept only in the vault after this answer).
    pub token: String,
    /// Where the URL appears once the workflows are deployed.
    pub url_at: String,
}

/// The answer to an ignite request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IgniteAnswer {
    /// The saga.
    #[serde(flatten)]
    pub ignition: IgnitionView,
    /// The lead-intake webhook's token, when this request started the saga.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_intake: Option<LeadIntakeAccess>,
}

/// What the igniter's refusal (or failure) says to people.
pub(crate) fn refused(e: IgniteError) -> Problem {
    match e {
        IgniteError::Invalid { field, message } => Problem::invalid_field(field, message),
        IgniteError::State(m) => Problem::conflict("status", m),
        IgniteError::Store(e) => Problem::from(e),
        IgniteError::Queue(e) => {
            tracing::error!(error = %e, "ignition queue unavailable");
            Problem::unavailable("the ignition queue is unavailable; try again")
        }
        IgniteError::Droplet(e) => {
            tracing::warn!(error = %e, "a change did not reach the droplet");
            Problem::unavailable(
                "the change did not reach your n8n (what it had still works there); send the \
                 same request again shortly",
            )
        }
    }
}

/// Starts an ignition of workspace `id`, or finds the one in flight: `(true, ...)` when
/// this call started it.
pub async fn ignite(
    state: &AppState,
    id: WorkspaceId,
    req: &IgniteRequest,
) -> Result<(bool, IgniteAnswer), Problem> {
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "ignition is not configured on this control plane ([cloud] and [redis] are needed)",
        ));
    };
    let (ws, _) = state.stores.workspace_find(id).await?;
    let started = igniter
        .ignite(&ws, &req.credentials)
        .await
        .map_err(refused)?;
    let db = state.stores.for_region(ws.region);
    let (new, ig) = match started.start {
        IgnitionStart::Started(ig) => (true, ig),
        IgnitionStart::AlreadyRunning(ig) => (false, ig),
    };
    let lead_intake = started.webhook_token.map(|token| LeadIntakeAccess {
        header: genesis_ignition::WEBHOOK_TOKEN_HEADER,
        token,
        url_at: format!("GET /api/v1/workspaces/{id} (webhooks, name lead-intake)"),
    });
    Ok((
        new,
        IgniteAnswer {
            ignition: view(db, &ig).await?,
            lead_intake,
        },
    ))
}
