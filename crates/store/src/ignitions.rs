//! The ignition saga's persistence (spec 41.1): the saga row, which is the fold of its log and
//! changes only in the transaction that appends to the log, and the log itself. The saga's
//! logic lives in `genesis-ignition`; this module only records its moves, atomically with the
//! workspace's state machine and the audit log.
//!
//! # Guarantees
//! - Every move (step done, step failed, step undone, saga finished) is one transaction: the
//!   log entry, the saga row, the workspace transition (at the ends) and the audit event.
//! - Moves are fenced by the row's version: two executors racing on one saga cannot both
//!   record a move; the loser gets `VersionConflict` and must re-read.
//! - At most one saga is in flight per workspace (a partial unique index).

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletId, IgnitionStep, SagaEvent, SagaPhase, WorkspaceEvent, WorkspaceId};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::vault::{MasterKeys, VaultPlaintext, vault_put_in};
use crate::workspace_tokens::NewWorkspaceToken;

/// The secrets an ignition starts with, stored in its first transaction: the credentials
/// (encrypted into the vault) and the workspace tokens (by digest).
#[derive(Default)]
pub struct IgnitionSecrets<'a> {
    /// Vault credentials.
    pub credentials: &'a [VaultPlaintext<'a>],
    /// Workspace tokens.
    pub tokens: &'a [NewWorkspaceToken],
}
use crate::workspaces::transition_in;
use crate::{AuditEvent, Database, StoreError, audit::record};

/// A saga as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Ignition {
    /// Saga id.
    pub id: Uuid,
    /// The workspace being ignited.
    pub workspace_id: WorkspaceId,
    /// The droplet id chosen when the saga was built.
    pub droplet_id: DropletId,
    /// Forward, unwinding, or finished.
    pub phase: SagaPhase,
    /// The step being done (running) or undone (unwinding); `None` when finished.
    pub step: Option<IgnitionStep>,
    /// When `step` began (its timeout counts from here, across restarts).
    pub step_started_at: DateTime<Utc>,
    /// The step whose failure started the unwind.
    pub failed_step: Option<IgnitionStep>,
    /// Why it unwound.
    pub error: Option<String>,
    /// The saga's input parameters (saga-specific JSON).
    pub params: serde_json::Value,
    /// Each completed step's output, by step code.
    pub outputs: serde_json::Value,
    /// Fencing version.
    pub version: i64,
    /// Continuation jobs queued so far.
    pub wakeups: i32,
    /// Time executors spent working on it, waits excluded (the control plane's share).
    pub busy_ms: i64,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished (done or rolled back).
    pub finished_at: Option<DateTime<Utc>>,
}

impl Ignition {
    /// A completed step's output.
    pub fn output(&self, step: IgnitionStep) -> Option<&serde_json::Value> {
        self.outputs.get(step.code())
    }
}

