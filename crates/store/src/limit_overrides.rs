//! Per-tenant limits of spec 59.2 that differ from the service matrix's defaults: an
//! operator raises one tenant's daily search allowance, or lowers a noisy one's. They live in
//! the workspace's regional database beside its wallet, and every change is audited there in
//! the same transaction.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use serde_json::json;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// One service's per-tenant limits for one workspace; `None` keeps the matrix's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOverride {
    /// The service's id in the matrix.
    pub service: String,
    /// Requests per minute.
    pub rpm_per_tenant: Option<u32>,
    /// Calls per day (UTC).
    pub daily_per_tenant: Option<u32>,
    /// Calls in flight.
    pub concurrent_per_tenant: Option<u32>,
    /// Why.
    pub reason: String,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

fn positive(v: Option<u32>) -> Option<i32> {
    v.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

fn unsigned(v: Option<i32>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl Database {
    /// `workspace`'s overrides, by service.
    pub async fn limit_overrides(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<LimitOverride>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT service, rpm_per_tenant, daily_per_tenant, concurrent_per_tenant, reason,
                      updated_at
               FROM genesis.service_limit_overrides WHERE workspace_id = $1 ORDER BY service"#,
            workspace.as_uuid()
        )
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LimitOverride {
                service: r.service,
                rpm_per_tenant: unsigned(r.rpm_per_tenant),
                daily_per_tenant: unsigned(r.daily_per_tenant),
                concurrent_per_tenant: unsigned(r.concurrent_per_tenant),
                reason: r.reason,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// Sets `workspace`'s limits for `o.service` (its `updated_at` is ignored), audited
    /// (`LIMITS_OVERRIDDEN`).
    pub async fn limit_override_set(
        &self,
        workspace: WorkspaceId,
        o: &LimitOverride,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.service_limit_overrides
                   (workspace_id, service, rpm_per_tenant, daily_per_tenant,
                    concurrent_per_tenant, reason)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (workspace_id, service) DO UPDATE SET
                   rpm_per_tenant = EXCLUDED.rpm_per_tenant,
                   daily_per_tenant = EXCLUDED.daily_per_tenant,
                   concurrent_per_tenant = EXCLUDED.concurrent_per_tenant,
                   reason = EXCLUDED.reason, updated_at = now()"#,
            workspace.as_uuid(),
            o.service,
            positive(o.rpm_per_tenant),
            positive(o.daily_per_tenant),
            positive(o.concurrent_per_tenant),
            o.reason
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Billing, "LIMITS_OVERRIDDEN")
                .workspace(workspace)
                .details(json!({
                    "service": o.service,
                    "rpm_per_tenant": o.rpm_per_tenant,
                    "daily_per_tenant": o.daily_per_tenant,
                    "concurrent_per_tenant": o.concurrent_per_tenant,
                    "reason": o.reason,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives `workspace` the matrix's limits for `service` again, audited
    /// (`LIMITS_RESET`); false when it had none of its own.
    pub async fn limit_override_clear(
        &self,
        workspace: WorkspaceId,
        service: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let gone = sqlx::query!(
            r#"DELETE FROM genesis.service_limit_overrides
               WHERE workspace_id = $1 AND service = $2"#,
            workspace.as_uuid(),
            service
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone == 0 {
            return Ok(false);
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Billing, "LIMITS_RESET")
                .workspace(workspace)
                .details(json!({ "service": service })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
