//! The append-only audit log (spec 63). Every state change writes its audit event through
//! [`record`] on the same connection, inside the same transaction, as the change itself.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Database, StoreError};

/// One event to append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who acted: `operator:<name>`, `tenant:<uuid>`, `system:<component>`, `cli`.
    pub actor: String,
    /// Spec 63.1 category, lower case: `provisioning`, `droplet`, `security`, `data`, ...
    pub category: &'static str,
    /// Spec 63.1 event code, e.g. `PARTITION_CREATED`, `PERMISSION_DENIED`.
    pub event: &'static str,
    /// The tenant concerned, if any.
    pub workspace_id: Option<WorkspaceId>,
    /// The object acted on (a droplet id, a partition name...).
    pub subject: Option<String>,
    /// Structured context. Never secrets.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event with empty subject and details.
    pub fn new(actor: impl Into<String>, category: &'static str, event: &'static str) -> Self {
        Self {
            actor: actor.into(),
            category,
            event,
            workspace_id: None,
            subject: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Sets the tenant.
    pub fn workspace(mut self, id: WorkspaceId) -> Self {
        self.workspace_id = Some(id);
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Monotonic id.
    pub id: i64,
    /// When it was written.
    pub occurred_at: DateTime<Utc>,
    /// Who acted.
    pub actor: String,
    /// Category.
    pub category: String,
    /// Event code.
    pub event: String,
    /// Tenant, if any.
    pub workspace_id: Option<Uuid>,
    /// Subject, if any.
    pub subject: Option<String>,
    /// Context.
    pub details: serde_json::Value,
}

/// Appends `event` on `conn` (inside the caller's transaction when there is one).
pub async fn record(conn: &mut PgConnection, event: &AuditEvent) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO genesis.audit_log (actor, category, event, workspace_id, subject, details)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"#,
        event.actor,
        event.category,
        event.event,
        event.workspace_id.map(|w| w.as_uuid()),
        event.subject,
        event.details,
    )
    .fetch_one(conn)
    .await?;
    Ok(id)
}

impl Database {
    /// Appends one event in its own transaction (for events that are not part of a change,
    /// such as refused access).
    pub async fn audit_record(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let mut tx = self.app.begin().await?;
        let id = record(&mut tx, event).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The newest events, optionally for one workspace and/or one event code.
    pub async fn audit_list(
        &self,
        workspace: Option<WorkspaceId>,
        event: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query_as!(
            AuditEntry,
            r#"SELECT id, occurred_at, actor, category, event, workspace_id, subject, details
               FROM genesis.audit_log
               WHERE ($1::uuid IS NULL OR workspace_id = $1)
                 AND ($2::text IS NULL OR event = $2)
               ORDER BY id DESC LIMIT $3"#,
            workspace.map(|w| w.as_uuid()),
            event,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows)
    }
}