struct IgnitionRow {
    id: Uuid,
    workspace_id: Uuid,
    droplet_id: Uuid,
    phase: String,
    step: Option<String>,
    step_started_at: DateTime<Utc>,
    failed_step: Option<String>,
    error: Option<String>,
    params: serde_json::Value,
    outputs: serde_json::Value,
    version: i64,
    wakeups: i32,
    busy_ms: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

fn step_of(code: Option<String>) -> Result<Option<IgnitionStep>, StoreError> {
    code.map(|c| {
        IgnitionStep::from_code(&c).ok_or(StoreError::Corrupt {
            what: "ignition step",
            value: c,
        })
    })
    .transpose()
}

impl TryFrom<IgnitionRow> for Ignition {
    type Error = StoreError;
    fn try_from(r: IgnitionRow) -> Result<Self, StoreError> {
        Ok(Ignition {
            id: r.id,
            workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|_| {
                StoreError::Corrupt {
                    what: "workspace id",
                    value: "nil".into(),
                }
            })?,
            droplet_id: DropletId::from_uuid(r.droplet_id),
            phase: SagaPhase::from_code(&r.phase).ok_or(StoreError::Corrupt {
                what: "saga phase",
                value: r.phase.clone(),
            })?,
            step: step_of(r.step)?,
            step_started_at: r.step_started_at,
            failed_step: step_of(r.failed_step)?,
            error: r.error,
            params: r.params,
            outputs: r.outputs,
            version: r.version,
            wakeups: r.wakeups,
            busy_ms: r.busy_ms,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// One saga log entry.
#[derive(Debug, Clone, Serialize)]
pub struct IgnitionLogEntry {
    /// The step.
    pub step: IgnitionStep,
    /// What happened.
    pub event: SagaEvent,
    /// When.
    pub at: DateTime<Utc>,
    /// For `*_done` and `*_failed`: how long the step took.
    pub elapsed_ms: Option<i64>,
    /// The output (done) or the error (failed).
    pub detail: Option<serde_json::Value>,
}

/// What starting an ignition did.
#[derive(Debug, Clone)]
pub enum IgnitionStart {
    /// A new saga.
    Started(Ignition),
    /// One was already in flight for this workspace; nothing changed.
    AlreadyRunning(Ignition),
}

async fn log(
    conn: &mut PgConnection,
    ignition: Uuid,
    step: IgnitionStep,
    event: SagaEvent,
    elapsed_ms: Option<i64>,
    detail: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO genesis.ignition_log (ignition_id, step, event, elapsed_ms, detail)
           VALUES ($1, $2, $3, $4, $5)"#,
        ignition,
        step.code(),
        event.code(),
        elapsed_ms,
        detail,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the saga row from `from` (fenced by its version) to the given phase and step.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per column a move may set"
)]
async fn move_row(
    conn: &mut PgConnection,
    from: &Ignition,
    phase: SagaPhase,
    step: Option<IgnitionStep>,
    output: Option<(IgnitionStep, &serde_json::Value)>,
    failure: Option<(IgnitionStep, &str)>,
) -> Result<Ignition, StoreError> {
    let finished = phase.is_final();
    let row = sqlx::query_as!(
        IgnitionRow,
        r#"UPDATE genesis.ignitions SET
             phase = $3, step = $4, step_started_at = now(),
             outputs = CASE WHEN $5::text IS NULL THEN outputs
                            ELSE jsonb_set(outputs, ARRAY[$5::text], $6::jsonb) END,
             failed_step = COALESCE($7, failed_step),
             error = COALESCE($8, error),
             finished_at = CASE WHEN $9 THEN now() ELSE NULL END,
             version = version + 1
           WHERE id = $1 AND version = $2
           RETURNING id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                     error, params, outputs, version, wakeups, busy_ms, started_at, finished_at"#,
        from.id,
        from.version,
        phase.code(),
        step.map(IgnitionStep::code),
        output.map(|(s, _)| s.code()),
        output.map(|(_, o)| o.clone()),
        failure.map(|(s, _)| s.code()),
        failure.map(|(_, e)| e),
        finished,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::VersionConflict {
        what: "ignition",
        expected: from.version,
    })?;
    row.try_into()
}

fn elapsed_ms(since: DateTime<Utc>) -> i64 {
    (Utc::now() - since).num_milliseconds().max(0)
}

impl Database {
    /// Starts an ignition of `workspace`: the workspace moves to PROVISIONING, the saga row
    /// and its first log entry are written, and the tenant's credentials go into the vault,
    /// all in one transaction. If a saga is already in flight, returns it and changes nothing.
    #[allow(
        clippy::too_many_arguments,
        reason = "the saga's identity, its input, and the secrets stored with it"
    )]
    pub async fn ignition_start(
        &self,
        id: Uuid,
        workspace: WorkspaceId,
        droplet: DropletId,
        params: &serde_json::Value,
        secrets: &IgnitionSecrets<'_>,
        keys: Option<&MasterKeys>,
        actor: &str,
    ) -> Result<IgnitionStart, StoreError> {
        let credentials = secrets.credentials;
        let mut tx = self.app.begin().await?;
        // Serialize starts per workspace on its row.
        crate::workspaces::lock_in(&mut tx, workspace).await?;
        if let Some(running) = in_flight(&mut tx, workspace).await? {
            tx.rollback().await?;
            return Ok(IgnitionStart::AlreadyRunning(running));
        }
        transition_in(
            &mut tx,
            workspace,
            None,
            WorkspaceEvent::IgnitionStarted,
            actor,
        )
        .await?;
        let row = insert_in(&mut tx, id, workspace, droplet, params).await?;
        if !credentials.is_empty() {
            let keys = keys.ok_or(StoreError::Invalid {
                field: "credentials",
                message: "the vault has no master key configured ([vault] in the config)".into(),
            })?;
            for c in credentials {
                vault_put_in(&mut tx, keys, workspace, c, actor).await?;
            }
        }
        for t in secrets.tokens {
            crate::workspace_tokens::workspace_token_insert(&mut tx, workspace, t).await?;
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_STARTED")
                .workspace(workspace)
                .subject(id.to_string())
                .details(serde_json::json!({"droplet_id": droplet.to_string()})),
        )
        .await?;
        tx.commit().await?;
        Ok(IgnitionStart::Started(row))
    }

