//! Alerts for people (spec 54.4's manual reviews, the watchdog's detections).
//!
//! # Guarantees
//! - At most one open alert per droplet and kind: raising it again refreshes it.

use chrono::{DateTime, Utc};
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
