//! Fleet health in the database (spec 54): heartbeats recorded in batches with the rules of
//! spec 54.3 applied on the way in, the zombie detector's scans, alerts for people, and the
//! fleet's counts.
//!
//! # Guarantees
//! - A batch of heartbeats is two statements whatever its size (record, then counters); only
//!   droplets whose state changes get a transaction of their own, through the droplet state
//!   machine with its audit event.
//! - At most one open alert per droplet and kind: raising it again refreshes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use genesis_core::{
    DropletEvent, DropletId, DropletState, HealthCounters, ResourceSample, WorkspaceId,
};
use serde::Serialize;
use uuid::Uuid;

use crate::droplets::{fetch_in, transition_in};
use crate::{AuditEvent, Database, Droplet, StoreError, audit::record};

/// One received heartbeat, ready to record.
#[derive(Debug, Clone)]
pub struct BeatRow {
    /// The droplet (from its authenticated token).
    pub droplet: DropletId,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// What it said (spec 54.1).
    pub payload: serde_json::Value,
    /// Its resource use, in percent.
    pub sample: ResourceSample,
}

/// A state change a batch of heartbeats caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatTransition {
    /// The droplet.
    pub droplet: DropletId,
    /// Its state before.
    pub from: DropletState,
    /// The event applied.
    pub event: DropletEvent,
}

/// A droplet that has gone quiet.
#[derive(Debug, Clone)]
pub struct Silent {
    /// The droplet.
    pub droplet: Droplet,
    /// Its last heartbeat (its handshake, if it never sent one).
    pub last_heartbeat_at: DateTime<Utc>,
    /// When it entered its current state.
    pub state_since: DateTime<Utc>,
}

/// An alert for people.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Id.
    pub id: i64,
    /// Tenant.
    pub workspace_id: Option<Uuid>,
    /// Droplet.
    pub droplet_id: Option<Uuid>,
    /// `manual_review`, a drift type, ...
    pub kind: String,
    /// LOW, MEDIUM, HIGH, CRITICAL.
    pub severity: String,
    /// One line.
    pub summary: String,
    /// Context.
    pub details: serde_json::Value,
    /// Opened.
    pub opened_at: DateTime<Utc>,
    /// Resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// An alert to raise.
#[derive(Debug, Clone, Copy)]
pub struct NewAlert<'a> {
    /// Tenant.
    pub workspace: Option<WorkspaceId>,
    /// Droplet.
    pub droplet: Option<DropletId>,
    /// `manual_review`, a drift type, ...
    pub kind: &'a str,
    /// LOW, MEDIUM, HIGH, CRITICAL.
    pub severity: &'a str,
    /// One line for people.
    pub summary: &'a str,
    /// Context.
    pub details: &'a serde_json::Value,
}

/// One droplet in God Mode's health heatmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetCell {
    /// The droplet.
    pub id: Uuid,
    /// Its region's code.
    pub region: String,
    /// Its state's code.
    pub state: String,
}

/// Droplets per region and state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetCounts {
    /// region → state → count.
    pub by_region: BTreeMap<String, BTreeMap<String, i64>>,
    /// state → count, all regions.
    pub by_state: BTreeMap<String, i64>,
    /// tier → count: what the fleet costs and which promises it carries (enterprise never
    /// hibernates).
    pub by_tier: BTreeMap<String, i64>,
    /// All live droplets.
    pub total: i64,
}

/// An ignition saga still running or unwinding, as the overview lists it.
#[derive(Debug, Clone, Serialize)]
pub struct IgnitionInFlight {
    /// The saga.
    pub id: Uuid,
    /// Its tenant.
    pub workspace_id: Uuid,
    /// `RUNNING` or `UNWINDING`.
    pub phase: String,
    /// The step being done (or undone).
    pub step: Option<String>,
    /// When the saga started.
    pub started_at: DateTime<Utc>,
}

