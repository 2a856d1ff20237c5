//! Workspace-scoped tokens: what a tenant's own n8n presents when the Golden Template calls
//! the control plane back. Only the token's SHA-256 is stored; the token is issued at the
//! start of an ignition, in the same transaction that puts it in the vault, and purged
//! with the vault.

use genesis_core::WorkspaceId;
use sha2::{Digest, Sha256};

use crate::{Database, StoreError};

/// What a workspace token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceTokenKind {
    /// Import and read its workspace's leads.
    Ingest,
}

impl WorkspaceTokenKind {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            WorkspaceTokenKind::Ingest => "ingest",
        }
    }
}

/// A token to record, by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkspaceToken {
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// What it may do.
    pub kind: WorkspaceTokenKind,
}

impl NewWorkspaceToken {
    /// The record of `token`.
    pub fn of(token: &str, kind: WorkspaceTokenKind) -> Self {
        Self {
            sha256: Sha256::digest(token.as_bytes()).into(),
            kind,
        }
    }
}

pub(crate) async fn workspace_token_insert(
    tx: &mut sqlx::PgConnection,
    workspace: WorkspaceId,
    token: &NewWorkspaceToken,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO genesis.workspace_tokens (token_sha256, workspace_id, kind)
           VALUES ($1, $2, $3) ON CONFLICT (token_sha256) DO NOTHING"#,
        &token.sha256[..],
        workspace.as_uuid(),
        token.kind.code(),
    )
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn workspace_tokens_delete(
    tx: &mut sqlx::PgConnection,
    workspace: WorkspaceId,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "DELETE FROM genesis.workspace_tokens WHERE workspace_id = $1",
        workspace.as_uuid(),
    )
    .execute(tx)
    .await?
    .rows_affected())
}

impl Database {
    /// Whether `token` is a live token of `kind` for `workspace`. A token of another
    /// workspace is not: a token is scoped to the workspace that was issued it.
    pub async fn workspace_token_valid(
        &self,
        workspace: WorkspaceId,
        token: &str,
        kind: WorkspaceTokenKind,
    ) -> Result<bool, StoreError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Ok(sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM genesis.workspace_tokens
                WHERE token_sha256 = $1 AND workspace_id = $2 AND kind = $3
                  AND revoked_at IS NULL) AS "valid!""#,
            &digest[..],
            workspace.as_uuid(),
            kind.code(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// Records `token` for `workspace` (the ignition saga records its own inside its step).
    pub async fn workspace_token_add(
        &self,
        workspace: WorkspaceId,
        token: &NewWorkspaceToken,
    ) -> Result<(), StoreError> {
        let mut conn = self.app.acquire().await?;
        workspace_token_insert(&mut conn, workspace, token).await
    }

    /// The workspace whose live `kind` token `token` is, if any.
    pub async fn workspace_token_owner(
        &self,
        token: &str,
        kind: WorkspaceTokenKind,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        sqlx::query_scalar!(
            r#"SELECT workspace_id FROM genesis.workspace_tokens
               WHERE token_sha256 = $1 AND kind = $2 AND revoked_at IS NULL"#,
            &digest[..],
            kind.code(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(crate::accounts::workspace_id)
        .transpose()
    }
}
