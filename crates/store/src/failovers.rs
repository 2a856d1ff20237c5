//! Regional failovers (spec 66.4; DECISIONS 109): the rows that say which tenants a failover
//! moves, from which snapshot, with which restore saga, and how far it has come.
//!
//! A failover is written with its assessment in one transaction ([`Database::failover_start`]):
//! the tenants whose droplet is in the failed region, each with its plan (restore from the
//! newest snapshot copied to the target, re-ignite, or hold for residency), and the mass
//! notification. Each tenant's restore is then an ignition saga with `params.restore`; the
//! saga's start ([`Database::ignition_start_restore`]) and its end (here,
//! [`restore_finished_in`]) move the tenant's row in the saga's own transactions, so a crash
//! can never leave a saga the failover does not know of, nor a finished one it thinks runs.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::dr::{FailoverPhase, RestorePlan, RestoreState};
use genesis_core::{DropletEvent, DropletId, DropletState, Region};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ignitions::Ignition;
use crate::{AuditEvent, Database, StoreError, audit::record};

/// One failover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failover {
    /// Its id.
    pub id: Uuid,
    /// The failed datacenter.
    pub from_datacenter: String,
    /// Where its tenants go.
    pub to_datacenter: String,
    /// Where it stands.
    pub phase: FailoverPhase,
    /// Who started it.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// Whether tenants may leave their residency area.
    pub residency_override: bool,
    /// Started (phase 1).
    pub started_at: DateTime<Utc>,
    /// Every restore finished (end of phase 2).
    pub provisioned_at: Option<DateTime<Utc>>,
    /// Every restored tenant verified (end of phase 3).
    pub restored_at: Option<DateTime<Utc>>,
    /// The operator asked for phase 4's cleanup.
    pub cleanup_requested_at: Option<DateTime<Utc>>,
    /// Phase 4 done.
    pub closed_at: Option<DateTime<Utc>>,
    /// For a failback: the failover it takes the tenants home from.
    pub failback_of: Option<Uuid>,
}

/// One tenant of a failover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverTenant {
    /// The tenant.
    pub workspace_id: Uuid,
    /// Its droplet in the failed datacenter.
    pub old_droplet_id: Uuid,
    /// What is done with it.
    pub plan: RestorePlan,
    /// The snapshot image restored from.
    pub image_id: Option<i64>,
    /// When that snapshot was asked for: later writes are lost.
    pub snapshot_at: Option<DateTime<Utc>>,
    /// Where its restore stands.
    pub state: RestoreState,
    /// Its restore saga.
    pub ignition_id: Option<Uuid>,
    /// Its new droplet.
    pub new_droplet_id: Option<Uuid>,
    /// Why its restore failed.
    pub error: Option<String>,
}

/// A tenant as the assessment finds it, before a plan is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// The tenant.
    pub workspace_id: Uuid,
    /// Where its data lives.
    pub home: Region,
    /// Its droplet in the failed region.
    pub droplet_id: Uuid,
    /// Its newest snapshot whose copy reached the target datacenter.
    pub snapshot: Option<(Uuid, i64, DateTime<Utc>)>,
}

/// How many tenants of a failover are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailoverCounts {
    /// Per [`RestoreState::code`].
    pub by_state: std::collections::BTreeMap<String, i64>,
    /// Per [`RestorePlan::code`].
    pub by_plan: std::collections::BTreeMap<String, i64>,
}

impl FailoverCounts {
    /// Tenants in `state`.
    pub fn state(&self, state: RestoreState) -> i64 {
        self.by_state.get(state.code()).copied().unwrap_or(0)
    }
    /// Tenants with `plan`.
    pub fn plan(&self, plan: RestorePlan) -> i64 {
        self.by_plan.get(plan.code()).copied().unwrap_or(0)
    }
    /// Every tenant.
    pub fn total(&self) -> i64 {
        self.by_state.values().sum()
    }
}

