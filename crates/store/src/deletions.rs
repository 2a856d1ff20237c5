//! A tenant's deletion, day 0 to the end of the grace period (issue 25, spec 64.1–64.2):
//! the request, its reminders, and calling it off.
//!
//! A request is one transaction: the workspace to PENDING_DELETION through its state machine,
//! the request recorded with the status to return to, the "will be deleted" notice in the
//! outbox, and the audit row. Calling it off is the mirror image, refused once the grace
//! period is over or for a trigger that cannot be reversed. Times come from the caller's
//! clock, so tests run days in milliseconds.

use chrono::{DateTime, TimeDelta, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::deletion::{DeletionTrigger, REMINDER_DAYS};
use genesis_core::{WorkspaceEvent, WorkspaceId, WorkspaceStatus};
use serde::Serialize;

use crate::audit::{AuditEvent, record};
use crate::workspaces::{Workspace, transition_in, transition_to_in};
use crate::{Database, StoreError};

/// An open deletion request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deletion {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Why.
    pub trigger: DeletionTrigger,
    /// The operator's reason (required for `tos` and `fraud`).
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// When the data goes: the end of the grace period.
    pub purge_after: DateTime<Utc>,
    /// Whether it can still be called off (until `purge_after`).
    pub reversible: bool,
    /// The status the workspace returns to if it is called off.
    pub previous_status: WorkspaceStatus,
    /// The last reminder sent, in days after the request (0: none).
    pub reminded_day: i32,
    /// The saga once the grace period is over: its steps and certificate.
    pub progress: crate::DeletionProgress,
}

struct DeletionRow {
    workspace_id: uuid::Uuid,
    trigger: String,
    reason: Option<String>,
    requested_by: String,
    requested_at: DateTime<Utc>,
    purge_after: DateTime<Utc>,
    reversible: bool,
    previous_status: String,
    reminded_day: i32,
    step: i32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    certificate: serde_json::Value,
    export_file: Option<String>,
    export_expires_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeletionRow> for Deletion {
    type Error = StoreError;
    fn try_from(r: DeletionRow) -> Result<Self, StoreError> {
        Ok(Deletion {
            workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|_| {
                StoreError::Corrupt {
                    what: "workspace id",
                    value: r.workspace_id.to_string(),
                }
            })?,
            trigger: DeletionTrigger::from_code(&r.trigger).ok_or(StoreError::Corrupt {
                what: "deletion trigger",
                value: r.trigger.clone(),
            })?,
            reason: r.reason,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            purge_after: r.purge_after,
            reversible: r.reversible,
            previous_status: WorkspaceStatus::from_code(&r.previous_status)
                .ok_or_else(|| StoreError::corrupt_state(&r.previous_status))?,
            reminded_day: r.reminded_day,
            progress: crate::DeletionProgress {
                step: r.step,
                started_at: r.started_at,
                finished_at: r.finished_at,
                last_error: r.last_error,
                certificate: r.certificate,
                export_file: r.export_file,
                export_expires_at: r.export_expires_at,
            },
        })
    }
}

/// The date people are shown.
fn in_words(t: DateTime<Utc>) -> String {
    t.format("%-d %B %Y, %H:%M UTC").to_string()
}

