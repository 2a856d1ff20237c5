//! The state-reconciliation watchdog (spec 43), as a reconciler run by the leader only.
//!
//! Each pass compares, for every serving droplet, what the database says it should run (the
//! workflows its ignition or a redeploy recorded, its workspace's partition) with what its
//! sidecar last reported (workflows with their active flag and template version tag,
//! credentials with their OAuth expiry), through the pure rules of `genesis_core::drift`.
//! Then it:
//! - opens an alert per drift type (refreshing an open one), and audits the detection;
//! - moves the droplet to DRIFT_DETECTED through its state machine;
//! - queues one heal job per auto-healable drift ([`super::heals`]): workflow heals on the
//!   `template` queue, OAuth refreshes on the `security` queue (spec 52.1), so heals share
//!   the fleet's governor (its rate limit and concurrency) with every other fleet job;
//! - once a later pass finds nothing, moves the droplet back to ACTIVE_HEALTHY and resolves
//!   its alerts.
//!
//! # Guarantees
//! - A drift seen in one heartbeat is healed at most once: the job id names the droplet,
//!   the drift and the heartbeat it was seen in, so later passes over the same report add
//!   nothing. If the heal fails for good, the next heartbeat that still shows the drift
//!   queues a fresh attempt (the heartbeat interval bounds the retry rate).
//! - `missing_partition` is never healed (spec 43.2): it is a CRITICAL alert for a person.
//! - Only whole inventories taken after the last change to the desired state are compared
//!   (the sidecar stamps each inventory and sends none when n8n does not answer), so a late
//!   or partial report never reads as missing workflows.
//! - A campaign already marked in error (a healed `orphan_db_record`) is no longer expected
//!   in n8n until a redeploy replaces it; if its workflow shows up again, the error is
//!   cleared, and it is never deleted as an orphan.

use genesis_core::audit::AuditCategory;
use std::collections::BTreeMap;
use std::time::Duration;

use genesis_core::drift::{
    ActualCredential, ActualWorkflow, DesiredWorkflow, Drift, DriftInput, DriftKind, detect,
};
use genesis_core::{DropletEvent, DropletState};
use genesis_protocol::{CredentialState, WorkflowState};
use genesis_queue::{AddOutcome, Bus};
use genesis_store::{
    AuditEvent, Database, Droplet, NewAlert, PartitionManager, RegionalStore, StoreError,
    WatchedDroplet,
};
use serde::Serialize;

use super::heals::{HealPayload, heal_queue};
use super::reconciler::{Merge, Part, Reconciler};

/// Whether `w`'s latest inventory was taken after the database last changed what the droplet
/// should run. An older one (taken while a deploy was running, and received after it was
/// recorded) would show the new workflows as missing.
fn inventory_is_current(w: &WatchedDroplet) -> bool {
    let Some(taken) = w.heartbeat["inventory_at_ms"].as_i64() else {
        return false;
    };
    w.desired_at
        .is_none_or(|changed| taken > changed.timestamp_millis())
}

/// What one pass did: the reconciler's status value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchdogReport {
    /// Droplets compared.
    pub checked: usize,
    /// Drifts found, by type.
    pub drifts: BTreeMap<String, usize>,
    /// Heal jobs queued (new ones only).
    pub queued: usize,
    /// Droplets left for a later pass: their latest inventory predates the last change to
    /// what they should run.
    pub deferred: usize,
    /// Campaigns in error whose workflow is back in n8n, cleared.
    pub restored: usize,
    /// Droplets back to ACTIVE_HEALTHY.
    pub recovered: usize,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] genesis_queue::QueueError),
}

/// The watchdog.
pub struct Watchdog {
    stores: RegionalStore,
    bus: Bus,
    actor: String,
}

impl Watchdog {
    /// A watchdog over every regional database, queueing heals on `bus` (which must know
    /// the `template` and `security` queues).
    pub fn new(stores: RegionalStore, bus: Bus) -> Self {
        Self {
            stores,
            bus,
            actor: "watchdog".into(),
        }
    }