/// What a failover's start needs.
#[derive(Debug, Clone)]
pub struct NewFailover<'a> {
    /// Its id.
    pub id: Uuid,
    /// The failed datacenter.
    pub from_datacenter: &'a str,
    /// The target.
    pub to_datacenter: &'a str,
    /// The operator.
    pub operator: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Whether tenants may leave their residency area.
    pub residency_override: bool,
}

/// The restore a saga's parameters describe (`params.restore`), if it is one.
pub(crate) struct RestoreOf {
    /// `None` for a single droplet's restore, outside any failover.
    pub(crate) failover_id: Option<Uuid>,
    pub(crate) replaces: Uuid,
}

/// Reads `params.restore` of a saga: the store must know a restore from an ignition, since a
/// restore's end moves no workspace.
pub(crate) fn restore_of(ig: &Ignition) -> Option<RestoreOf> {
    let r = ig.params.get("restore").filter(|v| !v.is_null())?;
    let uuid = |k: &str| r.get(k)?.as_str()?.parse::<Uuid>().ok();
    Some(RestoreOf {
        failover_id: uuid("failover_id"),
        replaces: uuid("replaces")?,
    })
}

fn corrupt(what: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_owned(),
    }
}

struct FailoverRow {
    id: Uuid,
    from_datacenter: String,
    to_datacenter: String,
    phase: String,
    operator: String,
    reason: String,
    residency_override: bool,
    started_at: DateTime<Utc>,
    provisioned_at: Option<DateTime<Utc>>,
    restored_at: Option<DateTime<Utc>>,
    cleanup_requested_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    failback_of: Option<Uuid>,
}

impl TryFrom<FailoverRow> for Failover {
    type Error = StoreError;
    fn try_from(r: FailoverRow) -> Result<Self, StoreError> {
        Ok(Failover {
            phase: FailoverPhase::from_code(&r.phase)
                .ok_or_else(|| corrupt("failover phase", &r.phase))?,
            id: r.id,
            from_datacenter: r.from_datacenter,
            to_datacenter: r.to_datacenter,
            operator: r.operator,
            reason: r.reason,
            residency_override: r.residency_override,
            started_at: r.started_at,
            provisioned_at: r.provisioned_at,
            restored_at: r.restored_at,
            cleanup_requested_at: r.cleanup_requested_at,
            closed_at: r.closed_at,
            failback_of: r.failback_of,
        })
    }
}

/// Ends a restore saga's tenant row, in the saga's last transaction: `failure` is `None`
/// when the saga finished (the new droplet serves the tenant), else why it rolled back.
pub(crate) async fn restore_finished_in(
    conn: &mut PgConnection,
    ig: &Ignition,
    failure: Option<&str>,
    actor: &str,
) -> Result<(), StoreError> {
    let Some(r) = restore_of(ig) else {
        return Ok(());
    };
    let state = match failure {
        None => RestoreState::Restored,
        Some(_) => RestoreState::Failed,
    };
    // A single droplet's restore has no failover row; its end is the audit event alone.
    if let Some(failover) = r.failover_id {
        sqlx::query!(
            r#"UPDATE genesis.failover_tenants
           SET state = $3, error = $4, finished_at = now()
           WHERE failover_id = $1 AND ignition_id = $2"#,
            failover,
            ig.id,
            state.code(),
            failure,
        )
        .execute(&mut *conn)
        .await?;
    }
    let action = match failure {
        None => "TENANT_RESTORED",
        Some(_) => "TENANT_RESTORE_FAILED",
    };
    record(
        conn,
        &AuditEvent::new(actor, AuditCategory::Provisioning, action)
            .workspace(ig.workspace_id)
            .subject(ig.id.to_string())
            .details(serde_json::json!({
                "failover_id": r.failover_id,
                "replaced_droplet": r.replaces,
                "droplet_id": ig.droplet_id.to_string(),
                "error": failure,
            })),
    )
    .await?;
    Ok(())
}

