//! The state-reconciliation watchdog (spec 43), as a reconciler run by the leader only.
//!
//! Each pass compares, for every serving droplet, what the database says it should run (the
//! workflows its ignition deployed, its workspace's partition) with what its sidecar last
//! reported (the workflow and credential inventory in its heartbeat), through the pure rules
//! of `genesis_core::drift`. Then it:
//! - opens an alert per drift type (refreshing an open one), and audits the detection;
//! - moves the droplet to DRIFT_DETECTED through its state machine;
//! - heals what spec 43.3 allows, through signed sidecar commands: `state_mismatch` syncs
//!   n8n to the database, `orphan_workflow` deactivates and deletes the stray workflow;
//! - once a later pass finds nothing, moves the droplet back to ACTIVE_HEALTHY and resolves
//!   its alerts.
//!
//! # Caveats
//! - Heals run inline, one droplet after another, on the single leader; that bounds their
//!   rate. Fleet-wide heals through the `template` queue come with rollouts (issue 8).
//! - `version_mismatch` needs the template version in the sidecar's inventory, and
//!   `credential_expired` needs OAuth expiry from n8n; neither is reported yet, so neither is
//!   detected yet. `orphan_db_record` and `missing_partition` raise alerts only.

use std::collections::BTreeMap;
use std::sync::Arc;

use genesis_cloud::Cloud;
use genesis_core::drift::{
    ActualCredential, ActualWorkflow, DesiredWorkflow, Drift, DriftInput, DriftKind, detect,
};
use genesis_core::{DropletEvent, DropletState};
use genesis_ignition::SidecarClient;
use genesis_protocol::command::Command;
use genesis_protocol::{CredentialState, WorkflowState};
use genesis_store::{
    AuditEvent, Database, Droplet, NewAlert, PartitionManager, RegionalStore, StoreError,
};
use serde::Serialize;

/// What one pass did: the reconciler's status value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchdogReport {
    /// Droplets compared.
    pub checked: usize,
    /// Drifts found, by type.
    pub drifts: BTreeMap<String, usize>,
    /// Heals sent.
    pub healed: usize,
    /// Droplets back to ACTIVE_HEALTHY.
    pub recovered: usize,
}

/// The watchdog.
pub struct Watchdog<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    sidecar: SidecarClient,
    actor: String,
}

impl<C: Cloud> Watchdog<C> {
    /// A watchdog over every regional database, healing through `sidecar`.
    pub fn new(stores: RegionalStore, cloud: Arc<C>, sidecar: SidecarClient) -> Self {
        Self {
            stores,
            cloud,
            sidecar,
            actor: "watchdog".into(),
        }
    }

    /// One pass.
    pub async fn reconcile(&self) -> Result<WatchdogReport, StoreError> {
        let mut report = WatchdogReport::default();
        let now = chrono::Utc::now().timestamp();
        for db in self.stores.distinct() {
            for (droplet, hb) in db.droplets_watched(10_000).await? {
                report.checked += 1;
                let drifts = self.compare(db, &droplet, &hb, now).await?;
                if drifts.is_empty() {
                    if droplet.state == DropletState::DriftDetected
                        && db
                            .droplet_transition(
                                droplet.id,
                                droplet.version,
                                DropletEvent::DriftHealed,
                                &self.actor,
                            )
                            .await
                            .is_ok()
                    {
                        for kind in [
                            DriftKind::OrphanWorkflow,
                            DriftKind::OrphanDbRecord,
                            DriftKind::StateMismatch,
                            DriftKind::MissingPartition,
                            DriftKind::CredentialExpired,
                            DriftKind::VersionMismatch,
                        ] {
                            db.alert_resolve(droplet.id, kind.code()).await?;
                        }
                        report.recovered += 1;
                    }
                    continue;
                }
                for d in &drifts {
                    *report.drifts.entry(d.kind.code().to_owned()).or_default() += 1;
                }
                self.record(db, &droplet, &drifts).await?;
                report.healed += self.heal(db, &droplet, &drifts).await;
            }
        }
        Ok(report)
    }

