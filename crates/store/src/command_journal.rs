//! The command journal (God Mode's droplet page, spec 44.1): every signed command the
//! control plane sent to a sidecar, with its outcome, written in batches by the control
//! plane's journal sink and kept for [`COMMAND_JOURNAL_DAYS`] days.
//!
//! Commands are keyed by workspace and the cloud's droplet id, which is what a command's
//! token is scoped to; the journal lives in the workspace's regional database (DECISIONS 103).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Database, StoreError};

/// How long journal entries are kept.
pub const COMMAND_JOURNAL_DAYS: i32 = 7;

/// One command and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CommandEntry {
    /// The tenant.
    pub workspace_id: Uuid,
    /// The cloud's droplet id.
    pub provider_id: i64,
    /// The command's wire name (`DEPLOY_WORKFLOW`, ...).
    pub action: String,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// How long until the answer (or the failure), ms.
    pub elapsed_ms: i64,
    /// `ok`, `failed` (the command ran and failed), `refused` (the sidecar refused the
    /// token) or `unreachable`.
    pub outcome: String,
    /// What went wrong, when something did (never a secret: commands' bodies are not kept).
    pub detail: Option<String>,
}

impl Database {
    /// Appends entries, in one statement.
    pub async fn command_journal_append(&self, entries: &[CommandEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ws: Vec<Uuid> = entries.iter().map(|e| e.workspace_id).collect();
        let providers: Vec<i64> = entries.iter().map(|e| e.provider_id).collect();
        let actions: Vec<String> = entries.iter().map(|e| e.action.clone()).collect();
        let sent: Vec<DateTime<Utc>> = entries.iter().map(|e| e.sent_at).collect();
        let elapsed: Vec<i64> = entries.iter().map(|e| e.elapsed_ms).collect();
        let outcomes: Vec<String> = entries.iter().map(|e| e.outcome.clone()).collect();
        let details: Vec<Option<String>> = entries.iter().map(|e| e.detail.clone()).collect();
        sqlx::query!(
            r#"INSERT INTO genesis.command_journal
                 (workspace_id, provider_id, action, sent_at, elapsed_ms, outcome, detail)
               SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[],
                                    $5::bigint[], $6::text[], $7::text[])"#,
            &ws,
            &providers,
            &actions,
            &sent,
            &elapsed,
            &outcomes,
            &details as &[Option<String>],
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// The droplet's latest `limit` commands, newest first.
    pub async fn command_journal_recent(
        &self,
        workspace: Uuid,
        provider_id: i64,
        limit: i64,
    ) -> Result<Vec<CommandEntry>, StoreError> {
        Ok(sqlx::query_as!(
            CommandEntry,
            r#"SELECT workspace_id, provider_id, action, sent_at, elapsed_ms, outcome, detail
               FROM genesis.command_journal
               WHERE workspace_id = $1 AND provider_id = $2
               ORDER BY id DESC LIMIT $3"#,
            workspace,
            provider_id,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Deletes entries older than the retention; returns how many.
    pub async fn command_journal_prune(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query!(
            r#"DELETE FROM genesis.command_journal
               WHERE sent_at < now() - make_interval(days => $1)"#,
            COMMAND_JOURNAL_DAYS,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected())
    }
}
