//! A tenant's tracking domains (spec 61.4) and what their engine was last told to serve.
//!
//! Each host's state follows what DNS and the engine answer
//! ([`genesis_core::tracking::TrackingState`]); every change of state is audited in the
//! transaction that makes it. The list the engine serves is kept apart
//! ([`TrackingFront`]): the reconciler compares it with the hosts that should be served and
//! sends the whole list when they differ, or when it is time to send it again.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_core::tracking::TrackingState;
use serde_json::json;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// One tracking domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackingDomain {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The host name.
    pub host: String,
    /// Where it stands.
    pub state: TrackingState,
    /// What DNS answered instead (wrong_target).
    pub found: Option<String>,
    /// Why a verified host is not served yet.
    pub detail: Option<String>,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// DNS last checked.
    pub checked_at: Option<DateTime<Utc>>,
    /// First served.
    pub activated_at: Option<DateTime<Utc>>,
}

/// The outcome of one look at a host, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingCheck<'a> {
    /// The new state.
    pub state: TrackingState,
    /// What DNS answered instead.
    pub found: Option<&'a str>,
    /// Why not served yet.
    pub detail: Option<&'a str>,
    /// Seconds until the next look.
    pub next_check_s: i64,
}

/// A workspace whose engine should be told its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingFront {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The hosts it should serve (verified or active), sorted.
    pub wanted: Vec<String>,
    /// What it was last told, sorted.
    pub served: Vec<String>,
    /// Consecutive failed attempts.
    pub failures: i32,
}

struct Row {
    workspace_id: uuid::Uuid,
    host: String,
    state: String,
    found: Option<String>,
    detail: Option<String>,
    created_at: DateTime<Utc>,
    checked_at: Option<DateTime<Utc>>,
    activated_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for TrackingDomain {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            workspace_id: crate::accounts::workspace_id(r.workspace_id)?,
            state: TrackingState::from_code(&r.state).ok_or(StoreError::Corrupt {
                what: "tracking domain state",
                value: r.state.clone(),
            })?,
            host: r.host,
            found: r.found,
            detail: r.detail,
            created_at: r.created_at,
            checked_at: r.checked_at,
            activated_at: r.activated_at,
        })
    }
}

