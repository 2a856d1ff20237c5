//! Template rollouts (spec 56): the rollout row and its targets, in the coordinating
//! database. Every status change goes through [`RolloutStatus::apply`] with an optimistic
//! version check and is audited in the same transaction.
//!
//! # Guarantees
//! - At most one rollout is RUNNING or PAUSED (a partial unique index).
//! - A target leaves PENDING once: [`Database::rollout_target_finish`] only moves a PENDING
//!   target, so a retried or duplicated job cannot count a droplet twice.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::rollout::{
    RolloutEvent, RolloutPolicy, RolloutScope, RolloutStatus, Scenario, Tally,
};
use genesis_core::{DropletId, Region, WorkspaceId};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::record;
use crate::error::conflict_or;
use crate::{AuditEvent, Database, StoreError};

/// A rollout.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    /// Its id.
    pub id: Uuid,
    /// The template version it deploys.
    pub target_version: String,
    /// When set, the rollout swaps n8n's container to this image (spec 56.2) instead of
    /// redeploying workflows.
    pub n8n_image: Option<String>,
    /// Spec 56.1's scenario.
    pub scenario: Scenario,
    /// Batches and thresholds, in seconds and percent as they were asked for.
    #[serde(serialize_with = "RolloutPolicy::serialize_for_people")]
    #[schema(value_type = genesis_core::rollout::PolicyView)]
    pub policy: RolloutPolicy,
    /// Which droplets.
    pub scope: RolloutScope,
    /// Where it is.
    pub status: RolloutStatus,
    /// Why it paused or aborted.
    pub reason: Option<String>,
    /// Number of batches.
    pub batches: i32,
    /// The batch being sent, or the next one.
    pub current_batch: i32,
    /// Whether the current batch's jobs are queued.
    pub batch_queued: bool,
    /// When the current batch may start.
    pub next_batch_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A droplet a rollout updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RolloutTarget {
    /// The droplet.
    pub droplet: DropletId,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its region (which database holds it).
    pub region: Region,
    /// Its batch (0-based).
    pub batch: i32,
    /// PENDING, DONE, FAILED, DEFERRED or CANCELLED.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Outcomes of a batch (or of the whole rollout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BatchTally {
    /// The batch (-1 for the whole rollout).
    pub batch: i32,
    /// Not yet updated.
    pub pending: i64,
    /// Updated.
    pub done: i64,
    /// Failed.
    pub failed: i64,
    /// Hibernating: updated when it wakes.
    pub deferred: i64,
    /// Not sent (the rollout was aborted).
    pub cancelled: i64,
}

impl BatchTally {
    /// Done and failed, as the policy counts them.
    pub fn tally(&self) -> Tally {
        Tally {
            done: self.done.max(0) as u32,
            failed: self.failed.max(0) as u32,
        }
    }

    /// Targets in all.
    pub fn total(&self) -> i64 {
        self.pending + self.done + self.failed + self.deferred + self.cancelled
    }
}

/// A rollout to start.
#[derive(Debug, Clone)]
pub struct NewRollout {
    /// The template version.
    pub target_version: String,
    /// An n8n image to swap to instead (spec 56.2).
    pub n8n_image: Option<String>,
    /// Spec 56.1's scenario.
    pub scenario: Scenario,
    /// Batches and thresholds.
    pub policy: RolloutPolicy,
    /// Which droplets.
    pub scope: RolloutScope,
    /// The droplets, in rollout order, each with its batch.
    pub targets: Vec<(DropletId, WorkspaceId, Region, i32)>,
}

