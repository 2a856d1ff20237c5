//! The notifications outbox: what the tenant must be told (a failed ignition, a hibernation
//! notice), written in the transaction of the change it is about, delivered later.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use serde::Serialize;

use crate::{Database, StoreError};

/// A user notification waiting in the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// Outbox id.
    pub id: i64,
    /// Kind, e.g. `IGNITION_FAILED`.
    pub kind: String,
    /// One line.
    pub subject: String,
    /// Details (reason, troubleshooting steps).
    pub body: serde_json::Value,
    /// Written.
    pub created_at: DateTime<Utc>,
}

impl Database {
    /// The tenant's undelivered notifications, oldest first.
    pub async fn notification_list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Notification>, StoreError> {
        Ok(sqlx::query_as!(
            Notification,
            r#"SELECT id, kind, subject, body, created_at FROM genesis.notifications
               WHERE workspace_id = $1 AND delivered_at IS NULL ORDER BY id"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }
}