impl Database {
    /// Adds `host` to `workspace`'s tracking domains (pending, to be checked at once),
    /// audited; refused when it is there already or the workspace has `max` already.
    pub async fn tracking_domain_add(
        &self,
        workspace: WorkspaceId,
        host: &str,
        max: usize,
        actor: &str,
    ) -> Result<TrackingDomain, StoreError> {
        let mut tx = self.app.begin().await?;
        // One addition at a time per workspace, so the count below holds.
        crate::workspaces::lock_in(&mut tx, workspace).await?;
        let count = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.tracking_domains WHERE workspace_id = $1"#,
            workspace.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        if count >= max as i64 {
            return Err(StoreError::Invalid {
                field: "host",
                message: format!("a workspace has at most {max} tracking domains"),
            });
        }
        let row = sqlx::query_as!(
            Row,
            r#"INSERT INTO genesis.tracking_domains (workspace_id, host) VALUES ($1, $2)
               RETURNING workspace_id, host, state, found, detail, created_at, checked_at,
                         activated_at"#,
            workspace.as_uuid(),
            host,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| crate::error::conflict_or(e, "host", host))?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "TRACKING_DOMAIN_ADDED")
                .workspace(workspace)
                .subject(host),
        )
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Removes `host` from `workspace`'s tracking domains, audited; whether it was there.
    pub async fn tracking_domain_remove(
        &self,
        workspace: WorkspaceId,
        host: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let gone = sqlx::query_scalar!(
            r#"DELETE FROM genesis.tracking_domains WHERE workspace_id = $1 AND host = $2
               RETURNING state"#,
            workspace.as_uuid(),
            host,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = gone else {
            return Ok(false);
        };
        // The engine is told at once by the reconciler's next pass.
        sqlx::query!(
            "UPDATE genesis.tracking_fronts SET sync_at = now() WHERE workspace_id = $1",
            workspace.as_uuid()
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(
                actor,
                AuditCategory::Provisioning,
                "TRACKING_DOMAIN_REMOVED",
            )
            .workspace(workspace)
            .subject(host)
            .details(json!({ "state": state })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `workspace`'s tracking domains, by host.
    pub async fn tracking_domains(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<TrackingDomain>, StoreError> {
        sqlx::query_as!(
            Row,
            r#"SELECT workspace_id, host, state, found, detail, created_at, checked_at,
                      activated_at
               FROM genesis.tracking_domains WHERE workspace_id = $1 ORDER BY host"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    /// Up to `limit` tracking domains (of any workspace) whose DNS is due a look.
    pub async fn tracking_domains_due(
        &self,
        limit: i64,
    ) -> Result<Vec<TrackingDomain>, StoreError> {
        sqlx::query_as!(
            Row,
            r#"SELECT workspace_id, host, state, found, detail, created_at, checked_at,
                      activated_at
               FROM genesis.tracking_domains WHERE next_check_at <= now()
               ORDER BY next_check_at LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(TryInto::try_into)
        .collect()
    }

    /// Records a look at `host`: its new state, what was found, when to look again. A
    /// change of state is audited (`TRACKING_DOMAIN_<STATE>`) in the same transaction, and
    /// makes the engine's list due. Returns the state before (`None`: the host is gone).
    pub async fn tracking_domain_record(
        &self,
        workspace: WorkspaceId,
        host: &str,
        check: &TrackingCheck<'_>,
        actor: &str,
    ) -> Result<Option<TrackingState>, StoreError> {
        let mut tx = self.app.begin().await?;
        let before = sqlx::query_scalar!(
            r#"SELECT state FROM genesis.tracking_domains
               WHERE workspace_id = $1 AND host = $2 FOR UPDATE"#,
            workspace.as_uuid(),
            host,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = before else {
            return Ok(None);
        };
        let before = TrackingState::from_code(&before).ok_or(StoreError::Corrupt {
            what: "tracking domain state",
            value: before.clone(),
        })?;
        sqlx::query!(
            r#"UPDATE genesis.tracking_domains
               SET state = $3, found = $4, detail = $5, checked_at = now(),
                   next_check_at = now() + make_interval(secs => $6::bigint),
                   activated_at = CASE WHEN $3 = 'active' THEN coalesce(activated_at, now())
                                       ELSE activated_at END
               WHERE workspace_id = $1 AND host = $2"#,
            workspace.as_uuid(),
            host,
            check.state.code(),
            check.found,
            check.detail,
            check.next_check_s,
        )
        .execute(&mut *tx)
        .await?;
        if before != check.state {
            sqlx::query!(
                r#"INSERT INTO genesis.tracking_fronts (workspace_id) VALUES ($1)
                   ON CONFLICT (workspace_id) DO UPDATE SET sync_at = now()"#,
                workspace.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
            record(
                &mut tx,
                &AuditEvent::new(
                    actor,
                    AuditCategory::Provisioning,
                    check.state.audit_event(),
                )
                .workspace(workspace)
                .subject(host)
                .details(json!({
                    "from": before.code(), "to": check.state.code(), "found": check.found,
                })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Up to `limit` workspaces whose engine should be told its tracking domains: the list
    /// it should serve differs from what it was told, or it is time to tell it again.
    pub async fn tracking_fronts_due(&self, limit: i64) -> Result<Vec<TrackingFront>, StoreError> {
        let rows = sqlx::query!(
            r#"WITH wanted AS (
                 SELECT workspace_id,
                        array_agg(host ORDER BY host)
                          FILTER (WHERE state IN ('verified', 'active')) AS hosts
                 FROM genesis.tracking_domains GROUP BY workspace_id
               )
               SELECT f.workspace_id AS "workspace_id!",
                      coalesce(w.hosts, '{}') AS "wanted!",
                      f.served AS "served!", f.failures AS "failures!"
               FROM genesis.tracking_fronts f
               LEFT JOIN wanted w ON w.workspace_id = f.workspace_id
               WHERE f.sync_at <= now()
               ORDER BY f.sync_at LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TrackingFront {
                    workspace_id: crate::accounts::workspace_id(r.workspace_id)?,
                    wanted: r.wanted,
                    served: r.served,
                    failures: r.failures,
                })
            })
            .collect()
    }

    /// `workspace`'s engine list, whether due or not.
    pub async fn tracking_front(
        &self,
        workspace: WorkspaceId,
    ) -> Result<TrackingFront, StoreError> {
        let r = sqlx::query!(
            r#"SELECT coalesce((SELECT array_agg(host ORDER BY host)
                                FROM genesis.tracking_domains
                                WHERE workspace_id = $1 AND state IN ('verified', 'active')),
                               '{}') AS "wanted!",
                      coalesce((SELECT served FROM genesis.tracking_fronts
                                WHERE workspace_id = $1), '{}') AS "served!",
                      coalesce((SELECT failures FROM genesis.tracking_fronts
                                WHERE workspace_id = $1), 0) AS "failures!""#,
            workspace.as_uuid(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(TrackingFront {
            workspace_id: workspace,
            wanted: r.wanted,
            served: r.served,
            failures: r.failures,
        })
    }

    /// Records that `workspace`'s engine now serves `served` (next reminder in
    /// `resync_s`); its verified hosts among them become active, each change audited.
    pub async fn tracking_front_served(
        &self,
        workspace: WorkspaceId,
        served: &[String],
        resync_s: i64,
        actor: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.tracking_fronts (workspace_id, served, sync_at, failures)
               VALUES ($1, $2, now() + make_interval(secs => $3::bigint), 0)
               ON CONFLICT (workspace_id) DO UPDATE
                 SET served = EXCLUDED.served, sync_at = EXCLUDED.sync_at, failures = 0,
                     updated_at = now()"#,
            workspace.as_uuid(),
            served,
            resync_s,
        )
        .execute(&mut *tx)
        .await?;
        let activated = sqlx::query_scalar!(
            r#"UPDATE genesis.tracking_domains
               SET state = 'active', detail = NULL, activated_at = coalesce(activated_at, now())
               WHERE workspace_id = $1 AND state = 'verified' AND host = ANY($2)
               RETURNING host"#,
            workspace.as_uuid(),
            served,
        )
        .fetch_all(&mut *tx)
        .await?;
        for host in &activated {
            record(
                &mut tx,
                &AuditEvent::new(
                    actor,
                    AuditCategory::Provisioning,
                    TrackingState::Active.audit_event(),
                )
                .workspace(workspace)
                .subject(host.clone())
                .details(json!({ "from": "verified", "to": "active" })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(activated)
    }

    /// Records that telling `workspace`'s engine failed (`why`, shown on its verified
    /// hosts); it is tried again in `retry_s`.
    pub async fn tracking_front_failed(
        &self,
        workspace: WorkspaceId,
        why: &str,
        retry_s: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.tracking_fronts (workspace_id, sync_at, failures)
               VALUES ($1, now() + make_interval(secs => $2::bigint), 1)
               ON CONFLICT (workspace_id) DO UPDATE
                 SET sync_at = EXCLUDED.sync_at,
                     failures = genesis.tracking_fronts.failures + 1, updated_at = now()"#,
            workspace.as_uuid(),
            retry_s,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"UPDATE genesis.tracking_domains SET detail = $2
               WHERE workspace_id = $1 AND state = 'verified'"#,
            workspace.as_uuid(),
            why,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
