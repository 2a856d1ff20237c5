//! The deletion saga (spec 64.2): once a deletion's grace period is over, seven forward-only
//! steps take everything of the tenant away but its anonymised history, and leave a
//! certificate of what went and when.
//!
//! | step | what | where its effect is |
//! |---|---|---|
//! | 1 | the final export, kept 30 days | a ZIP in the export directory |
//! | 2 | the droplet, its snapshots and images | the cloud, checked by tag and by id |
//! | 3 | the lead partition, `DETACH CONCURRENTLY`, then `DROP` | DDL on its own connection |
//! | 4 | vault, webhooks, tokens, sessions, members, every other row | one transaction |
//! | 5 | the wallet: balance closed, ledger anonymised | Redis, then one transaction |
//! | 6 | the audit trail's personal fields | one transaction |
//! | 7 | TERMINATED and the certificate | one transaction |
//!
//! # Guarantees
//! - Each step is idempotent and recorded once ([`genesis_store::deletion_saga`]): a crash
//!   between a step's effect and its record runs the step again, which finds its work done
//!   (a file rewritten, nothing left at the cloud, the partition gone, no rows left).
//! - Steps 4 to 7 change the data and record themselves in one transaction.
//! - One replica moves a saga at a time (a lease); a replica that dies lets the lease lapse.
//! - A step that fails is retried at the next pass; the error is kept on the deletion.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use genesis_cloud::{Cloud, CloudError};
use genesis_core::WorkspaceId;
use genesis_core::deletion::{DeletionStep, FINAL_EXPORT_KEPT};
use genesis_store::{
    AuditChainKey, Database, DeletionProgress, PartitionManager, PartitionOutcome, RegionalStore,
    StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::wallet::Wallets;

/// Who the saga's audit rows name.
pub const ACTOR: &str = "system:deletion";

/// How long a replica holds a saga: longer than any one step (an export of millions of
/// leads takes tens of seconds), renewed before each step.
const LEASE: Duration = Duration::from_secs(10 * 60);

/// Why a step could not be done now (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud API.
    #[error("the cloud API: {0}")]
    Cloud(#[from] CloudError),
    /// The cloud still lists something of the tenant after it was deleted.
    #[error("the cloud still holds {0}")]
    CloudResidue(String),
    /// Writing the final export.
    #[error("the final export could not be written: {0}")]
    Export(String),
    /// The wallet's cache.
    #[error("the wallet's cache: {0}")]
    Wallet(String),
    /// Step 6 needs `server.audit_key` to keep the chain verifiable.
    #[error("the audit trail cannot be anonymised without server.audit_key")]
    NoAuditKey,
}

/// Moves deletion sagas.
pub struct Purger<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    wallets: Option<Arc<Wallets>>,
    exports: PathBuf,
    audit_key: Option<AuditChainKey>,
}

/// The final export's directory, relative to the export root: `export.zip`, and
/// `export-part2.zip`... beyond 500k leads.
pub fn final_export_file(ws: WorkspaceId) -> String {
    format!("final/{}", ws.as_uuid())
}

impl<C: Cloud> Purger<C> {
    /// A purger over `stores` and `cloud`, writing final exports under `exports`.
    pub fn new(
        stores: RegionalStore,
        cloud: Arc<C>,
        wallets: Option<Arc<Wallets>>,
        exports: PathBuf,
        audit_key: Option<AuditChainKey>,
    ) -> Self {
        Self {
            stores,
            cloud,
            wallets,
            exports,
            audit_key,
        }
    }

    /// Moves `ws`'s deletion as far as it goes: all seven steps, unless one fails (the
    /// error is kept, and the next pass retries it) or another replica holds it (`None`).
    pub async fn advance(&self, ws: WorkspaceId) -> Result<Option<DeletionProgress>, PurgeError> {
        let (_, db) = self.stores.workspace_find(ws).await?;
        let owner = Uuid::now_v7();
        if !db.deletion_lease(ws, owner, LEASE).await? {
            return Ok(None);
        }
        let result = self.advance_leased(db, ws, owner).await;
        let error = result.as_ref().err().map(ToString::to_string);
        if let Err(e) = db.deletion_release(ws, owner, error.as_deref()).await {
            tracing::warn!(workspace = %ws, error = %e, "deletion lease not released; it will lapse");
        }
        result.map(Some)
    }

