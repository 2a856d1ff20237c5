//! `POST /api/v1/droplets/{id}/{logs|health|restart|pull}`: one command to one droplet's
//! sidecar (see [`crate::app::droplet_ops`]). The body is optional JSON:
//! `{"lines": 200}` for logs, `{"image": "n8nio/n8n:2.8.4"}` for pull. And the same
//! power and alert actions as God Mode's buttons: `POST .../power/{reboot|destroy}`,
//! `POST .../alerts/{kind}/{acknowledge|resolve}`.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
};
use serde::Deserialize;

use super::doc;
use crate::app::droplet_ops::{DropletOp, DropletOpResult, run};
use crate::app::support_access::Caller;
use crate::app::{alerts, droplet_power};
use crate::auth::API_ACTOR;
use crate::{AppState, Problem};

/// The optional arguments.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpArgs {
    /// Log lines (logs).
    pub lines: Option<u32>,
    /// Image reference (pull).
    pub image: Option<String>,
}

/// The operations, as the path spells them (parsed by [`DropletOp::parse`]).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum DropletAction {
    /// The newest lines of n8n's output.
    Logs,
    /// n8n's status and the droplet's load.
    Health,
    /// Restart n8n.
    Restart,
    /// Pull an image ahead of a swap.
    Pull,
}

/// `POST /api/v1/droplets/{id}/{action}`.
#[utoipa::path(
    post,
    path = "/droplets/{id}/{action}",
    summary = "Sends one command to a droplet's sidecar: logs, health, restart or pull.",
    tag = "droplets",
    params(
        ("id" = uuid::Uuid, Path, description = "The droplet's id (ours)"),
        ("action" = inline(DropletAction), Path, description = "What to ask its sidecar"),
    ),
    request_body(content = Option<OpArgs>, description = "Optional arguments; may be empty"),
    responses(
        (status = 200, description = "The sidecar's reply.", body = DropletOpResult),
        doc::NotFound,
        doc::Conflict,
        (status = 502, description = "The sidecar refused the command, or it failed there.",
            body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The sidecar did not answer in time.", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn run_op(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<DropletOpResult>, Problem> {
    let args: OpArgs = if body.iter().all(u8::is_ascii_whitespace) {
        OpArgs::default()
    } else {
        serde_json::from_slice(&body).map_err(Problem::bad_body)?
    };
    let op = DropletOp::parse(&action, args.lines, args.image.as_deref())?;
    Ok(Json(run(&state, &id, &op, Caller::ApiToken).await?))
}

/// What an operator may do to a droplet's machine.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum PowerOp {
    /// Power-cycle a serving or unresponsive droplet (it becomes REBOOTING).
    Reboot,
    /// Destroy a lost (ORPHAN) droplet at the cloud (it becomes TERMINATED).
    Destroy,
}

/// `POST /api/v1/droplets/{id}/power/{op}`.
#[utoipa::path(
    post,
    path = "/droplets/{id}/power/{op}",
    summary = "Reboots a droplet, or destroys a lost (ORPHAN) one, through its state machine.",
    tag = "droplets",
    params(
        ("id" = uuid::Uuid, Path, description = "The droplet's id (ours)"),
        ("op" = inline(PowerOp), Path, description = "What to do"),
    ),
    responses(
        (status = 200, description = "The droplet as it is now.", body = genesis_store::Droplet),
        doc::NotFound,
        doc::Conflict,
        doc::Unavailable,
    )
)]
pub async fn power(
    State(state): State<AppState>,
    Path((id, op)): Path<(String, String)>,
) -> Result<Json<genesis_store::Droplet>, Problem> {
    Ok(Json(match op.as_str() {
        "reboot" => droplet_power::reboot(&state, &id, Caller::ApiToken).await?,
        "destroy" => droplet_power::destroy_orphan(&state, &id, Caller::ApiToken).await?,
        _ => return Err(Problem::not_found("droplet action")),
    }))
}

/// What an operator does with an open alert.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum AlertOp {
    /// Mark it taken (it stays open).
    Acknowledge,
    /// Close it.
    Resolve,
}

/// `POST /api/v1/droplets/{id}/alerts/{kind}/{action}`.
#[utoipa::path(
    post,
    path = "/droplets/{id}/alerts/{kind}/{action}",
    summary = "Acknowledges or resolves a droplet's open alert of one kind.",
    tag = "droplets",
    params(
        ("id" = uuid::Uuid, Path, description = "The droplet's id (ours)"),
        ("kind" = String, Path, description = "The alert's kind (`manual_review`, a drift type, ...)"),
        ("action" = inline(AlertOp), Path, description = "What to do"),
    ),
    responses(
        (status = 200, description = "The alert as it is now.", body = genesis_store::Alert),
        doc::NotFound,
    )
)]
pub async fn alert(
    State(state): State<AppState>,
    Path((id, kind, action)): Path<(String, String, String)>,
) -> Result<Json<genesis_store::Alert>, Problem> {
    let action = alerts::parse_action(&action)?;
    Ok(Json(
        alerts::act(&state, &id, &kind, action, API_ACTOR).await?,
    ))
}
