//! `POST /api/v1/droplets/{id}/{logs|health|restart|pull}`: one command to one droplet's
//! sidecar (see [`crate::app::droplet_ops`]). The body is optional JSON:
//! `{"lines": 200}` for logs, `{"image": "n8nio/n8n:2.8.4"}` for pull.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
};
use serde::Deserialize;

use crate::app::droplet_ops::{DropletOp, DropletOpResult, run};
use crate::{AppState, Problem};

/// The optional arguments.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpArgs {
    /// Log lines (logs).
    pub lines: Option<u32>,
    /// Image reference (pull).
    pub image: Option<String>,
}

/// `POST /api/v1/droplets/{id}/{action}`.
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
    Ok(Json(run(&state, &id, &op, "operator").await?))
}
