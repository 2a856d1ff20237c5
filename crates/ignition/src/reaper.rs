//! The orphan reaper (DESIGN §4's invariant): no droplet tagged `genesis` exists without a
//! live workspace that owns it. A reconciler: it takes no input, lists the cloud's droplets,
//! deletes the ones nobody owns (audited), and reports what it did. Safe on any replica, any
//! number of times.
//!
//! A droplet is owned when its `ws-<uuid>` tag names a workspace that either has an ignition
//! in flight (the saga may not have recorded the droplet yet), or has a live droplet row with
//! that cloud id, or a live row whose cloud id is not recorded yet (a hot standby's create in
//! flight).

use genesis_cloud::Cloud;
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_store::{AuditEvent, StoreError};
use serde::Serialize;

use crate::igniter::Igniter;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReapReport {
    /// Droplets tagged `genesis` looked at.
    pub examined: usize,
    /// Cloud ids deleted.
    pub deleted: Vec<i64>,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReapError {
    /// The cloud.
    #[error("cloud: {0}")]
    Cloud(#[from] genesis_cloud::CloudError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<C: Cloud> Igniter<C> {
    /// One reaper pass.
    pub async fn reap_orphans(&self) -> Result<ReapReport, ReapError> {
        let mut report = ReapReport::default();
        for d in self.cloud.droplet_list_by_tag("genesis").await? {
            report.examined += 1;
            let owner = d
                .tags
                .iter()
                .find_map(|t| t.strip_prefix("ws-"))
                .and_then(|u| WorkspaceId::parse(u).ok());
            let owned = match owner {
                None => false,
                Some(ws) => match self.stores.workspace_find(ws).await {
                    Ok((w, _)) => {
                        let db = self.stores.for_region(w.region);
                        let in_flight = db
                            .ignition_latest(ws)
                            .await?
                            .is_some_and(|ig| !ig.phase.is_final());
                        // A live row without a cloud id is a create in flight (a standby's
                        // has no saga): its machine may not be recorded yet.
                        in_flight
                            || db
                                .droplet_live_for_workspace(ws)
                                .await?
                                .iter()
                                .any(|row| row.provider_id.is_none_or(|p| p == d.id))
                    }
                    Err(StoreError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                },
            };
            if owned {
                continue;
            }
            self.cloud.droplet_delete(d.id).await?;
            let mut event = AuditEvent::new(
                &self.settings.actor,
                AuditCategory::Droplet,
                "ORPHAN_DROPLET_REAPED",
            )
            .subject(d.id.to_string())
            .details(serde_json::json!({"name": d.name, "tags": d.tags}));
            let db = match owner {
                Some(ws) => {
                    event = event.workspace(ws);
                    match self.stores.workspace_find(ws).await {
                        Ok((w, _)) => self.stores.for_region(w.region),
                        Err(_) => self.stores.coordinator(),
                    }
                }
                None => self.stores.coordinator(),
            };
            db.audit_record(&event).await?;
            tracing::info!(droplet = d.id, name = %d.name, "reaped an orphan droplet");
            report.deleted.push(d.id);
        }
        Ok(report)
    }
}
