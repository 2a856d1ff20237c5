//! Alerts for people (spec 54.4's manual reviews, the watchdog's detections).
//!
//! # Guarantees
//! - At most one open alert per droplet and kind: raising it again refreshes it.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletId, WorkspaceId};
use serde::Serialize;
use uuid::Uuid;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// An alert for people.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// When someone said they are on it.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who did (an audit actor, e.g. `operator:ops@example.com`).
    pub acknowledged_by: Option<String>,
}

/// What an operator does with an open alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// "I am on it": the alert stays open, marked with who took it.
    Acknowledge,
    /// The problem is dealt with: the alert closes.
    Resolve,
}

impl AlertAction {
    /// The audit event this action writes.
    pub fn event(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => "ALERT_ACKNOWLEDGED",
            AlertAction::Resolve => "ALERT_RESOLVED",
        }
    }
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

impl Database {
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
        let mut event = AuditEvent::new(actor, AuditCategory::Droplet, "ALERT_RAISED")
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
                      resolved_at, acknowledged_at, acknowledged_by
               FROM genesis.alerts
               WHERE NOT $1 OR resolved_at IS NULL
               ORDER BY id DESC LIMIT $2"#,
            open_only,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }
}

impl Database {
    /// How many alerts are open (God Mode's navigation badge; the partial unique index on
    /// open alerts answers it).
    pub async fn alert_open_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.alerts WHERE resolved_at IS NULL"#
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// `droplet`'s open alerts, newest first.
    pub async fn alert_open_for_droplet(
        &self,
        droplet: DropletId,
    ) -> Result<Vec<Alert>, StoreError> {
        Ok(sqlx::query_as!(
            Alert,
            r#"SELECT id, workspace_id, droplet_id, kind, severity, summary, details, opened_at,
                      resolved_at, acknowledged_at, acknowledged_by
               FROM genesis.alerts
               WHERE droplet_id = $1 AND resolved_at IS NULL
               ORDER BY id DESC"#,
            droplet.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Acknowledges or resolves `droplet`'s open alert of `kind` as `actor`, audited in the
    /// same transaction. `NotFound` when no such alert is open; acknowledging twice keeps
    /// the first name (the audit log has both).
    pub async fn alert_act(
        &self,
        droplet: DropletId,
        kind: &str,
        action: AlertAction,
        actor: &str,
    ) -> Result<Alert, StoreError> {
        let mut tx = self.app.begin().await?;
        let resolve = action == AlertAction::Resolve;
        let alert = sqlx::query_as!(
            Alert,
            r#"UPDATE genesis.alerts SET
                   resolved_at = CASE WHEN $3 THEN now() ELSE resolved_at END,
                   acknowledged_at = coalesce(acknowledged_at, now()),
                   acknowledged_by = coalesce(acknowledged_by, $4)
               WHERE droplet_id = $1 AND kind = $2 AND resolved_at IS NULL
               RETURNING id, workspace_id, droplet_id, kind, severity, summary, details,
                         opened_at, resolved_at, acknowledged_at, acknowledged_by"#,
            droplet.as_uuid(),
            kind,
            resolve,
            actor,
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "open alert" })?;
        let mut event = AuditEvent::new(actor, AuditCategory::Droplet, action.event())
            .subject(alert.id.to_string())
            .details(serde_json::json!({
                "kind": alert.kind,
                "droplet_id": alert.droplet_id,
                "summary": alert.summary,
            }));
        if let Some(w) = alert
            .workspace_id
            .and_then(|w| WorkspaceId::from_uuid(w).ok())
        {
            event = event.workspace(w);
        }
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(alert)
    }
}

/// Resolves `droplet`'s open alert of `kind` on `conn` (inside a caller's transaction).
pub(crate) async fn resolve_in(
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