/// Hands the replaced droplet to the operators (MAINTENANCE: automation leaves it alone, so
/// the zombie detector stops rebooting a machine in a dead region), in the restore's start.
pub(crate) async fn set_aside_in(
    conn: &mut PgConnection,
    droplet: Uuid,
    actor: &str,
) -> Result<(), StoreError> {
    let d = crate::droplets::fetch_in(conn, DropletId::from_uuid(droplet)).await?;
    if !matches!(
        d.state,
        DropletState::Maintenance | DropletState::Terminated
    ) {
        crate::droplets::transition_in(conn, &d, DropletEvent::MaintenanceStarted, actor).await?;
    }
    Ok(())
}

/// Marks a tenant's row as restoring with its saga, in the saga's start.
pub(crate) async fn restore_started_in(
    conn: &mut PgConnection,
    failover: Uuid,
    ig: &Ignition,
) -> Result<(), StoreError> {
    let updated = sqlx::query!(
        r#"UPDATE genesis.failover_tenants
           SET state = 'restoring', ignition_id = $3, new_droplet_id = $4, started_at = now()
           WHERE failover_id = $1 AND workspace_id = $2 AND state = 'waiting'"#,
        failover,
        ig.workspace_id.as_uuid(),
        ig.id,
        ig.droplet_id.as_uuid(),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::Refused {
            what: "failover tenant",
            message: "this tenant's restore was already started, or it is not part of the failover"
                .into(),
        })
    }
}

