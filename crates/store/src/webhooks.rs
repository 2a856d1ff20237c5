//! The webhook registry (spec 50.6): the production URLs of each tenant's workflows,
//! registered at ignition and on every redeploy, forgotten when the tenant goes.

use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use serde::Serialize;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// A webhook the tenant's workflows expose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookEntry {
    /// The workflow's template name.
    pub name: String,
    /// n8n's workflow id.
    pub workflow_id: String,
    /// Its production URL.
    pub url: String,
}

impl Database {
    /// Registers (or replaces) webhooks of the tenant's workflows, all in one statement: a
    /// fleet rollout redeploys every tenant's workflows, and one write per tenant instead of
    /// one per webhook is a measurable share of its database load.
    pub async fn webhooks_register(
        &self,
        workspace: WorkspaceId,
        entries: &[WebhookEntry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let workflows: Vec<&str> = entries.iter().map(|e| e.workflow_id.as_str()).collect();
        let urls: Vec<&str> = entries.iter().map(|e| e.url.as_str()).collect();
        sqlx::query!(
            r#"INSERT INTO genesis.webhook_registry (workspace_id, name, workflow_id, url)
               SELECT $1, e.name, e.workflow_id, e.url
               FROM unnest($2::text[], $3::text[], $4::text[]) AS e(name, workflow_id, url)
               ON CONFLICT (workspace_id, name) DO UPDATE
               SET workflow_id = EXCLUDED.workflow_id, url = EXCLUDED.url
               WHERE (webhook_registry.workflow_id, webhook_registry.url)
                     IS DISTINCT FROM (EXCLUDED.workflow_id, EXCLUDED.url)"#,
            workspace.as_uuid(),
            &names as &[&str],
            &workflows as &[&str],
            &urls as &[&str],
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// The tenant's registered webhooks, by name.
    pub async fn webhook_list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<WebhookEntry>, StoreError> {
        Ok(sqlx::query_as!(
            WebhookEntry,
            r#"SELECT name, workflow_id, url FROM genesis.webhook_registry
               WHERE workspace_id = $1 ORDER BY name"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Forgets every webhook of the tenant (spec 50.6 step 4); returns how many.
    pub async fn webhook_delete_workspace(
        &self,
        workspace: WorkspaceId,
        actor: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        let n = sqlx::query!(
            "DELETE FROM genesis.webhook_registry WHERE workspace_id = $1",
            workspace.as_uuid(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "WEBHOOKS_DELETED")
                .workspace(workspace)
                .details(serde_json::json!({ "webhooks": n })),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}