impl Database {
    /// Starts the deletion of `workspace` for `trigger` at `now` (day 0 of spec 64.2).
    /// Deleting a workspace already being deleted, or deleted, is refused in words.
    pub async fn deletion_request(
        &self,
        workspace: WorkspaceId,
        trigger: DeletionTrigger,
        reason: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Deletion, StoreError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if trigger.needs_operator_reason() && reason.is_none() {
            return Err(StoreError::Invalid {
                field: "reason",
                message: format!("a deletion for {trigger} needs a reason"),
            });
        }
        let grace = TimeDelta::from_std(trigger.grace()).unwrap_or(TimeDelta::MAX);
        let mut tx = self.app.begin().await?;
        let previous = crate::workspaces::lock_in(&mut tx, workspace).await?;
        match previous {
            WorkspaceStatus::PendingDeletion => {
                return Err(StoreError::Refused {
                    what: "workspace",
                    message: "this workspace is already being deleted".into(),
                });
            }
            WorkspaceStatus::Terminated => {
                return Err(StoreError::Refused {
                    what: "workspace",
                    message: "this workspace has been deleted".into(),
                });
            }
            WorkspaceStatus::Provisioning => {
                return Err(StoreError::Refused {
                    what: "workspace",
                    message: "this workspace is being started: ask again once it is live or its start has failed".into(),
                });
            }
            _ => {}
        }
        transition_in(
            &mut tx,
            workspace,
            None,
            WorkspaceEvent::DeletionRequested,
            actor,
        )
        .await?;
        // Day 0: every campaign paused. The desired state is what counts: the engine is
        // brought to it by the watchdog (or stays asleep, as it will, hibernated).
        let paused: serde_json::Value = sqlx::query_scalar!(
            r#"WITH paused AS (
                   UPDATE genesis.droplet_workflows w SET active = false, updated_at = now()
                   FROM genesis.droplets d
                   WHERE d.id = w.droplet_id AND d.workspace_id = $1 AND w.active
                   RETURNING w.droplet_id, w.key)
               SELECT coalesce(jsonb_agg(jsonb_build_object('droplet_id', droplet_id, 'key', key)
                                         ORDER BY droplet_id, key), '[]'::jsonb) AS "paused!"
               FROM paused"#,
            workspace.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        if paused.as_array().is_some_and(|a| !a.is_empty()) {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Workflows, "WORKFLOWS_DEACTIVATED")
                    .workspace(workspace)
                    .details(
                        serde_json::json!({ "why": "deletion requested", "workflows": paused }),
                    ),
            )
            .await?;
        }
        let purge_after = now + grace;
        let row = sqlx::query_as!(
            DeletionRow,
            r#"INSERT INTO genesis.deletions (workspace_id, trigger, reason, requested_by,
                   requested_at, purge_after, reversible, previous_status,
                   paused_workflows)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               RETURNING workspace_id, trigger, reason, requested_by, requested_at, purge_after,
                         reversible, previous_status, reminded_day, step, started_at,
                         finished_at, last_error, certificate, export_file, export_expires_at"#,
            workspace.as_uuid(),
            trigger.code(),
            reason,
            actor,
            now,
            purge_after,
            trigger.reversible(),
            previous.code(),
            paused,
        )
        .fetch_one(&mut *tx)
        .await?;
        if trigger.tells_the_tenant() {
            sqlx::query!(
                r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                   VALUES ($1, 'DELETION_REQUESTED', $2, $3)"#,
                workspace.as_uuid(),
                "Your workspace will be deleted",
                serde_json::json!({ "deletes_at": in_words(purge_after), "trigger": trigger }),
            )
            .execute(&mut *tx)
            .await?;
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Data, "DELETION_REQUESTED")
                .workspace(workspace)
                .details(serde_json::json!({
                    "trigger": trigger,
                    "reason": reason,
                    "purge_after": purge_after,
                    "reversible": trigger.reversible(),
                })),
        )
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// The open deletion request of `workspace`, if any.
    pub async fn deletion_open(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<Deletion>, StoreError> {
        sqlx::query_as!(
            DeletionRow,
            r#"SELECT workspace_id, trigger, reason, requested_by, requested_at, purge_after,
                      reversible, previous_status, reminded_day, step, started_at,
                      finished_at, last_error, certificate, export_file, export_expires_at
               FROM genesis.deletions WHERE workspace_id = $1 AND cancelled_at IS NULL"#,
            workspace.as_uuid()
        )
        .fetch_optional(&self.app)
        .await?
        .map(Deletion::try_from)
        .transpose()
    }

    /// Calls off the deletion of `workspace` at `now`: it returns to the status it had.
    /// Refused, in words, when there is none, when its trigger cannot be reversed, or when
    /// the grace period is over.
    pub async fn deletion_cancel(
        &self,
        workspace: WorkspaceId,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError> {
        let mut tx = self.app.begin().await?;
        // The workspace row first, as a request takes it: the two cannot cross.
        crate::workspaces::lock_in(&mut tx, workspace).await?;
        let open: Deletion = sqlx::query_as!(
            DeletionRow,
            r#"SELECT workspace_id, trigger, reason, requested_by, requested_at, purge_after,
                      reversible, previous_status, reminded_day, step, started_at,
                      finished_at, last_error, certificate, export_file, export_expires_at
               FROM genesis.deletions WHERE workspace_id = $1 AND cancelled_at IS NULL
               FOR UPDATE"#,
            workspace.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::Refused {
            what: "deletion",
            message: "this workspace is not being deleted".into(),
        })?
        .try_into()?;
        if !open.reversible {
            return Err(StoreError::Refused {
                what: "deletion",
                message: format!(
                    "a deletion for {} cannot be called off",
                    match open.trigger {
                        DeletionTrigger::Fraud => "fraud",
                        _ => "a breach of the terms of service",
                    }
                ),
            });
        }
        if open.trigger.needs_payment_to_reverse() {
            // A deposit or top-up posted to the ledger since the request: paid.
            let paid = sqlx::query_scalar!(
                r#"SELECT EXISTS (
                       SELECT 1 FROM genesis.ledger_transfers
                       WHERE workspace_id = $1 AND kind IN ('DEPOSIT', 'AUTO_TOPUP')
                         AND phase = 'single' AND created_at >= $2) AS "paid!""#,
                workspace.as_uuid(),
                open.requested_at,
            )
            .fetch_one(&mut *tx)
            .await?;
            if !paid {
                return Err(StoreError::Refused {
                    what: "deletion",
                    message: "this deletion is for non-payment: it is called off once a \
                              payment arrives (top up the wallet), not before"
                        .into(),
                });
            }
        }
        let begun = sqlx::query_scalar!(
            r#"SELECT started_at IS NOT NULL AS "begun!" FROM genesis.deletions
               WHERE workspace_id = $1 AND cancelled_at IS NULL"#,
            workspace.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        if begun || now >= open.purge_after {
            return Err(StoreError::Refused {
                what: "deletion",
                message: format!(
                    "the grace period ended on {}: the deletion can no longer be called off",
                    in_words(open.purge_after)
                ),
            });
        }
        let ws = transition_to_in(
            &mut tx,
            workspace,
            None,
            WorkspaceEvent::DeletionCancelled,
            actor,
            Some(open.previous_status),
        )
        .await?;
        let paused = sqlx::query_scalar!(
            r#"UPDATE genesis.deletions SET cancelled_at = $2, cancelled_by = $3
               WHERE workspace_id = $1 AND cancelled_at IS NULL
               RETURNING paused_workflows"#,
            workspace.as_uuid(),
            now,
            actor,
        )
        .fetch_one(&mut *tx)
        .await?;
        // The campaigns day 0 paused run again (those still there).
        let resumed = sqlx::query_scalar!(
            r#"UPDATE genesis.droplet_workflows w SET active = true, updated_at = now()
               FROM jsonb_to_recordset($1::jsonb) AS p(droplet_id uuid, key text)
               WHERE w.droplet_id = p.droplet_id AND w.key = p.key AND NOT w.active
               RETURNING w.key"#,
            paused
        )
        .fetch_all(&mut *tx)
        .await?;
        if !resumed.is_empty() {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Workflows, "WORKFLOWS_ACTIVATED")
                    .workspace(workspace)
                    .details(serde_json::json!({ "why": "deletion called off", "keys": resumed })),
            )
            .await?;
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Data, "DELETION_CANCELLED")
                .workspace(workspace)
                .details(serde_json::json!({
                    "trigger": open.trigger,
                    "requested_at": open.requested_at,
                    "restored": ws.status.code(),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(ws)
    }

    /// Writes the day-3 and day-6 reminders (spec 64.1) that are due at `now`, at most
    /// `limit`; returns how many. A request that skipped a day (the reminder ran late) gets
    /// only the latest reminder. Nothing is sent once the grace period is over.
    pub async fn deletion_remind_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let days: Vec<i32> = REMINDER_DAYS.iter().map(|d| *d as i32).collect();
        let mut tx = self.app.begin().await?;
        let due = sqlx::query!(
            r#"WITH due AS (
                   SELECT d.id, r.day
                   FROM genesis.deletions d
                   CROSS JOIN LATERAL (
                       SELECT max(day) AS day FROM unnest($2::int[]) AS day
                       WHERE d.requested_at + make_interval(days => day) <= $1::timestamptz) r
                   WHERE d.cancelled_at IS NULL AND d.reversible AND d.purge_after > $1::timestamptz
                     AND r.day > d.reminded_day
                   ORDER BY d.requested_at LIMIT $3
                   FOR UPDATE OF d SKIP LOCKED)
               UPDATE genesis.deletions d SET reminded_day = due.day
               FROM due WHERE d.id = due.id
               RETURNING d.workspace_id, d.purge_after, d.reminded_day"#,
            now,
            &days,
            limit,
        )
        .fetch_all(&mut *tx)
        .await?;
        for d in &due {
            sqlx::query!(
                r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                   VALUES ($1, 'DELETION_REMINDER', $2, $3)"#,
                d.workspace_id,
                "A reminder: your workspace will be deleted",
                serde_json::json!({ "deletes_at": in_words(d.purge_after), "day": d.reminded_day }),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(due.len() as u64)
    }
}