impl Database {
    /// Phase 1's query: the tenants whose current droplet (their latest finished ignition's)
    /// is in `region` and not set aside, each with its newest available snapshot whose
    /// cross-region copy reached `target`. Tenants being ignited are left out: their saga
    /// fails and unwinds on its own.
    pub async fn failover_affected(
        &self,
        region: Region,
        target: &str,
    ) -> Result<Vec<Affected>, StoreError> {
        sqlx::query!(
            r#"SELECT w.id AS workspace_id, w.region AS home, d.id AS droplet_id,
                      s.id AS "snapshot_id?", s.image_id AS "image_id?",
                      s.requested_at AS "snapshot_at?"
               FROM genesis.workspaces w
               JOIN LATERAL (
                   SELECT droplet_id FROM genesis.ignitions i
                   WHERE i.workspace_id = w.id AND i.phase = 'DONE'
                   ORDER BY i.started_at DESC, i.id DESC LIMIT 1
               ) cur ON true
               JOIN genesis.droplets d ON d.id = cur.droplet_id
               LEFT JOIN LATERAL (
                   SELECT s.id, s.image_id, s.requested_at FROM genesis.snapshots s
                   WHERE s.droplet_id = d.id AND s.state = 'available'
                     AND s.backup_datacenter = $2 AND s.transfer_state = 'done'
                   ORDER BY s.requested_at DESC LIMIT 1
               ) s ON true
               WHERE d.region = $1
                 AND d.state NOT IN ('TERMINATED', 'MAINTENANCE')
                 AND w.status IN ('ACTIVE', 'SUSPENDED')
                 AND NOT EXISTS (SELECT 1 FROM genesis.ignitions r
                                 WHERE r.workspace_id = w.id
                                   AND r.phase IN ('RUNNING', 'UNWINDING'))
               ORDER BY w.id"#,
            region.code(),
            target,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Affected {
                workspace_id: r.workspace_id,
                home: Region::parse(&r.home).map_err(|_| corrupt("region", &r.home))?,
                droplet_id: r.droplet_id,
                snapshot: match (r.snapshot_id, r.image_id, r.snapshot_at) {
                    (Some(id), Some(image), Some(at)) => Some((id, image, at)),
                    _ => None,
                },
            })
        })
        .collect()
    }

    /// Writes a failover with its assessment (each tenant's plan) in one transaction: the
    /// failover row, a row per tenant, the mass notification to every tenant it moves, and
    /// the audit events (the residency override, when given, is its own event). Refuses a
    /// second open failover out of the same datacenter.
    pub async fn failover_start(
        &self,
        f: &NewFailover<'_>,
        tenants: &[(Affected, RestorePlan)],
        actor: &str,
    ) -> Result<Failover, StoreError> {
        let mut tx = self.app.begin().await?;
        let inserted = sqlx::query_as!(
            FailoverRow,
            r#"INSERT INTO genesis.failovers
                 (id, from_datacenter, to_datacenter, phase, operator, reason, residency_override)
               VALUES ($1, $2, $3, 'provisioning', $4, $5, $6)
               ON CONFLICT (from_datacenter) WHERE phase <> 'closed' DO NOTHING
               RETURNING id, from_datacenter, to_datacenter, phase, operator, reason,
                         residency_override, started_at, provisioned_at, restored_at,
                         cleanup_requested_at, closed_at, failback_of"#,
            f.id,
            f.from_datacenter,
            f.to_datacenter,
            f.operator,
            f.reason,
            f.residency_override,
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Refused {
            what: "failover",
            message: format!(
                "a failover out of {} is already open; see `genesis dr status`",
                f.from_datacenter
            ),
        })?;
        for (a, plan) in tenants {
            let state = match plan {
                RestorePlan::Held => RestoreState::Held,
                _ => RestoreState::Waiting,
            };
            let snap = a.snapshot.filter(|_| *plan == RestorePlan::Restore);
            sqlx::query!(
                r#"INSERT INTO genesis.failover_tenants
                     (failover_id, workspace_id, old_droplet_id, plan, snapshot_id, image_id,
                      snapshot_at, state)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
                f.id,
                a.workspace_id,
                a.droplet_id,
                plan.code(),
                snap.map(|s| s.0),
                snap.map(|s| s.1),
                snap.map(|s| s.2),
                state.code(),
            )
            .execute(&mut *tx)
            .await?;
            if *plan != RestorePlan::Held {
                let body = serde_json::json!({
                    "datacenter": f.from_datacenter,
                    "backup_from": snap.map(|s| s.2.format("%Y-%m-%d %H:%M UTC").to_string()),
                });
                sqlx::query!(
                    r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                       VALUES ($1, 'SERVICE_DISRUPTION', $2, $3)"#,
                    a.workspace_id,
                    "Your automation engine is down; we are restoring it",
                    body,
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        let count = |p: RestorePlan| tenants.iter().filter(|(_, q)| *q == p).count();
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "FAILOVER_STARTED")
                .subject(f.id.to_string())
                .details(serde_json::json!({
                    "from": f.from_datacenter, "to": f.to_datacenter, "operator": f.operator,
                    "reason": f.reason, "restore": count(RestorePlan::Restore),
                    "reignite": count(RestorePlan::Reignite), "held": count(RestorePlan::Held),
                })),
        )
        .await?;
        if f.residency_override {
            let outside: Vec<String> = tenants
                .iter()
                .filter(|(a, p)| {
                    *p != RestorePlan::Held
                        && genesis_core::dr::region_of_datacenter(f.to_datacenter)
                            .is_some_and(|t| !a.home.may_run_in(t))
                })
                .map(|(a, _)| a.workspace_id.to_string())
                .collect();
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Security, "RESIDENCY_OVERRIDDEN")
                    .subject(f.id.to_string())
                    .details(serde_json::json!({
                        "operator": f.operator, "reason": f.reason, "to": f.to_datacenter,
                        "workspaces": outside,
                    })),
            )
            .await?;
        }
        tx.commit().await?;
        inserted.try_into()
    }

    /// One failover.
    pub async fn failover_get(&self, id: Uuid) -> Result<Failover, StoreError> {
        sqlx::query_as!(
            FailoverRow,
            r#"SELECT id, from_datacenter, to_datacenter, phase, operator, reason,
                      residency_override, started_at, provisioned_at, restored_at,
                      cleanup_requested_at, closed_at, failback_of
               FROM genesis.failovers WHERE id = $1"#,
            id,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "failover" })?
        .try_into()
    }

    /// The failovers, newest first (`open_only`: those not closed).
    pub async fn failovers(&self, open_only: bool) -> Result<Vec<Failover>, StoreError> {
        sqlx::query_as!(
            FailoverRow,
            r#"SELECT id, from_datacenter, to_datacenter, phase, operator, reason,
                      residency_override, started_at, provisioned_at, restored_at,
                      cleanup_requested_at, closed_at, failback_of
               FROM genesis.failovers WHERE NOT $1 OR phase <> 'closed'
               ORDER BY started_at DESC LIMIT 100"#,
            open_only,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Failover::try_from)
        .collect()
    }

    /// A failover's tenants in `state` (every one when `None`), at most `limit`.
    pub async fn failover_tenants(
        &self,
        id: Uuid,
        state: Option<RestoreState>,
        limit: i64,
    ) -> Result<Vec<FailoverTenant>, StoreError> {
        sqlx::query!(
            r#"SELECT workspace_id, old_droplet_id, plan, image_id, snapshot_at, state,
                      ignition_id, new_droplet_id, error
               FROM genesis.failover_tenants
               WHERE failover_id = $1 AND ($2::text IS NULL OR state = $2)
               ORDER BY workspace_id LIMIT $3"#,
            id,
            state.map(RestoreState::code),
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(FailoverTenant {
                plan: RestorePlan::from_code(&r.plan).ok_or_else(|| corrupt("plan", &r.plan))?,
                state: RestoreState::from_code(&r.state)
                    .ok_or_else(|| corrupt("restore state", &r.state))?,
                workspace_id: r.workspace_id,
                old_droplet_id: r.old_droplet_id,
                image_id: r.image_id,
                snapshot_at: r.snapshot_at,
                ignition_id: r.ignition_id,
                new_droplet_id: r.new_droplet_id,
                error: r.error,
            })
        })
        .collect()
    }

    /// Marks a waiting tenant's restore failed without a saga (it cannot be restored at
    /// all: deleted meanwhile, never ignited), audited.
    pub async fn failover_tenant_give_up(
        &self,
        id: Uuid,
        workspace: Uuid,
        why: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let updated = sqlx::query!(
            r#"UPDATE genesis.failover_tenants SET state = 'failed', error = $3, finished_at = now()
               WHERE failover_id = $1 AND workspace_id = $2 AND state = 'waiting'"#,
            id,
            workspace,
            why,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            let ws = genesis_core::WorkspaceId::from_uuid(workspace)
                .map_err(|_| corrupt("workspace id", "nil"))?;
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Provisioning, "TENANT_RESTORE_FAILED")
                    .workspace(ws)
                    .subject(id.to_string())
                    .details(serde_json::json!({ "failover_id": id, "error": why })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many of a failover's tenants are in each state and plan.
    pub async fn failover_counts(&self, id: Uuid) -> Result<FailoverCounts, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT plan, state, count(*) AS "n!" FROM genesis.failover_tenants
               WHERE failover_id = $1 GROUP BY plan, state"#,
            id,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut c = FailoverCounts::default();
        for r in rows {
            *c.by_state.entry(r.state).or_default() += r.n;
            *c.by_plan.entry(r.plan).or_default() += r.n;
        }
        Ok(c)
    }

    /// Phase 3: the restored tenants whose new droplet has sent a heartbeat since its restore
    /// finished that shows the engine whole become verified, and each is told its service is
    /// back. Answers how many. Whole means spec 66.4's checks, from what the sidecar reports:
    /// n8n answers its probe, every workflow the restore activated is active, and n8n holds
    /// at least as many credentials as the restore injected.
    pub async fn failover_verify(&self, id: Uuid, actor: &str) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        let verified = sqlx::query!(
            r#"WITH v AS (
                 UPDATE genesis.failover_tenants t SET state = 'verified'
                 FROM genesis.droplets d
                 WHERE t.failover_id = $1 AND t.state = 'restored' AND d.id = t.new_droplet_id
                   AND d.last_heartbeat_at >= t.finished_at
                   AND d.last_heartbeat ->> 'n8n_status' = 'running'
                   AND COALESCE((d.last_heartbeat ->> 'active_workflows')::bigint, 0)
                       >= (SELECT count(*) FROM genesis.droplet_workflows w
                            WHERE w.droplet_id = d.id AND w.active)
                   AND jsonb_array_length(COALESCE(d.last_heartbeat -> 'credentials', '[]'))
                       >= (SELECT COALESCE(jsonb_array_length(i.params -> 'credentials'), 0)
                             FROM genesis.ignitions i WHERE i.id = t.ignition_id)
                 RETURNING t.workspace_id, t.snapshot_at, t.plan
               )
               INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
               SELECT workspace_id, 'SERVICE_RESTORED', 'Your automation engine is back',
                      jsonb_build_object(
                        'lost_after', to_char(snapshot_at AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD HH24:MI "UTC"'),
                        'reignited', plan = 'reignite', 'migrated', plan = 'migrate')
               FROM v RETURNING workspace_id"#,
            id,
        )
        .fetch_all(&mut *tx)
        .await?;
        if !verified.is_empty() {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Provisioning, "FAILOVER_VERIFIED")
                    .subject(id.to_string())
                    .details(serde_json::json!({ "tenants": verified.len() })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(verified.len() as u64)
    }

    /// Declares the failback of failover `of` (spec 66.4 phase 4, option B): a planned
    /// failover of its own, from `of`'s target back to its failed datacenter, whose tenants
    /// are `of`'s verified ones still served by the droplet `of` made for them, each to be
    /// moved from a snapshot taken for the move (plan `migrate`). Audited, with a notice to
    /// each tenant. Refuses a failback of a failback, a second failback, a failover not
    /// restored yet, and one with nobody left to move.
    pub async fn failback_start(
        &self,
        of: &Failover,
        id: Uuid,
        operator: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Failover, StoreError> {
        let refuse = |message: String| StoreError::Refused {
            what: "failback",
            message,
        };
        if of.failback_of.is_some() {
            return Err(refuse(
                "this is a failback already; declare a failover to move its tenants again".into(),
            ));
        }
        if !matches!(of.phase, FailoverPhase::Restored | FailoverPhase::Closed) {
            return Err(refuse(format!(
                "the failover out of {} is still {}: fail back once it is restored",
                of.from_datacenter,
                of.phase.code()
            )));
        }
        let mut tx = self.app.begin().await?;
        let inserted = sqlx::query_as!(
            FailoverRow,
            r#"INSERT INTO genesis.failovers
                 (id, from_datacenter, to_datacenter, phase, operator, reason, failback_of)
               VALUES ($1, $2, $3, 'provisioning', $4, $5, $6)
               ON CONFLICT DO NOTHING
               RETURNING id, from_datacenter, to_datacenter, phase, operator, reason,
                         residency_override, started_at, provisioned_at, restored_at,
                         cleanup_requested_at, closed_at, failback_of"#,
            id,
            of.to_datacenter,
            of.from_datacenter,
            operator,
            reason,
            of.id,
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            refuse(format!(
                "the failover out of {} was failed back already, or a failover out of {} is open",
                of.from_datacenter, of.to_datacenter
            ))
        })?;
        let moved = sqlx::query_scalar!(
            r#"INSERT INTO genesis.failover_tenants
                 (failover_id, workspace_id, old_droplet_id, plan, state)
               SELECT $1, t.workspace_id, t.new_droplet_id, 'migrate', 'waiting'
               FROM genesis.failover_tenants t
               JOIN genesis.workspaces w ON w.id = t.workspace_id
               WHERE t.failover_id = $2 AND t.state = 'verified'
                 AND w.status IN ('ACTIVE', 'SUSPENDED')
                 AND t.new_droplet_id = (SELECT i.droplet_id FROM genesis.ignitions i
                                          WHERE i.workspace_id = t.workspace_id
                                            AND i.phase = 'DONE'
                                          ORDER BY i.started_at DESC, i.id DESC LIMIT 1)
               RETURNING workspace_id"#,
            id,
            of.id,
        )
        .fetch_all(&mut *tx)
        .await?;
        if moved.is_empty() {
            return Err(refuse(format!(
                "none of the failover's tenants is still served from {}",
                of.to_datacenter
            )));
        }
        sqlx::query!(
            r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
               SELECT t.workspace_id, 'SERVICE_MIGRATION',
                      'Your automation engine is moving back to its home region',
                      jsonb_build_object('from', $2::text, 'to', $3::text)
               FROM genesis.failover_tenants t WHERE t.failover_id = $1"#,
            id,
            of.to_datacenter,
            of.from_datacenter,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "FAILBACK_STARTED")
                .subject(id.to_string())
                .details(serde_json::json!({
                    "failback_of": of.id, "from": of.to_datacenter, "to": of.from_datacenter,
                    "operator": operator, "reason": reason, "tenants": moved.len(),
                })),
        )
        .await?;
        tx.commit().await?;
        inserted.try_into()
    }

    /// A migrating tenant's snapshot reached the target: its restore may start from it.
    pub async fn failover_tenant_image(
        &self,
        id: Uuid,
        workspace: Uuid,
        snapshot: Uuid,
        image: i64,
        snapshot_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.failover_tenants
               SET snapshot_id = $3, image_id = $4, snapshot_at = $5
               WHERE failover_id = $1 AND workspace_id = $2 AND plan = 'migrate'
                 AND state = 'waiting'"#,
            id,
            workspace,
            snapshot,
            image,
            snapshot_at,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Moves a failover to `to` from `from` (no-op if another pass did first), stamping the
    /// phase's time, audited. Answers whether it moved.
    pub async fn failover_phase(
        &self,
        id: Uuid,
        from: FailoverPhase,
        to: FailoverPhase,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let moved = sqlx::query!(
            r#"UPDATE genesis.failovers SET phase = $3,
                 provisioned_at = CASE WHEN $3 = 'verifying' THEN now() ELSE provisioned_at END,
                 restored_at = CASE WHEN $3 = 'restored' THEN now() ELSE restored_at END,
                 closed_at = CASE WHEN $3 = 'closed' THEN now() ELSE closed_at END
               WHERE id = $1 AND phase = $2"#,
            id,
            from.code(),
            to.code(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Provisioning, "FAILOVER_PHASE")
                    .subject(id.to_string())
                    .details(serde_json::json!({ "from": from.code(), "to": to.code() })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Phase 4, option A (stay): the operator asks for the failed datacenter's droplets to be
    /// deleted once it answers again. Only a failover whose tenants are all settled may be.
    pub async fn failover_request_cleanup(
        &self,
        id: Uuid,
        operator: &str,
        actor: &str,
    ) -> Result<Failover, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query_as!(
            FailoverRow,
            r#"UPDATE genesis.failovers SET cleanup_requested_at = COALESCE(cleanup_requested_at, now())
               WHERE id = $1 AND phase = 'restored'
               RETURNING id, from_datacenter, to_datacenter, phase, operator, reason,
                         residency_override, started_at, provisioned_at, restored_at,
                         cleanup_requested_at, closed_at, failback_of"#,
            id,
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Refused {
            what: "failover",
            message: "only a failover whose tenants are all restored and verified can be cleaned up"
                .into(),
        })?;
        record(
            &mut tx,
            &AuditEvent::new(
                actor,
                AuditCategory::Provisioning,
                "FAILOVER_CLEANUP_REQUESTED",
            )
            .subject(id.to_string())
            .details(serde_json::json!({ "operator": operator })),
        )
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// The droplets phase 4 deletes: those a restore set aside that are not yet terminated,
    /// with their cloud ids.
    pub async fn failover_leftovers(
        &self,
        id: Uuid,
        limit: i64,
    ) -> Result<Vec<(DropletId, Option<i64>)>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT d.id, d.provider_id FROM genesis.failover_tenants t
               JOIN genesis.droplets d ON d.id = t.old_droplet_id
               WHERE t.failover_id = $1 AND t.state = 'verified' AND d.state <> 'TERMINATED'
               ORDER BY d.id LIMIT $2"#,
            id,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| (DropletId::from_uuid(r.id), r.provider_id))
        .collect())
    }
}