    async fn compare(
        &self,
        db: &Database,
        droplet: &Droplet,
        hb: &serde_json::Value,
        now: i64,
    ) -> Result<Vec<Drift>, StoreError> {
        let desired: Vec<DesiredWorkflow> = db
            .droplet_workflows(droplet.id)
            .await?
            .into_iter()
            .map(|r| DesiredWorkflow {
                workflow_id: r.workflow_id,
                active: r.active,
                template_version: r.template_version,
            })
            .collect();
        let actual: Vec<ActualWorkflow> =
            serde_json::from_value::<Vec<WorkflowState>>(hb["workflows"].clone())
                .unwrap_or_default()
                .into_iter()
                .map(|w| ActualWorkflow {
                    workflow_id: w.id,
                    active: w.active,
                    template_version: None,
                })
                .collect();
        let credentials: Vec<ActualCredential> =
            serde_json::from_value::<Vec<CredentialState>>(hb["credentials"].clone())
                .unwrap_or_default()
                .into_iter()
                .map(|c| ActualCredential {
                    credential_id: c.id,
                    expires_at: c.expires_at,
                })
                .collect();
        let partition_exists = PartitionManager::new(db.clone())
            .get(droplet.workspace_id)
            .await?
            .is_some();
        Ok(detect(
            &DriftInput {
                desired: &desired,
                actual: &actual,
                credentials: &credentials,
                partition_exists,
            },
            now,
        ))
    }

    async fn record(
        &self,
        db: &Database,
        droplet: &Droplet,
        drifts: &[Drift],
    ) -> Result<(), StoreError> {
        let mut by_kind: BTreeMap<DriftKind, Vec<Option<String>>> = BTreeMap::new();
        for d in drifts {
            by_kind.entry(d.kind).or_default().push(d.subject.clone());
        }
        for (kind, subjects) in by_kind {
            let details =
                serde_json::json!({ "subjects": subjects, "auto_healable": kind.auto_healable() });
            let summary = format!("{} on droplet {}", kind.code(), droplet.id);
            db.alert_raise(
                &NewAlert {
                    workspace: Some(droplet.workspace_id),
                    droplet: Some(droplet.id),
                    kind: kind.code(),
                    severity: kind.severity(),
                    summary: &summary,
                    details: &details,
                },
                &self.actor,
            )
            .await?;
            db.audit_record(
                &AuditEvent::new(&self.actor, "watchdog", "DRIFT_DETECTED")
                    .workspace(droplet.workspace_id)
                    .subject(droplet.id.to_string())
                    .details(serde_json::json!({ "kind": kind.code(), "subjects": subjects })),
            )
            .await?;
        }
        if matches!(
            droplet.state,
            DropletState::ActiveHealthy | DropletState::ActiveDegraded
        ) {
            match db
                .droplet_transition(
                    droplet.id,
                    droplet.version,
                    DropletEvent::DriftFound,
                    &self.actor,
                )
                .await
            {
                Ok(_) | Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends spec 43.3's heals; returns how many succeeded (failures retry next pass).
    async fn heal(&self, db: &Database, droplet: &Droplet, drifts: &[Drift]) -> usize {
        let Some(provider) = droplet.provider_id else {
            return 0;
        };
        let ip = match self.cloud.droplet_get(provider).await {
            Ok(d) => match d.public_ipv4() {
                Some(ip) => ip.to_owned(),
                None => return 0,
            },
            Err(e) => {
                tracing::warn!(droplet = %droplet.id, error = %e, "cannot reach the droplet to heal");
                return 0;
            }
        };
        let desired: BTreeMap<String, bool> = db
            .droplet_workflows(droplet.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.workflow_id, r.active))
            .collect();
        let mut healed = 0;
        for d in drifts.iter().filter(|d| d.kind.auto_healable()) {
            let Some(id) = d.subject.clone() else {
                continue;
            };
            let commands = match d.kind {
                DriftKind::StateMismatch => vec![if desired.get(&id).copied().unwrap_or(false) {
                    Command::ActivateWorkflow {
                        workflow_id: id.clone(),
                    }
                } else {
                    Command::DeactivateWorkflow {
                        workflow_id: id.clone(),
                    }
                }],
                DriftKind::OrphanWorkflow => vec![
                    Command::DeactivateWorkflow {
                        workflow_id: id.clone(),
                    },
                    Command::DeleteWorkflow {
                        workflow_id: id.clone(),
                    },
                ],
                _ => continue,
            };
            let mut ok = true;
            for cmd in &commands {
                if let Err(e) = self
                    .sidecar
                    .send(&ip, droplet.workspace_id.as_uuid(), provider, cmd)
                    .await
                {
                    // Deactivating an inactive workflow may fail; deleting is what counts.
                    if !matches!(cmd, Command::DeactivateWorkflow { .. }) {
                        tracing::warn!(droplet = %droplet.id, error = %e, "heal failed; next pass retries");
                        ok = false;
                    }
                }
            }
            if ok {
                healed += 1;
                let _ = db
                    .audit_record(
                        &AuditEvent::new(&self.actor, "watchdog", "DRIFT_HEALED")
                            .workspace(droplet.workspace_id)
                            .subject(droplet.id.to_string())
                            .details(
                                serde_json::json!({ "kind": d.kind.code(), "workflow_id": id }),
                            ),
                    )
                    .await;
            }
        }
        healed
    }
}
