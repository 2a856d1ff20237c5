//! The deletion saga's record (issue 25, spec 64.2): which deletions are due, who moves each
//! one, how far it has come, and the certificate it builds.
//!
//! # Guarantees
//! - Forward-only: `step` only grows, one at a time; a step is recorded once.
//! - The steps that only touch this database (4 to 7) change the data and record the step in
//!   one transaction, through SECURITY DEFINER functions that act only on a workspace at that
//!   step of its deletion: the runtime role stays unable to delete a vault or rewrite an
//!   audit row for any other purpose.
//! - Once begun (`started_at`), a deletion cannot be called off; it begins only after its
//!   grace period, under the workspace's row lock, as a cancellation takes it.
//! - Every step writes an audit row (Data: DELETION_STEP) without personal data: counts and
//!   ids, never names.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::deletion::DeletionStep;
use genesis_core::{WorkspaceEvent, WorkspaceId};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::audit_chain::AuditChainKey;
use crate::workspaces::transition_in;
use crate::{Database, StoreError};

/// Audit rows anonymised per statement.
const ANONYMISE_BATCH: i64 = 2_000;

/// Where a deletion saga stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeletionProgress {
    /// Steps done, 0 to 7.
    pub step: i32,
    /// When the saga began (the grace period was over).
    pub started_at: Option<DateTime<Utc>>,
    /// When the workspace became TERMINATED.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last error a step met (it is retried).
    pub last_error: Option<String>,
    /// One entry per step done: its number, code, time and what it removed.
    #[schema(value_type = Vec<Object>)]
    pub certificate: Value,
    /// The final export's file (relative to the export directory), while it is kept.
    pub export_file: Option<String>,
    /// Until when it is kept.
    pub export_expires_at: Option<DateTime<Utc>>,
}

impl DeletionProgress {
    /// The next step to run; `None` when all seven are done.
    pub fn next(&self) -> Option<DeletionStep> {
        DeletionStep::from_number(self.step + 1)
    }
}

fn gd004(e: &sqlx::Error) -> bool {
    crate::error::sqlstate(e).as_deref() == Some("GD004")
}

fn out_of_order(ws: WorkspaceId, step: DeletionStep) -> StoreError {
    StoreError::Refused {
        what: "deletion",
        message: format!(
            "workspace {ws} is not at step {} ({}) of its deletion",
            step.number(),
            step.code()
        ),
    }
}

/// What a deleted tenant's rollout failure texts become.
pub const SCRUBBED_ERROR: &str = "removed with the tenant";

impl Database {
    /// Workspaces whose grace period is over at `now` and whose deletion is not finished,
    /// oldest first, skipping those another replica holds.
    pub async fn deletion_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<WorkspaceId>, StoreError> {
        sqlx::query_scalar!(
            r#"SELECT workspace_id FROM genesis.deletions
               WHERE cancelled_at IS NULL AND finished_at IS NULL AND purge_after <= $1
                 AND (lease_until IS NULL OR lease_until < now())
               ORDER BY purge_after LIMIT $2"#,
            now,
            limit
        )
        .fetch_all(&self.app)
        .await?
        .into_iter()
        .map(crate::accounts::workspace_id)
        .collect()
    }