    async fn advance_leased(
        &self,
        db: &Database,
        ws: WorkspaceId,
        owner: Uuid,
    ) -> Result<DeletionProgress, PurgeError> {
        let mut progress = db.deletion_begin(ws, ACTOR, Utc::now()).await?;
        while let Some(step) = progress.next() {
            if !db.deletion_lease(ws, owner, LEASE).await? {
                break;
            }
            self.run_step(db, ws, step).await?;
            metrics::counter!("genesis_deletion_steps_total", "step" => step.code()).increment(1);
            progress = db
                .deletion_progress(ws)
                .await?
                .ok_or(StoreError::NotFound { what: "deletion" })?;
        }
        Ok(progress)
    }

    /// Runs `step` and records it. Steps 1 to 3 have their effects outside the database,
    /// made by [`Purger::step_effect`] and then recorded; 4 to 7 are one transaction.
    pub async fn run_step(
        &self,
        db: &Database,
        ws: WorkspaceId,
        step: DeletionStep,
    ) -> Result<(), PurgeError> {
        match step {
            DeletionStep::FinalExport
            | DeletionStep::CloudResources
            | DeletionStep::LeadPartition => {
                let removed = self.step_effect(db, ws, step).await?;
                let export = (step == DeletionStep::FinalExport).then(|| {
                    let until = Utc::now()
                        + chrono::TimeDelta::from_std(FINAL_EXPORT_KEPT)
                            .unwrap_or(chrono::TimeDelta::MAX);
                    (final_export_file(ws), until)
                });
                db.deletion_step_done(
                    ws,
                    step,
                    ACTOR,
                    removed,
                    export.as_ref().map(|(f, t)| (f.as_str(), *t)),
                )
                .await?;
            }
            DeletionStep::TenantRows => {
                self.step_effect(db, ws, step).await?;
                db.deletion_purge_rows(ws, ACTOR).await?;
            }
            DeletionStep::Wallet => {
                self.step_effect(db, ws, step).await?;
                db.deletion_close_wallet(ws, ACTOR).await?;
            }
            DeletionStep::AuditTrail => {
                let key = self.audit_key.as_ref().ok_or(PurgeError::NoAuditKey)?;
                db.deletion_anonymise_audit(ws, ACTOR, key).await?;
            }
            DeletionStep::Terminate => {
                db.deletion_terminate(ws, ACTOR).await?;
            }
        }
        Ok(())
    }