    /// The drifts of one droplet, or none when what it should run changed after its
    /// inventory was taken (a deploy finished between the pass's listing and this read: the
    /// next heartbeat will show it). Campaigns already in error (a healed `orphan_db_record`)
    /// are not expected in n8n, but their workflows are not strangers either: one that shows
    /// up again clears the error instead of being deleted as an orphan.
    async fn compare(
        &self,
        db: &Database,
        watched: &WatchedDroplet,
        now: i64,
        report: &mut WatchdogReport,
    ) -> Result<Option<Vec<Drift>>, StoreError> {
        let droplet = &watched.droplet;
        let hb = &watched.heartbeat;
        let rows = db.droplet_workflows(droplet.id).await?;
        // Read after the rows: a change that lands in between shows here, so the check errs
        // on the side of waiting.
        let changed = db.droplet_workflows_changed_at(droplet.id).await?;
        let current = WatchedDroplet {
            desired_at: changed,
            ..watched.clone()
        };
        if !inventory_is_current(&current) {
            return Ok(None);
        }
        let (live, errored): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.error.is_none());
        let desired: Vec<DesiredWorkflow> = live
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
                    template_version: w.template_version,
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
        // A hot standby's pool holds no leads, so it has no partition to miss.
        let partition_exists = PartitionManager::new(db.clone())
            .get(droplet.workspace_id)
            .await?
            .is_some()
            || db.is_standby_pool(droplet.workspace_id).await?;
        let mut drifts = detect(
            &DriftInput {
                desired: &desired,
                actual: &actual,
                credentials: &credentials,
                partition_exists,
            },
            now,
        );
        for row in &errored {
            if actual.iter().any(|a| a.workflow_id == row.workflow_id)
                && db
                    .droplet_workflow_clear_error(
                        droplet.workspace_id,
                        droplet.id,
                        &row.workflow_id,
                        &self.actor,
                    )
                    .await?
            {
                report.restored += 1;
            }
        }
        drifts.retain(|d| {
            d.kind != DriftKind::OrphanWorkflow
                || !errored
                    .iter()
                    .any(|r| d.subject.as_deref() == Some(r.workflow_id.as_str()))
        });
        Ok(Some(drifts))
    }

    /// Back to ACTIVE_HEALTHY with every drift alert resolved; false if another actor moved
    /// the droplet first.
    async fn recover(&self, db: &Database, droplet: &Droplet) -> Result<bool, StoreError> {
        match db
            .droplet_transition(
                droplet.id,
                droplet.version,
                DropletEvent::DriftHealed,
                &self.actor,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        for kind in DriftKind::ALL {
            db.alert_resolve(droplet.id, kind.code()).await?;
        }
        Ok(true)
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
                &AuditEvent::new(&self.actor, AuditCategory::Workflows, "DRIFT_DETECTED")
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

    /// Queues a heal per auto-healable drift; answers how many jobs were new.
    async fn queue_heals(
        &self,
        watched: &WatchedDroplet,
        drifts: &[Drift],
    ) -> Result<usize, WatchdogError> {
        let mut queued = 0;
        for d in drifts.iter().filter(|d| d.kind.auto_healable()) {
            let Some(subject) = d.subject.clone() else {
                continue;
            };
            let job_id = format!(
                "heal-{}-{}-{}-{}",
                watched.droplet.id,
                d.kind.code(),
                subject,
                watched.heartbeat_at.timestamp_millis()
            );
            let payload = serde_json::to_string(&HealPayload {
                region: watched.droplet.region,
                droplet: watched.droplet.id.as_uuid(),
                kind: d.kind,
                subject,
                ahead: false,
            })
            .unwrap_or_default();
            if self
                .bus
                .add(heal_queue(d.kind), &job_id, &payload, Duration::ZERO)
                .await?
                == AddOutcome::Created
            {
                queued += 1;
            }
        }
        Ok(queued)
    }
}

impl Merge for WatchdogReport {
    fn merge(&mut self, o: Self) {
        self.checked += o.checked;
        for (kind, n) in o.drifts {
            *self.drifts.entry(kind).or_default() += n;
        }
        self.queued += o.queued;
        self.deferred += o.deferred;
        self.restored += o.restored;
        self.recovered += o.recovered;
    }
}

impl Reconciler for Watchdog {
    type Report = WatchdogReport;
    type Error = WatchdogError;
    const NAME: &'static str = "watchdog";

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<WatchdogReport, WatchdogError> {
        let mut report = WatchdogReport::default();
        let now = chrono::Utc::now().timestamp();
        let db = &part.db;
        {
            for watched in db.droplets_watched(10_000).await? {
                if !inventory_is_current(&watched) {
                    report.deferred += 1;
                    continue;
                }
                let droplet = &watched.droplet;
                let Some(drifts) = self.compare(db, &watched, now, &mut report).await? else {
                    report.deferred += 1;
                    continue;
                };
                report.checked += 1;
                if drifts.is_empty() {
                    if droplet.state == DropletState::DriftDetected
                        && self.recover(db, droplet).await?
                    {
                        report.recovered += 1;
                    }
                    continue;
                }
                for d in &drifts {
                    *report.drifts.entry(d.kind.code().to_owned()).or_default() += 1;
                }
                self.record(db, droplet, &drifts).await?;
                report.queued += self.queue_heals(&watched, &drifts).await?;
            }
        }
        Ok(report)
    }

    fn noteworthy(r: &WatchdogReport) -> bool {
        !r.drifts.is_empty()
    }
}
