//! Hibernation's records (spec 55): tenant activity, manual holds, notices, and hibernation
//! episodes. Every droplet state change here goes through the state machine with its audit
//! event, in the same transaction as the episode row it opens or closes.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::hibernation::Activity;
use genesis_core::{DropletEvent, DropletId, Tier, WorkspaceId};
use serde::Serialize;

use crate::audit::record;
use crate::droplets::{fetch_at_version_in, transition_in};
use crate::{AuditEvent, Database, Droplet, StoreError};

/// A kind of tenant activity (spec 55.1's criteria).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// A campaign started or ran.
    Campaign,
    /// A workflow executed.
    Execution,
    /// Someone signed in to the dashboard.
    Login,
}

/// A serving droplet with what the eligibility rule needs.
#[derive(Debug, Clone)]
pub struct HibernationCandidate {
    /// The droplet.
    pub droplet: Droplet,
    /// The facts of spec 55.1.
    pub activity: Activity,
    /// When the 24-hour notice went out, if it did.
    pub notice_at: Option<DateTime<Utc>>,
    /// When a pre-warm woke it, if that is why it is up (no activity since).
    pub prewarmed_at: Option<DateTime<Utc>>,
    /// Executions waiting or running in its last heartbeat (spec 56.2's quiet period).
    pub pending_executions: i64,
    /// Its tenant is being deleted (spec 64.2, day 0): it hibernates at once.
    pub deleting: bool,
}

/// What hibernation has saved so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HibernationTotals {
    /// Droplets hibernating now.
    pub hibernating_now: i64,
    /// Episodes so far.
    pub episodes: i64,
    /// Seconds spent powered off, every episode together (open ones up to now).
    pub hibernated_seconds: i64,
}

impl Database {
    /// Records an activity at `at` (later ones win) and withdraws any pending notice: an
    /// active tenant is no longer about to hibernate.
    pub async fn activity_touch(
        &self,
        workspace: WorkspaceId,
        kind: ActivityKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (c, e, l) = match kind {
            ActivityKind::Campaign => (Some(at), None, None),
            ActivityKind::Execution => (None, Some(at), None),
            ActivityKind::Login => (None, None, Some(at)),
        };
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_activity
                 (workspace_id, last_campaign_at, last_execution_at, last_login_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (workspace_id) DO UPDATE SET
                 last_campaign_at = GREATEST(workspace_activity.last_campaign_at, EXCLUDED.last_campaign_at),
                 last_execution_at = GREATEST(workspace_activity.last_execution_at, EXCLUDED.last_execution_at),
                 last_login_at = GREATEST(workspace_activity.last_login_at, EXCLUDED.last_login_at),
                 notice_at = NULL, prewarmed_at = NULL, updated_at = now()"#,
            workspace.as_uuid(),
            c,
            e,
            l,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Sets or lifts a tenant's manual hold (spec 55.1), audited.
    pub async fn hibernation_hold_set(
        &self,
        workspace: WorkspaceId,
        hold: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_activity (workspace_id, hibernation_hold) VALUES ($1, $2)
               ON CONFLICT (workspace_id) DO UPDATE SET hibernation_hold = $2,
                 notice_at = CASE WHEN $2 THEN NULL ELSE workspace_activity.notice_at END,
                 updated_at = now()"#,
            workspace.as_uuid(),
            hold,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Droplet, "HIBERNATION_HOLD_SET")
                .workspace(workspace)
                .details(serde_json::json!({ "hold": hold })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Serving droplets of every tier, with their tenant's activity, in droplet order.
    pub async fn hibernation_candidates(
        &self,
        limit: i64,
    ) -> Result<Vec<HibernationCandidate>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT d.id, d.workspace_id, d.provider_id, d.region, d.state, d.version,
                      d.created_at, d.updated_at, w.tier, w.status AS ws_status,
                      a.last_campaign_at, a.last_execution_at, a.last_login_at,
                      COALESCE(a.hibernation_hold, false) AS "hold!", a.notice_at, a.prewarmed_at,
                      COALESCE((d.last_heartbeat->>'pending_executions')::bigint, 0) AS "pending!"
               FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               LEFT JOIN genesis.workspace_activity a ON a.workspace_id = d.workspace_id
               WHERE d.state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED')
               ORDER BY d.id LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                let droplet = Droplet::try_from(crate::droplets::droplet_row!(r))?;
                let tier = Tier::parse(&r.tier).map_err(|_| StoreError::Corrupt {
                    what: "workspace tier",
                    value: r.tier.clone(),
                })?;
                Ok(HibernationCandidate {
                    activity: Activity {
                        tier,
                        workspace_active: r.ws_status == "ACTIVE",
                        manual_hold: r.hold,
                        active_since: droplet.created_at.timestamp(),
                        last_campaign_at: r.last_campaign_at.map(|t| t.timestamp()),
                        last_execution_at: r.last_execution_at.map(|t| t.timestamp()),
                        last_login_at: r.last_login_at.map(|t| t.timestamp()),
                    },
                    droplet,
                    notice_at: r.notice_at,
                    prewarmed_at: r.prewarmed_at,
                    pending_executions: r.pending,
                    deleting: r.ws_status == "PENDING_DELETION",
                })
            })
            .collect()
    }