    /// Takes (or renews) the lease on `ws`'s deletion for `owner`; false when another holds
    /// it, or there is nothing to move.
    pub async fn deletion_lease(
        &self,
        ws: WorkspaceId,
        owner: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let n = sqlx::query!(
            r#"UPDATE genesis.deletions
               SET lease_owner = $2, lease_until = now() + make_interval(secs => $3::bigint / 1000.0)
               WHERE workspace_id = $1 AND cancelled_at IS NULL AND finished_at IS NULL
                 AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $2)"#,
            ws.as_uuid(),
            owner,
            ms
        )
        .execute(&self.app)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives the lease back, keeping `error` (the step's failure, retried later) or clearing
    /// it.
    pub async fn deletion_release(
        &self,
        ws: WorkspaceId,
        owner: Uuid,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.deletions
               SET lease_owner = NULL, lease_until = NULL, last_error = $3
               WHERE workspace_id = $1 AND lease_owner = $2 AND cancelled_at IS NULL"#,
            ws.as_uuid(),
            owner,
            error
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Where `ws`'s deletion stands (the open or finished one); `None` when it has none.
    pub async fn deletion_progress(
        &self,
        ws: WorkspaceId,
    ) -> Result<Option<DeletionProgress>, StoreError> {
        Ok(sqlx::query_as!(
            DeletionProgress,
            r#"SELECT step, started_at, finished_at, last_error, certificate,
                      export_file, export_expires_at
               FROM genesis.deletions WHERE workspace_id = $1 AND cancelled_at IS NULL"#,
            ws.as_uuid()
        )
        .fetch_optional(&self.app)
        .await?)
    }

    /// Begins the saga of `ws` at `now`, if its grace period is over; from then on it cannot
    /// be called off. Idempotent.
    pub async fn deletion_begin(
        &self,
        ws: WorkspaceId,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<DeletionProgress, StoreError> {
        let mut tx = self.app.begin().await?;
        crate::workspaces::lock_in(&mut tx, ws).await?;
        let begun = sqlx::query_scalar!(
            r#"UPDATE genesis.deletions SET started_at = $2
               WHERE workspace_id = $1 AND cancelled_at IS NULL AND started_at IS NULL
                 AND purge_after <= $2
               RETURNING requested_at"#,
            ws.as_uuid(),
            now
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(requested_at) = begun {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Data, "DELETION_STARTED")
                    .workspace(ws)
                    .details(json!({ "requested_at": requested_at })),
            )
            .await?;
        }
        tx.commit().await?;
        let progress = self
            .deletion_progress(ws)
            .await?
            .ok_or(StoreError::Refused {
                what: "deletion",
                message: "this workspace is not being deleted".into(),
            })?;
        if progress.started_at.is_none() {
            return Err(StoreError::Refused {
                what: "deletion",
                message: "the grace period is not over yet".into(),
            });
        }
        Ok(progress)
    }

    /// Records `step` as done with what it `removed`, in `conn`'s transaction, with its
    /// audit row. False when it was recorded already (a re-run); refused when the saga is
    /// not at that step.
    async fn deletion_step_in(
        conn: &mut sqlx::PgConnection,
        ws: WorkspaceId,
        step: DeletionStep,
        actor: &str,
        removed: Value,
        export: Option<(&str, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        let entry = json!({
            "step": step.number(),
            "code": step.code(),
            "what": step.describe(),
            "removed": removed,
        });
        let moved = sqlx::query_scalar!(
            r#"UPDATE genesis.deletions
               SET step = $2,
                   certificate = certificate
                       || jsonb_build_array($3::jsonb || jsonb_build_object('at', now())),
                   finished_at = CASE WHEN $2 = 7 THEN now() END,
                   export_file = coalesce($4, export_file),
                   export_expires_at = coalesce($5, export_expires_at),
                   last_error = NULL
               WHERE workspace_id = $1 AND cancelled_at IS NULL AND started_at IS NOT NULL
                 AND step = $2 - 1
               RETURNING step"#,
            ws.as_uuid(),
            step.number(),
            entry,
            export.map(|e| e.0),
            export.map(|e| e.1),
        )
        .fetch_optional(&mut *conn)
        .await?;
        if moved.is_none() {
            let at = sqlx::query_scalar!(
                "SELECT step FROM genesis.deletions WHERE workspace_id = $1 AND cancelled_at IS NULL",
                ws.as_uuid()
            )
            .fetch_optional(&mut *conn)
            .await?;
            return match at {
                Some(s) if s >= step.number() => Ok(false),
                _ => Err(out_of_order(ws, step)),
            };
        }
        record(
            conn,
            &AuditEvent::new(actor, AuditCategory::Data, "DELETION_STEP")
                .workspace(ws)
                .details(entry),
        )
        .await?;
        Ok(true)
    }

    /// Records a step whose effects are outside this database (1: the export file, 2: the
    /// cloud, 3: the partition's DDL), after they were made. Idempotent.
    pub async fn deletion_step_done(
        &self,
        ws: WorkspaceId,
        step: DeletionStep,
        actor: &str,
        removed: Value,
        export: Option<(&str, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let moved = Self::deletion_step_in(&mut tx, ws, step, actor, removed, export).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Step 4's part in the coordinating database, when it is not the tenant's own: the
    /// failure texts of the tenant's rollout targets (a sidecar's error can name tenant
    /// data; the rows stay, so finished rollouts keep their counts) and any command journal
    /// entries written there before the journal moved to the regions (DECISIONS 103).
    /// Idempotent; answers (targets scrubbed, journal entries removed).
    pub async fn deletion_coordinator_scrub(
        &self,
        ws: WorkspaceId,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.app.begin().await?;
        let scrubbed = sqlx::query!(
            r#"UPDATE genesis.rollout_targets SET error = $2, updated_at = now()
               WHERE workspace_id = $1 AND error IS NOT NULL AND error <> $2"#,
            ws.as_uuid(),
            SCRUBBED_ERROR,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let journal = sqlx::query!(
            "DELETE FROM genesis.command_journal WHERE workspace_id = $1",
            ws.as_uuid()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((scrubbed, journal))
    }

    /// Step 4: every row the workspace owns but its history (and its name and short name on
    /// the tombstone), removed and recorded in one transaction.
    pub async fn deletion_purge_rows(
        &self,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.deletion_db_step(ws, DeletionStep::TenantRows, actor, |tx, ws| {
            Box::pin(async move {
                let mut removed: Value = sqlx::query_scalar!(
                    r#"SELECT genesis.deletion_purge($1) AS "removed!""#,
                    ws.as_uuid()
                )
                .fetch_one(&mut **tx)
                .await?;
                let exports = sqlx::query_scalar!(
                    r#"SELECT genesis.deletion_purge_exports($1) AS "n!""#,
                    ws.as_uuid()
                )
                .fetch_one(&mut **tx)
                .await?;
                let support_grants = sqlx::query_scalar!(
                    r#"SELECT genesis.deletion_purge_support($1) AS "n!""#,
                    ws.as_uuid()
                )
                .fetch_one(&mut **tx)
                .await?;
                if let Some(m) = removed.as_object_mut() {
                    m.insert("exports".into(), exports.into());
                    m.insert("support_grants".into(), support_grants.into());
                }
                Ok(removed)
            })
        })
        .await
    }

    /// Step 5: open reservations voided, the balance closed out, the ledger's references
    /// anonymised, the wallet's settings removed. The Redis side is the caller's, before.
    pub async fn deletion_close_wallet(
        &self,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<bool, StoreError> {
        self.deletion_db_step(ws, DeletionStep::Wallet, actor, |tx, ws| {
            Box::pin(async move {
                Ok(sqlx::query_scalar!(
                    r#"SELECT genesis.wallet_close($1) AS "removed!""#,
                    ws.as_uuid()
                )
                .fetch_one(&mut **tx)
                .await?)
            })
        })
        .await
    }

    /// Step 6: the personal fields of the workspace's audit rows replaced by their MAC
    /// under `key`, so the chain still verifies.
    pub async fn deletion_anonymise_audit(
        &self,
        ws: WorkspaceId,
        actor: &str,
        key: &AuditChainKey,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        self.deletion_db_step(ws, DeletionStep::AuditTrail, actor, move |tx, ws| {
            Box::pin(async move {
                let mut total = 0i64;
                loop {
                    let rows = sqlx::query!(
                        r#"SELECT id AS "id!", actor AS "actor!", subject,
                                  details::text AS "details!"
                           FROM genesis.audit_history
                           WHERE workspace_id = $1 AND personal_mac IS NULL
                           ORDER BY id LIMIT $2"#,
                        ws.as_uuid(),
                        ANONYMISE_BATCH
                    )
                    .fetch_all(&mut **tx)
                    .await?;
                    if rows.is_empty() {
                        break;
                    }
                    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                    let macs: Vec<Vec<u8>> = rows
                        .iter()
                        .map(|r| {
                            key.personal_of(&r.actor, r.subject.as_deref(), &r.details)
                                .to_vec()
                        })
                        .collect();
                    let n = sqlx::query_scalar!(
                        r#"SELECT genesis.audit_anonymise($1, $2, $3) AS "n!""#,
                        ws.as_uuid(),
                        &ids,
                        &macs
                    )
                    .fetch_one(&mut **tx)
                    .await?;
                    if n != ids.len() as i64 {
                        return Err(StoreError::Refused {
                            what: "audit",
                            message: format!("{n} of {} audit rows could be anonymised", ids.len()),
                        });
                    }
                    total += n;
                }
                Ok(json!({ "audit_rows": total }))
            })
        })
        .await
    }

    /// Step 7: the workspace TERMINATED through its state machine, the certificate closed,
    /// and the Data: DELETED audit row that carries it.
    pub async fn deletion_terminate(
        &self,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let actor_owned = actor.to_owned();
        let moved = self
            .deletion_db_step(ws, DeletionStep::Terminate, actor, move |tx, ws| {
                Box::pin(async move {
                    let w = transition_in(
                        tx,
                        ws,
                        None,
                        WorkspaceEvent::DeletionCompleted,
                        &actor_owned,
                    )
                    .await?;
                    Ok(json!({ "status": w.status.code() }))
                })
            })
            .await?;
        if moved {
            let certificate = self.deletion_progress(ws).await?.map(|p| p.certificate);
            let mut tx = self.app.begin().await?;
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Data, "DELETED")
                    .workspace(ws)
                    .details(json!({ "certificate": certificate })),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(moved)
    }

    /// Runs `effect` and records `step` in one transaction, if the saga is at that step;
    /// false when it was done already.
    async fn deletion_db_step<F>(
        &self,
        ws: WorkspaceId,
        step: DeletionStep,
        actor: &str,
        effect: F,
    ) -> Result<bool, StoreError>
    where
        F: for<'t> FnOnce(
            &'t mut sqlx::Transaction<'static, sqlx::Postgres>,
            WorkspaceId,
        )
            -> futures_util::future::BoxFuture<'t, Result<Value, StoreError>>,
    {
        let mut tx = self.app.begin().await?;
        let at = sqlx::query_scalar!(
            r#"SELECT step FROM genesis.deletions
               WHERE workspace_id = $1 AND cancelled_at IS NULL AND started_at IS NOT NULL
               FOR UPDATE"#,
            ws.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await?;
        match at {
            Some(s) if s >= step.number() => return Ok(false),
            Some(s) if s == step.number() - 1 => {}
            _ => return Err(out_of_order(ws, step)),
        }
        let removed = effect(&mut tx, ws).await.map_err(|e| match e {
            StoreError::Database(ref s) if gd004(s) => out_of_order(ws, step),
            e => e,
        })?;
        let moved = Self::deletion_step_in(&mut tx, ws, step, actor, removed, None).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Every droplet row of `ws`, terminated or not: its id and cloud id.
    pub async fn deletion_droplets(
        &self,
        ws: WorkspaceId,
    ) -> Result<Vec<(genesis_core::DropletId, Option<i64>)>, StoreError> {
        Ok(sqlx::query!(
            "SELECT id, provider_id FROM genesis.droplets WHERE workspace_id = $1 ORDER BY id",
            ws.as_uuid()
        )
        .fetch_all(&self.app)
        .await?
        .into_iter()
        .map(|r| (genesis_core::DropletId::from_uuid(r.id), r.provider_id))
        .collect())
    }

    /// Final exports whose 30 days are over at `now`: (workspace, file), at most `limit`.
    pub async fn deletion_exports_expired(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, String)>, StoreError> {
        sqlx::query!(
            r#"SELECT workspace_id, export_file AS "file!" FROM genesis.deletions
               WHERE export_file IS NOT NULL AND export_expires_at <= $1
               ORDER BY export_expires_at LIMIT $2"#,
            now,
            limit
        )
        .fetch_all(&self.app)
        .await?
        .into_iter()
        .map(|r| Ok((crate::accounts::workspace_id(r.workspace_id)?, r.file)))
        .collect()
    }

    /// Forgets a final export whose file was removed (audited).
    pub async fn deletion_export_removed(
        &self,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let n = sqlx::query!(
            r#"UPDATE genesis.deletions SET export_file = NULL
               WHERE workspace_id = $1 AND export_file IS NOT NULL"#,
            ws.as_uuid()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Data, "EXPORT_EXPIRED").workspace(ws),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
