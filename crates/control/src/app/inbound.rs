//! What a refused inbound call (spec 65.3) leaves behind: a count by reason, an audit row
//! within the per-source budget ([`crate::inbound`]), and a 401 that names no detail, so a
//! caller learns nothing about which part failed.

use genesis_core::audit::AuditCategory;
use std::net::IpAddr;

use axum::response::{IntoResponse, Response};
use genesis_core::WorkspaceId;
use genesis_protocol::inbound::InboundRefusal;
use genesis_store::AuditEvent;

use crate::{AppState, Problem};

/// Counts, audits (within the budget) and answers one refusal of a call from `source` on
/// `workspace`'s behalf (when one is named).
pub async fn refuse(
    state: &AppState,
    workspace: Option<WorkspaceId>,
    source: Option<IpAddr>,
    why: InboundRefusal,
) -> Response {
    metrics::counter!("genesis_inbound_refusals_total", "reason" => why.label()).increment(1);
    tracing::warn!(
        reason = why.label(),
        ?source,
        ?workspace,
        "inbound call refused"
    );
    if let Some(skipped) = state.inbound.audit_slot(source) {
        let event = AuditEvent::new("inbound", AuditCategory::Security, "INBOUND_REFUSED").details(
            serde_json::json!({
                "reason": why.label(),
                "workspace": workspace.map(|w| w.as_uuid()),
                "source": source.map(|s| s.to_string()),
                "skipped_before": skipped,
            }),
        );
        let (db, found) = state.stores.record_home(workspace).await;
        let event = match found {
            Some(ws) => event.workspace(ws),
            None => event,
        };
        if let Err(e) = db.audit_record(&event).await {
            tracing::error!(error = %e, "the refusal could not be audited");
        }
    }
    Problem::unauthorized("the call is not signed by this workspace's droplet").into_response()
}
