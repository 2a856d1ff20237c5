//! The append-only audit log (spec 63). Every state change writes its audit event through
//! [`record`] on the same connection, inside the same transaction, as the change itself.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Database, StoreError};

/// One event to append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who acted: `operator:<name>`, `tenant:<uuid>`, `system:<component>`, `cli`.
    pub actor: String,
    /// Spec 63.1 category.
    pub category: AuditCategory,
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
    pub fn new(actor: impl Into<String>, category: AuditCategory, event: &'static str) -> Self {
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

/// Which audit events to read (every field narrows; none set reads everything).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actors starting with this (`operator:` for every operator, or one operator in full).
    pub actor_prefix: Option<String>,
    /// One tenant's events.
    pub workspace: Option<WorkspaceId>,
    /// One category (`fleet`, `support`, `security`, ...).
    pub category: Option<String>,
    /// Written at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Written before this.
    pub until: Option<DateTime<Utc>>,
    /// Only events after this `(occurred_at, id)` in newest-first order: the next page
    /// starts below the last event shown. The key orders several regional logs together.
    pub after: Option<(DateTime<Utc>, i64)>,
}

/// Appends `event` on `conn` (inside the caller's transaction when there is one).
pub async fn record(conn: &mut PgConnection, event: &AuditEvent) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO genesis.audit_log (actor, category, event, workspace_id, subject, details)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"#,
        event.actor,
        event.category.code(),
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

    /// The newest `limit` events that `filter` lets through, newest first (God Mode's audit
    /// viewer), by `(occurred_at, id)`.
    pub async fn audit_search(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // `LIKE` with the prefix's own `%`, `_` and `\` escaped: an actor is matched literally.
        let actor_like = filter.actor_prefix.as_deref().map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        Ok(sqlx::query_as!(
            AuditEntry,
            r#"SELECT id, occurred_at, actor, category, event, workspace_id, subject, details
               FROM genesis.audit_log
               WHERE ($1::text IS NULL OR actor LIKE $1)
                 AND ($2::uuid IS NULL OR workspace_id = $2)
                 AND ($3::text IS NULL OR category = $3)
                 AND ($4::timestamptz IS NULL OR occurred_at >= $4)
                 AND ($5::timestamptz IS NULL OR occurred_at < $5)
                 AND ($6::timestamptz IS NULL OR (occurred_at, id) < ($6, $7::bigint))
               ORDER BY occurred_at DESC, id DESC LIMIT $8"#,
            actor_like,
            filter.workspace.map(|w| w.as_uuid()),
            filter.category,
            filter.since,
            filter.until,
            filter.after.map(|(t, _)| t),
            filter.after.map(|(_, id)| id),
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// The categories present in the log, for the viewer's filter.
    pub async fn audit_categories(&self) -> Result<Vec<String>, StoreError> {
        // A loose index scan over `audit_log_category_time_idx`: one probe per category,
        // however long the log.
        Ok(sqlx::query_scalar!(
            r#"WITH RECURSIVE c(category) AS (
                   (SELECT category FROM genesis.audit_log ORDER BY category LIMIT 1)
                   UNION ALL
                   SELECT (SELECT a.category FROM genesis.audit_log a
                           WHERE a.category > c.category ORDER BY a.category LIMIT 1)
                   FROM c WHERE c.category IS NOT NULL)
               SELECT category AS "category!" FROM c WHERE category IS NOT NULL"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// The newest `limit` changes of state of droplets (of `workspace`, or of all), newest
    /// first, whatever spec 63.1 name each was written under
    /// ([`genesis_core::droplet::TRANSITION_EVENTS`]).
    pub async fn audit_droplet_transitions(
        &self,
        workspace: Option<WorkspaceId>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query_as!(
            AuditEntry,
            r#"SELECT id, occurred_at, actor, category, event, workspace_id, subject, details
               FROM genesis.audit_log
               WHERE ($1::uuid IS NULL OR workspace_id = $1)
                 AND category = 'droplet' AND event = ANY($2)
               ORDER BY id DESC LIMIT $3"#,
            workspace.map(|w| w.as_uuid()),
            &genesis_core::droplet::TRANSITION_EVENTS.map(str::to_owned)[..],
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows)
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