struct RolloutRow {
    id: Uuid,
    target_version: String,
    n8n_image: Option<String>,
    scenario: String,
    policy: serde_json::Value,
    scope: serde_json::Value,
    status: String,
    reason: Option<String>,
    batches: i32,
    current_batch: i32,
    batch_queued: bool,
    next_batch_at: DateTime<Utc>,
    version: i64,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RolloutRow> for Rollout {
    type Error = StoreError;
    fn try_from(r: RolloutRow) -> Result<Self, StoreError> {
        let corrupt = |what: &'static str, value: String| StoreError::Corrupt { what, value };
        Ok(Rollout {
            id: r.id,
            target_version: r.target_version,
            n8n_image: r.n8n_image,
            scenario: Scenario::parse(&r.scenario)
                .ok_or_else(|| corrupt("rollout scenario", r.scenario.clone()))?,
            policy: serde_json::from_value(r.policy.clone())
                .map_err(|_| corrupt("rollout policy", r.policy.to_string()))?,
            scope: serde_json::from_value(r.scope.clone())
                .map_err(|_| corrupt("rollout scope", r.scope.to_string()))?,
            status: RolloutStatus::parse(&r.status)
                .ok_or_else(|| corrupt("rollout status", r.status.clone()))?,
            reason: r.reason,
            batches: r.batches,
            current_batch: r.current_batch,
            batch_queued: r.batch_queued,
            next_batch_at: r.next_batch_at,
            version: r.version,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn audit_action(to: RolloutStatus) -> &'static str {
    match to {
        RolloutStatus::Running => "ROLLOUT_RESUMED",
        RolloutStatus::Paused => "ROLLOUT_PAUSED",
        RolloutStatus::Completed => "ROLLOUT_COMPLETED",
        RolloutStatus::Aborted => "ROLLOUT_ABORTED",
    }
}

fn workspace_id(u: Uuid) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::from_uuid(u).map_err(|_| StoreError::Corrupt {
        what: "workspace id",
        value: u.to_string(),
    })
}

impl Database {
    /// Starts a rollout with its targets, audited `ROLLOUT_STARTED`. A rollout already in
    /// flight is a [`StoreError::Conflict`].
    pub async fn rollout_create(
        &self,
        new: &NewRollout,
        actor: &str,
    ) -> Result<Rollout, StoreError> {
        let id = Uuid::now_v7();
        let batches = new.targets.iter().map(|t| t.3 + 1).max().unwrap_or(0);
        let status = if new.targets.is_empty() {
            RolloutStatus::Completed
        } else {
            RolloutStatus::Running
        };
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.rollouts
                 (id, target_version, scenario, policy, scope, status, batches, created_by, n8n_image)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
            id,
            new.target_version,
            new.scenario.code(),
            serde_json::to_value(new.policy).unwrap_or_default(),
            serde_json::to_value(&new.scope).unwrap_or_default(),
            status.code(),
            batches,
            actor,
            new.n8n_image,
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "rollout", "another rollout is in flight"))?;
        let droplets: Vec<Uuid> = new.targets.iter().map(|t| t.0.as_uuid()).collect();
        let workspaces: Vec<Uuid> = new.targets.iter().map(|t| t.1.as_uuid()).collect();
        let regions: Vec<String> = new.targets.iter().map(|t| t.2.code().to_owned()).collect();
        let batch: Vec<i32> = new.targets.iter().map(|t| t.3).collect();
        sqlx::query!(
            r#"INSERT INTO genesis.rollout_targets (rollout_id, droplet_id, workspace_id, region, batch)
               SELECT $1, d, w, r, b
               FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[]) AS t(d, w, r, b)"#,
            id,
            &droplets,
            &workspaces,
            &regions,
            &batch,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Operations, "ROLLOUT_STARTED")
                .subject(id.to_string())
                .details(serde_json::json!({
                    "target_version": new.target_version,
                    "n8n_image": new.n8n_image,
                    "scenario": new.scenario.code(),
                    "scope": new.scope,
                    "droplets": new.targets.len(),
                    "batches": batches,
                })),
        )
        .await?;
        tx.commit().await?;
        self.rollout_get(id).await
    }

    /// One rollout.
    pub async fn rollout_get(&self, id: Uuid) -> Result<Rollout, StoreError> {
        sqlx::query_as!(RolloutRow, "SELECT id, target_version, n8n_image, scenario, policy, scope, status, reason, batches, current_batch, batch_queued, next_batch_at, version, created_by, created_at, updated_at FROM genesis.rollouts WHERE id = $1", id)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or(StoreError::NotFound { what: "rollout" })?
            .try_into()
    }

    /// Up to `limit` rollouts, newest first, after rollout `after` in that order (keyset:
    /// `(created_at, id)`, so a rollout started while an operator pages is never skipped or
    /// shown twice).
    pub async fn rollout_list(
        &self,
        limit: i64,
        after: Option<uuid::Uuid>,
    ) -> Result<Vec<Rollout>, StoreError> {
        sqlx::query_as!(
            RolloutRow,
            "SELECT id, target_version, n8n_image, scenario, policy, scope, status, reason, batches, current_batch, batch_queued, next_batch_at, version, created_by, created_at, updated_at FROM genesis.rollouts WHERE $2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM genesis.rollouts WHERE id = $2) ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
            after
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Rollout::try_from)
        .collect()
    }

    /// Rollouts the conductor drives (RUNNING).
    pub async fn rollouts_running(&self) -> Result<Vec<Rollout>, StoreError> {
        sqlx::query_as!(
            RolloutRow,
            "SELECT id, target_version, n8n_image, scenario, policy, scope, status, reason, batches, current_batch, batch_queued, next_batch_at, version, created_by, created_at, updated_at FROM genesis.rollouts WHERE status = 'RUNNING' ORDER BY created_at"
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Rollout::try_from)
        .collect()
    }

    /// Moves a rollout through its lifecycle (from version `version`), audited
    /// `ROLLOUT_PAUSED`, `_RESUMED`, `_COMPLETED` or `_ABORTED` with `reason`. The reason
    /// says why a rollout stopped, so a resume clears it unless it gives its own.
    pub async fn rollout_move(
        &self,
        id: Uuid,
        version: i64,
        event: RolloutEvent,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<Rollout, StoreError> {
        let current = self.rollout_get(id).await?;
        let to = current
            .status
            .apply(event)
            .map_err(|e| StoreError::Invalid {
                field: "status",
                message: e.to_string(),
            })?;
        let mut tx = self.app.begin().await?;
        let moved = sqlx::query!(
            r#"UPDATE genesis.rollouts
               SET status = $3,
                   reason = CASE WHEN $3 = 'RUNNING' THEN $4 ELSE COALESCE($4, reason) END,
                   version = version + 1,
                   updated_at = now()
               WHERE id = $1 AND version = $2"#,
            id,
            version,
            to.code(),
            reason,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::VersionConflict {
                what: "rollout",
                expected: version,
            });
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Operations, audit_action(to))
                .subject(id.to_string())
                .details(serde_json::json!({ "from": current.status.code(), "reason": reason })),
        )
        .await?;
        tx.commit().await?;
        self.rollout_get(id).await
    }

    /// Records that the current batch's jobs are queued. False if the rollout changed.
    pub async fn rollout_batch_queued(&self, id: Uuid, version: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.rollouts SET batch_queued = true, version = version + 1, updated_at = now()
               WHERE id = $1 AND version = $2"#,
            id,
            version,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected()
            == 1)
    }

    /// Moves to the next batch, which may start at `at`. False if the rollout changed.
    pub async fn rollout_batch_advance(
        &self,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.rollouts
               SET current_batch = current_batch + 1, batch_queued = false, next_batch_at = $3,
                   version = version + 1, updated_at = now()
               WHERE id = $1 AND version = $2"#,
            id,
            version,
            at,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected()
            == 1)
    }

    /// The targets of one batch.
    pub async fn rollout_batch_targets(
        &self,
        id: Uuid,
        batch: i32,
    ) -> Result<Vec<RolloutTarget>, StoreError> {
        sqlx::query!(
            r#"SELECT droplet_id, workspace_id, region, batch, status, error
               FROM genesis.rollout_targets WHERE rollout_id = $1 AND batch = $2
               ORDER BY droplet_id"#,
            id,
            batch,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(RolloutTarget {
                droplet: DropletId::from_uuid(r.droplet_id),
                workspace: workspace_id(r.workspace_id)?,
                region: Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                    what: "target region",
                    value: r.region.clone(),
                })?,
                batch: r.batch,
                status: r.status,
                error: r.error,
            })
        })
        .collect()
    }

    /// One target's status (PENDING, DONE, ...), if it is one.
    pub async fn rollout_target_status(
        &self,
        id: Uuid,
        droplet: DropletId,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            "SELECT status FROM genesis.rollout_targets WHERE rollout_id = $1 AND droplet_id = $2",
            id,
            droplet.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?)
    }

    /// Moves a PENDING target to `status` (DONE, FAILED, DEFERRED or CANCELLED) with
    /// `error`. False when it was not pending: it has been counted already.
    pub async fn rollout_target_finish(
        &self,
        id: Uuid,
        droplet: DropletId,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.rollout_target_move(id, droplet, "PENDING", status, error)
            .await
    }

    /// Moves a DEFERRED target (a droplet that was hibernating) to its outcome once the
    /// update was applied on wake. False when it was not deferred.
    pub async fn rollout_target_settle(
        &self,
        id: Uuid,
        droplet: DropletId,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.rollout_target_move(id, droplet, "DEFERRED", status, error)
            .await
    }

    async fn rollout_target_move(
        &self,
        id: Uuid,
        droplet: DropletId,
        from: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.rollout_targets SET status = $3, error = $4, updated_at = now()
               WHERE rollout_id = $1 AND droplet_id = $2 AND status = $5"#,
            id,
            droplet.as_uuid(),
            status,
            error,
            from,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected()
            == 1)
    }

    /// Image rollouts' DEFERRED targets, the newest image rollout's only per droplet (an
    /// older image is superseded: see [`Self::rollout_supersede_deferred`]).
    pub async fn rollout_deferred_images(
        &self,
        limit: i64,
    ) -> Result<Vec<(Uuid, DropletId, Region)>, StoreError> {
        sqlx::query!(
            r#"SELECT DISTINCT ON (t.droplet_id) t.rollout_id, t.droplet_id, t.region
               FROM genesis.rollout_targets t JOIN genesis.rollouts r ON r.id = t.rollout_id
               WHERE t.status = 'DEFERRED' AND r.n8n_image IS NOT NULL
               ORDER BY t.droplet_id, r.created_at DESC
               LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                r.rollout_id,
                DropletId::from_uuid(r.droplet_id),
                Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                    what: "target region",
                    value: r.region.clone(),
                })?,
            ))
        })
        .collect()
    }

    /// Cancels the droplet's DEFERRED targets of image rollouts older than `rollout`: on
    /// wake only the newest image is swapped in. Answers how many.
    pub async fn rollout_supersede_deferred(
        &self,
        rollout: Uuid,
        droplet: DropletId,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.rollout_targets t
               SET status = 'CANCELLED', error = 'superseded by rollout ' || $1::uuid::text,
                   updated_at = now()
               FROM genesis.rollouts r
               WHERE r.id = t.rollout_id AND t.droplet_id = $2 AND t.status = 'DEFERRED'
                 AND t.rollout_id <> $1 AND r.n8n_image IS NOT NULL"#,
            rollout,
            droplet.as_uuid(),
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected())
    }

    /// Cancels every PENDING target (an aborted rollout sends nothing more).
    pub async fn rollout_cancel_pending(&self, id: Uuid) -> Result<u64, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.rollout_targets SET status = 'CANCELLED', updated_at = now()
               WHERE rollout_id = $1 AND status = 'PENDING'"#,
            id,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected())
    }

    /// How many of a batch's targets have no outcome yet: an index-only count of the
    /// pending ones, which the conductor asks every pass (the full tally reads every target
    /// of the rollout).
    pub async fn rollout_batch_pending(&self, id: Uuid, batch: i32) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.rollout_targets
               WHERE rollout_id = $1 AND batch = $2 AND status = 'PENDING'"#,
            id,
            batch,
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// Outcomes per batch, in batch order.
    pub async fn rollout_batches(&self, id: Uuid) -> Result<Vec<BatchTally>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT batch AS "batch!",
                      count(*) FILTER (WHERE status = 'PENDING') AS "pending!",
                      count(*) FILTER (WHERE status = 'DONE') AS "done!",
                      count(*) FILTER (WHERE status = 'FAILED') AS "failed!",
                      count(*) FILTER (WHERE status = 'DEFERRED') AS "deferred!",
                      count(*) FILTER (WHERE status = 'CANCELLED') AS "cancelled!"
               FROM genesis.rollout_targets WHERE rollout_id = $1
               GROUP BY batch ORDER BY batch"#,
            id,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| BatchTally {
            batch: r.batch,
            pending: r.pending,
            done: r.done,
            failed: r.failed,
            deferred: r.deferred,
            cancelled: r.cancelled,
        })
        .collect())
    }

    /// Droplets a rollout of `scope` updates in this database: serving or hibernating, of
    /// an ACTIVE workspace, in id order.
    pub async fn rollout_candidates(
        &self,
        scope: &RolloutScope,
    ) -> Result<Vec<(DropletId, WorkspaceId, Region)>, StoreError> {
        let (region, tier, ids): (Option<String>, Option<String>, Option<Vec<Uuid>>) = match scope {
            RolloutScope::All => (None, None, None),
            RolloutScope::Region { region } => (Some(region.code().to_owned()), None, None),
            RolloutScope::Tier { tier } => (None, Some(tier.code().to_owned()), None),
            RolloutScope::Workspaces { ids } => {
                (None, None, Some(ids.iter().map(|w| w.as_uuid()).collect()))
            }
        };
        sqlx::query!(
            r#"SELECT d.id, d.workspace_id, d.region
               FROM genesis.droplets d JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE w.status = 'ACTIVE'
                 AND d.state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED', 'HIBERNATING')
                 AND ($1::text IS NULL OR d.region = $1)
                 AND ($2::text IS NULL OR w.tier = $2)
                 AND ($3::uuid[] IS NULL OR d.workspace_id = ANY($3))
               ORDER BY d.id"#,
            region,
            tier,
            ids.as_deref(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                DropletId::from_uuid(r.id),
                workspace_id(r.workspace_id)?,
                Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                    what: "droplet region",
                    value: r.region.clone(),
                })?,
            ))
        })
        .collect()
    }
}
