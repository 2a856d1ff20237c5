//! A tenant's CSV imports of leads: progress and refusals, for the page that follows one.
//! The rows themselves go through the tenant's lead store ([`crate::LeadStore`]); this is
//! the bookkeeping around them.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// After this long without progress, a running import is shown as interrupted (its
/// process stopped): batches commit every few hundred milliseconds.
pub const STALE_AFTER_S: i64 = 120;

/// An import as its page shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeadImport {
    /// Its id.
    pub id: Uuid,
    /// The file's name as uploaded.
    pub filename: String,
    /// `running`, `done`, `failed`, or `interrupted` (running, but no progress for
    /// [`STALE_AFTER_S`]).
    pub state: String,
    /// Data rows in the file.
    pub total: i32,
    /// Rows handled so far.
    pub handled: i32,
    /// Rows stored.
    pub imported: i32,
    /// Rows whose address was already there.
    pub duplicates: i32,
    /// Rows refused.
    pub refused: i32,
    /// The first refusals: `[{row, field, message}]`.
    pub errors: serde_json::Value,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// Started.
    pub created_at: DateTime<Utc>,
}

impl Database {
    /// Records an import about to run: its file, its size, and the rows refused before
    /// any is stored (counted as handled).
    pub async fn lead_import_open(
        &self,
        workspace: WorkspaceId,
        actor: &str,
        filename: &str,
        total: i32,
        refused: i32,
        errors: &serde_json::Value,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query!(
            r#"INSERT INTO genesis.lead_imports
                 (id, workspace_id, actor, filename, total, handled, refused, errors)
               VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"#,
            id,
            workspace.as_uuid(),
            actor,
            filename,
            total,
            refused,
            errors,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(id)
    }

    /// Adds a committed batch's counts.
    pub async fn lead_import_progress(
        &self,
        id: Uuid,
        imported: i32,
        duplicates: i32,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.lead_imports
               SET imported = imported + $2, duplicates = duplicates + $3,
                   handled = handled + $2 + $3, updated_at = now()
               WHERE id = $1"#,
            id,
            imported,
            duplicates,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Finishes an import (`failure` when it stopped on an error), audited as
    /// `LEADS_IMPORTED` with its counts in the same transaction.
    pub async fn lead_import_finish(
        &self,
        id: Uuid,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.lead_imports
               SET state = CASE WHEN $2::text IS NULL THEN 'done' ELSE 'failed' END,
                   failure = $2, finished_at = now(), updated_at = now()
               WHERE id = $1 AND state = 'running'
               RETURNING workspace_id, actor, filename, total, imported, duplicates, refused"#,
            id,
            failure,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(());
        };
        record(
            &mut tx,
            &AuditEvent::new(r.actor.clone(), AuditCategory::Data, "LEADS_IMPORTED")
                .workspace(crate::accounts::workspace_id(r.workspace_id)?)
                .subject(id.to_string())
                .details(serde_json::json!({
                    "filename": r.filename, "rows": r.total, "imported": r.imported,
                    "duplicates": r.duplicates, "refused": r.refused, "failure": failure,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Import `id` of `workspace` (another workspace's is not found).
    pub async fn lead_import_get(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<LeadImport, StoreError> {
        sqlx::query_as!(
            LeadImport,
            r#"SELECT id, filename,
                      CASE WHEN state = 'running'
                                AND updated_at < now() - make_interval(secs => $3::bigint)
                           THEN 'interrupted' ELSE state END AS "state!",
                      total, handled, imported, duplicates, refused, errors, failure, created_at
               FROM genesis.lead_imports WHERE id = $1 AND workspace_id = $2"#,
            id,
            workspace.as_uuid(),
            STALE_AFTER_S,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "import" })
    }
}