    /// What `step` does outside its recording transaction (for steps 4 and 5, the part
    /// outside the database: the slug's global claim, the wallet's cache). Idempotent;
    /// returns what it removed, for the certificate. Public so that tests can make a step's
    /// effect and then "crash" before its record.
    pub async fn step_effect(
        &self,
        db: &Database,
        ws: WorkspaceId,
        step: DeletionStep,
    ) -> Result<Value, PurgeError> {
        match step {
            DeletionStep::FinalExport => {
                let (progress, _) = tokio::sync::watch::channel((None, 0));
                let written = super::exports::write_archive(
                    db,
                    ws,
                    &self.exports,
                    &final_export_file(ws),
                    Default::default(),
                    progress,
                )
                .await
                .map_err(|e| PurgeError::Export(e.to_string()))?;
                Ok(json!({
                    "files": written.parts.iter().map(|p| &p.file).collect::<Vec<_>>(),
                    "leads": written.counts.leads,
                    "audit_rows": written.counts.audit_rows,
                    "transfers": written.counts.transfers,
                    "bytes": written.counts.bytes,
                }))
            }
            DeletionStep::CloudResources => self.destroy_cloud(db, ws).await,
            DeletionStep::LeadPartition => {
                let outcome = PartitionManager::new(db.clone()).drop(ws, ACTOR).await?;
                Ok(json!({ "partition": match outcome {
                    PartitionOutcome::AlreadyGone => "none",
                    _ => "dropped",
                }}))
            }
            DeletionStep::TenantRows => {
                // Exports asked for earlier go with the rows that list them.
                match tokio::fs::remove_dir_all(
                    self.exports.join(format!("requests/{}", ws.as_uuid())),
                )
                .await
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(PurgeError::Export(e.to_string())),
                }
                // The short name's global claim first: once the row is scrubbed, nothing
                // would say which claim was this tenant's.
                let (w, _) = self.stores.workspace_find(ws).await?;
                if !w.slug.as_str().starts_with("deleted_") {
                    self.stores.coordinator().slug_release(&w.slug).await?;
                }
                // What the coordinating database holds of it (its rollouts' failure texts).
                let (targets, journal) = self
                    .stores
                    .coordinator()
                    .deletion_coordinator_scrub(ws)
                    .await?;
                Ok(serde_json::json!({
                    "coordinator": { "rollout_errors_scrubbed": targets, "journal_removed": journal }
                }))
            }
            DeletionStep::Wallet => {
                if let Some(wallets) = &self.wallets {
                    super::wallet_sync::sync(wallets)
                        .await
                        .map_err(|p| PurgeError::Wallet(p.detail))?;
                    let cache = wallets.cache();
                    let left = cache
                        .snapshot(ws.as_uuid(), 1)
                        .await
                        .map_err(|e| PurgeError::Wallet(e.to_string()))?
                        .map_or(0, |s| s.journal_len);
                    if left > 0 {
                        return Err(PurgeError::Wallet(format!(
                            "{left} journal entries are not in the ledger yet"
                        )));
                    }
                    cache
                        .forget(ws.as_uuid())
                        .await
                        .map_err(|e| PurgeError::Wallet(e.to_string()))?;
                }
                Ok(Value::Null)
            }
            DeletionStep::AuditTrail | DeletionStep::Terminate => Ok(Value::Null),
        }
    }

    /// Step 2: every droplet the tenant had (by the ids recorded and by its tag at the
    /// cloud), their snapshots (by the droplet they were taken of, or by the tenant's tag),
    /// deleted; then the cloud is asked again, and must hold none of them.
    async fn destroy_cloud(&self, db: &Database, ws: WorkspaceId) -> Result<Value, PurgeError> {
        let tag = genesis_ignition::igniter::workspace_tag(ws);
        let rows = db.deletion_droplets(ws).await?;
        let mut ids: Vec<i64> = rows.iter().filter_map(|(_, p)| *p).collect();
        ids.extend(
            self.cloud
                .droplet_list_by_tag(&tag)
                .await?
                .iter()
                .map(|d| d.id),
        );
        ids.sort_unstable();
        ids.dedup();
        let theirs = |s: &genesis_cloud::Snapshot| {
            s.tags.contains(&tag)
                || s.resource_id
                    .as_deref()
                    .and_then(|r| r.parse::<i64>().ok())
                    .is_some_and(|r| ids.contains(&r))
        };
        let mut snapshots: Vec<i64> = self
            .cloud
            .snapshot_list()
            .await?
            .iter()
            .filter(|s| theirs(s))
            .map(|s| s.id)
            .collect();
        snapshots.sort_unstable();
        for id in &snapshots {
            self.cloud.snapshot_delete(*id).await?;
        }
        for id in &ids {
            self.cloud.droplet_delete(*id).await?;
        }
        // Checked, not assumed: by tag, by each id, and the snapshots again.
        let left = self.cloud.droplet_list_by_tag(&tag).await?;
        if !left.is_empty() {
            return Err(PurgeError::CloudResidue(format!(
                "{} droplet(s) tagged {tag}",
                left.len()
            )));
        }
        for id in &ids {
            match self.cloud.droplet_get(*id).await {
                Err(CloudError::NotFound) => {}
                Ok(_) => return Err(PurgeError::CloudResidue(format!("droplet {id}"))),
                Err(e) => return Err(e.into()),
            }
        }
        let snaps_left = self
            .cloud
            .snapshot_list()
            .await?
            .iter()
            .filter(|s| theirs(s))
            .count();
        if snaps_left > 0 {
            return Err(PurgeError::CloudResidue(format!(
                "{snaps_left} snapshot(s)"
            )));
        }
        for (droplet, _) in &rows {
            db.droplet_terminate(*droplet, ACTOR).await?;
        }
        Ok(json!({ "droplets": ids, "snapshots": snapshots }))
    }
}