impl Database {
    /// Records a batch of heartbeats: the latest of each droplet, its counters, and the
    /// transitions the rules imply (degraded, recovered, back from a reboot or a wake).
    /// Returns those transitions.
    pub async fn heartbeats_record(
        &self,
        beats: &[BeatRow],
        actor: &str,
    ) -> Result<Vec<BeatTransition>, StoreError> {
        if beats.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = beats.iter().map(|b| b.droplet.as_uuid()).collect();
        let ats: Vec<DateTime<Utc>> = beats.iter().map(|b| b.at).collect();
        let payloads: Vec<serde_json::Value> = beats.iter().map(|b| b.payload.clone()).collect();
        let rows = sqlx::query!(
            r#"UPDATE genesis.droplets d
               SET last_heartbeat_at = b.at, last_heartbeat = b.payload
               FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) AS b(id, at, payload)
               WHERE d.id = b.id AND d.state <> 'TERMINATED'
               RETURNING d.id, d.state, d.health_counters, d.state_since"#,
            &ids,
            &ats,
            &payloads,
        )
        .fetch_all(&mut *self.app.acquire().await?)
        .await?;
        let beat_of: BTreeMap<Uuid, &BeatRow> =
            beats.iter().map(|b| (b.droplet.as_uuid(), b)).collect();
        let mut counter_ids = Vec::with_capacity(rows.len());
        let mut counter_values = Vec::with_capacity(rows.len());
        let mut events = Vec::new();
        for r in rows {
            let state = DropletState::from_code(&r.state).ok_or(StoreError::Corrupt {
                what: "droplet state",
                value: r.state.clone(),
            })?;
            let before: HealthCounters =
                serde_json::from_value(r.health_counters).unwrap_or_default();
            let mut counters = before;
            let Some(beat) = beat_of.get(&r.id) else {
                continue;
            };
            let event = match state {
                // Only a beat received after the reboot or wake began speaks for the new
                // boot: one buffered before it (flushed late) was sent by the machine that
                // was just powered off or restarted.
                DropletState::Rebooting | DropletState::Waking => {
                    (beat.at > r.state_since).then_some(DropletEvent::HeartbeatResumed)
                }
                _ => counters.observe(state, beat.sample),
            };
            // A steady droplet's capped counters stop changing: nothing to write.
            if counters != before {
                counter_ids.push(r.id);
                counter_values.push(serde_json::to_value(counters).unwrap_or_default());
            }
            if let Some(event) = event {
                events.push(BeatTransition {
                    droplet: DropletId::from_uuid(r.id),
                    from: state,
                    event,
                });
            }
        }
        if !counter_ids.is_empty() {
            sqlx::query!(
                r#"UPDATE genesis.droplets d SET health_counters = c.counters
               FROM unnest($1::uuid[], $2::jsonb[]) AS c(id, counters)
               WHERE d.id = c.id"#,
                &counter_ids,
                &counter_values,
            )
            .execute(&mut *self.app.acquire().await?)
            .await?;
        }
        let mut applied = Vec::new();
        for t in events {
            let mut tx = self.app.begin().await?;
            let current = fetch_in(&mut tx, t.droplet).await?;
            // Another writer may have moved it since the batch was read: re-check.
            if current.state == t.from {
                transition_in(&mut tx, &current, t.event, actor).await?;
                if t.event == DropletEvent::HeartbeatResumed {
                    resolve_in(&mut tx, t.droplet, "manual_review").await?;
                }
                tx.commit().await?;
                applied.push(t);
            }
        }
        Ok(applied)
    }

    /// Droplets in `states` whose last heartbeat (or handshake) is older than `before`,
    /// oldest first, at most `limit`.
    pub async fn droplets_silent_since(
        &self,
        states: &[DropletState],
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Silent>, StoreError> {
        let codes: Vec<String> = states.iter().map(|s| s.code().to_owned()).collect();
        let rows = sqlx::query!(
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at,
                      COALESCE(last_heartbeat_at, updated_at) AS "last!", state_since
               FROM genesis.droplets
               WHERE state = ANY($1) AND COALESCE(last_heartbeat_at, updated_at) < $2
               ORDER BY 9 LIMIT $3"#,
            &codes,
            before,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                let droplet = Droplet::try_from(crate::droplets::droplet_row!(r))?;
                Ok(Silent {
                    droplet,
                    last_heartbeat_at: r.last,
                    state_since: r.state_since,
                })
            })
            .collect()
    }

    /// Droplets in `state` that entered it before `before` (e.g. REBOOTING for too long).
    pub async fn droplets_in_state_since(
        &self,
        state: DropletState,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Droplet>, StoreError> {
        sqlx::query_as!(
            crate::droplets::DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE state = $1 AND state_since < $2
               ORDER BY state_since LIMIT $3"#,
            state.code(),
            before,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Droplet::try_from)
        .collect()
    }

    /// Opens (or refreshes) an alert, audited.
    pub async fn alert_raise(&self, alert: &NewAlert<'_>, actor: &str) -> Result<i64, StoreError> {
        let NewAlert {
            workspace,
            droplet,
            kind,
            severity,
            summary,
            details,
        } = *alert;
        let mut tx = self.app.begin().await?;
        let id = sqlx::query_scalar!(
            r#"INSERT INTO genesis.alerts (workspace_id, droplet_id, kind, severity, summary, details)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (droplet_id, kind) WHERE resolved_at IS NULL
               DO UPDATE SET summary = EXCLUDED.summary, details = EXCLUDED.details,
                             severity = EXCLUDED.severity
               RETURNING id"#,
            workspace.map(|w| w.as_uuid()),
            droplet.map(|d| d.as_uuid()),
            kind,
            severity,
            summary,
            details,
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut event = AuditEvent::new(actor, "fleet", "ALERT_RAISED")
            .subject(id.to_string())
            .details(serde_json::json!({"kind": kind, "severity": severity, "summary": summary}));
        if let Some(w) = workspace {
            event = event.workspace(w);
        }
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Resolves the droplet's open alert of `kind`, if any.
    pub async fn alert_resolve(&self, droplet: DropletId, kind: &str) -> Result<(), StoreError> {
        let mut conn = self.app.acquire().await?;
        resolve_in(&mut conn, droplet, kind).await
    }

    /// Alerts, newest first; `open_only` hides resolved ones.
    pub async fn alert_list(&self, open_only: bool, limit: i64) -> Result<Vec<Alert>, StoreError> {
        Ok(sqlx::query_as!(
            Alert,
            r#"SELECT id, workspace_id, droplet_id, kind, severity, summary, details, opened_at,
                      resolved_at
               FROM genesis.alerts
               WHERE NOT $1 OR resolved_at IS NULL
               ORDER BY id DESC LIMIT $2"#,
            open_only,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Every live droplet as one heatmap cell: id, region and state, by region then id (a
    /// droplet keeps its place in the map while its colour changes). Three narrow columns,
    /// one sequential read: 15,000 rows stay well under God Mode's 300 ms budget.
    pub async fn fleet_cells(&self) -> Result<Vec<FleetCell>, StoreError> {
        Ok(sqlx::query_as!(
            FleetCell,
            r#"SELECT id, region, state FROM genesis.droplets
               WHERE state <> 'TERMINATED' ORDER BY region, id"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Live droplets counted per region and state.
    pub async fn fleet_counts(&self) -> Result<FleetCounts, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT region, state, count(*) AS "n!" FROM genesis.droplets
               WHERE state <> 'TERMINATED' GROUP BY region, state"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut out = FleetCounts::default();
        for r in rows {
            *out.by_region
                .entry(r.region)
                .or_default()
                .entry(r.state.clone())
                .or_default() += r.n;
            *out.by_state.entry(r.state).or_default() += r.n;
            out.total += r.n;
        }
        let tiers = sqlx::query!(
            r#"SELECT w.tier, count(*) AS "n!" FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE d.state <> 'TERMINATED' GROUP BY w.tier"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        out.by_tier = tiers.into_iter().map(|r| (r.tier, r.n)).collect();
        Ok(out)
    }

    /// How many ignitions are in flight, and the `limit` oldest of them (the ones an
    /// operator should look at first).
    pub async fn ignitions_in_flight(
        &self,
        limit: i64,
    ) -> Result<(i64, Vec<IgnitionInFlight>), StoreError> {
        let mut conn = self.read().await?;
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.ignitions
               WHERE phase IN ('RUNNING', 'UNWINDING')"#
        )
        .fetch_one(&mut *conn)
        .await?;
        let oldest = sqlx::query_as!(
            IgnitionInFlight,
            r#"SELECT id, workspace_id, phase, step, started_at FROM genesis.ignitions
               WHERE phase IN ('RUNNING', 'UNWINDING') ORDER BY started_at LIMIT $1"#,
            limit
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok((n, oldest))
    }

    /// A droplet by the cloud's id.
    pub async fn droplet_by_provider(&self, provider_id: i64) -> Result<Droplet, StoreError> {
        sqlx::query_as!(
            crate::droplets::DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE provider_id = $1"#,
            provider_id,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "droplet" })?
        .try_into()
    }
}

async fn resolve_in(
    conn: &mut sqlx::PgConnection,
    droplet: DropletId,
    kind: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE genesis.alerts SET resolved_at = now()
           WHERE droplet_id = $1 AND kind = $2 AND resolved_at IS NULL"#,
        droplet.as_uuid(),
        kind,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One state change of a droplet, from the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// From which state.
    pub from: Option<String>,
    /// To which state.
    pub to: Option<String>,
    /// The event.
    pub event: Option<String>,
}

impl Database {
    /// A droplet's state changes, oldest first (the audit log is the history).
    pub async fn droplet_history(
        &self,
        droplet: DropletId,
        limit: i64,
    ) -> Result<Vec<StateChange>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT occurred_at, actor, details FROM genesis.audit_log
               WHERE subject = $1 AND event = 'DROPLET_STATE_CHANGED'
               ORDER BY id DESC LIMIT $2"#,
            droplet.to_string(),
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_owned);
        let mut out: Vec<StateChange> = rows
            .into_iter()
            .map(|r| StateChange {
                at: r.occurred_at,
                actor: r.actor,
                from: text(&r.details, "from"),
                to: text(&r.details, "to"),
                event: text(&r.details, "event"),
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}

/// A droplet the watchdog looks at, with its latest report.
#[derive(Debug, Clone)]
pub struct WatchedDroplet {
    /// The droplet.
    pub droplet: Droplet,
    /// Its latest heartbeat (with the workflow and credential inventory).
    pub heartbeat: serde_json::Value,
    /// When that heartbeat arrived (names the report a heal answers).
    pub heartbeat_at: DateTime<Utc>,
    /// When the database last changed what the droplet should run.
    pub desired_at: Option<DateTime<Utc>>,
}

/// A workflow a droplet should run (the watchdog's desired state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredWorkflowRow {
    /// n8n's id on the droplet.
    pub workflow_id: String,
    /// The template's key (`lead-intake`).
    pub key: String,
    /// Should it be active.
    pub active: bool,
    /// The template version deployed.
    pub template_version: String,
    /// Why the campaign this workflow runs is in error (it vanished from n8n), until a
    /// redeploy replaces the row.
    pub error: Option<String>,
}

impl Database {
    /// Records (or updates) what a droplet should run.
    pub async fn droplet_workflows_put(
        &self,
        droplet: DropletId,
        rows: &[DesiredWorkflowRow],
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = rows.iter().map(|r| r.workflow_id.clone()).collect();
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let active: Vec<bool> = rows.iter().map(|r| r.active).collect();
        let versions: Vec<String> = rows.iter().map(|r| r.template_version.clone()).collect();
        sqlx::query!(
            r#"INSERT INTO genesis.droplet_workflows (droplet_id, workflow_id, key, active, template_version)
               SELECT $1, w, k, a, v FROM unnest($2::text[], $3::text[], $4::bool[], $5::text[]) AS t(w, k, a, v)
               ON CONFLICT (droplet_id, workflow_id) DO UPDATE
               SET key = EXCLUDED.key, active = EXCLUDED.active,
                   template_version = EXCLUDED.template_version, error = NULL, updated_at = now()"#,
            droplet.as_uuid(),
            &ids,
            &keys,
            &active,
            &versions,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// What a droplet should run.
    pub async fn droplet_workflows(
        &self,
        droplet: DropletId,
    ) -> Result<Vec<DesiredWorkflowRow>, StoreError> {
        Ok(sqlx::query_as!(
            DesiredWorkflowRow,
            r#"SELECT workflow_id, key, active, template_version, error FROM genesis.droplet_workflows
               WHERE droplet_id = $1 ORDER BY key"#,
            droplet.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// When what `droplet` should run last changed (none: nothing recorded). Read after
    /// [`Self::droplet_workflows`], it tells whether those rows may be newer than an
    /// inventory they are compared with.
    pub async fn droplet_workflows_changed_at(
        &self,
        droplet: DropletId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT max(updated_at) FROM genesis.droplet_workflows WHERE droplet_id = $1"#,
            droplet.as_uuid(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// Marks the campaign run by `workflow_id` as in error (spec 43.3's heal of
    /// `orphan_db_record`), tells the tenant through the notifications outbox, and audits it,
    /// in one transaction. False when the row is gone or already marked.
    pub async fn droplet_workflow_mark_error(
        &self,
        workspace: WorkspaceId,
        droplet: DropletId,
        workflow_id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let key = sqlx::query_scalar!(
            r#"UPDATE genesis.droplet_workflows SET error = $3, updated_at = now()
               WHERE droplet_id = $1 AND workflow_id = $2 AND error IS NULL
               RETURNING key"#,
            droplet.as_uuid(),
            workflow_id,
            reason,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(key) = key else {
            return Ok(false);
        };
        sqlx::query!(
            r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
               VALUES ($1, 'CAMPAIGN_ERROR', $2, $3)"#,
            workspace.as_uuid(),
            format!("Your {key} workflow stopped: it is missing from your n8n"),
            serde_json::json!({ "workflow_id": workflow_id, "key": key, "reason": reason }),
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, "watchdog", "CAMPAIGN_MARKED_ERROR")
                .workspace(workspace)
                .subject(droplet.to_string())
                .details(
                    serde_json::json!({ "workflow_id": workflow_id, "key": key, "reason": reason }),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves what a droplet should run to template `version` without deploying it (a
    /// rollout reached a hibernating droplet; the watchdog deploys it on wake).
    pub async fn droplet_workflows_set_version(
        &self,
        droplet: DropletId,
        version: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query!(
            r#"UPDATE genesis.droplet_workflows SET template_version = $2, updated_at = now()
               WHERE droplet_id = $1 AND template_version <> $2"#,
            droplet.as_uuid(),
            version,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected())
    }

    /// Clears a campaign's error: its workflow is back in n8n (the report that showed it
    /// missing was wrong, or someone restored it). Audited in the same transaction. False
    /// when it was not in error.
    pub async fn droplet_workflow_clear_error(
        &self,
        workspace: WorkspaceId,
        droplet: DropletId,
        workflow_id: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let cleared = sqlx::query_scalar!(
            r#"UPDATE genesis.droplet_workflows SET error = NULL, updated_at = now()
               WHERE droplet_id = $1 AND workflow_id = $2 AND error IS NOT NULL
               RETURNING key"#,
            droplet.as_uuid(),
            workflow_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(key) = cleared else {
            return Ok(false);
        };
        record(
            &mut tx,
            &AuditEvent::new(actor, "watchdog", "CAMPAIGN_ERROR_CLEARED")
                .workspace(workspace)
                .subject(droplet.to_string())
                .details(serde_json::json!({ "workflow_id": workflow_id, "key": key })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets what a droplet should run (its ignition was undone).
    pub async fn droplet_workflows_delete(&self, droplet: DropletId) -> Result<u64, StoreError> {
        Ok(sqlx::query!(
            "DELETE FROM genesis.droplet_workflows WHERE droplet_id = $1",
            droplet.as_uuid(),
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected())
    }

    /// Serving droplets whose latest heartbeat carries an inventory, with that heartbeat and
    /// when it arrived: what the watchdog compares with the database.
    pub async fn droplets_watched(&self, limit: i64) -> Result<Vec<WatchedDroplet>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at,
                      last_heartbeat AS "hb!", last_heartbeat_at AS "hb_at!",
                      (SELECT max(w.updated_at) FROM genesis.droplet_workflows w
                        WHERE w.droplet_id = d.id) AS desired_at
               FROM genesis.droplets d
               WHERE state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED')
                 AND last_heartbeat ? 'inventory_at_ms' AND last_heartbeat_at IS NOT NULL
               ORDER BY id LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                let droplet = Droplet::try_from(crate::droplets::droplet_row!(r))?;
                Ok(WatchedDroplet {
                    droplet,
                    heartbeat: r.hb,
                    heartbeat_at: r.hb_at,
                    desired_at: r.desired_at,
                })
            })
            .collect()
    }
}
