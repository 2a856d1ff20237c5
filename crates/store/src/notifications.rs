//! The notifications outbox: what the tenant must be told (a failed ignition, a hibernation
//! notice), written in the transaction of the change it is about, delivered later by the
//! mail sender (`genesis_control::workers::mail`).
//!
//! Delivery is a lease, not a lock: [`Database::notification_claim`] moves a due row's
//! `next_attempt_at` a lease ahead and counts the attempt in one statement, so a sender that
//! dies mid-send never strands a row, and two senders never hold the same one.

use genesis_core::audit::AuditCategory;
use std::time::Duration;

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
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

/// A notification claimed for sending, with whom it goes to.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Outbox id (unique within its database).
    pub id: i64,
    /// The workspace it is about, if any.
    pub workspace_id: Option<Uuid>,
    /// The workspace's name, for the greeting.
    pub workspace_name: Option<String>,
    /// Kind, e.g. `IGNITION_FAILED`.
    pub kind: String,
    /// One line.
    pub subject: String,
    /// What the template fills in.
    pub body: serde_json::Value,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// The addressee, or the workspace's owners.
    pub to: Vec<String>,
    /// Those of `to` who asked not to receive this kind again.
    pub opted_out: Vec<String>,
    /// Those of `to` an earlier attempt already sent it to.
    pub already_sent: Vec<String>,
}

/// A notification that failed for good, for God Mode.
#[derive(Debug, Clone, Serialize)]
pub struct DeadNotification {
    /// Outbox id.
    pub id: i64,
    /// The workspace it is about, if any.
    pub workspace_id: Option<Uuid>,
    /// The addressee named at writing, if any (else the owners).
    pub recipient: Option<String>,
    /// Kind.
    pub kind: String,
    /// One line.
    pub subject: String,
    /// Attempts made.
    pub attempts: i32,
    /// Why the last one failed.
    pub last_error: Option<String>,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Given up.
    pub dead_at: DateTime<Utc>,
}

