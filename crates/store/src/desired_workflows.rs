//! What each droplet should run (the watchdog's desired state): its workflows at their
//! template version, and the droplets it looks at with their latest report.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletId, WorkspaceId};
use serde::Serialize;

use crate::{AuditEvent, Database, Droplet, StoreError, audit::record};

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
        crate::outbound_webhooks::emit(
            &mut tx,
            workspace,
            "campaign.error",
            serde_json::json!({
                "workspace_id": workspace,
                "campaign": key,
                "workflow_id": workflow_id,
                "reason": reason,
            }),
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Workflows, "CAMPAIGN_MARKED_ERROR")
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

    /// Pauses or resumes the campaign `key` runs on `droplet`: the desired state first (the
    /// watchdog heals the droplet toward it, whatever becomes of the command that follows),
    /// audited `WORKFLOW_ACTIVATED` / `WORKFLOW_DEACTIVATED` (spec 63.1's workflow events)
    /// in the same transaction. Answers the
    /// row and whether it changed, or `None` when the droplet runs no such campaign.
    /// Setting the state it already has changes and audits nothing.
    pub async fn droplet_workflow_set_active(
        &self,
        workspace: WorkspaceId,
        droplet: DropletId,
        key: &str,
        active: bool,
        actor: &str,
    ) -> Result<Option<(DesiredWorkflowRow, bool)>, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(before) = sqlx::query_as!(
            DesiredWorkflowRow,
            r#"SELECT workflow_id, key, active, template_version, error
               FROM genesis.droplet_workflows WHERE droplet_id = $1 AND key = $2 FOR UPDATE"#,
            droplet.as_uuid(),
            key,
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        if before.active == active {
            return Ok(Some((before, false)));
        }
        sqlx::query!(
            r#"UPDATE genesis.droplet_workflows SET active = $3, updated_at = now()
               WHERE droplet_id = $1 AND key = $2"#,
            droplet.as_uuid(),
            key,
            active,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(
                actor,
                AuditCategory::Workflows,
                if active {
                    "WORKFLOW_ACTIVATED"
                } else {
                    "WORKFLOW_DEACTIVATED"
                },
            )
            .workspace(workspace)
            .subject(droplet.to_string())
            .details(serde_json::json!({ "key": key, "workflow_id": before.workflow_id })),
        )
        .await?;
        tx.commit().await?;
        Ok(Some((DesiredWorkflowRow { active, ..before }, true)))
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
            &AuditEvent::new(actor, AuditCategory::Workflows, "CAMPAIGN_ERROR_CLEARED")
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