    /// Starts the restore saga `id` of a tenant of failover `failover` (spec 66.4): its row
    /// moves from waiting to restoring with the saga, and the droplet it replaces is set
    /// aside, in one transaction with the saga's first log entry. The workspace's status does
    /// not move (it stays ACTIVE: a restore moves it, it does not ignite it), and the vault
    /// is not touched (the saga injects what it holds). Answers the saga in flight instead
    /// when the workspace has one.
    pub async fn ignition_start_restore(
        &self,
        id: Uuid,
        workspace: WorkspaceId,
        droplet: DropletId,
        params: &serde_json::Value,
        actor: &str,
    ) -> Result<IgnitionStart, StoreError> {
        let mut tx = self.app.begin().await?;
        crate::workspaces::lock_in(&mut tx, workspace).await?;
        if let Some(running) = in_flight(&mut tx, workspace).await? {
            tx.rollback().await?;
            return Ok(IgnitionStart::AlreadyRunning(running));
        }
        let row = insert_in(&mut tx, id, workspace, droplet, params).await?;
        let restore = crate::failovers::restore_of(&row).ok_or(StoreError::Invalid {
            field: "params.restore",
            message: "a restore saga needs the droplet it replaces".into(),
        })?;
        // A failover's restore moves its tenant's row and sets the droplet in the dead
        // region aside; a single droplet's restore leaves the lost droplet ORPHAN (nothing
        // automatic touches one) until the restore has replaced it.
        if let Some(failover) = restore.failover_id {
            crate::failovers::restore_started_in(&mut tx, failover, &row).await?;
            crate::failovers::set_aside_in(&mut tx, restore.replaces, actor).await?;
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "RESTORE_STARTED")
                .workspace(workspace)
                .subject(id.to_string())
                .details(serde_json::json!({
                    "droplet_id": droplet.to_string(),
                    "restore": params.get("restore"),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(IgnitionStart::Started(row))
    }

    /// One saga.
    pub async fn ignition_get(&self, id: Uuid) -> Result<Ignition, StoreError> {
        sqlx::query_as!(
            IgnitionRow,
            r#"SELECT id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                      error, params, outputs, version, wakeups, busy_ms, started_at, finished_at
               FROM genesis.ignitions WHERE id = $1"#,
            id,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "ignition" })?
        .try_into()
    }

    /// The workspace's most recent saga, if it was ever ignited.
    pub async fn ignition_latest(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<Ignition>, StoreError> {
        self.ignition_newest(workspace, false).await
    }

    /// The workspace's most recent saga that finished, if any: the one whose droplet serves
    /// the tenant. A restore that rolled back afterwards does not hide it (the tenant is
    /// still served, or still to be restored, from that droplet).
    pub async fn ignition_latest_done(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Option<Ignition>, StoreError> {
        self.ignition_newest(workspace, true).await
    }

    async fn ignition_newest(
        &self,
        workspace: WorkspaceId,
        done_only: bool,
    ) -> Result<Option<Ignition>, StoreError> {
        sqlx::query_as!(
            IgnitionRow,
            r#"SELECT id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                      error, params, outputs, version, wakeups, busy_ms, started_at, finished_at
               FROM genesis.ignitions WHERE workspace_id = $1 AND (NOT $2 OR phase = 'DONE')
               ORDER BY started_at DESC, id DESC LIMIT 1"#,
            workspace.as_uuid(),
            done_only,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(Ignition::try_from)
        .transpose()
    }

    /// Every saga not yet finished (what recovery resumes or unwinds at start-up).
    pub async fn ignition_unfinished(&self) -> Result<Vec<Ignition>, StoreError> {
        sqlx::query_as!(
            IgnitionRow,
            r#"SELECT id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                      error, params, outputs, version, wakeups, busy_ms, started_at, finished_at
               FROM genesis.ignitions WHERE phase IN ('RUNNING', 'UNWINDING')
               ORDER BY started_at"#,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Ignition::try_from)
        .collect()
    }

    /// The saga log, oldest first.
    pub async fn ignition_log(&self, id: Uuid) -> Result<Vec<IgnitionLogEntry>, StoreError> {
        sqlx::query!(
            r#"SELECT step, event, at, elapsed_ms, detail FROM genesis.ignition_log
               WHERE ignition_id = $1 ORDER BY id"#,
            id,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(IgnitionLogEntry {
                step: IgnitionStep::from_code(&r.step).ok_or(StoreError::Corrupt {
                    what: "ignition step",
                    value: r.step.clone(),
                })?,
                event: SagaEvent::from_code(&r.event).ok_or(StoreError::Corrupt {
                    what: "ignition log event",
                    value: r.event.clone(),
                })?,
                at: r.at,
                elapsed_ms: r.elapsed_ms,
                detail: r.detail,
            })
        })
        .collect()
    }

    /// Records that the running step's action completed with `output`, and starts the next
    /// step; after the last one the saga is DONE and the workspace ACTIVE.
    pub async fn ignition_step_done(
        &self,
        from: &Ignition,
        output: &serde_json::Value,
        actor: &str,
    ) -> Result<Ignition, StoreError> {
        let step = running_step(from, SagaPhase::Running)?;
        let mut tx = self.app.begin().await?;
        let next = step.next();
        let phase = if next.is_some() {
            SagaPhase::Running
        } else {
            SagaPhase::Done
        };
        let moved = move_row(&mut tx, from, phase, next, Some((step, output)), None).await?;
        let took = elapsed_ms(from.step_started_at);
        log(
            &mut tx,
            from.id,
            step,
            SagaEvent::ActionDone,
            Some(took),
            Some(output),
        )
        .await?;
        let mut audit = AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_STEP_DONE")
            .workspace(from.workspace_id)
            .subject(from.id.to_string())
            .details(serde_json::json!({"step": step.code(), "elapsed_ms": took}));
        match next {
            Some(n) => log(&mut tx, from.id, n, SagaEvent::ActionStarted, None, None).await?,
            None if crate::failovers::restore_of(from).is_some() => {
                // A restore leaves the workspace as it was (ACTIVE): it only moved.
                crate::failovers::restore_finished_in(&mut tx, from, None, actor).await?;
            }
            None => {
                transition_in(
                    &mut tx,
                    from.workspace_id,
                    None,
                    WorkspaceEvent::IgnitionSucceeded,
                    actor,
                )
                .await?;
                record(&mut tx, &audit).await?;
                audit = AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_SUCCEEDED")
                    .workspace(from.workspace_id)
                    .subject(from.id.to_string())
                    .details(serde_json::json!({
                        "elapsed_ms": elapsed_ms(from.started_at),
                    }));
            }
        }
        record(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Records that the running step failed: the saga starts unwinding from that step (its
    /// undo runs too, since a failed action may have done part of its work).
    pub async fn ignition_step_failed(
        &self,
        from: &Ignition,
        error: &str,
        actor: &str,
    ) -> Result<Ignition, StoreError> {
        let step = running_step(from, SagaPhase::Running)?;
        let mut tx = self.app.begin().await?;
        let moved = move_row(
            &mut tx,
            from,
            SagaPhase::Unwinding,
            Some(step),
            None,
            Some((step, error)),
        )
        .await?;
        let detail = serde_json::json!({ "error": error });
        let took = elapsed_ms(from.step_started_at);
        log(
            &mut tx,
            from.id,
            step,
            SagaEvent::ActionFailed,
            Some(took),
            Some(&detail),
        )
        .await?;
        log(&mut tx, from.id, step, SagaEvent::UndoStarted, None, None).await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_STEP_FAILED")
                .workspace(from.workspace_id)
                .subject(from.id.to_string())
                .details(serde_json::json!({"step": step.code(), "error": error})),
        )
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Records that the step being unwound is undone and moves to the one before it. After
    /// the first step: the saga is ROLLED_BACK, the workspace ROLLBACK_COMPLETE, and the user
    /// is told why in the notifications outbox (spec 50.6 steps 5 and 6).
    pub async fn ignition_step_undone(
        &self,
        from: &Ignition,
        detail: &serde_json::Value,
        notification: &serde_json::Value,
        actor: &str,
    ) -> Result<Ignition, StoreError> {
        let step = running_step(from, SagaPhase::Unwinding)?;
        let prev = IgnitionStep::ALL.iter().rev().find(|s| **s < step).copied();
        let phase = if prev.is_some() {
            SagaPhase::Unwinding
        } else {
            SagaPhase::RolledBack
        };
        let mut tx = self.app.begin().await?;
        let moved = move_row(&mut tx, from, phase, prev, None, None).await?;
        let took = elapsed_ms(from.step_started_at);
        log(
            &mut tx,
            from.id,
            step,
            SagaEvent::UndoDone,
            Some(took),
            Some(detail),
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_STEP_UNDONE")
                .workspace(from.workspace_id)
                .subject(from.id.to_string())
                .details(serde_json::json!({"step": step.code(), "detail": detail})),
        )
        .await?;
        match prev {
            Some(p) => log(&mut tx, from.id, p, SagaEvent::UndoStarted, None, None).await?,
            None if crate::failovers::restore_of(from).is_some() => {
                let reason = from.error.clone().unwrap_or_default();
                crate::failovers::restore_finished_in(&mut tx, from, Some(&reason), actor).await?;
            }
            None => {
                transition_in(
                    &mut tx,
                    from.workspace_id,
                    None,
                    WorkspaceEvent::IgnitionFailed,
                    actor,
                )
                .await?;
                let reason = from.error.clone().unwrap_or_default();
                sqlx::query!(
                    r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                       VALUES ($1, 'IGNITION_FAILED', $2, $3)"#,
                    from.workspace_id.as_uuid(),
                    "Your workspace could not be started; nothing was left behind",
                    notification,
                )
                .execute(&mut *tx)
                .await?;
                record(
                    &mut tx,
                    &AuditEvent::new(actor, AuditCategory::Provisioning, "IGNITION_ROLLED_BACK")
                        .workspace(from.workspace_id)
                        .subject(from.id.to_string())
                        .details(serde_json::json!({
                            "failed_step": from.failed_step.map(IgnitionStep::code),
                            "reason": reason,
                        })),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Records an undo attempt that failed (it will be retried; the saga stays where it is).
    pub async fn ignition_undo_failed(
        &self,
        from: &Ignition,
        error: &str,
    ) -> Result<(), StoreError> {
        let step = running_step(from, SagaPhase::Unwinding)?;
        let mut conn = self.app.acquire().await?;
        let detail = serde_json::json!({ "error": error });
        log(
            &mut conn,
            from.id,
            step,
            SagaEvent::UndoFailed,
            Some(elapsed_ms(from.step_started_at)),
            Some(&detail),
        )
        .await
    }

    /// Takes (or renews) the saga's executor lease for `ttl`. Returns `None` when taken, or
    /// how long another executor still holds it. Actions have side effects the version fence
    /// cannot undo (two executors would both create a workflow), so only the holder acts.
    pub async fn ignition_lease(
        &self,
        id: Uuid,
        owner: Uuid,
        ttl: std::time::Duration,
    ) -> Result<Option<std::time::Duration>, StoreError> {
        let taken = sqlx::query_scalar!(
            r#"UPDATE genesis.ignitions
               SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
               WHERE id = $1
                 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
               RETURNING id"#,
            id,
            owner,
            ttl.as_secs_f64(),
        )
        .fetch_optional(&mut *self.app.acquire().await?)
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let left_ms = sqlx::query_scalar!(
            r#"SELECT (EXTRACT(EPOCH FROM (lease_until - now())) * 1000)::bigint AS "ms"
               FROM genesis.ignitions WHERE id = $1"#,
            id,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .flatten()
        .unwrap_or(0);
        Ok(Some(
            std::time::Duration::from_millis(left_ms.max(1) as u64),
        ))
    }

    /// Gives the lease back (when the executor stops, so the next one need not wait) and
    /// adds the time it spent working.
    pub async fn ignition_release(
        &self,
        id: Uuid,
        owner: Uuid,
        busy: std::time::Duration,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.ignitions
               SET lease_owner = NULL, lease_until = NULL, busy_ms = busy_ms + $3
               WHERE id = $1 AND lease_owner = $2"#,
            id,
            owner,
            busy.as_millis() as i64,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Counts a continuation job; the returned number names it (`<saga>-<n>`), so queuing
    /// the same continuation twice is one job.
    pub async fn ignition_wakeup(&self, id: Uuid) -> Result<i32, StoreError> {
        let n = sqlx::query_scalar!(
            "UPDATE genesis.ignitions SET wakeups = wakeups + 1 WHERE id = $1 RETURNING wakeups",
            id,
        )
        .fetch_optional(&mut *self.app.acquire().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "ignition" })?;
        Ok(n)
    }
}

fn running_step(from: &Ignition, phase: SagaPhase) -> Result<IgnitionStep, StoreError> {
    match (from.phase == phase, from.step) {
        (true, Some(s)) => Ok(s),
        _ => Err(StoreError::VersionConflict {
            what: "ignition",
            expected: from.version,
        }),
    }
}

/// Writes a new saga at its first step, with that step's first log entry.
async fn insert_in(
    conn: &mut PgConnection,
    id: Uuid,
    workspace: WorkspaceId,
    droplet: DropletId,
    params: &serde_json::Value,
) -> Result<Ignition, StoreError> {
    let first = IgnitionStep::ALL[0];
    let row = sqlx::query_as!(
        IgnitionRow,
        r#"INSERT INTO genesis.ignitions (id, workspace_id, droplet_id, phase, step, params)
           VALUES ($1, $2, $3, 'RUNNING', $4, $5)
           RETURNING id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                     error, params, outputs, version, wakeups, busy_ms, started_at, finished_at"#,
        id,
        workspace.as_uuid(),
        droplet.as_uuid(),
        first.code(),
        params,
    )
    .fetch_one(&mut *conn)
    .await?;
    log(conn, id, first, SagaEvent::ActionStarted, None, None).await?;
    row.try_into()
}

async fn in_flight(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
) -> Result<Option<Ignition>, StoreError> {
    sqlx::query_as!(
        IgnitionRow,
        r#"SELECT id, workspace_id, droplet_id, phase, step, step_started_at, failed_step,
                  error, params, outputs, version, wakeups, busy_ms, started_at, finished_at
           FROM genesis.ignitions
           WHERE workspace_id = $1 AND phase IN ('RUNNING', 'UNWINDING')"#,
        workspace.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(Ignition::try_from)
    .transpose()
}