/// How the outbox stands.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for a first or a further attempt.
    pub pending: i64,
    /// Of those, failed at least once.
    pub retrying: i64,
    /// Failed for good.
    pub dead: i64,
    /// Delivered in the last 24 hours.
    pub delivered_24h: i64,
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

    /// Claims up to `limit` due notifications for `lease`: each comes due again when the
    /// lease runs out unless [`Self::notification_sent`], [`Self::notification_retry`] or
    /// [`Self::notification_dead`] settles it first. Oldest due first.
    pub async fn notification_claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Outgoing>, StoreError> {
        let rows = sqlx::query!(
            r#"WITH due AS (
                   SELECT id FROM genesis.notifications
                   WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
                   ORDER BY next_attempt_at, id
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED
               ), claimed AS (
                   UPDATE genesis.notifications n
                   SET attempts = n.attempts + 1,
                       next_attempt_at = now() + make_interval(secs => $2)
                   FROM due WHERE n.id = due.id
                   RETURNING n.id, n.workspace_id, n.recipient, n.kind, n.subject, n.body,
                             n.created_at, n.attempts, n.sent_to
               ), addressed AS (
                   SELECT c.*,
                          CASE WHEN c.recipient IS NOT NULL THEN ARRAY[c.recipient]
                               ELSE ARRAY(SELECT m.email FROM genesis.workspace_members m
                                          WHERE m.workspace_id = c.workspace_id
                                            AND m.role = 'owner'
                                          ORDER BY m.added_at, m.email)
                          END AS recipients
                   FROM claimed c
               )
               SELECT a.id, a.workspace_id, w.name AS "workspace_name?", a.kind, a.subject,
                      a.body, a.created_at, a.attempts,
                      a.recipients AS "to!", coalesce(a.sent_to, '{}') AS "already_sent!",
                      ARRAY(SELECT o.email FROM genesis.notification_opt_outs o
                            WHERE o.kind = a.kind AND o.email = ANY (a.recipients)) AS "opted_out!"
               FROM addressed a
               LEFT JOIN genesis.workspaces w ON w.id = a.workspace_id
               ORDER BY a.id"#,
            limit,
            lease.as_secs_f64(),
        )
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Outgoing {
                id: r.id,
                workspace_id: r.workspace_id,
                workspace_name: r.workspace_name,
                kind: r.kind,
                subject: r.subject,
                body: r.body,
                created_at: r.created_at,
                attempt: r.attempts,
                to: r.to,
                opted_out: r.opted_out,
                already_sent: r.already_sent,
            })
            .collect())
    }

    /// The server took the message for `email`: a later attempt leaves them out.
    pub async fn notification_sent_to(&self, id: i64, email: &str) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.notifications
               SET sent_to = array_append(coalesce(sent_to, '{}'), $2)
               WHERE id = $1 AND NOT ($2 = ANY (coalesce(sent_to, '{}')))"#,
            id,
            email,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Everyone it was for has it (or asked not to): delivered.
    pub async fn notification_sent(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.notifications SET delivered_at = now(), last_error = NULL
               WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL"#,
            id,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// This attempt failed but another may not: due again after `after`.
    pub async fn notification_retry(
        &self,
        id: i64,
        error: &str,
        after: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.notifications
               SET next_attempt_at = now() + make_interval(secs => $3), last_error = $2
               WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL"#,
            id,
            error,
            after.as_secs_f64(),
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Failed for good: dead, with why, until an operator replays it.
    pub async fn notification_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.notifications SET dead_at = now(), last_error = $2
               WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL"#,
            id,
            error,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// The dead letters, newest first.
    pub async fn notification_dead_letters(
        &self,
        limit: i64,
    ) -> Result<Vec<DeadNotification>, StoreError> {
        Ok(sqlx::query_as!(
            DeadNotification,
            r#"SELECT id, workspace_id, recipient, kind, subject, attempts, last_error,
                      created_at, dead_at AS "dead_at!"
               FROM genesis.notifications WHERE dead_at IS NOT NULL
               ORDER BY dead_at DESC, id DESC LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Sends a dead letter again: due now, with a fresh count of attempts, audited. False
    /// when `id` is not a dead letter (already replayed, or never dead).
    pub async fn notification_replay(&self, id: i64, actor: &str) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.notifications
               SET dead_at = NULL, attempts = 0, next_attempt_at = now()
               WHERE id = $1 AND dead_at IS NOT NULL
               RETURNING workspace_id, kind"#,
            id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut event = AuditEvent::new(actor, AuditCategory::Operations, "NOTIFICATION_REPLAYED")
            .subject(id.to_string())
            .details(serde_json::json!({ "kind": row.kind }));
        if let Some(ws) = row
            .workspace_id
            .and_then(|u| WorkspaceId::from_uuid(u).ok())
        {
            event = event.workspace(ws);
        }
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How the outbox stands.
    pub async fn notification_counts(&self) -> Result<OutboxCounts, StoreError> {
        let r = sqlx::query!(
            r#"SELECT
                 count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL) AS "pending!",
                 count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL
                                    AND last_error IS NOT NULL) AS "retrying!",
                 count(*) FILTER (WHERE dead_at IS NOT NULL) AS "dead!",
                 count(*) FILTER (WHERE delivered_at > now() - interval '24 hours') AS "delivered_24h!"
               FROM genesis.notifications"#,
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(OutboxCounts {
            pending: r.pending,
            retrying: r.retrying,
            dead: r.dead,
            delivered_24h: r.delivered_24h,
        })
    }

    /// Keeps the unsubscribe link of one message (its token's SHA-256).
    pub async fn notification_unsubscribe_link(
        &self,
        token_sha256: &[u8; 32],
        email: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO genesis.notification_unsubscribe_links (token_sha256, email, kind)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"#,
            &token_sha256[..],
            email.to_lowercase(),
            kind,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Whom and what an unsubscribe link is for, without acting on it.
    pub async fn notification_unsubscribe_target(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT email, kind FROM genesis.notification_unsubscribe_links
               WHERE token_sha256 = $1"#,
            &token_sha256[..],
        )
        .fetch_optional(&self.app)
        .await?;
        Ok(row.map(|r| (r.email, r.kind)))
    }

    /// Follows an unsubscribe link: its address receives no more notices of its kind
    /// (idempotent). `None` when no message carried this link.
    pub async fn notification_unsubscribe(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query!(
            r#"WITH link AS (
                   SELECT email, kind FROM genesis.notification_unsubscribe_links
                   WHERE token_sha256 = $1
               ), opted AS (
                   INSERT INTO genesis.notification_opt_outs (email, kind)
                   SELECT email, kind FROM link
                   ON CONFLICT DO NOTHING
               )
               SELECT email AS "email!", kind AS "kind!" FROM link"#,
            &token_sha256[..],
        )
        .fetch_optional(&self.app)
        .await?;
        Ok(row.map(|r| (r.email, r.kind)))
    }
}
