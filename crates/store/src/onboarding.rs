//! The wizard's progress per workspace (spec 60.1): what each stage confirmed, so a tenant
//! resumes from any device. Each stage's save is one transaction with its audit event.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// Where a workspace's wizard stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The brand stage's confirmed fields (a JSON object), if confirmed.
    pub brand: Option<serde_json::Value>,
    /// When the brand was confirmed.
    pub brand_confirmed_at: Option<DateTime<Utc>>,
    /// The booking stage's link and accepted warnings (a JSON object), if confirmed.
    pub booking: Option<serde_json::Value>,
    /// When the booking link was confirmed.
    pub booking_confirmed_at: Option<DateTime<Utc>>,
}

/// A wizard stage that saves what it confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedStage {
    /// Stage 2 (spec 61.1).
    Brand,
    /// Stage 6 (spec 61.3).
    Booking,
}

impl SavedStage {
    /// Its name in the audit log.
    pub fn code(self) -> &'static str {
        match self {
            SavedStage::Brand => "brand",
            SavedStage::Booking => "booking",
        }
    }
}

impl Database {
    /// The wizard's progress for `workspace` (empty when it has not started).
    pub async fn onboarding_progress(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Progress, StoreError> {
        Ok(sqlx::query_as!(
            Progress,
            r#"SELECT brand, brand_confirmed_at, booking, booking_confirmed_at
               FROM genesis.onboarding_progress WHERE workspace_id = $1"#,
            workspace.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .unwrap_or_default())
    }

    /// Confirms `stage`: keeps `value` (what the tenant confirmed), sets the workspace's
    /// onboarding value `key` (what the Golden Template reads, e.g. `company_name` for
    /// `YOUR_COMPANY_NAME`), and audits `ONBOARDING_STAGE_COMPLETED`, in one transaction.
    pub async fn onboarding_confirm(
        &self,
        workspace: WorkspaceId,
        stage: SavedStage,
        value: &serde_json::Value,
        (key, template_value): (&str, &str),
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let ws = workspace.as_uuid();
        match stage {
            SavedStage::Brand => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, brand, brand_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET brand = EXCLUDED.brand, brand_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
            SavedStage::Booking => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, booking, booking_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET booking = EXCLUDED.booking, booking_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
        };
        let updated = sqlx::query!(
            r#"UPDATE genesis.workspaces
               SET onboarding = onboarding || jsonb_build_object($2::text, $3::text),
                   version = version + 1, updated_at = now()
               WHERE id = $1"#,
            ws,
            key,
            template_value,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound { what: "workspace" });
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, "provisioning", "ONBOARDING_STAGE_COMPLETED")
                .workspace(workspace)
                .details(serde_json::json!({ "stage": stage.code() })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