    /// Sends spec 55.2's notice ("your instance will hibernate in 24 hours") through the
    /// notifications outbox, once, audited. False when a notice is already pending.
    pub async fn hibernation_notice(
        &self,
        workspace: WorkspaceId,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let set = sqlx::query_scalar!(
            r#"INSERT INTO genesis.workspace_activity (workspace_id, notice_at) VALUES ($1, now())
               ON CONFLICT (workspace_id) DO UPDATE SET notice_at = now(), updated_at = now()
               WHERE workspace_activity.notice_at IS NULL
               RETURNING notice_at"#,
            workspace.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        if set.is_none() {
            return Ok(false);
        }
        sqlx::query!(
            r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
               VALUES ($1, 'HIBERNATION_NOTICE', $2, $3)"#,
            workspace.as_uuid(),
            "Your instance will hibernate in 24 hours",
            serde_json::json!({
                "reason": "no campaigns or executions for 7 days and no sign-in for 14 days",
                "keep_awake": "sign in, start a campaign, or ask for a hold"
            }),
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Droplet, "HIBERNATION_NOTICE_SENT")
                .workspace(workspace),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Withdraws a pending notice (the tenant is no longer eligible).
    pub async fn hibernation_notice_clear(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE genesis.workspace_activity SET notice_at = NULL, updated_at = now() WHERE workspace_id = $1",
            workspace.as_uuid(),
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// The droplet is powered off: HIBERNATING, and a new episode with its final metrics, in
    /// one transaction.
    pub async fn droplet_hibernated(
        &self,
        droplet: DropletId,
        version: i64,
        final_metrics: &serde_json::Value,
        actor: &str,
    ) -> Result<Droplet, StoreError> {
        let mut tx = self.app.begin().await?;
        let current = fetch_at_version_in(&mut tx, droplet, version).await?;
        let moved = transition_in(&mut tx, &current, DropletEvent::Hibernated, actor).await?;
        sqlx::query!(
            r#"INSERT INTO genesis.hibernations (workspace_id, droplet_id, final_metrics)
               VALUES ($1, $2, $3)"#,
            current.workspace_id.as_uuid(),
            droplet.as_uuid(),
            final_metrics,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE genesis.workspace_activity SET notice_at = NULL WHERE workspace_id = $1",
            current.workspace_id.as_uuid(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// A wake trigger arrived: WAKING, and the open episode closed with the trigger, in one
    /// transaction.
    pub async fn droplet_wake_requested(
        &self,
        droplet: DropletId,
        version: i64,
        trigger: &str,
        actor: &str,
    ) -> Result<Droplet, StoreError> {
        let mut tx = self.app.begin().await?;
        let current = fetch_at_version_in(&mut tx, droplet, version).await?;
        let moved = transition_in(&mut tx, &current, DropletEvent::WakeRequested, actor).await?;
        sqlx::query!(
            r#"UPDATE genesis.hibernations SET woken_at = now(), wake_trigger = $2
               WHERE droplet_id = $1 AND woken_at IS NULL"#,
            droplet.as_uuid(),
            trigger,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Sets (or clears) a tenant's next scheduled campaign start.
    pub async fn campaign_schedule_set(
        &self,
        workspace: WorkspaceId,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_activity (workspace_id, next_campaign_at) VALUES ($1, $2)
               ON CONFLICT (workspace_id) DO UPDATE SET next_campaign_at = $2, updated_at = now()"#,
            workspace.as_uuid(),
            next,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Hibernating droplets whose tenant's next campaign starts before `horizon` (tier
    /// `tier`), with that start: what must wake now.
    pub async fn hibernating_due(
        &self,
        tier: Tier,
        horizon: DateTime<Utc>,
    ) -> Result<Vec<(WorkspaceId, DateTime<Utc>)>, StoreError> {
        sqlx::query!(
            r#"SELECT d.workspace_id, a.next_campaign_at AS "next!"
               FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               JOIN genesis.workspace_activity a ON a.workspace_id = d.workspace_id
               WHERE d.state = 'HIBERNATING' AND w.tier = $1
                 AND w.status <> 'PENDING_DELETION'
                 AND a.next_campaign_at IS NOT NULL AND a.next_campaign_at <= $2
               ORDER BY a.next_campaign_at"#,
            tier.code(),
            horizon,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            WorkspaceId::from_uuid(r.workspace_id)
                .map(|w| (w, r.next))
                .map_err(|_| StoreError::Corrupt {
                    what: "workspace id",
                    value: r.workspace_id.to_string(),
                })
        })
        .collect()
    }

    /// Hibernating tenants with a managed-service call (campaign activity) or a dashboard
    /// sign-in since they went to sleep, with whether a sign-in was among them: the activity
    /// is recorded at once, the wake follows on the hibernation pass (spec 55.3), so it is
    /// never lost to a crash between the two.
    pub async fn hibernating_with_new_activity(
        &self,
    ) -> Result<Vec<(WorkspaceId, bool)>, StoreError> {
        sqlx::query!(
            r#"SELECT d.workspace_id,
                      coalesce(bool_or(a.last_login_at > h.hibernated_at), false) AS "by_login!"
               FROM genesis.droplets d
               JOIN genesis.hibernations h ON h.droplet_id = d.id AND h.woken_at IS NULL
               JOIN genesis.workspace_activity a ON a.workspace_id = d.workspace_id
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE d.state = 'HIBERNATING' AND w.status <> 'PENDING_DELETION'
                 AND (a.last_campaign_at > h.hibernated_at OR a.last_login_at > h.hibernated_at)
               GROUP BY d.workspace_id"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            WorkspaceId::from_uuid(r.workspace_id)
                .map(|w| (w, r.by_login))
                .map_err(|_| StoreError::Corrupt {
                    what: "workspace id",
                    value: r.workspace_id.to_string(),
                })
        })
        .collect()
    }

    /// Records that a pre-warm woke the tenant (it hibernates again after 2 idle hours).
    pub async fn prewarmed(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_activity (workspace_id, prewarmed_at) VALUES ($1, now())
               ON CONFLICT (workspace_id) DO UPDATE SET prewarmed_at = now(), updated_at = now()"#,
            workspace.as_uuid(),
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Hibernation so far, for the savings figure.
    pub async fn hibernation_totals(&self) -> Result<HibernationTotals, StoreError> {
        let r = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE woken_at IS NULL) AS "now!",
                      count(*) AS "episodes!",
                      COALESCE(sum(EXTRACT(EPOCH FROM (COALESCE(woken_at, now()) - hibernated_at))), 0)::bigint AS "secs!"
               FROM genesis.hibernations"#
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(HibernationTotals {
            hibernating_now: r.now,
            episodes: r.episodes,
            hibernated_seconds: r.secs,
        })
    }
}
